"""DIRAC's job status model: the 16 statuses, which are final, and the allowed transitions.

Facts from DIRAC 9.1.22 (``DIRACCommon.WorkloadManagementSystem.Client.JobStatus``), see
``reference/dirac/status_model.md``. Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "DIRAC_FINAL_STATUSES",
    "FINAL_STATUSES",
    "REALLY_FINAL_STATUSES",
    "JobState",
    "JobStatus",
    "MinorStatus",
]


class JobStatus(enum.StrEnum):
    """A DIRAC job status. Compares equal to its DIRAC string.

    Usage: ``JobStatus("Done").final`` -> ``True``
    """

    SUBMITTING = "Submitting"
    RECEIVED = "Received"
    CHECKING = "Checking"
    SCOUTING = "Scouting"
    STAGING = "Staging"
    WAITING = "Waiting"
    MATCHED = "Matched"
    RESCHEDULED = "Rescheduled"
    RUNNING = "Running"
    STALLED = "Stalled"
    COMPLETING = "Completing"
    DONE = "Done"
    COMPLETED = "Completed"
    FAILED = "Failed"
    DELETED = "Deleted"
    KILLED = "Killed"

    @property
    def level(self) -> int:
        """DIRAC's ordering level (0 Submitting .. 15 Deleted); used to sort, not to decide moves."""
        return _LEVELS[self]

    @property
    def final(self) -> bool:
        """True when the payload's work is over (DIRAC's JOB_FINAL_STATES, plus Deleted).

        Completed and Failed may still move (Completed -> Done, Failed -> Rescheduled), but nothing
        more will run on their own; a tracker stops polling them.
        """
        return self in FINAL_STATUSES

    @property
    def really_final(self) -> bool:
        """True when the job object will not change any more (Deleted)."""
        return self in REALLY_FINAL_STATUSES

    def can_move_to(self, target: JobStatus) -> bool:
        """Whether DIRAC's state machine accepts ``self -> target`` as requested.

        Deleted is terminal here (DIRAC's ``setState`` keeps it), although DIRAC's
        ``getNextState`` lets anything through from Deleted; we follow ``setState``.

        Usage: ``JobStatus.DONE.can_move_to(JobStatus.KILLED)`` -> ``False``
        """
        return target is self or target in _NEXT[self]


#: DIRAC's ``JOB_FINAL_STATES``: the payload's work is over.
DIRAC_FINAL_STATUSES: frozenset[JobStatus] = frozenset(
    {JobStatus.DONE, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.KILLED}
)
#: The statuses a job never leaves (Deleted).
REALLY_FINAL_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.DELETED})
#: The statuses whose :attr:`JobStatus.final` is true: DIRAC's final states and Deleted.
FINAL_STATUSES: frozenset[JobStatus] = DIRAC_FINAL_STATUSES | REALLY_FINAL_STATUSES

_LEVELS: dict[JobStatus, int] = {
    JobStatus.SUBMITTING: 0,
    JobStatus.RECEIVED: 1,
    JobStatus.CHECKING: 2,
    JobStatus.SCOUTING: 3,
    JobStatus.STAGING: 4,
    JobStatus.WAITING: 5,
    JobStatus.MATCHED: 6,
    JobStatus.RESCHEDULED: 7,
    JobStatus.RUNNING: 8,
    JobStatus.STALLED: 9,
    JobStatus.COMPLETING: 10,
    JobStatus.COMPLETED: 11,
    JobStatus.DONE: 12,
    JobStatus.FAILED: 13,
    JobStatus.KILLED: 14,
    JobStatus.DELETED: 15,
}

_S = JobStatus
_NEXT: dict[JobStatus, frozenset[JobStatus]] = {
    _S.SUBMITTING: frozenset({_S.RECEIVED, _S.CHECKING, _S.DELETED, _S.KILLED}),
    _S.RECEIVED: frozenset(
        {_S.SCOUTING, _S.CHECKING, _S.STAGING, _S.WAITING, _S.FAILED, _S.DELETED, _S.KILLED}
    ),
    _S.CHECKING: frozenset(
        {_S.SCOUTING, _S.STAGING, _S.WAITING, _S.RESCHEDULED, _S.FAILED, _S.DELETED, _S.KILLED}
    ),
    _S.SCOUTING: frozenset({_S.CHECKING, _S.FAILED, _S.STALLED, _S.KILLED}),
    _S.STAGING: frozenset({_S.CHECKING, _S.WAITING, _S.FAILED, _S.KILLED}),
    _S.WAITING: frozenset({_S.MATCHED, _S.RESCHEDULED, _S.DELETED, _S.KILLED}),
    _S.MATCHED: frozenset({_S.RUNNING, _S.FAILED, _S.RESCHEDULED, _S.KILLED}),
    _S.RESCHEDULED: frozenset({_S.WAITING, _S.RECEIVED, _S.DELETED, _S.FAILED, _S.KILLED}),
    _S.RUNNING: frozenset(
        {_S.STALLED, _S.DONE, _S.FAILED, _S.RESCHEDULED, _S.COMPLETING, _S.KILLED, _S.RECEIVED}
    ),
    _S.STALLED: frozenset({_S.RUNNING, _S.FAILED, _S.KILLED}),
    _S.COMPLETING: frozenset({_S.DONE, _S.FAILED, _S.COMPLETED, _S.STALLED, _S.KILLED}),
    _S.COMPLETED: frozenset({_S.DONE, _S.FAILED}),
    _S.DONE: frozenset({_S.DELETED}),
    _S.FAILED: frozenset({_S.RESCHEDULED, _S.DELETED}),
    _S.KILLED: frozenset({_S.DELETED}),
    _S.DELETED: frozenset(),
}
del _S


class MinorStatus(enum.StrEnum):
    """MinorStatus strings the DIRAC WMS itself writes (``JobMinorStatus``); free text otherwise.

    Usage: ``MinorStatus.EXEC_COMPLETE`` == ``"Execution Complete"``
    """

    JOB_ACCEPTED = "Job accepted"
    BULK_CONFIRMATION = "Bulk transaction confirmation"
    APPLICATION = "Application"
    APP_NOT_FOUND = "Application not found"
    APP_SUCCESS = "Application Finished Successfully"
    APP_ERRORS = "Application Finished With Errors"
    DOWNLOADING_INPUT_SANDBOX = "Downloading InputSandbox"
    FAILED_DOWNLOADING_INPUT_SANDBOX = "Failed Downloading InputSandbox"
    EXEC_COMPLETE = "Execution Complete"
    EXCEPTION_DURING_EXEC = "Exception During Execution"
    RESCHEDULED = "Job Rescheduled"
    PILOT_AGENT_SUBMISSION = "Pilot Agent Submission"
    JOB_EXCEEDED_CPU = "Job has reached the CPU limit of the queue"
    JOB_EXCEEDED_WALL_CLOCK = "Job has exceeded maximum wall clock time"
    JOB_INITIALIZATION = "Job Initialization"
    JOB_INSUFFICIENT_DISK = "Job has insufficient disk space to continue"
    JOB_WRAPPER_INITIALIZATION = "Job Wrapper Initialization"
    MARKED_FOR_TERMINATION = "Marked for termination"
    RECEIVED_KILL_SIGNAL = "Received Kill signal"
    UPLOADING_OUTPUT_SANDBOX = "Uploading Output Sandbox"
    OUTPUT_SANDBOX_UPLOADED = "Output Sandbox Uploaded"
    MAX_RESCHEDULING = "Maximum of reschedulings reached"
    CHECKING_ACCOUNTING = "Checking accounting"


@dataclass(frozen=True, slots=True)
class JobState:
    """One job's status as a backend reported it, at one moment.

    Attributes:
        job_id: the job's ID.
        status: its DIRAC status.
        minor_status: DIRAC's MinorStatus (free text).
        application_status: the payload's ApplicationStatus (free text, DIRAC default ``Unknown``).
        site: where it runs or ran (``ANY`` before it is matched).
        time: when the backend last changed it, or when it was seen, when known.

    Usage: ``state.status.final``; ``state.as_dirac()`` -> ``{'Status': 'Done', ...}``
    """

    job_id: int
    status: JobStatus
    minor_status: str = ""
    application_status: str = "Unknown"
    site: str = "ANY"
    time: datetime | None = None

    @property
    def final(self) -> bool:
        """True when the job's status is final (see :attr:`JobStatus.final`)."""
        return self.status.final

    def as_dirac(self) -> dict[str, str]:
        """The DIRAC ``getJobStatus`` value for this job.

        Usage: ``{s.job_id: s.as_dirac() for s in states}``
        """
        return {
            "Status": str(self.status),
            "MinorStatus": self.minor_status,
            "ApplicationStatus": self.application_status,
            "Site": self.site,
        }
