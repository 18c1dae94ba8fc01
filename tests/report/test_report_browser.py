"""The report in a real browser: headless Chromium loads it, draws every chart, logs no error.

Chromium comes from the distribution (``apt-get install chromium``; scripts/test.sh installs it
when missing). Without it these tests fail, unless ``AIODIRAC_SKIP_BROWSER=1`` skips them
(the ``chromium`` fixture, tests/report/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
from _browser import Browser, load_report, open_page, png_size
from _flaky import flaky_job
from test_report_html import HOSTILE, _hostile_data

from aiodirac import (
    AsyncDirac,
    FailurePolicy,
    read_report_data,
    render_report,
    write_report,
)
from aiodirac._report._page import CSP
from aiodirac.backends.local import LocalBackend
from aiodirac.testing import synthetic_report_data


def test_report_loads_with_no_error_and_draws_every_chart(chromium: str, tmp_path: Path) -> None:
    report = write_report(synthetic_report_data(2000, seed=7), tmp_path / "report.html")
    shot = tmp_path / "report.png"
    charts = load_report(chromium, tmp_path, report, shot)
    assert list(charts) == [
        "status",
        "rates",
        "durations",
        "sites",
        "minor",
        "attempts",
        "downloads",
    ]
    for name, chart in charts.items():
        assert chart["width"] > 500, name
        assert chart["height"] > 100, name
        assert chart["shapes"] > 10, name
    texts = {name: chart["texts"] for name, chart in charts.items()}
    assert {"Running", "Done", "Waiting"} <= set(texts["status"])
    assert "LCG.PIC.es" in texts["sites"]
    assert "Application Finished With Errors" in texts["minor"]
    width, height = png_size(shot)
    assert width == 1100
    assert height > 3000  # the whole page, not the first screen
    assert shot.stat().st_size > 50_000


def test_hostile_strings_stay_text_in_the_browser(chromium: str, tmp_path: Path) -> None:
    report = write_report(_hostile_data(), tmp_path / "report.html")
    with Browser.start(tmp_path, chromium) as browser:
        page = open_page(browser, report)
        heading = page.evaluate("document.querySelector('h1').textContent")
        planted = page.evaluate(
            "document.querySelectorAll('script, img, svg:not(.chart), [onerror], [onload]').length"
        )
        cells = page.evaluate("[...document.querySelectorAll('td')].map(td => td.textContent)")
        assert page.errors == []
        assert page.requests == [report.as_uri()]
    assert heading == f"Campaign {HOSTILE[0]}"
    assert planted == 0
    assert HOSTILE[1] in cells  # the backend, shown as written


def test_the_checks_see_errors_and_requests(chromium: str, tmp_path: Path) -> None:
    # The same checks on pages that do fail them: a script error, and a page under the report's
    # policy that tries a script and an image from the network.
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><p>x<script>console.error('boom'); missing();</script>")
    locked = tmp_path / "locked.html"
    locked.write_text(
        f'<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="{CSP}">'
        "<script>document.title = 'ran'</script><img src='http://127.0.0.1:9/x.png'>"
    )
    with Browser.start(tmp_path, chromium) as browser:
        first = open_page(browser, broken)
        second = open_page(browser, locked)
        assert second.evaluate("document.title") != "ran"
    assert any("boom" in e for e in first.errors)
    assert any("missing" in e for e in first.errors)
    assert any("Content Security Policy" in e for e in second.errors)


async def test_report_of_a_real_local_campaign(chromium: str, tmp_path: Path) -> None:
    # Four real jobs on the local backend; n=2 fails once and is rescheduled. The report is
    # drawn from the campaign's own journal, as 'aiodirac campaign report --html' does.
    job = flaky_job(tmp_path, 4, "real-%n")
    async with AsyncDirac() as dirac:
        try:
            campaign = dirac.campaign(
                job,
                journal=tmp_path / "real.db",
                dest=tmp_path / "out",
                policy=FailurePolicy(delay=0, max_failed_fraction=1),
            )
            assert (await campaign.run()).outcome == "complete"
        finally:
            assert isinstance(dirac.backend, LocalBackend)
            await dirac.backend.stop_agent()
    report = await campaign.write_report(tmp_path / "report.html")
    data = await anyio.to_thread.run_sync(read_report_data, tmp_path / "real.db")
    assert (data.jobs, len(data.retries), len(data.downloads)) == (4, 1, 4)
    assert report.read_text() == render_report(data)

    charts = load_report(chromium, tmp_path, report, tmp_path / "real.png")
    assert {"status", "rates", "sites", "minor", "attempts", "downloads"} <= set(charts)
    assert "DIRAC.vm.local" in charts["sites"]["texts"]  # the local backend's site
    assert "Application Finished With Errors" in charts["minor"]["texts"]
    assert all(chart["shapes"] > 5 for chart in charts.values())
    assert png_size(tmp_path / "real.png")[1] > 2000
