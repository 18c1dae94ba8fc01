"""An in-memory backend for tests: DIRAC's status rules, configurable faults, no I/O.

:class:`MemoryBackend` implements every method of :class:`aiodirac.Backend` on plain dictionaries.
It follows DIRAC's rules where the engine relies on them: :meth:`~MemoryBackend.submit` creates jobs
in ``Submitting`` / "Bulk transaction confirmation", which never progress until confirmed; every
status change goes through :meth:`aiodirac.JobStatus.can_move_to`. Tests drive jobs with
:meth:`~MemoryBackend.set_status` and :meth:`~MemoryBackend.advance`, and inject faults with
:class:`Faults`: transient errors, 503s with ``Retry-After``, ambiguous failures (the jobs are
created, the reply is lost), latency, all from a seeded random source so that a failing test
replays exactly.

Usage::

    backend = MemoryBackend(faults=Faults(transient=0.1, ambiguous=0.05, seed=7))
    ids = await backend.submit(chunk)
    await backend.confirm(ids)
    backend.advance(ids, to=JobStatus.DONE)
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import anyio.lowlevel

from aiodirac._exceptions import (
    BackendError,
    InvalidRequestError,
    InvalidTransitionError,
    JobNotFoundError,
    NetworkError,
    SandboxNotAvailableError,
    ServiceUnavailableError,
)
from aiodirac._job._monitoring import CPUSample, JobAttributes, JobSelection, LoggingRecord
from aiodirac._job._spec import JDLValue, SubmitChunk
from aiodirac._job._status import JobState, JobStatus, MinorStatus
from aiodirac.backends._protocol import (
    ActionResult,
    Backend,
    Capabilities,
    OutputSandbox,
    UnconfirmedJob,
)

__all__ = ["Faults", "MemoryBackend", "MemoryJob"]

#: Every backend method that faults can be injected into.
ALL_METHODS: frozenset[str] = frozenset(
    {
        "submit",
        "confirm",
        "discard",
        "find_unconfirmed",
        "status",
        "output_sandbox",
        "kill",
        "delete",
        "reschedule",
        "summary",
        "get_jdl",
        "select_jobs",
        "attributes",
        "logging_info",
        "parameters",
        "input_data",
        "input_sandbox",
        "cpu_time",
    }
)

#: Owner, OwnerGroup and VO of every memory job.
OWNER = "memory"

# The path a healthy job follows; advance() moves jobs one step along it.
_HAPPY_PATH: tuple[JobStatus, ...] = (
    JobStatus.RECEIVED,
    JobStatus.CHECKING,
    JobStatus.WAITING,
    JobStatus.MATCHED,
    JobStatus.RUNNING,
    JobStatus.COMPLETING,
    JobStatus.DONE,
)
_MINOR_ON_PATH: dict[JobStatus, str] = {
    JobStatus.RECEIVED: MinorStatus.JOB_ACCEPTED,
    JobStatus.CHECKING: "JobSanity",
    JobStatus.WAITING: MinorStatus.PILOT_AGENT_SUBMISSION,
    JobStatus.MATCHED: "Assigned",
    JobStatus.RUNNING: MinorStatus.APPLICATION,
    JobStatus.COMPLETING: MinorStatus.UPLOADING_OUTPUT_SANDBOX,
    JobStatus.DONE: MinorStatus.EXEC_COMPLETE,
}


@dataclass(frozen=True, slots=True)
class Faults:
    """Which failures a :class:`MemoryBackend` injects, and how often (fractions of calls).

    Each call to a method in ``methods`` draws once from a ``random.Random(seed)``: with
    probability ``transient`` it raises :class:`aiodirac.NetworkError` before doing anything;
    with ``unavailable`` a :class:`aiodirac.ServiceUnavailableError` (503, ``retry_after``); with
    ``ambiguous`` it does the work and then raises :class:`aiodirac.NetworkError` (the reply was
    lost: for ``submit`` the jobs exist, unconfirmed). ``latency`` seconds (plus up to ``jitter``)
    pass before every call.

    Usage: ``Faults(transient=0.1, unavailable=0.05, ambiguous=0.05, seed=1)``
    """

    transient: float = 0.0
    unavailable: float = 0.0
    ambiguous: float = 0.0
    retry_after: float | None = 1.0
    latency: float = 0.0
    jitter: float = 0.0
    seed: int = 0
    methods: frozenset[str] = ALL_METHODS

    def __post_init__(self) -> None:
        total = self.transient + self.unavailable + self.ambiguous
        if min(self.transient, self.unavailable, self.ambiguous) < 0 or total > 1:
            raise ValueError("Faults: rates must be >= 0 and add up to at most 1")
        unknown = set(self.methods) - ALL_METHODS
        if unknown:
            raise ValueError(f"Faults: unknown methods {sorted(unknown)}")


@dataclass(slots=True)
class MemoryJob:
    """One job as the memory backend stores it (mutable: the backend's own record).

    Usage: ``backend.jobs[ids[0]].status``
    """

    job_id: int
    name: str
    job_group: str
    attributes: Mapping[str, JDLValue]
    index: int
    status: JobStatus = JobStatus.SUBMITTING
    minor_status: str = MinorStatus.BULK_CONFIRMATION
    application_status: str = "Unknown"
    site: str = "ANY"
    submitted: datetime = field(default_factory=lambda: datetime.now(UTC))
    changed: datetime = field(default_factory=lambda: datetime.now(UTC))
    history: list[LoggingRecord] = field(default_factory=list)
    sandbox: OutputSandbox | None = None
    input_sandbox: OutputSandbox | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    cpu_samples: list[CPUSample] = field(default_factory=list)
    was_confirmed: bool = False

    def log(self, source: str = "MemoryBackend") -> None:
        """Record the job's current state in its :attr:`history` (DIRAC's logging info)."""
        self.history.append(
            LoggingRecord(
                self.status, self.minor_status, self.application_status, self.changed, source
            )
        )

    def attributes_now(self) -> JobAttributes:
        """This job's :class:`aiodirac.JobAttributes`."""
        started = [r.time for r in self.history if r.status is JobStatus.RUNNING]
        ended = [
            r.time for r in self.history if r.status.final and r.status is not JobStatus.DELETED
        ]
        rescheduled = [r.time for r in self.history if r.status is JobStatus.RESCHEDULED]
        priority = self.attributes.get("Priority", 1)
        return JobAttributes(
            job_id=self.job_id,
            status=self.status,
            minor_status=self.minor_status,
            application_status=self.application_status,
            site=self.site,
            job_name=self.name,
            job_group=self.job_group,
            job_type=str(self.attributes.get("JobType", "User")),
            owner=OWNER,
            owner_group=OWNER,
            vo=OWNER,
            user_priority=priority if isinstance(priority, int) else 1,
            reschedule_counter=len(rescheduled),
            submission_time=self.submitted,
            last_update_time=self.changed,
            start_exec_time=started[-1] if started else None,
            end_exec_time=ended[-1] if ended else None,
            reschedule_time=rescheduled[-1] if rescheduled else None,
        )

    def state(self) -> JobState:
        """This job's :class:`aiodirac.JobState`."""
        return JobState(
            job_id=self.job_id,
            status=self.status,
            minor_status=self.minor_status,
            application_status=self.application_status,
            site=self.site,
            time=self.changed,
        )


class MemoryBackend(Backend):
    """A :class:`aiodirac.Backend` that keeps its jobs in memory, for tests and benchmarks.

    Args:
        capabilities: what it accepts per request (default: DiracX's 20 / 10,000 / 1,000).
        faults: failures to inject (default: none).
        now: the clock giving job timestamps (default: ``datetime.now(UTC)``); tests may age jobs.
        refuse: called with each chunk; a string it returns is raised as a 400
            :class:`aiodirac.InvalidRequestError` (a chunk the server finds invalid).
        first_id: the first job ID handed out.

    Attributes:
        jobs: every job, by ID (read it in assertions; change it through the methods).
        calls: how many times each method was called (faulty calls included).
        max_concurrency: the most calls of each method that were in progress at once (key
            ``"*"``: of all methods together).

    Usage::

        backend = MemoryBackend(faults=Faults(ambiguous=0.1, seed=3))
        async with backend:
            ids = await backend.submit(chunk)
    """

    def __init__(
        self,
        *,
        capabilities: Capabilities | None = None,
        faults: Faults | None = None,
        now: Callable[[], datetime] | None = None,
        refuse: Callable[[SubmitChunk], str | None] | None = None,
        first_id: int = 1,
    ) -> None:
        self.capabilities = capabilities or Capabilities(
            max_jobs_per_submit=20, max_ids_per_status=10_000, max_ids_per_update=1_000
        )
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)
        self._now = now or (lambda: datetime.now(UTC))
        self.refuse = refuse
        self.jobs: dict[int, MemoryJob] = {}
        self.calls: Counter[str] = Counter()
        self.max_concurrency: Counter[str] = Counter()
        self._active: Counter[str] = Counter()
        self._next_id = first_id
        self._closed = False

    @property
    def description(self) -> str:
        """``memory (N jobs)``."""
        return f"memory ({len(self.jobs)} jobs)"

    def __repr__(self) -> str:
        return f"<MemoryBackend [{len(self.jobs)} jobs, faults: {self.faults}]>"

    def set_faults(self, faults: Faults) -> None:
        """Replace the injected faults (and reseed the random source).

        Usage: ``backend.set_faults(Faults())`` to heal the service.
        """
        self.faults = faults
        self._rng = random.Random(faults.seed)

    # -- fault machinery -----------------------------------------------------------------

    async def _enter(self, method: str) -> bool:
        """Count the call, wait the latency, maybe fail; True when the reply must be lost."""
        if self._closed:
            raise BackendError(f"this memory backend is closed ({method} refused)")
        self.calls[method] += 1
        self._active[method] += 1
        self.max_concurrency[method] = max(self.max_concurrency[method], self._active[method])
        self.max_concurrency["*"] = max(self.max_concurrency["*"], self._active.total())
        try:
            faults = self.faults
            if faults.latency or faults.jitter:
                await anyio.sleep(faults.latency + self._rng.uniform(0, faults.jitter))
            else:
                await anyio.lowlevel.checkpoint()
            if method not in faults.methods:
                return False
            draw = self._rng.random()
            if draw < faults.transient:
                raise NetworkError(f"memory backend: injected connection reset in {method}")
            draw -= faults.transient
            if draw < faults.unavailable:
                raise ServiceUnavailableError(
                    f"memory backend: injected 503 in {method}",
                    status_code=503,
                    retry_after=faults.retry_after,
                )
            draw -= faults.unavailable
            return draw < faults.ambiguous
        finally:
            self._active[method] -= 1

    @staticmethod
    def _lost(method: str) -> NetworkError:
        return NetworkError(f"memory backend: injected lost reply after {method} was applied")

    # -- helpers for tests ---------------------------------------------------------------

    def _get(self, job_id: int) -> MemoryJob:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise JobNotFoundError(f"job {job_id} not found", job_ids=(job_id,)) from None

    def _move(
        self, job: MemoryJob, target: JobStatus, minor: str, application: str | None = None
    ) -> None:
        if not job.status.can_move_to(target):
            raise InvalidTransitionError(
                f"job {job.job_id}: {job.status} -> {target} is not allowed",
                job_ids=(job.job_id,),
                current=str(job.status),
                requested=str(target),
            )
        job.status = target
        job.minor_status = minor
        if application is not None:
            job.application_status = application
        job.changed = self._now()
        job.log()

    def set_status(
        self,
        job_ids: Iterable[int],
        status: JobStatus,
        minor_status: str = "",
        *,
        site: str | None = None,
        application_status: str | None = None,
    ) -> None:
        """Move jobs to ``status`` as a grid would, by DIRAC's rules.

        Jobs in ``Submitting`` only leave it through :meth:`confirm` or :meth:`discard`.

        Raises:
            InvalidTransitionError: a move DIRAC refuses, or a move out of ``Submitting``.
            JobNotFoundError: an unknown job.

        Usage: ``backend.set_status(ids, JobStatus.FAILED, "Application Finished With Errors")``
        """
        jobs = [self._get(job_id) for job_id in job_ids]
        for job in jobs:
            if job.status is JobStatus.SUBMITTING and status is not JobStatus.SUBMITTING:
                raise InvalidTransitionError(
                    f"job {job.job_id} is unconfirmed (Submitting): confirm or discard it first",
                    job_ids=(job.job_id,),
                    current=str(job.status),
                    requested=str(status),
                )
            if not job.status.can_move_to(status):
                raise InvalidTransitionError(
                    f"job {job.job_id}: {job.status} -> {status} is not allowed",
                    job_ids=(job.job_id,),
                    current=str(job.status),
                    requested=str(status),
                )
        for job in jobs:
            if site is not None:
                job.site = site
            self._move(
                job, status, minor_status or _MINOR_ON_PATH.get(status, ""), application_status
            )

    def advance(
        self,
        job_ids: Iterable[int] | None = None,
        *,
        to: JobStatus | None = None,
        site: str = "Memory.Local.site",
    ) -> list[int]:
        """Move confirmed jobs along Received -> ... -> Done: one step, or up to ``to``.

        Unconfirmed (``Submitting``) and final jobs, and jobs off the healthy path, stay put.

        Args:
            job_ids: the jobs to move (default: all).
            to: a status of the healthy path to move them to, step by step (default: one step).
            site: the site given to jobs once they are matched.

        Returns:
            The IDs of the jobs that moved.

        Usage: ``backend.advance(ids, to=JobStatus.RUNNING)``
        """
        ids = list(self.jobs) if job_ids is None else list(job_ids)
        if to is not None and to not in _HAPPY_PATH:
            raise ValueError(f"advance: {to} is not on the path {[str(s) for s in _HAPPY_PATH]}")
        moved: list[int] = []
        for job_id in ids:
            job = self._get(job_id)
            if job.status not in _HAPPY_PATH or job.status is JobStatus.DONE:
                continue
            position = _HAPPY_PATH.index(job.status)
            goal = _HAPPY_PATH.index(to) if to is not None else position + 1
            if goal <= position:
                continue
            for status in _HAPPY_PATH[position + 1 : goal + 1]:
                self._move(job, status, _MINOR_ON_PATH[status])
                if status is JobStatus.MATCHED:
                    job.site = site
                if status is JobStatus.DONE:
                    job.application_status = MinorStatus.APP_SUCCESS
            moved.append(job_id)
        return moved

    def set_output_sandbox(self, job_id: int, sandbox: OutputSandbox) -> None:
        """Set what :meth:`output_sandbox` answers for this job once it is final.

        Usage: ``backend.set_output_sandbox(7, OutputSandbox(job_id=7, path="/tmp/7.tar"))``
        """
        self._get(job_id).sandbox = sandbox

    def confirmed(self, job_group: str | None = None) -> list[MemoryJob]:
        """Jobs that were confirmed (optionally of one job group), by increasing ID.

        Usage: ``assert len(backend.confirmed("c1")) == 2000``
        """
        return [
            job
            for job in self.jobs.values()
            if job.was_confirmed and (job_group is None or job.job_group == job_group)
        ]

    def _check_update_size(self, job_ids: Sequence[int]) -> None:
        if len(job_ids) > self.capabilities.max_ids_per_update:
            raise InvalidRequestError(
                f"memory backend: {len(job_ids)} IDs in one update, the limit is "
                f"{self.capabilities.max_ids_per_update}",
                status_code=400,
            )

    # -- the Backend protocol -------------------------------------------------------------

    async def submit(self, chunk: SubmitChunk) -> list[int]:
        """Create the chunk's jobs in ``Submitting`` (see :meth:`aiodirac.Backend.submit`)."""
        lost = await self._enter("submit")
        if not chunk.jobs:
            raise InvalidRequestError("memory backend: a chunk without jobs", status_code=400)
        if len(chunk.jobs) > self.capabilities.max_jobs_per_submit:
            raise InvalidRequestError(
                f"memory backend: {len(chunk.jobs)} jobs in one request, the limit is "
                f"{self.capabilities.max_jobs_per_submit}",
                status_code=400,
            )
        if self.refuse is not None:
            message = self.refuse(chunk)
            if message is not None:
                raise InvalidRequestError(message, status_code=400)
        group_value = chunk.attributes.get("JobGroup", "")
        stamp = self._now()
        ids: list[int] = []
        for concrete in chunk.jobs:
            job_id = self._next_id
            self._next_id += 1
            group = concrete.attributes.get("JobGroup", group_value)
            job = self.jobs[job_id] = MemoryJob(
                job_id=job_id,
                name=concrete.name,
                job_group=group if isinstance(group, str) else str(group),
                attributes=dict(concrete.attributes),
                index=concrete.index,
                submitted=stamp,
                changed=stamp,
            )
            job.log()
            ids.append(job_id)
        if lost:
            raise self._lost("submit")
        return ids

    async def confirm(self, job_ids: Sequence[int]) -> None:
        """Release unconfirmed jobs to ``Received``; already confirmed ones are left alone.

        Raises:
            JobNotFoundError: an unknown job (nothing is changed).
            InvalidTransitionError: a job that was discarded, killed or deleted (nothing is changed).
        """
        self._check_update_size(job_ids)
        lost = await self._enter("confirm")
        jobs = [self._get(job_id) for job_id in job_ids]
        dead = [job.job_id for job in jobs if job.status in (JobStatus.KILLED, JobStatus.DELETED)]
        if dead:
            raise InvalidTransitionError(
                f"cannot confirm killed or deleted jobs {dead}",
                job_ids=tuple(dead),
                current=str(JobStatus.KILLED),
                requested=str(JobStatus.RECEIVED),
            )
        for job in jobs:
            if job.status is JobStatus.SUBMITTING:
                self._move(job, JobStatus.RECEIVED, MinorStatus.JOB_ACCEPTED)
                job.was_confirmed = True
        if lost:
            raise self._lost("confirm")

    async def discard(self, job_ids: Sequence[int], reason: str) -> None:
        """Kill unconfirmed jobs with MinorStatus ``reason``; confirmed ones are left alone."""
        self._check_update_size(job_ids)
        lost = await self._enter("discard")
        jobs = [self._get(job_id) for job_id in job_ids]
        for job in jobs:
            if job.status is JobStatus.SUBMITTING:
                self._move(job, JobStatus.KILLED, reason)
        if lost:
            raise self._lost("discard")

    async def find_unconfirmed(
        self,
        *,
        job_group: str | None = None,
        name_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UnconfirmedJob]:
        """Jobs in ``Submitting`` matching every filter, by increasing ID."""
        await self._enter("find_unconfirmed")
        return [
            UnconfirmedJob(job.job_id, job.name, job.job_group, job.submitted)
            for job in self.jobs.values()
            if job.status is JobStatus.SUBMITTING
            and (job_group is None or job.job_group == job_group)
            and (name_prefix is None or job.name.startswith(name_prefix))
            and (since is None or job.submitted >= since)
            and (until is None or job.submitted <= until)
        ]

    async def status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        """Current states; unknown IDs are absent."""
        if len(job_ids) > self.capabilities.max_ids_per_status:
            raise InvalidRequestError(
                f"memory backend: {len(job_ids)} IDs in one status query, the limit is "
                f"{self.capabilities.max_ids_per_status}",
                status_code=400,
            )
        lost = await self._enter("status")
        jobs = self.jobs
        answer = {job_id: jobs[job_id].state() for job_id in job_ids if job_id in jobs}
        if lost:
            raise self._lost("status")
        return answer

    async def output_sandbox(self, job_id: int) -> OutputSandbox:
        """What :meth:`set_output_sandbox` registered, once the job is final."""
        await self._enter("output_sandbox")
        job = self._get(job_id)
        if not job.status.final:
            raise SandboxNotAvailableError(
                f"job {job_id} is {job.status}, its output sandbox exists once it is final",
                job_id=job_id,
            )
        if job.sandbox is None:
            raise SandboxNotAvailableError(f"job {job_id} has no output sandbox", job_id=job_id)
        return job.sandbox

    async def kill(self, job_ids: Sequence[int]) -> ActionResult:
        """Kill jobs that DIRAC lets move to ``Killed``; refuse the others with their status."""

        def kill(job: MemoryJob) -> str | None:
            if job.status is JobStatus.KILLED or not job.status.can_move_to(JobStatus.KILLED):
                return str(job.status)
            self._move(job, JobStatus.KILLED, MinorStatus.MARKED_FOR_TERMINATION)
            return None

        return await self._act("kill", job_ids, kill)

    async def delete(self, job_ids: Sequence[int]) -> ActionResult:
        """Delete jobs, killing active ones first as DIRAC does."""

        def delete(job: MemoryJob) -> str | None:
            if job.status is JobStatus.DELETED:
                return str(job.status)
            if not job.status.can_move_to(JobStatus.DELETED):
                if job.status is JobStatus.KILLED or not job.status.can_move_to(JobStatus.KILLED):
                    return str(job.status)
                self._move(job, JobStatus.KILLED, MinorStatus.MARKED_FOR_TERMINATION)
            self._move(job, JobStatus.DELETED, "Deleted by owner")
            return None

        return await self._act("delete", job_ids, delete)

    async def reschedule(self, job_ids: Sequence[int]) -> ActionResult:
        """Send jobs through ``Rescheduled`` back to ``Received`` / "Job Rescheduled"."""

        def reschedule(job: MemoryJob) -> str | None:
            if job.status is JobStatus.SUBMITTING or not job.status.can_move_to(
                JobStatus.RESCHEDULED
            ):
                return str(job.status)
            self._move(job, JobStatus.RESCHEDULED, MinorStatus.RESCHEDULED)
            self._move(job, JobStatus.RECEIVED, MinorStatus.RESCHEDULED)
            return None

        return await self._act("reschedule", job_ids, reschedule)

    async def _act(
        self, action: str, job_ids: Sequence[int], apply: Callable[[MemoryJob], str | None]
    ) -> ActionResult:
        """Apply ``apply`` to each known job: ``None`` means done, a string why it was refused."""
        lost = await self._enter(action)
        done: list[int] = []
        refused: dict[int, str] = {}
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            reason = "unknown job" if job is None else apply(job)
            if reason is None:
                done.append(job_id)
            else:
                refused[job_id] = reason
        if lost:
            raise self._lost(action)
        return ActionResult(done=tuple(done), refused=refused)

    async def summary(self, job_ids: Sequence[int]) -> dict[JobStatus, int]:
        """Counts per status among the known ``job_ids``."""
        lost = await self._enter("summary")
        counts = Counter(self.jobs[job_id].status for job_id in job_ids if job_id in self.jobs)
        if lost:
            raise self._lost("summary")
        return dict(counts)

    async def get_jdl(self, job_id: int) -> str:
        """The job's attributes rendered as a JDL (strings quoted; quotes refused at submit)."""
        await self._enter("get_jdl")
        return render_jdl(self._get(job_id).attributes)

    # -- job monitoring ---------------------------------------------------------------------

    async def select_jobs(self, selection: JobSelection) -> list[int]:
        """IDs of the jobs meeting every condition, increasing."""
        await self._enter("select_jobs")
        return sorted(j.job_id for j in self.jobs.values() if selection.matches(j.attributes_now()))

    async def attributes(self, job_ids: Sequence[int]) -> dict[int, JobAttributes]:
        """Attributes of the known jobs among ``job_ids`` (Owner, OwnerGroup, VO: ``memory``)."""
        await self._enter("attributes")
        return {i: self.jobs[i].attributes_now() for i in job_ids if i in self.jobs}

    async def logging_info(self, job_id: int) -> list[LoggingRecord]:
        """Every state the job entered, oldest first."""
        await self._enter("logging_info")
        return list(self._get(job_id).history)

    async def parameters(self, job_id: int) -> dict[str, str]:
        """What the test put in ``jobs[id].parameters``."""
        await self._enter("parameters")
        return dict(self._get(job_id).parameters)

    async def input_data(self, job_id: int) -> list[str]:
        """The job's ``InputData`` attribute."""
        await self._enter("input_data")
        value = self._get(job_id).attributes.get("InputData", ())
        return [str(v) for v in value] if isinstance(value, tuple) else [str(value)]

    async def input_sandbox(self, job_id: int) -> OutputSandbox:
        """What the test put in ``jobs[id].input_sandbox``."""
        await self._enter("input_sandbox")
        found = self._get(job_id).input_sandbox
        if found is None:
            raise SandboxNotAvailableError(f"job {job_id} has no input sandbox", job_id=job_id)
        return found

    async def cpu_time(self, job_id: int) -> list[CPUSample]:
        """What the test put in ``jobs[id].cpu_samples``."""
        await self._enter("cpu_time")
        return list(self._get(job_id).cpu_samples)

    async def aclose(self) -> None:
        """Nothing to release; idempotent."""
        self._closed = True


def _quote(value: str) -> str:
    # DIRAC's JDL has no escapes: a value with a quote could not round-trip, so show it escaped
    # rather than let it change the structure of the text.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_jdl(attributes: Mapping[str, JDLValue]) -> str:
    """A readable JDL of ``attributes`` (the memory backend's :meth:`MemoryBackend.get_jdl`).

    Usage: ``render_jdl({"Executable": "/bin/echo"})``
    """
    lines = ["["]
    for key, value in attributes.items():
        if isinstance(value, tuple):
            text = "{" + ", ".join(_quote(item) for item in value) + "}"
        elif isinstance(value, int):
            text = str(value)
        else:
            text = _quote(value)
        lines.append(f"    {key} = {text};")
    lines.append("]")
    return "\n".join(lines)
