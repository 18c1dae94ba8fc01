"""Helpers of the tracker tests: trio's virtual clock, a memory backend, jobs to track."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from trio.testing import MockClock

from aiodirac._engine.track._tracker import TrackConfig
from aiodirac._job._spec import ConcreteJob, Step, SubmitChunk
from aiodirac.backends._protocol import Capabilities
from aiodirac.testing._memory import Faults, MemoryBackend

T = TypeVar("T")

FAST = TrackConfig(min_interval=1.0, max_interval=8.0, growth=2.0)


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn`` on trio with a virtual clock that jumps whenever every task sleeps.

    A virtual hour at most: a stream that never ends fails the test instead of hanging it.
    """

    async def bounded() -> T:
        with anyio.fail_after(3600):
            return await fn()

    return anyio.run(
        bounded, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)}
    )


async def make_jobs(backend: MemoryBackend, count: int) -> list[int]:
    """Submit and confirm ``count`` jobs: they start in Received."""
    step = Step(number=1, executable="/bin/true")
    per = backend.capabilities.max_jobs_per_submit
    ids: list[int] = []
    for start in range(0, count, per):
        jobs = tuple(
            ConcreteJob(index=i, attributes={"JobName": f"j{i}"}, steps=(step,))
            for i in range(start, min(count, start + per))
        )
        ids += await backend.submit(SubmitChunk({"Executable": "/bin/true"}, "", jobs))
    await backend.confirm(ids)
    return ids


def memory(
    page: int = 10_000, cls: type[MemoryBackend] = MemoryBackend, **faults: Any
) -> MemoryBackend:
    """A ``cls`` backend answering ``page`` IDs per status call, with ``faults`` if any."""
    return cls(
        capabilities=Capabilities(
            max_jobs_per_submit=100, max_ids_per_status=page, max_ids_per_update=10_000
        ),
        faults=Faults(**faults) if faults else None,
    )
