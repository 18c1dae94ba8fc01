"""``aiodirac campaign report --html``: the report with charts of a real local campaign."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli_support import Invoke, flaky_script


def _flaky_campaign(aiodirac: Invoke, tmp_path: Path) -> None:
    """Five real jobs on the local backend; n=2 and n=4 fail once and are rescheduled."""
    script, marks = flaky_script(tmp_path)
    run = aiodirac(
        "campaign", "run", "-j", "r.db", "-d", "out", "-p", "n=1..5", "--retry-delay", "0",
        "--max-failed", "1", "--", str(script), str(marks), "%(n)s",
    )  # fmt: skip
    assert run.code == 0, run.stderr


def test_report_html_of_a_real_campaign(aiodirac: Invoke, tmp_path: Path) -> None:
    _flaky_campaign(aiodirac, tmp_path)
    plain = aiodirac("campaign", "report", "-j", "r.db", "--html", "report.html")
    assert plain.code == 0, plain.stderr
    assert "Report with charts written to report.html" in plain.stdout
    page = (tmp_path / "report.html").read_text()
    for chart in ("status", "rates", "sites", "minor", "attempts", "downloads"):
        assert f'aria-label="{chart}"' in page
    # Local jobs often run between two polls: then no Running is seen, and the page says why.
    assert 'aria-label="durations"' in page or "No attempt was seen Running" in page
    assert "<h1>Campaign r</h1>" in page
    assert '<p class="outcome complete">complete</p>' in page

    as_json = aiodirac("--json", "campaign", "report", "-j", "r.db", "--html", "again.html")
    assert as_json.code == 0, as_json.stderr
    assert as_json.json()["html"] == "again.html"
    assert (tmp_path / "again.html").read_text() == page


def test_report_html_refuses_what_it_cannot_write(aiodirac: Invoke, tmp_path: Path) -> None:
    _flaky_campaign(aiodirac, tmp_path)
    run = aiodirac("campaign", "report", "-j", "r.db", "--html", "no/such/folder/r.html")
    assert run.code == 2
    assert "the folder 'no/such/folder' does not exist" in run.stderr
    assert "InvalidArgumentError" not in run.stderr  # a sentence, not a Python class name
    # jobs submitted with --journal but never run as a campaign: no history to draw
    assert aiodirac("submit", "-j", "plain.db", "--", "/bin/true").code == 0
    plain = aiodirac("campaign", "report", "-j", "plain.db", "--html", "p.html")
    assert plain.code == 2
    assert "no campaign history to draw" in plain.stderr
    assert not (tmp_path / "p.html").exists()


def test_report_html_without_matplotlib_says_what_to_install(
    aiodirac: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _flaky_campaign(aiodirac, tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the extra were not installed
    run = aiodirac("campaign", "report", "-j", "r.db", "--html", "report.html")
    assert run.code == 2, run.stderr
    assert "pip install 'aiodirac[report]'" in run.stderr
    assert "ConfigurationError" not in run.stderr
    assert not (tmp_path / "report.html").exists()
