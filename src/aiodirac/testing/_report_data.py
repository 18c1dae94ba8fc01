"""A made-up but realistic campaign history, to try the report without running a campaign.

Jobs are submitted at a steady pace, wait for a pilot, run at one of eight grid sites and end
``Done``; a chosen fraction fails once (at sites and with minor statuses drawn from a fixed
table, so the failure charts have a shape) and is retried; a few of those fail again, and a job
that fails three times is given up. Outputs of Done jobs are downloaded, a few downloads fail.
The same arguments always give the same history (a seeded generator).

Usage::

    from aiodirac.testing import synthetic_report_data
    write_report(synthetic_report_data(1000), "report.html")
"""

from __future__ import annotations

import random
from typing import Literal

from aiodirac._exceptions import InvalidArgumentError
from aiodirac._report._data import (
    Downloads,
    ReportData,
    Retries,
    Submissions,
    Transitions,
)

__all__ = ["synthetic_report_data"]

SITES = (
    ("LCG.CERN.ch", 30),
    ("LCG.RAL.uk", 15),
    ("LCG.CNAF.it", 12),
    ("LCG.IN2P3.fr", 12),
    ("LCG.GRIDKA.de", 10),
    ("LCG.PIC.es", 8),
    ("LCG.NIKHEF.nl", 8),
    ("OSG.UCSD.us", 5),
)
# Where failures happen is not where jobs run: one site fails far more than its share.
FAILING_SITES = (("LCG.PIC.es", 40), ("LCG.RAL.uk", 20), ("LCG.CERN.ch", 15), ("OSG.UCSD.us", 25))
FAILURES = (
    ("Application Finished With Errors", 45),
    ("Job stalled: pilot not running", 20),
    ("Watchdog identified this job as stalled", 15),
    ("Input Data Not Available", 12),
    ("Exception During Execution", 8),
)
DOWNLOAD_ERRORS = ("connection reset by peer", "checksum mismatch after 3 tries")
MAX_ATTEMPTS = 3


def synthetic_report_data(
    jobs: int = 1000,
    *,
    retried: float = 0.05,
    retry: Literal["resubmit", "reschedule"] = "resubmit",
    seed: int = 0,
    start: float = 1_790_000_000.0,
) -> ReportData:
    """A realistic history of a finished campaign of ``jobs`` jobs.

    Args:
        jobs: how many concrete jobs.
        retried: the fraction of jobs whose first attempt fails (one in ten of those fails again).
        retry: ``"resubmit"`` (a retry is a new job ID) or ``"reschedule"`` (the same ID).
        seed: the random generator's seed.
        start: when the campaign starts, in seconds since the epoch.

    Returns:
        The history, as a campaign's journal loader would give it.

    Raises:
        InvalidArgumentError: ``jobs`` below 1, ``retried`` outside 0-1, an unknown ``retry``.

    Usage: ``data = synthetic_report_data(100_000, retried=0.05)``
    """
    if jobs < 1:
        raise InvalidArgumentError(f"jobs must be at least 1, not {jobs}")
    if not 0.0 <= retried <= 1.0:
        raise InvalidArgumentError(f"retried must be a fraction between 0 and 1, not {retried}")
    if retry not in ("resubmit", "reschedule"):
        raise InvalidArgumentError(f"retry must be 'resubmit' or 'reschedule', not {retry!r}")
    history = _History(random.Random(seed), start)
    for index in range(jobs):
        history.campaign_job(index, retried, retry)
    ended = max(history.last, start + 1.0)
    outcome = f"gave up on {history.given_up} jobs" if history.given_up else "complete"
    return ReportData(
        campaign=f"synthetic-{jobs}",
        backend="synthetic",
        created=start,
        jobs=jobs,
        transitions=Transitions.from_rows(iter(history.transitions)),
        submissions=Submissions.from_rows(iter(history.submissions)),
        retries=Retries.from_rows(iter(history.retries)),
        downloads=Downloads.from_rows(iter(history.downloads)),
        ended=ended,
        outcome=outcome,
    )


class _History:
    """Accumulates the rows of the four tables, job after job."""

    def __init__(self, rng: random.Random, start: float) -> None:
        self.rng = rng
        self.start = start
        self.next_id = 10_000
        self.last = start
        self.given_up = 0
        self.transitions: list[tuple[int, int, str, str, str, str, float]] = []
        self.submissions: list[tuple[int, int, float]] = []
        self.retries: list[tuple[int, int, int, float, str]] = []
        self.downloads: list[tuple[int, bool, int, float, str]] = []
        self.sites = [name for name, _ in SITES]
        self.site_weights = [w for _, w in SITES]

    def pick(self, table: tuple[tuple[str, int], ...]) -> str:
        return self.rng.choices([name for name, _ in table], [w for _, w in table])[0]

    def campaign_job(self, index: int, retried: float, retry: str) -> None:
        rng = self.rng
        job_id = self.next_id
        self.next_id += 1
        # About 200 jobs per second go in; each waits for a pilot, then runs about 30 min.
        now = self.start + index / 200.0 + rng.uniform(0.0, 0.5)
        self.submissions.append((job_id, 1, now))
        fails = 1 if rng.random() < retried else 0
        if fails and rng.random() < 0.1:
            fails = MAX_ATTEMPTS if rng.random() < 0.3 else 2
        for attempt in range(1, MAX_ATTEMPTS + 1):
            failed = attempt <= fails
            now, minor = self.attempt(job_id, attempt, now, failed)
            if not failed:
                self.download(job_id, now)
                return
            if attempt == MAX_ATTEMPTS:
                self.given_up += 1
                return
            now += rng.uniform(30.0, 120.0)  # the delay between attempts
            new_id = job_id
            if retry == "resubmit":
                new_id = self.next_id
                self.next_id += 1
            self.retries.append((job_id, new_id, attempt + 1, now, f"Failed: {minor}"))
            if retry == "reschedule":
                self.transitions.append(
                    (job_id, attempt + 1, "Rescheduled", "Job Rescheduled", "", "", now)
                )
            job_id = new_id
            now += rng.uniform(0.5, 3.0)
            self.submissions.append((job_id, attempt + 1, now))

    def attempt(self, job_id: int, attempt: int, now: float, failed: bool) -> tuple[float, str]:
        """The status changes of one attempt; returns when it ended and its last minor status."""
        rng = self.rng
        rows = self.transitions
        now += rng.uniform(2.0, 20.0)
        rows.append((job_id, attempt, "Waiting", "Pilot Agent Submission", "", "", now))
        now += rng.expovariate(1 / 600.0)
        site = self.pick(FAILING_SITES) if failed else self.pick(SITES)
        rows.append((job_id, attempt, "Matched", "Assigned", "", site, now))
        now += rng.uniform(5.0, 60.0)
        rows.append((job_id, attempt, "Running", "Application", "Running", site, now))
        now += rng.lognormvariate(7.5, 0.4)
        if failed:
            minor = self.pick(FAILURES)
            status = "Stalled" if "stalled" in minor else "Failed"
            rows.append((job_id, attempt, status, minor, "", site, now))
        else:
            minor = "Execution Complete"
            rows.append(
                (job_id, attempt, "Completing", "Uploading Output Sandbox", "Done", site, now)
            )
            now += rng.uniform(2.0, 30.0)
            rows.append((job_id, attempt, "Done", minor, "Done", site, now))
        self.last = max(self.last, now)
        return now, minor

    def download(self, job_id: int, done: float) -> None:
        rng = self.rng
        at = done + rng.uniform(5.0, 90.0)
        if rng.random() < 0.005:
            self.downloads.append((job_id, False, 0, at, rng.choice(DOWNLOAD_ERRORS)))
        else:
            self.downloads.append((job_id, True, int(rng.lognormvariate(13.0, 0.8)), at, ""))
        self.last = max(self.last, at)
