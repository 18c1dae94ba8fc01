"""Where every job of a running campaign stands, in a few flat arrays (100,000 jobs fit).

Each job of the campaign is known by its *index* (``%n``, the same over all its attempts);
its current job ID, attempt, last status and *phase* are kept here, with running counts, so
that :meth:`CampaignState.progress` costs nothing whatever the campaign's size.

Usage::

    state = CampaignState(1000)
    state.assign(7, job_id=1207, attempt=1)
    state.set_phase(7, Phase.ACTIVE)
"""

from __future__ import annotations

import enum
from collections import Counter
from types import MappingProxyType

from aiodirac._job._status import JobStatus

from ._events import CampaignProgress

__all__ = ["FINISHED", "CampaignState", "Phase"]


class Phase(enum.IntEnum):
    """What the campaign does with one job.

    Usage: ``state.phase[7] == Phase.FETCHING``
    """

    UNSUBMITTED = 0
    ACTIVE = 1  # submitted, followed until final
    FETCHING = 2  # Done, its outputs are being fetched
    RETRYING = 3  # failed, a retry is waiting or being made
    FETCHED = 4
    FETCH_FAILED = 5
    DONE = 6  # Done, and the campaign fetches nothing
    GAVE_UP = 7
    KILLED = 8  # killed or deleted by its owner
    VANISHED = 9


#: Phases in which the campaign has nothing left to do for a job.
FINISHED = frozenset(
    {
        Phase.FETCHED,
        Phase.FETCH_FAILED,
        Phase.DONE,
        Phase.GAVE_UP,
        Phase.KILLED,
        Phase.VANISHED,
    }
)


class CampaignState:
    """Per-job state and running counts of one campaign.

    Args:
        total: jobs in the campaign.

    Usage: ``state = CampaignState(len(job))``
    """

    __slots__ = (
        "attempt",
        "braked",
        "by_id",
        "counts",
        "failed_once",
        "finished",
        "job_id",
        "phase",
        "phases",
        "retries",
        "status",
        "submitted",
        "total",
    )

    def __init__(self, total: int) -> None:
        self.total = total
        self.job_id = [0] * total
        self.attempt = [1] * total
        self.status: list[JobStatus | None] = [None] * total
        self.phase = bytearray(total)
        self.phases: Counter[int] = Counter({Phase.UNSUBMITTED: total})
        self.counts: Counter[JobStatus] = Counter()
        # The current attempt's job ID -> index (older attempts are not followed).
        self.by_id: dict[int, int] = {}
        self.failed_once: set[int] = set()
        self.finished = 0
        self.submitted = 0
        self.retries = 0
        self.braked = False

    def assign(self, index: int, job_id: int, attempt: int) -> None:
        """Make ``job_id`` the current attempt of job ``index`` (its status is not known yet).

        Usage: ``state.assign(7, 1207, 1)``
        """
        old = self.job_id[index]
        if old:
            self.by_id.pop(old, None)
        else:
            self.submitted += 1
        self.job_id[index] = job_id
        self.attempt[index] = attempt
        self.by_id[job_id] = index
        self.set_status(index, None)

    def set_status(self, index: int, status: JobStatus | None) -> None:
        """Record the current attempt's status.

        Usage: ``state.set_status(7, JobStatus.RUNNING)``
        """
        old = self.status[index]
        if old is not None:
            self.counts[old] -= 1
        if status is not None:
            self.counts[status] += 1
        self.status[index] = status

    def set_phase(self, index: int, phase: Phase) -> None:
        """Move job ``index`` to ``phase``.

        Usage: ``state.set_phase(7, Phase.FETCHING)``
        """
        old = self.phase[index]
        if old == phase:
            return
        self.phases[old] -= 1
        self.phases[phase] += 1
        self.finished += (phase in FINISHED) - (old in FINISHED)
        self.phase[index] = phase

    @property
    def all_finished(self) -> bool:
        """Every job is finished (fetched, done, given up, killed or vanished)."""
        return self.finished == self.total

    def progress(self, name: str, *, downloads: bool, ended: bool) -> CampaignProgress:
        """The :class:`CampaignProgress` now.

        Usage: ``state.progress("scan", downloads=True, ended=False)``
        """
        phases = self.phases
        return CampaignProgress(
            name=name,
            total=self.total,
            submitted=self.submitted,
            counts=MappingProxyType({s: n for s, n in self.counts.items() if n}),
            downloaded=phases[Phase.FETCHED],
            download_failed=phases[Phase.FETCH_FAILED],
            retries=self.retries,
            retries_pending=phases[Phase.RETRYING],
            gave_up=phases[Phase.GAVE_UP] + phases[Phase.UNSUBMITTED] * ended,
            killed=phases[Phase.KILLED],
            vanished=phases[Phase.VANISHED],
            failed_once=len(self.failed_once),
            braked=self.braked,
            downloads=downloads,
            ended=ended,
        )
