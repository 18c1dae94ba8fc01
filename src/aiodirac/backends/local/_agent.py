"""The local agent: the one detached process that runs a state folder's jobs.

Started on demand by :class:`~aiodirac.LocalBackend` through :mod:`._agent_control`
(``python -m aiodirac.backends.local._agent --home H --detach``), it outlives the script that submitted the jobs, so that submit, status and output
can be separate scripts as on the grid. Exactly one agent runs per state folder: it holds an
exclusive POSIX lock on ``agent.lock`` for its whole life and writes its PID to ``agent.pid``.
Clients find it through the lock (a dead agent holds no lock, whatever its PID file says), start
a new one when it is gone, and wake it with ``SIGUSR1`` when they confirm jobs.

Each round, in one store transaction, the agent records what its jobs reported (folded into one
row write per job), moves confirmed jobs to ``Waiting`` and claims a batch of them (``Matched``:
taken by this agent, queued for a slot); worker threads run them with
:func:`~aiodirac.backends.local._executor.run_job` (one job per core by default) and pack their output
sandboxes, and a janitor thread removes finished working folders off their path. A job that is killed, deleted or rescheduled while it runs is stopped (its whole
process group) within a quarter of a second. On start, jobs left ``Running`` by an agent that died
(``SIGKILL``, machine crash) end ``Failed`` / ``Job stalled: pilot not running`` and their
leftover processes are killed; jobs it had only claimed wait again. After ``idle_timeout``
seconds with nothing to do the agent exits; ``SIGTERM`` stops it at once, giving its running jobs
back to the queue (``Received`` / ``Job Rescheduled``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import logging
import os
import queue
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiodirac._exceptions import LocalBackendError
from aiodirac._job._status import JobStatus, MinorStatus

from ._agent_control import AGENT_MODULE, open_lock
from ._executor import run_job
from ._paths import DEFAULT_IDLE_TIMEOUT, StatePaths, local_site_name
from ._sandbox import INPUT_ARCHIVE_SUFFIX, file_digest, pack_files, resolve_output_files
from ._store import Claimed, Store, Update

__all__ = ["DEFAULT_IDLE_TIMEOUT", "Agent", "main"]

logger = logging.getLogger("aiodirac.agent")


_MARKER = "AIODIRAC_AGENT_HOME"
_CHECK_INTERVAL = 0.25
_ROUND_INTERVAL = 0.1
_PEEK_LINES = 20
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


# -- the agent itself ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Inflight:
    attempt: int
    cancel: threading.Event


@dataclass(frozen=True, slots=True)
class _Finished:
    job_id: int


def _group_belongs(pgid: int, job_id: int, home: str) -> bool:
    """Whether a live process of group ``pgid`` is a step of this state folder's job."""
    marks = (f"DIRACJOBID={job_id}\0".encode(), f"{_MARKER}={home}\0".encode())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                raw = handle.read()
            if int(raw[raw.rfind(b")") + 2 :].split()[2]) != pgid:
                continue
            environ = Path(f"/proc/{pid}/environ").read_bytes() + b"\0"
        except (OSError, ValueError, IndexError):
            continue
        if all(m in environ for m in marks):
            return True
    return False


class Agent:
    """Runs the jobs of one state folder until idle. Use :func:`main` to run it as a process.

    Usage: ``Agent(StatePaths(home), max_parallel=2).run()``
    """

    def __init__(
        self,
        paths: StatePaths,
        *,
        max_parallel: int | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        keep_workdirs: bool = False,
    ) -> None:
        self.paths = paths
        self.max_parallel = max(1, max_parallel or os.cpu_count() or 1)
        self.idle_timeout = idle_timeout
        self.keep_workdirs = keep_workdirs
        self.site = local_site_name()
        self._wake = threading.Event()
        self._stopping = False
        self._queue: queue.SimpleQueue[Update | _Finished] = queue.SimpleQueue()
        self._environ = dict(os.environ)
        self._environ[_MARKER] = str(paths.home)
        self._lock_fd = -1
        # jobs claimed ahead of the free slots (Matched, queued in this agent)
        self._prefetch = max(4 * self.max_parallel, 16)
        self._queue_limit = self.max_parallel + self._prefetch
        self._finished = 0
        self._trash: queue.SimpleQueue[Path | None] = queue.SimpleQueue()

    def _on_wake(self, signum: int, frame: object) -> None:
        self._wake.set()

    def _on_stop(self, signum: int, frame: object) -> None:
        self._stopping = True
        self._wake.set()

    def _lock(self) -> bool:
        try:
            fcntl.lockf(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        self.paths.pid.write_text(f"{os.getpid()}\n")
        return True

    def run(self) -> int:
        """Run until idle or stopped; returns the process exit status.

        Usage: ``sys.exit(agent.run())``
        """
        signal.signal(signal.SIGUSR1, self._on_wake)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        self._lock_fd = open_lock(self.paths)
        if not self._lock():
            logger.info("another agent runs for %s; exiting", self.paths.home)
            return 0
        try:
            store = Store(self.paths.store)
        except LocalBackendError as exc:
            logger.error("%s", exc)
            return 1
        try:
            logger.info(
                "agent %d started for %s (%d slots, site %s)",
                os.getpid(),
                self.paths.home,
                self.max_parallel,
                self.site,
            )
            self._recover(store)
            janitor = threading.Thread(target=self._sweep, name="janitor", daemon=True)
            janitor.start()
            try:
                with ThreadPoolExecutor(self.max_parallel, thread_name_prefix="job") as pool:
                    self._loop(store, pool)
            finally:
                self._trash.put(None)
                janitor.join()
            self._clean_sandboxes(store)
        finally:
            store.close()
            with contextlib.suppress(OSError):
                if self.paths.pid.read_text().strip() == str(os.getpid()):
                    self.paths.pid.unlink()
            os.close(self._lock_fd)
        logger.info("agent %d exits", os.getpid())
        return 0

    def _sweep(self) -> None:
        """Remove finished working folders off the job slots' path (rmdir can be slow)."""
        while (folder := self._trash.get()) is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _recover(self, store: Store) -> None:
        # no job runs while nobody holds the lock: half-written archives belong to a dead agent
        if self.paths.output.is_dir():
            for partial in self.paths.output.glob(".*.partial"):
                if partial.is_dir() and not partial.is_symlink():
                    shutil.rmtree(partial, ignore_errors=True)  # folders being packed
                else:
                    partial.unlink(missing_ok=True)
        for job_id, pgid in store.recover(time.time()):
            logger.warning("job %d was running when the previous agent died: Failed", job_id)
            if pgid and _group_belongs(pgid, job_id, str(self.paths.home)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
            if not self.keep_workdirs and self.paths.work.is_dir():
                for folder in self.paths.work.glob(f"{job_id}.*"):
                    shutil.rmtree(folder, ignore_errors=True)

    def _drain(self, inflight: dict[int, _Inflight]) -> list[Update]:
        updates: list[Update] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return updates
            if isinstance(item, _Finished):
                inflight.pop(item.job_id, None)
            else:
                updates.append(item)

    def _loop(self, store: Store, pool: ThreadPoolExecutor) -> None:
        inflight: dict[int, _Inflight] = {}
        idle_since = time.monotonic()
        last_check = 0.0
        updates: list[Update] = []
        while True:
            updates.extend(self._drain(inflight))
            room = self._queue_limit - len(inflight)
            # claim in batches, so that one transaction serves many jobs; never starve a slot
            wanted = room if room >= self._prefetch // 2 or len(inflight) < self.max_parallel else 0
            capacity = 0 if self._stopping else wanted
            self._finished = 0
            try:
                claimed = store.cycle(updates, capacity, self.site, time.time())
            except LocalBackendError as exc:
                logger.error("store round failed, retrying: %s", exc)
                self._wake.wait(1.0)
                continue
            updates = []
            for job in claimed:
                entry = _Inflight(job.attempt, threading.Event())
                inflight[job.job_id] = entry
                pool.submit(self._work, job, entry.cancel)
            now = time.monotonic()
            if inflight and now - last_check >= _CHECK_INTERVAL:
                last_check = now
                with contextlib.suppress(LocalBackendError):
                    owned = {job_id: e.attempt for job_id, e in inflight.items()}
                    for job_id in store.owned(owned):
                        inflight[job_id].cancel.set()
            if self._stopping:
                self._stop(store, pool, inflight)
                return
            if inflight or claimed:
                idle_since = now
            elif now - idle_since >= self.idle_timeout and self._release(store):
                return
            timeout = _ROUND_INTERVAL if inflight else min(1.0, self.idle_timeout)
            self._wake.wait(timeout)
            self._wake.clear()

    def _release(self, store: Store) -> bool:
        """Give up the lock when nothing waits; ``False`` when work arrived meanwhile."""
        try:
            if store.pending():
                return False
            with contextlib.suppress(OSError):
                self.paths.pid.unlink()
            fcntl.lockf(self._lock_fd, fcntl.LOCK_UN)
            # a client that confirmed jobs after the check above saw the lock held and did not
            # start an agent: look again now that the lock is free, and carry on if work came
            if store.pending():
                return not self._lock()
        except LocalBackendError as exc:
            logger.error("cannot read the store before exiting: %s", exc)
            return False
        return True

    def _stop(self, store: Store, pool: ThreadPoolExecutor, inflight: dict[int, _Inflight]) -> None:
        owned = {job_id: e.attempt for job_id, e in inflight.items()}
        for entry in inflight.values():
            entry.cancel.set()
        pool.shutdown(wait=True)
        updates = self._drain(inflight)
        with contextlib.suppress(LocalBackendError):
            store.cycle(updates, 0, self.site, time.time())
            moved = store.requeue(owned, time.time())
            if moved:
                logger.info("stopped: %d running jobs go back to the queue", len(moved))

    def _clean_sandboxes(self, store: Store) -> None:
        with contextlib.suppress(LocalBackendError):
            for chunk_id, folder in store.finished_sandboxes():
                shutil.rmtree(self.paths.sandboxes / folder, ignore_errors=True)
                # the archive a getInputSandbox packed from it, if any
                (self.paths.sandboxes / f"{folder}{INPUT_ARCHIVE_SUFFIX}").unlink(missing_ok=True)
                store.forget_sandbox(chunk_id)

    def _work(self, claimed: Claimed, cancel: threading.Event) -> None:
        job_id, attempt = claimed.job_id, claimed.attempt
        workdir = self.paths.workdir(job_id, attempt)
        put = self._queue.put

        def progress(status: JobStatus | None, minor: str | None, app: str | None) -> None:
            put(Update(job_id, attempt, status, minor, app, time.time()))

        def on_spawn(pgid: int) -> None:
            put(Update(job_id, attempt, None, None, None, time.time(), pgid=pgid))

        try:
            if cancel.is_set():
                return
            inputs = self.paths.sandboxes / claimed.sandbox if claimed.sandbox else None
            outcome = run_job(
                claimed.job,
                workdir,
                inputs,
                job_id=job_id,
                site=self.site,
                environ=self._environ,
                cancel=cancel,
                progress=progress,
                on_spawn=on_spawn,
            )
            if cancel.is_set():
                return
            status, minor = outcome.status, outcome.minor_status
            parameters = {
                "TotalCPUTime(s)": f"{outcome.cpu_time:.2f}",
                "WallClockTime(s)": f"{outcome.wall_time:.2f}",
                "ExitCodes": " ".join(str(c) for c in outcome.exit_codes),
            }
            if outcome.error:
                parameters["ApplicationError"] = outcome.error
            sandbox: tuple[str, int, str] | None = None
            try:
                parameters["StandardOutput"] = _tail(workdir / "std.out")
                if status is JobStatus.DONE:
                    progress(JobStatus.COMPLETING, MinorStatus.UPLOADING_OUTPUT_SANDBOX, None)
                found = resolve_output_files(claimed.job, workdir)
                archive = pack_files(
                    workdir,
                    found.files,
                    found.folders,
                    self.paths.output_archive(job_id, attempt),
                )
                if archive is not None:
                    sandbox = (str(archive), *file_digest(archive))
                if found.missing:
                    parameters["OutputSandboxMissingFiles"] = ", ".join(found.missing)
                if status is JobStatus.DONE:
                    progress(None, MinorStatus.OUTPUT_SANDBOX_UPLOADED, None)
            except OSError as exc:
                parameters["ApplicationError"] = f"cannot pack the output sandbox: {exc}"
                status = JobStatus.FAILED
                minor = (
                    MinorStatus.JOB_INSUFFICIENT_DISK
                    if exc.errno in _DISK_FULL
                    else "Failed to pack the output sandbox"
                )
            put(Update(job_id, attempt, status, minor, None, time.time(), parameters, sandbox))
        except Exception as exc:
            logger.exception("job %d: unexpected failure", job_id)
            put(
                Update(
                    job_id,
                    attempt,
                    JobStatus.FAILED,
                    MinorStatus.EXCEPTION_DURING_EXEC,
                    None,
                    time.time(),
                    {"ApplicationError": repr(exc)},
                )
            )
        finally:
            if not self.keep_workdirs:
                self._trash.put(workdir)
            put(_Finished(job_id))
            self._finished += 1
            # wake the main loop when the queue of claimed jobs runs low, not for every job
            if self._finished >= self._prefetch // 2:
                self._wake.set()


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-_PEEK_LINES:])


def _detach(log: Path) -> None:
    """Become a daemon: double fork, new session, stdio on the log file."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the agent process (``python -m aiodirac.backends.local._agent --home H``).

    Usage: ``main(["--home", "/tmp/state", "--idle-timeout", "5"])``
    """
    parser = argparse.ArgumentParser(prog=f"python -m {AGENT_MODULE}", description=__doc__)
    parser.add_argument("--home", required=True, help="the state folder")
    parser.add_argument("--max-parallel", type=int, default=None, help="jobs at once (cores)")
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT)
    parser.add_argument("--keep-workdirs", action="store_true", help="keep working folders")
    parser.add_argument("--detach", action="store_true", help="run in the background")
    args = parser.parse_args(argv)
    paths = StatePaths(Path(args.home).resolve())
    try:
        paths.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"cannot create the state folder {paths.home}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.detach:
        _detach(paths.log)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s [agent %(process)d] %(message)s",
        stream=sys.stderr,
    )
    agent = Agent(
        paths,
        max_parallel=args.max_parallel,
        idle_timeout=args.idle_timeout,
        keep_workdirs=args.keep_workdirs,
    )
    try:
        return agent.run()
    except LocalBackendError as exc:
        logger.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
