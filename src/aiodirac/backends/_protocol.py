"""The backend seam: what the engine needs from a place that runs jobs.

Two implementations: :class:`aiodirac.LocalBackend` (jobs run on this machine) and
:class:`aiodirac.DiracXBackend` (a DIRAC service through DiracX's REST API). The engine
(submitter, tracker, downloader) knows backends only through this module.

Beyond running jobs, a backend answers DIRAC's job-monitoring questions (:meth:`Backend.select_jobs`,
:meth:`Backend.attributes`, :meth:`Backend.logging_info`, :meth:`Backend.parameters`,
:meth:`Backend.input_data`, :meth:`Backend.input_sandbox`, :meth:`Backend.cpu_time`); what a
backend cannot answer raises :class:`~aiodirac.NotSupportedError` (the default here).

Submission has two phases, as DIRAC's bulk protocol: :meth:`Backend.submit` creates a chunk's jobs
*unconfirmed* (``Submitting``), where they never run; :meth:`Backend.confirm` releases them
(``Received``); :meth:`Backend.discard` kills unconfirmed ones. The submitter records IDs in its
journal between the two, so that no job ever runs twice.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiodirac._exceptions import NotSupportedError
from aiodirac._job._monitoring import CPUSample, JobAttributes, JobSelection, LoggingRecord
from aiodirac._job._spec import SubmitChunk
from aiodirac._job._status import JobState, JobStatus
from aiodirac._resource import AsyncResource

__all__ = [
    "ActionResult",
    "Backend",
    "Capabilities",
    "OutputSandbox",
    "UnconfirmedJob",
]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can take in one request.

    Attributes:
        max_jobs_per_submit: jobs in one submission chunk (DiracX: 20).
        max_ids_per_status: job IDs in one status query (DiracX: 10,000).
        max_ids_per_update: job IDs in one confirm/kill/delete request.
        settle_time: seconds the backend may still be acting on a request after its caller gave
            up on it (a timeout, a reset, a cancellation): a remote server finishes a request
            whose client left. 0 when a call's effects are complete once it returns or raises.
            The submitter's sweep waits this long after a lost submit request.

    Usage: ``backend.capabilities.max_jobs_per_submit``
    """

    max_jobs_per_submit: int
    max_ids_per_status: int
    max_ids_per_update: int
    settle_time: float = 0.0


@dataclass(frozen=True, slots=True)
class UnconfirmedJob:
    """A job left in ``Submitting`` (created, never confirmed), as found by a sweep.

    Usage: ``[j.job_id for j in await backend.find_unconfirmed(job_group="c1", since=t0)]``
    """

    job_id: int
    name: str
    job_group: str
    submitted: datetime | None


@dataclass(frozen=True, slots=True)
class OutputSandbox:
    """Where a job's output sandbox archive can be fetched from.

    Exactly one of ``url`` (fetched over HTTP without the backend's credentials, e.g. a presigned
    S3 URL) and ``path`` (a local file) is set.

    Attributes:
        job_id: the job.
        url: an HTTP(S) URL to GET, valid for ``expires_in`` seconds.
        path: a local archive file.
        size: archive size in bytes, when the backend knows it.
        sha256: archive checksum (hex), when the backend knows it.
        format: archive format: ``tar``, ``tar.gz``, ``tar.bz2`` or ``tar.zst``.
        expires_in: seconds the URL stays valid, when it expires.

    Usage: ``info = await backend.output_sandbox(job_id)``
    """

    job_id: int
    url: str | None = None
    path: str | None = None
    size: int | None = None
    sha256: str | None = None
    format: str = "tar.bz2"
    expires_in: float | None = None


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The outcome of kill, delete or reschedule on many jobs.

    Attributes:
        done: jobs the action was applied to.
        refused: jobs it was not applied to, with the reason (their status, or unknown).

    Usage: ``result = await backend.kill(ids); print(result.refused)``
    """

    done: tuple[int, ...] = ()
    refused: Mapping[int, str] = field(default_factory=dict)


class Backend(AsyncResource, abc.ABC):
    """A place that runs DIRAC jobs. Use as an async context manager, or call :meth:`aclose`.

    Every method may raise :class:`aiodirac.BackendError` subclasses:
    :class:`aiodirac.TransientError` when retrying may help (the engine retries those), others
    when it will not.

    Usage::

        async with LocalBackend() as backend:
            ids = await backend.submit(chunk)
            await backend.confirm(ids)
    """

    #: What this backend accepts per request.
    capabilities: Capabilities

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Human-readable name and location, for logs (never any credentials)."""

    @abc.abstractmethod
    async def submit(self, chunk: SubmitChunk) -> list[int]:
        """Create the chunk's jobs unconfirmed (``Submitting``); they do not run until confirmed.

        Returns:
            The new job IDs, in the order of ``chunk.jobs``.

        Raises:
            InvalidRequestError: the backend refused the description (not worth retrying).
            TransientError: the outcome is unknown; jobs may exist unconfirmed.
        """

    @abc.abstractmethod
    async def confirm(self, job_ids: Sequence[int]) -> None:
        """Move unconfirmed jobs to ``Received`` so they run. Confirming twice is harmless."""

    @abc.abstractmethod
    async def discard(self, job_ids: Sequence[int], reason: str) -> None:
        """Kill unconfirmed jobs (``Killed``, MinorStatus ``reason``); they will never run."""

    @abc.abstractmethod
    async def find_unconfirmed(
        self,
        *,
        job_group: str | None = None,
        name_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UnconfirmedJob]:
        """The caller's jobs still in ``Submitting`` that match every given filter."""

    @abc.abstractmethod
    async def status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        """Current state of at most ``capabilities.max_ids_per_status`` jobs.

        Unknown IDs are absent from the answer (no error): the caller decides what that means.
        """

    @abc.abstractmethod
    async def output_sandbox(self, job_id: int) -> OutputSandbox:
        """Locate a job's output sandbox archive (a fresh URL on every call).

        Raises:
            SandboxNotAvailableError: not final yet, none stored, or stored on grid storage.
            JobNotFoundError: unknown job.
        """

    @abc.abstractmethod
    async def kill(self, job_ids: Sequence[int]) -> ActionResult:
        """Kill jobs (``Killed``); a running job's processes are stopped."""

    @abc.abstractmethod
    async def delete(self, job_ids: Sequence[int]) -> ActionResult:
        """Delete jobs (``Deleted``), killing running ones first, as DIRAC does."""

    @abc.abstractmethod
    async def reschedule(self, job_ids: Sequence[int]) -> ActionResult:
        """Send jobs back to ``Received`` / ``Job Rescheduled`` to run again."""

    @abc.abstractmethod
    async def summary(self, job_ids: Sequence[int]) -> dict[JobStatus, int]:
        """Counts of jobs per status among ``job_ids``."""

    @abc.abstractmethod
    async def get_jdl(self, job_id: int) -> str:
        """The job's JDL as stored. Raises NotSupportedError where the server cannot tell."""

    async def peek(self, job_id: int) -> str:
        """The standard output a job has produced so far (DIRAC's ``peekJob``).

        Raises:
            NotSupportedError: this backend cannot show a running job's output.
        """
        raise NotSupportedError(f"{self.description} cannot show the output of job {job_id} yet")

    # ------------------------------------------------------------------ job monitoring
    def _unsupported(self, what: str) -> NotSupportedError:
        return NotSupportedError(f"{self.description} cannot tell {what}")

    async def select_jobs(self, selection: JobSelection) -> list[int]:
        """The IDs of the jobs meeting every condition of ``selection``, in increasing order.

        Raises:
            NotSupportedError: this backend cannot search jobs.
        """
        raise self._unsupported("which jobs match a selection")

    async def attributes(self, job_ids: Sequence[int]) -> dict[int, JobAttributes]:
        """DIRAC's job attributes of at most ``capabilities.max_ids_per_status`` jobs.

        Unknown IDs are absent from the answer, as in :meth:`status`.

        Raises:
            NotSupportedError: this backend does not keep job attributes.
        """
        raise self._unsupported("job attributes")

    async def logging_info(self, job_id: int) -> list[LoggingRecord]:
        """Every status change of a job, oldest first (DIRAC's JobLoggingDB).

        Raises:
            JobNotFoundError: unknown job.
            NotSupportedError: this backend keeps no status history.
        """
        raise self._unsupported(f"the status history of job {job_id}")

    async def parameters(self, job_id: int) -> dict[str, str]:
        """The job parameters its wrapper reported (``TotalCPUTime(s)``, ``StandardOutput``...).

        Raises:
            JobNotFoundError: unknown job.
            NotSupportedError: this backend cannot read job parameters.
        """
        raise self._unsupported(f"the parameters of job {job_id}")

    async def input_data(self, job_id: int) -> list[str]:
        """The job's input data LFNs (``LFN:/...``), as its JDL's ``InputData`` holds them.

        Raises:
            JobNotFoundError: unknown job.
            NotSupportedError: this backend cannot read a job's input data.
        """
        raise self._unsupported(f"the input data of job {job_id}")

    async def input_sandbox(self, job_id: int) -> OutputSandbox:
        """Locate a job's input sandbox archive (the same locator as :meth:`output_sandbox`).

        Raises:
            SandboxNotAvailableError: none stored for this job (any more).
            JobNotFoundError: unknown job.
            NotSupportedError: this backend cannot hand out input sandboxes.
        """
        raise self._unsupported(f"the input sandbox of job {job_id}")

    async def cpu_time(self, job_id: int) -> list[CPUSample]:
        """The CPU time readings of a job, oldest first (empty before any).

        Raises:
            JobNotFoundError: unknown job.
            NotSupportedError: this backend does not record CPU time.
        """
        raise self._unsupported(f"the CPU time of job {job_id}")

    async def aclose(self) -> None:
        """Release connections and files. Idempotent."""
