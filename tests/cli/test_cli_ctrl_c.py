"""Ctrl-C (SIGINT) ends every long-running command at once: one line, exit 130, no traceback.

Each command runs as a real process (``python -m aiodirac.cli``) in its own process group, and
its group gets SIGINT, as from Ctrl-C in a terminal, once it is under way: a watch or a campaign that printed its first event, an output
download that created its folder, a submission of 20,000 jobs that created the job store.
``scripts/sigint_loop.sh`` runs these tests many times in a row (``AIODIRAC_CTRL_C_ROUNDS``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import Invoke

from child_processes import child, wait_until

pytestmark = pytest.mark.slow

ROUNDS = range(int(os.environ.get("AIODIRAC_CTRL_C_ROUNDS", "1")))
CLI = (sys.executable, "-m", "aiodirac.cli")
#: How long the test waits for the process after SIGINT. The command promises under a second
#: (a cleanup that takes longer is given up on); the margin is for a machine under load.
EXIT_TIMEOUT = 10.0
TIMES = os.environ.get("AIODIRAC_CTRL_C_TIMES")


def interrupt(
    name: str, args: list[str], under_way: Callable[[subprocess.Popen[str]], object], cwd: Path
) -> str:
    """Run ``aiodirac ARGS``, SIGINT it once ``under_way`` returns; check how it ended.

    Returns its stderr after the signal. With ``$AIODIRAC_CTRL_C_TIMES`` set, appends ``name``
    and the seconds the process took to exit to that file (``scripts/sigint_loop.sh``).
    """
    with child([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd) as process:
        under_way(process)
        assert process.poll() is None, "the command ended before it was interrupted"
        sent = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = process.communicate(timeout=EXIT_TIMEOUT)
        took = time.monotonic() - sent
        assert process.returncode == 130, err
        lines = err.splitlines()
        assert lines[-1:] == ["aiodirac: interrupted"], err
        assert lines.count("aiodirac: interrupted") == 1, err
        for word in ("Traceback", "Exception", "Error", "Warning", "never awaited"):
            assert word not in err, err
        with pytest.raises(ProcessLookupError):  # nothing of it left in its group
            os.killpg(process.pid, 0)
    if TIMES:
        with open(TIMES, "a") as log:
            log.write(f"{name} {took:.4f}\n")
    return err


def first_line(stream: str) -> Callable[[subprocess.Popen[str]], object]:
    def wait(process: subprocess.Popen[str]) -> None:
        pipe = process.stdout if stream == "stdout" else process.stderr
        assert pipe is not None
        assert pipe.readline(), f"the command printed nothing on {stream}"

    return wait


def exists(path: Path) -> Callable[[subprocess.Popen[str]], object]:
    return lambda process: wait_until(
        lambda: path.exists() or process.poll() is not None, what=str(path)
    )


@pytest.mark.parametrize("round_", ROUNDS)
def test_watch(aiodirac: Invoke, tmp_path: Path, round_: int) -> None:
    job = aiodirac("-q", "submit", "--", "/bin/sleep", "60").stdout.strip()
    err = interrupt("watch", ["watch", job], first_line("stdout"), tmp_path)
    assert err == "aiodirac: interrupted\n"


@pytest.mark.parametrize("round_", ROUNDS)
def test_campaign_run_then_resume(aiodirac: Invoke, tmp_path: Path, round_: int) -> None:
    run = ["campaign", "run", "-j", "c.db", "-d", "out", "-p", "n=1..3", "--", "/bin/sleep", "60"]
    interrupt("campaign-run", run, first_line("stdout"), tmp_path)
    # resume says what it follows (stderr) before anything changes
    resume = ["campaign", "resume", "-j", "c.db"]
    interrupt("campaign-resume", resume, first_line("stderr"), tmp_path)


@pytest.mark.parametrize("round_", ROUNDS)
def test_output(
    aiodirac: Invoke, finished: Callable[[list[int]], None], tmp_path: Path, round_: int
) -> None:
    make = "head -c 30000000 /dev/urandom > big.bin"
    job = aiodirac("-q", "submit", "-o", "big.bin", "--", "/bin/sh", "-c", make).stdout.strip()
    finished([int(job)])
    interrupt("output", ["output", job, "--dest", "out"], exists(tmp_path / "out"), tmp_path)
    # what it wrote is under a hidden temporary name or complete: never big.bin half-written
    partial = tmp_path / "out" / job / "big.bin"
    assert not partial.exists() or partial.stat().st_size == 30_000_000


@pytest.mark.parametrize("round_", ROUNDS)
def test_submit_many(aiodirac: Invoke, tmp_path: Path, round_: int) -> None:
    store = Path(os.environ["AIODIRAC_HOME"]) / "jobs.sqlite"
    args = ["-q", "submit", "-p", "n=1..20000", "--", "/bin/true"]
    interrupt("submit-20000", args, exists(store), tmp_path)
