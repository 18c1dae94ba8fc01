"""What DIRAC's job-monitoring API tells about jobs, as typed values; pure, no I/O.

:class:`JobSelection` holds the conditions of DIRAC's ``selectJobs`` (checked when built: an
unknown status or an unreadable date is an :class:`~aiodirac.InvalidArgumentError` before any
request); :class:`JobAttributes` is a job's row in DIRAC's JobDB (``getJobAttributes``,
``getJobSummary``); :class:`LoggingRecord` is one line of its status history (JobLoggingDB,
``getJobLoggingInfo``); :class:`CPUSample` is one CPU-time reading (``getJobCPUTime``).
Each has ``as_dirac()`` giving the value DIRAC's ``Dirac`` methods return.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, TypedDict, Unpack

from aiodirac._exceptions import InvalidArgumentError

from ._status import JobStatus

__all__ = [
    "ATTRIBUTE_NAMES",
    "SUMMARY_NAMES",
    "CPUSample",
    "DiracValue",
    "JobAttributes",
    "JobSelection",
    "LoggingRecord",
    "SelectConditions",
    "db_time",
    "dirac_time",
    "parse_since",
]

#: DIRAC's JobDB attribute names, in its table order (``getJobAttributes`` keys).
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "JobID",
    "JobType",
    "JobGroup",
    "Site",
    "JobName",
    "Owner",
    "OwnerGroup",
    "VO",
    "SubmissionTime",
    "RescheduleTime",
    "LastUpdateTime",
    "StartExecTime",
    "HeartBeatTime",
    "EndExecTime",
    "Status",
    "MinorStatus",
    "ApplicationStatus",
    "UserPriority",
    "RescheduleCounter",
    "VerifiedFlag",
    "AccountedFlag",
)

#: The keys of DIRAC's ``getJobSummary`` value, in its order.
SUMMARY_NAMES: tuple[str, ...] = (
    "Status",
    "MinorStatus",
    "ApplicationStatus",
    "Site",
    "JobGroup",
    "LastUpdateTime",
    "HeartBeatTime",
    "SubmissionTime",
    "Owner",
)

_STATUSES = {status.value.lower(): status for status in JobStatus}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")


def dirac_time(value: datetime | None) -> str:
    """A time as DIRAC's databases print it: UTC ``YYYY-MM-DD HH:MM:SS``, ``None`` if unset.

    Usage: ``dirac_time(datetime(2026, 12, 4, 22, 5, tzinfo=UTC))`` -> ``"2026-12-04 22:05:00"``
    """
    if value is None:
        return "None"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


#: A value of DIRAC's job attribute dictionaries.
DiracValue = str | int | datetime | None


def db_time(value: datetime | None) -> datetime | None:
    """A time as DIRAC's JobDB (MySQL ``DATETIME``) hands it out: naive UTC, to the second.

    Usage: ``db_time(datetime(2026, 12, 4, 22, 5, 7, 123, tzinfo=UTC))`` ->
    ``datetime(2026, 12, 4, 22, 5, 7)``
    """
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0)


def parse_since(value: str | date | datetime | None) -> datetime | None:
    """A selection date as an aware UTC datetime (DIRAC reads ``yyyy-mm-dd`` as UTC midnight).

    Accepts a :class:`~datetime.date`, a :class:`~datetime.datetime` (naive means UTC, as in
    DIRAC), or a string ``YYYY-MM-DD`` with an optional `` HH:MM[:SS]``.

    Raises:
        InvalidArgumentError: anything else, or a date that does not exist.

    Usage: ``parse_since("2026-12-04")`` -> ``datetime(2026, 12, 4, tzinfo=UTC)``
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        raise InvalidArgumentError(
            f"a selection date must be YYYY-MM-DD (optionally with HH:MM:SS), not {value!r}"
        )
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgumentError(f"{value!r} is not a valid date") from None
    return parsed.replace(tzinfo=UTC)


def _strings(name: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[object] = [value]
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = list(value)
    else:
        raise InvalidArgumentError(f"{name} must be a string or a list of strings, not {value!r}")
    for item in items:
        if not isinstance(item, str) or not item:
            raise InvalidArgumentError(f"{name} must be a non-empty string, not {item!r}")
    return tuple(dict.fromkeys(str(item) for item in items))


def _statuses(value: str | Iterable[str] | None) -> tuple[JobStatus, ...]:
    found: list[JobStatus] = []
    for item in _strings("status", value):
        status = _STATUSES.get(item.lower())
        if status is None:
            known = ", ".join(s.value for s in JobStatus)
            raise InvalidArgumentError(f"unknown job status {item!r}: use one of {known}")
        found.append(status)
    return tuple(found)


class SelectConditions(TypedDict, total=False):
    """The conditions of a selection, by keyword (see :meth:`JobSelection.build`).

    Usage: ``conditions: SelectConditions = {"status": "Done", "since": "2026-12-01"}``
    """

    status: str | Iterable[str] | None
    minor_status: str | Iterable[str] | None
    application_status: str | Iterable[str] | None
    site: str | Iterable[str] | None
    owner: str | Iterable[str] | None
    owner_group: str | Iterable[str] | None
    job_group: str | Iterable[str] | None
    since: str | date | datetime | None


@dataclass(frozen=True, slots=True)
class JobSelection:
    """Conditions jobs must all meet (DIRAC's ``selectJobs``); each field: any of its values.

    Empty fields do not filter. ``since`` keeps the jobs last updated at or after that time.
    Build it with :meth:`build`, which checks every value.

    Usage: ``JobSelection.build(status="Failed", job_group="scan", since="2026-12-01")``
    """

    status: tuple[JobStatus, ...] = ()
    minor_status: tuple[str, ...] = ()
    application_status: tuple[str, ...] = ()
    site: tuple[str, ...] = ()
    owner: tuple[str, ...] = ()
    owner_group: tuple[str, ...] = ()
    job_group: tuple[str, ...] = ()
    since: datetime | None = None

    @classmethod
    def build(cls, **conditions: Unpack[SelectConditions]) -> JobSelection:
        """A checked selection; statuses are matched case-insensitively (``done`` is ``Done``).

        Raises:
            InvalidArgumentError: an unknown status, an empty or non-string value, a bad date.

        Usage: ``JobSelection.build(status=["Done", "Failed"], site="DIRAC.vm.local")``
        """
        unknown = set(conditions) - set(SelectConditions.__annotations__)
        if unknown:
            raise InvalidArgumentError(f"unknown selection condition(s): {sorted(unknown)}")
        status = conditions.get("status")
        minor_status = conditions.get("minor_status")
        application_status = conditions.get("application_status")
        site = conditions.get("site")
        owner = conditions.get("owner")
        owner_group = conditions.get("owner_group")
        job_group = conditions.get("job_group")
        since = conditions.get("since")
        return cls(
            status=_statuses(status),
            minor_status=_strings("minor_status", minor_status),
            application_status=_strings("application_status", application_status),
            site=_strings("site", site),
            owner=_strings("owner", owner),
            owner_group=_strings("owner_group", owner_group),
            job_group=_strings("job_group", job_group),
            since=parse_since(since),
        )

    def matches(self, attributes: JobAttributes) -> bool:
        """Whether a job meets every condition.

        Usage: ``[a.job_id for a in rows if selection.matches(a)]``
        """
        checks: tuple[tuple[tuple[Any, ...], Any], ...] = (
            (self.status, attributes.status),
            (self.minor_status, attributes.minor_status),
            (self.application_status, attributes.application_status),
            (self.site, attributes.site),
            (self.owner, attributes.owner),
            (self.owner_group, attributes.owner_group),
            (self.job_group, attributes.job_group),
        )
        if any(wanted and value not in wanted for wanted, value in checks):
            return False
        updated = attributes.last_update_time
        return self.since is None or (updated is not None and updated >= self.since)


@dataclass(frozen=True, slots=True)
class JobAttributes:
    """A job's attributes, as DIRAC's JobDB keeps them (times are aware UTC datetimes).

    Usage: ``attrs = (await dirac.attributes(196))[196]; attrs.owner, attrs.end_exec_time``
    """

    job_id: int
    status: JobStatus
    minor_status: str
    application_status: str
    site: str
    job_name: str
    job_group: str
    job_type: str
    owner: str
    owner_group: str
    vo: str
    user_priority: int
    reschedule_counter: int
    submission_time: datetime | None
    last_update_time: datetime | None
    start_exec_time: datetime | None = None
    end_exec_time: datetime | None = None
    heart_beat_time: datetime | None = None
    reschedule_time: datetime | None = None
    verified: bool = True
    accounted: str = "False"

    def as_dirac(self) -> dict[str, DiracValue]:
        """DIRAC's ``getJobAttributes`` value, typed as DIRAC 9.1's JobDB returns it: ``JobID``,
        ``UserPriority`` and ``RescheduleCounter`` ints; times naive UTC datetimes to the
        second (``None`` when unset); the flags ``'True'``/``'False'``; the rest strings.

        Usage: ``attrs.as_dirac()["Status"]`` -> ``"Done"``
        """
        values: tuple[DiracValue, ...] = (
            self.job_id,
            self.job_type,
            self.job_group,
            self.site,
            self.job_name,
            self.owner,
            self.owner_group,
            self.vo,
            db_time(self.submission_time),
            db_time(self.reschedule_time),
            db_time(self.last_update_time),
            db_time(self.start_exec_time),
            db_time(self.heart_beat_time),
            db_time(self.end_exec_time),
            str(self.status),
            self.minor_status,
            self.application_status,
            self.user_priority,
            self.reschedule_counter,
            str(self.verified),
            self.accounted,
        )
        return dict(zip(ATTRIBUTE_NAMES, values, strict=True))

    def summary(self) -> dict[str, DiracValue]:
        """DIRAC's ``getJobSummary`` value for this job: nine of :meth:`as_dirac`'s attributes.

        Usage: ``{a.job_id: a.summary() for a in found.values()}``
        """
        every = self.as_dirac()
        return {name: every[name] for name in SUMMARY_NAMES}


@dataclass(frozen=True, slots=True)
class LoggingRecord:
    """One status change of a job (a row of DIRAC's JobLoggingDB).

    Attributes:
        status: the Status after the change.
        minor_status: the MinorStatus after it.
        application_status: the ApplicationStatus after it.
        time: when it happened (aware, UTC).
        source: who reported it (``JobManager``, ``JobWrapper``, an agent...).

    Usage: ``[r.status for r in await dirac.logging_info(196)]``
    """

    status: JobStatus
    minor_status: str
    application_status: str
    time: datetime
    source: str

    def as_dirac(self) -> tuple[str, str, str, str, str]:
        """DIRAC's tuple: ``(Status, MinorStatus, ApplicationStatus, DateTime, Source)``.

        Usage: ``record.as_dirac()[3]`` -> ``"2026-12-04 22:05:00"``
        """
        return (
            str(self.status),
            self.minor_status,
            self.application_status,
            dirac_time(self.time),
            self.source,
        )


@dataclass(frozen=True, slots=True)
class CPUSample:
    """CPU seconds a job had used at one moment (DIRAC's heartbeat ``CPUConsumed``).

    Usage: ``[s.cpu_seconds for s in await dirac.cpu_time(196)]``
    """

    time: datetime
    cpu_seconds: float
