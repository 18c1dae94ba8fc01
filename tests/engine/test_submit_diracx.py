"""Fault tests of the submitter against the real DiracX server, behind the fault proxy.

Exactly once, checked on the server itself: every job of the campaign (its JobGroup) is listed
straight from DiracX (not through the proxy), and each parameter value must appear in exactly
one confirmed job, every other job of the group being a swept leftover (Killed), none left in
Submitting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from _server_checks import assert_exactly_once_on_server, group_jobs, make_job

from aiodirac._engine._gate import Limits, RequestGate
from aiodirac._engine._retry import RetryPolicy
from aiodirac._engine.submit._model import SubmitReport
from aiodirac._engine.submit._submitter import SubmitConfig, Submitter
from aiodirac._job._status import JobStatus
from aiodirac._journal import Journal
from aiodirac.testing._proxy import FaultProxy, ProxyFaults
from child_processes import child

pytestmark = [pytest.mark.diracx, pytest.mark.slow]

HERE = Path(__file__).resolve().parent


@dataclass
class FaultyRun:
    """What a campaign submitted through the fault proxy left: in the client and on the server."""

    ids: list[int]
    report: SubmitReport
    proxy: Counter[str]
    statuses: Counter[str]
    swept: list[int]


async def submit_through_faults(
    server: Any, tmp_path: Path, name: str, n: int, faults: ProxyFaults, *, timeout: float
) -> FaultyRun:
    """Submit ``n`` jobs through the proxy, then check exactly once on the server itself."""
    credentials = server.write_credentials(tmp_path / "credentials.json")
    config = SubmitConfig(campaign=name)
    config_limits = Limits(retry=RetryPolicy(initial=0.2, max_backoff=2))
    async with (
        FaultProxy(server.url, faults, verify=server.verify) as proxy,
        server.backend(credentials, url=proxy.url, timeout=timeout) as backend,
        await Journal.open(tmp_path / "journal.db") as journal,
    ):
        submitter = Submitter(backend, config, gate=RequestGate(config_limits), journal=journal)
        ids = await submitter.submit(make_job(name, n))
        campaign = await journal.campaign()
        journal_ids = await journal.jobs()
        swept = await journal.swept_ids()
        # Whatever the proxy still holds reaches the server now (it would, without the proxy).
        await anyio.sleep(faults.late_time + 1 if faults.late else 0)
    assert campaign is not None
    assert submitter.report is not None
    assert len(ids) == len(set(ids)) == n
    statuses = assert_exactly_once_on_server(
        group_jobs(server, campaign.job_group), name, n, journal_ids
    )
    return FaultyRun(ids, submitter.report, proxy.stats, statuses, swept)


async def test_2000_jobs_through_resets_503s_and_stalls(diracx_server: Any, tmp_path: Path) -> None:
    # Seed 2027 draws each kind of fault within the first 60 requests (a run makes at least 100),
    # so that every kind surely happens; 2026 drew its first stall only at request 129.
    faults = ProxyFaults(reset=0.10, unavailable=0.05, stall=0.05, stall_time=20, seed=2027)
    run = await submit_through_faults(diracx_server, tmp_path, "faults", 2000, faults, timeout=3)
    # The faults did happen, and did cause duplicates on the server.
    assert run.proxy["reset"] > 0
    assert run.proxy["unavailable"] > 0
    assert run.proxy["stalled"] > 0
    assert run.report.resent > 0
    assert run.statuses[JobStatus.KILLED] == len(run.swept) == run.report.swept
    assert run.report.swept > 0, "resets after forwarding must leave leftovers to sweep"


async def test_jobs_created_after_the_client_gave_up_are_swept(
    diracx_server: Any, tmp_path: Path
) -> None:
    """A loaded server finishes a submit request after its client timed out: the jobs appear
    seconds later. The sweep waits for them (``settle_time``) instead of missing them."""
    faults = ProxyFaults(late=0.3, late_time=2.5, paths=("/api/jobs/jdl",), seed=11)
    run = await submit_through_faults(diracx_server, tmp_path, "late", 200, faults, timeout=1)
    assert run.proxy["late"] > 0
    assert run.report.resent >= run.proxy["late"]
    # Every late request created its chunk on the server, after the client had given up; so
    # did every request a loaded server answered past the client's 1 s timeout (each resent).
    assert run.statuses[JobStatus.KILLED] == run.report.swept == 20 * run.report.resent


async def test_cancellation_then_resume_on_diracx(diracx_server: Any, tmp_path: Path) -> None:
    n = 300
    credentials = diracx_server.write_credentials(tmp_path / "credentials.json")
    config = SubmitConfig(campaign="cancel")
    config_limits = Limits(rate=20, burst=2)
    job = make_job("cancel", n)
    async with (
        diracx_server.backend(credentials) as backend,
        await Journal.open(tmp_path / "journal.db") as journal,
    ):
        with anyio.move_on_after(0.6) as scope:
            await Submitter(
                backend, config, gate=RequestGate(config_limits), journal=journal
            ).submit(job)
        assert scope.cancelled_caught
        partial = await journal.summary()
        assert partial.jobs_confirmed < n
        submitter = Submitter(backend, config, gate=RequestGate(config_limits), journal=journal)
        ids = await submitter.submit(job)
        assert len(ids) == n
        campaign = await journal.campaign()
        journal_ids = await journal.jobs()
    assert campaign is not None
    assert_exactly_once_on_server(
        group_jobs(diracx_server, campaign.job_group), "cancel", n, journal_ids
    )


def test_sigkill_at_10_moments_then_resume(diracx_server: Any, tmp_path: Path) -> None:
    n = 800
    credentials = diracx_server.write_credentials(tmp_path / "credentials.json")
    journal = tmp_path / "journal.db"
    command = [
        sys.executable,
        str(HERE / "_submit_campaign.py"),
        diracx_server.url,
        str(credentials),
        str(journal),
        str(n),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env.update(diracx_server.client_environment(credentials))
    outputs: list[str] = []
    kills = 0
    for moment in range(10):
        with child(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as process:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
            # From just after start-up to well into the run: each run is killed once it has
            # confirmed 15 more jobs than the one before (none for the first), wherever it is
            # then (the lines are printed while the next requests are under way).
            confirmed: list[str] = []
            while len(confirmed) < 15 * moment:
                line = process.stdout.readline()
                confirmed.append(line)
                if not line or line.strip() == "done":
                    break
            process.send_signal(signal.SIGKILL)  # does nothing if the run already ended
            rest, _ = process.communicate(timeout=60)
            out = "".join(confirmed) + rest
        outputs.append(out)
        if process.returncode == 0:
            # A fast server let the campaign finish before this kill: nothing left to cut.
            assert out.strip().endswith("done")
            break
        assert process.returncode == -signal.SIGKILL
        kills += 1
    assert kills >= 5, f"only {kills} runs were killed before the campaign completed"
    final = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert final.returncode == 0, final.stderr[-3000:]
    assert final.stdout.strip().endswith("done")

    async def read() -> tuple[Any, dict[int, tuple[int, bool]], list[int]]:
        async with await Journal.open(journal) as j:
            return await j.campaign(), await j.jobs(), await j.swept_ids()

    campaign, journal_ids, swept = anyio.run(read)
    rows = group_jobs(diracx_server, campaign.job_group)
    assert_exactly_once_on_server(rows, "kill", n, journal_ids)
    # A kill that landed during a request left jobs the server created but no journal recorded;
    # whether one did depends on timing. Such jobs were swept to Killed (the helper checks the
    # minor status of every Killed job); each sweep the journal recorded is Killed on the server
    # (a kill between a sweep and its journal entry may leave a Killed job unrecorded).
    killed = {int(row["JobID"]) for row in rows if row["Status"] == JobStatus.KILLED}
    assert set(swept) <= killed
    # Some kills interrupted runs that had confirmed jobs; the work really was spread out.
    assert sum(1 for out in outputs if out.strip()) >= 3
