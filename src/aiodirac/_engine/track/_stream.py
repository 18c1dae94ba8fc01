"""The consumer's side of a tracking session: the event stream and what it knows.

Usage: ``async with tracker.track(ids) as stream: async for event in stream: ...``
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from types import MappingProxyType

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from aiodirac._job._status import JobState

from ._events import JobEvent, TrackEvent, TrackSummary
from ._poller import Poller
from ._state import TrackState

__all__ = ["TrackStream"]


class TrackStream:
    """A live tracking session: async-iterable of :data:`~aiodirac.TrackEvent`, plus state.

    Obtained from :meth:`Tracker.track`; valid inside its ``async with`` block. Iteration ends
    when no tracked job is left to poll (every one final or vanished) and, for an unsealed
    stream, :meth:`seal` was called. A fatal error (anything but a
    :class:`~aiodirac.TransientError`, or the retry policy giving up) is
    raised from the iteration once the events before it are consumed.

    Usage::

        async with tracker.track(ids) as stream:
            async for event in stream:
                print(event, stream.summary.final, "/", stream.summary.total)
    """

    def __init__(
        self,
        state: TrackState,
        poller: Poller,
        receive: MemoryObjectReceiveStream[list[TrackEvent]],
        pending: deque[TrackEvent],
    ) -> None:
        self._state = state
        self._poller = poller
        self._receive = receive
        # events received and not handed out yet (the poller waits until it is empty)
        self._pending = pending
        self._error_raised = False

    # -- public surface -------------------------------------------------------------------

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"<TrackStream [{s.total} jobs: {s.final} final, {s.pending} pending, "
            f"{s.vanished} vanished; {s.cycles} cycles, {s.requests} requests"
            f"{', failing' if s.failing else ''}]>"
        )

    def __aiter__(self) -> TrackStream:
        return self

    async def __anext__(self) -> TrackEvent:
        pending = self._pending
        if not pending:
            try:
                pending.extend(await self._receive.receive())
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._raise_error()
                raise StopAsyncIteration from None
        event = pending.popleft()
        if (
            not pending
            and self._poller.drained is not None
            and not self._receive.statistics().current_buffer_used
        ):
            self._poller.drained.set()
        return event

    def job_events(self) -> AsyncIterator[JobEvent]:
        """Iterate over job changes only (other kinds still reach callbacks and the summary).

        Usage: ``async for event in stream.job_events(): print(event.job_id, event.status)``
        """
        return _JobEvents(self)

    async def wait(self) -> dict[int, JobState]:
        """Consume the stream to its end and return the final state of every final job.

        Vanished jobs are absent from the answer (compare its keys with the IDs asked).

        Raises:
            Exception: the fatal error that stopped tracking, if any.

        Usage: ``finals = await stream.wait()``
        """
        async for _ in self:
            pass
        return self.final_states()

    def final_states(self) -> dict[int, JobState]:
        """The last state of every tracked job that is final now.

        Usage: ``done = stream.final_states()``
        """
        return self._state.final_states()

    @property
    def states(self) -> Mapping[int, JobState]:
        """Last known state of every tracked job seen so far (a read-only live view)."""
        return MappingProxyType(self._state.states)

    @property
    def pending(self) -> frozenset[int]:
        """Jobs still polled: neither final nor vanished."""
        return frozenset(self._state.active)

    @property
    def vanished(self) -> frozenset[int]:
        """Jobs the backend no longer knows."""
        return frozenset(self._state.vanished)

    @property
    def summary(self) -> TrackSummary:
        """Running totals: counts per status, final, pending, cycles, requests, events."""
        return self._state.summary()

    def add(self, job_ids: Iterable[int], *, initial: Mapping[int, JobState] | None = None) -> int:
        """Track more jobs (e.g. still being submitted); they are polled at the next cycle.

        IDs already tracked are ignored. Returns how many jobs were added. Jobs still to come
        need an unsealed stream (``track(..., sealed=False)``): a sealed one stops polling as
        soon as every job it has is final, and may have stopped by the time this is called.

        Raises:
            RuntimeError: polling has stopped (every job final on a sealed stream, a fatal
                error, or the ``async with`` block left) and a new job would never be polled.

        Usage: ``stream.add(new_ids)``
        """
        if self._poller.finished:
            ids = list(job_ids)
            if any(self._state.is_new(job_id) for job_id in ids):
                raise RuntimeError(
                    "this tracking stream has stopped polling (every job was final and the "
                    "stream sealed, or it failed or was closed): new jobs would never be "
                    "polled; track them with a new track() call, or use track(..., "
                    "sealed=False) and seal() after the last add()"
                )
            return 0
        added = self._state.add(job_ids, initial or {})
        if added:
            self._poller.wake()
        return added

    def remove(self, job_ids: Iterable[int]) -> int:
        """Stop tracking jobs: no more polls or events for them. Returns how many were removed.

        Usage: ``stream.remove(killed_ids)``
        """
        removed = self._state.remove(job_ids)
        if removed and not self._state.active:
            self._poller.wake()  # maybe nothing is left to poll: let the stream end now
        return removed

    def seal(self) -> None:
        """Declare that no more jobs will be added: the stream may end once all are final.

        Usage: ``stream.seal()`` after the last ``stream.add(...)``
        """
        self._poller.sealed = True
        self._poller.wake()

    # -- internals -------------------------------------------------------------------------

    def _raise_error(self) -> None:
        error = self._poller.error
        if error is not None and not self._error_raised:
            self._error_raised = True
            raise error


class _JobEvents:
    """The :class:`JobEvent` items of a stream (a plain iterator: nothing to finalize on break)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: TrackStream) -> None:
        self._stream = stream

    def __aiter__(self) -> _JobEvents:
        return self

    async def __anext__(self) -> JobEvent:
        while True:
            event = await self._stream.__anext__()
            if isinstance(event, JobEvent):
                return event
