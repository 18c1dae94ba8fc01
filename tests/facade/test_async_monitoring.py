"""AsyncDirac's job-monitoring methods: typed results, bad input refused before any request."""

from __future__ import annotations

import hashlib
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aiodirac import (
    AsyncDirac,
    CPUSample,
    InvalidArgumentError,
    Job,
    JobAttributes,
    JobNotFoundError,
    JobStatus,
    LoggingRecord,
    OutputSandbox,
    UnsafeArchiveError,
)
from aiodirac.testing import MemoryBackend


async def _jobs(backend: MemoryBackend, n: int, group: str = "g") -> list[int]:
    job = Job()
    job.setExecutable("/bin/echo", arguments="%(i)s")
    job.setJobGroup(group)
    job.setParameterSequence("i", [str(i) for i in range(n)])
    (chunk,) = job.chunks(n)
    ids = await backend.submit(chunk)
    await backend.confirm(ids)
    return ids


def _archive(path: Path, members: dict[str, bytes]) -> OutputSandbox:
    with tarfile.open(path, "w:bz2") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = path.read_bytes()
    return OutputSandbox(0, path=str(path), size=len(data), sha256=hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": "Bogus"},
        {"status": ["Done", ""]},
        {"since": "04/12/2026"},
        {"since": 20261204},
        {"job_group": 7},
    ],
)
async def test_select_refuses_bad_conditions_before_any_request(kwargs: dict[str, object]) -> None:
    backend = MemoryBackend()
    async with AsyncDirac(backend) as dirac:
        with pytest.raises(InvalidArgumentError):
            await dirac.select(**kwargs)  # type: ignore[arg-type]
    assert backend.calls["select_jobs"] == 0


@pytest.mark.parametrize("bad", [0, -3, "x", "1.5", True])
async def test_single_job_methods_refuse_bad_ids_before_any_request(bad: object) -> None:
    backend = MemoryBackend()
    async with AsyncDirac(backend) as dirac:
        for method in (
            dirac.logging_info,
            dirac.parameters,
            dirac.input_data,
            dirac.output_lfns,
            dirac.cpu_time,
            dirac.download_input_sandbox,
            dirac.attributes,
        ):
            with pytest.raises(InvalidArgumentError):
                await method(bad)  # type: ignore[arg-type]
    assert sum(backend.calls.values()) == 0


async def test_typed_results() -> None:
    backend = MemoryBackend()
    async with AsyncDirac(backend) as dirac:
        ids = await _jobs(backend, 3, group="typed")
        backend.set_status(ids[:1], JobStatus.CHECKING, application_status="checking")
        assert await dirac.select(job_group="typed", status="checking") == ids[:1]
        assert await dirac.select(job_group="typed", status=["Received", "Checking"]) == ids
        assert await dirac.select(job_group="other") == []
        found = await dirac.attributes([*ids, 999])
        assert list(found) == ids
        assert all(isinstance(a, JobAttributes) for a in found.values())
        assert found[ids[0]].application_status == "checking"
        history = await dirac.logging_info(ids[0])
        assert all(isinstance(r, LoggingRecord) for r in history)
        assert [r.status for r in history] == ["Submitting", "Received", "Checking"]
        assert history[-1].as_dirac()[:3] == ("Checking", "JobSanity", "checking")
        backend.jobs[ids[0]].parameters["UploadedOutputData"] = "/vo/a.root, /vo/b.root"
        assert await dirac.output_lfns(ids[0]) == ["/vo/a.root", "/vo/b.root"]
        assert await dirac.output_lfns(ids[1]) == []
        sample = CPUSample(datetime(2026, 12, 4, tzinfo=UTC), 2.5)
        backend.jobs[ids[0]].cpu_samples.append(sample)
        assert await dirac.cpu_time(ids[0]) == [sample]
        with pytest.raises(JobNotFoundError):
            await dirac.logging_info(999)


async def test_monitoring_requests_pass_the_request_gate() -> None:
    backend = MemoryBackend()
    async with AsyncDirac(backend) as dirac:
        (job_id,) = await _jobs(backend, 1)
        before = dirac.gate.requests
        await dirac.select(status="Received")
        await dirac.attributes(job_id)
        await dirac.logging_info(job_id)
        await dirac.parameters(job_id)
        await dirac.input_data(job_id)
        await dirac.cpu_time(job_id)
        assert dirac.gate.requests - before == 6


async def test_download_input_sandbox(tmp_path: Path) -> None:
    backend = MemoryBackend()
    async with AsyncDirac(backend) as dirac:
        (job_id,) = await _jobs(backend, 1)
        backend.jobs[job_id].input_sandbox = _archive(
            tmp_path / "isb.tar.bz2", {"in.txt": b"data\n", "jobDescription.xml": b"<x/>"}
        )
        result = await dirac.download_input_sandbox(job_id, tmp_path / "dbg")
        assert result.ok, result.error
        folder = tmp_path / "dbg" / f"InputSandbox{job_id}"
        assert result.path == folder
        assert (folder / "in.txt").read_bytes() == b"data\n"
        with pytest.raises(InvalidArgumentError, match="already exists"):
            await dirac.download_input_sandbox(job_id, tmp_path / "dbg")

        # nothing to fetch, or a hostile archive: a failed result and no folder left behind
        (other,) = await _jobs(backend, 1)
        missing = await dirac.download_input_sandbox(other, tmp_path)
        assert not missing.ok
        assert "no input sandbox" in (missing.error or "")
        assert not (tmp_path / f"InputSandbox{other}").exists()
        backend.jobs[other].input_sandbox = _archive(tmp_path / "bad.tar.bz2", {"../x": b"x"})
        hostile = await dirac.download_input_sandbox(other, tmp_path)
        assert isinstance(hostile.exception, UnsafeArchiveError)
        assert not (tmp_path / f"InputSandbox{other}").exists()
        assert not (tmp_path / "x").exists()
