"""The report of a campaign run on the real DiracX server (a test pilot plays the grid)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from _browser import load_report
from _flaky import flaky_job

from aiodirac import AsyncDirac, FailurePolicy, TrackConfig, read_report_data
from aiodirac._campaign import Campaign
from aiodirac.testing import DiracXTestPilot

pytestmark = pytest.mark.diracx
SITE = "DIRAC.aiodirac-test.local"  # where the test pilot says its jobs run


async def _play_grid(pilot: DiracXTestPilot, campaign: Campaign, done: anyio.Event) -> None:
    """Run the campaign's waiting jobs (its retries too) until it has ended, as pilots do."""
    while not done.is_set():
        if not await pilot.run_jobs(campaign.job_ids):
            await anyio.sleep(0.1)  # a pilot's poll for work, not a synchronisation


async def test_report_of_a_diracx_campaign(
    diracx_server: Any, chromium: str, tmp_path: Path
) -> None:
    # Three jobs; n=2 fails once (Application Finished With Errors) and is rescheduled.
    job = flaky_job(tmp_path, 3, "dx-report-%n")
    credentials = diracx_server.write_credentials(tmp_path / "credentials.json")
    fast = TrackConfig(min_interval=0.2, max_interval=0.5)
    async with (
        AsyncDirac(
            url=diracx_server.url,
            token=diracx_server.token(),
            verify=diracx_server.verify,
            track_config=fast,
        ) as dirac,
        diracx_server.pilot(tmp_path / "grid", credentials) as pilot,
    ):
        campaign = dirac.campaign(
            job,
            journal=tmp_path / "dx.db",
            dest=tmp_path / "out",
            policy=FailurePolicy(delay=0, max_failed_fraction=1),
        )
        done = anyio.Event()
        async with anyio.create_task_group() as grid:
            grid.start_soon(_play_grid, pilot, campaign, done)
            progress = await campaign.run()
            done.set()
    assert progress.outcome == "complete"
    report = await campaign.write_report(tmp_path / "report.html")
    data = await anyio.to_thread.run_sync(read_report_data, tmp_path / "dx.db")
    assert (data.jobs, len(data.retries), len(data.downloads)) == (3, 1, 3)
    assert diracx_server.url in data.backend

    charts = load_report(chromium, tmp_path, report, tmp_path / "dx.png")
    assert {"status", "rates", "sites", "minor", "attempts", "downloads"} <= set(charts)
    assert SITE in charts["sites"]["texts"]
    assert "Application Finished With Errors" in charts["minor"]["texts"]
