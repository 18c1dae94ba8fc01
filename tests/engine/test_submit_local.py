"""The submitter on the real local backend, with replies lost after the jobs were created."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from aiodirac._engine._gate import Limits, RequestGate
from aiodirac._engine._retry import retry_test_mode
from aiodirac._engine.submit._submitter import SubmitConfig, Submitter
from aiodirac._exceptions import NetworkError
from aiodirac._job._job import Job
from aiodirac._job._spec import SubmitChunk
from aiodirac._job._status import JobState, JobStatus
from aiodirac._journal import Journal
from aiodirac.backends._protocol import ActionResult, Backend, OutputSandbox, UnconfirmedJob
from aiodirac.backends.local import LocalBackend


class LosesReplies(Backend):
    """A real backend whose every ``every``-th submit reply is lost after the jobs were stored."""

    def __init__(self, inner: Backend, every: int) -> None:
        self.inner = inner
        # DiracX's chunk size, so that a campaign has many chunks as it would on a server.
        self.capabilities = dataclasses.replace(inner.capabilities, max_jobs_per_submit=20)
        self.every = every
        self.calls = 0

    @property
    def description(self) -> str:
        return f"lossy {self.inner.description}"

    async def submit(self, chunk: SubmitChunk) -> list[int]:
        ids = await self.inner.submit(chunk)
        self.calls += 1
        if self.calls % self.every == 0:
            raise NetworkError("reply lost after the jobs were stored")
        return ids

    async def confirm(self, job_ids: Sequence[int]) -> None:
        await self.inner.confirm(job_ids)

    async def discard(self, job_ids: Sequence[int], reason: str) -> None:
        await self.inner.discard(job_ids, reason)

    async def find_unconfirmed(
        self,
        *,
        job_group: str | None = None,
        name_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UnconfirmedJob]:
        return await self.inner.find_unconfirmed(
            job_group=job_group, name_prefix=name_prefix, since=since, until=until
        )

    async def status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        return await self.inner.status(job_ids)

    async def output_sandbox(self, job_id: int) -> OutputSandbox:
        return await self.inner.output_sandbox(job_id)

    async def kill(self, job_ids: Sequence[int]) -> ActionResult:
        return await self.inner.kill(job_ids)

    async def delete(self, job_ids: Sequence[int]) -> ActionResult:
        return await self.inner.delete(job_ids)

    async def reschedule(self, job_ids: Sequence[int]) -> ActionResult:
        return await self.inner.reschedule(job_ids)

    async def summary(self, job_ids: Sequence[int]) -> dict[JobStatus, int]:
        return await self.inner.summary(job_ids)

    async def get_jdl(self, job_id: int) -> str:
        return await self.inner.get_jdl(job_id)


@pytest.mark.slow
async def test_exactly_once_on_the_local_backend(tmp_path: Path) -> None:
    n = 90
    job = Job()
    job.setExecutable("/bin/echo", arguments="value %(n)s")
    job.setName("local-%n")
    job.setParameterSequence("n", [str(i) for i in range(n)])
    local = LocalBackend(tmp_path / "home", max_parallel=1, idle_timeout=5)
    backend = LosesReplies(local, every=3)
    config = SubmitConfig(campaign="local")
    config_limits = Limits(rate=1000, burst=100)
    try:
        async with await Journal.open(tmp_path / "journal.db") as journal:
            with retry_test_mode():
                ids = await Submitter(
                    backend, config, gate=RequestGate(config_limits), journal=journal
                ).submit(job)
            swept = await journal.swept_ids()
            campaign = await journal.campaign()
        assert campaign is not None
        assert len(ids) == n
        states = await local.status(ids + swept)
        assert all(states[i].status is not JobStatus.SUBMITTING for i in ids)
        assert swept, "every third reply was lost: its jobs must have been swept"
        assert {states[i].status for i in swept} == {JobStatus.KILLED}
        assert all(states[i].minor_status.startswith("Swept by aiodirac") for i in swept)
        assert await local.find_unconfirmed(job_group=campaign.job_group) == []
        # Each parameter value is in exactly one confirmed job.
        confirmed = await local.status(ids)
        assert len(confirmed) == n
        assert len(swept) % 20 == 0
    finally:
        await local.stop_agent()
        await local.aclose()
