"""The seed's three scripts against a real DiracX, as a DiracX user runs them (DIRACX_URL set)."""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from aiodirac import AsyncDirac, JobStatus
from aiodirac.testing import DiracXTestPilot
from diracx_server import DiracXServer

pytestmark = pytest.mark.diracx

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"


def _script(name: str, *args: str, cwd: Path) -> object:
    done = subprocess.run(
        [sys.executable, str(SEED / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    return ast.literal_eval(last[last.index("{") :])


async def test_seed_scripts_on_diracx(
    diracx_server: DiracXServer,
    credentials: Path,
    pilot: DiracXTestPilot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in diracx_server.client_environment(credentials).items():
        monkeypatch.setenv(name, value)

    submitted = await anyio.to_thread.run_sync(lambda: _script("submit.py", cwd=tmp_path))
    assert isinstance(submitted, dict)
    assert submitted["OK"], submitted
    job_id = submitted["Value"]
    assert isinstance(job_id, int)

    # confirmed at once by submitJob: the grid (our pilot) may run it
    status = _script("status.py", str(job_id), cwd=tmp_path)
    assert isinstance(status, dict)
    assert status["Value"][job_id]["Status"] == "Received"
    runs = await pilot.run_jobs([job_id])
    assert [r.job_id for r in runs] == [job_id]

    async with AsyncDirac() as dirac:  # DIRACX_URL chooses DiracX
        assert dirac.backend.description == f"DiracX at {diracx_server.url}"
        final = await dirac.wait([job_id], timeout=60)
    assert final[job_id].status is JobStatus.DONE

    status = _script("status.py", str(job_id), cwd=tmp_path)
    assert status == {
        "OK": True,
        "Value": {
            job_id: {
                "Status": "Done",
                "MinorStatus": "Execution Complete",
                "Site": status["Value"][job_id]["Site"],  # type: ignore[index]
            }
        },
    }

    fetched = _script("output.py", str(job_id), cwd=tmp_path)
    assert isinstance(fetched, dict)
    assert fetched["OK"], fetched
    folder = tmp_path / str(job_id)
    assert (folder / "Script1_CodeOutput.log").read_text() == (
        "<<<<<<<<<< /bin/echo hello Standard Output >>>>>>>>>>\n\nhello\n "
    )
    assert socket.gethostname() in (folder / "Script2_hostname.log").read_text()
    assert "hello again" in (folder / "Script3_CodeOutput.log").read_text()
    assert fetched["Value"] == [sum(p.stat().st_size for p in folder.iterdir())]
