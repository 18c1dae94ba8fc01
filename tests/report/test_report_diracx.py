"""The report of a campaign run on the real DiracX server (a test pilot plays the grid)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from _browser import CHARTS, Browser, open_page

from aiodirac import AsyncDirac, FailurePolicy, Job, TrackConfig, read_report_data
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
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "flaky.sh"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$2" != 2 ] || [ -e "$1/$2" ]; then echo "n=$2"; exit 0; fi\n'
        'touch "$1/$2"; exit 1\n'
    )
    script.chmod(0o755)
    job = Job()
    job.setName("dx-report-%n")
    job.setExecutable(str(script), arguments=f"{marks} %(n)s")
    job.setParameterSequence("n", ["1", "2", "3"])
    credentials = diracx_server.write_credentials(tmp_path / "credentials.json")
    fast = TrackConfig(min_interval=0.2, max_interval=0.5)
    async with (
        AsyncDirac(url=diracx_server.url, token=diracx_server.token(), track_config=fast) as dirac,
        DiracXTestPilot(
            diracx_server.url,
            jobdb_path=diracx_server.jobdb_path,
            workdir=tmp_path / "grid",
            credentials_path=credentials,
        ) as pilot,
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
    assert data.backend.startswith(diracx_server.url) or diracx_server.url in data.backend

    with Browser.start(tmp_path, chromium) as browser:
        page = open_page(browser, report)
        charts = {chart["name"]: chart for chart in page.evaluate(CHARTS)}
        page.screenshot(tmp_path / "dx.png")
        assert page.errors == []
        assert page.requests == [report.as_uri()]
    assert {"status", "rates", "sites", "minor", "attempts", "downloads"} <= set(charts)
    assert SITE in charts["sites"]["texts"]
    assert "Application Finished With Errors" in charts["minor"]["texts"]
