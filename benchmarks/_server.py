"""The DiracX server a benchmark runs against, and what it costs (CPU time from Linux /proc).

By default a benchmark starts DiracX as production runs it (``scripts/diracx_prod.sh``: MariaDB,
several uvicorn workers, moto as S3, nginx terminating TLS); ``--server test`` starts the
one-process test app (``scripts/diracx.sh``: SQLite, one process, plain HTTP) instead, and
``--dx-env FILE`` uses a running server (its ``env.sh``; it is left running).

The server's CPU is that of every process of its uvicorn tree (the workers and their master)
plus MariaDB's, read from /proc; nginx's (TLS) is reported apart.

Usage::

    add_server_arguments(parser)
    with running_server(args, tmp) as server:
        before = server.cpu()
        ...
        used = server.cpu() - before          # a CpuSample: .total, .workers, .db, .tls
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {"prod": ROOT / "scripts" / "diracx_prod.sh", "test": ROOT / "scripts" / "diracx.sh"}
# the DiracX venv both scripts use by default
DX_VENV = Path(
    os.environ.get(
        "DX_VENV", str(Path(os.environ.get("TMPDIR", "/tmp")) / "aiodirac-diracx" / "venv")
    )
)
_TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------- /proc
def _fields(stat: Path) -> list[str]:
    """A /proc ``stat`` file's fields after the command name: state (0), ppid (1), ..."""
    return stat.read_text().rsplit(")", 1)[1].split()


def _seconds(fields: list[str]) -> float:
    # utime and stime, in clock ticks
    return (int(fields[11]) + int(fields[12])) / _TICK


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process ``pid`` has used so far."""
    return _seconds(_fields(Path(f"/proc/{pid}/stat")))


def _processes() -> dict[int, tuple[int, float]]:
    """Every live process: pid -> (parent pid, CPU seconds so far)."""
    table: dict[int, tuple[int, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _fields(stat)
        except (OSError, IndexError):
            continue
        table[int(stat.parent.name)] = (int(fields[1]), _seconds(fields))
    return table


def _tree(root: int, table: dict[int, tuple[int, float]]) -> dict[int, float]:
    """CPU seconds of ``root`` and all its live descendants, by pid."""
    out: dict[int, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in table and pid not in out:
            out[pid] = table[pid][1]
            todo += [child for child, (parent, _) in table.items() if parent == pid]
    return out


def stamp() -> str:
    """The time (UTC) and the machine's load average (1, 5, 15 min), for the record of a run."""
    one, five, fifteen = os.getloadavg()
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return f"{now}, load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def children_cpu(pid: int) -> float:
    """CPU seconds used so far by the live children of ``pid`` (e.g. nginx's workers)."""
    return sum(cpu for parent, cpu in _processes().values() if parent == pid)


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds of the server's parts, per pid (a difference of two samples: used between).

    Attributes: ``workers`` (uvicorn's processes), ``db`` (MariaDB), ``tls`` (nginx), ``s3``
    (moto); ``total`` is workers + db, the DiracX server's cost of the work.
    """

    by_pid: dict[str, dict[int, float]]

    def _part(self, name: str) -> float:
        return sum(self.by_pid.get(name, {}).values())

    @property
    def workers(self) -> float:
        return self._part("workers")

    @property
    def db(self) -> float:
        return self._part("db")

    @property
    def tls(self) -> float:
        return self._part("tls")

    @property
    def s3(self) -> float:
        return self._part("s3")

    @property
    def total(self) -> float:
        return self.workers + self.db

    def __sub__(self, before: CpuSample) -> CpuSample:
        # a process born meanwhile (a restarted worker) counts from 0
        return CpuSample(
            {
                part: {
                    pid: cpu - before.by_pid.get(part, {}).get(pid, 0.0)
                    for pid, cpu in pids.items()
                }
                for part, pids in self.by_pid.items()
            }
        )

    def per_job(self, jobs: int, unit: str = "job") -> str:
        """``1.23 ms/job (workers 1.01, MariaDB 0.22)`` (TLS apart when there is some)."""
        text = (
            f"{1000 * self.total / jobs:5.2f} ms/{unit} (workers {1000 * self.workers / jobs:4.2f}, "
            f"MariaDB {1000 * self.db / jobs:4.2f}"
        )
        if self.by_pid.get("tls"):
            text += f"; nginx TLS {1000 * self.tls / jobs:4.2f}"
        if self.s3 > 0.005:
            text += f"; moto S3 {1000 * self.s3 / jobs:4.2f}"
        return text + ")"


# ------------------------------------------------------------------------------- the server
@dataclass(slots=True)
class Server:
    """A running DiracX: where it is, how to reach it, and its processes.

    Attributes:
        kind: ``prod`` (MariaDB, workers, nginx) or ``test`` (one process), or ``running``.
        values: its ``env.sh`` (DIRACX_URL, DIRACX_CREDENTIALS_PATH, DX_LEGACY_SECRET, ...).
        state: its state folder (pid files), when known.
    """

    kind: str
    values: dict[str, str]
    state: Path | None

    @property
    def url(self) -> str:
        return self.values["DIRACX_URL"]

    @property
    def credentials(self) -> str:
        return self.values["DIRACX_CREDENTIALS_PATH"]

    @property
    def ca(self) -> str | None:
        """The CA bundle of its TLS certificate (HTTPS), else None."""
        for key in ("DX_CA_FILE", "DIRACX_CA_PATH", "SSL_CERT_FILE"):
            if self.values.get(key):
                return self.values[key]
        return None

    @property
    def verify(self) -> bool | str:
        """What aiodirac's ``verify=`` takes for this server."""
        return self.ca or True

    @property
    def python(self) -> str:
        """The DiracX venv's python (the official client runs there)."""
        venv = self.values.get("DX_VENV") or self.values.get("DXP_VENV") or str(DX_VENV)
        return str(Path(venv) / "bin" / "python")

    def client_env(self) -> dict[str, str]:
        """The environment of an official-client subprocess talking to this server."""
        env = dict(os.environ, DIRACX_URL=self.url, DIRACX_CREDENTIALS_PATH=self.credentials)
        if self.ca:
            env["DIRACX_CA_PATH"] = self.ca  # the official client's setting
            env["SSL_CERT_FILE"] = self.ca  # its S3 transfers
        return env

    def _pid(self, name: str) -> int | None:
        if self.state is None:
            return None
        path = self.state / f"{name}.pid"
        try:
            return int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def cpu(self) -> CpuSample:
        """CPU seconds used so far by the workers, MariaDB and nginx (0 when not found)."""
        table = _processes()
        parts: dict[str, dict[int, float]] = {}
        parts_pids = (("workers", "uvicorn"), ("db", "mariadb"), ("tls", "nginx"), ("s3", "moto"))
        for part, name in parts_pids:
            pid = self._pid(name)
            if pid is not None and pid in table:
                parts.setdefault(part, {}).update(_tree(pid, table))
        return CpuSample(parts)

    @property
    def description(self) -> str:
        shape = {
            "prod": "production-shaped (MariaDB, uvicorn workers, moto"
            + (", nginx TLS)" if self.url.startswith("https") else ")"),
            "test": "one-process test app (SQLite)",
        }.get(self.kind, "running server")
        workers = len(self.cpu().by_pid.get("workers", {}))
        return f"{shape} at {self.url}" + (f", {workers} uvicorn processes" if workers else "")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """``--server prod|test``, ``--workers N``, ``--dx-env FILE``."""
    parser.add_argument(
        "--server",
        choices=("prod", "test"),
        default="prod",
        help="DiracX as production runs it (default: MariaDB, uvicorn workers, nginx TLS) or "
        "the one-process test app",
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (--server prod)")
    parser.add_argument("--dx-env", type=Path, help="env.sh of a running DiracX (left running)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _script(kind: str) -> Path:
    script = SCRIPTS[kind]
    override = os.environ.get("DX_PROD_SCRIPT")
    if kind == "prod" and override:
        script = Path(override)
    if not script.is_file():
        raise SystemExit(f"{script} is missing")
    return script


@contextmanager
def running_server(args: argparse.Namespace, tmp: Path) -> Iterator[Server]:
    """The server the arguments name: started in ``tmp`` (stopped and its state folder
    removed at the end) or running (left as it is)."""
    from aiodirac.testing import read_env_file

    if args.dx_env is not None:
        values = read_env_file(args.dx_env)
        state = values.get("DX_STATE") or values.get("DXP_STATE")
        yield Server("running", values, Path(state) if state else args.dx_env.parent)
        return
    state = tmp / f"{args.server}-state"
    env = dict(os.environ)
    ports = {"PORT": _free_port(), "S3_PORT": _free_port(), "DB_PORT": _free_port()}
    for prefix in ("DX_", "DXP_"):  # the project's scripts read DX_*, the reference DXP_*
        env.update({f"{prefix}{k}": str(v) for k, v in ports.items()})
        env.update(
            {f"{prefix}STATE": str(state), f"{prefix}VENV": str(DX_VENV), f"{prefix}HOME": str(tmp)}
        )
        env[f"{prefix}WORKERS"] = str(args.workers)
    script = _script(args.server)
    print(f"starting DiracX ({args.server}) with {script.name} in {state}", flush=True)
    if subprocess.run(["bash", str(script), "start"], env=env, check=False).returncode:
        subprocess.run(["bash", str(script), "stop"], env=env, check=False)
        raise SystemExit(f"could not start DiracX with {script}")
    try:
        yield Server(args.server, read_env_file(state / "env.sh"), state)
    finally:
        subprocess.run(["bash", str(script), "stop"], env=env, check=False)
        shutil.rmtree(state, ignore_errors=True)  # its databases: gigabytes after a long run
