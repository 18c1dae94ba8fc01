"""The HTML report: self-contained, escaped, deterministic, written whole; matplotlib optional."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import aiodirac
from aiodirac import ConfigurationError, InvalidArgumentError, ReportData, render_report
from aiodirac._report import Downloads, Retries, Submissions, Transitions, write_report
from aiodirac.testing import synthetic_report_data

T0 = 1_790_000_000.0
HOSTILE = (
    '<script>alert("x")</script>',
    '"><img src=x onerror=alert(1)>',
    "$\\frac{1}{$ ]]> &amp; <!-- --> <svg onload=alert(2)>",
    ' id="x" href="#y" url(#z)',
    "esc\x1b[31mred \u202eevil\x00 two\nlines 🚀 漢字",
)


class _Tags(HTMLParser):
    """Every start tag and attribute name of a document, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def _tags(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def _hostile_data() -> ReportData:
    """A small campaign whose every server- or job-supplied string is an injection attempt."""
    a, b, c, d, e = HOSTILE
    return ReportData(
        campaign=a,
        backend=b,
        created=T0,
        jobs=4,
        transitions=Transitions.from_rows(
            [
                (1, 1, "Running", "Application", c, a, T0 + 10),
                (1, 1, "Failed", b, c, c, T0 + 20),
                (2, 1, "Running", "Application", "", b, T0 + 10),
                (2, 1, a, c, "", b, T0 + 30),
                (3, 1, "Failed", d, "", d, T0 + 30),
                (4, 1, "Failed", e, e, e, T0 + 35),
            ]
        ),
        submissions=Submissions.from_rows([(1, 1, T0 + 1), (2, 1, T0 + 1)]),
        retries=Retries.from_rows([]),
        downloads=Downloads.from_rows([(2, False, 0, T0 + 40, a)]),
        ended=T0 + 50,
        outcome=c,
    )


def test_report_is_self_contained_and_has_every_chart() -> None:
    page = render_report(synthetic_report_data(300, seed=3))
    found = _tags(page)
    assert page.count("<svg") == 7
    # Nothing to fetch or run: no URL at all, no script, no external resource element.
    assert "://" not in page
    assert "url(" not in page.replace("url(#", "")
    assert not found.tags & {"script", "img", "link", "iframe", "object", "embed", "image"}
    assert "Content-Security-Policy" in page
    assert "default-src 'none'" in html.unescape(page)
    for title in (
        "Jobs per status over time",
        "Submission and completion rate",
        "Time waiting and running",
        "Failures by site",
        "Failures by minor status",
        "Attempts per job",
        "Downloads",
    ):
        assert f"<h2>{title}</h2>" in page


def test_every_campaign_string_is_escaped() -> None:
    page = render_report(_hostile_data())
    found = _tags(page)
    assert not found.tags & {"script", "img"}
    assert not {a for a in found.attributes if a.startswith("on")}
    for text in HOSTILE[:3]:  # the fourth holds no markup, only look-alikes of ids
        assert text not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page  # the header, the table
    # matplotlib read no "$...$" as mathematics: the minor status is on its axis as written.
    assert "$\\frac{1}{$" in page.replace("&lt;", "<")
    # The charts' own ids are made unique per chart, but never inside a job's text.
    chart = page.split('aria-label="sites"')[1].split("</svg>")[0]
    assert html.unescape(HOSTILE[3]) in html.unescape(chart)
    # Controls and bidi marks are shown, not obeyed, in the charts and the tables alike; other
    # scripts are kept (and matplotlib's warning about glyphs its font lacks is not raised).
    shown = "esc\\x1b[31mred \\u202eevil\\x00 two\\nlines 🚀 漢字"
    assert shown in chart
    table = page.split('aria-label="sites"')[1].split("</svg>")[1]  # the sites' table
    assert f"<td>{html.escape(shown, quote=True)}</td>" in table
    assert not {"\x00", "\x1b", "\u202e"} & set(page)


def test_same_data_gives_the_same_page_in_any_process() -> None:
    # Two processes with different string hashing (set order) write the same bytes.
    code = (
        "import hashlib, sys; from aiodirac import render_report; "
        "from aiodirac.testing import synthetic_report_data; "
        "print(hashlib.sha256(render_report(synthetic_report_data(200, seed=5)).encode())"
        ".hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1


def test_a_campaign_with_nothing_yet_has_a_page() -> None:
    data = ReportData(
        campaign="empty",
        backend="local",
        created=T0,
        jobs=0,
        transitions=Transitions.from_rows([]),
        submissions=Submissions.from_rows([]),
        retries=Retries.from_rows([]),
        downloads=Downloads.from_rows([]),
        ended=None,
        outcome="running",
    )
    page = render_report(data)
    assert "<svg" not in page
    assert "No status was recorded." in page
    assert "still running" in page


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder of the test's own, for tests that list what was written."""
    path = tmp_path / "reports"
    path.mkdir()
    return path


def test_write_report_replaces_the_file_whole(folder: Path) -> None:
    target = folder / "report.html"
    target.write_text("old")
    assert write_report(synthetic_report_data(50), target) == target
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in folder.iterdir()) == ["report.html"]


def test_a_killed_writers_leftover_is_removed_by_the_next_write(folder: Path) -> None:
    # A writer killed between writing and renaming leaves its temporary file; the next write
    # of the same report removes it once its process is gone, never a live writer's.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = folder / f".report.html.{gone.stdout.strip()}.0a1b2c3d.tmp"
    live = folder / f".report.html.{os.getpid()}.0a1b2c3d.tmp"
    other = folder / f".other.html.{gone.stdout.strip()}.0a1b2c3d.tmp"
    for leftover in (dead, live, other):
        leftover.write_text("<!DOCTYPE html><p>half")
    write_report(synthetic_report_data(20), folder / "report.html")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["report.html", live.name, other.name]
    )


def test_bad_arguments_are_typed_errors_before_anything_is_written(folder: Path) -> None:
    data = synthetic_report_data(10)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        write_report(data, folder / "missing" / "report.html")
    with pytest.raises(InvalidArgumentError, match="is a folder"):
        write_report(data, folder)
    with pytest.raises(InvalidArgumentError, match="not a dict"):
        write_report({"jobs": 1}, folder / "r.html")  # type: ignore[arg-type]
    assert list(folder.iterdir()) == []


def test_without_matplotlib_the_error_says_what_to_install(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'aiodirac\[report\]'"):
        write_report(synthetic_report_data(10), folder / "r.html")
    assert list(folder.iterdir()) == []


def test_importing_aiodirac_does_not_import_matplotlib_or_numpy() -> None:
    code = (
        "import sys, aiodirac, aiodirac.testing; aiodirac.write_report; aiodirac.ReportData; "
        "print(sorted(m for m in ('matplotlib', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert aiodirac.write_report is write_report
