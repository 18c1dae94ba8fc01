"""The embedded local backend: jobs run on this machine, no server needed.

See :class:`LocalBackend`. Every method runs its SQLite and file work in a worker thread, so the
event loop never waits on a lock held by another process.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import pwd
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from aiodirac._exceptions import (
    InvalidRequestError,
    JobNotFoundError,
    LocalBackendError,
    SandboxNotAvailableError,
)
from aiodirac._job._jdl import render_jdl
from aiodirac._job._monitoring import CPUSample, JobAttributes, JobSelection, LoggingRecord
from aiodirac._job._spec import SubmitChunk
from aiodirac._job._status import JobState, JobStatus, MinorStatus
from aiodirac.backends._protocol import (
    ActionResult,
    Backend,
    Capabilities,
    OutputSandbox,
    UnconfirmedJob,
)

from . import _agent_control
from ._admin import FINAL_NAMES, CleanReport, LocalJob, job_files, remove_all, size_of
from ._paths import DEFAULT_IDLE_TIMEOUT, StatePaths, default_home
from ._sandbox import INPUT_ARCHIVE_SUFFIX, file_digest, pack_files, store_input_sandbox
from ._store import Store, decode_job

__all__ = ["LocalBackend"]

_T = TypeVar("_T")

logger = logging.getLogger("aiodirac")

#: Statuses in which a job needs a live agent to move on.
_NEEDS_AGENT = frozenset(
    {
        JobStatus.RECEIVED,
        JobStatus.WAITING,
        JobStatus.MATCHED,
        JobStatus.RUNNING,
        JobStatus.COMPLETING,
    }
)
_AGENT_CHECK_INTERVAL = 5.0
_STATUSES = {status.value: status for status in JobStatus}


#: The local backend's OwnerGroup and VO.
_LOCAL = "local"


def _owner(store: Path) -> str:
    """The login name owning the job store: the owner of every job in its state folder."""
    try:
        return pwd.getpwuid(store.stat().st_uid).pw_name
    except (OSError, KeyError):
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return str(os.getuid())


def _timestamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


class LocalBackend(Backend):
    """Runs jobs on this machine, as a grid worker node would, with no server.

    Jobs are stored in a SQLite file under the state folder ``home`` and run by one detached
    agent process per state folder, started on demand: they outlive the process that submitted
    them, so submitting, asking the status and fetching outputs can be separate scripts. The
    agent runs up to ``max_parallel`` jobs at once (default: one per core), each in its own
    working folder, and exits after ``idle_timeout`` seconds with nothing to do. Jobs report
    DIRAC's statuses and the site ``DIRAC.<host>.local``.

    Args:
        home: the state folder; default ``$AIODIRAC_HOME``, else ``$XDG_DATA_HOME/aiodirac``
            (``~/.local/share/aiodirac``).
        max_parallel: jobs the agent runs at once, when this backend starts it.
        keep_workdirs: keep each job's working folder (``<home>/work/<id>.<attempt>``) to debug
            it, when this backend starts the agent.
        idle_timeout: seconds the agent it starts stays up with nothing to do.

    Raises:
        LocalBackendError: from any method, when the state folder or the store cannot be used
            (unwritable folder, damaged store; a store locked too long raises the retryable
            :class:`~aiodirac.backends.local._store.StoreLockedError`).

    Usage::

        async with LocalBackend() as backend:
            ids = await backend.submit(chunk)
            await backend.confirm(ids)
            print(await backend.status(ids))
    """

    capabilities = Capabilities(
        # one chunk is one SQLite transaction and one input sandbox copy: big chunks are cheap
        max_jobs_per_submit=1000,
        max_ids_per_status=10_000,
        max_ids_per_update=10_000,
    )

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        max_parallel: int | None = None,
        keep_workdirs: bool = False,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        root = Path(home).expanduser() if home is not None else default_home()
        self.paths = StatePaths(root.absolute())
        self.max_parallel = max_parallel
        self.keep_workdirs = keep_workdirs
        self.idle_timeout = idle_timeout
        self._store: Store | None = None
        self._open_lock = threading.Lock()
        self._last_agent_check = 0.0

    def __repr__(self) -> str:
        return f"<LocalBackend home={str(self.paths.home)!r}>"

    @property
    def home(self) -> Path:
        """The state folder."""
        return self.paths.home

    @property
    def description(self) -> str:
        """``local backend at <home>``."""
        return f"local backend at {self.paths.home}"

    # -- plumbing ------------------------------------------------------------------------------

    def _db(self) -> Store:
        with self._open_lock:
            if self._store is None:
                self._store = Store(self.paths.store)
            return self._store

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        return await anyio.to_thread.run_sync(func, *args)

    def _ensure_agent(self) -> None:
        self._last_agent_check = time.monotonic()
        if _agent_control.agent_running(self.paths):
            _agent_control.nudge_agent(self.paths)
            return
        _agent_control.start_agent(
            self.paths,
            max_parallel=self.max_parallel,
            idle_timeout=self.idle_timeout,
            keep_workdirs=self.keep_workdirs,
        )

    async def aclose(self) -> None:
        """Close the store connection (the agent and the jobs carry on). Idempotent."""
        with self._open_lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    # -- submission ----------------------------------------------------------------------------

    def _submit(self, chunk: SubmitChunk) -> list[int]:
        if not chunk.jobs:
            raise InvalidRequestError("a submission chunk needs at least one job")
        store = self._db()
        name = f"{time.time_ns()}-{os.getpid()}-{secrets.token_hex(4)}"
        folder = self.paths.sandboxes / name
        try:
            store_input_sandbox(chunk, folder)
        except OSError as exc:
            raise LocalBackendError(
                f"cannot copy the input sandbox into {folder}: {exc}; check the space and "
                f"permissions of {self.paths.home}"
            ) from exc
        try:
            return store.add_chunk(chunk.jobs, name, time.time())
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    async def submit(self, chunk: SubmitChunk) -> list[int]:
        """Store the chunk's jobs unconfirmed (``Submitting``), with a copy of their input sandbox.

        Nothing is stored when the chunk is refused.

        Raises:
            InvalidRequestError: an empty chunk, a grid (``LFN:``) input, a missing input file.
            LocalBackendError: the state folder cannot be written.
        """
        return await self._run(self._submit, chunk)

    def _confirm(self, job_ids: Sequence[int]) -> None:
        store = self._db()
        unknown = set(job_ids) - store.known(job_ids)
        if unknown:
            raise JobNotFoundError(
                f"unknown job IDs: {sorted(unknown)[:10]}", job_ids=tuple(sorted(unknown))
            )
        store.move(
            job_ids,
            source=[JobStatus.SUBMITTING],
            status=JobStatus.RECEIVED,
            minor_status=MinorStatus.JOB_ACCEPTED,
            now=time.time(),
            origin="JobManager",
        )
        self._ensure_agent()

    async def confirm(self, job_ids: Sequence[int]) -> None:
        """Release unconfirmed jobs (``Received`` / ``Job accepted``) and make sure the agent runs.

        Confirming a job twice, or a job already past ``Submitting``, changes nothing.

        Raises:
            JobNotFoundError: some IDs are unknown (nothing is confirmed then).
        """
        if job_ids:
            await self._run(self._confirm, list(job_ids))

    def _discard(self, job_ids: Sequence[int], reason: str) -> None:
        self._db().move(
            job_ids,
            source=[JobStatus.SUBMITTING],
            status=JobStatus.KILLED,
            minor_status=reason,
            now=time.time(),
            origin="JobManager",
        )

    async def discard(self, job_ids: Sequence[int], reason: str) -> None:
        """Kill jobs still unconfirmed (``Killed`` / ``reason``); confirmed ones are left alone."""
        if job_ids:
            await self._run(self._discard, list(job_ids), reason)

    async def find_unconfirmed(
        self,
        *,
        job_group: str | None = None,
        name_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UnconfirmedJob]:
        """Jobs still ``Submitting`` that match every filter (naive datetimes are local time)."""

        def find() -> list[UnconfirmedJob]:
            rows = self._db().unconfirmed(
                job_group=job_group,
                name_prefix=name_prefix,
                since=_timestamp(since),
                until=_timestamp(until),
            )
            return [
                UnconfirmedJob(job_id, name, group, datetime.fromtimestamp(submitted, UTC))
                for job_id, name, group, submitted in rows
            ]

        return await self._run(find)

    # -- monitoring ----------------------------------------------------------------------------

    def _status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        states = {
            job_id: JobState(
                job_id, _STATUSES[status], minor, application, site, datetime.fromtimestamp(t, UTC)
            )
            for job_id, status, minor, application, site, t in self._db().status_rows(job_ids)
        }
        if time.monotonic() - self._last_agent_check > _AGENT_CHECK_INTERVAL and any(
            s.status in _NEEDS_AGENT for s in states.values()
        ):
            # jobs waiting for an agent that died (or never started): start one, it also fails
            # the jobs the dead one left running
            self._last_agent_check = time.monotonic()
            try:
                if not _agent_control.agent_running(self.paths):
                    self._ensure_agent()
            except LocalBackendError as exc:
                # the answer stands; the agent's failure shows in its log and at confirm time
                logger.warning("cannot start the local agent: %s", exc)
        return states

    async def status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        """Current state of the known jobs among ``job_ids`` (unknown IDs are absent).

        One SQL query for any number of IDs. When jobs wait for an agent and none runs (it died),
        a new one is started.
        """
        if not job_ids:
            return {}
        return await self._run(self._status, list(job_ids))

    async def summary(self, job_ids: Sequence[int]) -> dict[JobStatus, int]:
        """Counts of the known jobs among ``job_ids`` per status."""
        if not job_ids:
            return {}
        counts = await self._run(self._db().summary, list(job_ids))
        return {JobStatus(k): v for k, v in counts.items()}

    def _details(self, job_id: int) -> dict[str, Any]:
        details = self._db().job_details(int(job_id))
        if details is None:
            raise JobNotFoundError(
                f"job {job_id} is unknown to {self.description}", job_ids=(job_id,)
            )
        return details

    def _output_sandbox(self, job_id: int) -> OutputSandbox:
        details = self._details(job_id)
        status = JobStatus(details["status"])
        if not status.final:
            raise SandboxNotAvailableError(
                f"job {job_id} is {status.value} ({details['minor_status']}); its output "
                "sandbox exists once it is final",
                job_id=job_id,
            )
        path = details["sandbox_path"]
        if not path:
            why = (
                "it was deleted"
                if status is JobStatus.DELETED
                else "none of its OutputSandbox files existed when it ended, or it never ran"
            )
            raise SandboxNotAvailableError(
                f"job {job_id} ({status.value}) has no output sandbox: {why}", job_id=job_id
            )
        if not os.path.exists(path):
            raise SandboxNotAvailableError(
                f"the output sandbox of job {job_id} is missing from {self.paths.output}",
                job_id=job_id,
            )
        return OutputSandbox(
            job_id=job_id,
            path=path,
            size=details["sandbox_size"],
            sha256=details["sandbox_sha256"],
            format="tar.bz2",
        )

    async def output_sandbox(self, job_id: int) -> OutputSandbox:
        """The job's output sandbox archive (a ``tar.bz2`` in the state folder).

        Raises:
            JobNotFoundError: unknown job.
            SandboxNotAvailableError: not final yet, or no OutputSandbox file existed.
        """
        return await self._run(self._output_sandbox, job_id)

    async def get_jdl(self, job_id: int) -> str:
        """The job's concrete JDL (placeholders substituted), as stored.

        Raises:
            JobNotFoundError: unknown job.
        """

        def jdl() -> str:
            return render_jdl(decode_job(self._details(job_id)["spec"]).attributes)

        return await self._run(jdl)

    async def parameters(self, job_id: int) -> dict[str, str]:
        """The job parameters the agent recorded (``TotalCPUTime(s)``, ``StandardOutput``...).

        Raises:
            JobNotFoundError: unknown job.
        """

        def params() -> dict[str, str]:
            loaded = json.loads(self._details(job_id)["parameters"] or "{}")
            return {str(k): str(v) for k, v in loaded.items()}

        return await self._run(params)

    async def peek(self, job_id: int) -> str:
        """The last lines of the job's standard output: live while it runs, recorded after.

        Raises:
            JobNotFoundError: unknown job.
        """

        def peek() -> str:
            details = self._details(job_id)
            if details["status"] in (JobStatus.RUNNING, JobStatus.COMPLETING):
                live = self.paths.workdir(job_id, details["attempt"]) / "std.out"
                try:
                    data = live.read_bytes()[-8192:]
                    return "\n".join(data.decode(errors="replace").splitlines()[-20:])
                except OSError:
                    pass
            loaded = json.loads(details["parameters"] or "{}")
            return str(loaded.get("StandardOutput", "Not available yet."))

        return await self._run(peek)

    async def history(self, job_id: int) -> list[tuple[str, str, str, datetime, str]]:
        """Every status change of a job, oldest first, as plain tuples.

        Returns:
            ``(Status, MinorStatus, ApplicationStatus, time, source)`` tuples.

        Raises:
            JobNotFoundError: unknown job.
        """
        return [
            (str(r.status), r.minor_status, r.application_status, r.time, r.source)
            for r in await self.logging_info(job_id)
        ]

    async def logging_info(self, job_id: int) -> list[LoggingRecord]:
        """Every status change of a job, oldest first, as DIRAC's JobLoggingDB records them:
        Status, MinorStatus, ApplicationStatus, time and source (``JobManager`` for submission,
        confirmation, kill, delete and reschedule; ``Agent`` for queueing and matching;
        ``JobWrapper`` for what happens while the job runs).

        Raises:
            JobNotFoundError: unknown job.
        """

        def records() -> list[LoggingRecord]:
            self._details(job_id)
            return [
                LoggingRecord(_STATUSES[s], m, a, datetime.fromtimestamp(t, UTC), src)
                for s, m, a, t, src in self._db().history(int(job_id))
            ]

        return await self._run(records)

    async def select_jobs(self, selection: JobSelection) -> list[int]:
        """The jobs of this state folder meeting every condition, in increasing ID order.

        Every job here belongs to the owner of the state folder's store (Owner: that login
        name; OwnerGroup and VO: ``local``).
        """
        conditions = {
            "status": [str(s) for s in selection.status],
            "minor_status": selection.minor_status,
            "application_status": selection.application_status,
            "site": selection.site,
            "job_group": selection.job_group,
        }

        def select() -> list[int]:
            owner = _owner(self.paths.store)
            if (selection.owner and owner not in selection.owner) or (
                selection.owner_group and _LOCAL not in selection.owner_group
            ):
                return []
            return self._db().select(conditions, _timestamp(selection.since))

        return await self._run(select)

    async def attributes(self, job_ids: Sequence[int]) -> dict[int, JobAttributes]:
        """DIRAC's attributes of the known jobs among ``job_ids`` (one SQL query).

        No heartbeats here: ``heart_beat_time`` is ``None``. Owner is the login name,
        OwnerGroup and VO ``local``.
        """
        if not job_ids:
            return {}

        def when(value: float | None) -> datetime | None:
            return None if value is None else datetime.fromtimestamp(value, UTC)

        def build() -> dict[int, JobAttributes]:
            rows = self._db().attribute_rows(list(job_ids))
            owner = _owner(self.paths.store)
            return {
                row.job_id: JobAttributes(
                    job_id=row.job_id,
                    status=_STATUSES[row.status],
                    minor_status=row.minor_status,
                    application_status=row.application_status,
                    site=row.site,
                    job_name=row.name,
                    job_group=row.job_group,
                    job_type=str(row.job_type),
                    owner=owner,
                    owner_group=_LOCAL,
                    vo=_LOCAL,
                    user_priority=row.priority,
                    reschedule_counter=row.reschedules,
                    submission_time=when(row.submitted),
                    last_update_time=when(row.updated),
                    start_exec_time=when(row.started),
                    end_exec_time=when(row.ended),
                    reschedule_time=when(row.rescheduled),
                )
                for row in rows
            }

        return await self._run(build)

    async def input_data(self, job_id: int) -> list[str]:
        """The job's ``InputData`` LFNs: always empty here, since the local backend refuses grid
        inputs at submission.

        Raises:
            JobNotFoundError: unknown job.
        """

        def lfns() -> list[str]:
            return list(decode_job(self._details(job_id)["spec"]).strings("InputData"))

        return await self._run(lfns)

    def _input_sandbox(self, job_id: int) -> OutputSandbox:
        known, folder = self._db().chunk_sandbox(int(job_id))
        if not known:
            raise JobNotFoundError(
                f"job {job_id} is unknown to {self.description}", job_ids=(job_id,)
            )
        source = self.paths.sandboxes / folder if folder else None
        if source is None or not source.is_dir():
            raise SandboxNotAvailableError(
                f"the input sandbox of job {job_id} was removed: the local backend keeps a "
                "submission's input files until every job of it is Done, Killed or Deleted",
                job_id=job_id,
            )
        archive = source.with_name(f"{source.name}{INPUT_ARCHIVE_SUFFIX}")
        try:
            if not archive.is_file():
                entries = sorted(source.iterdir(), key=lambda p: p.name)
                files = [p.name for p in entries if not p.is_dir() or p.is_symlink()]
                folders = [p.name for p in entries if p.is_dir() and not p.is_symlink()]
                pack_files(source, files, folders, archive)
            size, sha = file_digest(archive)
        except OSError as exc:
            raise SandboxNotAvailableError(
                f"cannot read the input sandbox of job {job_id} in {source}: {exc}",
                job_id=job_id,
            ) from exc
        return OutputSandbox(job_id=job_id, path=str(archive), size=size, sha256=sha)

    async def input_sandbox(self, job_id: int) -> OutputSandbox:
        """The job's input sandbox as one ``tar.bz2`` (packed from the stored copy on first use;
        a folder given as input is packed as ``<folder>.tar``, as DIRAC's wrapper packs folders).

        Raises:
            JobNotFoundError: unknown job.
            SandboxNotAvailableError: removed, because every job of its submission ended.
        """
        return await self._run(self._input_sandbox, job_id)

    async def cpu_time(self, job_id: int) -> list[CPUSample]:
        """One reading, taken when the job ended (``TotalCPUTime(s)``); none before.

        Raises:
            JobNotFoundError: unknown job.
        """

        def samples() -> list[CPUSample]:
            details = self._details(job_id)
            used = json.loads(details["parameters"] or "{}").get("TotalCPUTime(s)")
            if used is None:
                return []
            return [CPUSample(datetime.fromtimestamp(details["updated"], UTC), float(used))]

        return await self._run(samples)

    # -- actions -------------------------------------------------------------------------------

    def _act(self, job_ids: Sequence[int], target: JobStatus) -> ActionResult:
        done, refused, stale = self._db().act(job_ids, target, time.time())
        for archive in stale:
            Path(archive).unlink(missing_ok=True)
        if done:
            if target is JobStatus.RESCHEDULED:
                self._ensure_agent()
            else:
                _agent_control.nudge_agent(self.paths)
        return ActionResult(done=tuple(done), refused=refused)

    async def kill(self, job_ids: Sequence[int]) -> ActionResult:
        """Kill jobs (``Killed`` / ``Marked for termination``); running ones are stopped, their
        whole process group, within a quarter of a second. Jobs DIRAC cannot kill (Done, Failed,
        Deleted) are in ``refused`` with their status; unknown ones with ``unknown job``.
        """
        return await self._run(self._act, list(job_ids), JobStatus.KILLED)

    async def delete(self, job_ids: Sequence[int]) -> ActionResult:
        """Delete jobs (``Deleted`` / ``Checking accounting``), stopping running ones and removing
        their output sandbox. Refusals as for :meth:`kill`.
        """
        return await self._run(self._act, list(job_ids), JobStatus.DELETED)

    async def reschedule(self, job_ids: Sequence[int]) -> ActionResult:
        """Run jobs again (``Received`` / ``Job Rescheduled``); after DIRAC's three reschedulings a
        job ends ``Failed`` / ``Maximum of reschedulings reached``. Refusals as for :meth:`kill`.
        """
        return await self._run(self._act, list(job_ids), JobStatus.RESCHEDULED)

    # -- housekeeping --------------------------------------------------------------------------

    async def list_jobs(
        self, *, statuses: Sequence[str] = (), limit: int | None = None
    ) -> list[LocalJob]:
        """Every job of the state folder (or those in ``statuses``), newest first, at most
        ``limit`` (``aiodirac local ps``). A folder with no job store has none: none is created.

        Raises:
            LocalBackendError: the store cannot be read.

        Usage: ``for job in await backend.list_jobs(statuses=["Running"]): print(job.job_id)``
        """
        if self._store is None and not self.paths.store.is_file():
            return []
        rows = await self._run(self._db().list_jobs, list(statuses), limit)
        return [LocalJob.from_row(row) for row in rows]

    async def clean(self, *, older_than: float, dry_run: bool = False) -> CleanReport:
        """Delete final jobs last changed more than ``older_than`` seconds ago and free their
        output archives and working folders (``aiodirac local clean``).

        Jobs still queued or running are never touched. Deleted jobs stay in the store as
        ``Deleted`` (as in DIRAC) and their files are freed.

        Usage: ``report = await backend.clean(older_than=7 * 86400, dry_run=True)``
        """
        cutoff = datetime.fromtimestamp(time.time() - older_than, UTC)
        old = [j for j in await self.list_jobs(statuses=FINAL_NAMES) if j.updated < cutoff]

        def files_and_size() -> tuple[list[Path], int]:
            files = [f for j in old for f in job_files(self.paths, j.job_id)]
            return files, sum(size_of(f) for f in files)

        files, freed = await self._run(files_and_size)
        to_delete = [j.job_id for j in old if j.status != JobStatus.DELETED]
        deleted = len(to_delete)
        if not dry_run:
            deleted = len((await self.delete(to_delete)).done) if to_delete else 0
            await self._run(remove_all, files)
        return CleanReport(
            jobs=tuple(sorted(j.job_id for j in old)),
            deleted=deleted,
            files_removed=len(files),
            bytes_freed=freed,
            dry_run=dry_run,
        )

    # -- the agent -----------------------------------------------------------------------------

    async def agent_pid(self) -> int | None:
        """The PID of the agent running this state folder's jobs, or ``None``.

        Usage: ``await backend.agent_pid()``
        """
        return await self._run(_agent_control.agent_pid, self.paths)

    async def start_agent(self) -> bool:
        """Start the agent unless it runs; ``True`` when this call started it.

        Raises:
            LocalBackendError: it could not start.

        Usage: ``await backend.start_agent()``
        """
        return await self._run(
            lambda: _agent_control.start_agent(
                self.paths,
                max_parallel=self.max_parallel,
                idle_timeout=self.idle_timeout,
                keep_workdirs=self.keep_workdirs,
            )
        )

    async def stop_agent(self, grace: float = 10.0) -> bool:
        """Stop the agent; its running jobs go back to the queue. ``True`` once none runs.

        Usage: ``await backend.stop_agent()``
        """
        return await self._run(lambda: _agent_control.stop_agent(self.paths, timeout=grace))
