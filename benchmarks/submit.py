"""Bulk submission speed: aiodirac's Submitter vs DiracX's official client vs the server's capacity.

Starts its own DiracX 0.7.0 (``scripts/diracx.sh``: free ports, a temporary state folder; or
use ``--url``/``--credentials`` for a running one) and a :class:`FaultProxy` in a separate
process that adds ``--latency`` seconds (default 0.1) to every request, then, for ``--jobs``
jobs (default 2,000) per run:

1. **capacity**: a bare httpx flood straight to the server (no proxy, no latency): requests of
   20 JDLs, ``--flood`` requests in flight. The server's own limit for plain submissions.
   **capacity2**: the same for the exactly-once protocol: parametric JDLs of 20 (created
   unconfirmed), then their confirmations, 500 IDs per PATCH. The server's limit for the work
   aiodirac asks of it (confirming costs server time that plain submissions do not pay).
   **capacity3**: aiodirac's own jobs (the DIRAC ``Job``'s JDL, with its input sandbox, two-phase)
   sent by aiodirac straight to the server, no proxy and no rate limit (1,000 req/s, burst 100):
   the most this server does of the exact work aiodirac's runs ask of it, whatever the client.
2. **official**: DiracX's official client as its users write it, in a subprocess of the DiracX
   venv, through the proxy: ``create_sandbox`` once, then ``jobs.submit_jdl_jobs`` with 20 JDLs
   per request, one request after another.
3. **aiodirac**: ``Submitter(DiracXBackend(proxy), SubmitConfig())`` with its defaults on one
   parametric ``Job``: chunks of 20, two-phase (created unconfirmed, journaled, confirmed),
   through the proxy. The clock stops when ``submit`` returns, every job confirmed.

It prints jobs/s for each and the ratios. Targets (issue 5): aiodirac >= 85% of the lesser of
the server's capacity and the configured rate limit, and >= 2.5x the official client.

    .venv/bin/python benchmarks/submit.py [--jobs 2000] [--latency 0.1] [--rounds 1]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from aiodirac._engine._gate import Limits, RequestGate
from aiodirac._engine.submit._submitter import SubmitConfig, Submitter
from aiodirac._job._jdl import render_jdl
from aiodirac._job._job import Job
from aiodirac._journal import Journal
from aiodirac.backends.diracx import DiracXBackend
from aiodirac.testing import read_env_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import server_cpu


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plain_jdls(total: int, tag: str, sandbox: str | None) -> list[str]:
    """One JDL per job, as a user of the official client writes them."""
    jdls = []
    for i in range(total):
        attributes: dict[str, str | int | tuple[str, ...]] = {
            "Executable": "/bin/echo",
            "Arguments": f"value {i}",
            "JobName": f"{tag}-{i}",
            "CPUTime": 500,
            "StdOutput": "std.out",
            "StdError": "std.err",
            "OutputSandbox": ("std.out", "std.err"),
        }
        if sandbox is not None:
            attributes["InputSandbox"] = (sandbox,)
        jdls.append(render_jdl(attributes))
    return jdls


# -------------------------------------------------------------------------------- the proxy
PROXY = textwrap.dedent(
    """
    import sys, anyio
    from aiodirac.testing._proxy import FaultProxy, ProxyFaults

    async def main(upstream, latency):
        async with FaultProxy(upstream, ProxyFaults(latency=float(latency))) as proxy:
            print(proxy.url, flush=True)
            # Serve until the benchmark closes our stdin.
            await anyio.to_thread.run_sync(sys.stdin.read)

    anyio.run(main, sys.argv[1], sys.argv[2])
    """
)


# -------------------------------------------------------------------------------- 1. capacity
def parametric_jdl(tag: str, start: int, size: int) -> str:
    """One parametric JDL of ``size`` jobs (they land unconfirmed, in Submitting)."""
    values = tuple(str(i) for i in range(start, start + size))
    return render_jdl(
        {
            "Executable": "/bin/echo",
            "Arguments": "value %(n)s",
            "JobName": f"{tag}-%(n)s",
            "CPUTime": 500,
            "Parameters": size,
            "Parameters.n": values,
        }
    )


async def run_flood(
    url: str, credentials: str, total: int, in_flight: int, *, two_phase: bool = False
) -> dict[str, float]:
    """Bare httpx, no latency: 20 plain JDLs per request, or (``two_phase``) one parametric
    JDL of 20 per request, then the PATCHes that confirm them all (500 per request)."""
    token = json.loads(Path(credentials).read_text())["access_token"]
    tag = f"flood{time.time_ns() % 10**9}"
    if two_phase:
        bodies = [[parametric_jdl(tag, i, min(20, total - i))] for i in range(0, total, 20)]
    else:
        jdls = plain_jdls(total, tag, None)
        bodies = [jdls[i : i + 20] for i in range(0, total, 20)]
    created = 0
    stats = {"hung": 0, "errors": 0}
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as client:
        (await client.get("/api/auth/userinfo")).raise_for_status()  # connection warm
        limiter = anyio.CapacityLimiter(in_flight)

        async def send(method: str, path: str, body: object) -> httpx.Response:
            # This SQLite-backed server sometimes never answers a request under concurrent
            # writes; a flood that waited for it would measure the hang, not the capacity.
            while True:
                try:
                    response = await client.request(method, path, json=body, timeout=15)
                except httpx.TimeoutException:
                    stats["hung"] += 1
                    continue
                except httpx.TransportError:  # the server dropped the connection
                    stats["errors"] += 1
                    await anyio.sleep(0.1)
                    continue
                if response.status_code >= 500:  # "database is locked", under this flood
                    stats["errors"] += 1
                    continue
                response.raise_for_status()
                return response

        async def one(body: list[str]) -> None:
            nonlocal created
            async with limiter:
                response = await send("POST", "/api/jobs/jdl", body)
                ids = [job["JobID"] for job in response.json()]
                created_ids.extend(ids)
                created += len(ids)

        created_ids: list[int] = []
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for body in bodies:
                tg.start_soon(one, body)
        if two_phase:
            # Then every confirmation, 500 IDs per request: the cheapest way to pay for them.
            now = datetime.now(UTC).isoformat()
            change = {"Status": "Received", "MinorStatus": "Job accepted", "Source": "b"}
            for k in range(0, len(created_ids), 500):
                batch = created_ids[k : k + 500]
                await send("PATCH", "/api/jobs/status", {str(i): {now: change} for i in batch})
        wall = time.perf_counter() - start
    assert created >= total, created
    return {"wall": wall, "jobs": created, **stats}


# Settings under which the rate limiter never waits: capacity3 measures the server, not the limit.
UNLIMITED = {"rate": 1000.0, "burst": 100}


# -------------------------------------------------------------------------------- 2. official
OFFICIAL = Path(__file__).with_name("_official_submit.py")


def run_official(
    python: str, url: str, credentials: str, total: int, tmp: Path, tag: str
) -> dict[str, float]:
    jdl_file = tmp / f"{tag}.json"
    jdl_file.write_text(json.dumps(plain_jdls(total, tag, "@PFN@")))
    workflow = tmp / tag / "input.txt"
    workflow.parent.mkdir()
    workflow.write_text(f"input of {tag}\n")
    env = dict(os.environ, DIRACX_URL=url, DIRACX_CREDENTIALS_PATH=credentials)
    out = subprocess.run(
        [python, str(OFFICIAL), str(jdl_file), str(workflow), "@PFN@"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"official client failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -------------------------------------------------------------------------------- 3. aiodirac
async def run_aiodirac(
    url: str, credentials: str, total: int, tmp: Path, tag: str, **settings: Any
) -> dict[str, float]:
    job = Job()
    job.setExecutable("/bin/echo", arguments="value %(n)s")
    job.setName(f"{tag}-%n")
    job.setParameterSequence("n", [str(i) for i in range(total)])
    config = SubmitConfig(campaign=tag)
    gate = RequestGate(Limits(**settings))
    async with (
        DiracXBackend(url, credentials_path=credentials) as backend,
        await Journal.open(tmp / f"{tag}.db") as journal,
    ):
        await backend.status([1])  # connection + token: not part of the campaign
        submitter = Submitter(backend, config, journal=journal, gate=gate)
        start = time.perf_counter()
        ids = await submitter.submit(job)
        wall = time.perf_counter() - start
        states = await backend.summary(ids)
    assert len(set(ids)) == total, len(ids)
    assert {str(s) for s in states} == {"Received"}, states
    report = submitter.report
    return {"wall": wall, "jobs": len(ids), "requests": report.requests if report else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--flood", type=int, default=16, help="requests in flight of the flood")
    parser.add_argument("--url", help="a running DiracX (else one is started)")
    parser.add_argument("--credentials", help="its credentials file (with --url)")
    parser.add_argument("--dx-python", help="python of the DiracX venv (official client)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aiodirac-bench-submit-"))
    script = ROOT / "scripts" / "diracx.sh"
    env = dict(os.environ)
    started_here = args.url is None
    if started_here:
        env.update(DX_STATE=str(tmp / "state"), DX_PORT=str(_free_port()))
        env["DX_S3_PORT"] = str(_free_port())
        if subprocess.run(["bash", str(script), "start"], env=env, check=False).returncode:
            print("could not start DiracX", file=sys.stderr)
            return 1
        values = read_env_file(tmp / "state" / "env.sh")
        url, credentials = values["DIRACX_URL"], values["DIRACX_CREDENTIALS_PATH"]
        python = args.dx_python or str(Path(values.get("DX_VENV", "")) / "bin" / "python")
        server_pid: int | None = int((tmp / "state" / "uvicorn.pid").read_text())
    else:
        server_pid = None
        url, credentials = args.url, args.credentials
        python = args.dx_python or "/tmp/diracx-local/venv/bin/python"
    proxy = subprocess.Popen(
        [sys.executable, "-c", PROXY, url, str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(env, PYTHONPATH=str(ROOT / "src")),
    )
    try:
        assert proxy.stdout is not None
        proxy_url = proxy.stdout.readline().strip()
        results: dict[str, list[dict[str, float]]] = {
            "capacity": [],
            "capacity2": [],
            "capacity3": [],
            "official": [],
            "aiodirac": [],
        }
        runners: dict[str, Callable[[str], dict[str, float]]] = {
            "capacity": lambda tag: anyio.run(run_flood, url, credentials, args.jobs, args.flood),
            "capacity2": lambda tag: anyio.run(
                functools.partial(
                    run_flood, url, credentials, args.jobs, args.flood, two_phase=True
                )
            ),
            "capacity3": lambda tag: anyio.run(
                functools.partial(
                    run_aiodirac, url, credentials, args.jobs, tmp, f"cap{tag}", **UNLIMITED
                )
            ),
            "official": lambda tag: run_official(
                python, proxy_url, credentials, args.jobs, tmp, f"off{tag}"
            ),
            "aiodirac": lambda tag: anyio.run(
                run_aiodirac, proxy_url, credentials, args.jobs, tmp, f"aio{tag}"
            ),
        }
        for round_no in range(1, args.rounds + 1):
            tag = f"r{round_no}x{time.time_ns() % 10**6}"
            for name, runner in runners.items():
                before = server_cpu(server_pid) if server_pid else 0.0
                r = runner(tag)
                results[name].append(r)
                busy = ""
                if server_pid:  # how busy the one-process server was: near 100%, it is the limit
                    used = server_cpu(server_pid) - before
                    busy = f", server CPU {used:5.2f} s ({100 * used / r['wall']:3.0f}% busy)"
                print(
                    f"  round {round_no} {name:9s} {r['jobs'] / r['wall']:7.1f} jobs/s "
                    f"({int(r['jobs'])} jobs in {r['wall']:.2f} s{busy})",
                    flush=True,
                )
    finally:
        if proxy.stdin is not None:
            proxy.stdin.close()
        proxy.wait(timeout=30)
        if started_here:
            subprocess.run(["bash", str(script), "stop"], env=env, check=False)

    rate = {
        name: statistics.median(r["jobs"] / r["wall"] for r in runs)
        for name, runs in results.items()
    }
    defaults = Limits()
    limit_rate = defaults.rate * 20  # jobs/s if every request were a 20-job submission
    # the same limit with the protocol's confirmations, which take rate tokens too
    batch = SubmitConfig().confirm_batch_for(
        20, DiracXBackend.capabilities.max_ids_per_update, defaults.window
    )
    protocol_rate = defaults.rate / (1 / 20 + 1 / batch)
    physical = min(rate["capacity"], limit_rate)
    print(
        f"\n{args.jobs} jobs per run, {args.rounds} round(s), medians; proxy latency "
        f"{args.latency * 1000:.0f} ms for official and aiodirac:"
    )
    print(
        f"  server capacity (bare httpx flood, {args.flood} in flight, no latency): "
        f"{rate['capacity']:7.1f} jobs/s"
    )
    print(
        f"  official DiracX client (20-job requests, sequential):            "
        f"{rate['official']:7.1f} jobs/s"
    )
    print(
        f"  aiodirac defaults (in flight {defaults.max_in_flight}, {defaults.rate:g} req/s, "
        f"burst {defaults.burst}):           {rate['aiodirac']:7.1f} jobs/s"
    )
    print(
        f"  configured rate limit: {limit_rate:.0f} jobs/s; physical limit "
        f"min(capacity, rate limit) = {physical:.1f} jobs/s"
    )
    print(
        f"  exactly-once capacity (flood of parametric chunks, then bulk confirmations): "
        f"{rate['capacity2']:7.1f} jobs/s"
    )
    print(f"  aiodirac / physical limit = {rate['aiodirac'] / physical:.2f}  (target >= 0.85)")
    print(
        f"  (the rate limit counts confirmations too, one per {batch} jobs: with them it allows "
        f"{protocol_rate:.0f} jobs/s; aiodirac / that = {rate['aiodirac'] / protocol_rate:.2f})"
    )
    print(
        f"  aiodirac / exactly-once capacity = {rate['aiodirac'] / rate['capacity2']:.2f}  "
        "(the protocol the issue requires costs the server a confirmation per job)"
    )
    print(
        f"  aiodirac's own jobs, straight to the server, no rate limit:   "
        f"{rate['capacity3']:7.1f} jobs/s"
    )
    print(
        f"  aiodirac / official       = {rate['aiodirac'] / rate['official']:.2f}  (target >= 2.5)"
    )
    print(
        f"  (the most any client gets here for these jobs, exactly once, is capacity3 / official "
        f"= {rate['capacity3'] / rate['official']:.2f}x the official client; "
        f"aiodirac / capacity3 = {rate['aiodirac'] / rate['capacity3']:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
