"""DIRAC's local mode without its defects: every job runs here, outputs stay in its folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiodirac import InvalidRequestError, JobStatus
from aiodirac._job._job import Job
from aiodirac.backends.local._foreground import run_in_foreground


def test_seed_job_runs_like_diracs_local_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Job()
    job.setCPUTime(500)
    job.setExecutable("/bin/echo hello")
    job.setExecutable("/bin/hostname")
    job.setExecutable("/bin/echo hello again")
    job.setName("API")
    (run,) = run_in_foreground(job, tmp_path)
    assert run.exit_status == 0
    assert run.outcome.status is JobStatus.DONE
    assert run.workdir.parent == tmp_path
    assert run.workdir.name.startswith("Local_")
    assert run.workdir.name.endswith("_JobDir")
    # byte for byte what DIRAC 9.1.22's local mode wrote (reference/dirac/localmode.md)
    assert (run.workdir / "Script1_CodeOutput.log").read_text() == (
        "<<<<<<<<<< /bin/echo hello Standard Output >>>>>>>>>>\n\nhello\n "
    )
    assert (run.workdir / "Script3_CodeOutput.log").read_text() == (
        "<<<<<<<<<< /bin/echo hello again Standard Output >>>>>>>>>>\n\nhello again\n "
    )
    assert (
        (run.workdir / "Script2_hostname.log")
        .read_text()
        .startswith("<<<<<<<<<< hostname Standard Output >>>>>>>>>>\n\n")
    )
    assert (run.workdir / "hostname").is_file()
    assert (run.workdir / "jobDescription.xml").is_file()
    # unlike DIRAC's, std.out holds the real output
    std_out = (run.workdir / "std.out").read_text()
    assert std_out.startswith("hello\n")
    assert std_out.endswith("hello again\n")
    assert capsys.readouterr().out == ""  # library code prints nothing


def test_the_sync_facade_shows_what_the_job_printed_as_dirac_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiodirac import Dirac

    monkeypatch.chdir(tmp_path)
    job = Job()
    job.setExecutable("/bin/echo hello")
    # A DiracX server named in the environment is not contacted for a foreground run.
    monkeypatch.setenv("DIRACX_URL", "https://127.0.0.1:9")
    with Dirac(backend="local", home=tmp_path / "state") as dirac:
        assert dirac.submitJob(job, mode="local") == {
            "OK": True,
            "Value": "Execution completed successfully",
        }
    out = capsys.readouterr().out
    (workdir,) = tmp_path.glob("Local_*_JobDir")
    assert out == f"hello\nlocal job 0: Done (Execution Complete), outputs in {workdir}\n"
    assert not (tmp_path / "state").exists()  # no backend was opened


def test_every_parametric_job_runs_and_failures_give_their_status(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text('#!/bin/sh\necho "$1"\nexit "$2"\n')
    script.chmod(0o755)
    job = Job()
    job.setExecutable(str(script), arguments="%(v)s %(code)s")
    job.setParameterSequence("v", ["a", "b", "c"])
    job.setParameterSequence("code", ["0", "3", "0"])
    runs = run_in_foreground(job, tmp_path)
    assert [r.index for r in runs] == [0, 1, 2]
    assert [r.exit_status for r in runs] == [0, 3, 0]
    assert [(r.workdir / "std.out").read_text() for r in runs] == ["a\n", "b\n", "c\n"]
    assert len({r.workdir for r in runs}) == 3


def test_missing_input_runs_nothing(tmp_path: Path) -> None:
    job = Job()
    job.setExecutable("/bin/cat", arguments="absent.txt")
    job.setInputSandbox([str(tmp_path / "absent.txt")])
    with pytest.raises(InvalidRequestError):
        run_in_foreground(job, tmp_path)
    assert not list(tmp_path.glob("Local_*"))
