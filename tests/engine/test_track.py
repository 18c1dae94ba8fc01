"""Tests of aiodirac._engine.track._tracker.Tracker against the in-memory backend, on trio's virtual clock.

Each scenario runs with ``anyio.run(..., backend="trio")`` and ``MockClock(autojump_threshold=0)``:
the tracker's sleeps and backoffs take no wall time, and the clock readings are exact.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from _tracking import FAST, make_jobs, memory, run

from aiodirac._engine._gate import Limits, RequestGate
from aiodirac._engine._retry import RetryPolicy
from aiodirac._engine.track._events import (
    JobEvent,
    JobVanished,
    PollFailed,
    PollRecovered,
    TrackEvent,
    TrackSummary,
)
from aiodirac._engine.track._tracker import TrackConfig, Tracker, TrackingTimeoutError
from aiodirac._exceptions import (
    AuthenticationError,
    ConfigurationError,
    DiracError,
    NetworkError,
    ServiceUnavailableError,
)
from aiodirac._job._status import JobState, JobStatus
from aiodirac._journal import Journal
from aiodirac.testing._memory import Faults, MemoryBackend


async def drive(backend: MemoryBackend, ids: list[int], every: float, steps: int = 6) -> None:
    """Move every job one step along the healthy path each ``every`` seconds, to Done."""
    for _ in range(steps):
        await anyio.sleep(every)
        backend.advance(ids)


def job_events(events: Iterable[TrackEvent]) -> list[JobEvent]:
    return [event for event in events if isinstance(event, JobEvent)]


class ListJournal:
    """A journal that keeps what it is told in a dict, and counts the batches."""

    def __init__(self) -> None:
        self.states: dict[int, JobState] = {}
        self.batches: list[int] = []

    async def record_states(self, states: Iterable[JobState]) -> None:
        batch = list(states)
        self.batches.append(len(batch))
        for state in batch:
            self.states[state.job_id] = state

    async def last_states(self) -> dict[int, JobState]:
        return dict(self.states)


# -- events -----------------------------------------------------------------------------------


def test_one_event_per_change_in_order_and_the_stream_ends_when_all_are_final() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 30)
        tracker = Tracker(backend, FAST)
        seen: list[TrackEvent] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(drive, backend, ids, 5.0)
            async with tracker.track(ids) as stream:
                async for event in stream:
                    seen.append(event)
                summary = stream.summary
        events = job_events(seen)
        assert len(events) == len(seen)  # no failures, nothing vanished
        by_job: dict[int, list[JobEvent]] = {}
        for event in events:
            by_job.setdefault(event.job_id, []).append(event)
        assert set(by_job) == set(ids)
        path = [
            JobStatus.RECEIVED,
            JobStatus.CHECKING,
            JobStatus.WAITING,
            JobStatus.MATCHED,
            JobStatus.RUNNING,
            JobStatus.COMPLETING,
            JobStatus.DONE,
        ]
        for job_events_ in by_job.values():
            # Driven every 5 s, polled at least every 4 s once changes flow: every step is seen.
            assert [e.status for e in job_events_] == path
            assert job_events_[0].old is None
            for before, after in itertools.pairwise(job_events_):
                assert after.old == before.new
                assert after.seen >= before.seen
            assert job_events_[-1].final
            assert job_events_[-1].site == "Memory.Local.site"
        assert summary.done
        assert summary.final == summary.total == 30
        assert summary.counts == {JobStatus.DONE: 30}
        assert summary.events == len(events)

    run(main)


def test_unchanged_jobs_give_no_event_and_final_jobs_are_not_polled() -> None:
    async def main() -> None:
        backend = memory(page=10)
        ids = await make_jobs(backend, 25)
        backend.advance(ids[:15], to=JobStatus.DONE)
        asked: list[int] = []
        real_status = backend.status

        async def spy(job_ids: Any) -> dict[int, JobState]:
            asked.extend(job_ids)
            return await real_status(job_ids)

        backend.status = spy  # type: ignore[method-assign]
        tracker = Tracker(backend, FAST)
        async with tracker.track(ids) as stream:
            events: list[TrackEvent] = []
            with anyio.move_on_after(30):
                async for event in stream:
                    events.append(event)
            # 25 first sights, then nothing: the stream is still open (10 jobs are Received).
            assert len(events) == 25
            assert stream.pending == frozenset(ids[15:])
            assert stream.summary.cycles > 3
            asked_before = len(asked)
            backend.advance(ids[15:], to=JobStatus.DONE)
            async for event in stream:
                events.append(event)
        # The first cycle asked all 25 (3 pages of 10); later ones only the 10 unfinished.
        assert sorted(asked[:25]) == ids
        assert set(asked[25:]) == set(ids[15:])
        assert len(asked) > asked_before
        assert len(events) == 35

    run(main)


def test_pages_of_the_backend_limit_all_in_flight_together() -> None:
    async def main() -> None:
        backend = memory(page=100, latency=0.5)
        ids = await make_jobs(backend, 950)
        backend.set_faults(Faults(latency=0.5))
        tracker = Tracker(backend, FAST, gate=RequestGate(Limits(max_in_flight=10, burst=10)))
        calls_before = backend.calls["status"]
        async with tracker.track(ids) as stream:
            async for _ in stream:
                if stream.summary.cycles == 1:
                    break
        # 950 IDs, 100 per page: 10 requests, all ten waiting on the latency at once.
        assert backend.calls["status"] - calls_before == 10
        assert backend.max_concurrency["status"] == 10

    run(main)


def test_page_size_override_and_its_limit() -> None:
    async def main() -> None:
        backend = memory(page=100)
        ids = await make_jobs(backend, 50)
        tracker = Tracker(backend, TrackConfig(page_size=7))
        assert tracker.page_size == 7
        async with tracker.track(ids) as stream:
            async for _ in stream:
                break
            assert stream.summary.requests == 8

    run(main)
    with pytest.raises(ConfigurationError, match="page_size"):
        Tracker(memory(page=100), TrackConfig(page_size=101))


def test_adaptive_interval_grows_while_nothing_changes_and_resets_on_change() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 3)
        stamps: list[float] = []
        real_status = backend.status

        async def spy(job_ids: Any) -> dict[int, JobState]:
            stamps.append(anyio.current_time())
            return await real_status(job_ids)

        backend.status = spy  # type: ignore[method-assign]
        tracker = Tracker(backend, FAST)
        start = anyio.current_time()
        async with tracker.track(ids) as stream:
            with anyio.move_on_after(40):
                async for _ in stream:
                    pass
            backend.advance(ids)  # a change at t=40: the interval drops back to 1 s
            with anyio.move_on_after(20):
                async for _ in stream:
                    pass
        gaps = [round(b - a, 6) for a, b in itertools.pairwise(stamps)]
        # t=0 first sight (change) -> 1 s; then no change: 2, 4, 8, 8, 8 ...
        assert gaps[:6] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
        assert all(g <= 8.0 for g in gaps)
        after = [s - start for s in stamps if s - start > 40]
        # The change is seen at the first poll after t=40; then 1 s, 2 s, 4 s.
        seen_at = after[0]
        assert 40 < seen_at <= 48
        assert [round(b - a, 6) for a, b in itertools.pairwise(after)][:2] == [1.0, 2.0]

    run(main)


# -- failures ---------------------------------------------------------------------------------


def test_poll_failures_are_events_the_state_is_kept_and_tracking_resumes() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 20)
        backend.advance(ids, to=JobStatus.RUNNING)
        config = TrackConfig(
            min_interval=1, max_interval=4, retry=RetryPolicy(math.inf, initial=2, max_backoff=16)
        )
        tracker = Tracker(backend, config)
        events: list[TrackEvent] = []
        summaries: list[TrackSummary] = []

        async def outage() -> None:
            await anyio.sleep(10)
            backend.set_faults(Faults(transient=1.0, methods=frozenset({"status"})))
            await anyio.sleep(120)
            backend.advance(ids, to=JobStatus.DONE)  # finished while the service was down
            backend.set_faults(Faults())

        async with anyio.create_task_group() as tg:
            tg.start_soon(outage)
            async with tracker.track(ids) as stream:
                async for event in stream:
                    events.append(event)
                    summaries.append(stream.summary)
                    if isinstance(event, PollFailed):
                        # During the outage the last known states stay as they were.
                        assert all(s.status is JobStatus.RUNNING for s in stream.states.values())
                final = stream.final_states()
        failed = [e for e in events if isinstance(e, PollFailed)]
        assert len(failed) >= 5
        assert [e.attempt for e in failed] == list(range(1, len(failed) + 1))
        assert all(isinstance(e.error, NetworkError) for e in failed)
        assert all(0 <= e.next_retry_in <= 16 for e in failed)
        assert any(s.failing for s in summaries)
        recovered = [e for e in events if isinstance(e, PollRecovered)]
        assert len(recovered) == 1
        assert recovered[0].failed_attempts == len(failed)
        assert 110 <= recovered[0].outage <= 140
        # No job was ever reported Failed; every job's last event is its true final status.
        changes = job_events(events)
        assert all(e.status is not JobStatus.FAILED for e in changes)
        assert {e.job_id: e.status for e in changes if e.final} == dict.fromkeys(
            ids, JobStatus.DONE
        )
        assert final == {i: backend.jobs[i].state() for i in ids}

    run(main)


def test_retry_after_is_honoured() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 2)
        backend.set_faults(Faults(unavailable=1.0, retry_after=30.0, methods=frozenset({"status"})))
        tracker = Tracker(backend, TrackConfig(retry=RetryPolicy(initial=1, max_backoff=2)))
        async with tracker.track(ids) as stream:
            event = await stream.__anext__()
            assert isinstance(event, PollFailed)
            assert isinstance(event.error, ServiceUnavailableError)
            assert event.next_retry_in == 30.0
            started = anyio.current_time()
            event = await stream.__anext__()
            assert isinstance(event, PollFailed)
            assert anyio.current_time() - started == pytest.approx(30.0)

    run(main)


def test_partial_cycle_failure_keeps_the_answers_that_came() -> None:
    async def main() -> None:
        backend = memory(page=5)
        ids = await make_jobs(backend, 10)
        real_status = backend.status

        async def half_broken(job_ids: Any) -> dict[int, JobState]:
            if ids[0] in job_ids and anyio.current_time() < 100:
                raise NetworkError("connection reset")
            return await real_status(job_ids)

        backend.status = half_broken  # type: ignore[method-assign]
        async with Tracker(backend, FAST).track(ids) as stream:
            first = [await stream.__anext__() for _ in range(6)]
        assert {e.job_id for e in job_events(first)} == set(ids[5:])
        failed = [e for e in first if isinstance(e, PollFailed)]
        assert failed
        assert (failed[0].failed_pages, failed[0].total_pages) == (1, 2)

    run(main)


def test_a_non_transient_error_ends_the_stream_with_that_error_unwrapped() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 3)

        async def refused(job_ids: Any) -> dict[int, JobState]:
            raise AuthenticationError("token expired; run dirac login", status_code=401)

        backend.status = refused  # type: ignore[method-assign]

        async def consume() -> None:
            async with Tracker(backend, FAST).track(ids) as stream:
                async for _ in stream:
                    pass

        with pytest.raises(AuthenticationError, match="dirac login"):
            await consume()

    run(main)


def test_the_retry_policy_may_give_up() -> None:
    async def main() -> None:
        backend = memory(transient=1.0, methods=frozenset({"status"}))
        ids = await make_jobs(backend, 3)
        policy = RetryPolicy(initial=1, max_backoff=1, max_attempts=4)
        events: list[TrackEvent] = []

        async def consume() -> None:
            async with Tracker(backend, TrackConfig(retry=policy)).track(ids) as stream:
                async for event in stream:
                    events.append(event)

        with pytest.raises(NetworkError):
            await consume()
        assert [e.attempt for e in events if isinstance(e, PollFailed)] == [1, 2, 3, 4]

    run(main)


def test_a_vanished_job_is_reported_once_and_no_longer_polled() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 4)
        tracker = Tracker(backend, FAST)
        events: list[TrackEvent] = []
        async with tracker.track(ids) as stream:
            async for event in stream:
                events.append(event)
                if len(events) == 4:
                    del backend.jobs[ids[0]]  # the server forgot it (e.g. deleted by an admin)
                    backend.advance(ids[1:], to=JobStatus.DONE)
            assert stream.vanished == {ids[0]}
            assert ids[0] not in stream.final_states()
            summary = stream.summary
        vanished = [e for e in events if isinstance(e, JobVanished)]
        assert len(vanished) == 1
        assert vanished[0].job_id == ids[0]
        assert vanished[0].last is not None
        assert vanished[0].last.status is JobStatus.RECEIVED
        assert (summary.vanished, summary.final, summary.total, summary.pending) == (1, 3, 4, 0)

    run(main)


# -- delivery -----------------------------------------------------------------------------------


def test_sync_and_async_callbacks_see_every_event_and_a_failing_one_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sync_seen: list[TrackEvent] = []
    async_seen: list[TrackEvent] = []

    async def main() -> list[TrackEvent]:
        backend = memory()
        ids = await make_jobs(backend, 5)

        def broken(event: TrackEvent) -> None:
            raise ValueError("callback bug")

        async def slow(event: TrackEvent) -> None:
            await anyio.sleep(0.1)
            async_seen.append(event)

        callbacks = [sync_seen.append, broken, slow]
        streamed: list[TrackEvent] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(drive, backend, ids, 3.0)
            async with Tracker(backend, FAST).track(ids, callbacks=callbacks) as stream:
                async for event in stream:
                    streamed.append(event)
        return streamed

    with caplog.at_level(logging.ERROR, logger="aiodirac.track"):
        streamed = run(main)
    assert len(streamed) == 35
    assert sync_seen == streamed
    assert async_seen == streamed
    failures = [r for r in caplog.records if "callback" in r.getMessage()]
    assert len(failures) == 35
    assert failures[0].exc_info is not None


def test_jobs_can_be_added_and_removed_while_tracking() -> None:
    async def main() -> None:
        backend = memory()
        first = await make_jobs(backend, 3)
        later = await make_jobs(backend, 2)
        events: list[TrackEvent] = []
        async with Tracker(backend, FAST).track(first, sealed=False) as stream:
            async for event in stream:
                events.append(event)
                if len(events) == 3:
                    backend.advance(first, to=JobStatus.DONE)
                if len(events) == 6:
                    # All three are final, but the stream is unsealed: it waits for more.
                    with anyio.move_on_after(100):
                        await stream.__anext__()
                    assert stream.summary.done
                    added_at = anyio.current_time()
                    assert stream.add([*later, first[0]]) == 2
                if len(events) == 8:
                    # Added jobs are polled at once, not after the grown interval.
                    assert anyio.current_time() - added_at < 0.01
                    assert stream.remove([later[0]]) == 1
                    assert stream.remove([later[0]]) == 0
                    backend.advance(later, to=JobStatus.DONE)
                    stream.seal()
            summary = stream.summary
        assert {e.job_id for e in job_events(events[8:])} == {later[1]}
        assert summary.total == 4
        assert later[0] not in stream.states

    run(main)


def test_a_slow_consumer_slows_polling_and_memory_stays_bounded() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 50)
        tracker = Tracker(backend, TrackConfig(min_interval=0.1, max_interval=0.1, buffer_size=4))
        flip = 0

        async def churn() -> None:
            nonlocal flip
            while True:
                await anyio.sleep(0.1)
                flip += 1
                for job_id in ids:
                    backend.jobs[job_id].minor_status = f"step {flip}"

        async with anyio.create_task_group() as tg:
            tg.start_soon(churn)
            async with tracker.track(ids) as stream:
                await anyio.sleep(60)  # the consumer reads nothing for a minute
                stats = stream._poller.send.statistics()
                # One batch of 4 events waits in the stream, the next batch waits to be sent.
                assert (stats.current_buffer_used, stats.max_buffer_size) == (1, 1)
                assert stats.tasks_waiting_send == 1
                # The first cycle's 50 events fill the buffer; polling waits for the consumer.
                assert stream.summary.cycles == 1
                for _ in range(10):
                    await stream.__anext__()
                    await anyio.sleep(1)
                assert stream.summary.cycles == 1
            tg.cancel_scope.cancel()

    run(main)


def test_leaving_the_block_or_cancelling_the_consumer_stops_polling_with_no_task_left() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 5)
        tracker = Tracker(backend, FAST)
        baseline = len(anyio.get_running_tasks())

        async with tracker.track(ids) as stream:
            await stream.__anext__()
            assert len(anyio.get_running_tasks()) > baseline
        assert len(anyio.get_running_tasks()) == baseline

        async def consumer() -> None:
            async with tracker.track(ids) as stream:
                async for _ in stream:
                    pass

        with anyio.move_on_after(50) as scope:
            await consumer()
        assert scope.cancelled_caught
        assert len(anyio.get_running_tasks()) == baseline
        calls = backend.calls["status"]
        await anyio.sleep(1000)
        assert backend.calls["status"] == calls

        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            await anyio.sleep(30)
            tg.cancel_scope.cancel()
        assert len(anyio.get_running_tasks()) == baseline
        calls = backend.calls["status"]
        await anyio.sleep(1000)
        assert backend.calls["status"] == calls

    run(main)


def test_an_error_in_the_block_comes_out_unwrapped() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 2)

        async def buggy_consumer() -> None:
            async with Tracker(backend, FAST).track(ids) as stream:
                await stream.__anext__()
                raise KeyError("consumer bug")

        with pytest.raises(KeyError, match="consumer bug"):
            await buggy_consumer()

    run(main)


def test_job_events_iterates_over_job_changes_only() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 2)
        backend.set_faults(Faults(transient=1.0, methods=frozenset({"status"})))

        async def heal() -> None:
            await anyio.sleep(20)
            backend.set_faults(Faults())
            backend.advance(ids, to=JobStatus.DONE)

        async with anyio.create_task_group() as tg:
            tg.start_soon(heal)
            async with Tracker(backend, FAST).track(ids) as stream:
                got = [event async for event in stream.job_events()]
        assert [e.status for e in got] == [JobStatus.DONE, JobStatus.DONE]
        assert stream.summary.poll_failures > 0

    run(main)


# -- wait, initial states, journal ------------------------------------------------------------------


def test_wait_returns_the_final_states() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 10)
        backend.advance(ids[:5], to=JobStatus.RUNNING)
        async with anyio.create_task_group() as tg:
            tg.start_soon(drive, backend, ids, 50.0, 6)
            finals = await Tracker(backend, FAST).wait(ids)
        assert finals == {i: backend.jobs[i].state() for i in ids}
        assert all(s.status is JobStatus.DONE for s in finals.values())

    run(main)


def test_wait_timeout_raises_a_typed_error_with_the_states_so_far() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 4)
        backend.advance(ids[:2], to=JobStatus.DONE)
        with pytest.raises(TrackingTimeoutError) as info:
            await Tracker(backend, FAST).wait(ids, timeout=30)
        exc = info.value
        assert isinstance(exc, TimeoutError)
        assert isinstance(exc, DiracError)
        assert exc.pending == tuple(ids[2:])
        assert {i: s.status for i, s in exc.states.items()} == {
            ids[0]: JobStatus.DONE,
            ids[1]: JobStatus.DONE,
            ids[2]: JobStatus.RECEIVED,
            ids[3]: JobStatus.RECEIVED,
        }
        assert "2 of 4 jobs" in str(exc)

    run(main)


def test_initial_final_states_are_not_polled_and_unchanged_ones_give_no_event() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 4)
        backend.advance(ids[:2], to=JobStatus.DONE)
        initial = {i: backend.jobs[i].state() for i in ids[:3]}
        asked: list[int] = []
        real_status = backend.status

        async def spy(job_ids: Any) -> dict[int, JobState]:
            asked.extend(job_ids)
            return await real_status(job_ids)

        backend.status = spy  # type: ignore[method-assign]
        async with Tracker(backend, FAST).track(ids, initial=initial) as stream:
            first = await stream.__anext__()
            assert isinstance(first, JobEvent)
            assert first.job_id == ids[3]
            assert first.old is None
            assert stream.summary.counts == {JobStatus.DONE: 2, JobStatus.RECEIVED: 2}
        assert set(asked) == set(ids[2:])

        # Everything final already: the stream ends at once, with no request.
        asked.clear()
        done = {i: backend.jobs[i].state() for i in ids[:2]}
        async with Tracker(backend, FAST).track(ids[:2], initial=done) as stream:
            assert [e async for e in stream] == []
        assert asked == []

    run(main)


def test_the_journal_records_once_per_cycle_and_a_restart_replays_nothing() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 6)
        journal = ListJournal()
        tracker = Tracker(backend, FAST, journal=journal)
        delivered: list[JobEvent] = []
        async with tracker.track(ids) as stream:
            async for event in stream.job_events():
                delivered.append(event)
                if len(delivered) == 6:
                    break
        assert len(delivered) == 6
        # Let the first cycle's journal write happen: it follows delivery.
        assert journal.batches == [6]
        assert set(journal.states) == set(ids)

        # "Restart": a new tracker on the same journal. Nothing changed, so no event is
        # replayed; then three jobs finish and exactly those three events come.
        backend.advance(ids[:3], to=JobStatus.DONE)
        restarted = Tracker(backend, FAST, journal=journal)
        again: list[JobEvent] = []
        async with restarted.track(ids) as stream:
            with anyio.move_on_after(60):
                async for event in stream.job_events():
                    again.append(event)
        assert sorted(e.job_id for e in again) == ids[:3]
        assert all(e.old is not None and e.old.status is JobStatus.RECEIVED for e in again)
        assert journal.batches[-1] == 3

        # Explicit initial states win over the journal's.
        fresh: list[JobEvent] = []
        async with restarted.track(ids[:1], initial={}) as stream:
            with anyio.move_on_after(1):
                fresh = [e async for e in stream.job_events()]
        assert fresh == []  # the journal said Done: not polled

    run(main)


# -- limits, config, asyncio ----------------------------------------------------------------------


def test_the_rate_limiter_and_capacity_limiter_pace_the_pages() -> None:
    async def main() -> None:
        backend = memory(page=10)
        ids = await make_jobs(backend, 40)
        backend.set_faults(Faults(latency=1.0))
        gate = RequestGate(Limits(rate=2.0, burst=1, max_in_flight=2))
        tracker = Tracker(backend, FAST, gate=gate)
        start = anyio.current_time()
        async with tracker.track(ids) as stream:
            for _ in range(40):
                await stream.__anext__()
            # 4 pages at 2 per second (burst 1): the last leaves at t=1.5, answers at t=2.5.
            assert anyio.current_time() - start == pytest.approx(2.5)
            assert gate.requests >= 4
        assert backend.max_concurrency["status"] == 2

    run(main)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_interval": -1},
        {"min_interval": 10, "max_interval": 5},
        {"growth": 0.5},
        {"buffer_size": -1},
        {"page_size": 0},
        {"max_interval": math.inf},
    ],
)
def test_config_refuses_values_out_of_range(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        TrackConfig(**kwargs)


def test_backoff_is_jittered_within_the_policy_and_honours_retry_after() -> None:
    config = TrackConfig(retry=RetryPolicy(initial=1, max_backoff=10))
    delays = [config.backoff(n) for n in range(1, 8) for _ in range(50)]
    assert all(0 <= d <= 10 for d in delays)
    assert max(config.backoff(4) for _ in range(200)) > 4
    assert config.backoff(1, retry_after=42) == 42
    assert not TrackConfig().gives_up(10_000, 10**6)
    assert TrackConfig(retry=RetryPolicy(deadline=60)).gives_up(3, 61)


async def test_tracking_on_asyncio() -> None:
    # Real time here: a stream that never ends must fail the test, not hang it.
    with anyio.fail_after(30):
        backend = memory()
        ids = await make_jobs(backend, 3)
        backend.advance(ids, to=JobStatus.RUNNING)
        tracker = Tracker(backend, TrackConfig(min_interval=0.01, max_interval=0.05))

        async def finish() -> None:
            await anyio.sleep(0.05)
            backend.advance(ids, to=JobStatus.DONE)

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish)
            async with tracker.track(ids) as stream:
                events = [e async for e in stream]
        assert [e.status for e in job_events(events)][-3:] == [JobStatus.DONE] * 3
        assert "3 jobs: 3 final" in repr(stream)
        assert "IDs per request" in repr(tracker)


async def test_a_campaign_restarted_on_the_real_journal_replays_no_event(tmp_path: Path) -> None:
    # Real time here: a stream that never ends must fail the test, not hang it.
    with anyio.fail_after(30):
        backend = memory()
        ids = await make_jobs(backend, 50)
        backend.advance(ids[:20], to=JobStatus.DONE)
        config = TrackConfig(min_interval=0.01, max_interval=0.02)
        path = tmp_path / "campaign.db"
        async with await Journal.open(path) as journal:
            async with Tracker(backend, config, journal=journal).track(ids) as stream:
                delivered = [await stream.__anext__() for _ in range(50)]
                # The cycle's states are recorded once its events are handed over.
                while stream.summary.cycles < 2:
                    await anyio.sleep(0.01)
            assert len(job_events(delivered)) == 50

        # The process "restarts": a new journal object on the same file, a new tracker.
        backend.advance(ids[20:], to=JobStatus.DONE)
        async with await Journal.open(path) as journal:
            assert len(await journal.last_states()) == 50
            restarted = Tracker(backend, config, journal=journal)
            async with restarted.track(ids) as stream:
                replayed = [e async for e in stream.job_events()]
            # Only the 30 jobs that changed since, each once, from the state the journal kept.
            assert sorted(e.job_id for e in replayed) == sorted(ids[20:])
            assert all(e.old is not None and e.old.status is JobStatus.RECEIVED for e in replayed)
            assert {s.status for s in (await journal.last_states()).values()} == {JobStatus.DONE}


async def test_on_asyncio_errors_come_out_unwrapped_and_no_task_is_left() -> None:
    # Real time here: a stream that never ends must fail the test, not hang it.
    with anyio.fail_after(30):
        backend = memory()
        ids = await make_jobs(backend, 3)
        tracker = Tracker(backend, TrackConfig(min_interval=0.01, max_interval=0.01))
        baseline = len(anyio.get_running_tasks())

        async def buggy_consumer() -> None:
            async with tracker.track(ids) as stream:
                await stream.__anext__()
                raise KeyError("consumer bug")

        with pytest.raises(KeyError, match="consumer bug"):
            await buggy_consumer()
        assert len(anyio.get_running_tasks()) == baseline

        async def refused(job_ids: Any) -> dict[int, JobState]:
            raise AuthenticationError("token expired", status_code=401)

        backend.status = refused  # type: ignore[method-assign]

        async def consume() -> None:
            async with tracker.track(ids) as stream:
                async for _ in stream:
                    pass

        with pytest.raises(AuthenticationError):
            await consume()
        assert len(anyio.get_running_tasks()) == baseline


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_legal_walks_with_flaky_polls_reproduce_every_final_status(seed: int) -> None:
    """Random legal moves at random times, 20 % of polls failing: the events form, for each
    job, an unbroken chain from its first sight to its true final state, with no repeats."""
    rng = random.Random(seed)
    legal = {
        status: [t for t in JobStatus if t is not status and status.can_move_to(t)]
        for status in JobStatus
        if not status.final
    }

    async def main() -> None:
        backend = memory(page=37)
        ids = await make_jobs(backend, 300)
        backend.set_faults(Faults(transient=0.2, seed=seed, methods=frozenset({"status"})))
        tracker = Tracker(
            backend,
            TrackConfig(
                min_interval=rng.choice([0.5, 1.0]),
                max_interval=4.0,
                retry=RetryPolicy(math.inf, initial=0.5, max_backoff=2.0),
            ),
        )

        async def walk() -> None:
            unfinished = set(ids)
            while unfinished:
                await anyio.sleep(rng.uniform(0.1, 3.0))
                for job_id in rng.sample(sorted(unfinished), k=max(1, len(unfinished) // 3)):
                    job = backend.jobs[job_id]
                    if rng.random() < 0.2:
                        job.minor_status = f"note {rng.randint(0, 3)}"  # MinorStatus only
                        continue
                    targets = [t for t in legal[job.status] if t is not JobStatus.SUBMITTING]
                    target = rng.choice(targets)
                    backend.set_status(
                        [job_id], target, f"to {target}", site=f"S{rng.randint(1, 3)}"
                    )
                    if target.final:
                        unfinished.discard(job_id)

        events: list[TrackEvent] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(walk)
            async with tracker.track(ids) as stream:
                events = [event async for event in stream]
        by_job: dict[int, list[JobEvent]] = {}
        for event in job_events(events):
            by_job.setdefault(event.job_id, []).append(event)
        assert set(by_job) == set(ids)
        for job_id, changes in by_job.items():
            truth = backend.jobs[job_id].state()
            assert changes[-1].new == truth
            assert [e.final for e in changes].count(True) == 1
            assert changes[0].old is None
            for before, after in itertools.pairwise(changes):
                assert after.old is before.new
                assert (after.status, after.minor_status, after.site) != (
                    before.status,
                    before.minor_status,
                    before.site,
                )
        assert any(isinstance(e, PollFailed) for e in events)
        # MinorStatus-only changes are events too.
        assert any(not e.status_changed for e in job_events(events))
        assert not any(isinstance(e, JobVanished) for e in events)

    run(main)
