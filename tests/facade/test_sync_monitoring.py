"""Dirac's job-monitoring methods: DIRAC's names, return shapes and printed output, over the
real local backend (and NotSupportedError -> S_ERROR through a MemoryBackend that lacks them)."""

from __future__ import annotations

import pprint
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aiodirac import Backend, Dirac, Job
from aiodirac._job._monitoring import ATTRIBUTE_NAMES, SUMMARY_NAMES
from aiodirac.testing import MemoryBackend

TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def _done_job(dirac: Dirac, group: str = "mon") -> int:
    job = Job()
    job.setName("monitored")
    job.setJobGroup(group)
    job.setExecutable("/bin/echo", arguments="hello")
    job_id = dirac.submitJob(job)["Value"]
    final = dirac.wait(job_id, timeout=60)
    assert final["OK"], final
    assert final["Value"][job_id]["Status"] == "Done", final
    return int(job_id)


def test_select_jobs(sync_dirac: Dirac) -> None:
    day = datetime.now(UTC).date()
    job_id = _done_job(sync_dirac, group="sel")
    selected = sync_dirac.selectJobs(status="Done", jobGroup="sel")
    if datetime.now(UTC).date() == day:  # date defaults to today (UTC), the day it ran
        assert selected == {"OK": True, "Value": [str(job_id)]}
    # an old date keeps the job, a future one does not
    assert sync_dirac.selectJobs(jobGroup="sel", date="2000-01-01")["Value"] == [str(job_id)]
    none = sync_dirac.selectJobs(jobGroup="sel", date="2999-01-01")
    assert none == {"OK": False, "Message": "No jobs selected", "Errno": 0}
    assert sync_dirac.selectJobs(jobGroup="sel", date="2999-01-01", printErrors=False) == {
        "OK": True,
        "Value": [],
    }
    # empty conditions do not filter, as in DIRAC
    assert sync_dirac.selectJobs(status="", jobGroup="sel", date=day)["Value"] == [str(job_id)]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"status": "Finished"}, "unknown job status 'Finished'"),
        ({"date": "yesterday"}, "YYYY-MM-DD"),
        ({"date": "2026-02-30"}, "not a valid date"),
        ({"site": ["ok", 3]}, "site must be a non-empty string"),
    ],
)
def test_select_jobs_bad_input_is_refused_before_any_request(
    tmp_path: Path, kwargs: dict[str, object], fragment: str
) -> None:
    backend = MemoryBackend()
    with Dirac(backend=backend) as dirac:
        result = dirac.selectJobs(**kwargs)  # type: ignore[arg-type]
    assert result["OK"] is False
    assert fragment in result["Message"]
    assert backend.calls["select_jobs"] == 0


def test_attributes_and_summary(
    sync_dirac: Dirac, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = _done_job(sync_dirac)
    attributes = sync_dirac.getJobAttributes(str(job_id))
    assert attributes["OK"], attributes
    value = attributes["Value"]
    assert tuple(value) == ATTRIBUTE_NAMES
    # typed as DIRAC 9.1's JobDB hands them out
    assert value["JobID"] == job_id
    assert value["Status"] == "Done"
    assert value["JobName"] == "monitored"
    assert value["JobGroup"] == "mon"
    assert isinstance(value["UserPriority"], int)
    assert value["RescheduleCounter"] == 0
    assert value["VerifiedFlag"] == "True"
    for name in ("SubmissionTime", "LastUpdateTime", "StartExecTime", "EndExecTime"):
        when = value[name]
        assert isinstance(when, datetime), name
        assert when.tzinfo is None
        assert when.microsecond == 0
    assert value["SubmissionTime"] <= value["EndExecTime"]
    assert value["HeartBeatTime"] is None
    assert value["RescheduleTime"] is None
    assert sync_dirac.getJobAttributes(999_999) == {"OK": True, "Value": {}}
    assert sync_dirac.getJobAttributes([job_id])["OK"] is False

    capsys.readouterr()
    sync_dirac.getJobAttributes(job_id, printOutput=True)
    printed = capsys.readouterr().out
    assert printed.startswith(f"=================\n {job_id}\n{{'AccountedFlag': ")

    summary = sync_dirac.getJobSummary([job_id, 999_999], outputFile=str(tmp_path / "s.txt"))
    assert summary["OK"], summary
    assert list(summary["Value"]) == [job_id, 999_999]
    assert tuple(summary["Value"][job_id]) == SUMMARY_NAMES
    assert summary["Value"][job_id]["Status"] == "Done"
    assert set(summary["Value"][999_999].values()) == {"None"}
    assert isinstance(summary["Value"][job_id]["LastUpdateTime"], datetime)
    lines = (tmp_path / "s.txt").read_text().splitlines()
    assert lines[0] == "JobID".ljust(12) + "".join(h.ljust(35) for h in SUMMARY_NAMES)
    assert lines[1].startswith(str(job_id).ljust(12) + "Done".ljust(35))
    again = sync_dirac.getJobSummary(job_id, outputFile=str(tmp_path / "s.txt"))
    assert again["OK"] is False
    assert "already exists" in again["Message"]


def test_logging_info(sync_dirac: Dirac, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = _done_job(sync_dirac)
    result = sync_dirac.getJobLoggingInfo(job_id)
    assert result["OK"], result
    rows = result["Value"]
    assert all(isinstance(row, tuple) and len(row) == 5 for row in rows)
    assert rows[0][:3] == ("Submitting", "Bulk transaction confirmation", "Unknown")
    assert rows[1][:2] == ("Received", "Job accepted")
    assert rows[-1][:2] == ("Done", "Execution Complete")
    assert all(TIME.fullmatch(row[3]) for row in rows)
    assert rows[0][4] == "JobManager"

    capsys.readouterr()
    sync_dirac.getJobLoggingInfo(job_id, printOutput=True)
    printed = capsys.readouterr().out.split("\n")
    header, rule = printed[0], printed[1]
    assert header.split() == ["Source", "Status", "MinorStatus", "ApplicationStatus", "DateTime"]
    widths = [
        max(len(name), *(len(row[i]) for row in rows))
        for name, i in zip(header.split(), (4, 0, 1, 2, 3), strict=True)
    ]
    assert rule == "=" * (sum(widths) + 2 * len(widths))
    first = rows[0]
    expected = "  ".join(
        cell.ljust(width) for cell, width in zip([first[4], *first[:4]], widths, strict=True)
    ).rstrip()
    assert printed[2] == expected
    assert printed[-2:] == ["", ""]  # DIRAC's table ends with a newline, and print adds one

    missing = sync_dirac.getJobLoggingInfo(999_999)
    assert missing == {"OK": False, "Message": "No Logging information for job 999999", "Errno": 0}


def test_parameters_output_lfns_cpu_time_and_input_data(
    sync_dirac: Dirac, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = _done_job(sync_dirac)
    parameters = sync_dirac.getJobParameters(job_id)
    assert parameters["OK"], parameters
    assert "StandardOutput" not in parameters["Value"]
    assert float(parameters["Value"]["TotalCPUTime(s)"]) >= 0
    capsys.readouterr()
    sync_dirac.getJobParameters(job_id, printOutput=True)
    assert capsys.readouterr().out.startswith(f"{{{job_id}: {{")
    assert sync_dirac.getJobParameters(999_999) == {
        "OK": False,
        "Message": "Failed to get job parameters for 999999",
        "Errno": 0,
    }
    assert sync_dirac.getJobOutputLFNs(job_id) == {
        "OK": False,
        "Message": f"No output data found for job {job_id}",
        "Errno": 0,
    }
    cpu = sync_dirac.getJobCPUTime([job_id])
    assert cpu["OK"], cpu
    ((stamp, used),) = cpu["Value"][job_id].items()
    assert TIME.fullmatch(stamp)
    assert re.fullmatch(r"\d+\.\d", used)
    assert sync_dirac.getJobInputData(job_id) == {"OK": True, "Value": {job_id: []}}
    assert sync_dirac.getJobInputData([job_id, 999_999])["Value"] == {job_id: [], 999_999: []}


def test_get_input_sandbox(sync_dirac: Dirac, tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("input\n")
    job = Job()
    job.setExecutable("/bin/cat", arguments="data.txt")
    job.setExecutable("/bin/false")  # a Failed job keeps its input sandbox
    job.setInputSandbox(["data.txt"])
    job_id = sync_dirac.submitJob(job)["Value"]
    final = sync_dirac.wait(job_id, timeout=60)
    assert final["Value"][job_id]["Status"] == "Failed"

    result = sync_dirac.getInputSandbox(job_id)
    assert result["OK"], result
    folder = tmp_path / f"InputSandbox{job_id}"
    assert (folder / "data.txt").read_text() == "input\n"
    assert (folder / "jobDescription.xml").is_file()
    assert result["Value"] == [sum(p.stat().st_size for p in folder.iterdir())]
    again = sync_dirac.getInputSandbox(job_id)
    assert again == {
        "OK": False,
        "Message": f"Job input sandbox directory {folder} already exists",
        "Errno": 0,
    }
    elsewhere = sync_dirac.getInputSandbox(job_id, outputDir=str(tmp_path / "dbg"))
    assert elsewhere["OK"]
    assert (tmp_path / "dbg" / f"InputSandbox{job_id}" / "data.txt").is_file()
    unknown = sync_dirac.getInputSandbox(999_999)
    assert unknown["OK"] is False
    assert "999999" in unknown["Message"]
    assert not (tmp_path / "InputSandbox999999").exists()


class _Bare(MemoryBackend):
    """A backend that answers none of the monitoring questions (the Backend defaults)."""

    parameters = Backend.parameters
    input_data = Backend.input_data
    cpu_time = Backend.cpu_time
    logging_info = Backend.logging_info
    attributes = Backend.attributes
    select_jobs = Backend.select_jobs
    input_sandbox = Backend.input_sandbox


def test_what_a_backend_cannot_answer_is_an_s_error(tmp_path: Path) -> None:
    with Dirac(backend=_Bare()) as dirac:
        results = {
            "selectJobs": dirac.selectJobs(status="Done"),
            "getJobAttributes": dirac.getJobAttributes(1),
            "getJobSummary": dirac.getJobSummary(1),
            "getJobLoggingInfo": dirac.getJobLoggingInfo(1),
            "getJobParameters": dirac.getJobParameters(1),
            "getJobOutputLFNs": dirac.getJobOutputLFNs(1),
            "getJobInputData": dirac.getJobInputData(1),
            "getJobCPUTime": dirac.getJobCPUTime(1),
            "getInputSandbox": dirac.getInputSandbox(1, outputDir=str(tmp_path)),
        }
    for name, result in results.items():
        assert result["OK"] is False, name
        assert result["Message"].startswith("memory (0 jobs) cannot tell"), (name, result)


def test_jdl_and_peek_print_output(sync_dirac: Dirac, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = _done_job(sync_dirac)
    capsys.readouterr()
    jdl = sync_dirac.getJobJDL(job_id, printOutput=True)
    assert jdl["OK"], jdl
    assert capsys.readouterr().out == pprint.pformat(jdl["Value"]) + "\n"
    peek = sync_dirac.peekJob(job_id, printOutput=True)
    assert peek["OK"], peek
    assert capsys.readouterr().out == f"{peek['Value']}\n"
    assert "hello" in peek["Value"]
