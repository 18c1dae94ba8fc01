"""What a tracker tells its consumers: job changes, poll failures, vanished jobs, summaries.

The tracker's stream yields a *union* of small frozen values, :data:`TrackEvent`::

    JobEvent       a job's Status, MinorStatus, ApplicationStatus or Site changed (or was first seen)
    JobVanished    the backend no longer knows a job; it is reported once and no longer polled
    PollFailed     a status request failed; the tracker keeps its state and retries after a backoff
    PollRecovered  the service answered again after one or more PollFailed

Why one stream of several kinds rather than job events only: a live display (``aiodirac watch``)
must show "service unreachable, retrying in 8 s" in the same loop that draws job changes, and an
event-driven service forwards everything it is told, in order, from one place. A consumer that
wants job changes only iterates ``stream.job_events()`` instead (or ignores other kinds with
``match``). Poll failures are never job states: no job is marked Failed because polling failed.

Usage::

    async for event in stream:
        match event:
            case JobEvent(job_id=job_id, new=new):
                print(job_id, new.status)
            case PollFailed(next_retry_in=delay):
                print(f"service unreachable, retrying in {delay:.0f} s")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TypeAlias

from aiodirac._job._status import JobState, JobStatus

__all__ = [
    "JobEvent",
    "JobVanished",
    "PollFailed",
    "PollRecovered",
    "TrackCallback",
    "TrackEvent",
    "TrackSummary",
]


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One observed change of one job: its Status, MinorStatus, ApplicationStatus or Site.

    A tracker emits at most one event per job per poll, in the order it saw them, and never the
    same change twice. ``old`` is ``None`` the first time a job is seen (no earlier state known).
    Polling sees snapshots: a job that moved through several statuses between two polls yields
    one event from the last state seen to the current one.

    Attributes:
        job_id: the job.
        old: the previous state the tracker knew, or ``None`` on first sight.
        new: the state just seen.
        seen: when the tracker received the answer (UTC).

    Usage: ``print(event.job_id, event.old_status, "->", event.status, event.site)``
    """

    job_id: int
    old: JobState | None
    new: JobState
    seen: datetime

    @property
    def status(self) -> JobStatus:
        """The new Status."""
        return self.new.status

    @property
    def old_status(self) -> JobStatus | None:
        """The previous Status, or ``None`` on first sight."""
        return None if self.old is None else self.old.status

    @property
    def minor_status(self) -> str:
        """The new MinorStatus."""
        return self.new.minor_status

    @property
    def application_status(self) -> str:
        """The new ApplicationStatus."""
        return self.new.application_status

    @property
    def site(self) -> str:
        """The new Site."""
        return self.new.site

    @property
    def final(self) -> bool:
        """True when the new status is final: the tracker will not poll this job any more."""
        return self.new.status.final

    @property
    def status_changed(self) -> bool:
        """True when the Status itself changed (or the job is seen for the first time)."""
        return self.old is None or self.old.status is not self.new.status


@dataclass(frozen=True, slots=True)
class JobVanished:
    """The backend answered a status request without this job: it no longer knows it.

    Reported once; the job is then no longer polled and no longer counts towards the end of the
    stream. Its last known state (if any) stays in ``stream.states``.

    Attributes:
        job_id: the job.
        last: the last state the tracker knew, or ``None`` if it was never seen.
        seen: when the answer without it arrived (UTC).

    Usage: ``case JobVanished(job_id=job_id): print(f"job {job_id} deleted on the server")``
    """

    job_id: int
    last: JobState | None
    seen: datetime


@dataclass(frozen=True, slots=True)
class PollFailed:
    """A poll cycle failed, wholly or for some pages; the tracker backs off and retries.

    Job states are kept as they were: a poll failure never changes a job's status.

    Attributes:
        error: the last error met (a :class:`aiodirac.TransientError` in general).
        attempt: consecutive failed cycles so far (1 for the first).
        next_retry_in: seconds until the next attempt.
        failed_pages: pages of IDs that failed in this cycle.
        total_pages: pages of IDs asked in this cycle.
        seen: when the failure was noticed (UTC).

    Usage: ``case PollFailed(attempt=n, next_retry_in=d): print(f"attempt {n}, retry in {d:.0f}s")``
    """

    error: Exception
    attempt: int
    next_retry_in: float
    failed_pages: int
    total_pages: int
    seen: datetime


@dataclass(frozen=True, slots=True)
class PollRecovered:
    """Every page answered again after one or more :class:`PollFailed`.

    Attributes:
        failed_attempts: how many consecutive cycles had failed.
        outage: seconds from the first failure to this recovery (on the tracker's clock).
        seen: when the recovery was noticed (UTC).

    Usage: ``case PollRecovered(outage=s): print(f"service back after {s:.0f} s")``
    """

    failed_attempts: int
    outage: float
    seen: datetime


TrackEvent: TypeAlias = JobEvent | JobVanished | PollFailed | PollRecovered
"""Everything a tracking stream yields (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class TrackSummary:
    """Running totals of one tracking stream, for progress displays.

    Attributes:
        counts: tracked jobs per last known status (jobs not yet seen are in ``unseen``).
        unseen: tracked jobs whose status is not known yet.
        vanished: jobs the backend no longer knows.
        total: tracked jobs (including unseen and vanished, excluding removed ones).
        final: jobs in a final status.
        cycles: poll cycles run (failed ones included).
        requests: status requests sent.
        events: job events emitted.
        poll_failures: failed poll cycles in total.
        failing: True while the last cycle failed (the service is not answering).

    Usage: ``print(f"{s.final}/{s.total} final, {s.counts.get(JobStatus.RUNNING, 0)} running")``
    """

    counts: Mapping[JobStatus, int] = field(default_factory=lambda: MappingProxyType({}))
    unseen: int = 0
    vanished: int = 0
    total: int = 0
    final: int = 0
    cycles: int = 0
    requests: int = 0
    events: int = 0
    poll_failures: int = 0
    failing: bool = False

    @property
    def pending(self) -> int:
        """Jobs still polled: neither final nor vanished."""
        return self.total - self.final - self.vanished

    @property
    def done(self) -> bool:
        """True when no tracked job is left to poll."""
        return self.pending == 0


#: A callback receives every event, in stream order; it may be sync or async.
TrackCallback = Callable[[TrackEvent], object]
