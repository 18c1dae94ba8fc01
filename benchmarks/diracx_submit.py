"""Submit 1,000 jobs to a local DiracX with aiodirac's backend and with DiracX's official client.

The benchmark starts its own DiracX 0.7.0 (``scripts/diracx.sh``, free ports, a temporary state
folder), then, alternately for ``--rounds`` rounds:

* **aiodirac AsyncDirac.submit**: what users call: ``AsyncDirac(backend).submit(job)`` with its
  defaults, one parametric ``Job`` of ``--jobs`` jobs (the same three steps and attributes), through
  the Submitter (chunks of 20, pipelined, rate limited, confirmed in bulk). The target is judged
  on this one;
* **aiodirac backend** (how its protocol costs split): ``DiracXBackend.submit`` of 50 parametric chunks of 20 jobs (the input sandbox,
  jobDescription.xml, uploaded once), each confirmed (``Submitting`` -> ``Received``): sequential;
  sequential with one confirmation per 5 chunks (100 IDs); ``--in-flight`` chunks at a time,
  each confirmed; and ``--in-flight`` chunks at a time with confirmations of 100 IDs or more;
* **official**: in a subprocess of the DiracX venv, ``AsyncDiracClient().jobs.submit_jdl_jobs``
  with 20 JDLs per request, as its users write it (``create_sandbox`` once, its PFN in every JDL).

Each side measures its own process: wall time of the submission loop and the CPU time the
client process used (``time.process_time``, all threads). The server runs in other processes.

    .venv/bin/python benchmarks/diracx_submit.py [--jobs 1000] [--rounds 2] [--in-flight 2]

Target: aiodirac's client CPU per 1,000 jobs <= 0.9x the official client's, wall no slower.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from aiodirac import AsyncDirac, DiracError, Job
from aiodirac._job._jdl import render_jdl
from aiodirac._job._spec import ConcreteJob, JDLValue, Step, SubmitChunk
from aiodirac._job._workflow import render_workflow
from aiodirac.backends.diracx import DiracXBackend
from aiodirac.testing import read_env_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import server_cpu

STEPS = (
    Step(1, "/bin/echo", "hello", "Script1_echo.log"),
    Step(2, "/bin/hostname", "", "Script2_hostname.log"),
    Step(3, "/bin/echo", "hello again", "Script3_echo.log"),
)
WORKFLOW = render_workflow("bench", [], STEPS)


USER = "aiodirac AsyncDirac.submit"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _base_attributes(round_no: int) -> dict[str, JDLValue]:
    return {
        "Executable": "dirac-jobexec",
        "Arguments": "jobDescription.xml -o LogLevel=INFO",
        "JobName": f"bench{round_no}-%(n)s",
        "JobGroup": f"bench-{round_no}",
        "CPUTime": 500,
        "StdOutput": "std.out",
        "StdError": "std.err",
        "OutputSandbox": ("std.out", "std.err", "Script1_echo.log", "Script2_hostname.log"),
    }


def chunks(total: int, round_no: int) -> list[SubmitChunk]:
    """The campaign as the job layer hands it to a backend: parametric chunks of 20."""
    out = []
    for start in range(0, total, 20):
        values = tuple(str(i) for i in range(start, min(start + 20, total)))
        attributes = _base_attributes(round_no)
        attributes.update(
            {
                "InputSandbox": ("jobDescription.xml",),
                "Parameters.n": values,
                "Parameters": len(values),
                "n": "%(n)s",
            }
        )
        jobs = tuple(
            ConcreteJob(int(v), {"JobName": f"bench{round_no}-{v}"}, STEPS, {"n": v})
            for v in values
        )
        out.append(SubmitChunk(attributes, WORKFLOW, jobs))
    return out


def official_jdls(total: int, round_no: int) -> list[str]:
    """One JDL per job for the official client (InputSandbox filled in by the subprocess)."""
    jdls = []
    for i in range(total):
        attributes = _base_attributes(round_no)
        attributes["JobName"] = f"bench{round_no}-{i}"
        attributes["InputSandbox"] = ("@PFN@",)
        jdls.append(render_jdl(attributes).replace('"@PFN@"', '"{pfn}"'))
    return jdls


async def run_aiodirac(
    url: str, credentials: str, total: int, round_no: int, in_flight: int, confirm_every: int = 1
) -> dict[str, float]:
    work = chunks(total, round_no)
    async with DiracXBackend(url, credentials_path=credentials) as backend:
        await backend.status([1])  # connection + token: not part of the campaign
        cpu0, wall0 = time.process_time(), time.perf_counter()
        ids: list[int] = []
        if in_flight <= 1:
            pending: list[int] = []
            for number, chunk in enumerate(work, 1):
                pending += await backend.submit(chunk)
                if number % confirm_every == 0 or number == len(work):
                    await backend.confirm(pending)
                    ids += pending
                    pending = []
        else:
            limiter = anyio.CapacityLimiter(in_flight)
            waiting: list[int] = []
            confirming = anyio.Lock()

            async def confirm_waiting() -> None:
                # one confirmation at a time takes every ID submitted meanwhile
                async with confirming:
                    batch = waiting[:]
                    del waiting[:]
                    if batch:
                        await backend.confirm(batch)
                        ids.extend(batch)

            async def one(chunk: SubmitChunk) -> None:
                async with limiter:
                    waiting.extend(await backend.submit(chunk))
                    if len(waiting) >= 20 * confirm_every:
                        await confirm_waiting()

            async with anyio.create_task_group() as group:
                for chunk in work:
                    group.start_soon(one, chunk)
            await confirm_waiting()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        states = await backend.summary(ids)
    assert len(ids) == total, len(ids)
    assert sum(states.values()) == total, states
    assert {str(s) for s in states} == {"Received"}, states
    return {"wall": wall, "cpu": cpu, "jobs": len(ids)}


async def run_async_dirac(url: str, credentials: str, total: int, round_no: int) -> dict:
    """``AsyncDirac.submit`` with its defaults: what an aiodirac user writes."""
    job = Job()
    for step in STEPS:
        job.setExecutable(step.executable, arguments=step.arguments)
    job.setName(f"bench{round_no}-%n")
    job.setJobGroup(f"bench-{round_no}")
    job.setCPUTime(500)
    job.setParameterSequence("n", [str(i) for i in range(total)])
    async with (
        DiracXBackend(url, credentials_path=credentials) as backend,
        AsyncDirac(backend) as dirac,
    ):
        await backend.status([1])  # connection + token: not part of the campaign
        cpu0, wall0 = time.process_time(), time.perf_counter()
        ids = await dirac.submit(job)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        states = await backend.summary(ids)
    assert len(set(ids)) == total, len(ids)
    assert {str(s) for s in states} == {"Received"}, states
    return {"wall": wall, "cpu": cpu, "jobs": len(ids)}


OFFICIAL = Path(__file__).with_name("_official_submit.py")


def run_official(python: str, env: dict[str, str], total: int, round_no: int, tmp: Path) -> dict:
    jdl_file = tmp / f"jdls-{round_no}.json"
    jdl_file.write_text(json.dumps(official_jdls(total, round_no)))
    workflow = tmp / f"round{round_no}" / "jobDescription.xml"
    workflow.parent.mkdir()
    workflow.write_text(WORKFLOW)
    out = subprocess.run(
        [python, str(OFFICIAL), str(jdl_file), str(workflow), "{pfn}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"official client failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=2)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aiodirac-bench-"))
    env = dict(os.environ)
    env.update(DX_STATE=str(tmp / "state"), DX_PORT=str(_free_port()))
    env["DX_S3_PORT"] = str(_free_port())
    script = ROOT / "scripts" / "diracx.sh"
    started = subprocess.run(["bash", str(script), "start"], env=env, check=False)
    if started.returncode != 0:
        print("could not start DiracX", file=sys.stderr)
        return 1
    try:
        values = read_env_file(tmp / "state" / "env.sh")
        url, credentials = values["DIRACX_URL"], values["DIRACX_CREDENTIALS_PATH"]
        client_env = dict(env, DIRACX_URL=url, DIRACX_CREDENTIALS_PATH=credentials)
        python = str(Path(values["DX_VENV"]) / "bin" / "python")
        server_pid = int((tmp / "state" / "uvicorn.pid").read_text())
        results: dict[str, list[dict[str, float]]] = {
            USER: [],
            "aiodirac sequential": [],
            "aiodirac seq, confirm/100": [],
            f"aiodirac {args.in_flight} in flight": [],
            f"aiodirac {args.in_flight} in flight, c/100": [],
            "official client": [],
        }
        round_no = 0
        for _ in range(args.rounds):
            for name, runs in results.items():
                round_no += 1
                server0 = server_cpu(server_pid)
                try:
                    if name == "official client":
                        result = run_official(python, client_env, args.jobs, round_no, tmp)
                    elif name == USER:
                        result = anyio.run(run_async_dirac, url, credentials, args.jobs, round_no)
                    else:
                        flight = args.in_flight if "in flight" in name else 1
                        every = 5 if "/100" in name else 1
                        result = anyio.run(
                            run_aiodirac, url, credentials, args.jobs, round_no, flight, every
                        )
                # a stalled dev server must not hide the other figures
                except (DiracError, RuntimeError, ExceptionGroup) as exc:
                    print(f"  round {round_no:2d} {name:30s} FAILED: {exc}", flush=True)
                    continue
                # the server's CPU over the whole round (its few set-up requests included)
                result["server"] = server_cpu(server_pid) - server0
                runs.append(result)
                print(
                    f"  round {round_no:2d} {name:30s} wall {result['wall']:6.2f} s  "
                    f"client CPU {result['cpu']:5.2f} s  server CPU {result['server']:5.2f} s  "
                    f"({int(result['jobs'])} jobs)",
                    flush=True,
                )
    finally:
        subprocess.run(["bash", str(script), "stop"], env=env, check=False)
        shutil.rmtree(tmp, ignore_errors=True)

    scale = 1000 / args.jobs
    print(f"\n{args.jobs} jobs per run, {args.rounds} rounds; per 1,000 jobs, median (best):")
    figures = {
        name: {
            key: (
                statistics.median(r[key] for r in runs) * scale,
                min(r[key] for r in runs) * scale,
            )
            for key in ("wall", "cpu", "server")
        }
        for name, runs in results.items()
        if runs
    }
    official = figures.get("official client")
    if official is None:
        print("the official client did not complete a run")
        return 1
    for name, fig in figures.items():
        (wall, best_wall), (cpu, best_cpu) = fig["wall"], fig["cpu"]
        print(
            f"  {name:30s} wall {wall:6.2f} s ({best_wall:5.2f})  client CPU {cpu:5.2f} s "
            f"({best_cpu:4.2f})  server CPU {fig['server'][0]:5.2f} s  "
            f"CPU {cpu / official['cpu'][0]:4.2f}x, wall {wall / official['wall'][0]:4.2f}x official"
        )
    ours = figures.get(USER)
    if ours is not None:
        cpu_ok = ours["cpu"][0] <= 0.9 * official["cpu"][0]
        wall_ok = ours["wall"][0] <= official["wall"][0]
        print(
            f"{USER} vs official (medians): client CPU <= 0.9x: "
            f"{'MET' if cpu_ok else 'NOT MET'}; wall no slower: {'MET' if wall_ok else 'NOT MET'}"
        )
        print(
            "  The server runs in one process (one core): its CPU per 1,000 jobs is a floor for the\n"
            f"  wall time. The official client's requests cost it {official['server'][0]:.2f} s; "
            f"aiodirac's {ours['server'][0]:.2f} s,\n"
            "  the difference being mostly the confirmations of the exactly-once protocol, about\n"
            "  0.7-0.9 ms of server CPU per job (half of it a MagicMock DiracX 0.7.0 builds per job\n"
            "  in set_job_statuses), and the contention of concurrent requests on its SQLite."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
