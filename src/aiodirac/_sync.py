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

import datetime
import functools
import logging
import os
import pprint
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Self, TextIO, TypeVar

import anyio

from aiodirac._job._monitoring import SUMMARY_NAMES, DiracValue, dirac_time

from ._client import AsyncDirac, JobIDs, job_ids
from ._dirac_print import format_table, summary_file
from ._exceptions import DiracError, InvalidArgumentError, JobNotFoundError, NotSupportedError
from ._result import S_ERROR, S_OK, DiracResult

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

    from aiodirac._job._job import Job

__all__ = ["Dirac"]

logger = logging.getLogger("aiodirac")

P = ParamSpec("P")
T = TypeVar("T")


def _single(jobID: object) -> int:
    """One job ID, as DIRAC's single-job methods take it (a list is refused, as DIRAC).

    Raises:
        InvalidArgumentError: a list, or not a positive integer.
    """
    if isinstance(jobID, list | tuple | set):
        raise InvalidArgumentError(f"Expected int or string, not {type(jobID).__name__}")
    if not isinstance(jobID, int | str):
        raise InvalidArgumentError(f"a job ID must be an integer, not {jobID!r}")
    (job_id,) = job_ids(jobID)
    return job_id


class _EventLoopThread:
    """An event loop in a daemon thread, reached through an anyio blocking portal.

    A daemon thread, so that a script which never closes its ``Dirac`` still exits; the
    ``weakref.finalize`` hook that owns it closes the client cleanly at exit (finalizers run
    before daemon threads are abandoned).
    """

    def __init__(self) -> None:
        from anyio.from_thread import BlockingPortal  # with the first call, not at import

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


def _echo(path: Path, stream: TextIO) -> None:
    """What a local-mode job wrote to ``path``, shown on ``stream`` (as DIRAC's local mode)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    if text:
        stream.write(text if text.endswith("\n") else text + "\n")


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
        self._opened = False  # the client's backend is connected
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
        loop = self._event_loop()
        if not self._opened:
            with self._lock:
                if not self._opened:
                    loop.portal.call(self._client.open)
                    self._opened = True
        return self._call(loop, fn, *args, **kwargs)

    def _event_loop(self) -> _EventLoopThread:
        with self._lock:
            if self._loop is None:
                self._loop = _EventLoopThread()
                # Runs at close(), garbage collection or interpreter exit, whichever comes first;
                # it holds the client, never the Dirac object, so the object can be collected.
                self._finalizer = weakref.finalize(self, self._loop.stop, self._client)
                self._opened = False
            return self._loop

    @staticmethod
    def _call(
        loop: _EventLoopThread, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
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
        # No backend is connected for a foreground run: it needs no server.
        runs = self._call(self._event_loop(), self._client.run_local, job, Path.cwd())
        for run in runs:
            # As DIRAC's local mode shows it: what the payload printed, then how it ended.
            _echo(run.workdir / "std.out", sys.stdout)
            _echo(run.workdir / "std.err", sys.stderr)
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
            job_id = _single(jobID)
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

    def getJobJDL(
        self, jobID: int | str, original: bool = False, printOutput: bool = False
    ) -> DiracResult:
        """The job's JDL as a dict of attributes (DIRAC's getJobJDL); ``printOutput`` prints it.

        Usage: ``dirac.getJobJDL(196)['Value']['JobName']``
        """
        from aiodirac._job._jdl import parse_jdl

        try:
            (job_id,) = job_ids(jobID)
            value = parse_jdl(self._run(self._client.get_jdl, job_id))
        except DiracError as exc:
            return S_ERROR(str(exc))
        if printOutput:
            print(pprint.pformat(value))
        return S_OK(value)

    # ------------------------------------------------------------------ job monitoring
    def selectJobs(
        self,
        status: str | None = None,
        minorStatus: str | None = None,
        applicationStatus: str | None = None,
        site: str | None = None,
        owner: str | None = None,
        ownerGroup: str | None = None,
        jobGroup: str | None = None,
        date: str | datetime.date | datetime.datetime | None = None,
        printErrors: bool = True,
    ) -> DiracResult:
        """IDs (strings) of the jobs meeting every condition, last updated since ``date``
        (``yyyy-mm-dd``; default: today, UTC, as DIRAC). ``S_ERROR('No jobs selected')`` when
        none matches, unless ``printErrors=False`` (then ``S_OK([])``).

        Usage: ``dirac.selectJobs(status="Failed", jobGroup="scan")`` -> ``{'OK': True, 'Value':
        ['25020', '25023']}``
        """
        since = date or datetime.datetime.now(datetime.UTC).date()
        try:
            ids = self._run(
                functools.partial(
                    self._client.select,
                    status=status or None,
                    minor_status=minorStatus or None,
                    application_status=applicationStatus or None,
                    site=site or None,
                    owner=owner or None,
                    owner_group=ownerGroup or None,
                    job_group=jobGroup or None,
                    since=since,
                )
            )
        except DiracError as exc:
            return S_ERROR(str(exc))
        if not ids and printErrors:
            logger.error("No jobs selected with date '%s'", since)
            return S_ERROR("No jobs selected")
        return S_OK([str(job_id) for job_id in ids])

    def getJobAttributes(self, jobID: int | str, printOutput: bool = False) -> DiracResult:
        """Every DIRAC attribute of one job, typed as DIRAC 9.1 returns them (ints, naive UTC
        datetimes or ``None``, strings: see :meth:`aiodirac.JobAttributes.as_dirac`);
        ``S_OK({})`` for an unknown job, as DIRAC.

        Usage: ``dirac.getJobAttributes(196)['Value']['Owner']``
        """
        try:
            job_id = _single(jobID)
            found = self._run(self._client.attributes, [job_id])
        except DiracError as exc:
            return S_ERROR(str(exc))
        value = found[job_id].as_dirac() if job_id in found else {}
        if printOutput:
            print("=================\n", job_id)
            print(pprint.pformat(value))
        return S_OK(value)

    def getJobSummary(
        self,
        jobID: JobIDs,
        outputFile: str | os.PathLike[str] | None = None,
        printOutput: bool = False,
    ) -> DiracResult:
        """Status, MinorStatus, ApplicationStatus, Site, JobGroup, LastUpdateTime, HeartBeatTime,
        SubmissionTime and Owner of jobs (``'None'`` for an unknown job's values); with
        ``outputFile``, also written there as a table (refused if the file exists).

        Usage: ``dirac.getJobSummary([196, 197])['Value'][196]['Status']``
        """
        try:
            wanted = job_ids(jobID)
            if outputFile is not None and os.path.exists(outputFile):
                return S_ERROR(f"Output file {outputFile} already exists")
            found = self._run(self._client.attributes, wanted)
        except DiracError as exc:
            return S_ERROR(str(exc))
        summary: dict[int, dict[str, DiracValue]] = {}
        for job_id in wanted:
            if job_id not in found:
                logger.warning("No records for JobID %s", job_id)
                summary[job_id] = dict.fromkeys(SUMMARY_NAMES, "None")
            else:
                summary[job_id] = found[job_id].summary()
        if outputFile is not None:
            try:
                Path(outputFile).write_text(summary_file(SUMMARY_NAMES, summary), encoding="utf-8")
            except OSError as exc:
                return S_ERROR(f"Could not write {outputFile}: {exc.strerror or exc}")
        if printOutput:
            print(pprint.pformat(summary))
        return S_OK(summary)

    def getJobLoggingInfo(self, jobID: int | str, printOutput: bool = False) -> DiracResult:
        """The job's status history: ``S_OK([(Status, MinorStatus, ApplicationStatus,
        DateTime, Source), ...])``, oldest first; ``printOutput`` prints DIRAC's table.

        Usage: ``for status, minor, app, when, source in dirac.getJobLoggingInfo(196)['Value']:``
        """
        try:
            job_id = _single(jobID)
            records = self._run(self._client.logging_info, job_id)
        except JobNotFoundError:
            return S_ERROR(f"No Logging information for job {job_id}")
        except DiracError as exc:
            return S_ERROR(str(exc))
        if not records:
            return S_ERROR(f"No Logging information for job {job_id}")
        value = [record.as_dirac() for record in records]
        if printOutput:
            fields = ["Source", "Status", "MinorStatus", "ApplicationStatus", "DateTime"]
            rows = [[row[i] for i in (4, 0, 1, 2, 3)] for row in value]
            print(format_table(fields, rows, column_separator="  "))
        return S_OK(value)

    def getJobParameters(self, jobID: int | str, printOutput: bool = False) -> DiracResult:
        """The parameters the job's wrapper reported, without ``StandardOutput`` (see
        :meth:`peekJob`); ``S_ERROR('Failed to get job parameters for N')`` when there are none.

        Usage: ``dirac.getJobParameters(196)['Value']['TotalCPUTime(s)']``
        """
        try:
            job_id = _single(jobID)
            parameters = self._run(self._client.parameters, job_id)
        except JobNotFoundError:
            return S_ERROR(f"Failed to get job parameters for {job_id}")
        except DiracError as exc:
            return S_ERROR(str(exc))
        parameters.pop("StandardOutput", None)
        if printOutput:
            print(pprint.pformat({job_id: parameters}))
        if not parameters:
            return S_ERROR(f"Failed to get job parameters for {job_id}")
        return S_OK(parameters)

    def getInputSandbox(
        self, jobID: int | str, outputDir: str | os.PathLike[str] | None = None
    ) -> DiracResult:
        """Download and unpack the job's input sandbox into ``./InputSandbox<jobID>/`` (or
        under ``outputDir``), refused when that folder exists: ``S_OK([unpacked bytes])``.

        Usage: ``dirac.getInputSandbox(196)`` -> ``{'OK': True, 'Value': [10240]}``
        """
        try:
            job_id = _single(jobID)
            dest = Path.cwd() if outputDir is None else Path(outputDir)
            result = self._run(self._client.download_input_sandbox, job_id, dest)
        except DiracError as exc:
            return S_ERROR(str(exc))
        if not result.ok:
            return S_ERROR(result.error or f"No Input sandbox found for job {job_id}")
        return S_OK([result.unpacked_bytes])

    def getJobInputData(self, jobID: JobIDs) -> DiracResult:
        """The input data LFNs of jobs: ``S_OK({jobID: ['LFN:...']})`` (``[]`` for a job whose
        input data cannot be read, with a warning, as DIRAC).

        Usage: ``dirac.getJobInputData(196)`` -> ``{'OK': True, 'Value': {196: []}}``
        """
        try:
            wanted = job_ids(jobID)
        except DiracError as exc:
            return S_ERROR(str(exc))
        summary: dict[int, list[str]] = {}
        for job_id in wanted:
            try:
                summary[job_id] = self._run(self._client.input_data, job_id)
            except NotSupportedError as exc:
                return S_ERROR(str(exc))
            except DiracError as exc:
                logger.warning(
                    "Getting input data for job %s failed with message:\n%s", job_id, exc
                )
                summary[job_id] = []
        return S_OK(summary)

    def getJobOutputLFNs(self, jobID: int | str) -> DiracResult:
        """The LFNs the job uploaded (its ``UploadedOutputData`` parameter): ``S_OK([lfns])``;
        ``S_ERROR('No output data found for job N')`` when it uploaded none.

        Usage: ``dirac.getJobOutputLFNs(196)``
        """
        parameters = self.getJobParameters(jobID)
        if not parameters["OK"]:
            return parameters
        uploaded = str(parameters["Value"].get("UploadedOutputData", ""))
        lfns = [lfn for lfn in uploaded.replace(" ", "").split(",") if lfn]
        if not lfns:
            return S_ERROR(f"No output data found for job {jobID}")
        return S_OK(lfns)

    def getJobCPUTime(self, jobID: JobIDs, printOutput: bool = False) -> DiracResult:
        """CPU seconds consumed by jobs, by reading time: ``S_OK({jobID: {'YYYY-MM-DD
        HH:MM:SS': '12.3'}})`` (``{}`` before any reading).

        Usage: ``dirac.getJobCPUTime(196)``
        """
        try:
            wanted = job_ids(jobID)
        except DiracError as exc:
            return S_ERROR(str(exc))
        summary: dict[int, dict[str, str]] = {}
        for job_id in wanted:
            try:
                samples = self._run(self._client.cpu_time, job_id)
            except NotSupportedError as exc:
                return S_ERROR(str(exc))
            except DiracError as exc:
                return S_ERROR(f"Could not get heartbeat data for job {job_id}: {exc}")
            summary[job_id] = {dirac_time(s.time): f"{s.cpu_seconds:.1f}" for s in samples}
        if printOutput:
            print(pprint.pformat(summary))
        return S_OK(summary)

    def peekJob(self, jobID: int | str, printOutput: bool = False) -> DiracResult:
        """The standard output of a job so far (``Not available yet.`` before it runs);
        ``printOutput`` prints it, as DIRAC's logger shows it.

        Usage: ``print(dirac.peekJob(196)['Value'])``
        """
        try:
            (job_id,) = job_ids(jobID)
            stdout = self._run(self._client.peek, job_id)
        except DiracError as exc:
            return S_ERROR(str(exc))
        if printOutput:
            print(stdout)
        return S_OK(stdout)
