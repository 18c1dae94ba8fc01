"""Dirac: DIRAC's names and S_OK/S_ERROR results, over the real local backend."""

from __future__ import annotations

import tarfile
from pathlib import Path

from aiodirac import Dirac, Job


def _echo_job(n: int = 0) -> Job:
    job = Job(name="sync-%n")
    job.setExecutable("/bin/echo", arguments="value %(x)s" if n else "single")
    if n:
        job.setParameterSequence("x", [str(i) for i in range(n)])
    return job


def _wait_done(dirac: Dirac, ids: list[int]) -> dict[int, dict[str, str]]:
    result = dirac.wait(ids, timeout=60)
    assert result["OK"], result
    return result["Value"]  # type: ignore[no-any-return]


def test_submit_single_and_parametric(sync_dirac: Dirac) -> None:
    single = sync_dirac.submitJob(_echo_job())
    assert single["OK"], single
    assert isinstance(single["Value"], int)
    bulk = sync_dirac.submitJob(_echo_job(3))
    assert bulk["OK"], bulk
    assert isinstance(bulk["Value"], list)
    assert len(bulk["Value"]) == 3
    final = _wait_done(sync_dirac, [single["Value"], *bulk["Value"]])
    assert {v["Status"] for v in final.values()} == {"Done"}


def test_status_shapes(sync_dirac: Dirac) -> None:
    job_id = sync_dirac.submitJob(_echo_job())["Value"]
    _wait_done(sync_dirac, [job_id])
    status = sync_dirac.status(str(job_id))
    assert status["OK"]
    assert set(status["Value"][job_id]) == {"Status", "MinorStatus", "Site"}
    full = sync_dirac.getJobStatus([job_id])
    assert set(full["Value"][job_id]) == {"Status", "MinorStatus", "ApplicationStatus", "Site"}
    bad = sync_dirac.getJobStatus("not-a-number")
    assert bad["OK"] is False
    assert "job ID" in bad["Message"]


def test_get_output_sandbox_variants(sync_dirac: Dirac, tmp_path: Path) -> None:
    job_id = sync_dirac.submitJob(_echo_job())["Value"]
    _wait_done(sync_dirac, [job_id])

    into_cwd = sync_dirac.getOutputSandbox(job_id)
    assert into_cwd["OK"], into_cwd
    assert (tmp_path / str(job_id) / "std.out").read_text() == "single\n"
    assert into_cwd["Value"] == [sum(p.stat().st_size for p in (tmp_path / str(job_id)).iterdir())]
    again = sync_dirac.getOutputSandbox(job_id)
    assert again == {
        "OK": False,
        "Message": f"Job output directory {tmp_path / str(job_id)} already exists",
        "Errno": 0,
    }

    # with outputDir an existing folder is not an error (DIRAC extracts over it)
    (tmp_path / "given" / str(job_id)).mkdir(parents=True)
    given = sync_dirac.getOutputSandbox(job_id, outputDir=str(tmp_path / "given"))
    assert given["OK"], given
    assert (tmp_path / "given" / str(job_id) / "std.out").exists()

    flat = sync_dirac.getOutputSandbox(job_id, outputDir=str(tmp_path / "flat"), noJobDir=True)
    assert flat["OK"], flat
    assert (tmp_path / "flat" / "std.out").read_text() == "single\n"

    kept = sync_dirac.getOutputSandbox(job_id, outputDir=str(tmp_path / "kept"), unpack=False)
    assert kept["OK"], kept
    (archive,) = kept["Value"]
    with tarfile.open(archive) as tar:
        assert "std.out" in tar.getnames()

    listed = sync_dirac.getOutputSandbox([job_id])  # type: ignore[arg-type]
    assert listed["OK"] is False
    assert "Expected int or string, not list" in listed["Message"]


def test_control_methods(sync_dirac: Dirac) -> None:
    job_id = sync_dirac.submitJob(_echo_job())["Value"]
    _wait_done(sync_dirac, [job_id])
    refused = sync_dirac.killJob(job_id)
    assert refused["OK"] is False
    assert f"job {job_id}" in refused["Message"]
    assert "Done" in refused["Message"]
    jdl = sync_dirac.getJobJDL(job_id)
    assert jdl["OK"], jdl
    assert jdl["Value"]["JobName"] == "sync-0"
    peek = sync_dirac.peekJob(job_id)
    assert peek["OK"]
    assert "single" in peek["Value"]
    deleted = sync_dirac.deleteJob(job_id)
    assert deleted == {"OK": True, "Value": [job_id]}
    assert sync_dirac.getJobStatus(job_id)["Value"][job_id]["Status"] == "Deleted"
    missing = sync_dirac.rescheduleJob(987654)
    assert missing["OK"] is False


def test_local_mode_runs_every_parametric_job(sync_dirac: Dirac, tmp_path: Path) -> None:
    result = sync_dirac.submitJob(_echo_job(3), mode="local")
    assert result == {"OK": True, "Value": "Execution completed successfully"}
    folders = sorted(tmp_path.glob("Local_*_JobDir"))
    assert len(folders) == 3
    outputs = sorted((folder / "std.out").read_text() for folder in folders)
    assert outputs == ["value 0\n", "value 1\n", "value 2\n"]

    failing = Job()
    failing.setExecutable("/bin/sh", arguments="-c 'exit 4'")
    assert sync_dirac.submitJob(failing, mode="local") == {
        "OK": False,
        "Message": "Execution completed with non-zero status 4",
        "Errno": 0,
    }
    assert sync_dirac.submitJob(failing, mode="grid")["OK"] is False  # type: ignore[arg-type]


def test_usable_as_a_context_manager_and_closed_twice(tmp_path: Path) -> None:
    with Dirac() as dirac:
        assert dirac.getJobStatus(123456)["OK"] is False
    dirac.close()
