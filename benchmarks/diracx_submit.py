"""Submit 1,000 jobs to a local DiracX with aiodirac's backend and with DiracX's official client.

The benchmark starts its own DiracX 0.7.0 (by default as production runs it: MariaDB, uvicorn
workers, nginx TLS; ``--server test`` for the one-process test app, ``--dx-env`` for a running
one; see ``_server.py``), then, alternately for ``--rounds`` rounds, with no latency:

* **aiodirac AsyncDirac.submit**: what users call: ``AsyncDirac(backend).submit(job)`` with its
  defaults, one parametric ``Job`` of ``--jobs`` jobs (the same three steps and attributes), through
  the Submitter (chunks of 20, pipelined, rate limited, confirmed in bulk). The target is judged
  on this one;
* **aiodirac backend** (how its protocol costs split): ``DiracXBackend.submit`` of 50 parametric chunks of 20 jobs (the input sandbox,
  jobDescription.xml, uploaded once), each confirmed (``Submitting`` -> ``Received``): sequential;
  sequential with one confirmation per 5 chunks (100 IDs); ``--in-flight`` chunks at a time,
  each confirmed; and ``--in-flight`` chunks at a time with confirmations of 100 IDs or more;
* **official**: in a subprocess of the DiracX venv, ``AsyncDiracClient().jobs.submit_jdl_jobs``
  with 20 JDLs per request, as its users write it (``create_sandbox`` once, its PFN in every JDL);
* the server's ceilings for the same work: **plain ceiling**, a bare httpx flood of the official
  client's requests (16 in flight), beside the official client; **exactly-once ceiling**,
  aiodirac with no rate limit and 16 requests in flight, beside aiodirac's runs.

Each side measures its own process: wall time of the submission loop and the CPU time the
client process used (``time.process_time``, all threads). The server runs in other processes:
its CPU (uvicorn workers + MariaDB) per 1,000 jobs is printed beside each run.

    .venv/bin/python benchmarks/diracx_submit.py [--jobs 1000] [--rounds 2] [--in-flight 2]

Target (issue 16): aiodirac's client CPU per 1,000 jobs <= 0.8x the official client's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, add_server_arguments, running_server, stamp
from submit import PFN, run_plain_flood

from aiodirac import AsyncDirac, DiracError, Job, Limits
from aiodirac._job._jdl import render_jdl
from aiodirac._job._spec import ConcreteJob, JDLValue, Step, SubmitChunk
from aiodirac._job._workflow import render_workflow
from aiodirac.backends.diracx import DiracXBackend

STEPS = (
    Step(1, "/bin/echo", "hello", "Script1_echo.log"),
    Step(2, "/bin/hostname", "", "Script2_hostname.log"),
    Step(3, "/bin/echo", "hello again", "Script3_echo.log"),
)
WORKFLOW = render_workflow("bench", [], STEPS)


USER = "aiodirac AsyncDirac.submit"
CEILING = "exactly-once ceiling"
PLAIN = "plain ceiling"


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
        attributes["InputSandbox"] = (PFN,)
        jdls.append(render_jdl(attributes))
    return jdls


async def run_aiodirac(
    server: Server, total: int, round_no: int, in_flight: int, confirm_every: int = 1
) -> dict[str, float]:
    work = chunks(total, round_no)
    async with DiracXBackend(
        server.url, credentials_path=server.credentials, verify=server.verify
    ) as backend:
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


async def run_async_dirac(
    server: Server, total: int, round_no: int, limits: Limits | None = None
) -> dict:
    """``AsyncDirac.submit`` with its defaults: what an aiodirac user writes."""
    job = Job()
    for step in STEPS:
        job.setExecutable(step.executable, arguments=step.arguments)
    job.setName(f"bench{round_no}-%n")
    job.setJobGroup(f"bench-{round_no}")
    job.setCPUTime(500)
    job.setParameterSequence("n", [str(i) for i in range(total)])
    async with (
        DiracXBackend(
            server.url, credentials_path=server.credentials, verify=server.verify
        ) as backend,
        AsyncDirac(backend, limits=limits) as dirac,
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


def run_official(server: Server, total: int, round_no: int, tmp: Path) -> dict:
    jdl_file = tmp / f"jdls-{round_no}.json"
    jdl_file.write_text(json.dumps(official_jdls(total, round_no)))
    workflow = tmp / f"round{round_no}" / "jobDescription.xml"
    workflow.parent.mkdir()
    workflow.write_text(WORKFLOW)
    out = subprocess.run(
        [server.python, str(OFFICIAL), str(jdl_file), PFN, str(workflow)],
        env=server.client_env(),
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
    add_server_arguments(parser)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aiodirac-bench-"))
    unlimited = Limits(max_in_flight=16, rate=10_000, burst=10_000)
    names = [
        USER,
        "aiodirac sequential",
        "aiodirac seq, confirm/100",
        f"aiodirac {args.in_flight} in flight",
        f"aiodirac {args.in_flight} in flight, c/100",
        "official client",
        CEILING,
        PLAIN,
    ]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        with running_server(args, tmp) as server:
            print(f"DiracX: {server.description}")
            print(f"started {stamp()}")
            round_no = 0
            for _ in range(args.rounds):
                for name in names:
                    round_no += 1
                    before = server.cpu()
                    try:
                        result = run_one(name, server, args, round_no, tmp, unlimited)
                    # a stalled server must not hide the other figures
                    except (DiracError, RuntimeError, ExceptionGroup) as exc:
                        print(f"  round {round_no:2d} {name:30s} FAILED: {exc}", flush=True)
                        continue
                    # the server's CPU over the whole run (its few set-up requests included)
                    used = server.cpu() - before
                    result["server"] = used.total
                    results[name].append(result)
                    print(
                        f"  round {round_no:2d} {name:30s} wall {result['wall']:6.2f} s  "
                        f"client CPU {result['cpu']:5.2f} s  server CPU "
                        f"{used.per_job(int(result['jobs']))}  ({int(result['jobs'])} jobs)",
                        flush=True,
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ended {stamp()}")
    return report(args, results)


def run_one(
    name: str,
    server: Server,
    args: argparse.Namespace,
    round_no: int,
    tmp: Path,
    unlimited: Limits,
) -> dict[str, float]:
    if name == "official client":
        return run_official(server, args.jobs, round_no, tmp)
    if name == USER:
        return anyio.run(run_async_dirac, server, args.jobs, round_no)
    if name == CEILING:
        return anyio.run(run_async_dirac, server, args.jobs, round_no, unlimited)
    if name == PLAIN:
        run = anyio.run(run_plain_flood, server, official_jdls(args.jobs, round_no), 16)
        return {"wall": run.wall, "cpu": run.cpu, "jobs": run.jobs}
    flight = args.in_flight if "in flight" in name else 1
    every = 5 if "/100" in name else 1
    return anyio.run(run_aiodirac, server, args.jobs, round_no, flight, every)


def report(args: argparse.Namespace, results: dict[str, list[dict[str, float]]]) -> int:
    scale = 1000 / args.jobs
    print(f"\n{args.jobs} jobs per run, {args.rounds} rounds; per 1,000 jobs, median (range):")
    figures = {
        name: {
            key: (
                statistics.median(r[key] for r in runs) * scale,
                min(r[key] for r in runs) * scale,
                max(r[key] for r in runs) * scale,
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
        (wall, low, high), (cpu, cpu_low, cpu_high) = fig["wall"], fig["cpu"]
        ceiling = PLAIN if name == "official client" else CEILING
        beside = (
            f"  [ceiling: {figures[ceiling]['wall'][0]:5.2f} s]"
            if ceiling in figures and name not in (CEILING, PLAIN)
            else ""
        )
        print(
            f"  {name:30s} wall {wall:5.2f} s ({low:5.2f}-{high:5.2f})  client CPU {cpu:5.3f} s "
            f"({cpu_low:5.3f}-{cpu_high:5.3f})  server CPU {fig['server'][0]:5.2f} s  "
            f"CPU {cpu / official['cpu'][0]:4.2f}x, wall {wall / official['wall'][0]:4.2f}x "
            f"official{beside}"
        )
    ours = figures.get(USER)
    if ours is not None:
        ratio = ours["cpu"][0] / official["cpu"][0]
        print(
            f"\n  [{'MET' if ratio <= 0.8 else 'MISSED'}] {USER}: client CPU per 1,000 jobs "
            f"{ratio:.2f}x the official client's (<= 0.8x)"
        )
        print(
            f"  server CPU per 1,000 jobs: aiodirac {ours['server'][0]:.2f} s (exactly once: "
            f"created unconfirmed, then confirmed), official {official['server'][0]:.2f} s "
            f"(plain submission): {ours['server'][0] / official['server'][0]:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
