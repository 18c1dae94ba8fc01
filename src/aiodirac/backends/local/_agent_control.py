"""Finding, starting, waking and stopping a state folder's local agent: the client's side.

The agent (:mod:`._agent`) is one detached process per state folder. It holds an exclusive POSIX
record lock on ``agent.lock`` for its whole life: a client finds it through that lock (a dead
agent holds no lock, whatever ``agent.pid`` says), starts one when none runs, wakes it with
``SIGUSR1`` when it confirmed jobs, and stops it with ``SIGTERM``. Nothing here imports the agent:
a client never loads the code that runs jobs.

Usage: ``if not agent_running(paths): start_agent(paths)``
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

from aiodirac._exceptions import LocalBackendError

from ._paths import DEFAULT_IDLE_TIMEOUT, StatePaths

__all__ = [
    "AGENT_MODULE",
    "PACKAGE_ROOT",
    "agent_pid",
    "agent_running",
    "nudge_agent",
    "open_lock",
    "start_agent",
    "stop_agent",
]

#: The agent's module, run with ``python -m`` (and found in its command line).
AGENT_MODULE = "aiodirac.backends.local._agent"
_LOG_LIMIT = 5 << 20
#: The folder holding the ``aiodirac`` package (src/ in a checkout), put on the agent's path.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


def open_lock(paths: StatePaths) -> int:
    try:
        paths.home.mkdir(parents=True, exist_ok=True)
        return os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LocalBackendError(
            f"cannot use the local state folder {paths.home}: {exc.strerror}; choose a writable "
            "folder with AIODIRAC_HOME or LocalBackend(home=...)"
        ) from exc


# struct flock as Linux lays it out: l_type, l_whence, l_start, l_len, l_pid (+ padding)
_FLOCK = struct.Struct("hhqqi")
_FLOCK_SIZE = 32


def _lock_holder(fd: int) -> int | None:
    """The PID holding the agent lock of ``fd``'s file, without taking it (``F_GETLK``)."""
    request = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0).ljust(_FLOCK_SIZE, b"\0")
    answer = fcntl.fcntl(fd, fcntl.F_GETLK, request)
    kind, _, _, _, pid = _FLOCK.unpack(answer[: _FLOCK.size])
    return None if kind == fcntl.F_UNLCK else int(pid)


def _holder(paths: StatePaths) -> int | None:
    fd = open_lock(paths)
    try:
        return _lock_holder(fd)
    finally:
        os.close(fd)


def agent_running(paths: StatePaths) -> bool:
    """Whether an agent holds the state folder's lock right now.

    The lock is a POSIX record lock, tested with ``F_GETLK``: looking never disturbs an agent
    taking it, and a dead agent holds nothing, whatever ``agent.pid`` says.

    Usage: ``if not agent_running(paths): start_agent(paths)``
    """
    return _holder(paths) is not None


def agent_pid(paths: StatePaths) -> int | None:
    """The running agent's PID (the lock holder, checked against its command line).

    Usage: ``pid = agent_pid(paths)``
    """
    pid = _holder(paths)
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid  # no /proc here: trust the lock
    return pid if AGENT_MODULE.encode() in cmdline else None


def nudge_agent(paths: StatePaths) -> bool:
    """Wake the running agent so it looks at the store now; ``False`` when none runs.

    Usage: ``nudge_agent(paths)``
    """
    pid = agent_pid(paths)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        return False
    return True


def _log_tail(paths: StatePaths, lines: int = 5) -> str:
    try:
        text = paths.log.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def start_agent(
    paths: StatePaths,
    *,
    max_parallel: int | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    keep_workdirs: bool = False,
    timeout: float = 10.0,
) -> bool:
    """Start a detached agent unless one runs; wait until it holds the lock.

    Returns:
        ``True`` when this call started it.

    Raises:
        LocalBackendError: the agent could not start (its log's last lines say why).

    Usage: ``start_agent(StatePaths(home), max_parallel=2)``
    """
    if agent_running(paths):
        return False
    command = [
        sys.executable,
        "-m",
        AGENT_MODULE,
        "--home",
        str(paths.home),
        "--idle-timeout",
        repr(float(idle_timeout)),
        "--detach",
    ]
    if max_parallel is not None:
        command += ["--max-parallel", str(int(max_parallel))]
    if keep_workdirs:
        command.append("--keep-workdirs")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    with contextlib.suppress(OSError):
        if paths.log.stat().st_size > _LOG_LIMIT:
            os.replace(paths.log, paths.log.with_name(paths.log.name + ".1"))
    try:
        with paths.log.open("ab") as log:
            launcher = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=paths.home,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        code = launcher.wait(timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalBackendError(f"cannot start the local agent: {exc}") from exc
    if code != 0:
        raise LocalBackendError(
            f"the local agent failed to start (exit status {code}): {_log_tail(paths)}"
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent_pid(paths) is not None:
            return True
        time.sleep(0.01)
    raise LocalBackendError(
        f"the local agent did not start within {timeout:g} s; its log {paths.log} says: "
        f"{_log_tail(paths)}"
    )


def stop_agent(paths: StatePaths, *, timeout: float = 10.0) -> bool:
    """Stop the running agent (``SIGTERM``: its running jobs go back to the queue).

    Returns:
        ``True`` when no agent runs any more.

    Usage: ``stop_agent(StatePaths(home))``
    """
    pid = agent_pid(paths)
    if pid is None:
        return not agent_running(paths)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not agent_running(paths):
            return True
        time.sleep(0.02)
    return False
