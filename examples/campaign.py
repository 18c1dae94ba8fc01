"""A parametric campaign on the embedded local backend, end to end, with progress.

    python examples/campaign.py [N_JOBS] [OUTPUT_DIR]

Submits N_JOBS (default 300) jobs of one parametric Job, tracks them as events, downloads each
output sandbox as soon as its job is Done, into OUTPUT_DIR/<job id>/ (default
./campaign-output/), then prints the combined result. The campaign journal in OUTPUT_DIR makes a
second run resume: nothing is submitted or downloaded twice.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from aiodirac import AsyncDirac, Job, JobEvent, JobStatus

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
    async with AsyncDirac(journal=out / "journal.sqlite") as dirac:
        print(f"aiodirac: {dirac.backend.description}")
        t0 = time.monotonic()
        ids = await dirac.submit(job)
        print(f"submitted {len(ids)} jobs in {time.monotonic() - t0:.2f} s")
        display = Display(len(ids))
        send: MemoryObjectSendStream[int]
        receive: MemoryObjectReceiveStream[int]
        send, receive = anyio.create_memory_object_stream[int](len(ids))
        failed: list[int] = []
        queued: set[int] = set()

        async def fetch() -> None:
            def on_progress(p: object) -> None:
                display.downloaded = getattr(p, "jobs_done", display.downloaded)
                display.show()

            async with receive:
                results = await dirac.download(receive, out, progress=on_progress)
            bad = [r for r in results if not r.ok]
            for r in bad[:5]:
                print(f"\njob {r.job_id}: output not downloaded: {r.error}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch)
            async with send, dirac.track(ids) as events:
                async for event in events:
                    display.counts = {str(k): v for k, v in events.summary.counts.items()}
                    display.show()
                    if isinstance(event, JobEvent) and event.final:
                        if event.status is JobStatus.DONE:
                            queued.add(event.job_id)
                            await send.send(event.job_id)
                        else:
                            failed.append(event.job_id)
                # jobs already final before tracking started (a resumed campaign) yield no event
                for job_id, state in events.final_states().items():
                    if state.status is JobStatus.DONE and job_id not in queued:
                        send.send_nowait(job_id)
        display.show(force=True)
        print()

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
    if failed:
        print(f"{len(failed)} jobs failed, e.g. {failed[:5]}")
    return 1 if failed or len(estimates) < len(ids) else 0


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    dest = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("campaign-output")
    raise SystemExit(anyio.run(main, n, dest))
