"""The submitter: many jobs onto a backend, concurrently, rate limited, retried, exactly once.

How exactly once is kept, by DIRAC's two-phase bulk protocol (see :mod:`aiodirac.backends._protocol`):

1. Each chunk (at most ``capabilities.max_jobs_per_submit`` jobs, one parametric JDL) is written
   to the journal (``sent``) **before** its request leaves.
2. The backend creates its jobs *unconfirmed* (``Submitting``), where nothing runs.
3. The returned IDs are written to the journal (``created``).
4. The IDs are confirmed (``Received``), many chunks per request, and the journal says so
   (``confirmed``).

A request whose outcome is unknown (a reset, a timeout, a 502-504 after sending) is simply sent
again as a new request: what the lost one may have created stays unconfirmed and never runs.
When the work is over, a *sweep* finds the campaign's jobs still in ``Submitting`` that the
journal does not hold and discards them (``Killed``, with a MinorStatus saying why). A run started
again with the same journal after a crash confirms the chunks that were ``created``, resends the
ones that were only ``sent``, skips the ``confirmed`` ones, and sweeps what the crash left.

The sweep touches only jobs it can prove are the campaign's: its JobGroup (which the campaign
sets when the user did not: ``<campaign>-<random>``, unique to it), its time window (since the
campaign began), never an ID the journal holds. When the user chose the JobGroup (other
campaigns may share it) it also spares jobs younger than ``sweep_grace``, so that two campaigns
of one user never sweep each other's jobs in flight.

Usage::

    submitter = Submitter(backend, SubmitConfig(campaign="scan"), journal=journal)
    ids = await submitter.submit(job)
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from array import array
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Sequence,
)
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TypeVar

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from aiodirac._engine._gate import RequestGate
from aiodirac._engine._retry import RetryEvent
from aiodirac._engine.submit._model import (
    ChunkFailure,
    SubmitConfig,
    SubmitJournal,
    SubmitReport,
    SubmittedJob,
)
from aiodirac._exceptions import (
    BackendError,
    ConfigurationError,
    InvalidRequestError,
    JobDescriptionError,
    JournalError,
    SandboxError,
    SubmissionError,
    TransientError,
)
from aiodirac._job._chunking import Submittable, _chunks_of, _with_group, chunk_digest
from aiodirac._job._spec import SubmitChunk
from aiodirac._journal import CampaignInfo, ChunkState
from aiodirac._resource import ungrouped
from aiodirac.backends._protocol import Backend

from ._confirm import Confirmer, Created, Turns
from ._sweep import Sweeper

__all__ = [
    "ChunkFailure",
    "SubmitConfig",
    "SubmitReport",
    "SubmittedJob",
    "Submitter",
]

T = TypeVar("T")

logger = logging.getLogger("aiodirac.submit")

#: Errors that are one chunk's fault: that chunk fails, the others go on.
_CHUNK_ERRORS: tuple[type[Exception], ...] = (
    InvalidRequestError,
    JobDescriptionError,
    SandboxError,
)


class _Run:
    """The state of one submission run (one call of ``submit`` / ``stream``)."""

    def __init__(
        self,
        submitter: Submitter,
        jobs: Submittable,
        results: MemoryObjectSendStream[SubmittedJob],
    ) -> None:
        self.s = submitter
        self.backend = submitter.backend
        self.config = submitter.config
        self.journal = submitter.journal
        self.jobs = jobs
        self.results = results
        self.started = time.monotonic()
        self.fatal: BaseException | None = None
        self.failures: list[ChunkFailure] = []
        self.confirmed_ids = array("q")
        self.confirmed_indices = array("q")
        self.known_ids: set[int] = set()
        self.groups: dict[str, bool] = {}
        self.seen_first: set[int] = set()
        self.counts = {"confirmed": 0, "resumed": 0, "already": 0, "resent": 0, "swept": 0}
        self.unswept = 0
        self.requests = 0
        self.campaign: CampaignInfo | None = None
        self.resuming = False
        # A submit request that did not return its IDs may have created jobs nobody recorded,
        # and the server may still be creating them: when the latest such request ended.
        self.unsettled: datetime | None = None
        max_jobs = self.backend.capabilities.max_jobs_per_submit
        self.limits = submitter.gate.limits
        max_ids = self.backend.capabilities.max_ids_per_update
        self.window = self.config.window_for(max_jobs, max_ids, self.limits)
        self.slots = anyio.CapacityLimiter(self.window)
        self.confirm_batch = self.config.confirm_batch_for(max_jobs, max_ids)
        self.max_jobs = max_jobs
        self.scope: anyio.CancelScope | None = None
        self.confirm_turns = Turns()

    # -- requests -----------------------------------------------------------------------------

    async def request(
        self,
        fn: Callable[[], Awaitable[T]],
        on_retry: Callable[[RetryEvent], None] | None = None,
        *,
        exclusive: bool = False,
    ) -> T:
        """One backend call: a slot in flight, a rate token, retries of transient failures.

        ``exclusive`` requests (confirmations, with ``SubmitConfig.exclusive_confirm``) run while
        no other request of this run is in flight.
        """

        async def counted() -> T:
            self.requests += 1
            return await fn()

        turn = self.confirm_turns.exclusive if exclusive else self.confirm_turns.shared
        return await self.s.gate.call(counted, on_retry=on_retry, hold=turn)

    # -- identity -----------------------------------------------------------------------------

    async def start(self) -> None:
        name = self.config.campaign
        journal = self.journal
        stored = await journal.campaign() if journal is not None else None
        if name is None:
            if stored is not None:
                name = stored.name
            elif journal is not None:
                stem = re.sub(r"[^A-Za-z0-9._-]", "-", journal.path.stem).lstrip("._-")
                name = stem[:64] if stem else "aiodirac"
            else:
                name = "aiodirac"
        owned = self.config.job_group is None
        group = self.config.job_group or f"{name[:19]}-{secrets.token_hex(6)}"
        if journal is not None:
            journal.acquire_submit_lock()
            self.campaign = await journal.start_campaign(name, group, owns_group=owned)
            summary = await journal.summary()
            self.resuming = bool(summary.chunks)
            for known in await journal.chunk_groups():
                self.groups.setdefault(
                    known, known == self.campaign.job_group and self.campaign.owns_group
                )
            if self.resuming:
                logger.info("resuming campaign %s from %s: %s", name, journal.path, summary)
                self.unsettled = await journal.last_unsettled()
        else:
            self.campaign = CampaignInfo(name, group, owned, datetime.now(UTC))

    def prepare(self, chunk: SubmitChunk) -> tuple[SubmitChunk, str]:
        """The chunk as sent (JobGroup set when the user gave none) and its group."""
        assert self.campaign is not None
        group = chunk.attributes.get("JobGroup")
        if isinstance(group, str) and group:
            self.groups.setdefault(
                group, group == self.campaign.job_group and self.campaign.owns_group
            )
            return chunk, group
        self.groups.setdefault(self.campaign.job_group, self.campaign.owns_group)
        return _with_group(chunk, self.campaign.job_group), self.campaign.job_group

    # -- the pipeline ---------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.start()
            send, receive = anyio.create_memory_object_stream[Created](self.window)
            with ungrouped():
                async with anyio.create_task_group() as tg:
                    self.scope = tg.cancel_scope
                    tg.start_soon(self.produce, send)
                    tg.start_soon(Confirmer(self).run, receive)
            # Leftovers exist only after a submit request whose reply was lost (here, or in
            # the earlier runs a resumed campaign follows): otherwise a sweep has nothing to do.
            if self.fatal is None and (self.unsettled is not None or self.resuming):
                assert self.campaign is not None
                sweeper = Sweeper(
                    self.backend, self.journal, self.config, self.request, batch=self.confirm_batch
                )
                try:
                    await sweeper.settle(self.unsettled)
                    await sweeper.sweep(self.campaign, self.groups, self.known_ids)
                finally:
                    self.counts["swept"] += sweeper.swept
                    self.unswept += sweeper.unswept
        except Exception as exc:  # noqa: BLE001 - handed to the caller by the result stream
            self.fatal = exc
        finally:
            self.s._report = self.report()
            if self.journal is not None:
                self.journal.release_submit_lock()
            await self.results.aclose()

    def fail(self, exc: BaseException) -> None:
        """Stop the run: a failure that is not one chunk's fault."""
        if self.fatal is None:
            self.fatal = exc
        if self.scope is not None:
            self.scope.cancel()

    async def produce(self, confirm: MemoryObjectSendStream[Created]) -> None:
        async with confirm, anyio.create_task_group() as tg:
            try:
                async for chunk in _chunks_of(self.jobs, self.max_jobs):
                    self.check(chunk)
                    if not chunk.jobs:
                        continue
                    borrower = object()
                    await self.slots.acquire_on_behalf_of(borrower)
                    tg.start_soon(self.process, chunk, borrower, confirm)
            except Exception as exc:  # noqa: BLE001 - stops the run, handed to the caller
                # Caught inside the task group, so that the caller gets it as is, not in a group.
                self.fail(exc)

    def check(self, chunk: SubmitChunk) -> None:
        """Refuse, before anything is sent, a chunk the backend or the journal cannot take."""
        if len(chunk.jobs) > self.max_jobs:
            raise ConfigurationError(
                f"a chunk of {len(chunk.jobs)} jobs exceeds the backend's limit of "
                f"{self.max_jobs} per request"
            )
        if not chunk.jobs:
            return
        first = chunk.indices[0]
        if first in self.seen_first:
            raise JobDescriptionError(
                f"two chunks start at global index {first}: give each job of a submission its "
                "own index",
                attribute="index",
                value=first,
            )
        self.seen_first.add(first)

    async def process(
        self, chunk: SubmitChunk, borrower: object, confirm: MemoryObjectSendStream[Created]
    ) -> None:
        handed_over = False
        try:
            created = await self.create(chunk, borrower)
            if created is not None:
                await confirm.send(created)
                handed_over = True
        except _CHUNK_ERRORS as exc:
            await self.chunk_failed(chunk, None, exc)
        except Exception as exc:  # noqa: BLE001 - stops the run, handed to the caller
            self.fail(exc)
        finally:
            if not handed_over:
                self.slots.release_on_behalf_of(borrower)

    async def create(self, user_chunk: SubmitChunk, borrower: object) -> Created | None:
        """Phase one for a chunk: journal, send, record. None when nothing is left to do."""
        chunk, group = self.prepare(user_chunk)
        digest = chunk_digest(user_chunk)
        first, last = user_chunk.indices[0], user_chunk.indices[-1]
        journal = self.journal
        if journal is not None and self.resuming:
            record = await journal.chunk(first, last)
            if record is None:
                if await journal.overlapping_indices(first, last):
                    raise JournalError(
                        f"jobs {first}-{last} were recorded in other chunks by an earlier run of "
                        f"this campaign ({journal.path}): chunks changed (another backend or job "
                        "description?); use a new journal"
                    )
            elif record.digest != digest:
                raise JournalError(
                    f"jobs {first}-{last} in the journal {journal.path} were a different job "
                    "description: this journal belongs to another campaign (use a new file)"
                )
            elif record.state is ChunkState.CONFIRMED:
                await self.emit(user_chunk, record.job_ids, "already")
                return None
            elif record.state is ChunkState.CREATED:
                return Created(chunk, record.chunk_id, record.job_ids, True, borrower)
        chunk_id = 0
        if journal is not None:
            with anyio.CancelScope(shield=True):
                chunk_id = (await journal.chunk_sent(first, last, digest, group)).chunk_id

        def resent(event: RetryEvent) -> None:
            self.counts["resent"] += 1
            logger.info(
                "jobs %d-%d: %s; sending them again in %.1f s (anything the lost request "
                "created stays unconfirmed and will be swept)",
                first,
                last,
                event.error,
                event.wait,
            )

        async def send() -> list[int]:
            try:
                return await self.backend.submit(chunk)
            except _CHUNK_ERRORS:
                raise  # refused: the server created nothing, there is nothing to settle
            except BaseException:
                self.unsettled = datetime.now(UTC)
                raise

        ids = await self.request(send, on_retry=resent)
        # The IDs exist on the server now: record them even if we are being cancelled.
        with anyio.CancelScope(shield=True):
            if len(ids) != len(chunk.jobs):
                raise BackendError(
                    f"the backend returned {len(ids)} IDs for a chunk of {len(chunk.jobs)} jobs",
                    job_ids=tuple(ids),
                )
            if journal is None:
                # Without a journal the sweep needs them (with one, the journal holds them).
                self.known_ids.update(ids)
            else:
                await journal.chunk_created(
                    chunk_id,
                    [
                        (job.index, job_id, job.name)
                        for job, job_id in zip(chunk.jobs, ids, strict=True)
                    ],
                )
        return Created(chunk, chunk_id, tuple(ids), False, borrower)

    async def chunk_failed(
        self, chunk: SubmitChunk, chunk_id: int | None, exc: BaseException
    ) -> None:
        failure = ChunkFailure(
            indices=chunk.indices,
            names=tuple(job.name for job in chunk.jobs),
            message=str(exc) or type(exc).__name__,
        )
        self.failures.append(failure)
        logger.warning("chunk refused: %s", failure)
        journal = self.journal
        if journal is not None:
            with anyio.CancelScope(shield=True):
                if chunk_id is None:
                    record = await journal.chunk(chunk.indices[0], chunk.indices[-1])
                    chunk_id = record.chunk_id if record is not None else None
                if chunk_id is not None:
                    await journal.chunk_failed(chunk_id, failure.message)

    async def emit(self, chunk: SubmitChunk, ids: Sequence[int], kind: str) -> None:
        self.counts[kind] += len(ids)
        for job, job_id in zip(chunk.jobs, ids, strict=True):
            self.confirmed_ids.append(job_id)
            self.confirmed_indices.append(job.index)
            await self.results.send(SubmittedJob(job_id=job_id, index=job.index, name=job.name))

    # -- results ------------------------------------------------------------------------------

    def report(self) -> SubmitReport:
        campaign = self.campaign
        return SubmitReport(
            campaign=campaign.name if campaign else "",
            job_group=campaign.job_group if campaign else "",
            confirmed=self.counts["confirmed"],
            resumed=self.counts["resumed"],
            already=self.counts["already"],
            resent=self.counts["resent"],
            swept=self.counts["swept"],
            unswept=self.unswept,
            failures=tuple(self.failures),
            requests=self.requests,
            elapsed=time.monotonic() - self.started,
        )

    def submitted_ids(self) -> tuple[int, ...]:
        pairs = sorted(zip(self.confirmed_indices, self.confirmed_ids, strict=True))
        return tuple(job_id for _, job_id in pairs)

    def error(self) -> BaseException | None:
        """The exception the caller gets once every result was delivered, if any."""
        if self.fatal is not None:
            fatal = self.fatal
            if isinstance(fatal, TransientError):
                error = SubmissionError(
                    f"the service kept failing ({fatal}) past the retry deadline of "
                    f"{self.limits.retry.deadline:g} s; {len(self.confirmed_ids)} jobs were "
                    "submitted. Run again (with the same journal) to submit the rest.",
                    submitted=self.submitted_ids(),
                    failures=tuple(str(f) for f in self.failures),
                )
                error.__cause__ = fatal
                return error
            return fatal
        if self.failures:
            return SubmissionError(
                f"{len(self.failures)} chunk(s) were refused, {len(self.confirmed_ids)} jobs "
                "were submitted: "
                + "; ".join(str(f) for f in self.failures[:5])
                + (" ..." if len(self.failures) > 5 else ""),
                submitted=self.submitted_ids(),
                failures=tuple(str(f) for f in self.failures),
            )
        return None


class SubmissionStream:
    """Submitted jobs as they are confirmed: an async iterator of :class:`SubmittedJob`.

    When the iteration ends it raises what went wrong, after every confirmed job was given:
    :class:`aiodirac.SubmissionError` if chunks were refused (``.submitted``, ``.failures``)
    or the service stayed unavailable past the retry deadline, or the error that stopped
    the run (authentication, journal).

    Usage: ``async for submitted in stream: ...``
    """

    def __init__(self, receive: MemoryObjectReceiveStream[SubmittedJob], run: _Run) -> None:
        self._receive = receive
        self._run = run

    def __aiter__(self) -> SubmissionStream:
        return self

    async def __anext__(self) -> SubmittedJob:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            error = self._run.error()
            if error is not None:
                raise error from error.__cause__
            raise StopAsyncIteration from None

    @property
    def report(self) -> SubmitReport:
        """The run's report so far."""
        return self._run.report()


class Submitter:
    """Submits jobs onto a backend exactly once, concurrently, rate limited and retried.

    Args:
        backend: where the jobs go.
        config: limits and campaign identity (:class:`SubmitConfig`; safe defaults).
        journal: the campaign journal; without one a run is still exactly once, but a crash
            cannot be resumed (its leftovers stay unconfirmed, never run, and are not swept).
        gate: the request gate shared with the client's other work (in-flight cap, rate
            limit, retries); default: a gate of its own with :class:`~aiodirac.Limits`' defaults.

    Usage::

        submitter = Submitter(backend, SubmitConfig(campaign="scan"), journal=journal)
        ids = await submitter.submit(job)
        print(submitter.report)
    """

    def __init__(
        self,
        backend: Backend,
        config: SubmitConfig | None = None,
        *,
        journal: SubmitJournal | None = None,
        gate: RequestGate | None = None,
    ) -> None:
        self.backend = backend
        self.config = config or SubmitConfig()
        self.journal = journal
        self.gate = gate if gate is not None else RequestGate()
        self._report: SubmitReport | None = None

    def __repr__(self) -> str:
        return f"<Submitter [{self.backend.description}, {self.gate!r}]>"

    @property
    def report(self) -> SubmitReport | None:
        """The report of the last finished run, or None."""
        return self._report

    @asynccontextmanager
    async def stream(self, jobs: Submittable) -> AsyncIterator[SubmissionStream]:
        """Submit ``jobs``, giving each job as soon as it is confirmed.

        ``jobs``: a ``Job`` (parametric or not), an iterable or async iterable of jobs (read
        lazily: a generator of a million jobs never sits in memory), or ``SubmitChunk`` s.
        Leaving the block early cancels the submission; the journal stays consistent and a
        later run with it completes the campaign.

        Raises:
            SubmissionError, BackendError, JournalError: from the iteration, see
                :class:`SubmissionStream`.

        Usage::

            async with submitter.stream(jobs) as submitted:
                async for s in submitted:
                    print(s.job_id)
        """
        send, receive = anyio.create_memory_object_stream[SubmittedJob](
            max(
                20,
                self.backend.capabilities.max_jobs_per_submit * self.gate.limits.max_in_flight,
            )
        )
        run = _Run(self, jobs, send)
        with ungrouped():
            async with anyio.create_task_group() as tg, receive:
                tg.start_soon(run.run)
                try:
                    yield SubmissionStream(receive, run)
                finally:
                    tg.cancel_scope.cancel()

    async def submit(self, jobs: Submittable) -> list[int]:
        """Submit ``jobs`` and return their IDs in job (global index) order.

        Contract: on return every job was created and confirmed exactly once. If some chunks
        were refused, the others are still submitted, and then :class:`aiodirac.SubmissionError`
        is raised, with ``.submitted`` (the IDs confirmed, in index order) and ``.failures``
        (one message per refused chunk, naming its jobs). If the service stays unavailable
        past the retry deadline, the run stops with a ``SubmissionError`` too (run again with the
        same journal to finish). Authentication and permission errors stop the run at once and
        are raised as they are. Cancellation leaves the journal consistent.

        Usage: ``ids = await submitter.submit(job)``
        """
        async with self.stream(jobs) as submitted:
            collected = [item async for item in submitted]
        collected.sort(key=lambda s: s.index)
        return [s.job_id for s in collected]
