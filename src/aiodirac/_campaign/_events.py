"""What a campaign tells its listeners: one stream of small frozen values, and its progress.

:data:`CampaignEvent` is the union a campaign's stream yields (and its callbacks receive), in
the order things happened::

    JobChanged        a job's state changed (the tracker's JobEvent, with its index and attempt)
    DownloadFinished  a Done job's outputs are in <dest>/<job id>/ (ok) or could not be fetched
    RetryStarted      a failed job is being run again (reschedule or resubmission)
    RetryFailed       the retry itself failed (it counts as an attempt)
    GaveUp            a failed job will not be retried (attempts used up, or the brake)
    BrakeEngaged      more than the policy's fraction of jobs failed: no more retries
    PollProblem       the service did not answer a status poll (the tracker's PollFailed,
                      PollRecovered or JobVanished); never a job state
    CampaignEnded     every job is final and fetched, or given up; carries the final progress

Usage::

    async for event in campaign:
        match event:
            case JobChanged(index=i, event=change):
                print(i, change.status)
            case CampaignEnded(progress=p):
                print(p.outcome)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

from aiodirac._engine.download._model import DownloadResult
from aiodirac._engine.track._events import JobEvent, JobVanished, PollFailed, PollRecovered
from aiodirac._job._status import JobStatus

from ._policy import RetryMethod

__all__ = [
    "BrakeEngaged",
    "CampaignEnded",
    "CampaignEvent",
    "CampaignProgress",
    "DownloadFinished",
    "GaveUp",
    "JobChanged",
    "PollProblem",
    "RetryFailed",
    "RetryStarted",
]


@dataclass(frozen=True, slots=True)
class JobChanged:
    """A job of the campaign changed state.

    Attributes:
        index: the job's index in the campaign (``%n``), the same over every attempt.
        attempt: which run of the job this is (1 for the first).
        event: the change as the tracker saw it (``event.job_id``, ``event.new``...).

    Usage: ``case JobChanged(index=i, event=e): print(i, e.job_id, e.status)``
    """

    index: int
    attempt: int
    event: JobEvent

    @property
    def job_id(self) -> int:
        """The job's ID (a resubmitted job has a new one)."""
        return self.event.job_id

    @property
    def status(self) -> JobStatus:
        """The new status."""
        return self.event.status


@dataclass(frozen=True, slots=True)
class DownloadFinished:
    """A Done job's output sandbox was fetched into ``<dest>/<job id>/``, or could not be.

    A failed download is reported here and in the progress; the campaign goes on.

    Attributes:
        index: the job's index in the campaign.
        result: the downloader's result (``result.ok``, ``result.path``, ``result.error``).

    Usage: ``case DownloadFinished(result=r) if not r.ok: print(r.error)``
    """

    index: int
    result: DownloadResult

    @property
    def ok(self) -> bool:
        """True when the outputs are in place."""
        return self.result.ok


@dataclass(frozen=True, slots=True)
class RetryStarted:
    """A failed job is being run again.

    Attributes:
        index: the job's index in the campaign.
        attempt: the attempt starting now (2 for the first retry).
        old_job_id: the job that failed.
        new_job_id: the job that runs now (the same ID when rescheduled).
        method: how (:class:`RetryMethod`).
        reason: the failure that caused it (``Failed: Application Finished With Errors``).

    Usage: ``case RetryStarted(index=i, attempt=a): print(f"job {i}: attempt {a}")``
    """

    index: int
    attempt: int
    old_job_id: int
    new_job_id: int
    method: RetryMethod
    reason: str


@dataclass(frozen=True, slots=True)
class RetryFailed:
    """A retry could not be made (the server refused it); it counts as an attempt.

    Attributes:
        index: the job's index in the campaign.
        attempt: the attempt it used.
        job_id: the job that was to be retried.
        error: why.

    Usage: ``case RetryFailed(error=e): print(e)``
    """

    index: int
    attempt: int
    job_id: int
    error: str


@dataclass(frozen=True, slots=True)
class GaveUp:
    """A failed job will not be retried.

    Attributes:
        index: the job's index in the campaign.
        job_id: its last job ID.
        attempts: how many times it ran.
        reason: ``attempts used up``, ``brake``, or what made it impossible.

    Usage: ``case GaveUp(index=i, reason=r): print(i, r)``
    """

    index: int
    job_id: int
    attempts: int
    reason: str


@dataclass(frozen=True, slots=True)
class BrakeEngaged:
    """More than the policy's fraction of the campaign failed: nothing more is retried.

    Attributes:
        failed: jobs that failed at least once.
        total: jobs in the campaign.
        fraction: the policy's ``max_failed_fraction``.

    Usage: ``case BrakeEngaged(failed=n, total=t): print(f"{n}/{t} failed: no more retries")``
    """

    failed: int
    total: int
    fraction: float


@dataclass(frozen=True, slots=True)
class PollProblem:
    """The tracker could not poll, polled again, or a job vanished from the service.

    Attributes:
        event: the tracker's :class:`~aiodirac.PollFailed`, :class:`~aiodirac.PollRecovered`
            or :class:`~aiodirac.JobVanished`.

    Usage: ``case PollProblem(event=PollFailed(next_retry_in=d)): print(f"retry in {d:.0f} s")``
    """

    event: PollFailed | PollRecovered | JobVanished


@dataclass(frozen=True, slots=True)
class CampaignProgress:
    """Where a campaign stands: available at any moment (``campaign.progress``).

    Attributes:
        name: the campaign's name.
        total: jobs in the campaign.
        submitted: jobs with a confirmed ID.
        counts: jobs per status of their current attempt (jobs not seen yet are absent).
        downloaded: jobs whose outputs are in place.
        download_failed: Done jobs whose outputs could not be fetched.
        retries: retries made (reschedules and resubmissions).
        retries_pending: failed jobs waiting for their retry.
        gave_up: failed jobs that will not be retried.
        killed: jobs killed or deleted by their owner (never retried).
        vanished: jobs the service no longer knows.
        failed_once: jobs that failed at least once (what the brake counts).
        braked: the brake is engaged.
        downloads: True when the campaign fetches outputs.
        ended: every job is final and fetched, or given up.

    Usage: ``print(campaign.progress.outcome)``
    """

    name: str
    total: int
    submitted: int = 0
    counts: Mapping[JobStatus, int] = field(default_factory=lambda: MappingProxyType({}))
    downloaded: int = 0
    download_failed: int = 0
    retries: int = 0
    retries_pending: int = 0
    gave_up: int = 0
    killed: int = 0
    vanished: int = 0
    failed_once: int = 0
    braked: bool = False
    downloads: bool = True
    ended: bool = False

    @property
    def complete(self) -> bool:
        """True when the campaign ended with every job Done (and fetched, when it fetches)."""
        bad = self.gave_up + self.killed + self.vanished + self.download_failed
        return self.ended and bad == 0

    @property
    def outcome(self) -> str:
        """One line: ``complete``, or what was given up, failed or missing.

        Usage: ``print(progress.outcome)`` -> ``gave up on 3 jobs, 1 download failed``
        """
        if not self.ended:
            final = sum(n for status, n in self.counts.items() if status.final)
            return f"running: {final}/{self.total} final"
        parts = []
        if self.gave_up:
            parts.append(f"gave up on {self.gave_up} failed jobs")
        if self.killed:
            parts.append(f"{self.killed} killed or deleted by their owner")
        if self.vanished:
            parts.append(f"{self.vanished} vanished from the service")
        if self.download_failed:
            parts.append(f"{self.download_failed} downloads failed")
        return "; ".join(parts) if parts else "complete"

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()) if n)
        fetched = f"; {self.downloaded} fetched" if self.downloads else ""
        return (
            f"campaign {self.name}: {self.total} jobs ({counts or 'none seen'}){fetched}; "
            f"{self.retries} retries; {self.outcome}"
        )


@dataclass(frozen=True, slots=True)
class CampaignEnded:
    """The campaign is over: the last event of its stream.

    Attributes:
        progress: the final :class:`CampaignProgress` (``progress.outcome`` says how it went).

    Usage: ``case CampaignEnded(progress=p): print(p.outcome)``
    """

    progress: CampaignProgress


CampaignEvent: TypeAlias = (
    JobChanged
    | DownloadFinished
    | RetryStarted
    | RetryFailed
    | GaveUp
    | BrakeEngaged
    | PollProblem
    | CampaignEnded
)
"""Everything a campaign's stream yields (see the module docstring)."""
