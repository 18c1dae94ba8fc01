"""Benchmark of the embedded local backend: 1,000 one-step trivial jobs, end to end.

Submits N jobs (``/bin/echo hello <i>``, built with aiodirac's ``Job``) to a fresh state folder,
confirms them, waits until every one is ``Done`` with its output sandbox packed, and prints:

* jobs per second end to end (submit -> Done -> output sandbox packed; target >= 60 on 2 cores);
* the agent's CPU per job (its own, and with the job processes it ran);
* the latency of one status query for all N jobs from a fresh process (target <= 50 ms).

Usage::

    .venv/bin/python benchmarks/local_backend.py            # 1,000 jobs
    .venv/bin/python benchmarks/local_backend.py --jobs 200 --parallel 4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

from aiodirac import JobStatus
from aiodirac._job._job import Job
from aiodirac.backends.local import LocalBackend

_TICKS = os.sysconf("SC_CLK_TCK")

_QUERY = """
import json, sys, time
t0 = time.perf_counter()
import anyio
from aiodirac.backends.local import LocalBackend
ids = json.load(open(sys.argv[2]))
async def main():
    backend = LocalBackend(sys.argv[1])
    t1 = time.perf_counter()
    states = await backend.status(ids)
    t2 = time.perf_counter()
    assert len(states) == len(ids)
    print(json.dumps({"query_ms": (t2 - t1) * 1000, "with_import_ms": (t2 - t0) * 1000}))
anyio.run(main)
"""


def _cpu(pid: int) -> tuple[float, float]:
    """(own CPU seconds, CPU seconds of its reaped children) of a process."""
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    fields = raw[raw.rfind(b")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) / _TICKS for v in fields[11:15])
    return utime + stime, cutime + cstime


async def bench(home: Path, jobs: int, parallel: int | None) -> dict[str, float]:
    job = Job()
    job.setName("bench-%n")
    job.setExecutable("/bin/echo", arguments="hello %(i)s")
    job.setParameterSequence("i", [str(i) for i in range(jobs)])
    backend = LocalBackend(home, max_parallel=parallel, idle_timeout=60)
    chunks = list(job.chunks(backend.capabilities.max_jobs_per_submit))

    started = time.perf_counter()
    ids: list[int] = []
    for chunk in chunks:
        ids.extend(await backend.submit(chunk))
    submitted = time.perf_counter()
    await backend.confirm(ids)
    agent = await backend.agent_pid()
    assert agent is not None
    cpu_before = _cpu(agent)
    while True:
        summary = await backend.summary(ids)
        if sum(n for status, n in summary.items() if status.final) == len(ids):
            break
        await anyio.sleep(0.02)
    finished = time.perf_counter()
    cpu_after = _cpu(agent)

    assert summary == {JobStatus.DONE: len(ids)}, summary
    for job_id in ids:  # every output sandbox is packed and on disk
        info = await backend.output_sandbox(job_id)
        assert info.path is not None
        assert os.path.getsize(info.path) == info.size

    ids_file = home / "ids.json"
    ids_file.write_text(json.dumps(ids))
    queries = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", _QUERY, str(home), str(ids_file)],
            capture_output=True,
            text=True,
            check=True,
        )
        queries.append(json.loads(out.stdout))
    await backend.stop_agent()
    await backend.aclose()
    elapsed = finished - started
    return {
        "jobs": len(ids),
        "submit_s": submitted - started,
        "end_to_end_s": elapsed,
        "jobs_per_s": len(ids) / elapsed,
        "agent_cpu_ms_per_job": (cpu_after[0] - cpu_before[0]) / len(ids) * 1000,
        "agent_and_jobs_cpu_ms_per_job": (sum(cpu_after) - sum(cpu_before)) / len(ids) * 1000,
        "status_query_ms": statistics.median(q["query_ms"] for q in queries),
        "status_query_with_startup_ms": statistics.median(q["with_import_ms"] for q in queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=None, help="agent slots (default: cores)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aiodirac-bench-")) / "home"
    os.environ["AIODIRAC_HOME"] = str(home)
    try:
        result = anyio.run(bench, home, args.jobs, args.parallel)
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)
    print(f"jobs                         {result['jobs']:.0f} (one step: /bin/echo)")
    print(f"submit (store + sandbox)     {result['submit_s'] * 1000:.0f} ms")
    print(f"end to end                   {result['end_to_end_s']:.2f} s")
    print(f"throughput                   {result['jobs_per_s']:.1f} jobs/s   (target >= 60)")
    print(f"agent CPU per job            {result['agent_cpu_ms_per_job']:.2f} ms")
    print(f"agent + job processes CPU    {result['agent_and_jobs_cpu_ms_per_job']:.2f} ms per job")
    print(
        f"status of {result['jobs']:.0f} jobs, fresh process  {result['status_query_ms']:.1f} ms"
        f" query ({result['status_query_with_startup_ms']:.0f} ms with interpreter start)"
        "   (target <= 50 ms)"
    )


if __name__ == "__main__":
    main()
