"""The local path loads no HTTP stack (issue 17): checked in fresh interpreters, as users start.

A local-mode run (``Dirac().submitJob(j, mode="local")``) and ``aiodirac status`` on the local
backend must not import httpx (nor what comes with it: httpcore, trio, the download engine's
aiofiles); the start-up figures themselves are in ``benchmarks/startup.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HTTP = ("httpx", "httpcore", "trio", "aiofiles", "aiodirac._engine.download._downloader")

_REPORT = """
import json, sys
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""

_LOCAL_MODE = """
from aiodirac import Dirac, Job

j = Job()
j.setCPUTime(500)
j.setExecutable("/bin/echo hello")
j.setExecutable("/bin/echo hello again")
result = Dirac().submitJob(j, mode="local")
assert result["OK"], result
"""

_STATUS = """
from aiodirac.cli import main

code = main(["status", {job_id!r}])
assert code == 0, code
"""


def _loaded(code: str, cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + _REPORT.format(heavy=_HTTP)],
        cwd=cwd,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_local_mode_loads_no_http_stack(tmp_path: Path) -> None:
    assert _loaded(_LOCAL_MODE, tmp_path) == []
    assert len(list(tmp_path.glob("Local_*_JobDir"))) == 1  # the job did run


@pytest.fixture
def local_job(tmp_path: Path) -> Iterator[str]:
    """One finished job on the test's local backend; its agent is stopped afterwards."""
    cli = [sys.executable, "-m", "aiodirac.cli"]
    submitted = subprocess.run(
        [*cli, "-q", "submit", "--", "/bin/true"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    job_id = submitted.stdout.strip()
    try:
        subprocess.run([*cli, "-q", "watch", job_id], cwd=tmp_path, timeout=60, check=True)
        yield job_id
    finally:
        subprocess.run(
            [*cli, "-q", "local", "agent", "stop"], cwd=tmp_path, timeout=60, check=False
        )


def test_local_status_loads_no_http_stack(tmp_path: Path, local_job: str) -> None:
    assert _loaded(_STATUS.format(job_id=local_job), tmp_path) == []


def test_the_check_sees_an_http_import(tmp_path: Path) -> None:
    # the same check, on a path that does download: it must notice httpx
    assert "httpx" in _loaded("import aiodirac._engine.download._downloader", tmp_path)
