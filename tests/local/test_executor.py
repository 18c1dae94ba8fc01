"""run_job: one job in a working folder, as DIRAC's JobWrapper and dirac-jobexec run it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
from _localjobs import concrete

from aiodirac import JobStatus
from aiodirac.backends.local import run_job


def test_step_log_has_diracs_banner_and_std_out_the_real_output(tmp_path: Path) -> None:
    job = concrete(("/bin/echo", "hello world"), ("/bin/sh", "-c 'echo out; echo err >&2'"))
    outcome = run_job(job, tmp_path / "w", None, job_id=42)
    assert outcome.status is JobStatus.DONE
    assert outcome.minor_status == "Execution Complete"
    assert outcome.application_status == "sh successful"
    assert outcome.exit_codes == (0, 0)
    work = tmp_path / "w"
    assert (work / "Script1_echo.log").read_text() == (
        "<<<<<<<<<< /bin/echo Standard Output >>>>>>>>>>\n\nhello world\n "
    )
    assert (work / "Script2_sh.log").read_text() == (
        "<<<<<<<<<< /bin/sh Standard Output >>>>>>>>>>\n\nout\n "
        "<<<<<<<<<< /bin/sh Standard Error >>>>>>>>>>\n\nerr\n "
    )
    assert (work / "std.out").read_text() == "hello world\nout\n"
    assert (work / "std.err").read_text() == "err\n"


def test_executable_from_the_sandbox_runs_from_the_working_folder(tmp_path: Path) -> None:
    inputs = tmp_path / "isb"
    inputs.mkdir()
    shutil.copy("/bin/echo", inputs / "echo")
    job = concrete(("/bin/echo", "staged"), inputs=("/bin/echo",))
    outcome = run_job(job, tmp_path / "w", inputs)
    assert outcome.status is JobStatus.DONE
    # DIRAC shows the base name once the sandbox put the executable in the working folder
    log = (tmp_path / "w" / "Script1_echo.log").read_text()
    assert log.startswith("<<<<<<<<<< echo Standard Output >>>>>>>>>>")
    assert (tmp_path / "w" / "echo").exists()


def test_failing_step_does_not_stop_later_ones(tmp_path: Path) -> None:
    job = concrete(("/bin/sh", "-c 'exit 3'"), ("/bin/echo", "after"), ("/bin/sh", "-c 'exit 4'"))
    outcome = run_job(job, tmp_path / "w", None)
    assert outcome.status is JobStatus.FAILED
    assert outcome.minor_status == "Application Finished With Errors"
    assert outcome.exit_codes == (3, 0, 4)
    # the first failure sets the ApplicationStatus; later steps do not touch it (ModuleBase)
    assert outcome.application_status == "'sh' Exited With Status 3"
    assert (tmp_path / "w" / "Script2_echo.log").read_text().endswith("after\n ")


def test_command_that_cannot_start_fails_the_job_with_a_message(tmp_path: Path) -> None:
    job = concrete(("no-such-program-here", "x"))
    outcome = run_job(job, tmp_path / "w", None)
    assert outcome.status is JobStatus.FAILED
    assert outcome.exit_codes == (1000,)
    assert "no-such-program-here" in (tmp_path / "w" / "std.err").read_text()


def test_command_that_cannot_start_says_why_in_the_application_status(tmp_path: Path) -> None:
    # DIRAC's text first (scripts match on it), then the reason DIRAC only logs on the worker
    job = concrete(("/no/such/program", "arg"), ("/bin/echo", "after"))
    outcome = run_job(job, tmp_path / "w", None)
    assert outcome.status is JobStatus.FAILED
    assert outcome.application_status == (
        "'program' Exited With Status 1000 (Cannot run '/no/such/program arg': "
        "[Errno 2] No such file or directory: '/no/such/program')"
    )
    assert outcome.steps[0].error.startswith("Cannot run '/no/such/program arg'")
    log = (tmp_path / "w" / "Script1_program.log").read_text()
    assert log.endswith("Standard Error >>>>>>>>>>\n\n" + outcome.steps[0].error + "\n ")


def test_a_long_reason_is_cut_to_diracs_255_characters(tmp_path: Path) -> None:
    job = concrete(("/no/such/" + "d" * 300 + "/program", ""))
    outcome = run_job(job, tmp_path / "w", None)
    assert len(outcome.application_status) == 255
    assert outcome.application_status.startswith("'program' Exited With Status 1000 (Cannot run ")
    assert outcome.application_status.endswith("...)")


def test_arguments_are_split_like_a_shell_without_a_shell(tmp_path: Path) -> None:
    job = concrete(("/bin/echo", "'a  b' \"c;d\" $HOME `x`"))
    run_job(job, tmp_path / "w", None)
    assert (tmp_path / "w" / "std.out").read_text() == "a  b c;d $HOME `x`\n"


def test_python_script_runs_with_python(tmp_path: Path) -> None:
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('py', sys.argv[1:])\n")
    job = concrete((str(script), "one"))
    outcome = run_job(job, tmp_path / "w", None)
    assert outcome.status is JobStatus.DONE
    assert (tmp_path / "w" / "std.out").read_text() == "py ['one']\n"


def test_staged_script_runs_from_the_working_folder(tmp_path: Path) -> None:
    inputs = tmp_path / "isb"
    inputs.mkdir()
    (inputs / "run.sh").write_text('#!/bin/sh\necho staged "$@"\n')  # not executable yet
    job = concrete(("run.sh", "a b"), inputs=("run.sh",))
    outcome = run_job(job, tmp_path / "w", inputs)
    assert outcome.status is JobStatus.DONE
    assert (tmp_path / "w" / "std.out").read_text() == "staged a b\n"


def test_execution_environment_and_dirac_variables(tmp_path: Path) -> None:
    job = concrete(
        ("/bin/sh", "-c 'echo \"$MYVAR|$OTHER|$DIRACJOBID|$DIRACSITE\"'"),
        ExecutionEnvironment=("MYVAR=hello%20world", "OTHER=a%3Bb%3Dc"),
    )
    run_job(job, tmp_path / "w", None, job_id=7, site="DIRAC.test.local")
    assert (tmp_path / "w" / "std.out").read_text() == "hello world|a;b=c|7|DIRAC.test.local\n"


def test_custom_std_output_names(tmp_path: Path) -> None:
    job = concrete(("/bin/echo", "x"), StdOutput="my.out", StdError="my.err")
    run_job(job, tmp_path / "w", None)
    assert (tmp_path / "w" / "my.out").read_text() == "x\n"
    assert (tmp_path / "w" / "my.err").exists()


def test_input_sandbox_files_folders_and_archives(tmp_path: Path) -> None:
    inputs = tmp_path / "isb"
    (inputs / "mydir").mkdir(parents=True)
    (inputs / "mydir" / "inner.txt").write_text("inner")
    (inputs / "input1.txt").write_text("one")
    packed = tmp_path / "packed.txt"
    packed.write_text("packed")
    for name, mode in (
        ("b.tar", "w"),
        ("b.tar.gz", "w:gz"),
        ("b.tgz", "w:gz"),
        ("b.tar.bz2", "w:bz2"),
    ):
        with tarfile.open(inputs / name, mode) as tar:
            tar.add(packed, arcname=f"from-{name}.txt")
    with zipfile.ZipFile(inputs / "c.zip", "w") as archive:
        archive.writestr("zipped.txt", "z")
    names = ("input1.txt", "mydir", "b.tar", "b.tar.gz", "b.tgz", "b.tar.bz2", "c.zip")
    job = concrete(("/bin/ls", ""), inputs=tuple(f"/somewhere/{n}" for n in names))
    outcome = run_job(job, tmp_path / "w", inputs)
    assert outcome.status is JobStatus.DONE
    work = tmp_path / "w"
    assert (work / "input1.txt").read_text() == "one"
    assert (work / "mydir" / "inner.txt").read_text() == "inner"
    for name in ("b.tar", "b.tar.gz", "b.tgz", "b.tar.bz2"):
        assert (work / f"from-{name}.txt").read_text() == "packed"
        assert (work / name).exists()  # DIRAC keeps the archive too
    # DIRAC unpacks tar archives only
    assert (work / "c.zip").exists()
    assert not (work / "zipped.txt").exists()


def test_archive_escaping_the_working_folder_fails_the_staging(tmp_path: Path) -> None:
    inputs = tmp_path / "isb"
    inputs.mkdir()
    evil = tmp_path / "evil.txt"
    evil.write_text("x")
    with tarfile.open(inputs / "evil.tar", "w") as tar:
        tar.add(evil, arcname="../escaped.txt")
    job = concrete(("/bin/echo", "never"), inputs=("evil.tar",))
    outcome = run_job(job, tmp_path / "w", inputs)
    assert outcome.status is JobStatus.FAILED
    assert outcome.minor_status == "Failed Downloading InputSandbox"
    assert not (tmp_path / "escaped.txt").exists()
    assert outcome.steps == ()


def test_missing_input_fails_the_staging(tmp_path: Path) -> None:
    job = concrete(("/bin/echo", "never"), inputs=("absent.txt",))
    outcome = run_job(job, tmp_path / "w", tmp_path)
    assert outcome.minor_status == "Failed Downloading InputSandbox"
    assert "absent.txt" in (tmp_path / "w" / "std.err").read_text()


def test_cpu_limit_stops_the_job(tmp_path: Path) -> None:
    job = concrete(("/bin/sh", "-c 'while :; do :; done'"), ("/bin/echo", "never"), CPUTime=1)
    started = time.monotonic()
    outcome = run_job(job, tmp_path / "w", None)
    assert time.monotonic() - started < 10
    assert outcome.status is JobStatus.FAILED
    assert outcome.minor_status == "Job has reached the CPU limit of the queue"
    assert len(outcome.steps) == 1
    assert outcome.cpu_time >= 0.5


def test_cpu_limit_counts_the_whole_process_group(tmp_path: Path) -> None:
    # two busy children: each stays under the per-process RLIMIT_CPU, the sum does not
    busy = "(while :; do :; done) & (while :; do :; done) & wait"
    job = concrete(("/bin/sh", f"-c '{busy}'"))
    started = time.monotonic()
    outcome = run_job(job, tmp_path / "w", None, cpu_limit=0.6)
    assert time.monotonic() - started < 10
    assert outcome.minor_status == "Job has reached the CPU limit of the queue"


def test_children_left_behind_are_killed_when_the_step_ends(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    job = concrete(("/bin/sh", f"-c 'sleep 300 & echo $! > {pidfile}'"))
    outcome = run_job(job, tmp_path / "w", None)
    assert outcome.status is JobStatus.DONE
    pid = int(pidfile.read_text())
    _assert_gone(pid)


def test_cancel_kills_the_whole_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    script = (
        f'sleep 300 & echo $! >> {pidfile}; sh -c "sleep 300 & echo \\$! >> {pidfile}; wait" & wait'
    )
    job = concrete(("/bin/sh", f"-c '{script}'"), ("/bin/echo", "never"))
    cancel = threading.Event()
    result: list[object] = []
    thread = threading.Thread(
        target=lambda: result.append(run_job(job, tmp_path / "w", None, cancel=cancel))
    )
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        not pidfile.exists() or len(pidfile.read_text().split()) < 2
    ):
        time.sleep(0.02)
    cancel.set()
    thread.join(10)
    assert not thread.is_alive()
    (outcome,) = result
    assert outcome.status is JobStatus.KILLED  # type: ignore[attr-defined]
    for pid in pidfile.read_text().split():
        _assert_gone(int(pid))


def test_disk_full_gives_a_defined_final_state(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        job = concrete(("/bin/sh", "-c 'head -c 2000000 /dev/zero'"))
        outcome = run_job(job, small / "w", None)
        assert outcome.status is JobStatus.FAILED
        assert outcome.minor_status == "Job has insufficient disk space to continue"
    finally:
        subprocess.run(["umount", "-l", str(small)], check=True)


def _assert_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return
        if state == "Z":
            return  # dead, waiting for its (adopted) parent to reap it
        time.sleep(0.02)
    os.kill(pid, 9)
    raise AssertionError(f"process {pid} survived its job")
