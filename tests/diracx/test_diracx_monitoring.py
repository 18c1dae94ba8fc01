"""Dirac's job-monitoring methods against the real DiracX server: DIRAC's shapes where DiracX
0.7.0 can answer, a clear S_ERROR where it has no endpoint."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import anyio
import pytest

from aiodirac import Dirac, Job
from aiodirac._job._monitoring import ATTRIBUTE_NAMES, SUMMARY_NAMES
from diracx_server import DiracXServer

pytestmark = pytest.mark.diracx

TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def test_sync_monitoring_on_diracx(
    diracx_server: DiracXServer, credentials: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in diracx_server.client_environment(credentials).items():
        monkeypatch.setenv(name, value)
    group = f"dxmon-{tmp_path.name[-10:]}"
    job = Job()
    job.setName("dx-monitored")
    job.setJobGroup(group)
    job.setExecutable("/bin/echo", arguments="hello")
    with Dirac() as dirac:  # DIRACX_URL chooses DiracX
        job_id = dirac.submitJob(job)["Value"]

        async def run() -> None:
            async with diracx_server.pilot(tmp_path / "grid", credentials) as pilot:
                await pilot.run_jobs([job_id])

        anyio.run(run)
        assert dirac.wait(job_id, timeout=60)["Value"][job_id]["Status"] == "Done"

        since = "2000-01-01"
        assert dirac.selectJobs(jobGroup=group, date=since) == {"OK": True, "Value": [str(job_id)]}
        assert dirac.selectJobs(jobGroup=group, status="Failed", date=since) == {
            "OK": False,
            "Message": "No jobs selected",
            "Errno": 0,
        }

        attributes = dirac.getJobAttributes(job_id)["Value"]
        assert tuple(attributes) == ATTRIBUTE_NAMES
        assert attributes["JobName"] == "dx-monitored"
        assert attributes["Owner"] == "localuser"
        assert isinstance(attributes["SubmissionTime"], datetime)
        assert attributes["JobID"] == job_id
        summary = dirac.getJobSummary(job_id)["Value"][job_id]
        assert tuple(summary) == SUMMARY_NAMES
        assert summary["Status"] == "Done"

        logging = dirac.getJobLoggingInfo(job_id)
        assert logging["OK"], logging
        assert logging["Value"][-1][:2] == ("Done", "Execution Complete")
        assert all(TIME.fullmatch(row[3]) for row in logging["Value"])

        for name, call in {
            "getJobParameters": lambda: dirac.getJobParameters(job_id),
            "getJobOutputLFNs": lambda: dirac.getJobOutputLFNs(job_id),
            "getJobInputData": lambda: dirac.getJobInputData(job_id),
            "getJobCPUTime": lambda: dirac.getJobCPUTime(job_id),
        }.items():
            result = call()
            assert result["OK"] is False, name
            assert result["Message"].startswith("DiracX 0.7.0 has no endpoint"), result

        unassigned = dirac.getInputSandbox(job_id, outputDir=str(tmp_path))
        assert unassigned["OK"] is False
        assert "no input sandbox assigned" in unassigned["Message"]
        assert not (tmp_path / f"InputSandbox{job_id}").exists()
