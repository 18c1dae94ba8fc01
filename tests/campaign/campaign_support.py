"""Helpers of the campaign tests: a parametric job, a client on a simulated grid, event counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from aiodirac import AsyncDirac, CampaignEvent, Job, TrackConfig
from aiodirac.testing import SimulatedGrid

FAST = TrackConfig(min_interval=0, max_interval=0)


def parametric(n: int, name: str = "scan-%n") -> Job:
    """A job of ``n`` concrete jobs."""
    job = Job()
    job.setName(name)
    job.setExecutable("/bin/echo", arguments="value %(v)s")
    job.setParameterSequence("v", [str(i) for i in range(n)])
    return job


def client(grid: SimulatedGrid) -> AsyncDirac:
    """A client on ``grid`` that polls without pause (the grid moves on every poll)."""
    return AsyncDirac(grid, track_config=FAST)


def kinds(events: Sequence[CampaignEvent]) -> Counter[str]:
    """How many events of each type."""
    return Counter(type(e).__name__ for e in events)
