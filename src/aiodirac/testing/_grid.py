"""A simulated grid on the in-memory backend: jobs move on every status poll, some fail.

:class:`SimulatedGrid` is a :class:`MemoryBackend` whose jobs run by themselves: each status
request moves every confirmed job it asks about ``steps`` steps along Received -> Checking ->
Waiting -> Matched -> Running -> Completing -> Done, and a job whose campaign index is in
``fail_once`` ends ``Failed`` (Application Finished With Errors) the first time it runs, one in ``stall_once`` goes
``Stalled`` instead; retried (rescheduled or resubmitted), it then succeeds. With ``outputs``,
each Done job gets an output sandbox (a small tar file holding its ``std.out``). Answers cost
next to nothing, so a campaign on it measures aiodirac alone. Like a real grid it outlives its
clients: closing a client leaves it usable by the next one.

Usage::

    grid = SimulatedGrid(fail_once={3, 17})
    async with AsyncDirac(grid) as dirac:
        await dirac.campaign(job, journal=tmp_path / "c.db").run()
"""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from aiodirac._job._monitoring import LoggingRecord
from aiodirac._job._spec import SubmitChunk
from aiodirac._job._status import JobState, JobStatus, MinorStatus
from aiodirac.backends._protocol import OutputSandbox

from ._memory import _HAPPY_PATH, _MINOR_ON_PATH, MemoryBackend, MemoryJob

__all__ = ["SimulatedGrid"]

_STRIDE = 1 << 32


class _NoHistory(list[LoggingRecord]):
    """A history that keeps nothing."""

    def append(self, item: LoggingRecord) -> None:
        pass


_NO_HISTORY = _NoHistory()
_POSITION = {status: n for n, status in enumerate(_HAPPY_PATH)}


class SimulatedGrid(MemoryBackend):
    """A :class:`MemoryBackend` whose jobs progress on every status poll.

    Args:
        fail_once: campaign indices (``%n``) whose first run fails.
        stall_once: campaign indices whose first run stalls (``Stalled``, never moving again).
        outputs: a folder for the output sandboxes of Done jobs (none when ``None``).
        steps: steps along the healthy path per poll (1: every status is seen).
        light: keep neither each job's JDL attributes nor its history (a benchmark of 100,000
            jobs then measures the client, not the simulated grid's memory).
        site: the Site jobs run at.
        **kwargs: passed to :class:`MemoryBackend`.

    Attributes:
        runs: how many times each index started running.

    Usage: ``SimulatedGrid(fail_once=range(0, 100, 20), steps=2)``
    """

    def __init__(
        self,
        *,
        fail_once: Collection[int] = (),
        stall_once: Collection[int] = (),
        outputs: str | Path | None = None,
        steps: int = 1,
        light: bool = False,
        site: str = "LCG.Simulated.org",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fail_once = frozenset(fail_once)
        self.stall_once = frozenset(stall_once)
        self.outputs = Path(outputs) if outputs is not None else None
        self.steps = steps
        self.site = site
        self.runs: Counter[int] = Counter()
        self.light = light

    async def submit(self, chunk: SubmitChunk) -> list[int]:
        """Create the chunk's jobs (see :meth:`MemoryBackend.submit`)."""
        ids = await super().submit(chunk)
        if self.light:
            for job_id in ids:
                job = self.jobs[job_id]
                job.attributes = {}
                job.history = _NO_HISTORY
        return ids

    async def status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        """Move the jobs asked about, then answer (see the class docstring)."""
        jobs = self.jobs
        running = JobStatus.RUNNING
        for job_id in job_ids:
            job = jobs.get(job_id)
            if job is None:
                continue
            position = _POSITION.get(job.status)
            if position is None or job.status is JobStatus.DONE:
                continue
            index = job.index % _STRIDE
            for status in _HAPPY_PATH[position + 1 : position + 1 + self.steps]:
                if status is JobStatus.COMPLETING and self.runs[index] == 1:
                    if index in self.fail_once:
                        self._move(job, JobStatus.FAILED, MinorStatus.APP_ERRORS)
                        job.application_status = "Exit code 1"
                        break
                    if index in self.stall_once:
                        self._move(job, JobStatus.STALLED, "Job stalled: pilot not running")
                        break
                self._move(job, status, _MINOR_ON_PATH[status])
                if status is JobStatus.MATCHED:
                    job.site = self.site
                elif status is running:
                    self.runs[index] += 1
                elif status is JobStatus.DONE:
                    job.application_status = MinorStatus.APP_SUCCESS
                    if self.outputs is not None:
                        job.sandbox = _sandbox(self.outputs, job)
        return await super().status(job_ids)

    async def aclose(self) -> None:
        """Nothing to release: the simulated grid stays usable by the next client."""


def _sandbox(folder: Path, job: MemoryJob) -> OutputSandbox:
    data = f"job {job.job_id} index {job.index % _STRIDE}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("std.out")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job.job_id}.tar"
    path.write_bytes(buffer.getvalue())
    return OutputSandbox(job_id=job.job_id, path=str(path), size=path.stat().st_size, format="tar")
