"""``Dirac``: the synchronous facade with DIRAC's method names and result dictionaries.

Scripts written for DIRAC's API keep working with their imports changed::

    from aiodirac import Dirac, Job
    dirac = Dirac()
    print(dirac.submitJob(j))            # {'OK': True, 'Value': 196}

Every call runs the asynchronous client in a background event loop (an anyio blocking portal),
so there is exactly one implementation of each behaviour. Errors are returned as DIRAC's
``S_ERROR`` dictionaries, never raised, as DIRAC does; programming errors still raise.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Self, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from ._client import AsyncDirac, JobIDs, job_ids
from ._exceptions import DiracError
from ._result import S_ERROR, S_OK, DiracResult

if TYPE_CHECKING:
    from aiodirac._job._job import Job

__all__ = ["Dirac"]

logger = logging.getLogger("aiodirac")

P = ParamSpec("P")
T = TypeVar("T")


class _EventLoopThread:
    """An event loop in a daemon thread, reached through an anyio blocking portal.

    A daemon thread, so that a script which never closes its ``Dirac`` still exits; the
    ``weakref.finalize`` hook that owns it closes the client cleanly at exit (finalizers run
    before daemon threads are abandoned).
    """

    def __init__(self) -> None:
        ready: Future[BlockingPortal] = Future()

        async def serve() -> None:
            async with BlockingPortal() as portal:
                ready.set_result(portal)
                await portal.sleep_until_stopped()

        def main() -> None:
            try:
                anyio.run(serve)
            except BaseException as exc:  # reported to the thread waiting for the portal
                if not ready.done():
                    ready.set_exception(exc)
                else:
                    raise

        self._thread = threading.Thread(target=main, name="aiodirac-loop", daemon=True)
        self._thread.start()
        self.portal = ready.result()

    def stop(self, client: AsyncDirac | None) -> None:
        try:
            if client is not None:
                self.portal.call(client.aclose)
        finally:
            self.portal.call(self.portal.stop)
            self._thread.join(timeout=10)


class Dirac:
    """DIRAC's ``Dirac`` API on top of :class:`AsyncDirac`.

    Accepts DIRAC's constructor arguments (``useCertificates``, ``vo``: ignored, tokens are used)
    and every keyword :class:`AsyncDirac` takes (``backend``, ``url``, ``journal``, ...).
    Close it with :meth:`close` or use it as a context manager; it is closed at exit otherwise.

    Usage::

        dirac = Dirac()
        result = dirac.submitJob(job)
        if result["OK"]:
            print(dirac.status(result["Value"]))
    """

    def __init__(self, useCertificates: bool = False, vo: str | None = None, **client: Any) -> None:
        self._client = AsyncDirac(**client)
        self._lock = threading.Lock()
        self._loop: _EventLoopThread | None = None
        self._finalizer: Callable[[], object] | None = None

    def __repr__(self) -> str:
        return f"<Dirac {self._client!r}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the background event loop. Idempotent.

        Scripts need not call it: it runs at interpreter exit (or when the object is collected).

        Usage: ``dirac.close()``
        """
        with self._lock:
            finalizer, self._finalizer, self._loop = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    def _run(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._lock:
            if self._loop is None:
                loop = _EventLoopThread()
                try:
                    loop.portal.call(self._client.open)
                except BaseException:
                    loop.stop(None)
                    raise
                self._loop = loop
                # Runs at close(), garbage collection or interpreter exit, whichever comes first;
                # it holds the client, never the Dirac object, so the object can be collected.
                self._finalizer = weakref.finalize(self, loop.stop, self._client)
            loop = self._loop

        async def call() -> T:
            return await fn(*args, **kwargs)

        return loop.portal.call(call)

    @property
    def client(self) -> AsyncDirac:
        """The asynchronous client underneath (open once any call was made)."""
        return self._client

    # ------------------------------------------------------------------ jobs
    def submitJob(self, job: Job, mode: Literal["wms", "local"] = "wms") -> DiracResult:
        """Submit a job: ``S_OK(jobID)``, or ``S_OK([jobIDs])`` for a parametric job.

        ``mode="local"`` runs the job here in the foreground, like DIRAC's local mode but without
        its defects: every parametric job runs, std.out holds the real output, and the outputs end
        in the job's folder ``./Local_<n>_JobDir/``.

        Usage: ``dirac.submitJob(job)`` -> ``{'OK': True, 'Value': 196}``
        """
        if mode not in ("wms", "local"):
            return S_ERROR(f"Unknown submission mode {mode!r}: use 'wms' or 'local'")
        try:
            if mode == "local":
                return self._run_local(job)
            ids = self._run(self._client.submit, job)
        except DiracError as exc:
            return S_ERROR(str(exc))
        return S_OK(ids if len(job) > 1 else ids[0])

    def _run_local(self, job: Job) -> DiracResult:
        from aiodirac.backends.local._foreground import run_in_foreground

        runs = run_in_foreground(job, Path.cwd())
        for run in runs:
            state = f"{run.outcome.status} ({run.outcome.minor_status})"
            print(f"local job {run.index}: {state}, outputs in {run.workdir}")
        failed = [run for run in runs if run.exit_status != 0]
        if failed:
            return S_ERROR(f"Execution completed with non-zero status {failed[0].exit_status}")
        return S_OK("Execution completed successfully")

    def status(self, jobID: JobIDs) -> DiracResult:
        """Status, MinorStatus and Site of jobs, as the seed's ``dirac.status`` shows them.

        Usage: ``dirac.status(196)`` -> ``{'OK': True, 'Value': {196: {'Status': 'Done', ...}}}``
        """
        result = self.getJobStatus(jobID)
        if result["OK"]:
            result["Value"] = {
                job_id: {k: v for k, v in value.items() if k != "ApplicationStatus"}
                for job_id, value in result["Value"].items()
            }
        return result

    def getJobStatus(self, jobID: JobIDs) -> DiracResult:
        """Status, MinorStatus, ApplicationStatus and Site of jobs (DIRAC's getJobStatus).

        Usage: ``dirac.getJobStatus([196, 197])``
        """
        try:
            wanted = job_ids(jobID)
            states = self._run(self._client.status, wanted)
        except DiracError as exc:
            return S_ERROR(str(exc))
        missing = [job_id for job_id in wanted if job_id not in states]
        if missing and not states:
            return S_ERROR(f"No job found with ID {', '.join(map(str, missing))}")
        if missing:
            logger.warning("unknown job IDs: %s", ", ".join(map(str, missing)))
        return S_OK({job_id: state.as_dirac() for job_id, state in states.items()})

    def wait(self, jobID: JobIDs, timeout: float | None = None) -> DiracResult:
        """Wait until jobs are final: ``S_OK({id: {'Status', ...}})``.

        Usage: ``dirac.wait(ids, timeout=600)``
        """
        try:
            states = self._run(self._client.wait, job_ids(jobID), timeout=timeout)
        except (DiracError, TimeoutError) as exc:
            return S_ERROR(str(exc) or "timed out waiting for jobs")
        return S_OK({job_id: state.as_dirac() for job_id, state in states.items()})

    def getOutputSandbox(
        self,
        jobID: int | str,
        outputDir: str | os.PathLike[str] | None = None,
        oversized: bool = True,
        noJobDir: bool = False,
        unpack: bool = True,
    ) -> DiracResult:
        """Download and unpack a job's output sandbox into ``./<jobID>/`` (DIRAC's semantics).

        Without ``outputDir`` an existing ``./<jobID>`` is refused, as DIRAC does. Returns
        ``S_OK([unpacked bytes])``, or ``S_OK([archive path])`` with ``unpack=False``.

        Usage: ``dirac.getOutputSandbox(196)`` -> ``{'OK': True, 'Value': [2345]}``
        """
        try:
            if isinstance(jobID, list | tuple | set):
                return S_ERROR(f"Expected int or string, not {type(jobID).__name__}")
            (job_id,) = job_ids(jobID)
            dest = Path.cwd() if outputDir is None else Path(outputDir)
            target = dest if noJobDir else dest / str(job_id)
            if outputDir is None and target.exists():
                return S_ERROR(f"Job output directory {target} already exists")
            (result,) = self._run(
                self._client.download, [job_id], dest, no_job_dir=noJobDir, unpack=unpack
            )
        except DiracError as exc:
            return S_ERROR(str(exc))
        if not result.ok:
            return S_ERROR(result.error or f"No Output sandbox found for job {job_id}")
        if not unpack:
            return S_OK([str(result.path)])
        return S_OK([result.unpacked_bytes])

    def killJob(self, jobID: JobIDs) -> DiracResult:
        """Kill jobs: ``S_OK([killed IDs])``.

        Usage: ``dirac.killJob(196)``
        """
        return self._act(self._client.kill, jobID)

    def deleteJob(self, jobID: JobIDs) -> DiracResult:
        """Delete jobs: ``S_OK([deleted IDs])``.

        Usage: ``dirac.deleteJob(196)``
        """
        return self._act(self._client.delete, jobID)

    def rescheduleJob(self, jobID: JobIDs) -> DiracResult:
        """Reschedule jobs: ``S_OK([rescheduled IDs])``.

        Usage: ``dirac.rescheduleJob(196)``
        """
        return self._act(self._client.reschedule, jobID)

    def _act(self, fn: Callable[[list[int]], Awaitable[list[int]]], jobID: JobIDs) -> DiracResult:
        try:
            return S_OK(self._run(fn, job_ids(jobID)))
        except DiracError as exc:
            return S_ERROR(str(exc))

    def getJobJDL(self, jobID: int | str, original: bool = False) -> DiracResult:
        """The job's JDL as a dict of attributes (DIRAC's getJobJDL).

        Usage: ``dirac.getJobJDL(196)['Value']['JobName']``
        """
        from aiodirac._job._jdl import parse_jdl

        try:
            (job_id,) = job_ids(jobID)
            text = self._run(self._client.get_jdl, job_id)
            return S_OK(parse_jdl(text))
        except DiracError as exc:
            return S_ERROR(str(exc))

    def peekJob(self, jobID: int | str) -> DiracResult:
        """The standard output of a job so far (``Not available yet.`` before it runs).

        Usage: ``print(dirac.peekJob(196)['Value'])``
        """
        try:
            (job_id,) = job_ids(jobID)
            return S_OK(self._run(self._client.peek, job_id))
        except DiracError as exc:
            return S_ERROR(str(exc))
