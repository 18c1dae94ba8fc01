"""A parametric campaign on the embedded local backend, end to end, with progress.

    python examples/campaign.py [N_JOBS] [OUTPUT_DIR]

Runs N_JOBS (default 300) jobs of one parametric Job as a campaign: submitted once, followed
as events, each output sandbox downloaded as soon as its job is Done, into OUTPUT_DIR/<job id>/
(default ./campaign-output/), a failed job retried; then prints the combined result. The
campaign journal in OUTPUT_DIR makes a second run resume: nothing is submitted, retried or
downloaded twice.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anyio

from aiodirac import AsyncDirac, DownloadFinished, FailurePolicy, GaveUp, Job, RetryStarted

HERE = Path(__file__).resolve().parent


def make_job(n_jobs: int) -> Job:
    job = Job(name="pi-%n", cpu_time=300)
    job.setExecutable(str(HERE / "payload" / "simulate.py"), arguments="%(seed)s 20000")
    job.setParameterSequence("seed", [1000 + i for i in range(n_jobs)])
    job.setOutputSandbox(["result.json"])
    return job


class Display:
    """One status line, rewritten in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = time.monotonic()
        self.tty = sys.stdout.isatty()
        self.last = 0.0
        self.counts: dict[str, int] = {}
        self.downloaded = 0

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.2 if self.tty else 3.0):
            return
        self.last = now
        states = "  ".join(f"{k} {v}" for k, v in sorted(self.counts.items()) if v)
        line = (
            f"[{now - self.start:6.1f}s] {self.total} jobs | {states or 'waiting for status'}"
            f" | outputs {self.downloaded}/{self.total}"
        )
        if self.tty:
            print("\r" + line.ljust(110), end="", flush=True)
        else:
            print(line, flush=True)


async def main(n_jobs: int, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    job = make_job(n_jobs)
    # A failed job runs again (rescheduled) 5 s later, up to 3 runs in all.
    policy = FailurePolicy(max_attempts=3, delay=5)
    async with AsyncDirac() as dirac:
        print(f"aiodirac: {dirac.backend.description}")
        campaign = dirac.campaign(job, journal=out / "journal.sqlite", dest=out, policy=policy)
        display = Display(n_jobs)
        t0 = time.monotonic()
        announced = False
        async with campaign:
            async for event in campaign:
                progress = campaign.progress
                if not announced and progress.submitted == progress.total:
                    print(f"submitted {progress.total} jobs in {time.monotonic() - t0:.2f} s")
                    announced = True
                display.counts = {str(k): v for k, v in progress.counts.items()}
                display.downloaded = progress.downloaded
                display.show()
                match event:
                    case RetryStarted(old_job_id=job_id, attempt=attempt, reason=reason):
                        print(f"\njob {job_id} failed ({reason}): attempt {attempt}")
                    case GaveUp(job_id=job_id, reason=reason):
                        print(f"\njob {job_id} given up: {reason}")
                    case DownloadFinished(result=result) if not result.ok:
                        print(f"\njob {result.job_id}: output not downloaded: {result.error}")
        display.show(force=True)
        print()
        ids = campaign.job_ids
        progress = campaign.progress

    estimates = []
    for job_id in ids:
        result = out / str(job_id) / "result.json"
        if result.exists():
            estimates.append(json.loads(result.read_text())["pi"])
    print(
        f"{len(estimates)} outputs in {out}/<job id>/ (std.out, Script1_simulate.py.log, result.json)"
    )
    if estimates:
        print(
            f"combined estimate of pi from {len(estimates)} jobs: {sum(estimates) / len(estimates):.5f}"
        )
    print(f"campaign: {progress.outcome} ({progress.retries} retries)")
    return 0 if progress.complete else 1


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    dest = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("campaign-output")
    raise SystemExit(anyio.run(main, n, dest))
