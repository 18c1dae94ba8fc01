"""The poll loop of one tracking session: cycles of status requests, diffs, delivery.

It runs as one task while the session's ``async with`` block is open. Each cycle asks for every
job still to poll (one request per page, all in flight together through the request gate),
folds the answers into the session's :class:`~._state.TrackState`, and hands the events to the
callbacks and to the stream, in order. A failed cycle is a :class:`~aiodirac.PollFailed` event
and a back-off; a fatal error ends the loop and is kept for the stream to raise.

Usage: ``tg.start_soon(poller.run)`` (the tracker makes the poller of each session)
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from aiodirac._exceptions import TransientError
from aiodirac._job._status import JobState

from ._events import PollFailed, PollRecovered, TrackCallback, TrackEvent
from ._state import TrackState

if TYPE_CHECKING:
    from ._config import TrackConfig

#: The answers of one cycle, page by page: states, a transient error, or None (not asked).
Answers = list[dict[int, JobState] | Exception | None]

__all__ = ["Poller"]

logger = logging.getLogger("aiodirac.track")


class ConsumerGone(Exception):
    """The consumer closed the stream's receiving end: nobody listens, polling stops."""


class Poller:
    """The poll loop of one session (see the module docstring).

    Args:
        config: polling intervals, back-off and buffer.
        pages: the pages of job IDs one cycle asks for.
        fetch: one request per page, all in flight together (transient failures as values).
        record: remembers the states that changed in a cycle (the journal), if any.
        state: the session's bookkeeping, shared with the stream.
        callbacks: told of every event before the stream.
        send: where event batches go (the stream receives them).
        batch: events per stream item.
        sealed: whether no job will be added (the loop may end once none is left to poll).
        undelivered: how many events the stream took but did not hand out yet.
    """

    def __init__(
        self,
        config: TrackConfig,
        pages: Callable[[set[int]], list[list[int]]],
        fetch: Callable[[list[list[int]]], Awaitable[Answers]],
        record: Callable[[list[JobState]], Awaitable[None]] | None,
        state: TrackState,
        callbacks: Sequence[TrackCallback],
        send: MemoryObjectSendStream[list[TrackEvent]],
        batch: int,
        *,
        sealed: bool,
        undelivered: Callable[[], int],
    ) -> None:
        self.config = config
        self.pages = pages
        self.fetch = fetch
        self.record = record
        self.state = state
        self.callbacks = tuple(callbacks)
        self.send = send
        self.batch = batch
        self.sealed = sealed
        self.undelivered = undelivered
        self._wake = anyio.Event()
        self.drained: anyio.Event | None = None
        # Set once the loop stopped (every job final on a sealed stream, an error, the block
        # left): jobs added after that would never be polled.
        self.finished = False
        self.error: Exception | None = None

    def wake(self) -> None:
        """Start the next cycle now (jobs were added or removed, or the stream sealed)."""
        self._wake.set()

    async def run(self) -> None:
        """Poll until no job is left to poll (sealed), an error, or cancellation (task body)."""
        try:
            await self._loop()
        except ConsumerGone:
            logger.debug("tracking stopped: the consumer closed the stream")
        except Exception as exc:  # noqa: BLE001 - not swallowed: re-raised to the consumer
            # Surfaced to the consumer from the iteration, after the events before it (an
            # anyio.BrokenResourceError from a backend or a journal included: only our own
            # stream's counts as the consumer leaving).
            logger.debug("tracking stopped by %r", exc)
            self.error = exc
        finally:
            self.finished = True
            self.send.close()

    async def _loop(self) -> None:
        config = self.config
        state = self.state
        interval = config.min_interval
        failures = 0
        first_failure = 0.0
        while True:
            if not state.active:
                if self.sealed:
                    return
                await self.sleep(math.inf)
                continue
            started = anyio.current_time()
            pages = self.pages(state.active)
            answers = await self.fetch(pages)
            seen = datetime.now(UTC)
            state.cycles += 1
            state.requests += len(pages)

            changed: list[JobState] = []
            errors: list[Exception] = []
            # Page by page, each answer dropped once diffed: the peak holds one page of events.
            for index, asked in enumerate(pages):
                answer = answers[index]
                answers[index] = None
                if isinstance(answer, Exception):
                    errors.append(answer)
                elif answer is not None:
                    page_events: list[TrackEvent] = []
                    state.diff(asked, answer, seen, page_events, changed)
                    del answer
                    await self.deliver(page_events)

            notices: list[TrackEvent] = []
            if errors:
                failures += 1
                state.poll_failures += 1
                state.failing = True
                if failures == 1:
                    first_failure = started
                last = errors[-1]
                retry_after = last.retry_after if isinstance(last, TransientError) else None
                delay = config.backoff(failures, retry_after)
                notices.append(PollFailed(last, failures, delay, len(errors), len(pages), seen))
                logger.info(
                    "status poll failed (attempt %d), retry in %.1f s: %s", failures, delay, last
                )
                # Its traceback holds the failed call's frames (and whatever they hold, e.g. a
                # database cursor): keep it no longer than this cycle, not until the next failure.
                del last
            elif failures:
                outage = anyio.current_time() - first_failure
                notices.append(PollRecovered(failures, outage, seen))
                failures = 0
                state.failing = False
                interval = config.min_interval
            elif changed:
                interval = config.min_interval
            else:
                interval = min(config.max_interval, interval * config.growth)
            del pages, answers

            await self.deliver(notices)
            if changed and self.record is not None:
                # Recorded once the cycle's events are handed over: a restart replays at most
                # the events of the cycle it was killed in, and never skips one.
                await self.record(changed)
            del changed
            if errors:
                if config.gives_up(failures, anyio.current_time() - first_failure + delay):
                    raise errors[-1]
            else:
                delay = max(0.0, interval - (anyio.current_time() - started))
            await self.sleep(delay)
            await self.until_drained()

    async def deliver(self, events: list[TrackEvent]) -> None:
        send = self.send
        callbacks = self.callbacks
        size = self.batch
        for start in range(0, len(events), size):
            batch = events[start : start + size]
            for event in batch:
                for callback in callbacks:
                    await _call(callback, event)
            try:
                try:
                    send.send_nowait(batch)
                except anyio.WouldBlock:
                    # The consumer is behind: polling waits for it (bounded memory).
                    await send.send(batch)
            except anyio.BrokenResourceError:
                raise ConsumerGone from None

    async def until_drained(self) -> None:
        """Wait until the consumer took every event: polling again before is wasted load."""
        if self.undelivered() or self.send.statistics().current_buffer_used:
            self.drained = anyio.Event()
            try:
                await self.drained.wait()
            finally:
                self.drained = None

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if jobs are added, removed or the stream sealed."""
        with anyio.move_on_after(delay):
            await self._wake.wait()
        if self._wake.is_set():
            self._wake = anyio.Event()


async def _call(callback: TrackCallback, event: TrackEvent) -> None:
    try:
        result = callback(event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("tracking callback %r failed on %r; tracking goes on", callback, event)
