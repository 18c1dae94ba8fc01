"""The campaign's engine room: submit, follow, fetch, retry, journal, until every job is settled.

One :class:`Runner` per run of a campaign. It reads what the journal knows (nothing, the first
time), then runs side by side, in one task group:

* the first submission of every job (the :class:`~aiodirac.Submitter`, two-phase, journaled),
  skipped once the journal says it finished;
* one tracking session (the :class:`~aiodirac.Tracker`) fed with each confirmed job, whose
  events update the state, are journaled as history and decide what comes next: a Done job is
  queued for download, a failed one for a retry or given up;
* one download session (the :class:`~aiodirac.Downloader`) fed with Done jobs while the others
  still run, each into ``<dest>/<job id>/``;
* the retries: each is journaled as an intent before its request leaves. A reschedule is sent
  only to jobs still exactly as they failed (a lost reply that applied it shows a change), so
  a job is never rescheduled twice for one failure; a resubmission is a one-job chunk of its
  own for the submitter (journal index ``(attempt - 1) * 2**32 + index``), created exactly once;
* a flush of the history every second.

It ends when every job is finished (fetched, done, given up, killed or vanished).

Usage: ``await Runner(campaign).run()`` (from :class:`~aiodirac.Campaign`)
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from aiodirac._engine.download._downloader import Downloader
from aiodirac._engine.download._model import DownloadResult
from aiodirac._engine.submit._model import SubmittedJob
from aiodirac._engine.submit._submitter import Submitter
from aiodirac._engine.track._events import (
    JobEvent,
    JobVanished,
    PollFailed,
    PollRecovered,
    TrackEvent,
)
from aiodirac._engine.track._tracker import Tracker, TrackStream
from aiodirac._exceptions import (
    InvalidTransitionError,
    JobNotFoundError,
    JournalError,
    SubmissionError,
    TransientError,
)
from aiodirac._job._parametric import chunks_of
from aiodirac._job._spec import SubmitChunk
from aiodirac._job._status import JobState, JobStatus

from ._events import (
    BrakeEngaged,
    CampaignProgress,
    DownloadFinished,
    GaveUp,
    JobChanged,
    PollProblem,
    RetryFailed,
    RetryStarted,
)
from ._policy import RetryMethod
from ._records import CampaignRecords, RetryRecord, Snapshot, split_index, virtual_index
from ._state import CampaignState, Phase

if TYPE_CHECKING:
    from pathlib import Path

    from aiodirac._client import AsyncDirac
    from aiodirac._engine.track._tracker import TrackConfig
    from aiodirac._job._job import Job
    from aiodirac._journal import Journal

    from ._events import CampaignEvent
    from ._policy import FailurePolicy

__all__ = ["Runner"]

logger = logging.getLogger("aiodirac.campaign")

T = TypeVar("T")

_DONE = frozenset({JobStatus.DONE, JobStatus.COMPLETED})
_OWNER = frozenset({JobStatus.KILLED, JobStatus.DELETED})
# History is written at least this often (seconds); a crash loses at most this much, and the
# next run observes the jobs' states again.
_FLUSH_EVERY = 1.0


class _Retry:
    """One retry to make: job ``index``'s attempt ``attempt`` replaces the failed ``old_job_id``."""

    __slots__ = ("attempt", "failure", "index", "method", "old_job_id")

    def __init__(
        self, index: int, attempt: int, old_job_id: int, failure: JobState, method: RetryMethod
    ) -> None:
        self.index = index
        self.attempt = attempt
        self.old_job_id = old_job_id
        self.failure = failure
        self.method = method

    @property
    def reason(self) -> str:
        minor = self.failure.minor_status
        return f"{self.failure.status}: {minor}" if minor else str(self.failure.status)


def _unavailable(exc: SubmissionError) -> bool:
    """Whether a submission stopped because the service stayed unavailable (not refused)."""
    return isinstance(exc.__cause__, TransientError)


def _unchanged(now: JobState | None, failed: JobState) -> bool:
    """Whether a job still shows the very state it failed in (no reschedule applied to it)."""
    if now is None or now.status is not failed.status or now.minor_status != failed.minor_status:
        return False
    if now.time is None or failed.time is None:
        return True
    return abs(now.time.timestamp() - failed.time.timestamp()) < 1e-3


class CampaignParts(Protocol):
    """What a runner needs of its :class:`~aiodirac.Campaign`."""

    dirac: AsyncDirac
    job: Job
    policy: FailurePolicy
    total: int
    name: str
    dest: Path | None
    journal: Journal | None
    track_config: TrackConfig

    def _emit(self, event: CampaignEvent) -> None: ...


class Runner:
    """Runs one campaign to its end (see the module docstring).

    Args:
        campaign: the :class:`~aiodirac.Campaign` (its client, job, policy, journal, dest).

    Usage: ``await Runner(campaign).run()``
    """

    def __init__(self, campaign: CampaignParts) -> None:
        self.c = campaign
        dirac = campaign.dirac
        self.backend = dirac.backend
        self.policy = campaign.policy
        self.total = campaign.total
        self.state = CampaignState(self.total)
        self.downloads = campaign.dest is not None
        self.emit = campaign._emit
        self.records: CampaignRecords | None = None
        self.stream: TrackStream | None = None
        self._template = campaign.job.template()
        self._due: list[tuple[float, int]] = []
        self._retries: dict[int, _Retry] = {}
        # Retries whose intent is journaled: they are made, whatever happens meanwhile.
        self._journaled: set[int] = set()
        self._resubmit_only: set[int] = set()
        # What a resumed run found in the journal, until it has acted on it.
        self._refused: dict[int, RetryRecord] = {}
        self._intents: dict[int, RetryRecord] = {}
        self._resumed_failures: list[tuple[int, JobState]] = []
        self._wake_retries = anyio.Event()
        self._submitted = anyio.Event()
        self._finished = anyio.Event()
        self._in_flight = 0
        self._send_ids: MemoryObjectSendStream[int]
        self._receive_ids: MemoryObjectReceiveStream[int]
        self._send_ids, self._receive_ids = anyio.create_memory_object_stream[int](math.inf)

    # -- requests ------------------------------------------------------------------------------

    async def _request(self, fn: Callable[[], Awaitable[T]], *, retry: bool = True) -> T:
        """One backend call through the client's request gate (retried unless ``retry=False``)."""
        gate = self.c.dirac.gate
        return await (gate.call(fn) if retry else gate.once(fn))

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the campaign to its end; the journal records where it stands at every step.

        Raises:
            JournalError: the journal belongs to another campaign (or another size of it).
            SubmissionError, BackendError: what stops a campaign (authentication...).
        """
        try:
            await self._open_and_run()
        finally:
            self._send_ids.close()
            self._receive_ids.close()

    async def _open_and_run(self) -> None:
        c = self.c
        journal = c.journal
        assert journal is not None
        self.records = records = CampaignRecords(journal)
        snap = await records.open(self.total, self.backend.description, self.policy.failed)
        if snap.total != self.total:
            raise JournalError(
                f"the journal {journal.path} holds a campaign of {snap.total} jobs, not "
                f"{self.total}: use another journal file for another campaign"
            )
        tracker = Tracker(
            self.backend,
            c.track_config,
            gate=c.dirac.gate,
        )
        await self._run(snap, tracker)
        with anyio.CancelScope(shield=True):
            await records.ended(self.progress(ended=True).outcome)

    async def _run(self, snap: Snapshot, tracker: Tracker) -> None:
        initial = self._restore(snap)
        async with tracker.track([], sealed=False) as stream, anyio.create_task_group() as tg:
            self.stream = stream
            active = [
                self.state.job_id[i]
                for i in range(self.total)
                if self.state.phase[i] == Phase.ACTIVE
            ]
            stream.add(active, initial=initial)
            del initial, active
            tg.start_soon(self._follow, stream)
            tg.start_soon(self._retry_loop)
            tg.start_soon(self._flush_loop)
            if self.downloads:
                tg.start_soon(self._download_loop)
            if snap.submitted:
                self._submitted.set()
            else:
                tg.start_soon(self._submit_all)
            self._resume_retries(snap)
            del snap
            self._check_end()
            await self._finished.wait()
            tg.cancel_scope.cancel()

    def progress(self, *, ended: bool = False) -> CampaignProgress:
        """The campaign's :class:`CampaignProgress` now."""
        return self.state.progress(self.c.name, downloads=self.downloads, ended=ended)

    def _check_end(self) -> None:
        if self._submitted.is_set() and self.state.all_finished and not self._in_flight:
            self._finished.set()

    # -- resuming -----------------------------------------------------------------------------

    def _restore(self, snap: Snapshot) -> dict[int, JobState]:
        """Rebuild the state from the journal; returns the last states of the jobs followed."""
        state = self.state
        index_of: dict[int, int] = {}
        for virtual, job_id in snap.jobs.items():
            index, attempt = split_index(virtual)
            index_of[job_id] = index
            if attempt == 1 and index < self.total:
                state.assign(index, job_id, 1)
        for record in snap.retries:
            if record.index >= self.total:
                continue
            if record.state == "done":
                state.assign(record.index, record.job_id, record.attempt)
                index_of[record.job_id] = record.index
                state.retries += 1
                self._refused.pop(record.index, None)
            elif record.state == "failed":
                state.attempt[record.index] = record.attempt
                self._refused[record.index] = record
                if record.method == RetryMethod.RESCHEDULE:
                    self._resubmit_only.add(record.index)
            else:
                self._intents[record.index] = record
        state.failed_once.update(index_of[j] for j in snap.failed if j in index_of)
        state.braked = self.policy.brakes(len(state.failed_once), self.total)
        initial: dict[int, JobState] = {}
        for index in range(self.total):
            job_id = state.job_id[index]
            if not job_id:
                continue
            last = snap.last.get(job_id)
            seen = last[1] if last is not None and last[0] == state.attempt[index] else None
            if index in self._intents or index in self._refused:
                failed = snap.last.get(
                    self._intents[index].old_job_id if index in self._intents else job_id
                )
                failure = failed[1] if failed is not None else JobState(job_id, JobStatus.FAILED)
                state.set_status(index, failure.status)
                self._resumed_failures.append((index, failure))
                state.set_phase(index, Phase.RETRYING)
                continue
            if seen is None:
                state.set_phase(index, Phase.ACTIVE)
                continue
            status = seen.status
            state.set_status(index, status)
            if status in _DONE:
                if not self.downloads:
                    state.set_phase(index, Phase.DONE)
                elif job_id in snap.downloads and self._in_place(job_id):
                    state.set_phase(index, Phase.FETCHED)
                else:
                    # Fetched again when its folder is gone (the downloader checks the rest).
                    state.set_phase(index, Phase.FETCHING)
                    self._send_ids.send_nowait(job_id)
            elif self.policy.is_failure(status):
                state.set_phase(index, Phase.RETRYING)
                self._resumed_failures.append((index, seen))
            elif status in _OWNER:
                state.set_phase(index, Phase.KILLED)
            else:
                state.set_phase(index, Phase.ACTIVE)
                initial[job_id] = seen
        return initial

    def _in_place(self, job_id: int) -> bool:
        dest = self.c.dest
        return dest is not None and (dest / str(job_id)).is_dir()

    def _resume_retries(self, snap: Snapshot) -> None:
        """Act on the failures the journal left: redo journaled retries, decide the others."""
        if self.state.braked:
            self.emit(BrakeEngaged(len(self.state.failed_once), self.total, self._fraction))
        now = time.time()
        for index, failure in self._resumed_failures:
            intent = self._intents.get(index)
            if intent is not None:
                retry = _Retry(
                    index,
                    intent.attempt,
                    intent.old_job_id,
                    failure,
                    RetryMethod(intent.method),
                )
                self._retries[index] = retry
                self._journaled.add(index)
                self._schedule(index, 0.0)
                continue
            seen_at = failure.time.timestamp() if failure.time is not None else now
            self._decide(index, failure, max(0.0, seen_at + self.policy.delay - now))
        self._resumed_failures = []
        self._intents = {}
        self._refused = {}

    @property
    def _fraction(self) -> float:
        return self.policy.max_failed_fraction

    # -- submission -------------------------------------------------------------------------

    async def _submit_all(self) -> None:
        c = self.c
        submitter = Submitter(
            self.backend,
            replace(c.dirac._submit_config, campaign=c.name),
            journal=c.journal,
            gate=c.dirac.gate,
        )
        refused: SubmissionError | None = None
        outages = 0
        while True:
            try:
                async with submitter.stream(c.job) as submitted:
                    async for item in submitted:
                        self._on_submitted(item)
            except SubmissionError as exc:
                if _unavailable(exc):
                    # The service stayed down past the gate's retries: wait, then go on from
                    # the journal (what was created is confirmed or swept, nothing twice).
                    outages += 1
                    await self._outage("submission", outages, exc)
                    continue
                if not exc.failures:
                    raise
                refused = exc
            break
        assert self.records is not None
        if refused is None:
            await self.records.submitted()
        else:
            logger.warning("campaign %s: %s", c.name, refused)
            state = self.state
            for index in range(self.total):
                if state.phase[index] == Phase.UNSUBMITTED:
                    state.set_phase(index, Phase.GAVE_UP)
                    self.emit(GaveUp(index, 0, 0, f"submission refused: {refused}"))
        self._submitted.set()
        self._check_end()

    def _on_submitted(self, item: SubmittedJob) -> None:
        state = self.state
        index = item.index
        if state.job_id[index]:
            return  # known from the journal already
        state.assign(index, item.job_id, 1)
        state.set_phase(index, Phase.ACTIVE)
        assert self.stream is not None
        self.stream.add((item.job_id,))

    # -- following ----------------------------------------------------------------------------

    async def _follow(self, stream: TrackStream) -> None:
        on_job = self._on_job
        async for event in stream:
            if isinstance(event, JobEvent):
                on_job(event)
            else:
                self._on_poll(event)

    def _on_poll(self, event: TrackEvent) -> None:
        assert isinstance(event, PollFailed | PollRecovered | JobVanished)
        self.emit(PollProblem(event))
        if isinstance(event, JobVanished):
            index = self.state.by_id.get(event.job_id)
            if index is not None and self.state.phase[index] == Phase.ACTIVE:
                self.state.set_phase(index, Phase.VANISHED)
                self._check_end()

    def _on_job(self, event: JobEvent) -> None:
        state = self.state
        index = state.by_id.get(event.job_id)
        if index is None or state.phase[index] != Phase.ACTIVE:
            return  # an attempt the campaign no longer follows
        attempt = state.attempt[index]
        new = event.new
        when = new.time if new.time is not None else event.seen
        assert self.records is not None
        self.records.add_history(event.job_id, attempt, new, when.timestamp())
        status = new.status
        state.set_status(index, status)
        self.emit(JobChanged(index, attempt, event))
        if status in _DONE:
            if self.downloads:
                state.set_phase(index, Phase.FETCHING)
                self._send_ids.send_nowait(event.job_id)
            else:
                state.set_phase(index, Phase.DONE)
                self._check_end()
        elif self.policy.is_failure(status):
            if not status.final and self.stream is not None:
                self.stream.remove((event.job_id,))  # Stalled: the campaign acts on it now
            state.set_phase(index, Phase.RETRYING)
            self._failed(index, new)
        elif status in _OWNER:
            state.set_phase(index, Phase.KILLED)
            self._check_end()

    # -- failures -----------------------------------------------------------------------------

    def _failed(self, index: int, failure: JobState) -> None:
        state = self.state
        if index not in state.failed_once:
            state.failed_once.add(index)
            if not state.braked and self.policy.brakes(len(state.failed_once), self.total):
                self._brake()
        self._decide(index, failure, self.policy.delay)

    def _brake(self) -> None:
        state = self.state
        state.braked = True
        self.emit(BrakeEngaged(len(state.failed_once), self.total, self._fraction))
        # Retries waiting for their delay are given up; those being made go on.
        keep: list[tuple[float, int]] = []
        for due, index in self._due:
            if index in self._journaled:
                keep.append((due, index))
            elif self._retries.pop(index, None) is not None:
                self._give_up(index, "brake: too many jobs of the campaign failed")
        heapq.heapify(keep)
        self._due = keep

    def _decide(self, index: int, failure: JobState, delay: float) -> None:
        state = self.state
        attempt = state.attempt[index]
        if attempt >= self.policy.max_attempts:
            self._give_up(index, f"{attempt} attempts used up (last: {failure.status})")
            return
        if state.braked:
            self._give_up(index, "brake: too many jobs of the campaign failed")
            return
        method = self.policy.retry_method
        if index in self._resubmit_only or failure.status is not JobStatus.FAILED:
            # DIRAC reschedules Failed jobs only (a Stalled one cannot move to Rescheduled).
            method = RetryMethod.RESUBMIT
        self._retries[index] = _Retry(index, attempt + 1, state.job_id[index], failure, method)
        self._schedule(index, delay)

    def _schedule(self, index: int, delay: float) -> None:
        heapq.heappush(self._due, (anyio.current_time() + delay, index))
        self._wake_retries.set()

    def _give_up(self, index: int, reason: str) -> None:
        state = self.state
        state.set_phase(index, Phase.GAVE_UP)
        self.emit(GaveUp(index, state.job_id[index], state.attempt[index], reason))
        self._check_end()

    # -- retries ------------------------------------------------------------------------------

    async def _retry_loop(self) -> None:
        while True:
            if not self._due:
                await self._wake_retries.wait()
                self._wake_retries = anyio.Event()
                continue
            wait = self._due[0][0] - anyio.current_time()
            if wait > 0:
                with anyio.move_on_after(wait):
                    await self._wake_retries.wait()
                    self._wake_retries = anyio.Event()
                continue
            now = anyio.current_time()
            batch: list[_Retry] = []
            while self._due and self._due[0][0] <= now:
                _, index = heapq.heappop(self._due)
                retry = self._retries.pop(index, None)
                if retry is not None:
                    batch.append(retry)
            if batch:
                self._in_flight += 1
                try:
                    await self._retry(batch)
                finally:
                    self._in_flight -= 1
                    self._check_end()

    async def _retry(self, batch: list[_Retry]) -> None:
        assert self.records is not None
        fresh = [r for r in batch if r.index not in self._journaled]
        with anyio.CancelScope(shield=True):
            await self.records.retry_intents(
                (r.index, r.attempt, str(r.method), r.old_job_id, r.reason) for r in fresh
            )
        self._journaled.update(r.index for r in fresh)
        reschedule = [r for r in batch if r.method is RetryMethod.RESCHEDULE]
        resubmit = [r for r in batch if r.method is RetryMethod.RESUBMIT]
        if reschedule:
            await self._reschedule(reschedule)
        if resubmit:
            await self._resubmit(resubmit)

    async def _reschedule(self, retries: list[_Retry]) -> None:
        pending = {r.old_job_id: r for r in retries}
        done: list[_Retry] = []
        refused: list[tuple[_Retry, str]] = []
        step = self.backend.capabilities.max_ids_per_update
        failures = 0
        while pending:
            try:
                # Only jobs still exactly as they failed are sent: one a lost reply
                # rescheduled already shows a change, and is not rescheduled twice.
                states = await self._status(list(pending))
                applied = [j for j in pending if not _unchanged(states.get(j), pending[j].failure)]
                done.extend(pending.pop(job_id) for job_id in applied)
                todo = list(pending)
                for start in range(0, len(todo), step):
                    part = todo[start : start + step]
                    result = await self._request(
                        lambda part=part: self.backend.reschedule(part),  # type: ignore[misc]
                        retry=False,
                    )
                    done.extend(pending.pop(j) for j in result.done)
                    for job_id, why in result.refused.items():
                        refused.append((pending.pop(job_id), why))
            except TransientError as exc:
                failures += 1
                await self._outage("reschedule", failures, exc)
            except (InvalidTransitionError, JobNotFoundError) as exc:
                refused.extend((pending.pop(job_id), str(exc)) for job_id in list(pending))
        await self._settle([(r, r.old_job_id) for r in done], refused)

    async def _status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        page = self.backend.capabilities.max_ids_per_status
        found: dict[int, JobState] = {}
        for start in range(0, len(job_ids), page):
            part = list(job_ids[start : start + page])
            found.update(await self._request(lambda part=part: self.backend.status(part)))  # type: ignore[misc]
        return found

    async def _outage(self, what: str, failures: int, exc: BaseException) -> None:
        """Wait before trying again a request the gate gave up on (the service is down).

        A campaign outlives any outage: it waits by the gate's retry policy (growing up to its
        ``max_backoff``) and tries again, for as long as it runs.
        """
        wait = self.c.dirac.gate.limits.retry.backoff(failures)
        logger.warning(
            "campaign %s: %s failed (%s); trying again in %.1f s", self.c.name, what, exc, wait
        )
        await anyio.sleep(wait)

    def _chunk(self, retry: _Retry) -> SubmitChunk:
        chunk = next(iter(chunks_of(self._template, 1, retry.index)))
        virtual = virtual_index(retry.index, retry.attempt)
        return replace(chunk, jobs=tuple(replace(job, index=virtual) for job in chunk.jobs))

    async def _resubmit(self, retries: list[_Retry]) -> None:
        # The first submission holds the journal's submission lock until it has finished.
        await self._submitted.wait()
        stalled = [r.old_job_id for r in retries if not r.failure.status.final]
        failures = 0
        while stalled:
            try:
                # One live attempt per job: a Stalled job is stopped before it is replaced.
                await self._request(lambda: self.backend.kill(stalled))
                break
            except TransientError as exc:
                failures += 1
                await self._outage("kill", failures, exc)
        by_virtual = {virtual_index(r.index, r.attempt): r for r in retries}
        c = self.c
        submitter = Submitter(
            self.backend,
            replace(c.dirac._submit_config, campaign=c.name),
            journal=c.journal,
            gate=c.dirac.gate,
        )
        made: list[tuple[_Retry, int]] = []
        error = ""
        while by_virtual:
            try:
                chunks = [self._chunk(r) for r in by_virtual.values()]
                async with submitter.stream(chunks) as submitted:
                    async for item in submitted:
                        retry = by_virtual.pop(item.index, None)
                        if retry is not None:
                            made.append((retry, item.job_id))
            except SubmissionError as exc:
                if _unavailable(exc):
                    # The service is down, not refusing: no attempt is used, try again.
                    failures += 1
                    await self._outage("resubmission", failures, exc)
                    continue
                error = str(exc)
            break
        refused = [(r, error or "not submitted") for r in by_virtual.values()]
        await self._settle(made, refused)

    async def _settle(
        self, made: list[tuple[_Retry, int]], refused: list[tuple[_Retry, str]]
    ) -> None:
        """Journal the retries made and refused, then follow the new attempts."""
        assert self.records is not None
        with anyio.CancelScope(shield=True):
            await self.records.retries_settled(
                [(r.index, r.attempt, job_id) for r, job_id in made],
                [(r.index, r.attempt, why) for r, why in refused],
            )
        state = self.state
        stream = self.stream
        assert stream is not None
        self._journaled.difference_update(r.index for r, _ in made)
        self._journaled.difference_update(r.index for r, _ in refused)
        for retry, job_id in made:
            index = retry.index
            stream.remove((retry.old_job_id,))
            state.assign(index, job_id, retry.attempt)
            state.set_phase(index, Phase.ACTIVE)
            state.retries += 1
            stream.add((job_id,))
            self.emit(
                RetryStarted(
                    index, retry.attempt, retry.old_job_id, job_id, retry.method, retry.reason
                )
            )
        for retry, why in refused:
            index = retry.index
            state.attempt[index] = retry.attempt
            if retry.method is RetryMethod.RESCHEDULE:
                self._resubmit_only.add(index)
            self.emit(RetryFailed(index, retry.attempt, retry.old_job_id, why))
            self._decide(index, retry.failure, self.policy.delay)

    # -- downloads ----------------------------------------------------------------------------

    async def _download_loop(self) -> None:
        c = self.c
        assert c.dest is not None
        async with Downloader(
            self.backend, c.dirac._download_config, journal=c.journal, gate=c.dirac.gate
        ) as dl:
            await dl.download(self._receive_ids, c.dest, on_result=self._on_download)

    def _on_download(self, result: DownloadResult) -> None:
        state = self.state
        index = state.by_id.get(result.job_id)
        if index is None:
            return
        if result.ok:
            state.set_phase(index, Phase.FETCHED)
        else:
            state.set_phase(index, Phase.FETCH_FAILED)
            assert self.records is not None
            self.records.note_download_failure(result.job_id, result.error or "")
        self.emit(DownloadFinished(index, result))
        self._check_end()

    # -- the journal --------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        records = self.records
        assert records is not None
        while True:
            await anyio.sleep(_FLUSH_EVERY)
            if records.buffered:
                with anyio.CancelScope(shield=True):
                    await records.flush()
