"""``AsyncDirac``: the asynchronous client, one object per application.

It owns one backend (and so one HTTP connection pool), one request gate (in-flight cap, rate
limit, retries: :class:`~aiodirac.Limits`) that every request it sends passes, and the campaign
journal when one is named. The work itself is done
by the engine: :class:`~aiodirac._engine.submit._submitter.Submitter`, :class:`~aiodirac._engine.track._tracker.Tracker`,
:class:`~aiodirac._engine.download._downloader.Downloader`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self, Unpack

import anyio

from aiodirac._engine._gate import Limits, RequestGate
from aiodirac._engine.download._model import DownloadConfig
from aiodirac._engine.submit._model import SubmitConfig
from aiodirac._engine.track._config import TrackConfig
from aiodirac._job._monitoring import JobSelection
from aiodirac.backends._protocol import Backend

from ._config import choose_backend, default_limits
from ._exceptions import ConfigurationError, InvalidArgumentError, InvalidTransitionError
from ._resource import AsyncResource, ungrouped

# The engine's submitter, tracker, downloader (httpx, its transfer helpers) and the journal
# (sqlite3) are imported by the calls that use them: a client that only asks for statuses, or
# runs a job in the foreground, starts without them (issue 17: local mode as fast as a shell).
if TYPE_CHECKING:
    from aiodirac._campaign import Campaign, CampaignCallback, FailurePolicy
    from aiodirac._engine.download._downloader import Downloader
    from aiodirac._engine.download._model import DownloadProgress, DownloadResult
    from aiodirac._engine.submit._model import SubmittedJob
    from aiodirac._engine.submit._submitter import Submitter
    from aiodirac._engine.track._tracker import TrackCallback, Tracker, TrackStream
    from aiodirac._job._job import Job
    from aiodirac._job._monitoring import (
        CPUSample,
        JobAttributes,
        LoggingRecord,
        SelectConditions,
    )
    from aiodirac._job._status import JobState, JobStatus
    from aiodirac._journal import Journal
    from aiodirac.backends._protocol import ActionResult, OutputSandbox
    from aiodirac.backends.local._foreground import ForegroundOutcome

__all__ = ["AsyncDirac", "JobIDs", "job_ids"]

logger = logging.getLogger("aiodirac")


#: What the client accepts as job IDs: one ID, or many (ints or their decimal strings).
JobIDs = int | str | Iterable[int | str]

_announced: set[str] = set()


def job_ids(ids: JobIDs) -> list[int]:
    """Normalise job IDs: one or many, ints or decimal strings, duplicates removed, order kept.

    Raises:
        InvalidArgumentError: an ID that is not a positive integer.

    Usage: ``job_ids("196")`` -> ``[196]``; ``job_ids([3, "4", 3])`` -> ``[3, 4]``
    """
    items: Iterable[int | str] = [ids] if isinstance(ids, int | str) else ids
    seen: dict[int, None] = {}
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise InvalidArgumentError(f"a job ID must be an integer, not {item!r}")
        try:
            value = int(item)
        except ValueError:
            raise InvalidArgumentError(f"a job ID must be an integer, not {item!r}") from None
        if value <= 0:
            raise InvalidArgumentError(f"a job ID must be positive, not {item!r}")
        seen[value] = None
    return list(seen)


def _with_verify(config: DownloadConfig, verify: bool | str) -> DownloadConfig:
    """The download settings with the client's one TLS setting."""
    if verify is True or config.verify == verify:
        return config
    if config.verify is not True:
        raise ConfigurationError(
            f"verify={verify!r} and DownloadConfig.verify={config.verify!r} disagree: give the "
            "CA certificates once, with verify="
        )
    return replace(config, verify=verify)


class _InputSandboxes:
    """A backend's input sandboxes, seen by the downloader as the sandboxes it fetches."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def output_sandbox(self, job_id: int) -> OutputSandbox:
        return await self._backend.input_sandbox(job_id)


class AsyncDirac(AsyncResource):
    """The asynchronous aiodirac client.

    With no arguments it uses DiracX when ``DIRACX_URL`` is set (or the settings file names a
    server) and the embedded local backend otherwise; see :mod:`aiodirac._config`.

    Args:
        backend: a :class:`Backend`, or ``"local"`` / ``"diracx"``.
        url: a DiracX server URL (implies ``backend="diracx"``).
        token: a DiracX access token, instead of DiracX's credentials file.
        home: the local backend's state folder (default ``$AIODIRAC_HOME``).
        journal: a campaign journal file (SQLite): a run started again with the same journal
            resumes where the last one stopped, submitting, tracking and downloading nothing twice.
        limits: requests in flight, their rate and their retries, for every request this client
            sends (submissions, status, kills, monitoring, sandbox look-ups); default: the
            settings file's ``[limits]``, else :class:`Limits`' defaults.
        submit_config: campaign identity and the two-phase protocol's settings.
        track_config: status polling intervals and buffer.
        download_config: download concurrency, retries and unpacking limits.
        verify: TLS verification of every request and every sandbox transfer: ``True`` (the
            system's CA store), or the CA certificates that sign the servers (a file or a
            folder, e.g. ``/etc/grid-security/certificates``). By default the
            ``DIRACX_CA_PATH`` environment variable (or ``[diracx] ca_path`` in the settings
            file) when set, as for DiracX's own client. It is the downloads'
            ``DownloadConfig.verify`` too; giving both, different, is a
            :class:`ConfigurationError`.

    Usage::

        async with AsyncDirac() as dirac:
            ids = await dirac.submit(job)
            print(await dirac.wait(ids))
            await dirac.download(ids, "out/")
    """

    def __init__(
        self,
        backend: Backend | Literal["local", "diracx"] | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        home: str | os.PathLike[str] | None = None,
        journal: str | os.PathLike[str] | None = None,
        limits: Limits | None = None,
        submit_config: SubmitConfig | None = None,
        track_config: TrackConfig | None = None,
        download_config: DownloadConfig | None = None,
        verify: bool | str | None = None,
    ) -> None:
        self._backend_arg = backend
        self._url = url
        self._token = token
        self._home = home
        self._journal_path = journal
        self._submit_config = submit_config or SubmitConfig()
        self._track_config = track_config or TrackConfig()
        self._download_config = _with_verify(
            download_config or DownloadConfig(), True if verify is None else verify
        )
        self._verify = verify
        self._tls_verify: bool | str | None = None  # what verified DiracX, once connected
        self._stack: AsyncExitStack | None = None
        self._backend: Backend | None = None
        self._journal: Journal | None = None
        self._gate = RequestGate(limits if limits is not None else default_limits())
        self._downloader: Downloader | None = None
        self._downloader_made = anyio.Lock()

    def __repr__(self) -> str:
        state = "open" if self._backend is not None else "closed"
        where = self._backend.description if self._backend is not None else "not connected"
        return f"<AsyncDirac [{state}] {where}>"

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def open(self) -> None:
        """Connect the backend and open the journal (done by ``async with``).

        Usage: ``dirac = AsyncDirac(); await dirac.open()``
        """
        if self._stack is not None:
            return
        stack = AsyncExitStack()
        try:
            backend = self._make_backend()
            self._backend = await stack.enter_async_context(backend)
            if self._journal_path is not None:
                from aiodirac._journal import Journal

                self._journal = await Journal.open(self._journal_path)
                stack.push_async_callback(self._journal.aclose)
            if isinstance(self._tls_verify, str) and self._download_config.verify is True:
                # the installation's CA signs its sandbox store too (every download uses it)
                self._download_config = dataclasses.replace(
                    self._download_config, verify=self._tls_verify
                )
        except BaseException:
            await stack.aclose()
            self._backend = self._journal = self._downloader = None
            raise
        self._stack = stack

    async def aclose(self) -> None:
        """Close the backend's connections and the journal. Idempotent.

        Usage: ``await dirac.aclose()``
        """
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self._backend = self._journal = self._downloader = None

    def _make_backend(self) -> Backend:
        if isinstance(self._backend_arg, Backend):
            backend: Backend = self._backend_arg
            # A backend built with its installation's CA: the sandbox store is signed by it too.
            given = getattr(backend, "verify", None)
            if self._verify is None and isinstance(given, str):
                self._tls_verify = given
        else:
            choice = choose_backend(self._backend_arg, url=self._url)
            if choice.kind == "local":
                from aiodirac.backends.local import LocalBackend

                home = self._home if self._home is not None else choice.local_home
                backend = LocalBackend(home)
            else:
                from aiodirac.backends.diracx import DiracXBackend

                verify = self._verify if self._verify is not None else choice.ca_path or True
                self._tls_verify = verify
                backend = DiracXBackend(
                    choice.url,
                    token=self._token,
                    credentials_path=choice.credentials_path,
                    verify=verify,
                )
            reason = choice.reason
        if not isinstance(self._backend_arg, Backend):
            key = f"{type(backend).__name__} {backend.description}"
            if key not in _announced:
                _announced.add(key)
                logger.info("aiodirac uses the %s (%s)", backend.description, reason)
        return backend

    @property
    def backend(self) -> Backend:
        """The connected backend.

        Raises:
            RuntimeError: the client is not open (use ``async with AsyncDirac() as dirac``).
        """
        if self._backend is None:
            raise RuntimeError("AsyncDirac is not open: use 'async with AsyncDirac() as dirac:'")
        return self._backend

    @property
    def gate(self) -> RequestGate:
        """The request gate every request of this client passes (see :class:`Limits`).

        Usage: ``dirac.gate.limits.rate``
        """
        return self._gate

    @property
    def journal(self) -> Journal | None:
        """The campaign journal, when the client was given one."""
        return self._journal

    # ------------------------------------------------------------------ submission
    def _submitter(self) -> Submitter:
        from aiodirac._engine.submit._submitter import Submitter

        return Submitter(
            self.backend,
            self._submit_config,
            journal=self._journal,
            gate=self._gate,
        )

    async def submit(self, jobs: Job | Iterable[Job] | AsyncIterable[Job]) -> list[int]:
        """Submit one job, a parametric job, or many jobs; return their IDs in job order.

        Every job is created exactly once, even through retries, timeouts and restarts with the
        same journal (DIRAC's two-phase bulk protocol, see :class:`~aiodirac._engine.submit._submitter.Submitter`).

        Raises:
            SubmissionError: some chunks failed for good; ``.submitted`` holds the IDs created.
            JobDescriptionError: a job cannot be described (before anything is sent).

        Usage: ``ids = await dirac.submit(job)``
        """
        return await self._submitter().submit(jobs)

    def submit_stream(
        self, jobs: Job | Iterable[Job] | AsyncIterable[Job]
    ) -> AbstractAsyncContextManager[AsyncIterator[SubmittedJob]]:
        """Submit jobs and get each one as soon as it is confirmed.

        Usage::

            async with dirac.submit_stream(jobs) as submitted:
                async for s in submitted:
                    print(s.job_id, s.index)
        """
        return self._submitter().stream(jobs)

    async def run_local(
        self, job: Job, cwd: str | os.PathLike[str] | None = None
    ) -> list[ForegroundOutcome]:
        """Run every concrete job of ``job`` here and now, one after the other, each in its own
        ``Local_<random>_JobDir`` folder of ``cwd`` (default: the current folder): DIRAC's local
        mode without its defects (every parametric job runs, ``std.out`` holds the real output,
        the outputs stay in the job's folder). No backend is needed: the client need not be open.

        Raises:
            InvalidRequestError: a grid (``LFN:``) input or a missing input file (nothing runs).
            JobDescriptionError: the job cannot be expanded.

        Usage: ``for run in await dirac.run_local(job): print(run.workdir, run.exit_status)``
        """
        from aiodirac.backends.local._foreground import run_in_foreground

        folder = Path(cwd) if cwd is not None else Path.cwd()
        return await anyio.to_thread.run_sync(run_in_foreground, job, folder)

    # ------------------------------------------------------------------ status
    async def status(self, ids: JobIDs) -> dict[int, JobState]:
        """The current state of jobs, in as few requests as the backend allows.

        Unknown IDs are absent from the answer.

        Usage: ``states = await dirac.status([196, 197])``
        """
        wanted = job_ids(ids)
        backend = self.backend
        page = backend.capabilities.max_ids_per_status
        pages = [wanted[i : i + page] for i in range(0, len(wanted), page)]
        found: dict[int, JobState] = {}

        async def one(chunk: Sequence[int]) -> None:
            found.update(await self._gate.call(lambda: backend.status(chunk)))

        with ungrouped():
            async with anyio.create_task_group() as tg:
                for chunk in pages:
                    tg.start_soon(one, chunk)
        return {job_id: found[job_id] for job_id in wanted if job_id in found}

    async def summary(self, ids: JobIDs) -> dict[JobStatus, int]:
        """How many of these jobs are in each status.

        Usage: ``await dirac.summary(ids)`` -> ``{JobStatus.DONE: 10, ...}``
        """
        wanted = job_ids(ids)
        backend = self.backend
        page = backend.capabilities.max_ids_per_status
        counts: dict[JobStatus, int] = {}
        for i in range(0, len(wanted), page):
            ask = functools.partial(backend.summary, wanted[i : i + page])
            for status, n in (await self._gate.call(ask)).items():
                counts[status] = counts.get(status, 0) + n
        return counts

    def track(
        self,
        ids: JobIDs,
        *,
        callbacks: Sequence[TrackCallback] = (),
        sealed: bool = True,
    ) -> AbstractAsyncContextManager[TrackStream]:
        """Follow jobs until they are final, as a stream of events (batched polling).

        With ``sealed=False`` the stream does not end before ``events.seal()``, so that jobs
        still being submitted can be ``events.add()``-ed (a sealed stream ends as soon as
        every job it has is final).

        Usage::

            async with dirac.track(ids) as events:
                async for event in events:
                    print(event)
        """
        return self._tracker().track(job_ids(ids), callbacks=callbacks, sealed=sealed)

    async def wait(
        self,
        ids: JobIDs,
        *,
        # A deadline for the whole wait whose error carries the states so far (fail_after cannot).
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> dict[int, JobState]:
        """Wait until every job is final; return their final states.

        Usage: ``final = await dirac.wait(ids, timeout=3600)``
        """
        return await self._tracker().wait(job_ids(ids), timeout=timeout)

    def _tracker(self) -> Tracker:
        from aiodirac._engine.track._tracker import Tracker

        return Tracker(
            self.backend,
            self._track_config,
            journal=self._journal,
            gate=self._gate,
        )

    # ------------------------------------------------------------------ campaigns
    def campaign(
        self,
        job: Job,
        *,
        journal: str | os.PathLike[str],
        dest: str | os.PathLike[str] | None = None,
        policy: FailurePolicy | None = None,
        name: str | None = None,
        callbacks: Sequence[CampaignCallback] = (),
        track_config: TrackConfig | None = None,
    ) -> Campaign:
        """A campaign of ``job``: submitted once, followed, fetched, failed jobs retried.

        Nothing starts before it is run (``async with campaign`` or ``await campaign.run()``);
        the arguments are checked now. Run again with the same job and journal, it resumes.

        Args:
            job: the job, parametric or not.
            journal: the campaign's journal file (SQLite; created if missing).
            dest: outputs go to ``<dest>/<job id>/`` as each job is Done; ``None``: none.
            policy: the :class:`~aiodirac.FailurePolicy` (default: up to 3 attempts by
                reschedule, 60 s after the failure, no retry once 25% of the jobs failed).
            name: the campaign's name (default: the journal's file name without suffix).
            callbacks: called with every :data:`~aiodirac.CampaignEvent`, in order.
            track_config: status polling settings (default: the client's).

        Raises:
            InvalidArgumentError: a job or a policy the campaign cannot run.

        Usage::

            campaign = dirac.campaign(job, journal="scan.db", dest="out/")
            async with campaign:
                async for event in campaign:
                    print(event)
        """
        from aiodirac._campaign import Campaign

        return Campaign(
            self,
            job,
            journal=journal,
            dest=dest,
            policy=policy,
            name=name,
            callbacks=callbacks,
            track_config=track_config,
        )

    # ------------------------------------------------------------------ outputs
    async def download(
        self,
        ids: JobIDs | AsyncIterable[int],
        dest: str | os.PathLike[str] = ".",
        *,
        no_job_dir: bool = False,
        unpack: bool = True,
        progress: Callable[[DownloadProgress], object] | None = None,
    ) -> list[DownloadResult]:
        """Fetch output sandboxes in parallel into ``<dest>/<job id>/``.

        Each job gets its own result: a job that is not final, has no sandbox, or whose archive is
        unsafe is reported there, and the others still download.

        Usage: ``results = await dirac.download(ids, "out/")``
        """
        downloader = await self._open_downloader()
        source: Iterable[int] | AsyncIterable[int]
        source = ids if isinstance(ids, AsyncIterable) else job_ids(ids)
        return await downloader.download(
            source, Path(dest), no_job_dir=no_job_dir, unpack=unpack, progress=progress
        )

    async def _open_downloader(self) -> Downloader:
        """The client's downloader, made on first use (its HTTP client and helpers with it)
        and closed with the client."""
        if self._stack is None or self._backend is None:
            raise RuntimeError("AsyncDirac is not open: use 'async with AsyncDirac() as dirac:'")
        async with self._downloader_made:
            if self._downloader is None:
                from aiodirac._engine.download._downloader import Downloader

                self._downloader = await self._stack.enter_async_context(
                    Downloader(
                        self._backend,
                        self._download_config,
                        journal=self._journal,
                        gate=self._gate,
                    )
                )
            return self._downloader

    # ------------------------------------------------------------------ job control
    async def kill(self, ids: JobIDs) -> list[int]:
        """Kill jobs; running ones are stopped.

        Raises:
            InvalidTransitionError: some jobs cannot be killed in their status (the others are).

        Usage: ``await dirac.kill([196])``
        """
        return await self._act("kill", job_ids(ids))

    async def delete(self, ids: JobIDs) -> list[int]:
        """Delete jobs (running ones are killed first, as DIRAC does).

        Raises:
            InvalidTransitionError: some jobs cannot be deleted in their status (the others are).

        Usage: ``await dirac.delete([196])``
        """
        return await self._act("delete", job_ids(ids))

    async def reschedule(self, ids: JobIDs) -> list[int]:
        """Run jobs again from the start (DIRAC's reschedule).

        Raises:
            InvalidTransitionError: some jobs cannot be rescheduled in their status.

        Usage: ``await dirac.reschedule([196])``
        """
        return await self._act("reschedule", job_ids(ids))

    async def _act(
        self, action: Literal["kill", "delete", "reschedule"], ids: list[int]
    ) -> list[int]:
        backend = self.backend
        method = getattr(backend, action)
        step = backend.capabilities.max_ids_per_update
        done: list[int] = []
        refused: dict[int, str] = {}
        for i in range(0, len(ids), step):
            act = functools.partial(method, ids[i : i + step])
            # Kill and delete are safe to repeat; a reschedule is not (a lost answer to one
            # that was applied, repeated, would start the job a second time): one attempt.
            result: ActionResult = await (
                self._gate.once(act) if action == "reschedule" else self._gate.call(act)
            )
            done.extend(result.done)
            refused.update(result.refused)
        if refused:
            detail = "; ".join(f"job {job_id}: {why}" for job_id, why in sorted(refused.items()))
            applied = f" ({action} applied to {len(done)} other jobs)" if done else ""
            raise InvalidTransitionError(
                f"cannot {action} {len(refused)} job(s): {detail}{applied}",
                job_ids=tuple(sorted(refused)),
                requested=action,
            )
        return done

    async def get_jdl(self, job_id: int | str) -> str:
        """The JDL a job was stored with.

        Raises:
            NotSupportedError: the server has no endpoint for it (DiracX 0.7.0).

        Usage: ``print(await dirac.get_jdl(196))``
        """
        (one,) = job_ids(job_id)
        return await self.backend.get_jdl(one)

    async def peek(self, job_id: int | str) -> str:
        """The standard output a job has produced so far (DIRAC's ``peekJob``).

        Usage: ``print(await dirac.peek(196))``
        """
        (one,) = job_ids(job_id)
        return await self.backend.peek(one)

    # ------------------------------------------------------------------ job monitoring
    async def select(self, **conditions: Unpack[SelectConditions]) -> list[int]:
        """IDs of the jobs meeting every condition (DIRAC's ``selectJobs``), increasing.

        Conditions, by keyword: ``status``, ``minor_status``, ``application_status``, ``site``,
        ``owner``, ``owner_group``, ``job_group`` (each one value or several: any of them
        matches) and ``since``, which keeps the jobs last updated at or after that moment: a
        date (``"2026-12-04"`` is midnight UTC, as in DIRAC) or a datetime. Without ``since``
        time does not filter (DIRAC's ``selectJobs`` defaults to today: :class:`Dirac` does).

        Raises:
            InvalidArgumentError: an unknown status or condition, an empty value or a bad date
                (before any request is sent).

        Usage: ``failed = await dirac.select(status="Failed", job_group="scan", since="2026-12-01")``
        """
        selection = JobSelection.build(**conditions)
        backend = self.backend
        return await self._gate.call(lambda: backend.select_jobs(selection))

    async def attributes(self, ids: JobIDs) -> dict[int, JobAttributes]:
        """DIRAC's attributes of jobs (``getJobAttributes``, ``getJobSummary``); unknown IDs are
        absent. As many requests as the backend's status page size needs.

        Usage: ``(await dirac.attributes(196))[196].end_exec_time``
        """
        wanted = job_ids(ids)
        backend = self.backend
        page = backend.capabilities.max_ids_per_status
        found: dict[int, JobAttributes] = {}
        for i in range(0, len(wanted), page):
            found.update(
                await self._gate.call(functools.partial(backend.attributes, wanted[i : i + page]))
            )
        return {job_id: found[job_id] for job_id in wanted if job_id in found}

    async def logging_info(self, job_id: int | str) -> list[LoggingRecord]:
        """A job's status history, oldest first (DIRAC's ``getJobLoggingInfo``).

        Raises:
            JobNotFoundError: unknown job.

        Usage: ``for r in await dirac.logging_info(196): print(r.time, r.status, r.source)``
        """
        (one,) = job_ids(job_id)
        backend = self.backend
        return await self._gate.call(lambda: backend.logging_info(one))

    async def parameters(self, job_id: int | str) -> dict[str, str]:
        """The parameters a job's wrapper reported (DIRAC's ``getJobParameters``).

        Raises:
            JobNotFoundError: unknown job.
            NotSupportedError: the backend cannot read job parameters (DiracX 0.7.0).

        Usage: ``(await dirac.parameters(196))["TotalCPUTime(s)"]``
        """
        (one,) = job_ids(job_id)
        backend = self.backend
        return await self._gate.call(lambda: backend.parameters(one))

    async def input_data(self, job_id: int | str) -> list[str]:
        """A job's input data LFNs (DIRAC's ``getJobInputData``).

        Raises:
            JobNotFoundError: unknown job.
            NotSupportedError: the backend cannot tell (DiracX 0.7.0).

        Usage: ``await dirac.input_data(196)`` -> ``["LFN:/vo/data/f1"]``
        """
        (one,) = job_ids(job_id)
        backend = self.backend
        return await self._gate.call(lambda: backend.input_data(one))

    async def output_lfns(self, job_id: int | str) -> list[str]:
        """The LFNs a job uploaded as output data (its ``UploadedOutputData`` parameter); empty
        when it uploaded none (DIRAC's ``getJobOutputLFNs``).

        Raises:
            JobNotFoundError: unknown job.
            NotSupportedError: the backend cannot read job parameters (DiracX 0.7.0).

        Usage: ``await dirac.output_lfns(196)``
        """
        uploaded = (await self.parameters(job_id)).get("UploadedOutputData", "")
        return [lfn for lfn in uploaded.replace(" ", "").split(",") if lfn]

    async def cpu_time(self, job_id: int | str) -> list[CPUSample]:
        """A job's CPU time readings, oldest first (DIRAC's ``getJobCPUTime``).

        Raises:
            JobNotFoundError: unknown job.
            NotSupportedError: the backend does not record CPU time (DiracX 0.7.0).

        Usage: ``samples = await dirac.cpu_time(196); samples[-1].cpu_seconds``
        """
        (one,) = job_ids(job_id)
        backend = self.backend
        return await self._gate.call(lambda: backend.cpu_time(one))

    async def download_input_sandbox(
        self, job_id: int | str, dest: str | os.PathLike[str] = "."
    ) -> DownloadResult:
        """Fetch and unpack a job's input sandbox into ``<dest>/InputSandbox<id>/`` (DIRAC's
        ``getInputSandbox``), as safely as output sandboxes (see :meth:`download`).

        Returns:
            The outcome (``ok`` False with ``error`` when there is none to fetch); a failed
            download leaves no folder behind.

        Raises:
            InvalidArgumentError: a bad ID, or ``InputSandbox<id>`` already exists (as DIRAC).

        Usage: ``result = await dirac.download_input_sandbox(196); print(result.path)``
        """
        (one,) = job_ids(job_id)
        target = Path(dest) / f"InputSandbox{one}"
        if target.exists():
            raise InvalidArgumentError(f"Job input sandbox directory {target} already exists")
        backend = self.backend
        from aiodirac._engine.download._downloader import Downloader

        async with Downloader(
            _InputSandboxes(backend), self._download_config, gate=self._gate
        ) as downloader:
            (result,) = await downloader.download([one], target, no_job_dir=True)
        if not result.ok:
            with contextlib.suppress(OSError):
                target.rmdir()  # only when the failure left it empty
        return result
