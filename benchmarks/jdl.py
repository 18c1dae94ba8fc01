"""Benchmark of the job layer: expansion, chunking, JDL rendering and parsing, import time.

Prints, for a 10,000-job parametric job (two sequences, ``%n`` in the name, parametric step
arguments): the time to expand it into concrete jobs and to render each one's JDL text, the time to
cut it into submit chunks of 20, parse throughput on DIRAC-style concrete JDLs, and the import time
of ``aiodirac`` in a fresh interpreter (bytecode cached, best of several runs).

Targets (issue 2): 10,000 concrete JDLs in <= 0.3 s; ``import aiodirac`` <= 100 ms.

Usage: ``.venv/bin/python benchmarks/jdl.py [--jobs 10000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aiodirac._job._jdl import parse_jdl, render_jdl
from aiodirac._job._job import Job


def build(n_jobs: int) -> Job:
    job = Job(name="scan-%n", cpu_time=3600, job_group="bench")
    job.setExecutable("/bin/echo", arguments="seed=%(seed)s run=%n")
    job.setExecutable("/bin/true", arguments="-v")
    job.setOutputSandbox(["*.log", "result.root"])
    job.setParameterSequence("seed", list(range(1000, 1000 + n_jobs)), addToWorkflow=True)
    job.setParameterSequence("energy", [f"{0.5 + i / 10:.1f}" for i in range(n_jobs)])
    return job


def best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def import_time(runs: int = 7) -> float:
    """Best wall time of ``import aiodirac`` in a fresh interpreter, from -X importtime."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as cache:
        env["PYTHONPYCACHEPREFIX"] = cache  # bytecode cached as an installed package has it
        samples = []
        for _ in range(runs + 1):
            done = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", "import aiodirac"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            last = [line for line in done.stderr.splitlines() if line.endswith("| aiodirac")]
            samples.append(int(re.split(r"\s*\|\s*", last[-1])[1]) / 1e6)
        return min(samples[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, repeat = args.jobs, args.repeat

    job = build(n)
    job.template()  # the template is built once per job, like any submission would

    t_expand = best(repeat, job.expand)
    concrete = job.expand()
    # render_jdl checks every value as it writes it: the path every submission takes.
    t_render = best(repeat, lambda: [render_jdl(c.attributes) for c in concrete])
    t_chunks = best(repeat, lambda: list(job.chunks(20)))
    texts = [render_jdl(c.attributes) for c in concrete[:2000]]
    t_parse = best(repeat, lambda: [parse_jdl(t) for t in texts])
    t_import = import_time()

    total = t_expand + t_render
    print(f"concrete jobs: {n:,} (parametric job, 2 sequences, %n, 2 steps)")
    print(f"expand():                  {t_expand:.3f} s  ({n / t_expand:,.0f} jobs/s)")
    print(f"render JDL text:           {t_render:.3f} s  ({n / t_render:,.0f} JDLs/s)")
    print(
        f"expand + render:           {total:.3f} s  ({n / total:,.0f} concrete JDLs/s, "
        f"{total / n * 1e6:.1f} us/job; target <= 0.300 s)"
    )
    print(
        f"chunks(20):                {t_chunks:.3f} s  ({n / 20:,.0f} chunks, {n / t_chunks:,.0f} jobs/s)"
    )
    print(
        f"parse_jdl:                 {len(texts) / t_parse:,.0f} JDLs/s ({t_parse / len(texts) * 1e6:.1f} us each)"
    )
    print(f"import aiodirac:           {t_import * 1e3:.1f} ms (target <= 100 ms)")


if __name__ == "__main__":
    main()
