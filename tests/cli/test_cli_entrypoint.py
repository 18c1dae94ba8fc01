"""The installed entry point: ``python -m aiodirac.cli`` as a real process, and a light --help."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMMANDS = (
    "submit",
    "status",
    "watch",
    "output",
    "kill",
    "delete",
    "reschedule",
    "campaign",
    "local",
)


def _run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiodirac.cli", *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=60,
        env=dict(os.environ),
        check=False,
    )


def test_help_lists_every_command() -> None:
    run = _run("--help")
    assert run.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in run.stdout
    assert "Exit codes: 0 all done, 1 some jobs failed, 2 usage error, 3 service error" in (
        " ".join(run.stdout.split())
    )


# The one module outside the CLI that --help may load: the terminal sanitiser every command's
# output uses (pure, it imports only ``re``; it was cli/_terminal_text.py before the HTML report
# shared it).
HELP_MAY_LOAD = {"aiodirac._text"}


def test_help_loads_nothing_beyond_the_package() -> None:
    # Whatever ``import aiodirac`` loads is the package's business; --help must add no engine,
    # backend, HTTP or rich module of its own.
    code = (
        "import sys, io, contextlib\n"
        "import aiodirac\n"
        "before = set(sys.modules)\n"
        "from aiodirac.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n"
        "added = set(sys.modules) - before\n"
        "heavy = ('aiodirac._', 'rich', 'httpx', 'anyio', 'sqlite3')\n"
        f"print(sorted(m for m in added if m.startswith(heavy) and m not in {HELP_MAY_LOAD!r}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


@pytest.mark.slow
def test_version_and_exit_codes_of_a_real_process() -> None:
    version = _run("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("aiodirac ")
    assert _run("status", "not-an-id").returncode == 2
    assert _run("status", "999999").returncode == 1
    assert _run("frobnicate").returncode == 2


@pytest.mark.slow
def test_ids_piped_between_commands() -> None:
    submitted = _run("-q", "submit", "-p", "n=1..2", "--", "/bin/echo", "%(n)s")
    assert submitted.returncode == 0, submitted.stderr
    watched = _run("--json", "watch", "-", input=submitted.stdout)
    assert watched.returncode == 0, watched.stderr
    stopped = _run("--json", "local", "agent", "stop")
    assert stopped.returncode == 0, stopped.stderr
