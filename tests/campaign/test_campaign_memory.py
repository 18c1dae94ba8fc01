"""The campaign object on a simulated grid: retries, brake, events, faults, resume."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from campaign_support import FAST, client, kinds, parametric

from aiodirac import (
    AsyncDirac,
    BrakeEngaged,
    CampaignEnded,
    CampaignEvent,
    CampaignProgress,
    DownloadFinished,
    FailurePolicy,
    GaveUp,
    JobChanged,
    JobState,
    JobStatus,
    JournalError,
    Limits,
    PollProblem,
    RetryFailed,
    RetryPolicy,
    RetryStarted,
    ServiceUnavailableError,
    current_statuses,
    read_report_data,
)
from aiodirac._campaign._records import STRIDE
from aiodirac._job._spec import SubmitChunk
from aiodirac.backends import ActionResult
from aiodirac.testing import Faults, SimulatedGrid

NOW = FailurePolicy(delay=0)


async def run_all(grid: SimulatedGrid, n: int, path: Path, **kwargs: object) -> list[CampaignEvent]:
    async with client(grid) as dirac:
        campaign = dirac.campaign(parametric(n), journal=path, **kwargs)  # type: ignore[arg-type]
        async with campaign:
            return [event async for event in campaign]


async def test_failed_jobs_are_rescheduled_with_their_ids(tmp_path: Path) -> None:
    failing = set(range(0, 100, 10))
    grid = SimulatedGrid(fail_once=failing)
    events = await run_all(grid, 100, tmp_path / "c.db", policy=NOW)
    assert isinstance(events[-1], CampaignEnded)
    progress = events[-1].progress
    assert progress.complete
    assert progress.outcome == "complete"
    assert progress.counts == {JobStatus.DONE: 100}
    assert progress.retries == 10
    assert progress.failed_once == 10
    retries = [e for e in events if isinstance(e, RetryStarted)]
    assert sorted(r.index for r in retries) == sorted(failing)
    assert all(r.old_job_id == r.new_job_id and r.attempt == 2 for r in retries)
    assert all(r.reason.startswith("Failed: Application Finished With Errors") for r in retries)
    # one submission per job, reschedules only
    assert len(grid.jobs) == 100
    assert grid.calls["reschedule"] >= 1
    assert all(grid.runs[i] == (2 if i in failing else 1) for i in range(100))
    # every attempt's changes are in the stream, each job's first attempt ends Failed or Done
    last = {(e.index, e.attempt): e.status for e in events if isinstance(e, JobChanged)}
    assert all(
        last[(i, 1)] is (JobStatus.FAILED if i in failing else JobStatus.DONE) for i in range(100)
    )
    assert all(last[(i, 2)] is JobStatus.DONE for i in failing)


async def test_resubmission_makes_one_new_job_linked_to_the_failed_one(tmp_path: Path) -> None:
    failing = {3, 4, 50}
    grid = SimulatedGrid(fail_once=failing)
    events = await run_all(
        grid, 60, tmp_path / "c.db", policy=FailurePolicy(delay=0, method="resubmit")
    )
    retries = {e.index: e for e in events if isinstance(e, RetryStarted)}
    assert set(retries) == failing
    assert len(grid.jobs) == 63
    assert len(grid.confirmed()) == 63
    for index, retry in retries.items():
        assert retry.new_job_id != retry.old_job_id
        assert grid.jobs[retry.old_job_id].status is JobStatus.FAILED
        assert grid.jobs[retry.new_job_id].status is JobStatus.DONE
        assert grid.jobs[retry.new_job_id].index == index + STRIDE
        # the same concrete job: its name and arguments
        assert grid.jobs[retry.new_job_id].name == grid.jobs[retry.old_job_id].name
    # exactly one live attempt per index
    live = [j for j in grid.jobs.values() if j.status is JobStatus.DONE]
    assert sorted(j.index % STRIDE for j in live) == list(range(60))
    assert isinstance(events[-1], CampaignEnded)
    assert events[-1].progress.complete


async def test_attempts_run_out(tmp_path: Path) -> None:
    grid = SimulatedGrid(fail_once={1, 2})
    events = await run_all(grid, 10, tmp_path / "c.db", policy=FailurePolicy(max_attempts=1))
    gave_up = [e for e in events if isinstance(e, GaveUp)]
    assert sorted(e.index for e in gave_up) == [1, 2]
    assert all("1 attempts used up" in e.reason for e in gave_up)
    progress = events[-1].progress  # type: ignore[union-attr]
    assert progress.gave_up == 2
    assert not progress.complete
    assert progress.outcome == "gave up on 2 failed jobs"
    assert grid.calls["reschedule"] == 0


async def test_the_brake_stops_retries(tmp_path: Path) -> None:
    grid = SimulatedGrid(fail_once=set(range(0, 100, 10)))
    policy = FailurePolicy(delay=0, max_failed_fraction=0.05)
    events = await run_all(grid, 100, tmp_path / "c.db", policy=policy)
    counted = kinds(events)
    assert counted["BrakeEngaged"] == 1
    brake = next(e for e in events if isinstance(e, BrakeEngaged))
    assert brake.failed == 6
    assert brake.total == 100
    assert counted["RetryStarted"] + counted["GaveUp"] == 10
    assert any("brake" in e.reason for e in events if isinstance(e, GaveUp))
    assert counted["GaveUp"] >= 5


async def test_a_stalled_job_is_killed_and_resubmitted(tmp_path: Path) -> None:
    grid = SimulatedGrid(stall_once={7})
    events = await run_all(grid, 10, tmp_path / "c.db", policy=NOW)
    (retry,) = [e for e in events if isinstance(e, RetryStarted)]
    assert retry.index == 7
    assert retry.method == "resubmit"
    assert grid.jobs[retry.old_job_id].status is JobStatus.KILLED
    assert grid.jobs[retry.new_job_id].status is JobStatus.DONE
    assert events[-1].progress.complete  # type: ignore[union-attr]


class _OwnerKills(SimulatedGrid):
    """A grid on which the owner kills the job of index 2 (from another shell) once it runs."""

    async def status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is not None and job.index == 2 and job.status is JobStatus.RUNNING:
                await self.kill([job_id])
        return await super().status(job_ids)


async def test_jobs_killed_by_their_owner_are_not_retried(tmp_path: Path) -> None:
    grid = _OwnerKills()
    events = await run_all(grid, 5, tmp_path / "c.db", policy=NOW)
    progress = events[-1].progress  # type: ignore[union-attr]
    assert progress.killed == 1
    assert progress.retries == 0
    assert not progress.complete
    assert progress.counts == {JobStatus.DONE: 4, JobStatus.KILLED: 1}
    assert "1 killed or deleted by their owner" in progress.outcome
    assert grid.calls["reschedule"] == 0
    assert len(grid.jobs) == 5


async def test_a_retry_that_fails_counts_as_an_attempt(tmp_path: Path) -> None:
    # the service refuses every resubmission (index >= 2**32): each refusal uses an attempt
    grid = SimulatedGrid(
        fail_once={4},
        refuse=lambda chunk: "no more" if chunk.indices[0] >= STRIDE else None,
    )
    policy = FailurePolicy(delay=0, method="resubmit", max_attempts=3)
    events = await run_all(grid, 8, tmp_path / "c.db", policy=policy)
    refused = [e for e in events if isinstance(e, RetryFailed)]
    assert [(e.index, e.attempt) for e in refused] == [(4, 2), (4, 3)]
    assert "no more" in refused[0].error
    (gave_up,) = [e for e in events if isinstance(e, GaveUp)]
    assert gave_up.index == 4
    assert gave_up.attempts == 3


async def test_poll_errors_never_fail_a_job(tmp_path: Path) -> None:
    grid = SimulatedGrid(
        faults=Faults(transient=0.4, seed=3, methods=frozenset({"status"}), retry_after=None)
    )
    async with client(grid) as dirac:
        from aiodirac import TrackConfig
        from aiodirac.testing import retry_test_mode

        with retry_test_mode():
            track = TrackConfig(min_interval=0, max_interval=0)
            campaign = dirac.campaign(parametric(30), journal=tmp_path / "c.db", track_config=track)
            events = [e async for e in _run(campaign)]
    assert any(isinstance(e, PollProblem) for e in events)
    assert events[-1].progress.complete  # type: ignore[union-attr]
    assert events[-1].progress.counts == {JobStatus.DONE: 30}  # type: ignore[union-attr]


async def _run(campaign):  # type: ignore[no-untyped-def]
    async with campaign:
        async for event in campaign:
            yield event


async def test_outputs_are_fetched_and_a_failed_download_is_reported(tmp_path: Path) -> None:
    grid = SimulatedGrid(outputs=tmp_path / "grid")
    dest = tmp_path / "out"
    events = await run_all(grid, 6, tmp_path / "c.db", dest=dest)
    done = [e for e in events if isinstance(e, DownloadFinished)]
    assert len(done) == 6
    assert all(e.ok for e in done)
    for job in grid.jobs.values():
        assert (dest / str(job.job_id) / "std.out").read_text().startswith(f"job {job.job_id}")
    # no sandbox: each download fails, the campaign still ends and says so
    bare = SimulatedGrid(first_id=100)
    events = await run_all(bare, 3, tmp_path / "d.db", dest=tmp_path / "out2")
    progress = events[-1].progress  # type: ignore[union-attr]
    assert progress.ended
    assert progress.download_failed == 3
    assert progress.counts == {JobStatus.DONE: 3}
    assert progress.outcome == "3 downloads failed"


async def test_callbacks_see_the_stream_and_a_broken_one_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[CampaignEvent] = []

    async def slow(event: CampaignEvent) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event)

    def broken(event: CampaignEvent) -> None:
        raise RuntimeError("display broke")

    grid = SimulatedGrid(fail_once={1})
    with caplog.at_level(logging.ERROR, "aiodirac.campaign"):
        async with client(grid) as dirac:
            campaign = dirac.campaign(
                parametric(4), journal=tmp_path / "c.db", policy=NOW, callbacks=[broken, slow]
            )
            progress = await campaign.run()
    assert progress.complete
    assert isinstance(seen[-1], CampaignEnded)
    assert kinds(seen)["RetryStarted"] == 1
    assert "display broke" in caplog.text


async def test_progress_at_any_moment(tmp_path: Path) -> None:
    grid = SimulatedGrid()
    async with client(grid) as dirac:
        campaign = dirac.campaign(parametric(20), journal=tmp_path / "c.db")
        assert campaign.progress.total == 20
        assert not campaign.progress.ended
        async with campaign:
            async for event in campaign:
                if isinstance(event, JobChanged) and event.status is JobStatus.RUNNING:
                    running = campaign.progress
                    assert running.counts[JobStatus.RUNNING] >= 1
                    assert not running.ended
                    assert running.outcome.startswith("running:")
        assert campaign.progress.ended
        assert "20 Done" in str(campaign.progress)
        with pytest.raises(RuntimeError, match="runs once"):
            async with campaign:
                pass


@pytest.mark.parametrize("method", ["reschedule", "resubmit"])
async def test_resume_after_an_interruption_finishes_the_campaign(
    tmp_path: Path, method: str
) -> None:
    failing = set(range(0, 40, 4))
    grid = SimulatedGrid(fail_once=failing)
    policy = FailurePolicy(delay=0, method=method)
    path = tmp_path / "c.db"
    async with client(grid) as dirac:
        campaign = dirac.campaign(parametric(40), journal=path, policy=policy)
        async with campaign:
            async for event in campaign:
                if isinstance(event, RetryStarted):
                    break  # leaving the block stops the campaign, as Ctrl-C would
    assert not campaign.progress.ended
    async with client(grid) as dirac:
        resumed = await dirac.campaign(parametric(40), journal=path, policy=policy).run()
    assert resumed.complete
    assert resumed.retries == len(failing)
    assert all(grid.runs[i] == (2 if i in failing else 1) for i in range(40))
    live = [j for j in grid.jobs.values() if j.status is JobStatus.DONE]
    assert sorted(j.index % STRIDE for j in live) == list(range(40))
    assert len(grid.confirmed()) == 40 + (len(failing) if method == "resubmit" else 0)


async def test_a_journal_of_another_campaign_is_refused(tmp_path: Path) -> None:
    grid = SimulatedGrid()
    await run_all(grid, 3, tmp_path / "c.db")
    with pytest.raises(JournalError, match="3 jobs, not 4"):
        await run_all(grid, 4, tmp_path / "c.db")


async def test_the_journal_read_back_for_the_report(tmp_path: Path) -> None:
    grid = SimulatedGrid(fail_once={1}, stall_once={2}, outputs=tmp_path / "grid")
    path = tmp_path / "c.db"
    policy = FailurePolicy(delay=0, max_failed_fraction=1)
    events = await run_all(grid, 4, path, dest=tmp_path / "out", policy=policy, name="scan")
    assert events[-1].progress.complete  # type: ignore[union-attr]
    data = read_report_data(path)
    assert (data.campaign, data.jobs, data.outcome) == ("scan", 4, "complete")
    assert data.ended is not None
    assert data.ended >= data.created
    # index 1 rescheduled (same ID), index 2 stalled, killed and resubmitted (a new ID)
    retries = sorted((r.attempt, r.job_id == r.new_job_id) for r in data.retries)
    assert retries == [(2, False), (2, True)]
    assert sorted(s.attempt for s in data.submissions) == [1, 1, 1, 1, 2]
    assert len(data.downloads) == 4
    assert all(d.ok and d.bytes > 0 for d in data.downloads)
    seen = {(t.job_id, t.attempt, t.status) for t in data.transitions}
    stalled = next(r for r in data.retries if r.job_id != r.new_job_id)
    assert (stalled.job_id, 1, "Stalled") in seen
    assert (stalled.new_job_id, 2, "Done") in seen
    assert current_statuses(data) == {JobStatus.DONE: 4}
    assert set(data.transitions.site) == {"LCG.Simulated.org", "ANY"}
    with pytest.raises(JournalError, match="no campaign journal"):
        read_report_data(tmp_path / "nope.db")


def test_a_campaign_runs_on_trio(tmp_path: Path) -> None:
    grid = SimulatedGrid(fail_once={2}, outputs=tmp_path / "grid")

    async def main() -> CampaignProgress:
        async with client(grid) as dirac:
            campaign = dirac.campaign(
                parametric(6), journal=tmp_path / "c.db", dest=tmp_path / "out", policy=NOW
            )
            return await campaign.run()

    progress = anyio.run(main, backend="trio")
    assert progress.complete
    assert progress.retries == 1
    assert progress.downloaded == 6


class _Outage(SimulatedGrid):
    """A grid whose service is down for its first submissions, reschedules and statuses."""

    def __init__(self, down: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.down = down
        self.refusals: Counter[str] = Counter()

    def _unavailable(self, method: str) -> None:
        if self.refusals[method] < self.down:
            self.refusals[method] += 1
            raise ServiceUnavailableError(f"{method}: down", status_code=503, retry_after=None)

    async def submit(self, chunk: SubmitChunk) -> list[int]:
        self._unavailable("submit")
        return await super().submit(chunk)

    async def reschedule(self, job_ids: Sequence[int]) -> ActionResult:
        self._unavailable("reschedule")
        return await super().reschedule(job_ids)


@pytest.mark.parametrize("method", ["reschedule", "resubmit"])
async def test_an_outage_makes_the_campaign_wait_and_carry_on(tmp_path: Path, method: str) -> None:
    # The gate gives up after 2 attempts, 6 times in a row for each kind of request: the
    # campaign waits and tries again by itself; no attempt of a job is used by the outage.
    grid = _Outage(12, fail_once={1, 5})
    limits = Limits(retry=RetryPolicy(max_attempts=2, initial=0.001, max_backoff=0.001))
    policy = FailurePolicy(delay=0, max_failed_fraction=1, method=method, max_attempts=2)
    async with AsyncDirac(grid, limits=limits, track_config=FAST) as dirac:
        campaign = dirac.campaign(parametric(10), journal=tmp_path / "c.db", policy=policy)
        progress = await campaign.run()
    assert progress.complete
    assert progress.retries == 2
    assert grid.refusals["submit"] == 12
    if method == "reschedule":
        assert grid.refusals["reschedule"] == 12
    assert len(grid.confirmed()) == 10 + (2 if method == "resubmit" else 0)
