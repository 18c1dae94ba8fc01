"""What confirming jobs costs a DiracX server: the cost model behind SubmitConfig's defaults.

The exactly-once protocol creates each chunk of 20 jobs unconfirmed, then confirms many chunks
per ``PATCH /api/jobs/status``. DiracX 0.7.0 (``diracx.logic.jobs.status.set_job_statuses``)
does per request: the access check (one query of the jobs' owners), one search of the jobs, one
read of their logging history, one ``UPDATE .. SET col = CASE JobID WHEN .. END`` over every job
(a CASE of N branches evaluated for each of the N rows), one insert of N logging records; and per
job: a pydantic model, the DIRAC state machine and a ``MagicMock`` built for ``getNewStatus``.
So a confirmation of N jobs costs about ``F + a*N + q*N^2``: a fixed cost F per request, a per-job
cost a no client can avoid, and a quadratic term from the CASE.

This benchmark measures it on the server ``_server.py`` starts (default: production-shaped,
MariaDB + uvicorn workers): for each ``--batches`` x ``--in-flight`` setting, in ``--rounds``
interleaved rounds, it creates ``--jobs`` unconfirmed jobs (aiodirac's own parametric chunks,
untimed), then confirms them all with that setting, and prints the server CPU per job (workers,
MariaDB), the wall time per job, and MariaDB's row-lock waits and deadlocks meanwhile. Then it
fits F, a and q and prints the batch size that minimises the server's cost per job.

    .venv/bin/python benchmarks/confirm_cost.py [--jobs 2000] [--rounds 3]
        [--batches 20,50,100,200,500,1000] [--in-flight 1,2,4]
"""

from __future__ import annotations

import argparse
import math
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

from aiodirac import Job
from aiodirac._job._chunking import _chunks_of, _with_group
from aiodirac.backends.diracx import DiracXBackend


def db_status(server: Server) -> dict[str, int]:
    """MariaDB's row-lock waits, their time (ms) and deadlocks so far (empty if unreachable)."""
    socket = server.values.get("DX_DB_SOCKET") or server.values.get("DXP_DB_SOCKET")
    if not socket or not shutil.which("mariadb"):
        return {}
    query = (
        "SHOW GLOBAL STATUS WHERE Variable_name IN "
        "('Innodb_row_lock_waits','Innodb_row_lock_time','Innodb_deadlocks')"
    )
    out = subprocess.run(
        ["mariadb", "--no-defaults", f"--socket={socket}", "-uroot", "-N", "-e", query],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {}
    return {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines() if line}


async def create_unconfirmed(backend: DiracXBackend, tag: str, total: int) -> list[int]:
    """``total`` jobs of aiodirac's own chunks of 20, created unconfirmed (8 in flight)."""
    job = Job()
    job.setExecutable("/bin/echo", arguments="value %(n)s")
    job.setName(f"{tag}-%n")
    job.setParameterSequence("n", [str(i) for i in range(total)])
    chunks = [_with_group(c, tag[:32]) async for c in _chunks_of(job, 20)]
    ids: list[int] = []
    limiter = anyio.CapacityLimiter(8)

    async def one(chunk: object) -> None:
        async with limiter:
            ids.extend(await backend.submit(chunk))  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        for chunk in chunks:
            tg.start_soon(one, chunk)
    return sorted(ids)


async def confirm_all(
    server: Server, backend: DiracXBackend, ids: list[int], batch: int, in_flight: int
) -> dict[str, float]:
    limiter = anyio.CapacityLimiter(in_flight)

    async def one(part: list[int]) -> None:
        async with limiter:
            await backend.confirm(part)

    locks0, cpu0, wall0 = db_status(server), server.cpu(), time.perf_counter()
    async with anyio.create_task_group() as tg:
        for start in range(0, len(ids), batch):
            tg.start_soon(one, ids[start : start + batch])
    wall = time.perf_counter() - wall0
    used, locks1 = server.cpu() - cpu0, db_status(server)
    n = len(ids)
    return {
        "cpu": 1000 * used.total / n,
        "workers": 1000 * used.workers / n,
        "db": 1000 * used.db / n,
        "wall": 1000 * wall / n,
        **{k: locks1[k] - locks0.get(k, 0) for k in locks1},
    }


def fit(points: list[tuple[int, float]]) -> tuple[float, float, float]:
    """Least squares of cost per job = F/N + a + q*N over (N, cost) points: (F, a, q)."""
    rows = [(1 / n, 1.0, float(n)) for n, _ in points]
    ys = [y for _, y in points]
    # normal equations, 3x3, solved by Cramer's rule
    m = [[sum(r[i] * r[j] for r in rows) for j in range(3)] for i in range(3)]
    v = [sum(r[i] * y for r, y in zip(rows, ys, strict=True)) for i in range(3)]

    def det(a: list[list[float]]) -> float:
        return (
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        )

    d = det(m)
    out = []
    for col in range(3):
        mc = [[*row[:col], v[i], *row[col + 1 :]] for i, row in enumerate(m)]
        out.append(det(mc) / d)
    return out[0], out[1], out[2]


async def measure(server: Server, args: argparse.Namespace) -> dict[tuple[int, int], list[dict]]:
    settings = [(b, f) for f in args.in_flight for b in args.batches]
    results: dict[tuple[int, int], list[dict]] = {s: [] for s in settings}
    async with DiracXBackend(
        server.url, credentials_path=server.credentials, verify=server.verify
    ) as backend:
        await backend.status([1])
        for round_no in range(args.rounds):
            shift = round_no % len(settings)
            for batch, in_flight in settings[shift:] + settings[:shift]:
                tag = f"cc{round_no}b{batch}f{in_flight}x{time.time_ns() % 10**6}"
                ids = await create_unconfirmed(backend, tag, args.jobs)
                r = await confirm_all(server, backend, ids, batch, in_flight)
                results[(batch, in_flight)].append(r)
                locks = (
                    f"  row-lock waits {r['Innodb_row_lock_waits']} "
                    f"({r['Innodb_row_lock_time']} ms), deadlocks {r['Innodb_deadlocks']}"
                    if "Innodb_row_lock_waits" in r
                    else ""
                )
                print(
                    f"  round {round_no + 1}  {batch:5d} IDs x {in_flight} in flight: server CPU "
                    f"{r['cpu']:5.3f} ms/job (workers {r['workers']:5.3f}, MariaDB "
                    f"{r['db']:5.3f})  wall {r['wall']:5.3f} ms/job{locks}",
                    flush=True,
                )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batches",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[20, 50, 100, 200, 500, 1000],
    )
    parser.add_argument(
        "--in-flight", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4]
    )
    add_server_arguments(parser)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aiodirac-bench-confirm-"))
    with running_server(args, tmp) as server:
        print(f"DiracX: {server.description}; {args.jobs} jobs confirmed per setting and round")
        print(f"started {stamp()}")
        results = anyio.run(measure, server, args)
        print(f"ended {stamp()}")
    print("\nmedians (min-max) per setting:")
    for (batch, in_flight), runs in results.items():
        cpu = [r["cpu"] for r in runs]
        wall = [r["wall"] for r in runs]
        print(
            f"  {batch:5d} IDs x {in_flight} in flight: server CPU {statistics.median(cpu):5.3f} "
            f"({min(cpu):5.3f}-{max(cpu):5.3f}) ms/job, wall {statistics.median(wall):5.3f} "
            f"({min(wall):5.3f}-{max(wall):5.3f}) ms/job"
        )
    points = [(b, r["cpu"]) for (b, _), runs in results.items() for r in runs]
    if len({b for b, _ in points}) >= 3:
        f, a, q = fit(points)
        best = math.sqrt(f / q) if f > 0 and q > 0 else float("inf")
        print(
            f"\nfit over all runs: server CPU per confirmed job = {f:.2f} ms / N + {a:.3f} ms + "
            f"{1e6 * q:.1f} ns * N  (N = IDs per request)"
        )
        print(f"  lowest cost at N = {best:.0f} IDs per request; the cost at each N:")
        for n in sorted({b for b, _ in points}):
            print(f"    N = {n:5d}: {f / n + a + q * n:5.3f} ms/job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
