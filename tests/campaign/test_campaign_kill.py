"""SIGKILL a campaign process at ten moments of its life, resume it: nothing twice, nothing lost.

Each test runs the campaign in a child process (``campaign_child.py``) that freezes itself at
the chosen moment (it says so, then blocks) and is killed there; the campaign is then run again
to its end with the same journal. On the local backend and on the real DiracX (run by the test
pilot). Every job ends with exactly one live attempt, no output is fetched twice, and the
report data equals an uninterrupted run's.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from kill_support import Layout, check_backend, check_outputs, expected, normalized, run_child

from aiodirac.backends.local import LocalBackend

#: (moment, retry method): where the campaign is killed.
MOMENTS = [
    ("submit:after:1", "reschedule"),  # mid-submission: jobs created, their IDs not journaled
    ("confirm:before:1", "reschedule"),  # mid-confirmation: IDs journaled, not confirmed
    ("confirm:after:1", "reschedule"),  # confirmed on the server, not in the journal
    ("status:before:3", "reschedule"),  # while following
    ("output_sandbox:before:2", "reschedule"),  # mid-download
    ("downloaded:2", "reschedule"),  # between two downloads
    ("reschedule:before:1", "reschedule"),  # mid-retry: its intent journaled, not sent
    ("reschedule:after:1", "reschedule"),  # mid-retry: rescheduled, not journaled
    ("resubmit:after:1", "resubmit"),  # mid-resubmission: the new job created, not journaled
    ("report", "reschedule"),  # during the report
]

pytestmark = pytest.mark.slow


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    yield {"backend": "local"}
    async with LocalBackend(os.environ["AIODIRAC_HOME"]) as backend:
        await backend.stop_agent()


async def _finish(layout: Layout, settings: dict[str, Any], backend: Any, method: str) -> None:
    last = await run_child(settings, {})
    assert last == "END complete"
    await check_backend(backend, layout)
    check_outputs(layout)
    assert normalized(layout.journal) == expected(method)


async def test_an_uninterrupted_campaign_on_the_local_backend(
    tmp_path: Path, local: dict[str, Any]
) -> None:
    layout = Layout(tmp_path / "plain")
    for method in ("reschedule", "resubmit"):
        layout = Layout(tmp_path / method)
        settings = layout.settings(local, method)
        async with LocalBackend(os.environ["AIODIRAC_HOME"]) as backend:
            await _finish(layout, settings, backend, method)


@pytest.mark.parametrize(("stop", "method"), MOMENTS)
async def test_killed_and_resumed_on_the_local_backend(
    tmp_path: Path, local: dict[str, Any], stop: str, method: str
) -> None:
    layout = Layout(tmp_path / "c")
    settings = layout.settings(local, method)
    await run_child(settings, {}, stop=stop)
    async with LocalBackend(os.environ["AIODIRAC_HOME"]) as backend:
        await _finish(layout, settings, backend, method)


@pytest.mark.diracx
@pytest.mark.parametrize(("stop", "method"), MOMENTS)
async def test_killed_and_resumed_on_diracx(
    tmp_path: Path, diracx_server: Any, stop: str, method: str
) -> None:
    server = {
        "backend": "diracx",
        "url": diracx_server.url,
        "credentials": str(diracx_server.credentials_path),
        "verify": diracx_server.verify,
    }
    layout = Layout(tmp_path / "c")
    settings = layout.settings(server, method)
    pilot = diracx_server.pilot(tmp_path / "grid", diracx_server.credentials_path)
    async with pilot, anyio.create_task_group() as grid:
        grid.start_soon(_play_the_grid, pilot)
        await run_child(settings, {}, stop=stop)
        async with diracx_server.backend(diracx_server.credentials_path) as backend:
            await _finish(layout, settings, backend, method)
        grid.cancel_scope.cancel()


async def _play_the_grid(pilot: Any) -> None:
    """Run the owner's waiting jobs as a grid would, until cancelled."""
    while True:
        if not await pilot.run_waiting():
            await anyio.sleep(0.2)  # a grid's polling interval, not a synchronisation
