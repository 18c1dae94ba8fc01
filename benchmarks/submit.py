"""Bulk submission through network latency: aiodirac vs DiracX's official client vs the server.

Starts DiracX as production runs it (``--server prod``, the default: MariaDB, ``--workers``
uvicorn workers, moto, nginx TLS; ``--server test`` for the one-process test app; ``--dx-env``
for a running one) and a TCP pipe that adds ``--latency`` seconds (default 0.1) to every round
trip, then, for ``--jobs`` jobs (default 10,000) per run, in ``--rounds`` interleaved rounds
(each starting with the next run):

* **ceiling**: the server's own limit for aiodirac's exactly-once work: the same campaign
  (the same jobs, journal, two-phase protocol) sent straight to the server, no latency, no rate
  limit, ``--ceiling-in-flight`` requests in flight (default 8: with 16, this server on 2 cores
  did less, at more CPU per job).
* **plain ceiling**: the server's limit for the official client's work: a bare httpx flood of
  the same jobs' JDLs, 20 per request, ``--ceiling-in-flight`` in flight, no latency.
* **official**: DiracX's official client as its users write it, through the latency: the same
  jobs, one JDL each (the parametric chunks expanded), ``create_sandbox`` once, then
  ``jobs.submit_jdl_jobs`` with 20 JDLs per request, one request after another. Plain
  submission: a lost answer leaves jobs it cannot account for.
* **aiodirac**: ``AsyncDirac(backend, journal=...).submit(job)`` with its defaults, through the
  latency: chunks of 20 created unconfirmed, journaled, confirmed in bulk (exactly once).
* **aiodirac, no rate limit** (``--unlimited``): the same with the rate limit lifted.

``--only NAME,...`` runs only these (e.g. ``--only ceiling,aiodirac``).

Each run prints its jobs/s, the server's CPU per job (uvicorn workers + MariaDB, from /proc),
its client's CPU per 1,000 jobs, and the ceiling of its work beside it. Then medians, ranges
and the targets of issue 16:

* aiodirac >= 0.9 x the exactly-once ceiling, and >= 3x the official client;
* server CPU per job of aiodirac's exactly-once submission <= 1.3x the official client's;
* client CPU per 1,000 jobs <= 0.8x the official client's.

    .venv/bin/python benchmarks/submit.py [--jobs 10000] [--rounds 3] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _latency import latency_pipe
from _server import CpuSample, Server, add_server_arguments, running_server, stamp

from aiodirac import AsyncDirac, Job, Limits
from aiodirac._engine.submit._model import SubmitConfig
from aiodirac._job._chunking import _chunks_of
from aiodirac._job._jdl import render_jdl
from aiodirac._job._spec import SubmitChunk
from aiodirac.backends.diracx import DiracXBackend

PFN = "@PFN@"
OFFICIAL = Path(__file__).with_name("_official_submit.py")


@dataclass
class Run:
    """One measured run: wall and client CPU seconds, jobs, and the server's CPU meanwhile."""

    wall: float
    cpu: float
    jobs: int
    server: CpuSample = field(default_factory=lambda: CpuSample({}))

    @property
    def rate(self) -> float:
        return self.jobs / self.wall


# ------------------------------------------------------------------------------- the jobs
def campaign_job(tag: str, total: int, workdir: Path) -> Job:
    """The campaign both clients submit: one parametric DIRAC ``Job`` of ``total`` jobs."""
    script = workdir / "run.sh"
    script.write_text('#!/bin/sh\necho "$@"\n')
    job = Job()
    job.setExecutable(str(script), arguments="value %(n)s")
    job.setName(f"{tag}-%n")
    job.setCPUTime(500)
    job.setParameterSequence("n", [str(i) for i in range(total)])
    return job


def _expand(value: object, values: dict[str, str]) -> Any:
    if isinstance(value, tuple):
        return tuple(_expand(v, values) for v in value)
    if isinstance(value, str):
        for name, sub in values.items():
            value = value.replace(f"%({name})s", sub)
    return value


def expanded(chunk: SubmitChunk, group: str) -> list[str]:
    """The chunk's jobs as the official client's users write them: one JDL each, its input
    sandbox the PFN of ``create_sandbox`` (``@PFN@`` here), the campaign's JobGroup."""
    lists = {
        k.removeprefix("Parameters."): v
        for k, v in chunk.attributes.items()
        if k.startswith("Parameters.") and isinstance(v, tuple)
    }
    base = {k: v for k, v in chunk.attributes.items() if not k.startswith("Parameters")}
    base.update(InputSandbox=(PFN,), JobGroup=group)
    jdls = []
    for row in range(len(chunk.jobs)):
        values = {name: str(items[row]) for name, items in lists.items()}
        attributes = {k: _expand(v, values) for k, v in base.items() if k not in lists}
        jdls.append(render_jdl(attributes))
    return jdls


async def official_jdls(job: Job, group: str) -> tuple[list[str], list[str]]:
    """Every job's own JDL, and the local files of the (shared) input sandbox."""
    jdls: list[str] = []
    files: list[str] = []
    async for chunk in _chunks_of(job, DiracXBackend.capabilities.max_jobs_per_submit):
        jdls += expanded(chunk, group)
        files = list(chunk.local_sandbox)
    return jdls, files


# ------------------------------------------------------------------------------- the runs
async def run_aiodirac(
    server: Server,
    url: str,
    job: Job,
    total: int,
    journal: Path,
    limits: Limits,
    config: SubmitConfig | None = None,
) -> Run:
    """``AsyncDirac(...).submit(job)``: what an aiodirac user writes for a campaign."""
    backend = DiracXBackend(url, credentials_path=server.credentials, verify=server.verify)
    async with (
        backend,
        AsyncDirac(backend, journal=journal, limits=limits, submit_config=config) as dirac,
    ):
        await backend.status([1])  # connection + token: not part of the campaign
        before = server.cpu()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        ids = await dirac.submit(job)
        run = Run(time.perf_counter() - wall0, time.process_time() - cpu0, len(ids))
        run.server = server.cpu() - before
        states = await backend.summary(ids)
    assert len(set(ids)) == len(ids) == total, (len(ids), total)
    assert {str(s) for s in states} == {"Received"}, states
    return run


async def run_plain_flood(server: Server, jdls: list[str], in_flight: int) -> Run:
    """A bare httpx flood of the official client's requests (no sandbox: it exists already)."""
    pfn = await _a_pfn(server)
    bodies = [[j.replace(PFN, pfn) for j in jdls[i : i + 20]] for i in range(0, len(jdls), 20)]
    token = json.loads(Path(server.credentials).read_text())["access_token"]
    created = 0
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
        verify=server.verify,
        limits=httpx.Limits(max_connections=in_flight),
    ) as client:
        (await client.get("/api/auth/userinfo")).raise_for_status()  # connection warm
        limiter = anyio.CapacityLimiter(in_flight)

        async def one(body: list[str]) -> None:
            nonlocal created
            async with limiter:
                response = await client.post("/api/jobs/jdl", json=body)
                response.raise_for_status()
                created += len(response.json())

        before = server.cpu()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        async with anyio.create_task_group() as tg:
            for body in bodies:
                tg.start_soon(one, body)
        run = Run(time.perf_counter() - wall0, time.process_time() - cpu0, created)
        run.server = server.cpu() - before
    assert created == len(jdls), created
    return run


async def _a_pfn(server: Server) -> str:
    """The PFN of a small sandbox (the flood's JDLs need one, as the official's have)."""
    from aiodirac.backends.diracx._sandbox import build_input_sandbox

    async with DiracXBackend(
        server.url, credentials_path=server.credentials, verify=server.verify
    ) as backend:
        archive = build_input_sandbox((), "<Workflow/>")
        return await backend.upload_sandbox(archive)


def run_official(server: Server, url: str, jdls: list[str], files: list[str], tmp: Path) -> Run:
    jdl_file = tmp / f"official-{time.time_ns()}.json"
    jdl_file.write_text(json.dumps(jdls))
    env = server.client_env()
    env["DIRACX_URL"] = url
    before = server.cpu()
    out = subprocess.run(
        [server.python, str(OFFICIAL), str(jdl_file), PFN, *files],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    used = server.cpu() - before
    jdl_file.unlink()
    if out.returncode != 0:
        raise RuntimeError(f"official client failed:\n{out.stderr[-3000:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["jobs"] == len(jdls), figures
    return Run(figures["wall"], figures["cpu"], figures["jobs"], used)


# ------------------------------------------------------------------------------- report
def _median(runs: list[Run], key: Callable[[Run], float]) -> tuple[float, float, float]:
    values = [key(r) for r in runs]
    return statistics.median(values), min(values), max(values)


def _fmt(triple: tuple[float, float, float], spec: str) -> str:
    med, low, high = triple
    return f"{med:{spec}} ({low:{spec}}-{high:{spec}})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--ceiling-in-flight",
        type=int,
        default=8,
        help="requests in flight of the ceilings (16 gave this 2-worker server less than 8)",
    )
    parser.add_argument(
        "--unlimited", action="store_true", help="also run aiodirac with no rate limit"
    )
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--only", help="comma-separated runs to do (ceiling, plain ceiling, ...)")
    add_server_arguments(parser)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aiodirac-bench-submit-"))
    defaults = Limits()
    unlimited = {"rate": 10_000.0, "burst": 10_000}
    ceiling_limits = Limits(max_in_flight=args.ceiling_in_flight, **unlimited)
    results: dict[str, list[Run]] = {}
    with running_server(args, tmp) as server, latency_pipe(server.url, args.latency) as slow:
        print(f"DiracX: {server.description}; latency {1000 * args.latency:.0f} ms via {slow}")
        print(f"started {stamp()}")

        def aiodirac(url: str, limits: Limits) -> Callable[[str], Run]:
            def go(tag: str) -> Run:
                workdir = tmp / tag
                workdir.mkdir()
                job = campaign_job(tag, args.jobs, workdir)
                return anyio.run(
                    run_aiodirac, server, url, job, args.jobs, workdir / "journal.db", limits
                )

            return go

        def official(tag: str) -> Run:
            workdir = tmp / tag
            workdir.mkdir()
            job = campaign_job(tag, args.jobs, workdir)
            jdls, files = anyio.run(official_jdls, job, f"{tag}-official"[:32])
            return run_official(server, slow, jdls, files, tmp)

        def plain(tag: str) -> Run:
            workdir = tmp / tag
            workdir.mkdir()
            job = campaign_job(tag, args.jobs, workdir)
            jdls, _ = anyio.run(official_jdls, job, f"{tag}-plain"[:32])
            return anyio.run(run_plain_flood, server, jdls, args.ceiling_in_flight)

        runners: dict[str, Callable[[str], Run]] = {
            "ceiling": aiodirac(server.url, ceiling_limits),
            "plain ceiling": plain,
            "aiodirac": aiodirac(slow, defaults),
        }
        if not args.skip_official:
            runners["official"] = official
        if args.unlimited:
            runners["aiodirac, no rate limit"] = aiodirac(
                slow, Limits(max_in_flight=defaults.max_in_flight, **unlimited)
            )
        if args.only:
            runners = {n: r for n, r in runners.items() if n in args.only.split(",")}
        results = {name: [] for name in runners}
        names = list(runners)
        for round_no in range(args.rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                tag = f"b{round_no}{names.index(name)}x{time.time_ns() % 10**6}"
                run = runners[name](tag)
                results[name].append(run)
                print(
                    f"  round {round_no + 1} {name:24s} {run.rate:7.1f} jobs/s "
                    f"({run.jobs} in {run.wall:6.2f} s)  client CPU "
                    f"{1000 * run.cpu / run.jobs:5.3f} s/1000 jobs  server CPU "
                    f"{run.server.per_job(run.jobs)}",
                    flush=True,
                )
    print(f"ended {stamp()}")
    print_summary(args, results, defaults)
    return 0


def print_summary(
    args: argparse.Namespace, results: dict[str, list[Run]], defaults: Limits
) -> None:
    print(
        f"\n{args.jobs} jobs per run, {args.rounds} round(s); median (min-max); "
        f"latency {1000 * args.latency:.0f} ms except for the ceilings"
    )
    rate = {n: _median(r, lambda x: x.rate) for n, r in results.items()}
    server = {n: _median(r, lambda x: 1000 * x.server.total / x.jobs) for n, r in results.items()}
    client = {n: _median(r, lambda x: 1000 * x.cpu / x.jobs) for n, r in results.items()}
    ceilings = {"official": "plain ceiling"}
    for name in results:
        beside = ceilings.get(name, "ceiling")
        note = (
            f"   [its ceiling, {beside}: {rate[beside][0]:.0f} jobs/s]"
            if beside in rate and beside != name and name not in ("plain ceiling",)
            else ""
        )
        print(
            f"  {name:24s} {_fmt(rate[name], '7.1f')} jobs/s   server CPU "
            f"{_fmt(server[name], '4.2f')} ms/job   client CPU {_fmt(client[name], '5.3f')} "
            f"s/1000 jobs{note}"
        )
    if "aiodirac" not in rate:
        return
    ours = rate["aiodirac"][0]
    verdicts = []
    if "ceiling" in rate:
        verdicts.append(
            (
                f"aiodirac / exactly-once ceiling = {ours / rate['ceiling'][0]:.2f} (>= 0.9)",
                ours >= 0.9 * rate["ceiling"][0],
            )
        )
    if "official" in results:
        off = rate["official"][0]
        verdicts += [
            (f"aiodirac / official = {ours / off:.2f}x (>= 3x)", ours >= 3 * off),
            (
                (
                    f"server CPU per job, aiodirac / official = "
                    f"{server['aiodirac'][0] / server['official'][0]:.2f}x (<= 1.3x)"
                ),
                server["aiodirac"][0] <= 1.3 * server["official"][0],
            ),
            (
                (
                    f"client CPU per 1,000 jobs, aiodirac / official = "
                    f"{client['aiodirac'][0] / client['official'][0]:.2f}x (<= 0.8x)"
                ),
                client["aiodirac"][0] <= 0.8 * client["official"][0],
            ),
        ]
    limit = defaults.rate * 20
    print(
        f"  (aiodirac's defaults: {defaults.max_in_flight} in flight, {defaults.rate:g} requests/s "
        f"(burst {defaults.burst}): at most {limit:.0f} jobs/s if every request were a submission)"
    )
    print()
    for text, ok in verdicts:
        print(f"  [{'MET' if ok else 'MISSED'}] {text}")


if __name__ == "__main__":
    sys.exit(main())
