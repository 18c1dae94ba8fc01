"""The seed's three scripts (examples/seed/), run in sequence as separate processes, as users do."""

from __future__ import annotations

import ast
import json
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from example_support import EXAMPLES, RunExample


def _value(stdout: str) -> object:
    """The DIRAC result dict a seed script printed (its last line)."""
    text = stdout.strip().splitlines()[-1]
    return ast.literal_eval(text[text.index("{") :])


def test_submit_status_output_from_three_processes(run_example: RunExample, tmp_path: Path) -> None:
    submitted = run_example("seed/submit.py")
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.stdout.startswith("Submission Result:  {'OK': True, 'Value': ")
    result = _value(submitted.stdout)
    assert isinstance(result, dict)
    job_id = result["Value"]
    assert isinstance(job_id, int)

    deadline = time.monotonic() + 60
    while True:
        status = run_example("seed/status.py", str(job_id))
        assert status.returncode == 0, status.stderr
        answer = _value(status.stdout)
        assert isinstance(answer, dict)
        assert answer["OK"], answer
        state = answer["Value"][job_id]
        # exactly the seed's keys: Status, MinorStatus and Site
        assert set(state) == {"Status", "MinorStatus", "Site"}
        if state["Status"] in ("Done", "Failed"):
            break
        assert time.monotonic() < deadline, f"job {job_id} still {state} after 60 s"
        time.sleep(0.5)
    assert state == {
        "Status": "Done",
        "MinorStatus": "Execution Complete",
        "Site": f"DIRAC.{socket.gethostname().split('.')[0]}.local",
    }

    output = run_example("seed/output.py", str(job_id))
    assert output.returncode == 0, output.stderr
    fetched = _value(output.stdout)
    assert isinstance(fetched, dict)
    assert fetched["OK"], fetched
    folder = tmp_path / str(job_id)
    files = sorted(p.name for p in folder.iterdir())
    assert files == [
        "Script1_CodeOutput.log",
        "Script2_hostname.log",
        "Script3_CodeOutput.log",
        "std.err",
        "std.out",
    ]
    assert fetched["Value"] == [sum(p.stat().st_size for p in folder.iterdir())]
    # DIRAC's banner and the real output of each step
    log1 = (folder / "Script1_CodeOutput.log").read_text()
    assert log1 == "<<<<<<<<<< /bin/echo hello Standard Output >>>>>>>>>>\n\nhello\n "
    assert socket.gethostname() in (folder / "Script2_hostname.log").read_text()
    assert "hello again" in (folder / "Script3_CodeOutput.log").read_text()
    assert (folder / "std.out").read_text().split() == [
        "hello",
        socket.gethostname(),
        "hello",
        "again",
    ]

    # As DIRAC: a second getOutputSandbox into an existing ./<id>/ is refused.
    again = run_example("seed/output.py", str(job_id))
    refused = _value(again.stdout)
    assert refused == {
        "OK": False,
        "Message": f"Job output directory {folder} already exists",
        "Errno": 0,
    }


def test_unknown_job_is_a_clear_error(run_example: RunExample) -> None:
    status = run_example("seed/status.py", "424242")
    assert status.returncode == 0, status.stderr
    answer = _value(status.stdout)
    assert answer == {"OK": False, "Message": "No job found with ID 424242", "Errno": 0}


@pytest.mark.slow
def test_main_campaign_example(run_example: RunExample, tmp_path: Path) -> None:
    """The README's main command, scaled down: progress shown, outputs on disk, resumable."""
    first = run_example("campaign.py", "12", "out", timeout=240)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "submitted 12 jobs" in first.stdout
    assert "| outputs 12/12" in first.stdout
    results = sorted((tmp_path / "out").glob("*/result.json"))
    assert len(results) == 12
    seeds = sorted(json.loads(p.read_text())["seed"] for p in results)
    assert seeds == list(range(1000, 1012))
    assert "combined estimate of pi from 12 jobs: 3.1" in first.stdout
    # the files the last lines name are the files each job folder holds
    named = re.search(r"outputs in .+/ \(([^)]*)\)", first.stdout)
    assert named, first.stdout
    for folder in (p.parent for p in results):
        for name in named[1].split(", "):
            assert (folder / name).is_file(), f"{name} is not in {sorted(folder.iterdir())}"

    second = run_example("campaign.py", "12", "out", timeout=240)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "submitted 12 jobs" in second.stdout
    # the journal resumed the campaign: same 12 job folders, nothing new
    assert len([p for p in (tmp_path / "out").iterdir() if p.is_dir()]) == 12


@pytest.mark.parametrize(
    "written",
    [
        "campaign-output/12/std.out",  # examples/campaign.py (the README's main job)
        "campaign-output/journal.sqlite-wal",
        "campaign_10k.db",  # examples/campaign_10k.py and trio_campaign.py
        "trio_campaign_10k.db-shm",
        "campaign_10k_out/3/std.out",
        "12/Script1_CodeOutput.log",  # examples/seed/output.py 12
        "Local_ab12cd34_JobDir/std.out",  # Dirac().submitJob(job, mode="local")
        "scan.journal",  # the README's async example
        "scan.db",  # the README's and docs' command lines
        "out/2/std.out",
        "InputSandbox12/jobDescription.xml",  # Dirac().getInputSandbox(12)
    ],
)
def test_what_the_projects_commands_write_is_ignored(written: str) -> None:
    """A clone stays clean after running what the README and the docs show (issue 17)."""
    root = EXAMPLES.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    check = subprocess.run(
        ["git", "-C", str(root), "check-ignore", "--no-index", "-q", written], check=False
    )
    assert check.returncode == 0, f"{written} would show as untracked in a clone"
