"""The kill tests' tools: run the campaign child, kill it at a moment, check what it left.

A campaign killed at a moment and resumed must leave what an uninterrupted one leaves: every
job with exactly one live attempt (Done), nothing the journal does not hold but the swept
leftovers (Killed before they ever ran), each output fetched once, and the same report data.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from aiodirac import JobStatus, read_report_data
from aiodirac._campaign._records import STRIDE
from aiodirac._job._monitoring import JobSelection
from aiodirac.backends import Backend

CHILD = Path(__file__).with_name("campaign_child.py")
JOBS = 24
FAILING = (3, 10, 17)

FLAKY = """#!/bin/sh
case "$2" in 3|10|17) ;; *) echo "n=$2"; exit 0;; esac
if [ -e "$1/$2" ]; then echo "n=$2 again"; exit 0; fi
touch "$1/$2"; exit 1
"""


@dataclass(frozen=True)
class Layout:
    """The files of one campaign run by the child."""

    root: Path

    @property
    def journal(self) -> Path:
        return self.root / "c.db"

    @property
    def dest(self) -> Path:
        return self.root / "out"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def settings(self, backend: Mapping[str, Any], method: str) -> dict[str, Any]:
        script = self.root / "flaky.sh"
        if not script.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            script.write_text(FLAKY)
            script.chmod(0o755)
            (self.root / "marks").mkdir()
        return {
            **backend,
            "journal": str(self.journal),
            "dest": str(self.dest),
            "report": str(self.report),
            "jobs": JOBS,
            "script": str(script),
            "marks": str(self.root / "marks"),
            "method": method,
        }


async def run_child(
    settings: Mapping[str, Any], env: Mapping[str, str], stop: str | None = None
) -> str:
    """Run the child; with ``stop``, SIGKILL it once it says it is there. Its last line."""
    command = [sys.executable, str(CHILD), json.dumps({**settings, "stop": stop})]
    async with await anyio.open_process(command, env={**os.environ, **env}) as process:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        last = ""
        with anyio.fail_after(300):
            while True:
                try:
                    line = (await lines.receive_until(b"\n", 65536)).decode()
                except (anyio.IncompleteRead, anyio.EndOfStream):
                    break
                last = line
                if stop is not None and line == f"AT {stop}":
                    process.send_signal(signal.SIGKILL)
                    break
            code = await process.wait()
    if stop is not None:
        assert code == -signal.SIGKILL, f"the child was not stopped at {stop}: {last!r}"
    else:
        assert code == 0, f"the campaign did not complete: {last!r}"
    return last


def normalized(journal: Path) -> dict[str, Any]:
    """What a report shows, without times and IDs: each job's attempts and how they ended."""
    data = read_report_data(journal)
    final: dict[tuple[int, int], str] = {}
    for t in data.transitions:
        final[(t.job_id, t.attempt)] = t.status
    after = {(r.job_id, r.attempt - 1): r.new_job_id for r in data.retries}
    fetched = {d.job_id for d in data.downloads if d.ok}
    chains = []
    for first in (s.job_id for s in data.submissions if s.attempt == 1):
        chain, job_id, attempt = [], first, 1
        while True:
            chain.append((attempt, final.get((job_id, attempt))))
            if (job_id, attempt) not in after:
                break
            job_id, attempt = after[(job_id, attempt)], attempt + 1
        chains.append((tuple(chain), job_id in fetched))
    return {
        "jobs": data.jobs,
        "chains": sorted(chains),
        "submissions": len(data.submissions),
        "retries": len(data.retries),
        "download_failures": sum(1 for d in data.downloads if not d.ok),
        "outcome": data.outcome,
        "ended": data.ended is not None,
    }


def expected(method: str) -> dict[str, Any]:
    """What an uninterrupted campaign of the flaky job gives."""
    ok = (((1, "Done"),), True)
    retried = (((1, "Failed"), (2, "Done")), True)
    return {
        "jobs": JOBS,
        "chains": sorted([ok] * (JOBS - len(FAILING)) + [retried] * len(FAILING)),
        "submissions": JOBS + (len(FAILING) if method == "resubmit" else 0),
        "retries": len(FAILING),
        "download_failures": 0,
        "outcome": "complete",
        "ended": True,
    }


async def check_backend(backend: Backend, layout: Layout) -> None:
    """One live attempt per job; nothing on the server but the journal's jobs and swept ones."""
    db = sqlite3.connect(layout.journal)
    try:
        (group,) = db.execute("SELECT job_group FROM campaign").fetchone()
        journaled = dict(db.execute("SELECT job_id, idx FROM jobs WHERE confirmed = 1"))
    finally:
        db.close()
    on_server = await backend.select_jobs(JobSelection.build(job_group=group))
    states = await backend.status(on_server)
    live: Counter[int] = Counter()
    for job_id, state in states.items():
        if job_id not in journaled:
            # created by a request whose reply was lost: swept before it ever ran
            assert state.status is JobStatus.KILLED, (job_id, state)
            assert state.minor_status.startswith("Swept by aiodirac"), (job_id, state)
            continue
        index = journaled[job_id] % STRIDE
        if state.status is JobStatus.DONE:
            live[index] += 1
        else:
            assert state.status in (JobStatus.FAILED, JobStatus.KILLED), (job_id, state)
            assert index in FAILING, (job_id, state)
    assert live == Counter(range(JOBS)), live
    assert set(journaled) <= set(on_server)


def check_outputs(layout: Layout) -> None:
    """Every output fetched once, in its job's folder.

    A fetch the downloader finished and journaled just before the kill, but did not report
    yet, is not in the log: the journal has it, and the resumed run does not fetch it again.
    """
    log = layout.dest.with_name(layout.dest.name + ".fetched")
    counts = Counter(log.read_text().split() if log.exists() else ())
    assert all(n == 1 for n in counts.values()), counts
    db = sqlite3.connect(layout.journal)
    try:
        journaled = {str(r[0]) for r in db.execute("SELECT job_id FROM downloads")}
    finally:
        db.close()
    assert set(counts) <= journaled
    assert len(journaled) == JOBS
    texts = sorted((layout.dest / job_id / "std.out").read_text().strip() for job_id in journaled)
    want = sorted(f"n={n} again" if n in FAILING else f"n={n}" for n in range(JOBS))
    assert texts == want
    assert layout.report.is_file()
