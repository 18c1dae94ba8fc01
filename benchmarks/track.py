"""Benchmark of the status tracker, beside the naive way (one status call per job).

Two parts:

1. ``memory``: 100,000 jobs on :class:`aiodirac.testing.MemoryBackend`, which answers at once, so
   the figures are the tracker's own: requests per poll cycle, CPU per cycle (a quiet cycle where
   nothing changes, and a cycle where every job changes), events per second, and peak memory per
   tracked job beyond the answers themselves (tracemalloc).
2. ``diracx``: 10,000 jobs on a real local DiracX (by default as production runs it: MariaDB,
   uvicorn workers, nginx TLS; ``--server test`` for the one-process test app, ``--dx-env`` for a
   running one; see ``_server.py``) whose statuses a test pilot moves, in rounds, while the
   tracker follows them to the end. The server's CPU (workers + MariaDB) per poll and its
   ceiling (10,000-ID status requests answered per second, no latency) are printed beside the
   tracker's figures.

Each part prints the naive way beside it (one ``status([job_id])`` per job per cycle, as DIRAC
scripts do with ``dirac.getJobStatus(id)`` in a loop) and the ratio.

Usage::

    .venv/bin/python benchmarks/track.py                       # both parts (starts a DiracX)
    .venv/bin/python benchmarks/track.py --part memory --jobs 100000
    .venv/bin/python benchmarks/track.py --part diracx --dx-env /tmp/dx/state/env.sh
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import anyio

from aiodirac._engine._gate import Limits, RequestGate
from aiodirac._engine.submit._model import SubmitConfig
from aiodirac._engine.submit._submitter import Submitter
from aiodirac._engine.track._events import JobEvent
from aiodirac._engine.track._tracker import TrackConfig, Tracker
from aiodirac._exceptions import TransientError
from aiodirac._job._job import Job
from aiodirac._job._spec import ConcreteJob, Step, SubmitChunk
from aiodirac._job._status import JobState, JobStatus
from aiodirac.backends._protocol import Backend, Capabilities
from aiodirac.testing._memory import MemoryBackend

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, add_server_arguments, running_server, stamp


def cpu() -> float:
    return time.process_time()


def line(label: str, value: str) -> None:
    print(f"  {label:<46} {value}")


# -- memory backend ------------------------------------------------------------------------------


async def memory_jobs(count: int) -> tuple[MemoryBackend, list[int]]:
    backend = MemoryBackend(
        capabilities=Capabilities(
            max_jobs_per_submit=10_000, max_ids_per_status=10_000, max_ids_per_update=count
        )
    )
    step = Step(number=1, executable="/bin/true")
    ids: list[int] = []
    for start in range(0, count, 10_000):
        jobs = tuple(
            ConcreteJob(index=i, attributes={"JobName": "bench"}, steps=(step,))
            for i in range(start, min(count, start + 10_000))
        )
        ids += await backend.submit(SubmitChunk({"Executable": "/bin/true"}, "", jobs))
    await backend.confirm(ids)
    return backend, ids


async def answer_cost(backend: Backend, ids: list[int], page: int) -> float:
    """CPU of one cycle's answers alone (the backend building them), to subtract."""
    runs = []
    for _ in range(3):
        start = cpu()
        for i in range(0, len(ids), page):
            await backend.status(ids[i : i + page])
        runs.append(cpu() - start)
    return min(runs)


async def wait_cycles(stream: object, target: int) -> None:
    while stream.summary.cycles < target:  # type: ignore[attr-defined]
        await anyio.sleep(0.002)


async def bench_memory(count: int) -> dict[str, float]:
    backend, ids = await memory_jobs(count)
    page = backend.capabilities.max_ids_per_status
    answers = await answer_cost(backend, ids, page)
    config = TrackConfig(min_interval=0, max_interval=0, buffer_size=1024)
    tracker = Tracker(backend, config)
    figures: dict[str, float] = {}
    print(f"\n== tracker, {count:,} jobs, MemoryBackend answering at once ==")
    line("backend answers alone, per cycle (CPU)", f"{answers:.3f} s (subtracted below)")

    async with tracker.track(ids) as stream:
        # Cycle 1: every job seen for the first time -> one event each.
        c0, w0 = cpu(), time.perf_counter()
        got = 0
        async for event in stream:
            got += isinstance(event, JobEvent)
            if got == count:
                break
        first_cpu, first_wall = cpu() - c0, time.perf_counter() - w0
        # Quiet cycles: nothing changes (the steady state of a long campaign).
        quiet = 10
        start_cycles = stream.summary.cycles
        c0 = cpu()
        await wait_cycles(stream, start_cycles + quiet)
        done = stream.summary.cycles - start_cycles
        quiet_cpu = (cpu() - c0) / done - answers
        # Busy cycles: every job moves one step between two cycles.
        rounds = 3
        busy_cpu = 0.0
        busy_wall = 0.0
        busy_cycles = 0
        for _ in range(rounds):
            backend.advance(ids)
            c0, w0 = cpu(), time.perf_counter()
            cycles0 = stream.summary.cycles
            got = 0
            async for event in stream:
                got += isinstance(event, JobEvent)
                if got == count:
                    break
            busy_cycles += max(1, stream.summary.cycles - cycles0)
            busy_cpu += cpu() - c0
            busy_wall += time.perf_counter() - w0
        summary = stream.summary
    busy_cpu_cycle = (busy_cpu - busy_cycles * answers) / rounds
    requests_per_cycle = summary.requests / summary.cycles
    events_per_s = rounds * count / busy_wall
    line("requests per cycle", f"{requests_per_cycle:.0f}  ({page:,} IDs per request)")
    line(
        "CPU, first cycle (100% first sight)",
        f"{first_cpu - answers:.3f} s  ({first_wall:.2f} s wall)",
    )
    line("CPU per quiet cycle (nothing changes)", f"{quiet_cpu:.3f} s")
    line("CPU per busy cycle (every job changes)", f"{busy_cpu_cycle:.3f} s")
    line("events per second (consumer included)", f"{events_per_s:,.0f}")
    figures.update(
        requests=requests_per_cycle, quiet_cpu=quiet_cpu, busy_cpu=busy_cpu_cycle, eps=events_per_s
    )

    per_job = await memory_per_job(count)
    line("peak memory per tracked job beyond answers", f"{per_job:.0f} bytes")
    figures["bytes_per_job"] = per_job

    # The naive way: one status request per job, then the same diff by hand.
    naive_cpu, naive_requests = await naive_cycle(backend, ids)
    naive_cpu -= answers  # the backend's building of states (the same for both)
    line("naive: requests per cycle", f"{naive_requests:,}")
    line("naive: CPU per cycle (client side)", f"{naive_cpu:.3f} s")
    line(
        "ratio naive/tracker",
        f"requests x{naive_requests / requests_per_cycle:,.0f}, "
        f"CPU x{naive_cpu / max(quiet_cpu, 1e-9):,.1f} (quiet cycle)",
    )
    ok = requests_per_cycle <= 10 and max(quiet_cpu, busy_cpu_cycle) <= 0.3 and per_job <= 300
    print(
        f"  targets (<=10 requests, <=0.3 s CPU per cycle, <=300 B/job): {'MET' if ok else 'MISSED'}"
    )
    return figures


async def memory_per_job(count: int) -> float:
    """Peak traced memory of tracking, minus the jobs' store, minus one cycle's answers."""
    backend, ids = await memory_jobs(count)
    page = backend.capabilities.max_ids_per_status
    gc.collect()
    tracemalloc.start()
    # What one full cycle of answers weighs when held at once (all pages are in flight together).
    base = tracemalloc.get_traced_memory()[0]
    held = [await backend.status(ids[i : i + page]) for i in range(0, count, page)]
    answers = tracemalloc.get_traced_memory()[0] - base
    del held
    gc.collect()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    tracker = Tracker(backend, TrackConfig(min_interval=0, max_interval=0, buffer_size=1024))
    async with tracker.track(ids) as stream:
        got = 0
        async for event in stream:
            got += isinstance(event, JobEvent)
            if got == count:
                break
        await wait_cycles(stream, stream.summary.cycles + 3)
        backend.advance(ids)
        got = 0
        async for event in stream:
            got += isinstance(event, JobEvent)
            if got == count:
                break
        peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return (peak - answers) / count


async def naive_cycle(backend: Backend, ids: Sequence[int]) -> tuple[float, int]:
    last: dict[int, JobState] = {}
    start = cpu()
    requests = 0
    for job_id in ids:
        answer = await backend.status([job_id])
        requests += 1
        state = answer.get(job_id)
        if state is not None and last.get(job_id) != state:
            last[job_id] = state
    return cpu() - start, requests


# -- DiracX --------------------------------------------------------------------------------------


async def submit_many(
    backend: Backend, count: int, name: str = "track-bench", *, one_at_a_time: bool = False
) -> list[int]:
    """``count`` jobs ``<name>-<n>`` of ``true``, submitted and confirmed by the real Submitter."""
    job = Job(name=f"{name}-%n")
    job.setExecutable("true")
    job.setParameterSequence("n", [str(i) for i in range(count)])
    if one_at_a_time:  # the test app's SQLite refuses concurrent writers (500)
        config = SubmitConfig(exclusive_confirm=True, campaign=name)
        limits = Limits(max_in_flight=1)
    else:
        config, limits = SubmitConfig(campaign=name), Limits(rate=1000, burst=100)
    return await Submitter(backend, config, gate=RequestGate(limits)).submit(job)


PATH = [
    ("Checking", "JobPath"),
    ("Waiting", "Pilot Agent Submission"),
    ("Matched", "Assigned"),
    ("Running", "Job Initialization"),
    ("Running", "Application"),
    ("Completing", "Uploading Output Sandbox"),
    ("Done", "Execution Complete"),
]


def bench_diracx(count: int, args: argparse.Namespace) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="aiodirac-track-bench-"))
    with running_server(args, tmp) as server:
        return anyio.run(track_diracx, count, server)


async def track_diracx(count: int, server: Server) -> dict[str, float]:
    from aiodirac.backends.diracx import DiracXBackend
    from aiodirac.testing._pilot import DiracXTestPilot

    assert server.state is not None
    env_file = server.state / "env.sh"
    print(f"\n== tracker, {count:,} jobs, DiracX: {server.description}, pilot moving them ==")
    print(f"  started {stamp()}")
    figures: dict[str, float] = {}
    async with (
        DiracXBackend(
            server.url, credentials_path=server.credentials, verify=server.verify
        ) as backend,
        DiracXTestPilot.from_env_file(env_file, workdir=tempfile.mkdtemp()) as pilot,
    ):
        w0 = time.perf_counter()
        ids = await submit_many(backend, count, one_at_a_time=server.kind == "test")
        line("submitted + confirmed", f"{len(ids):,} jobs in {time.perf_counter() - w0:.1f} s")
        rng = random.Random(1)
        cycle_cpu: list[float] = []
        config = TrackConfig(min_interval=0.5, max_interval=2.0)
        tracker = Tracker(backend, config)
        events = 0
        finals: dict[int, JobStatus] = {}
        remaining = dict.fromkeys(ids, 0)

        async def drive() -> None:
            # Each round moves a random half of the unfinished jobs one to three steps on.
            while remaining:
                batch = rng.sample(sorted(remaining), k=max(1, len(remaining) // 2))
                sequences = {}
                for job_id in batch:
                    at = remaining[job_id]
                    steps = PATH[at : at + rng.randint(1, 3)]
                    sequences[job_id] = steps
                    at += len(steps)
                    if at >= len(PATH):
                        del remaining[job_id]
                    else:
                        remaining[job_id] = at
                for attempt in range(5):  # a loaded server may restart a worker (502)
                    try:
                        await pilot.set_status(sequences, check=False)
                        break
                    except TransientError:
                        if attempt == 4:
                            raise
                        await anyio.sleep(1)
                await anyio.sleep(0.5)

        w0 = time.perf_counter()
        c_total = cpu()
        server0 = server.cpu()
        async with anyio.create_task_group() as tg:
            tg.start_soon(drive)
            async with tracker.track(ids) as stream:
                c0 = cpu()
                cycles = 0
                async for event in stream:
                    if isinstance(event, JobEvent):
                        events += 1
                        if event.final:
                            finals[event.job_id] = event.status
                    if stream.summary.cycles != cycles:
                        cycles = stream.summary.cycles
                summary = stream.summary
        wall = time.perf_counter() - w0
        del c0, cycle_cpu
        client_cpu = cpu() - c_total
        server_used = server.cpu() - server0
        truth = {}
        for i in range(0, len(ids), 10_000):
            truth.update(await backend.status(ids[i : i + 10_000]))
        exact = all(finals.get(j) == truth[j].status for j in ids)
        requests_per_cycle = summary.requests / summary.cycles
        line("poll cycles / requests", f"{summary.cycles} / {summary.requests}")
        line("requests per cycle", f"{requests_per_cycle:.1f} (10,000 IDs per request)")
        line(
            "requests per cycle for 100,000 jobs",
            f"{math.ceil(100_000 / backend.capabilities.max_ids_per_status)}",
        )
        line(
            "client CPU per cycle (tracker + pilot + HTTP)",
            f"{client_cpu / summary.cycles:.3f} s",
        )
        line(
            "server CPU while tracking (tracker + pilot)",
            f"{server_used.total:.2f} s: {server_used.per_job(summary.cycles, 'cycle')}",
        )
        line("events", f"{events:,} in {wall:.1f} s ({events / wall:,.0f}/s)")
        line("final states reproduced exactly", f"{exact} ({len(finals):,} jobs)")
        # Client CPU of one tracker cycle alone: quiet polls of the 10,000 final jobs.
        c0 = cpu()
        w1 = time.perf_counter()
        quiet = 5
        server0 = server.cpu()
        for _ in range(quiet):
            answer = await backend.status(ids[:10_000])
            assert len(answer) == min(10_000, len(ids))
        poll_cpu = (cpu() - c0) / quiet
        poll_wall = (time.perf_counter() - w1) / quiet
        poll_server = server.cpu() - server0
        line("one 10,000-ID request: client CPU / wall", f"{poll_cpu:.3f} s / {poll_wall:.2f} s")
        line(
            "  its server CPU",
            f"{poll_server.per_job(quiet, 'request')}",
        )
        # The server's ceiling for this work: 10,000-ID status requests, 4 at a time.
        w1 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(backend.status, ids[:10_000])
        ceiling = 8 / (time.perf_counter() - w1)
        line(
            "  server ceiling (4 in flight, no latency)",
            f"{ceiling:.1f} requests/s = {ceiling * min(10_000, len(ids)):,.0f} jobs polled/s",
        )
        line("=> 100,000 jobs: client CPU per cycle", f"{poll_cpu * 10:.3f} s (10 requests)")
        # The naive way, on a sample (10,000 requests a cycle would take minutes).
        sample = ids[: min(300, len(ids))]
        c0, w1 = cpu(), time.perf_counter()
        naive_cpu, naive_requests = await naive_cycle(backend, sample)
        naive_wall = time.perf_counter() - w1
        per_job_cpu = naive_cpu / len(sample)
        per_job_wall = naive_wall / len(sample)
        line(
            "naive: requests per cycle",
            f"{len(ids):,} (measured on {len(sample)}: {per_job_wall * 1000:.1f} ms each)",
        )
        line(
            "naive: one cycle of 10,000 jobs, CPU / wall",
            f"{per_job_cpu * len(ids):.1f} s / {per_job_wall * len(ids):.0f} s (extrapolated)",
        )
        line(
            "ratio naive/tracker (one cycle, 10,000 jobs)",
            f"requests x{len(ids) / requests_per_cycle:,.0f}, "
            f"CPU x{per_job_cpu * len(ids) / poll_cpu:,.0f}, "
            f"wall x{per_job_wall * len(ids) / poll_wall:,.0f}",
        )
        figures.update(requests=requests_per_cycle, poll_cpu=poll_cpu, exact=float(exact))
        print(f"  ended {stamp()}")
        del naive_requests
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["memory", "diracx", "all"], default="all")
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs for the memory part")
    parser.add_argument("--diracx-jobs", type=int, default=10_000)
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    if args.part in ("memory", "all"):
        anyio.run(bench_memory, args.jobs)
    if args.part in ("diracx", "all"):
        bench_diracx(args.diracx_jobs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
