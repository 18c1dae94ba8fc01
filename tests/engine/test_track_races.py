"""Races of the tracker's end of stream, each interleaving driven explicitly (no load needed).

Every scenario runs on trio's virtual clock (``MockClock(autojump_threshold=0)``) under a virtual
hour's deadline: a stream that never ends fails the test instead of hanging it. The consumer
decides where it stands when the poller acts (waiting in ``receive``, busy in its own body, or
asleep while the poller finishes), so the interleaving is the same on every run.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.lowlevel
import pytest
from _tracking import FAST, make_jobs, memory, run

from aiodirac._engine.track._events import JobEvent, TrackEvent
from aiodirac._engine.track._tracker import TrackConfig, Tracker, TrackStream
from aiodirac._job._status import JobState, JobStatus
from aiodirac.testing._memory import MemoryBackend


def finals(events: Sequence[TrackEvent]) -> set[int]:
    return {e.job_id for e in events if isinstance(e, JobEvent) and e.final}


async def done_then_later(backend: MemoryBackend, done: int, later: int) -> tuple[list[int], ...]:
    """``done`` jobs already Done, and ``later`` jobs still Received, to be added later."""
    first = await make_jobs(backend, done)
    rest = await make_jobs(backend, later)
    backend.advance(first, to=JobStatus.DONE)
    return first, rest


# -- jobs added around the poller's "all final" check -----------------------------------------


def test_add_while_the_poller_still_runs_is_polled_even_on_a_sealed_stream() -> None:
    """The last final event is taken, the poller has not yet re-checked: an add is honoured."""

    async def main() -> None:
        backend = memory()
        first, later = await done_then_later(backend, 2, 2)
        events: list[TrackEvent] = []
        async with Tracker(backend, FAST).track(first) as stream:
            async for event in stream:
                events.append(event)
                if finals(events) == set(first) and not stream.pending and len(events) == 2:
                    # The poller delivered its last cycle and sleeps its interval: it has not
                    # yet looked at what is left to poll.
                    assert stream.add(later) == 2
                    backend.advance(later, to=JobStatus.DONE)
        assert finals(events) == {*first, *later}
        assert not stream.pending

    run(main)


def test_add_after_the_poller_stopped_is_refused_not_silently_never_polled() -> None:
    """Sealed stream, every job final, poller gone: an add used to be accepted and never polled."""

    async def main() -> None:
        backend = memory()
        first, later = await done_then_later(backend, 2, 1)
        events: list[TrackEvent] = []
        async with Tracker(backend, FAST).track(first) as stream:
            async for event in stream:
                events.append(event)
                if finals(events) == set(first):
                    await anyio.sleep(60)  # the poller finds nothing to poll and stops
                    polls = backend.calls["status"]
                    with pytest.raises(RuntimeError, match="stopped polling"):
                        stream.add(later)
                    # Jobs it already has are still "ignored", not an error.
                    assert stream.add(first) == 0
                    assert backend.calls["status"] == polls
            assert later[0] not in stream.pending
            assert stream.summary.total == 2
        assert finals(events) == set(first)

    run(main)


def test_add_after_seal_and_the_end_of_an_unsealed_stream_is_refused() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 1)
        backend.advance(ids, to=JobStatus.DONE)
        async with Tracker(backend, FAST).track([], sealed=False) as stream:
            stream.add(ids)
            stream.seal()
            assert finals(await anext_all(stream)) == set(ids)
            with pytest.raises(RuntimeError):
                stream.add([ids[0] + 1000])

    run(main)


async def anext_all(stream: TrackStream) -> list[TrackEvent]:
    return [event async for event in stream]


# -- errors that must not pass for the consumer leaving ----------------------------------------


class BrokenStatus(MemoryBackend):
    """A backend whose status call fails with an anyio stream error of its own."""

    async def status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        await anyio.lowlevel.checkpoint()
        raise anyio.BrokenResourceError


def test_a_backend_broken_resource_error_is_raised_not_taken_for_the_consumer_leaving() -> None:
    """It used to end the stream quietly, jobs still pending, as if all were final."""

    async def main() -> None:
        backend = memory(cls=BrokenStatus)
        ids = await make_jobs(backend, 2)
        async with Tracker(backend, FAST).track(ids) as stream:
            with pytest.raises(anyio.BrokenResourceError):
                async for _ in stream:
                    pass
            assert stream.pending == set(ids)

    run(main)


def test_the_consumer_closing_its_end_still_stops_polling_quietly() -> None:
    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 3)
        async with Tracker(backend, FAST).track(ids) as stream:
            stream._receive.close()  # the consumer's end goes away while the poller runs
            await anyio.sleep(30)  # the first cycle's events find nobody: polling stops
            polls = backend.calls["status"]
            backend.advance(ids, to=JobStatus.DONE)
            await anyio.sleep(30)
            assert backend.calls["status"] == polls
            assert stream._poller.finished
            assert stream._poller.error is None  # not an error: nobody is listening

    run(main)


# -- the last cycle's hand-over and the drain wait ---------------------------------------------


@pytest.mark.parametrize("buffer_size", [0, 1, 3, 1024])
@pytest.mark.parametrize("consumer", ["waiting", "busy", "yielding"])
def test_the_stream_ends_whatever_the_consumer_does_when_the_last_events_come(
    buffer_size: int, consumer: str
) -> None:
    """The last final events reach a consumer waiting in receive (handed over directly, never
    buffered), one busy elsewhere (buffered, the poller waits for the drain), or one that yields
    to the loop after each event (a drain wait set up mid-batch): the stream ends every time."""

    async def main() -> None:
        backend = memory()
        ids = await make_jobs(backend, 5)
        config = TrackConfig(min_interval=0.1, max_interval=0.4, buffer_size=buffer_size)
        events: list[TrackEvent] = []

        async def grid() -> None:
            for job_id in ids:
                await anyio.sleep(0.5)
                backend.advance([job_id], to=JobStatus.DONE)

        async with Tracker(backend, config).track(ids) as stream, anyio.create_task_group() as tg:
            tg.start_soon(grid)
            async for event in stream:
                events.append(event)
                if consumer == "busy":
                    await anyio.sleep(0.7)
                elif consumer == "yielding":
                    await anyio.lowlevel.checkpoint()
        assert finals(events) == set(ids)
        assert not stream.pending

    run(main)
