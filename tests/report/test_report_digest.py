"""What the report's charts are drawn from: the digest of a hand-made history."""

from __future__ import annotations

import numpy as np
import pytest

from aiodirac._report import Downloads, ReportData, Retries, Submissions, Transitions
from aiodirac._report._digest import Digest, TimeUnit, digest_report
from aiodirac.testing import synthetic_report_data

T0 = 1_790_000_000.0


def _data(
    transitions: list[tuple[int, int, str, str, str, str, float]],
    submissions: list[tuple[int, int, float]],
    retries: list[tuple[int, int, int, float, str]],
    downloads: list[tuple[int, bool, int, float, str]],
) -> ReportData:
    return ReportData(
        campaign="c",
        backend="local",
        created=T0,
        jobs=2,
        transitions=Transitions.from_rows(transitions),
        submissions=Submissions.from_rows(submissions),
        retries=Retries.from_rows(retries),
        downloads=Downloads.from_rows(downloads),
        ended=T0 + 1000,
        outcome="complete",
    )


def _at(digest: Digest, status: str, seconds: float) -> int:
    """Jobs in ``status`` at the first sample at or after ``seconds`` since the start."""
    column = int(np.searchsorted(digest.edges * digest.unit.seconds, seconds))
    return int(digest.counts[digest.statuses.index(status), column])


# Job 1 fails at RAL (its Failed row carries no site), is resubmitted as job 3, which ends Done.
# Job 2 runs and ends Done. Job 2's ID was recorded after the server said Waiting (clock skew).
HISTORY = _data(
    transitions=[
        (1, 1, "Waiting", "Pilot Agent Submission", "", "", T0 + 10),
        (1, 1, "Running", "Application", "", "LCG.RAL.uk", T0 + 100),
        (1, 1, "Failed", "Application Finished With Errors", "", "", T0 + 400),
        (2, 1, "Waiting", "Pilot Agent Submission", "", "", T0 + 5),
        (2, 1, "Running", "Application", "", "LCG.CERN.ch", T0 + 50),
        (2, 1, "Done", "Execution Complete", "", "LCG.CERN.ch", T0 + 350),
        (3, 2, "Running", "Application", "", "LCG.CERN.ch", T0 + 600),
        (3, 2, "Done", "Execution Complete", "", "LCG.CERN.ch", T0 + 900),
    ],
    submissions=[(1, 1, T0 + 1), (2, 1, T0 + 30), (3, 2, T0 + 500)],
    retries=[(1, 3, 2, T0 + 499, "Failed: Application Finished With Errors")],
    downloads=[(2, True, 100, T0 + 360, ""), (3, False, 0, T0 + 950, "checksum mismatch")],
)


def test_status_counts_follow_each_concrete_job_once() -> None:
    digest = digest_report(HISTORY)
    assert digest.counts.min() >= 0
    assert digest.counts[:, -1].sum() == 2  # two concrete jobs, whatever their attempts
    assert dict(digest.final_counts) == {"Done": 2}
    assert _at(digest, "Received", 2) == 1  # job 1 recorded at +1; job 2 not yet
    assert _at(digest, "Waiting", 20) == 2  # job 2 recorded late (+30): not sent back
    assert _at(digest, "Failed", 450) == 1
    assert _at(digest, "Received", 550) == 1  # job 3, the retry of job 1, takes its place
    assert _at(digest, "Done", 950) == 2


def test_durations_attempts_failures_and_downloads() -> None:
    digest = digest_report(HISTORY)
    # Waiting from the recording (or the first row when earlier) to Running, per attempt.
    assert sorted(digest.waiting.tolist()) == [45.0, 99.0, 100.0]
    assert sorted(digest.running.tolist()) == [300.0, 300.0, 300.0]
    assert digest.attempts == ((1, 1), (2, 1))
    assert digest.failures_by_site == (("LCG.RAL.uk", 1),)  # the last site the attempt reported
    assert digest.failures_by_minor == (("Application Finished With Errors", 1),)
    assert digest.download_errors == (("checksum mismatch", 1),)
    assert digest.download_bytes == 100
    assert digest.download_ok.tolist() == [True, False]
    assert digest.retries == 1
    assert {s: int(c.sum()) for s, c in digest.finished.items()} == {"Done": 2, "Failed": 1}


def test_rescheduled_jobs_keep_their_id_and_count_attempts() -> None:
    data = synthetic_report_data(400, retried=0.2, retry="reschedule", seed=1)
    digest = digest_report(data)
    assert digest.counts[:, -1].sum() == 400
    assert sum(n for _, n in digest.attempts) == 400
    assert sum(a * n for a, n in digest.attempts) == len(data.submissions)
    assert digest.counts.min() >= 0


def test_a_hundred_thousand_jobs_digest_to_a_bounded_size() -> None:
    data = synthetic_report_data(100_000, retried=0.05)
    digest = digest_report(data)
    assert digest.counts.shape[1] == len(digest.edges) <= 241
    assert digest.counts[:, -1].sum() == 100_000
    assert len(digest.failures_by_site) <= 13


@pytest.mark.parametrize(
    ("span", "unit"), [(30.0, "s"), (3_000.0, "min"), (30_000.0, "h"), (3e6, "days")]
)
def test_time_unit_fits_the_span(span: float, unit: str) -> None:
    assert TimeUnit.for_span(span).name == unit
