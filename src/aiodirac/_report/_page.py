"""The report's HTML page: header, summary table, charts and failure tables, in one string.

Everything is inline (CSS, SVG); nothing is fetched, and the page says so to the browser: its
Content-Security-Policy allows no script, no font, no image and no connection at all, so even a
string that slipped past escaping could not run or call out. Every string that comes from a
campaign (its name, the backend, sites, minor statuses, errors) is HTML-escaped here; the charts'
texts are escaped by matplotlib's SVG writer.

Usage::

    html = render_page(data, digest, {"status": svg, ...})
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from aiodirac._text import inert

from ._data import ReportData
from ._digest import Digest

__all__ = ["render_page"]

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)

CSS = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #dde2ea; --ok: #2e9e5b;
        --warn: #c0392b; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 40px; }
header h1 { margin: 0 0 4px; font-size: 26px; overflow-wrap: anywhere; }
header .sub { color: var(--muted); margin: 0 0 14px; overflow-wrap: anywhere; }
.outcome { display: inline-block; padding: 4px 12px; border-radius: 999px; font-weight: 600;
           color: #fff; background: var(--warn); overflow-wrap: anywhere; }
.outcome.complete { background: var(--ok); }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 14px 18px; margin: 18px 0; }
h2 { font-size: 18px; margin: 0 0 8px; }
p.note { color: var(--muted); margin: 4px 0 0; font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line);
         vertical-align: top; overflow-wrap: anywhere; }
th[scope=row] { white-space: nowrap; overflow-wrap: normal; }
td.n, th.n { text-align: right; white-space: nowrap; }
.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 0 28px; }
svg.chart { width: 100%; height: auto; display: block; }
.empty { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 12px; text-align: center; }
"""


def _e(text: object) -> str:
    """``text`` for the page: control and bidi characters shown, then HTML-escaped."""
    return html.escape(inert(text), quote=True)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min {int(seconds % 60)} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _share(part: int, whole: int) -> str:
    return f"{part:,} ({100.0 * part / whole:.1f}%)" if whole else f"{part:,}"


def _table(rows: Sequence[tuple[str, str]], caption: str = "") -> str:
    head = f"<caption>{_e(caption)}</caption>" if caption else ""
    body = "".join(f"<tr><th scope=row>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{head}{body}</table>"


def _counts(rows: Sequence[tuple[str, int]], what: str, total: int) -> str:
    body = "".join(
        f"<tr><td>{_e(label)}</td><td class=n>{_e(_share(count, total))}</td></tr>"
        for label, count in rows
    )
    return f"<table><tr><th>{_e(what)}</th><th class=n>failed attempts</th></tr>{body}</table>"


def _summary(data: ReportData, digest: Digest) -> str:
    ended = data.ended
    campaign = [
        ("Backend", data.backend),
        ("Started", _when(data.created)),
        ("Ended", _when(ended) if ended is not None else "still running"),
        ("Duration", _duration((ended if ended is not None else digest.end) - data.created)),
        ("Jobs", f"{data.jobs:,}"),
    ]
    campaign += [(f"Jobs {status}", _share(n, data.jobs)) for status, n in digest.final_counts]
    fetched = int(digest.download_ok.sum())
    attempts = len(data.submissions)
    work = [
        ("Job IDs submitted", f"{attempts:,}"),
        ("Retries", f"{digest.retries:,}"),
        (
            "Median wait",
            _duration(float(np.median(digest.waiting))) if len(digest.waiting) else "-",
        ),
        ("Median run", _duration(float(np.median(digest.running))) if len(digest.running) else "-"),
        ("Downloads fetched", f"{fetched:,}"),
        ("Downloads failed", f"{len(digest.download_ok) - fetched:,}"),
        ("Bytes downloaded", _size(digest.download_bytes)),
    ]
    return f'<section class="summary">{_table(campaign)}{_table(work)}</section>'


def _chart(title: str, svg: str | None, note: str, empty: str, extra: str = "") -> str:
    body = svg if svg is not None else f'<p class="empty">{_e(empty)}</p>'
    return f"<section><h2>{_e(title)}</h2>{body}<p class=note>{_e(note)}</p>{extra}</section>"


def render_page(data: ReportData, digest: Digest, charts: Mapping[str, str | None]) -> str:
    """The whole HTML page.

    Args:
        data: the campaign's history (for its name, backend, times and outcome).
        digest: what was reduced from it.
        charts: the SVG of each chart by name (``None`` when it has nothing to draw).

    Returns:
        The page, a complete HTML document.

    Usage: ``Path("report.html").write_text(render_page(data, digest, charts))``
    """
    failed = sum(n for _, n in digest.failures_by_site)
    unit = digest.unit.name
    outcome_class = "outcome complete" if data.outcome == "complete" else "outcome"
    sections = [
        _chart(
            "Jobs per status over time",
            charts.get("status"),
            "Each job counted once, in the status of its latest attempt.",
            "No status was recorded.",
        ),
        _chart(
            "Submission and completion rate",
            charts.get("rates"),
            f"Job IDs recorded, and attempts reaching each final status, per {unit}.",
            "Nothing was submitted.",
        ),
        _chart(
            "Time waiting and running",
            charts.get("durations"),
            "Per attempt: from submission to its first Running, and from there to its end.",
            "No attempt was seen Running: they ran between two status polls, so their waiting "
            "and running times cannot be told apart."
            if any(counts.any() for counts in digest.finished.values())
            else "No attempt has run yet.",
        ),
        _chart(
            "Failures by site",
            charts.get("sites"),
            f"{failed:,} {'attempt' if failed == 1 else 'attempts'} ended Failed or Stalled.",
            "No attempt failed.",
            _counts(digest.failures_by_site, "site", failed) if failed else "",
        ),
        _chart(
            "Failures by minor status",
            charts.get("minor"),
            "The minor status each failed attempt ended with.",
            "No attempt failed.",
            _counts(digest.failures_by_minor, "minor status", failed) if failed else "",
        ),
        _chart(
            "Attempts per job",
            charts.get("attempts"),
            "How many times each job was run (1 = never retried).",
            "No job was submitted.",
        ),
        _chart(
            "Downloads",
            charts.get("downloads"),
            "Output downloads that ended, cumulated over time.",
            "No output was downloaded.",
            _download_errors(digest),
        ),
    ]
    title = f"Campaign {data.campaign}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n"
        "<body><main>"
        f"<header><h1>{_e(title)}</h1>"
        f'<p class="sub">{data.jobs:,} jobs on {_e(data.backend)}, '
        f"started {_e(_when(data.created))}</p>"
        f'<p class="{outcome_class}">{_e(data.outcome)}</p></header>\n'
        f"{_summary(data, digest)}\n" + "\n".join(sections) + "\n"
        "<footer>Written by aiodirac from the campaign's journal.</footer>"
        "</main></body></html>\n"
    )


def _download_errors(digest: Digest) -> str:
    if not digest.download_errors:
        return ""
    failed = sum(n for _, n in digest.download_errors)
    body = "".join(
        f"<tr><td>{_e(error)}</td><td class=n>{count:,}</td></tr>"
        for error, count in digest.download_errors
    )
    return f"<table><tr><th>download error</th><th class=n>{failed:,} downloads</th></tr>{body}</table>"
