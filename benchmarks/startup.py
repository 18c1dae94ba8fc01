"""Start-up of the local path (issue 17), whole processes, next to DIRAC 9.1.22.

Two figures, each the wall time of a fresh process from exec to exit:

* the seed job (three steps: ``/bin/echo hello``, ``/bin/hostname``, ``/bin/echo hello again``)
  run with ``Dirac().submitJob(j, mode="local")``, with aiodirac (target: at most 0.17 s) and
  with DIRAC 9.1.22's local mode when a DIRAC venv is given (``--dirac-venv``; install one with
  ``install_dirac_minimal.sh VENV`` from the DIRAC reference folder), else printed as not
  measured;
* ``aiodirac status <id>`` on the local backend (target: at most 0.25 s; DIRAC has no
  equivalent without a server), next to ``python -c "import typer, rich.console"``, what the
  command line's toolkit alone costs.

Each case runs once untimed, then ``--runs`` times (hyperfine-style). Printed: the min and the
median wall time, the least CPU time of a run (user + system, the children it waited for
included: what the process costs on a free CPU, where wall times grow with other processes'
load), the load average, and for aiodirac's cases the number of modules the process imported
and which of httpx, httpcore, trio, aiofiles, rich.progress, tenacity and sqlite3 were among
them (``-X importtime``, one more run).

Usage::

    .venv/bin/python benchmarks/startup.py
    .venv/bin/python benchmarks/startup.py --runs 30 --dirac-venv /tmp/dirac-venv
"""

from __future__ import annotations

import argparse
import os
import pty
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_SEED = """\
{imports}

j = Job()
j.setCPUTime(500)
j.setExecutable("/bin/echo hello")
j.setExecutable("/bin/hostname")
j.setExecutable("/bin/echo hello again")
j.setName("API")
result = Dirac().submitJob(j, mode="local")
assert result["OK"], result
"""

# What DIRAC's local mode reads (DIRAC_ROOT_PATH/etc/dirac.cfg): no server, one local site.
_DIRAC_CFG = """\
DIRAC
{
  Setup = Benchmark
}
LocalSite
{
  Site = DIRAC.Benchmark.local
}
"""

#: Modules the local path must not load (issue 17: nothing there imports httpx).
_HEAVY = ("httpx", "httpcore", "trio", "aiofiles", "rich.progress", "tenacity", "sqlite3")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], tty: bool = False
) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the process and the children it waited for) of one run.

    ``tty``: stdout is a pseudo-terminal (a person at a terminal: tables drawn by rich).
    """
    stdout: int = subprocess.DEVNULL
    terminal = None
    if tty:
        terminal, stdout = pty.openpty()
    cpu = _cpu()
    start = time.perf_counter()
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=dict(env), stdout=stdout, stderr=subprocess.PIPE, check=False
        )
        elapsed = time.perf_counter() - start
    finally:
        if terminal is not None:
            os.close(stdout)
            os.close(terminal)  # a few lines: they fit the pty's buffer unread
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()}")
    return elapsed, _cpu() - cpu


def _runs(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], runs: int, tty: bool = False
) -> list[tuple[float, float]]:
    _timed(argv, cwd, env, tty)  # warm-up: file caches, .pyc files
    return [_timed(argv, cwd, env, tty) for _ in range(runs)]


def _imported(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> set[str]:
    """The modules a process imports (from ``-X importtime``)."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    names.discard("imported package")
    return names


def _row(name: str, runs: Sequence[tuple[float, float]] | None, note: str = "") -> None:
    if runs is None:
        print(f"  {name:<46} {'not measured':>32}  {note}")
        return
    wall = [w for w, _ in runs]
    cpu = min(c for _, c in runs)
    print(f"  {name:<46} {min(wall):7.3f} s {statistics.median(wall):7.3f} s {cpu:7.3f} s  {note}")


def _modules_note(modules: set[str]) -> str:
    heavy = [h for h in _HEAVY if h in modules]
    return f"{len(modules)} modules; " + (
        "loads " + ", ".join(heavy) if heavy else "none of " + ", ".join(_HEAVY)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per case (default 20)")
    parser.add_argument(
        "--dirac-venv",
        type=Path,
        default=os.environ.get("AIODIRAC_DIRAC_VENV"),
        help="a venv with DIRAC 9.1.22 (default $AIODIRAC_DIRAC_VENV; none: not measured)",
    )
    args = parser.parse_args()
    python = sys.executable
    cli = str(Path(python).with_name("aiodirac"))

    with tempfile.TemporaryDirectory(prefix="aiodirac-startup-") as scratch:
        root = Path(scratch)
        env = dict(os.environ, AIODIRAC_HOME=str(root / "home"), PYTHONDONTWRITEBYTECODE="")
        env.pop("DIRACX_URL", None)
        env.pop("AIODIRAC_BACKEND", None)
        (root / "seed.py").write_text(_SEED.format(imports="from aiodirac import Dirac, Job"))
        (root / "run").mkdir()

        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.runs} runs")
        print(f"  {'':<46} {'min':>9} {'median':>9} {'min CPU':>9}")
        _row(
            "python -c pass (interpreter start-up)",
            _runs([python, "-c", "pass"], root, env, args.runs),
        )

        print("seed job, Dirac().submitJob(j, mode='local'), whole process")
        seed = [python, str(root / "seed.py")]
        ours = _runs(seed, root / "run", env, args.runs)
        _row(
            "aiodirac (target <= 0.170 s)", ours, _modules_note(_imported(seed, root / "run", env))
        )
        theirs = None
        if args.dirac_venv is not None:
            (root / "dirac-seed.py").write_text(
                _SEED.format(
                    imports="from DIRAC.Interfaces.API.Dirac import Dirac\n"
                    "from DIRAC.Interfaces.API.Job import Job"
                )
            )
            (root / "diracroot" / "etc").mkdir(parents=True)
            (root / "diracroot" / "etc" / "dirac.cfg").write_text(_DIRAC_CFG)
            venv_bin = args.dirac_venv.resolve() / "bin"
            dirac_env = dict(
                env,
                DIRAC_ROOT_PATH=str(root / "diracroot"),
                PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
            )
            runs = max(3, args.runs // 4)  # seconds each
            theirs = _runs(
                [str(venv_bin / "python"), str(root / "dirac-seed.py")],
                root / "run",
                dirac_env,
                runs,
            )
        _row("DIRAC 9.1.22 local mode", theirs, "" if theirs else "(--dirac-venv not given)")
        if theirs:
            ours_wall, theirs_wall = [w for w, _ in ours], [w for w, _ in theirs]
            print(
                f"  DIRAC / aiodirac: {min(theirs_wall) / min(ours_wall):.1f}x (min), "
                f"{statistics.median(theirs_wall) / statistics.median(ours_wall):.1f}x (median)"
            )

        print("aiodirac status <id>, local backend, fresh process")
        submitted = subprocess.run(
            [cli, "-q", "submit", "--", "/bin/echo", "hello"],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        job_id = submitted.stdout.strip()
        subprocess.run(
            [cli, "-q", "watch", job_id], env=env, cwd=root, capture_output=True, check=True
        )
        try:
            _row(
                "python -c 'import typer, rich.console'",
                _runs([python, "-c", "import typer, rich.console"], root, env, args.runs),
                "what the command line's toolkit alone costs",
            )
            status = [python, cli, "status", job_id]
            _row(
                "aiodirac status (target <= 0.250 s)",
                _runs([cli, "status", job_id], root, env, args.runs),
                _modules_note(_imported(status, root, env)),
            )
            _row(
                "aiodirac status, on a terminal (rich table)",
                _runs([cli, "status", job_id], root, env, args.runs, tty=True),
            )
            _row("DIRAC: dirac-wms-job-status needs a server", None, "(no local equivalent)")
        finally:
            subprocess.run([cli, "-q", "local", "agent", "stop"], env=env, cwd=root, check=False)


if __name__ == "__main__":
    main()
