"""pytest plugin: a real DiracX 0.7.0 server for the test session, started by scripts/diracx.sh.

The server runs on free loopback ports with its own state folder under pytest's temporary
directory, and is stopped at the end of the session. ``AIODIRAC_SKIP_DIRACX=1`` skips every test
that needs it. ``DX_VENV`` / ``DX_HOME`` choose the DiracX venv (default: the script's own,
installed on first use).

Register with ``pytest_plugins = ["tests.diracx_server"]``.

Usage::

    @pytest.mark.diracx
    async def test_x(diracx_server):
        backend = DiracXBackend(diracx_server.url, credentials_path=diracx_server.credentials_path)
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest

from aiodirac import Backend, JobState
from aiodirac.backends import parse_jdl
from aiodirac.backends.diracx import DiracXBackend
from aiodirac.testing import read_env_file
from aiodirac.testing._pilot import DiracXTestPilot, _read_jdls

__all__ = [
    "DiracXServer",
    "assign_input_sandbox",
    "conformance_backend",
    "conformance_drive",
    "current_server",
    "diracx_server",
]

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "diracx.sh"
VO = "diracAdmin"
#: user -> default group of the generated configuration
USERS = {"localuser": "admin", "otheruser": "admin", "adminuser": "jobadmin"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class DiracXServer:
    """Connection details of the session's DiracX server.

    Attributes:
        url: DiracX base URL (``http://127.0.0.1:<port>``).
        credentials_path: localuser's credentials file, as ``dirac login`` writes it.
        legacy_secret: the shared secret of ``/api/auth/legacy-exchange``.
        state: the server's state folder (databases, logs, env.sh).
        env: every variable of ``env.sh``.
        jobdb_path: the SQLite file of DiracX's JobDB.
    """

    url: str
    credentials_path: Path
    legacy_secret: str
    state: Path
    env: dict[str, str] = field(repr=False)
    jobdb_path: Path
    env_file: Path

    def token_response(self, user: str = "localuser", group: str | None = None) -> dict[str, str]:
        """A fresh ``{access_token, refresh_token, expires_in, ...}`` for ``user``."""
        secret = base64.urlsafe_b64encode(self.legacy_secret.encode()).decode()
        response = httpx.get(
            f"{self.url}/api/auth/legacy-exchange",
            params={"preferred_username": user, "scope": f"vo:{VO} group:{group or USERS[user]}"},
            headers={"Authorization": f"Bearer diracx:legacy:{secret}"},
            timeout=30,
        )
        response.raise_for_status()
        return dict(response.json())

    def token(self, user: str = "localuser", group: str | None = None) -> str:
        """A fresh access token for ``user`` (``localuser``, ``otheruser``, ``adminuser``)."""
        return self.token_response(user, group)["access_token"]

    def write_credentials(
        self,
        path: Path,
        user: str = "localuser",
        group: str | None = None,
        *,
        expires_on: float | None = None,
        refresh: bool = True,
    ) -> Path:
        """Write a credentials file for ``user`` in DiracX's format (optionally expired)."""
        answer = self.token_response(user, group)
        payload = {
            "access_token": answer["access_token"],
            "refresh_token": answer.get("refresh_token") if refresh else None,
            "expires_on": int(
                expires_on if expires_on is not None else time.time() + int(answer["expires_in"])
            ),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload))
        path.chmod(0o600)
        return path


@pytest.fixture(scope="session")
def diracx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiracXServer]:
    """Start DiracX + moto on free ports for the session; stop them at the end."""
    if os.environ.get("AIODIRAC_SKIP_DIRACX") == "1":
        pytest.skip("AIODIRAC_SKIP_DIRACX=1: the tests that need a real DiracX server are skipped")
    state = tmp_path_factory.mktemp("diracx") / "state"
    env = dict(os.environ)
    env.update(
        DX_STATE=str(state),
        DX_PORT=str(_free_port()),
        DX_S3_PORT=str(_free_port()),
    )
    env.pop("DX_LEGACY_SECRET", None)
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if started.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, check=False)
        pytest.fail(
            f"scripts/diracx.sh start failed ({started.returncode}):\n{started.stderr[-4000:]}",
            pytrace=False,
        )
    global _current
    try:
        values = read_env_file(state / "env.sh")
        jobdb = values["DIRACX_DB_URL_JOBDB"].split(":///", 1)[1]
        _current = DiracXServer(
            url=values["DIRACX_URL"],
            credentials_path=Path(values["DIRACX_CREDENTIALS_PATH"]),
            legacy_secret=values["DX_LEGACY_SECRET"],
            state=state,
            env=values,
            jobdb_path=Path(jobdb),
            env_file=state / "env.sh",
        )
        yield _current
    finally:
        _current = None
        subprocess.run(
            ["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120, check=False
        )


_current: DiracXServer | None = None
# backend -> the test's folder, for the pilot that drives its jobs
_folders: weakref.WeakKeyDictionary[Backend, Path] = weakref.WeakKeyDictionary()


def current_server() -> DiracXServer:
    """The session's server (the ``diracx_server`` fixture must have started it)."""
    if _current is None:
        raise RuntimeError("request the diracx_server fixture before using the DiracX kind")
    return _current


@contextlib.asynccontextmanager
async def conformance_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    """The conformance suite's DiracX kind: localuser's backend with a private credentials file."""
    server = current_server()
    credentials = server.write_credentials(tmp_path / "diracx-credentials.json")
    async with DiracXBackend(server.url, credentials_path=credentials) as backend:
        _folders[backend] = tmp_path
        yield backend


async def conformance_drive(
    backend: Backend, ids: Sequence[int], timeout: float
) -> dict[int, JobState]:
    """Run confirmed jobs with the test pilot, then wait until DiracX reports them final."""
    server = current_server()
    folder = _folders[backend]
    with anyio.fail_after(timeout):
        async with DiracXTestPilot(
            server.url,
            jobdb_path=server.jobdb_path,
            workdir=folder / "grid",
            credentials_path=folder / "diracx-credentials.json",
        ) as pilot:
            while True:
                await pilot.run_jobs(ids)
                states = await backend.status(ids)
                if len(states) == len(set(ids)) and all(s.final for s in states.values()):
                    return states
                await anyio.sleep(0.1)


def assign_input_sandbox(server: DiracXServer, job_id: int) -> str:
    """Do for one job what DIRAC's JobSanity optimizer does (none runs with this server): assign
    the input sandbox its JDL names to it, in DiracX's SandboxMetadataDB. Returns the PFN."""
    jdl = _read_jdls(server.jobdb_path, [job_id])[job_id]
    entries = parse_jdl(jdl).get("InputSandbox", ())
    pfn = next(
        str(e)
        for e in (entries if isinstance(entries, tuple) else (entries,))
        if str(e).startswith("SB:")
    )
    se_name, _, se_pfn = pfn[len("SB:") :].partition("|")
    database = server.env["DIRACX_DB_URL_SANDBOXMETADATADB"].split(":///", 1)[1]
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection, connection:
        connection.execute(
            "INSERT INTO sb_EntityMapping (SBId, EntityId, Type) SELECT SBId, ?, 'Input' "
            "FROM sb_SandBoxes WHERE SEName = ? AND SEPFN = ?",
            (f"Job:{job_id}", se_name, se_pfn),
        )
        connection.execute(
            "UPDATE sb_SandBoxes SET Assigned = 1 WHERE SEName = ? AND SEPFN = ?",
            (se_name, se_pfn),
        )
    return pfn
