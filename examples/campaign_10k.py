"""A 10,000-job parametric campaign with a journal: interrupt it at any moment, run it again.

Each job squares its parameter (``square.txt``); at the end the outputs are summed and checked
against the expected total, so a job run twice or an output lost would show.

    python examples/campaign_10k.py                       # 10,000 jobs on the local backend
    python examples/campaign_10k.py --jobs 500            # a smaller one
    DIRACX_URL=https://diracx.example.org python examples/campaign_10k.py   # on DiracX

Press Ctrl-C (or kill it) whenever you like and start the same command again: the journal
(``campaign_10k.db``) makes the second run confirm what the first one created, submit only what
is missing, skip jobs already final and outputs already downloaded. ``AIODIRAC_EXAMPLE_JOBS``
sets the default number of jobs (the tests use it to stay fast).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from aiodirac import AsyncDirac, Job, JobStatus

PAYLOAD = "#!/bin/sh\n# square.sh N: writes N*N to square.txt\necho $(( $1 * $1 )) > square.txt\n"


def build_job(n_jobs: int, workdir: Path) -> Job:
    """One parametric job: ``n_jobs`` concrete jobs, ``x`` = 0 .. n_jobs - 1."""
    script = workdir / "square.sh"
    script.write_text(PAYLOAD)
    job = Job()
    job.setName("square-%n")
    job.setCPUTime(60)
    job.setInputSandbox([str(script)])
    job.setExecutable("/bin/sh", arguments="square.sh %(x)s")
    job.setOutputSandbox(["square.txt"])
    job.setParameterSequence("x", range(n_jobs))
    return job


async def run_campaign(n_jobs: int, journal: Path, dest: Path) -> int:
    """Submit, follow and download the campaign; return 0 when every square came back right."""
    dest.mkdir(parents=True, exist_ok=True)
    job = build_job(n_jobs, journal.parent)
    async with AsyncDirac(journal=journal) as dirac:
        assert dirac.journal is not None
        before = (await dirac.journal.summary()).jobs_confirmed
        started = time.monotonic()
        ids = await dirac.submit(job)
        print(
            f"submitted: {len(ids)} jobs in the campaign, {len(ids) - before} new, "
            f"{before} from an earlier run ({time.monotonic() - started:.1f} s)",
            flush=True,
        )

        last = 0.0
        async with dirac.track(ids) as stream:
            async for _event in stream:
                now = time.monotonic()
                if now - last >= 1.0:  # one progress line a second, however many events
                    last = now
                    s = stream.summary
                    print(f"  {s.final}/{s.total} final, {s.counts.get(JobStatus.DONE, 0)} done")
            final = stream.summary
        counts = ", ".join(f"{n} {status}" for status, n in final.counts.items())
        print(f"final: {counts}", flush=True)

        results = await dirac.download(ids, dest)
    failed = [r for r in results if not r.ok]
    total = sum(
        int((r.path / "square.txt").read_text()) for r in results if r.ok and r.path is not None
    )
    expected = sum(x * x for x in range(n_jobs))
    print(f"downloaded: {len(results) - len(failed)} outputs into {dest}, {len(failed)} failed")
    print(f"sum of squares: {total} (expected {expected})")
    return 0 if total == expected and not failed else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--jobs", type=int, default=int(os.environ.get("AIODIRAC_EXAMPLE_JOBS", "10000"))
    )
    parser.add_argument("--journal", type=Path, default=Path("campaign_10k.db"))
    parser.add_argument("--dest", type=Path, default=Path("campaign_10k_out"))
    return parser.parse_args(argv)


def main() -> int:
    import anyio

    args = parse_args()
    return anyio.run(run_campaign, args.jobs, args.journal.absolute(), args.dest)


if __name__ == "__main__":
    sys.exit(main())
