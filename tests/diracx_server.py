"""pytest plugin: a real DiracX 0.7.0 server for the test session, started once per session.

By default the server is shaped like a production installation (``scripts/diracx_prod.sh``):
MariaDB, several uvicorn workers of the stock application, nginx in front terminating TLS, so
every test talks HTTPS with certificate verification on (the test CA is ``server.verify``).
``AIODIRAC_DIRACX_SERVER=testapp`` chooses DiracX's one-process test app instead
(``scripts/diracx.sh``: SQLite, plain HTTP, starts faster) for quick local runs; tests that need
several workers are skipped there.

The server runs on free loopback ports with its own state folder under pytest's temporary
directory, and is stopped at the end of the session. ``AIODIRAC_SKIP_DIRACX=1`` skips every test
that needs it. ``DX_VENV`` / ``DX_HOME`` choose the DiracX venv (default: the scripts' own,
installed on first use). ``AIODIRAC_DIRACX_STATE=<DX_STATE>`` uses a server already started with
the script (``DX_STATE=... scripts/diracx_prod.sh start``) instead of starting one.

Register with ``pytest_plugins = ["tests.diracx_server"]``.

Usage::

    @pytest.mark.diracx
    async def test_x(diracx_server):
        backend = DiracXBackend(
            diracx_server.url,
            credentials_path=diracx_server.credentials_path,
            verify=diracx_server.verify,
        )
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sqlite3
import ssl
import subprocess
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aiodirac import Backend, JobState
from aiodirac.backends import parse_jdl
from aiodirac.backends._http._tls import ssl_verify
from aiodirac.backends.diracx import DiracXBackend
from aiodirac.testing import read_env_file
from aiodirac.testing._pilot import DiracXTestPilot, _read_jdls, mysql_connect

__all__ = [
    "DiracXServer",
    "assign_input_sandbox",
    "conformance_backend",
    "conformance_drive",
    "current_server",
    "diracx_server",
    "server_kind",
    "started_server",
]

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
#: AIODIRAC_DIRACX_SERVER -> the script that runs that server
KINDS = {"prod": SCRIPTS / "diracx_prod.sh", "testapp": SCRIPTS / "diracx.sh"}
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
        kind: ``"prod"`` (MariaDB, several workers, HTTPS) or ``"testapp"``.
        url: DiracX base URL (``https://127.0.0.1:<port>``, or ``http://`` for the test app).
        verify: what clients verify the server with: the test CA's file, or ``True``.
        credentials_path: localuser's credentials file, as ``dirac login`` writes it.
        legacy_secret: the shared secret of ``/api/auth/legacy-exchange``.
        state: the server's state folder (databases, logs, env.sh).
        env: every variable of ``env.sh``.
        jobdb: DiracX's JobDB: its ``mysql`` URL, or its SQLite file on the test app.
        env_file: the server's ``env.sh``.
        script: the script that started it (``stop``, ``status``, ``db-stop``, ``db-start``).
    """

    kind: str
    url: str
    verify: bool | str
    credentials_path: Path
    legacy_secret: str
    state: Path
    env: dict[str, str] = field(repr=False)
    jobdb: str
    env_file: Path
    script: Path

    def token_response(self, user: str = "localuser", group: str | None = None) -> dict[str, str]:
        """A fresh ``{access_token, refresh_token, expires_in, ...}`` for ``user``."""
        secret = base64.urlsafe_b64encode(self.legacy_secret.encode()).decode()
        response = self.request(
            "GET",
            "/api/auth/legacy-exchange",
            params={"preferred_username": user, "scope": f"vo:{VO} group:{group or USERS[user]}"},
            headers={"Authorization": f"Bearer diracx:legacy:{secret}"},
        )
        return dict(response.json())

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One request to the server with plain httpx (a 2xx, 206 or 416 answer), repeated for
        up to 60 s while the server answers 5xx: it does while a worker loads its configuration,
        and once per stale pooled connection after its database came back.

        Usage: ``server.request("POST", "/api/jobs/search", json=..., headers=...)``
        """
        deadline = time.monotonic() + 60
        while True:
            response = httpx.request(
                method, f"{self.url}{path}", timeout=60, verify=self.ssl, **options
            )
            if response.status_code < 500 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if response.status_code != 416:
            response.raise_for_status()
        return response

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

    @property
    def ssl(self) -> bool | ssl.SSLContext:
        """``verify=`` for a plain httpx client talking to the server or its S3 URLs."""
        return ssl_verify(self.verify)

    def backend(
        self, credentials_path: Path | None = None, *, url: str | None = None, **options: Any
    ) -> DiracXBackend:
        """A :class:`DiracXBackend` on this server (or on ``url``, a proxy in front of it).

        It verifies with the server's CA: the presigned S3 URLs are HTTPS, proxy or not.
        """
        return DiracXBackend(
            url or self.url, credentials_path=credentials_path, verify=self.verify, **options
        )

    def pilot(self, workdir: Path, credentials_path: Path) -> DiracXTestPilot:
        """A test pilot playing the grid for the owner of ``credentials_path``."""
        return DiracXTestPilot(
            self.url,
            jobdb=self.jobdb,
            workdir=workdir,
            credentials_path=credentials_path,
            verify=self.verify,
        )

    def client_environment(self, credentials_path: Path) -> dict[str, str]:
        """What a DiracX user's shell holds: DIRACX_URL, DIRACX_CREDENTIALS_PATH, DIRACX_CA_PATH."""
        env = {"DIRACX_URL": self.url, "DIRACX_CREDENTIALS_PATH": str(credentials_path)}
        if isinstance(self.verify, str):
            env["DIRACX_CA_PATH"] = self.verify
        return env

    def run_script(self, verb: str) -> str:
        """Run the server's script with a verb (``status``, ``db-stop``, ``db-start``...); its
        output. Raises RuntimeError when it fails."""
        done = subprocess.run(
            ["bash", str(self.script), verb],
            env={**os.environ, "DX_STATE": str(self.state)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.script.name} {verb} failed: {done.stderr[-2000:]}")
        return done.stdout


def server_kind() -> str:
    """The session's server: ``AIODIRAC_DIRACX_SERVER`` (``prod``, the default, or ``testapp``)."""
    kind = os.environ.get("AIODIRAC_DIRACX_SERVER") or "prod"
    if kind not in KINDS:
        raise pytest.UsageError(
            f"AIODIRAC_DIRACX_SERVER={kind!r}: use one of {', '.join(sorted(KINDS))}"
        )
    return kind


@pytest.fixture(scope="session")
def diracx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiracXServer]:
    """Start the session's DiracX on free ports; stop every process of it at the end."""
    if os.environ.get("AIODIRAC_SKIP_DIRACX") == "1":
        pytest.skip("AIODIRAC_SKIP_DIRACX=1: the tests that need a real DiracX server are skipped")
    kind = server_kind()
    running = os.environ.get("AIODIRAC_DIRACX_STATE")
    global _current
    with contextlib.ExitStack() as stack:
        if running:
            # a server the developer started (and stops) with the script: the tests only use it
            _current = _read_server(kind, KINDS[kind], Path(running))
        else:
            state = tmp_path_factory.mktemp("diracx") / "state"
            _current = stack.enter_context(started_server(kind, state))
        try:
            yield _current
        finally:
            _current = None


@contextlib.contextmanager
def started_server(kind: str, state: Path) -> Iterator[DiracXServer]:
    """Start a DiracX of ``kind`` with its state in ``state`` on free ports; stop every process
    of it at the end. The session has one (``diracx_server``); tests that break a server on
    purpose (stop its database, kill a worker) start their own.

    Usage: ``with started_server("prod", tmp_path / "dx") as server: ...``
    """
    script = KINDS[kind]
    env = dict(os.environ)
    env.update(
        DX_STATE=str(state),
        DX_PORT=str(_free_port()),
        DX_S3_PORT=str(_free_port()),
    )
    env.pop("DX_LEGACY_SECRET", None)
    started = subprocess.run(
        ["bash", str(script), "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if started.returncode != 0:
        subprocess.run(["bash", str(script), "stop"], env=env, capture_output=True, check=False)
        pytest.fail(
            f"scripts/{script.name} start failed ({started.returncode}):\n{started.stderr[-4000:]}",
            pytrace=False,
        )
    try:
        yield _read_server(kind, script, state)
    finally:
        subprocess.run(
            ["bash", str(script), "stop"], env=env, capture_output=True, timeout=120, check=False
        )


def _read_server(kind: str, script: Path, state: Path) -> DiracXServer:
    values = read_env_file(state / "env.sh")
    jobdb = values["DIRACX_DB_URL_JOBDB"]
    return DiracXServer(
        kind=kind,
        url=values["DIRACX_URL"],
        verify=values.get("DIRACX_CA_PATH") or True,
        credentials_path=Path(values["DIRACX_CREDENTIALS_PATH"]),
        legacy_secret=values["DX_LEGACY_SECRET"],
        state=state,
        env=values,
        jobdb=jobdb if jobdb.startswith("mysql") else jobdb.split(":///", 1)[1],
        env_file=state / "env.sh",
        script=script,
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
    async with server.backend(credentials) as backend:
        _folders[backend] = tmp_path
        yield backend


async def conformance_drive(
    backend: Backend, ids: Sequence[int], timeout: float
) -> dict[int, JobState]:
    """Run confirmed jobs with the test pilot, then wait until DiracX reports them final."""
    server = current_server()
    folder = _folders[backend]
    with anyio.fail_after(timeout):
        async with server.pilot(folder / "grid", folder / "diracx-credentials.json") as pilot:
            while True:
                await pilot.run_jobs(ids)
                states = await backend.status(ids)
                if len(states) == len(set(ids)) and all(s.final for s in states.values()):
                    return states
                await anyio.sleep(0.1)


def assign_input_sandbox(server: DiracXServer, job_id: int) -> str:
    """Do for one job what DIRAC's JobSanity optimizer does (none runs with this server): assign
    the input sandbox its JDL names to it, in DiracX's SandboxMetadataDB. Returns the PFN."""
    jdl = _read_jdls(server.jobdb, [job_id])[job_id]
    entries = parse_jdl(jdl).get("InputSandbox", ())
    pfn = next(
        str(e)
        for e in (entries if isinstance(entries, tuple) else (entries,))
        if str(e).startswith("SB:")
    )
    se_name, _, se_pfn = pfn[len("SB:") :].partition("|")
    _execute(
        server.env["DIRACX_DB_URL_SANDBOXMETADATADB"],
        [
            (
                (
                    "INSERT INTO sb_EntityMapping (SBId, EntityId, Type) SELECT SBId, ?, 'Input' "
                    "FROM sb_SandBoxes WHERE SEName = ? AND SEPFN = ?"
                ),
                (f"Job:{job_id}", se_name, se_pfn),
            ),
            (
                "UPDATE sb_SandBoxes SET Assigned = 1 WHERE SEName = ? AND SEPFN = ?",
                (se_name, se_pfn),
            ),
        ],
    )
    return pfn


def _execute(url: str, statements: Sequence[tuple[str, tuple[object, ...]]]) -> None:
    """Run SQL statements (``?`` placeholders) in one transaction on a DiracX database URL:
    MariaDB (``mysql+...``) or SQLite."""
    if url.startswith("mysql"):
        with contextlib.closing(mysql_connect(url)) as connection:
            with contextlib.closing(connection.cursor()) as cursor:
                for sql, params in statements:
                    cursor.execute(sql.replace("?", "%s"), params)
            connection.commit()
        return
    with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1], timeout=30)) as db, db:
        for sql, params in statements:
            db.execute(sql, params)
