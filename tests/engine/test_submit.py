"""Tests of aiodirac._engine.submit._submitter.Submitter on the in-memory backend: exactly once through faults."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from _chunks import make_chunk, make_chunks

from aiodirac._engine._gate import Limits, RequestGate
from aiodirac._engine._retry import RetryPolicy, retry_test_mode
from aiodirac._engine.submit._submitter import SubmitConfig, SubmittedJob, Submitter
from aiodirac._exceptions import (
    AuthenticationError,
    ConfigurationError,
    JobDescriptionError,
    JournalError,
    SubmissionError,
)
from aiodirac._job._spec import SubmitChunk
from aiodirac._job._status import JobStatus
from aiodirac._journal import ChunkState, Journal
from aiodirac.backends._protocol import Capabilities
from aiodirac.testing._memory import Faults, MemoryBackend

FAST = SubmitConfig(campaign="test")
FAST_LIMITS = Limits(max_in_flight=8, rate=10_000, burst=1_000)


def assert_exactly_once(backend: MemoryBackend, total: int, ids: list[int], group: str) -> None:
    """Each index confirmed once, the IDs are those jobs, nothing left Submitting."""
    confirmed = backend.confirmed(group)
    indices = Counter(job.index for job in confirmed)
    assert sorted(indices) == list(range(total))
    assert set(indices.values()) == {1}
    assert ids == [job.job_id for job in sorted(confirmed, key=lambda j: j.index)]
    left = [j.job_id for j in backend.jobs.values() if j.status is JobStatus.SUBMITTING]
    assert left == []


async def test_submits_chunks_in_index_order_with_campaign_group(tmp_path: Path) -> None:
    backend = MemoryBackend()
    async with await Journal.open(tmp_path / "j.db") as journal:
        submitter = Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal)
        ids = await submitter.submit(list(make_chunks(95)))
        campaign = await journal.campaign()
        assert campaign is not None
        assert campaign.owns_group
        assert campaign.job_group.startswith("test-")
        assert len(campaign.job_group) <= 32
        assert_exactly_once(backend, 95, ids, campaign.job_group)
        assert await journal.job_ids() == ids
        assert (await journal.summary()).chunks == {ChunkState.CONFIRMED: 5}
    report = submitter.report
    assert report is not None
    assert report.confirmed == 95
    assert report.failures == ()
    # 5 submits, confirmations batched; no reply was lost, so there is nothing to sweep.
    assert backend.calls["submit"] == 5
    assert backend.calls["confirm"] <= 5
    assert backend.calls["find_unconfirmed"] == 0
    assert backend.jobs[ids[0]].attributes["JobGroup"] == campaign.job_group


async def test_user_job_group_is_kept() -> None:
    backend = MemoryBackend()
    ids = await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS)).submit(
        make_chunk(range(3), job_group="mine")
    )
    assert [backend.jobs[i].job_group for i in ids] == ["mine"] * 3


async def test_stream_gives_jobs_as_confirmed() -> None:
    backend = MemoryBackend(faults=Faults(latency=0.001))
    seen: list[SubmittedJob] = []
    async with Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS)).stream(
        list(make_chunks(60))
    ) as submitted:
        async for job in submitted:
            seen.append(job)
            # Given only once confirmed.
            assert backend.jobs[job.job_id].status is JobStatus.RECEIVED
    assert sorted(s.index for s in seen) == list(range(60))
    assert {s.name for s in seen} >= {"scan-0", "scan-59"}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_exactly_once_through_faults(tmp_path: Path, seed: int) -> None:
    """Resets, 503s with Retry-After, lost replies: every job once, leftovers swept."""
    faults = Faults(transient=0.1, unavailable=0.05, ambiguous=0.1, seed=seed)
    backend = MemoryBackend(faults=faults)
    async with await Journal.open(tmp_path / "j.db") as journal:
        with retry_test_mode():
            ids = await Submitter(
                backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal
            ).submit(list(make_chunks(400)))
        campaign = await journal.campaign()
        assert campaign is not None
        assert_exactly_once(backend, 400, ids, campaign.job_group)
        jobs = await journal.jobs()
        assert sorted(jobs) == list(range(400))
        assert len({job_id for job_id, _ in jobs.values()}) == 400
        assert all(ok for _, ok in jobs.values())
        swept = await journal.swept_ids()
    killed = [j for j in backend.jobs.values() if j.status is JobStatus.KILLED]
    assert sorted(j.job_id for j in killed) == swept
    assert all(j.minor_status.startswith("Swept by aiodirac") for j in killed)
    # The lost replies did create duplicates, and every one of them was swept.
    assert len(backend.jobs) == 400 + len(killed)
    assert killed


async def test_in_flight_and_rate_limits_hold() -> None:
    backend = MemoryBackend(faults=Faults(latency=0.01))
    config = SubmitConfig(campaign="c")
    config_limits = Limits(max_in_flight=3, rate=10_000, burst=100)
    await Submitter(backend, config, gate=RequestGate(config_limits)).submit(list(make_chunks(400)))
    assert backend.max_concurrency["*"] == 3
    assert backend.max_concurrency["submit"] == 3


def test_rate_limit_paces_requests_on_mock_clock() -> None:
    from trio.testing import MockClock

    async def main() -> float:
        backend = MemoryBackend()
        config = SubmitConfig(campaign="c")
        config_limits = Limits(max_in_flight=8, rate=5, burst=1)
        start = anyio.current_time()
        await Submitter(backend, config, gate=RequestGate(config_limits)).submit(
            list(make_chunks(200))
        )
        assert backend.calls["submit"] == 10
        return anyio.current_time() - start

    clock = MockClock(autojump_threshold=0)
    elapsed = anyio.run(main, backend="trio", backend_options={"clock": clock})
    # 10 submits + >=1 confirm + 1 sweep query at 5/s, the first one free.
    assert elapsed >= (12 - 1) / 5 - 1e-6


async def test_refused_chunk_fails_alone(tmp_path: Path) -> None:
    backend = MemoryBackend(
        refuse=lambda c: "JDL syntax error" if 45 in c.indices else None,
    )
    async with await Journal.open(tmp_path / "j.db") as journal:
        submitter = Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal)
        with pytest.raises(SubmissionError, match="1 chunk") as info:
            await submitter.submit(list(make_chunks(100)))
        assert len(info.value.submitted) == 80
        assert info.value.failures == ("jobs 40-59 (scan-40 .. scan-59): JDL syntax error",)
        assert (await journal.chunk(40, 59)).state is ChunkState.FAILED  # type: ignore[union-attr]
        # A refused chunk created nothing: no leftovers to wait for or sweep.
        assert backend.calls["find_unconfirmed"] == 0
        # The next run, once the job is fixed, sends only what is missing.
        backend.refuse = None
        ids = await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal).submit(
            list(make_chunks(100))
        )
        campaign = await journal.campaign()
        assert campaign is not None
        assert_exactly_once(backend, 100, ids, campaign.job_group)
        assert backend.calls["submit"] == 5 + 1


async def test_fatal_error_stops_the_run() -> None:
    class Unauthorized(MemoryBackend):
        async def submit(self, chunk: SubmitChunk) -> list[int]:
            raise AuthenticationError("token expired: run 'dirac login'", status_code=401)

    with pytest.raises(AuthenticationError, match="dirac login"):
        await Submitter(Unauthorized(), FAST).submit(list(make_chunks(100)))


async def test_service_down_past_deadline_raises_submission_error() -> None:
    backend = MemoryBackend(faults=Faults(unavailable=1.0, methods=frozenset({"submit"})))
    config = SubmitConfig(campaign="c")
    config_limits = Limits(retry=RetryPolicy(deadline=30), rate=1000, burst=100)
    with retry_test_mode(), pytest.raises(SubmissionError, match="past the retry deadline") as info:
        await Submitter(backend, config, gate=RequestGate(config_limits)).submit(
            list(make_chunks(40))
        )
    assert info.value.submitted == ()
    assert "503" in str(info.value.__cause__)


@pytest.mark.parametrize("crash_after", [0, 1, 2, 5, 13, 21, 34])
async def test_cancellation_leaves_a_journal_the_next_run_completes(
    tmp_path: Path, crash_after: int
) -> None:
    """Cancel after N backend calls (at any phase), then run again: exactly once."""
    faults = Faults(latency=0.002, ambiguous=0.1, seed=crash_after)
    backend = MemoryBackend(faults=faults)
    total = 800
    cancelled = False

    async def watchdog(scope: anyio.CancelScope) -> None:
        nonlocal cancelled
        while sum(backend.calls.values()) < crash_after:
            await anyio.sleep(0.0005)
        cancelled = True
        scope.cancel()

    async with await Journal.open(tmp_path / "j.db") as journal:
        with retry_test_mode():
            async with anyio.create_task_group() as tg:
                tg.start_soon(watchdog, tg.cancel_scope)
                await Submitter(
                    backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal
                ).submit(list(make_chunks(total)))
                tg.cancel_scope.cancel()
        summary = await journal.summary()
        # Consistent: every recorded job is a real job of this campaign.
        for index, (job_id, confirmed) in (await journal.jobs()).items():
            assert backend.jobs[job_id].index == index
            assert (backend.jobs[job_id].status is JobStatus.RECEIVED) == confirmed or (
                not confirmed
            )
        assert summary.jobs_confirmed <= total
        with retry_test_mode():
            submitter = Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal)
            ids = await submitter.submit(list(make_chunks(total)))
        campaign = await journal.campaign()
        assert campaign is not None
        assert_exactly_once(backend, total, ids, campaign.job_group)
        report = submitter.report
        assert report is not None
        assert report.already + report.resumed + report.confirmed == total
    assert cancelled or crash_after == 0


class Crash(BaseException):
    """Stands for kill -9: nothing after it runs, no cleanup code either."""


class CrashingJournal(Journal):
    """A journal whose process dies right before the given write."""

    def __init__(self, path: Path, die_before: str, after_calls: int) -> None:
        super().__init__(path)
        self.die_before = die_before
        self.left = after_calls

    def _maybe_die(self, name: str) -> None:
        if name == self.die_before:
            self.left -= 1
            if self.left < 0:
                raise Crash(name)

    async def chunk_created(self, chunk_id: int, jobs: object) -> None:  # type: ignore[override]
        self._maybe_die("chunk_created")
        await super().chunk_created(chunk_id, jobs)  # type: ignore[arg-type]

    async def chunks_confirmed(self, chunk_ids: object) -> None:  # type: ignore[override]
        self._maybe_die("chunks_confirmed")
        await super().chunks_confirmed(chunk_ids)  # type: ignore[arg-type]

    async def chunk_sent(self, *args: object) -> object:  # type: ignore[override]
        self._maybe_die("chunk_sent")
        return await super().chunk_sent(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("die_before", "after"),
    [
        ("chunk_sent", 3),
        ("chunk_created", 0),
        ("chunk_created", 4),
        ("chunks_confirmed", 0),
        ("chunks_confirmed", 2),
    ],
)
async def test_crash_between_phases_then_resume(
    tmp_path: Path, die_before: str, after: int
) -> None:
    """Jobs created but never recorded are swept; recorded ones are confirmed, not resent."""
    backend = MemoryBackend(faults=Faults(latency=0.001))
    path = tmp_path / "j.db"
    total = 200
    journal = CrashingJournal(path, die_before, after)
    await journal._ensure_open()
    # One chunk per confirmation, so that there are many moments to die at.
    config = SubmitConfig(campaign="t", confirm_batch=20)
    config_limits = Limits(max_in_flight=8, rate=10_000, burst=1_000)
    with pytest.raises((Crash, BaseExceptionGroup)):
        await Submitter(backend, config, gate=RequestGate(config_limits), journal=journal).submit(
            list(make_chunks(total))
        )
    # A dead process releases its file lock; nothing else of it survives.
    journal.release_submit_lock()
    before = dict(backend.jobs)
    async with await Journal.open(path) as journal2:
        submitter = Submitter(backend, config, gate=RequestGate(config_limits), journal=journal2)
        ids = await submitter.submit(list(make_chunks(total)))
        campaign = await journal2.campaign()
        assert campaign is not None
        assert_exactly_once(backend, total, ids, campaign.job_group)
        swept = await journal2.swept_ids()
    report = submitter.report
    assert report is not None
    if die_before == "chunk_created":
        assert swept, "the jobs of the unrecorded chunk must be swept"
    assert set(swept) <= set(before)
    assert report.swept == len(swept)


async def test_user_group_sweep_spares_young_leftovers() -> None:
    backend = MemoryBackend()
    # Leftovers of the same user's group: one old, one created a moment ago (in flight elsewhere).
    old = await backend.submit(make_chunk([900], job_group="shared"))
    young = await backend.submit(make_chunk([901], job_group="shared"))
    # The sweep compares with the real clock: age the "old" leftover into the past.
    backend.jobs[old[0]].submitted = datetime.now(UTC) - timedelta(hours=1)
    config = SubmitConfig(campaign="c", job_group="shared", clock_skew=7200)
    config_limits = Limits(rate=1000, burst=100)
    submitter = Submitter(backend, config, gate=RequestGate(config_limits))
    # Lost replies, so that this run has a reason to sweep (their leftovers are young too).
    backend.set_faults(Faults(ambiguous=0.3, seed=5, methods=frozenset({"submit"})))
    with retry_test_mode():
        ids = await submitter.submit(list(make_chunks(200)))
    assert len(ids) == 200
    assert backend.jobs[old[0]].status is JobStatus.KILLED
    assert backend.jobs[young[0]].status is JobStatus.SUBMITTING
    lost = [j for j in backend.jobs.values() if j.status is JobStatus.SUBMITTING and j.index < 200]
    assert lost
    report = submitter.report
    assert report is not None
    assert (report.swept, report.unswept) == (1, 1 + len(lost))
    assert "next run" in str(report)


async def test_other_campaigns_jobs_are_never_swept() -> None:
    backend = MemoryBackend()
    theirs = await backend.submit(make_chunk(range(5), job_group="another-campaign"))
    backend.set_faults(Faults(ambiguous=0.5, seed=1, methods=frozenset({"submit"})))
    with retry_test_mode():
        await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS)).submit(list(make_chunks(200)))
    assert backend.calls["find_unconfirmed"] == 1  # the sweep did run
    assert any(j.status is JobStatus.KILLED for j in backend.jobs.values())
    assert all(backend.jobs[i].status is JobStatus.SUBMITTING for i in theirs)


async def test_journal_of_another_campaign_is_refused(tmp_path: Path) -> None:
    backend = MemoryBackend()
    async with await Journal.open(tmp_path / "j.db") as journal:
        await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal).submit(
            list(make_chunks(20))
        )
        with pytest.raises(JournalError, match="different job description"):
            await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal).submit(
                list(make_chunks(20, name="other"))
            )
        with pytest.raises(JournalError, match="belongs to campaign"):
            await Submitter(backend, SubmitConfig(campaign="else"), journal=journal).submit(
                list(make_chunks(20))
            )


async def test_async_generator_is_read_lazily() -> None:
    backend = MemoryBackend(faults=Faults(latency=0.001))
    config = SubmitConfig(campaign="c")
    config_limits = Limits(max_in_flight=2, rate=10_000, burst=100)
    pulled = 0
    high_water = 0

    async def chunks() -> AsyncIterator[SubmitChunk]:
        nonlocal pulled, high_water
        for start in range(0, 10_000, 20):
            pulled += 1
            confirmed = sum(1 for j in backend.jobs.values() if j.was_confirmed) // 20
            high_water = max(high_water, pulled - confirmed)
            yield make_chunk(range(start, start + 20))

    ids = await Submitter(backend, config, gate=RequestGate(config_limits)).submit(chunks())
    assert len(ids) == 10_000
    # Never more chunks ahead of the confirmed ones than the window: bounded buffering.
    caps = backend.capabilities
    window = config.window_for(caps.max_jobs_per_submit, caps.max_ids_per_update, config_limits)
    assert window < 500 // 4
    assert high_water <= window + 2


def sync_chunks(total: int) -> Iterator[SubmitChunk]:
    yield from make_chunks(total)


async def test_sync_generator_and_single_chunk() -> None:
    backend = MemoryBackend()
    assert (
        len(await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS)).submit(sync_chunks(50)))
        == 50
    )
    assert (
        len(await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS)).submit(make_chunk([7])))
        == 1
    )
    assert await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS)).submit([]) == []


async def test_duplicate_indices_are_refused_before_sending() -> None:
    backend = MemoryBackend()
    with pytest.raises(JobDescriptionError, match="two chunks start at global index 0"):
        await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS)).submit(
            [make_chunk(range(3)), make_chunk(range(3))]
        )
    assert backend.calls["submit"] == 0


def test_config_validation() -> None:
    with pytest.raises(ConfigurationError, match="campaign name"):
        SubmitConfig(campaign="bad name;")
    with pytest.raises(ConfigurationError, match="job group"):
        SubmitConfig(job_group="x" * 33)
    with pytest.raises(ConfigurationError, match="max_in_flight"):
        Limits(max_in_flight=0)
    with pytest.raises(ConfigurationError, match="rate"):
        Limits(rate=0)
    with pytest.raises(ConfigurationError, match="burst"):
        Limits(burst=0)


def test_confirm_batch_and_window_follow_the_cost_model() -> None:
    # as many IDs as the backend takes, up to 500 (benchmarks/confirm_cost.py)
    assert SubmitConfig().confirm_batch_for(20, 1000) == 500
    assert SubmitConfig().confirm_batch_for(20, 300) == 300  # the backend's cap
    assert SubmitConfig().confirm_batch_for(1000, 10_000) == 1000  # one chunk at least
    assert SubmitConfig(confirm_batch=7).confirm_batch_for(20, 1000) == 7
    # in flight + two batches of chunks (8 + 2 x 25), at least Limits.window
    assert SubmitConfig().window_for(20, 1000, Limits()) == 58
    assert SubmitConfig(confirm_batch=30).window_for(20, 1000, Limits(max_in_flight=2)) == 8
    assert SubmitConfig(confirm_batch=200).window_for(20, 1000, Limits(max_in_flight=2)) == 22
    assert SubmitConfig().window_for(1000, 10_000, Limits()) == 32


def test_runs_on_trio() -> None:
    async def main() -> int:
        backend = MemoryBackend(faults=Faults(ambiguous=0.2, seed=4))
        with retry_test_mode():
            ids = await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS)).submit(
                list(make_chunks(100))
            )
        return len(ids)

    assert anyio.run(main, backend="trio") == 100


async def test_confirmations_never_exceed_the_update_limit() -> None:
    backend = MemoryBackend(
        capabilities=Capabilities(
            max_jobs_per_submit=20, max_ids_per_status=100, max_ids_per_update=50
        ),
        faults=Faults(latency=0.002),
    )
    ids = await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS)).submit(
        list(make_chunks(1000))
    )
    assert len(ids) == 1000
    # Batches of 2 chunks (40 IDs) at most: 50 would be exceeded by a third one.
    assert backend.calls["confirm"] >= 25


async def test_one_submission_at_a_time_per_journal(tmp_path: Path) -> None:
    backend = MemoryBackend(faults=Faults(latency=0.01))
    refused: list[JournalError] = []
    async with await Journal.open(tmp_path / "j.db") as journal:
        async with anyio.create_task_group() as tg:
            first = Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal)
            tg.start_soon(first.submit, list(make_chunks(200)))
            with anyio.fail_after(30):
                while not backend.calls["submit"]:  # the first one holds the journal now
                    await anyio.sleep(0)
            try:
                await Submitter(
                    backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal
                ).submit(list(make_chunks(20)))
            except JournalError as exc:
                refused.append(exc)
        assert len(await journal.job_ids()) == 200
    assert "already running" in str(refused[0])


class OverlapRecorder(MemoryBackend):
    """Records whether a confirmation ever ran while a submission was in flight."""

    def __init__(self) -> None:
        super().__init__(faults=Faults(latency=0.003))
        self.submitting = 0
        self.overlaps = 0

    async def submit(self, chunk: SubmitChunk) -> list[int]:
        self.submitting += 1
        try:
            return await super().submit(chunk)
        finally:
            self.submitting -= 1

    async def confirm(self, job_ids: Sequence[int]) -> None:
        if self.submitting:
            self.overlaps += 1
        await super().confirm(job_ids)
        if self.submitting:
            self.overlaps += 1


@pytest.mark.parametrize("exclusive", [True, False])
async def test_exclusive_confirmation(exclusive: bool) -> None:
    backend = OverlapRecorder()
    config = SubmitConfig(
        campaign="x",
        exclusive_confirm=exclusive,
        confirm_linger=0,  # many small confirmations: many chances to overlap
    )
    config_limits = Limits(max_in_flight=8, rate=10_000, burst=1_000)
    ids = await Submitter(backend, config, gate=RequestGate(config_limits)).submit(
        list(make_chunks(600))
    )
    assert len(ids) == 600
    if exclusive:
        assert backend.overlaps == 0
    else:
        assert backend.overlaps > 0  # the test can tell the difference


async def test_confirmations_linger_to_carry_many_chunks() -> None:
    async def confirms(linger: float) -> int:
        backend = MemoryBackend(faults=Faults(latency=0.005))
        config = SubmitConfig(confirm_linger=linger)
        gate = RequestGate(Limits(max_in_flight=4, rate=10_000, burst=100))
        ids = await Submitter(backend, config, gate=gate).submit(list(make_chunks(3000)))
        assert len(ids) == 3000
        return backend.calls["confirm"]

    eager, patient = await confirms(0), await confirms(5)
    assert patient < eager
    # With a long linger, a batch closes only when it is full: 500 IDs by default (25 chunks
    # of 20; the window holds 4 in flight + two batches, so the others go on being sent
    # meanwhile); 150 chunks need 6 confirmations.
    assert patient == 6


async def test_leaving_the_stream_early_cancels_and_a_rerun_completes(tmp_path: Path) -> None:
    backend = MemoryBackend(faults=Faults(latency=0.002))
    async with await Journal.open(tmp_path / "j.db") as journal:
        seen = 0
        async with Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal).stream(
            list(make_chunks(2000))
        ) as submitted:
            async for _ in submitted:
                seen += 1
                if seen == 30:
                    break
        partial = await journal.summary()
        assert 30 <= partial.jobs_confirmed < 2000
        ids = await Submitter(backend, FAST, gate=RequestGate(FAST_LIMITS), journal=journal).submit(
            list(make_chunks(2000))
        )
        campaign = await journal.campaign()
        assert campaign is not None
        assert_exactly_once(backend, 2000, ids, campaign.job_group)
