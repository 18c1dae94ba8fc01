"""The backend conformance suite's fixtures: every test runs once per backend kind.

To add a backend kind, write one async context manager that yields a ready backend and one
``drive`` coroutine that brings jobs to a final status, then register them in ``KINDS``::

    @contextlib.asynccontextmanager
    async def _diracx_backend(tmp_path: Path) -> AsyncIterator[Backend]:
        async with DiracXBackend(url=...) as backend:
            yield backend

    async def _diracx_drive(backend: Backend, ids: Sequence[int], timeout: float) -> dict[int, JobState]:
        ...  # run a test pilot on the jobs, then wait for them to be final

    KINDS["diracx"] = Kind(_diracx_backend, _diracx_drive, marks=(pytest.mark.diracx,))
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from aiodirac import Backend, CPUSample, JobState, JobStatus, SubmitChunk
from aiodirac._job._job import Job
from aiodirac._job._spec import ConcreteJob
from aiodirac.backends._protocol import OutputSandbox
from aiodirac.backends.local import LocalBackend
from aiodirac.backends.local._executor import run_job
from aiodirac.backends.local._sandbox import (
    file_digest,
    pack_files,
    pack_output_sandbox,
    store_input_sandbox,
)
from aiodirac.testing import MemoryBackend
from diracx_server import conformance_backend, conformance_drive

Drive = Callable[[Backend, Sequence[int], float], Awaitable[dict[int, JobState]]]


@dataclass(frozen=True)
class Kind:
    """One backend kind of the suite: how to open it and how to bring its jobs to an end."""

    open: Callable[[Path], contextlib.AbstractAsyncContextManager[Backend]]
    drive: Drive
    marks: tuple[Any, ...] = field(default=())


async def wait_final(backend: Backend, ids: Sequence[int], timeout: float) -> dict[int, JobState]:
    """Poll until every job is final; fail the test after ``timeout`` seconds."""
    states: dict[int, JobState] = {}
    with anyio.fail_after(timeout):
        while True:
            states = await backend.status(ids)
            if len(states) == len(set(ids)) and all(s.final for s in states.values()):
                return states
            await anyio.sleep(0.05)


@contextlib.asynccontextmanager
async def _local_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    backend = LocalBackend(tmp_path / "local-home", max_parallel=2, idle_timeout=10)
    try:
        async with backend:
            yield backend
    finally:
        assert await backend.stop_agent(), "the local agent did not stop"


async def _local_drive(backend: Backend, ids: Sequence[int], timeout: float) -> dict[int, JobState]:
    # the local agent runs confirmed jobs on its own: just wait
    return await wait_final(backend, ids, timeout)


class _MemoryGrid(MemoryBackend):
    """The memory backend, keeping each job's description so that :func:`_memory_drive` can run
    it as a worker node would (the local executor), as the test pilot does for DiracX."""

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.workdir = workdir
        self.concrete: dict[int, tuple[ConcreteJob, Path]] = {}

    async def submit(self, chunk: SubmitChunk) -> list[int]:
        ids = await super().submit(chunk)
        inputs = self.workdir / f"inputs-{ids[0]}"  # as the local backend keeps it
        sandbox = await anyio.to_thread.run_sync(_stored_input_sandbox, chunk, inputs)
        for job_id, job in zip(ids, chunk.jobs, strict=True):
            self.concrete[job_id] = (job, inputs)
            self.jobs[job_id].input_sandbox = replace(sandbox, job_id=job_id)
        return ids


def _stored_input_sandbox(chunk: SubmitChunk, inputs: Path) -> OutputSandbox:
    """Copy the chunk's input sandbox into ``inputs`` and pack it, as the local backend does."""
    store_input_sandbox(chunk, inputs)
    entries = sorted(inputs.iterdir(), key=lambda p: p.name)
    archive = inputs.with_name(inputs.name + ".tar.bz2")
    pack_files(
        inputs,
        [p.name for p in entries if not p.is_dir()],
        [p.name for p in entries if p.is_dir()],
        archive,
    )
    size, sha = file_digest(archive)
    return OutputSandbox(0, path=str(archive), size=size, sha256=sha)


@contextlib.asynccontextmanager
async def _memory_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    async with _MemoryGrid(tmp_path / "memory-grid") as backend:
        yield backend


def _run_on_worker_node(
    job: ConcreteJob, inputs: Path, job_id: int, site: str, folder: Path
) -> tuple[Any, Any]:
    outcome = run_job(job, folder / "work", inputs, job_id=job_id, site=site)
    return outcome, pack_output_sandbox(job, folder / "work", folder)


async def _memory_drive(
    backend: Backend, ids: Sequence[int], timeout: float
) -> dict[int, JobState]:
    # Confirmed jobs run one by one: Running, the steps in a working folder, the outcome's
    # status, and the OutputSandbox patterns packed as the output sandbox.
    assert isinstance(backend, _MemoryGrid)
    with anyio.fail_after(timeout):
        for job_id in dict.fromkeys(ids):
            record = backend.jobs[job_id]
            if record.status is JobStatus.SUBMITTING or record.status.final:
                continue
            backend.advance([job_id], to=JobStatus.RUNNING)
            outcome, archive = await anyio.to_thread.run_sync(
                _run_on_worker_node,
                *backend.concrete[job_id],
                job_id,
                record.site,
                backend.workdir / str(job_id),
            )
            if archive is not None:
                backend.set_output_sandbox(
                    job_id, OutputSandbox(job_id, path=str(archive), size=archive.stat().st_size)
                )
            # what a job wrapper reports along the way: its CPU time, as a parameter and a beat
            record.parameters["TotalCPUTime(s)"] = f"{outcome.cpu_time:.2f}"
            record.cpu_samples.append(CPUSample(datetime.now(UTC), outcome.cpu_time))
            backend.set_status(
                [job_id],
                outcome.status,
                outcome.minor_status,
                application_status=outcome.application_status,
            )
    return await backend.status(ids)


KINDS: dict[str, Kind] = {"local": Kind(_local_backend, _local_drive)}
KINDS["memory"] = Kind(_memory_backend, _memory_drive)
# the session's real DiracX server (tests/diracx_server.py) driven by aiodirac.testing's pilot
KINDS["diracx"] = Kind(conformance_backend, conformance_drive, marks=(pytest.mark.diracx,))


@pytest.fixture(params=[pytest.param(name, marks=kind.marks) for name, kind in KINDS.items()])
def backend_kind(request: pytest.FixtureRequest) -> str:
    """The name of the backend kind under test."""
    return str(request.param)


@pytest.fixture
async def backend(
    backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Backend]:
    """A ready backend of the kind under test."""
    if backend_kind == "diracx":
        request.getfixturevalue("diracx_server")  # started once per session
    async with KINDS[backend_kind].open(tmp_path) as opened:
        yield opened


@pytest.fixture
def drive_jobs(
    backend: Backend, backend_kind: str
) -> Callable[..., Awaitable[dict[int, JobState]]]:
    """``await drive_jobs(ids)``: run confirmed jobs to a final status and return their states."""

    async def drive(ids: Sequence[int], timeout: float = 60.0) -> dict[int, JobState]:
        return await KINDS[backend_kind].drive(backend, list(ids), timeout)

    return drive


@pytest.fixture
def make_chunk() -> Callable[..., SubmitChunk]:
    """``make_chunk(n=3, name="conf", group="g", command="/bin/echo", arguments="hi %n")``."""

    def make(
        n: int = 1,
        *,
        name: str = "conformance",
        group: str = "",
        command: str = "/bin/echo",
        arguments: str = "hello",
        cpu_time: int = 300,
    ) -> SubmitChunk:
        job = Job()
        job.setName(f"{name}-%n" if n > 1 else name)
        job.setExecutable(command, arguments=arguments)
        job.setCPUTime(cpu_time)
        if group:
            job.setJobGroup(group)
        if n > 1:
            job.setParameterSequence("i", [str(i) for i in range(n)])
        (chunk,) = job.chunks(max(n, 1))
        return chunk

    return make
