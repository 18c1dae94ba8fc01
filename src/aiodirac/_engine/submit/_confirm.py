"""Phase two of the two-phase protocol: confirming created chunks, many per request.

Created chunks (their IDs journaled) queue here; a confirmation takes as many as fit in one
request (``confirm_batch`` IDs), waiting up to ``confirm_linger`` seconds for more while other
chunks are still being created. A chunk the backend refuses (its jobs were killed or removed
meanwhile) is isolated and journaled as failed, so that a later run sends it again. Jobs of a
resumed chunk that a grid has started since are not confirmed again (DiracX would restart them).

Usage: ``tg.start_soon(Confirmer(run).run, receive)``
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from aiodirac._exceptions import InvalidTransitionError, JobNotFoundError
from aiodirac._job._spec import SubmitChunk
from aiodirac._job._status import JobStatus
from aiodirac.backends._protocol import Backend

from ._model import SubmitConfig, SubmitJournal

__all__ = ["ConfirmHost", "Confirmer", "Created", "Turns"]

T = TypeVar("T")

# A job in one of these is not confirmed yet, or was discarded: a confirmation decides.
_UNCONFIRMED_OR_GONE = frozenset({JobStatus.SUBMITTING, JobStatus.KILLED, JobStatus.DELETED})


class Turns:
    """Shared and exclusive turns, exclusive first: an exclusive waiter stops new shared ones
    (confirmations that must not overlap this run's submissions, see
    ``SubmitConfig.exclusive_confirm``)."""

    def __init__(self) -> None:
        self._shared = 0
        self._exclusive = False
        self._waiting_exclusive = 0
        self._changed: anyio.Event | None = None

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _wait(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        while self._exclusive or self._waiting_exclusive:
            await self._wait()
        self._shared += 1
        try:
            yield
        finally:
            self._shared -= 1
            self._notify()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        self._waiting_exclusive += 1
        try:
            while self._exclusive or self._shared:
                await self._wait()
        finally:
            self._waiting_exclusive -= 1
            # Shared waiters may go on if this waiter leaves (cancelled).
            self._notify()
        self._exclusive = True
        try:
            yield
        finally:
            self._exclusive = False
            self._notify()


@dataclass(slots=True)
class Created:
    """A chunk whose IDs are known and recorded, waiting for confirmation."""

    chunk: SubmitChunk
    chunk_id: int
    job_ids: tuple[int, ...]
    resumed: bool
    borrower: object


class ConfirmHost(Protocol):
    """What the confirmation stage needs of its submission run."""

    backend: Backend
    journal: SubmitJournal | None
    config: SubmitConfig
    slots: anyio.CapacityLimiter
    confirm_batch: int

    async def request(self, fn: Callable[[], Awaitable[T]], *, exclusive: bool = ...) -> T:
        """One backend call through the run's request gate."""
        ...

    async def chunk_failed(self, chunk: SubmitChunk, chunk_id: int | None, exc: Any) -> None:
        """Journal a chunk as failed (a later run sends it again)."""
        ...

    async def emit(self, chunk: SubmitChunk, ids: Sequence[int], kind: str) -> None:
        """Hand a confirmed chunk's jobs to the caller."""
        ...

    def fail(self, exc: BaseException) -> None:
        """Stop the run."""
        ...


class Confirmer:
    """The confirmation stage of one run (see the module docstring).

    Usage: ``await Confirmer(run).run(receive)``
    """

    def __init__(self, host: ConfirmHost) -> None:
        self.host = host

    async def run(self, receive: MemoryObjectReceiveStream[Created]) -> None:
        carried: Created | None = None
        try:
            async with receive:
                while True:
                    if carried is not None:
                        batch, carried = [carried], None
                    else:
                        try:
                            batch = [await receive.receive()]
                        except anyio.EndOfStream:
                            return
                    batch, carried = await self.gather(receive, batch)
                    try:
                        await self.confirm(batch)
                    finally:
                        for done in batch:
                            self.host.slots.release_on_behalf_of(done.borrower)
        except Exception as exc:  # noqa: BLE001 - stops the run, handed to the caller
            self.host.fail(exc)
        finally:
            if carried is not None:
                self.host.slots.release_on_behalf_of(carried.borrower)

    async def gather(
        self, receive: MemoryObjectReceiveStream[Created], batch: list[Created]
    ) -> tuple[list[Created], Created | None]:
        """Let more created chunks join one confirmation, for up to ``confirm_linger`` s.

        It stops early when the batch is full, or when every live chunk is in it (nothing else
        can come before it is confirmed: waiting would only stall the pipeline).
        """
        size = sum(len(item.job_ids) for item in batch)
        deadline = anyio.current_time() + self.host.config.confirm_linger
        while size < self.host.confirm_batch and self.host.slots.borrowed_tokens > len(batch):
            extra: Created | None = None
            with anyio.move_on_after(max(deadline - anyio.current_time(), 0)):
                try:
                    extra = await receive.receive()
                except anyio.EndOfStream:
                    break
            if extra is None:
                break
            if size + len(extra.job_ids) > self.host.confirm_batch:
                return batch, extra
            batch.append(extra)
            size += len(extra.job_ids)
        return batch, None

    async def confirm(self, batch: list[Created]) -> None:
        """Phase two for a batch of created chunks; isolates a chunk the backend refuses."""
        ids = [job_id for item in batch for job_id in item.job_ids]
        resumed = [job_id for item in batch if item.resumed for job_id in item.job_ids]
        if resumed:
            # The run that created them may have died after their confirmation reached the
            # server, and a grid may have started them since: confirming a running job again
            # would restart it on DiracX (Running -> Received is a legal move there).
            states = await self.host.request(functools.partial(self.host.backend.status, resumed))
            started = {
                job_id
                for job_id, state in states.items()
                if state.status not in _UNCONFIRMED_OR_GONE
            }
            ids = [job_id for job_id in ids if job_id not in started]
        try:
            if ids:
                await self.host.request(
                    lambda: self.host.backend.confirm(ids),
                    exclusive=self.host.config.exclusive_confirm,
                )
        except (InvalidTransitionError, JobNotFoundError) as exc:
            if len(batch) == 1:
                # Its jobs were killed or removed before confirmation: they never ran;
                # the chunk is journaled as failed so that the next run sends it again.
                await self.host.chunk_failed(batch[0].chunk, batch[0].chunk_id or None, exc)
                return
            for item in batch:
                await self.confirm([item])
            return
        with anyio.CancelScope(shield=True):
            if self.host.journal is not None:
                await self.host.journal.chunks_confirmed(item.chunk_id for item in batch)
        for item in batch:
            await self.host.emit(
                item.chunk, item.job_ids, "resumed" if item.resumed else "confirmed"
            )
