"""Run one job in a working folder exactly as a DIRAC worker node would.

What DIRAC does on a worker node, and what :func:`run_job` does in one call:

* ``JobWrapper`` stages the input sandbox (files copied, tar archives unpacked), then runs
  ``dirac-jobexec jobDescription.xml`` with the job's ``ExecutionEnvironment`` added to the
  environment (``KEY=url-quoted value``), and a watchdog that stops the payload when it has used
  its ``CPUTime`` (``Failed`` / ``Job has reached the CPU limit of the queue``).
* ``dirac-jobexec`` runs the steps in order (``Workflow/Modules/Script.py``): the command is the
  executable (``<workdir>/<basename>`` when the input sandbox put it there, ``python x.py`` for a
  ``.py``) plus its arguments, split with ``shlex``, no shell. Each step's output goes to its log
  file as ``"<<<<<<<<<< {executable} Standard Output >>>>>>>>>>\\n\\n{stdout} "`` followed, when
  the step wrote to stderr, by ``"<<<<<<<<<< {executable} Standard Error >>>>>>>>>>\\n\\n{stderr} "``.
  A failing step does not stop the later ones; the first failure sets the ApplicationStatus to
  ``'<name>' Exited With Status <n>``, success of the steps before it to ``<name> successful``.
  A command that cannot be started at all is status 1000, as in DIRAC; DIRAC only logs why on the
  worker node, here the reason follows in the ApplicationStatus
  (``'program' Exited With Status 1000 (Cannot run 'program x': [Errno 2] ...)``), where DIRAC
  users look.
* The wrapper writes the payload's stdout to ``std.out`` and its stderr to ``std.err`` (the JDL's
  ``StdOutput``/``StdError``). Here the payload's output is the steps' output, so ``std.out`` holds
  every step's stdout in order and ``std.err`` every step's stderr, plus one line from us when the
  job could not run as asked (input sandbox, CPU limit, kill, a command that cannot start).
* A payload that exits non-zero ends ``Completing`` / ``Application Finished With Errors``, then
  ``Failed`` keeping that minor status; success ends ``Done`` / ``Execution Complete``.

Every step runs in its own process group (a new session); when its main process exits, whatever
it left running in that group is killed, and a kill or the CPU watchdog stops the whole group.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import resource
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from aiodirac._job._spec import ConcreteJob, Step
from aiodirac._job._status import JobStatus, MinorStatus

from ._sandbox import StagingError, stage_input_sandbox

__all__ = [
    "DEFAULT_CPU_TIME",
    "JobOutcome",
    "Progress",
    "StepResult",
    "job_environment",
    "run_job",
]

#: CPU seconds a job gets when its JDL has no CPUTime (DIRAC's JobWrapper DefaultCPUTime).
DEFAULT_CPU_TIME = 600

#: Exit status DIRAC's Script module reports when the command could not be started at all.
_CANNOT_START = 1000
#: The longest ApplicationStatus DIRAC's JobDB keeps.
_APPLICATION_STATUS_MAX = 255

_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_WATCH_INTERVAL = 0.25
_ETXTBSY_RETRIES = 20

#: Called with (status, minor status, application status) whenever one of them changes;
#: ``None`` means "unchanged".
Progress = Callable[[JobStatus | None, str | None, str | None], None]


@dataclass(frozen=True, slots=True)
class StepResult:
    """How one step ended.

    Attributes:
        number: the step's number.
        executable: the executable as DIRAC's banner shows it.
        exit_code: the exit status; negative for a signal; ``1000`` when it could not start.
        cpu_time: CPU seconds of the step's process and the children it waited for.
        error: why the command could not be started (exit code 1000), else empty.

    Usage: ``[r.exit_code for r in outcome.steps]``
    """

    number: int
    executable: str
    exit_code: int
    cpu_time: float
    error: str = ""


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a job ended, as DIRAC's job wrapper would report it.

    Attributes:
        status: ``Done``, ``Failed`` or ``Killed``.
        minor_status: DIRAC's minor status saying why.
        application_status: the ApplicationStatus the steps left.
        steps: one result per step that ran.
        cpu_time: CPU seconds used by the payload.
        wall_time: seconds from start to end.
        error: a wrapper message when the job could not run as asked, else empty.

    Usage: ``outcome.status is JobStatus.DONE``
    """

    status: JobStatus
    minor_status: str
    application_status: str
    steps: tuple[StepResult, ...] = ()
    cpu_time: float = 0.0
    wall_time: float = 0.0
    error: str = ""

    @property
    def exit_codes(self) -> tuple[int, ...]:
        """The exit status of every step that ran, in order."""
        return tuple(step.exit_code for step in self.steps)


@dataclass(slots=True)
class _Budget:
    limit: float | None
    used: float = 0.0
    exceeded: bool = False
    cancelled: bool = False
    extra: list[str] = field(default_factory=list)

    def remaining(self) -> float | None:
        return None if self.limit is None else self.limit - self.used


def job_environment(
    job: ConcreteJob,
    *,
    job_id: int = 0,
    site: str = "",
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a job's steps see: ``base`` plus DIRAC's variables and ExecutionEnvironment.

    ``ExecutionEnvironment`` entries are ``KEY=value`` with the value URL-quoted, as
    ``Job.setExecutionEnv`` writes them; the wrapper's own variables are ``DIRACJOBID``,
    ``JOBID``, ``DIRACSITE``, ``DIRAC_PROCESSORS`` and ``DIRAC_WHOLENODE``.

    Usage: ``env = job_environment(job, job_id=7, site="DIRAC.vm.local")``
    """
    env = dict(os.environ if base is None else base)
    env["DIRACJOBID"] = str(job_id)
    env["JOBID"] = str(job_id)
    if site:
        env["DIRACSITE"] = site
    processors = job.attributes.get("NumberOfProcessors", 1)
    env["DIRAC_PROCESSORS"] = str(processors)
    env["DIRAC_WHOLENODE"] = "False"
    for entry in job.strings("ExecutionEnvironment"):
        key, sep, value = entry.partition("=")
        if sep and key:
            env[key] = unquote(value)
    return env


def _cpu_limit(job: ConcreteJob) -> float:
    value = job.attributes.get("CPUTime")
    if value is None or isinstance(value, tuple):
        return float(DEFAULT_CPU_TIME)
    try:
        return float(value)
    except ValueError:
        return float(DEFAULT_CPU_TIME)


def _output_name(job: ConcreteJob, attribute: str, default: str) -> str:
    value = job.attributes.get(attribute, default)
    name = os.path.basename(value if isinstance(value, str) else default)
    return name if name not in ("", ".", "..") else default


def _log_name(step: Step) -> str:
    name = os.path.basename(step.log_file)
    return name if name not in ("", ".", "..") else f"Script{step.number}_CodeOutput.log"


def _command(step: Step, workdir: Path) -> tuple[str, str]:
    """(the executable DIRAC's banner shows, the full command line), as Script._setCommand."""
    executable = step.executable
    command = executable
    local = workdir / os.path.basename(executable)
    if os.path.basename(executable) and local.exists():
        executable = os.path.basename(executable)
        if not os.access(local, os.R_OK | os.X_OK):
            os.chmod(
                local, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
            )
        command = str(local)
    elif executable.endswith(".py"):
        command = f"{sys.executable} {executable}"
    if step.arguments:
        command = f"{command} {step.arguments}"
    return executable, command


def _group_cpu(pgid: int) -> float:
    """CPU seconds of the live processes of a process group (Linux /proc), 0 elsewhere."""
    total = 0
    try:
        pids = os.listdir("/proc")
    except OSError:
        return 0.0
    for pid in pids:
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) > 14 and int(fields[2]) == pgid:
            total += sum(int(v) for v in fields[11:15])
    return total / _CLOCK_TICKS


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _wait_step(pid: int, budget: _Budget, cancel: threading.Event | None) -> tuple[int, float]:
    """Wait for the step's process, watching its group's CPU and the cancel flag.

    Returns its wait status and its CPU time (itself and the children it waited for).
    """
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    limit_hit = False
    seen = 0.0
    try:
        while True:
            if pidfd is not None:
                select.select([pidfd], [], [], _WATCH_INTERVAL)
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done == pid:
                return status, max(seen, usage.ru_utime + usage.ru_stime)
            if pidfd is None:
                time.sleep(0.005)
            if cancel is not None and cancel.is_set():
                budget.cancelled = True
                _killpg(pid)
                continue
            remaining = budget.remaining()
            if remaining is None or limit_hit:
                continue
            seen = max(seen, _group_cpu(pid))
            if seen > remaining:
                limit_hit = True
                budget.exceeded = True
                _killpg(pid)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _write_log(path: Path, executable: str, out: BinaryIO, err: BinaryIO, note: str = "") -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    with path.open("wb") as log:
        log.write(f"<<<<<<<<<< {executable} Standard Output >>>>>>>>>>\n\n".encode())
        out.seek(0)
        shutil.copyfileobj(out, log, 1 << 20)
        log.write(b" ")
        err.seek(0, os.SEEK_END)
        if err.tell() or note:
            log.write(f"<<<<<<<<<< {executable} Standard Error >>>>>>>>>>\n\n".encode())
            err.seek(0)
            shutil.copyfileobj(err, log, 1 << 20)
            if note:
                log.write(f"{note}\n".encode())
            log.write(b" ")


def _spawn(
    argv: list[str], workdir: Path, env: Mapping[str, str], out: BinaryIO, err: BinaryIO
) -> subprocess.Popen[bytes]:
    for attempt in range(_ETXTBSY_RETRIES):
        try:
            return subprocess.Popen(
                argv,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            # an executable just copied into the working folder can still be open for writing
            # in a child another thread forked meanwhile (until that child execs): wait for it
            if exc.errno != errno.ETXTBSY or attempt == _ETXTBSY_RETRIES - 1:
                raise
            time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")


def _run_step(
    step: Step,
    workdir: Path,
    env: Mapping[str, str],
    stdout: BinaryIO,
    stderr: BinaryIO,
    budget: _Budget,
    cancel: threading.Event | None,
    on_spawn: Callable[[int], None] | None,
) -> StepResult:
    executable, command = _command(step, workdir)
    note = ""
    exit_code = _CANNOT_START
    cpu = 0.0
    with (
        tempfile.TemporaryFile(dir=workdir.parent) as out,
        tempfile.TemporaryFile(dir=workdir.parent) as err,
    ):
        try:
            argv = shlex.split(command)
            if not argv:
                raise ValueError("empty command")
            proc = _spawn(argv, workdir, env, out, err)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            note = f"Cannot run {command!r}: {exc}"
        else:
            pid = proc.pid
            if on_spawn is not None:
                on_spawn(pid)
            remaining = budget.remaining()
            if remaining is not None:
                soft = max(1, math.ceil(remaining))
                # the process may already be gone; the watchdog still covers its group
                with contextlib.suppress(OSError):
                    resource.prlimit(pid, resource.RLIMIT_CPU, (soft, soft + 5))
            try:
                status, cpu = _wait_step(pid, budget, cancel)
            finally:
                _killpg(pid)
            exit_code = os.waitstatus_to_exitcode(status)
            # reaped with wait4 (for its CPU time): tell Popen so it never waits again
            proc.returncode = exit_code
            if exit_code in (-signal.SIGXCPU, -signal.SIGKILL) and not budget.cancelled:
                remaining = budget.remaining()
                if remaining is not None and cpu >= remaining - 1:
                    budget.exceeded = True
        budget.used += cpu
        _write_log(workdir / _log_name(step), executable, out, err, note)
        out.seek(0)
        shutil.copyfileobj(out, stdout, 1 << 20)
        err.seek(0)
        shutil.copyfileobj(err, stderr, 1 << 20)
        if note:
            stderr.write(f"{note}\n".encode())
    return StepResult(step.number, executable, exit_code, cpu, note)


def _with_reason(application: str, reason: str) -> str:
    """DIRAC's ApplicationStatus with why the command could not start, within DIRAC's 255
    characters (JobDB's ApplicationStatus column)."""
    text = f"{application} ({reason})"
    if len(text) <= _APPLICATION_STATUS_MAX:
        return text
    room = _APPLICATION_STATUS_MAX - len(application) - len(" (...)")
    return f"{application} ({reason[: max(room, 0)]}...)"


def _step_name(executable: str) -> str:
    return os.path.basename(executable).split("_")[0]


def run_job(
    job: ConcreteJob,
    workdir: Path,
    inputs: Path | None,
    *,
    cpu_limit: float | None = None,
    job_id: int = 0,
    site: str = "",
    environ: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    on_spawn: Callable[[int], None] | None = None,
) -> JobOutcome:
    """Run ``job`` in ``workdir`` (created if needed), synchronously, as a DIRAC worker node would.

    Args:
        job: the concrete job (its ``steps`` and JDL attributes).
        workdir: its working folder; the output files stay there (see ``pack_output_sandbox``).
        inputs: folder holding the stored input sandbox, by base name (``None``: nothing to stage).
        cpu_limit: CPU seconds for the whole job; default its ``CPUTime`` (DIRAC default 600).
        job_id: exported to the steps as ``DIRACJOBID``/``JOBID``.
        site: exported as ``DIRACSITE``.
        environ: the base environment (default ``os.environ``).
        cancel: set it to kill the job (its processes are stopped within a quarter second).
        progress: told of every status change (``Running``/``Application``, ``Completing``...).
        on_spawn: told the process group ID of each step when it starts.

    Returns:
        ``Done`` / ``Execution Complete``; ``Failed`` with ``Application Finished With Errors``,
        ``Job has reached the CPU limit of the queue``, ``Failed Downloading InputSandbox``,
        ``Job has insufficient disk space to continue`` or ``Exception During Execution``; or
        ``Killed`` / ``Received Kill signal`` when ``cancel`` was set.

    Usage: ``outcome = run_job(job, Path("work/7"), Path("sandboxes/3"), job_id=7)``
    """
    started = time.monotonic()

    def report(status: JobStatus | None, minor: str | None, app: str | None = None) -> None:
        if progress is not None:
            progress(status, minor, app)

    budget = _Budget(cpu_limit if cpu_limit is not None else _cpu_limit(job))
    application = "Unknown"
    results: list[StepResult] = []

    def outcome(status: JobStatus, minor: str, error: str = "") -> JobOutcome:
        return JobOutcome(
            status,
            minor,
            application,
            tuple(results),
            budget.used,
            time.monotonic() - started,
            error,
        )

    report(JobStatus.RUNNING, MinorStatus.JOB_INITIALIZATION)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        with (
            (workdir / _output_name(job, "StdOutput", "std.out")).open("ab") as stdout,
            (workdir / _output_name(job, "StdError", "std.err")).open("ab") as stderr,
        ):
            report(None, MinorStatus.DOWNLOADING_INPUT_SANDBOX)
            try:
                stage_input_sandbox(job, workdir, inputs)
            except StagingError as exc:
                stderr.write(f"{exc}\n".encode())
                return outcome(
                    JobStatus.FAILED, MinorStatus.FAILED_DOWNLOADING_INPUT_SANDBOX, str(exc)
                )
            env = job_environment(job, job_id=job_id, site=site, base=environ)
            report(None, MinorStatus.APPLICATION)
            failed = False
            for step in job.steps:
                result = _run_step(step, workdir, env, stdout, stderr, budget, cancel, on_spawn)
                results.append(result)
                if budget.cancelled:
                    stderr.write(b"Job killed on request\n")
                    return outcome(JobStatus.KILLED, MinorStatus.RECEIVED_KILL_SIGNAL, "killed")
                if budget.exceeded:
                    message = (
                        f"Job has used {budget.used:.1f} s of CPU, its limit is {budget.limit:g} s"
                    )
                    stderr.write(f"{message}: stopped\n".encode())
                    return outcome(JobStatus.FAILED, MinorStatus.JOB_EXCEEDED_CPU, message)
                if failed:
                    continue
                name = _step_name(result.executable)
                if result.exit_code != 0:
                    failed = True
                    application = f"'{name}' Exited With Status {result.exit_code}"
                    if result.error:
                        application = _with_reason(application, result.error)
                else:
                    application = f"{name} successful"
                report(None, None, application)
            if failed:
                report(JobStatus.COMPLETING, MinorStatus.APP_ERRORS)
                return outcome(JobStatus.FAILED, MinorStatus.APP_ERRORS)
            report(JobStatus.COMPLETING, MinorStatus.APP_SUCCESS)
            return outcome(JobStatus.DONE, MinorStatus.EXEC_COMPLETE)
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            return outcome(JobStatus.FAILED, MinorStatus.JOB_INSUFFICIENT_DISK, str(exc))
        return outcome(JobStatus.FAILED, MinorStatus.EXCEPTION_DURING_EXEC, str(exc))
