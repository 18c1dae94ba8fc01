"""Benchmark of a whole campaign: submit, follow, retry, journal, resume, report.

The campaign of issue 15: one parametric job in which 5% of the jobs fail once (Failed,
"Application Finished With Errors") and are retried by the default failure policy (reschedule,
here with no delay), run by :class:`aiodirac.Campaign` to its end, then resumed from its journal
(a second run on the finished journal: read, state rebuilt, nothing left to do) and reported
(:func:`aiodirac.read_report_data` + :func:`aiodirac.write_report`).

Three backends, each run in a fresh process per round (so that peak RSS is the campaign's own):

1. ``memory``: 100,000 jobs on :class:`aiodirac.testing.SimulatedGrid` (the in-memory backend,
   whose jobs move one status per poll and whose answers cost next to nothing), no rate limit, no
   downloads: the figures are aiodirac's own. Its targets: client CPU <= 0.3 ms per job for the
   whole life, peak RSS <= 300 MiB, journal <= 1 KiB per job, resume <= 5 s, report <= 10 s.
2. ``local``: 1,000 jobs on the embedded local backend: real processes (a shell script that fails
   the first time for every 20th job), outputs downloaded into ``<dest>/<job id>/``. Client CPU
   is this process's only (the local agent runs the jobs in its own).
3. ``diracx``: 1,000 jobs on a real local DiracX (the development server of
   ``scripts/diracx.sh``, one process on SQLite, started here unless ``--diracx-env`` names a
   running one), whose statuses a grid process moves (the test pilot's status updates: Checking
   -> ... -> Running -> Done, or Failed the first time for every 20th job); no outputs (the
   statuses are set, nothing runs), so no downloads.

Figures are printed per round and as ranges, with the targets beside them. The machine is shared:
the load average is printed with them.

Usage::

    .venv/bin/python benchmarks/campaign.py                         # all three, 3 rounds
    .venv/bin/python benchmarks/campaign.py --only memory --rounds 3 --jobs 100000
    .venv/bin/python benchmarks/campaign.py --only diracx --diracx-env /tmp/dx/env.sh
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
FAIL_EVERY = 20  # 5% of the jobs fail once

FLAKY = f"""#!/bin/sh
# fails the first time it runs for every {FAIL_EVERY}th job
[ $(( $2 % {FAIL_EVERY} )) -eq 0 ] || {{ echo "n=$2"; exit 0; }}
[ -e "$1/$2" ] && {{ echo "n=$2 again"; exit 0; }}
touch "$1/$2"; exit 1
"""

TARGETS = {
    "cpu_ms_per_job": 0.3,
    "peak_rss_mib": 300.0,
    "journal_bytes_per_job": 1024.0,
    "resume_s": 5.0,
    "report_s": 10.0,
}


# -- the measured processes ----------------------------------------------------------------------


def _job(n: int, script: str | None = None, marks: str | None = None) -> Any:
    from aiodirac import Job

    job = Job()
    job.setName("bench-%n")
    if script is None:
        job.setExecutable("/bin/true", arguments="%(n)s")
    else:
        job.setExecutable(script, arguments=f"{marks} %(n)s")
    job.setParameterSequence("n", [str(i) for i in range(n)])
    return job


def _payload(kind: str, root: Path) -> tuple[str | None, str | None]:
    """The flaky script and its marker folder (local jobs run it; the others run nothing)."""
    if kind == "local":
        return str(root / "flaky.sh"), str(root / "marks")
    return None, None


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _journal_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


async def _client(kind: str, settings: dict[str, Any]) -> Any:
    from aiodirac import AsyncDirac, Limits, TrackConfig
    from aiodirac.testing import SimulatedGrid

    if kind == "memory":
        grid = SimulatedGrid(fail_once=range(0, settings["jobs"], FAIL_EVERY), light=True)
        # No rate limit and no pause between polls: the grid answers at once.
        return AsyncDirac(
            grid,
            limits=Limits(rate=1e9, burst=1_000_000, max_in_flight=8),
            track_config=TrackConfig(min_interval=0, max_interval=0),
        )
    if kind == "local":
        return AsyncDirac(
            "local", home=settings["home"], track_config=TrackConfig(min_interval=0.2)
        )
    return AsyncDirac(
        url=settings["url"], track_config=TrackConfig(min_interval=0.5, max_interval=2.0)
    )


async def run_campaign(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One campaign from start to end; its figures (in this process)."""
    from aiodirac import FailurePolicy

    root = Path(settings["root"])
    script, marks = _payload(kind, root)
    policy = FailurePolicy(delay=0, max_failed_fraction=1.0)
    dest = root / "out" if kind == "local" else None
    n = settings["jobs"]
    c0, w0 = time.process_time(), time.perf_counter()
    async with await _client(kind, settings) as dirac:
        campaign = dirac.campaign(
            _job(n, script, marks), journal=root / "c.db", dest=dest, policy=policy
        )
        progress = await campaign.run()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {
        "jobs": n,
        "outcome": progress.outcome,
        "retries": progress.retries,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_ms_per_job": 1000 * cpu / n,
        "peak_rss_mib": _peak_rss_mib(),
        "journal_bytes_per_job": _journal_bytes(root / "c.db") / n,
    }


async def resume_and_report(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The finished campaign run again from its journal, then its report; their times."""
    from aiodirac import FailurePolicy, read_report_data, write_report

    root = Path(settings["root"])
    n = settings["jobs"]
    dest = root / "out" if kind == "local" else None
    script, marks = _payload(kind, root)
    job = _job(n, script, marks)  # the user's own work, before the resume
    c0, w0 = time.process_time(), time.perf_counter()
    async with await _client(kind, settings) as dirac:
        campaign = dirac.campaign(
            job, journal=root / "c.db", dest=dest, policy=FailurePolicy(delay=0)
        )
        progress = await campaign.run()
    resume, resume_cpu = time.perf_counter() - w0, time.process_time() - c0
    c0, w0 = time.process_time(), time.perf_counter()
    data = read_report_data(root / "c.db")
    read, read_cpu = time.perf_counter() - w0, time.process_time() - c0
    write_report(data, root / "report.html")
    report, report_cpu = time.perf_counter() - w0, time.process_time() - c0
    return {
        "resume_outcome": progress.outcome,
        "resume_s": resume,
        "resume_cpu_s": resume_cpu,
        "report_read_s": read,
        "report_read_cpu_s": read_cpu,
        "report_s": report,
        "report_cpu_s": report_cpu,
        "report_bytes": (root / "report.html").stat().st_size,
        "transitions": len(data.transitions),
    }


async def play_the_grid(env_file: str) -> None:
    """Move the owner's waiting DiracX jobs to Done, or Failed the first time for every 20th."""
    from aiodirac.testing import DiracXTestPilot

    path = (
        ("Checking", "JobPath"),
        ("Waiting", "Pilot Agent Submission"),
        ("Matched", "Assigned"),
        ("Running", "Application"),
        ("Completing", "Uploading Output Sandbox"),
    )
    failed: set[tuple[str, str]] = set()
    async with DiracXTestPilot.from_env_file(env_file, workdir=tempfile.mkdtemp()) as pilot:
        backend = pilot.backend
        while True:
            ids = await pilot.waiting_jobs()
            if not ids:
                await anyio.sleep(0.5)  # a grid's polling interval
                continue
            # A job is known by its campaign (JobGroup) and name: a resubmission is the same.
            names = {
                j: (a.job_group, a.job_name) for j, a in (await backend.attributes(ids)).items()
            }
            sequences: dict[int, list[Any]] = {}
            for job_id in ids:
                name = names.get(job_id, ("", ""))
                index = int(name[1].rpartition("-")[2] or 1)
                if index % FAIL_EVERY == 0 and name not in failed:
                    failed.add(name)
                    end = ("Failed", "Application Finished With Errors", "Exit code 1")
                else:
                    end = ("Done", "Execution Complete", "Application Finished Successfully")
                sequences[job_id] = [*path, end]
            await pilot.set_status(sequences, check=False)


def child(argv: Sequence[str]) -> int:
    """Run one measured step in this (fresh) process; print its figures as one JSON line."""
    step, kind, raw = argv
    settings = json.loads(raw)
    if step == "grid":
        anyio.run(play_the_grid, settings["env_file"])
        return 0
    work = run_campaign if step == "run" else resume_and_report
    figures = anyio.run(work, kind, settings)
    print(json.dumps(figures), flush=True)
    return 0


# -- the orchestration ---------------------------------------------------------------------------


def _measure(step: str, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", step, kind, json.dumps(settings)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} {step} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_diracx(state: Path) -> dict[str, str]:
    env = dict(os.environ, DX_STATE=str(state), DX_PORT=str(_free_port()))
    env["DX_S3_PORT"] = str(_free_port())
    subprocess.run(["bash", str(ROOT / "scripts" / "diracx.sh"), "start"], env=env, check=True)
    return env


def _stop_diracx(env: dict[str, str]) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "diracx.sh"), "stop"], env=env, check=False)


def _stop_local_agent(home: Path) -> None:
    from aiodirac.backends.local import LocalBackend

    async def stop() -> None:
        async with LocalBackend(home) as backend:
            await backend.stop_agent()

    anyio.run(stop)


def one_round(kind: str, jobs: int, diracx_env: str | None) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"aiodirac-campaign-bench-{kind}-"))
    settings: dict[str, Any] = {"root": str(root), "jobs": jobs}
    grid: subprocess.Popen[bytes] | None = None
    if kind == "local":
        settings["home"] = str(root / "home")
        (root / "flaky.sh").write_text(FLAKY)
        (root / "flaky.sh").chmod(0o755)
        (root / "marks").mkdir()
    elif kind == "diracx":
        assert diracx_env is not None
        from aiodirac.testing import read_env_file

        values = read_env_file(diracx_env)
        settings["url"] = values["DIRACX_URL"]
        os.environ["DIRACX_CREDENTIALS_PATH"] = values["DIRACX_CREDENTIALS_PATH"]
        grid_settings = json.dumps({"env_file": diracx_env})
        grid = subprocess.Popen(
            [sys.executable, __file__, "--child", "grid", kind, grid_settings],
            stdout=subprocess.DEVNULL,
        )
    try:
        figures = _measure("run", kind, settings)
    finally:
        if grid is not None:
            grid.send_signal(signal.SIGTERM)
            grid.wait(timeout=30)
    figures.update(_measure("resume", kind, settings))
    if kind == "local":
        _stop_local_agent(root / "home")
    return figures


def _range(values: list[float], digits: int) -> str:
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if low == high else f"{low:.{digits}f}-{high:.{digits}f}"


def report(kind: str, rounds: list[dict[str, Any]]) -> None:
    jobs = rounds[0]["jobs"]
    print(f"\n== campaign, {jobs:,} jobs on {kind}, 5% failing once (rescheduled) ==")
    print(f"  {'figure':<36} {'rounds':<26} target (100,000 jobs, memory)")
    rows = [
        ("client CPU per job, whole life (ms)", "cpu_ms_per_job", 3),
        ("client CPU, whole life (s)", "cpu_s", 1),
        ("wall time, whole life (s)", "wall_s", 1),
        ("peak RSS (MiB)", "peak_rss_mib", 0),
        ("journal per job (bytes)", "journal_bytes_per_job", 0),
        ("resume from the journal, wall (s)", "resume_s", 2),
        ("resume from the journal, CPU (s)", "resume_cpu_s", 2),
        ("report: read the journal, wall (s)", "report_read_s", 2),
        ("report: read the journal, CPU (s)", "report_read_cpu_s", 2),
        ("report: read + write HTML, wall (s)", "report_s", 2),
        ("report: read + write HTML, CPU (s)", "report_cpu_s", 2),
    ]
    for label, key, digits in rows:
        target = TARGETS.get(key.replace("_cpu", ""))
        shown = f"<= {target:g}" if target is not None and kind == "memory" else ""
        print(f"  {label:<36} {_range([r[key] for r in rounds], digits):<26} {shown}")
    outcomes = sorted({r["outcome"] for r in rounds} | {r["resume_outcome"] for r in rounds})
    retries = sorted({r["retries"] for r in rounds})
    print(f"  outcome: {', '.join(outcomes)}; retries per round: {retries}")
    print(f"  status changes in the report: {rounds[0]['transitions']:,}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        return child(args[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["memory", "local", "diracx"], action="append")
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs of the memory run")
    parser.add_argument("--local-jobs", type=int, default=1_000)
    parser.add_argument("--diracx-jobs", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--diracx-env", help="env.sh of a running DiracX (default: start one)")
    options = parser.parse_args(args)
    kinds = options.only or ["memory", "local", "diracx"]
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores shared with other work)")
    started: dict[str, str] | None = None
    env_file = options.diracx_env
    try:
        if "diracx" in kinds and env_file is None:
            state = Path(tempfile.mkdtemp(prefix="aiodirac-campaign-bench-dx-"))
            started = _start_diracx(state)
            env_file = str(state / "env.sh")
        for kind in kinds:
            jobs = {"memory": options.jobs, "local": options.local_jobs}.get(
                kind, options.diracx_jobs
            )
            rounds = []
            for number in range(options.rounds):
                figures = one_round(kind, jobs, env_file)
                print(f"  {kind} round {number + 1}: {json.dumps(figures)}", flush=True)
                rounds.append(figures)
            report(kind, rounds)
    finally:
        if started is not None:
            _stop_diracx(started)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
