"""The report's charts: matplotlib figures of a :class:`Digest`, as SVG text to inline in HTML.

matplotlib is imported here and only here; :mod:`aiodirac._report._write` imports this module
when a report is written, so ``import aiodirac`` never loads it. Figures are built with the
object API (``Figure``, no pyplot: no global figure registry, no GUI backend), under an
``rc_context`` that writes text as SVG ``<text>`` (small, selectable, escaped by matplotlib) and
never reads ``$...$`` in a site name or a minor status as mathematics. Each chart gets its own
SVG id prefix, so that several can live in one HTML page, and no date: the same data gives the
same bytes.

Usage::

    svg = status_chart(digest_report(data))
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from aiodirac._text import inert

from ._digest import Digest, TimeUnit

__all__ = ["CHARTS", "Chart"]

Chart = Callable[[Digest], "str | None"]

STATUS_COLOURS = {
    "Submitting": "#c7c7c7",
    "Received": "#a6a6a6",
    "Checking": "#b9a7d1",
    "Scouting": "#a7b9d1",
    "Staging": "#d1b9a7",
    "Waiting": "#f2c14e",
    "Matched": "#f29e4c",
    "Rescheduled": "#c77dff",
    "Running": "#3a7bd5",
    "Stalled": "#8e44ad",
    "Completing": "#7fc8f8",
    "Completed": "#6cc08b",
    "Done": "#2e9e5b",
    "Failed": "#d64545",
    "Killed": "#333333",
    "Deleted": "#7a7a7a",
}
OTHER_COLOURS = ("#17becf", "#bcbd22", "#e377c2", "#8c564b", "#9467bd", "#ff7f0e")
SUBMITTED = "#3a7bd5"
LABEL_WIDTH = 48  # characters of a site or minor status shown on an axis (the table has all)

_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "text.usetex": False,
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}
# Log axes label their ticks 1, 10, 100 (matplotlib's default writes them as mathematics).
_PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


# Counts of jobs, attempts and downloads are whole: no tick at 2.5 jobs.
def _whole() -> MaxNLocator:
    # one per axis (a locator belongs to its axis); the steps of the default locator
    return MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10])


_METADATA: dict[str, str | None] = {"Date": None, "Creator": None, "Format": None, "Type": None}


@contextmanager
def _figure(name: str, height: float = 3.4) -> Iterator[Figure]:
    """A figure drawn with the report's settings; its SVG salt is the chart's name."""
    with matplotlib.rc_context({**_RC, "svg.hashsalt": name}), warnings.catch_warnings():
        # A site or a status in a script DejaVu Sans lacks (an emoji, CJK): matplotlib lays it
        # out with a stand-in glyph and warns; the browser draws it with a font that has it.
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        yield Figure(figsize=(9.0, height), layout="constrained")


def _svg(fig: Figure, name: str) -> str:
    """The figure as an ``<svg>`` element for an HTML page: no prolog, unique ids, no size.

    Called inside :func:`_figure`'s block, whose settings apply when the figure is drawn.
    """
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=_METADATA)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # Namespaces are implied in HTML; dropping them leaves no URL at all in the page.
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text, count=2)
    text = re.sub(
        r'<svg width="[^"]*" height="[^"]*"',
        f'<svg class="chart" role="img" aria-label="{name}"',
        text,
        count=1,
    )

    def prefix_ids(tag: re.Match[str]) -> str:
        # Inside tags only: a text node may hold any string a site or a job sent (escaped by
        # matplotlib, so a "<" never starts a text node's content).
        found = tag.group(0)
        found = found.replace(' id="', f' id="{name}-').replace('href="#', f'href="#{name}-')
        return found.replace("url(#", f"url(#{name}-")

    return re.sub(r"<[^<>]*>", prefix_ids, text)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_WIDTH else label[: LABEL_WIDTH - 1] + "…"


def _time_axis(ax: Axes, unit: TimeUnit) -> None:
    ax.set_xlabel(f"time since the campaign started ({unit.name})")
    ax.set_xmargin(0)


def status_chart(digest: Digest) -> str | None:
    """Concrete jobs per status over time, stacked in DIRAC's order."""
    if not digest.counts.any():
        return None
    shown = [i for i in range(len(digest.statuses)) if digest.counts[i].any()]
    others = iter(OTHER_COLOURS * 3)
    colours = [STATUS_COLOURS.get(digest.statuses[i]) or next(others) for i in shown]
    with _figure("status", 3.8) as fig:
        ax = fig.add_subplot()
        ax.stackplot(
            digest.edges,
            digest.counts[shown],
            labels=[inert(digest.statuses[i]) for i in shown],
            colors=colours,
            linewidth=0,
        )
        _time_axis(ax, digest.unit)
        ax.set_ylabel("jobs")
        ax.yaxis.set_major_locator(_whole())
        ax.set_ylim(bottom=0)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), reverse=True)
        return _svg(fig, "status")


def rate_chart(digest: Digest) -> str | None:
    """Job IDs recorded (top), and attempts reaching each final status (bottom), per unit."""
    if not digest.submitted.any() and not digest.finished:
        return None
    per = (digest.rate_edges[1] - digest.rate_edges[0]) or 1.0
    label = f"jobs per {digest.unit.name.removesuffix('days') or 'day'}"
    with _figure("rates", 4.4) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.stairs(
            digest.submitted / per,
            digest.rate_edges,
            label="submitted",
            color=SUBMITTED,
            fill=True,
            alpha=0.7,
        )
        for status, counts in digest.finished.items():
            colour = STATUS_COLOURS.get(status, OTHER_COLOURS[0])
            bottom.stairs(
                counts / per, digest.rate_edges, label=status, color=colour, linewidth=1.5
            )
        for ax in (top, bottom):
            ax.set_ylabel(label)
            ax.set_ylim(bottom=0)
            ax.legend(loc="upper right")
        top.set_xmargin(0)
        _time_axis(bottom, digest.unit)
        return _svg(fig, "rates")


def duration_chart(digest: Digest) -> str | None:
    """Distributions of the time attempts spent waiting and running."""
    both = np.concatenate([digest.waiting, digest.running])
    if not len(both):
        return None
    unit = TimeUnit.for_span(float(np.median(both)) * 4)
    # Logarithmic bins from the shortest time (at least 10 ms; a zero, clocks permitting, is
    # counted there) to the longest, a decade at least.
    low = max(float(both[both > 0].min()) if (both > 0).any() else 1.0, 0.01)
    high = max(float(both.max()), low * 10)
    bins = np.geomspace(low, high, 50) / unit.seconds
    with _figure("durations") as fig:
        ax = fig.add_subplot()
        for values, label, colour in (
            (digest.waiting, "waiting", STATUS_COLOURS["Waiting"]),
            (digest.running, "running", STATUS_COLOURS["Running"]),
        ):
            if len(values):
                counts, _ = np.histogram(np.maximum(values, low) / unit.seconds, bins)
                median = float(np.median(values)) / unit.seconds
                ax.stairs(
                    counts,
                    bins,
                    label=f"{label} (median {median:.3g} {unit.name})",
                    color=colour,
                    fill=True,
                    alpha=0.55,
                )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_PLAIN)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"time per attempt ({unit.name}, logarithmic)")
        ax.set_ylabel("attempts")
        ax.yaxis.set_major_locator(_whole())
        ax.legend(loc="upper left")
        return _svg(fig, "durations")


def _bars(name: str, rows: Sequence[tuple[str, int]], colour: str, xlabel: str) -> str | None:
    if not rows:
        return None
    labels = [_short(label) for label, _ in rows][::-1]
    values = [count for _, count in rows][::-1]
    with _figure(name, 0.9 + 0.28 * len(rows)) as fig:
        ax = fig.add_subplot()
        ax.barh(range(len(rows)), values, color=colour, tick_label=labels)
        ax.bar_label(ax.containers[0], padding=3, fontsize=9)  # type: ignore[arg-type]
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(_whole())
        ax.grid(axis="y", visible=False)
        ax.set_xmargin(0.12)
        return _svg(fig, name)


def site_chart(digest: Digest) -> str | None:
    """Failed attempts per site."""
    return _bars("sites", digest.failures_by_site, STATUS_COLOURS["Failed"], "failed attempts")


def minor_chart(digest: Digest) -> str | None:
    """Failed attempts per minor status."""
    return _bars("minor", digest.failures_by_minor, "#a83232", "failed attempts")


def attempt_chart(digest: Digest) -> str | None:
    """Concrete jobs per number of attempts."""
    if not digest.attempts:
        return None
    numbers = [n for n, _ in digest.attempts]
    counts = [c for _, c in digest.attempts]
    with _figure("attempts", 2.8) as fig:
        ax = fig.add_subplot()
        bars = ax.bar([str(n) for n in numbers], counts, color=SUBMITTED, width=0.6)
        ax.bar_label(bars, padding=2, fontsize=9)
        if max(counts) > 50 * min(counts):
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(_PLAIN)
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.yaxis.set_major_locator(_whole())
        ax.set_xlabel("attempts")
        ax.set_ylabel("jobs")
        ax.grid(axis="x", visible=False)
        return _svg(fig, "attempts")


def download_chart(digest: Digest) -> str | None:
    """Downloads finished over time, fetched and failed, cumulated."""
    if not len(digest.download_times):
        return None
    times = digest.download_times
    with _figure("downloads", 3.0) as fig:
        ax = fig.add_subplot()
        for mask, label, colour in (
            (digest.download_ok, "fetched", STATUS_COLOURS["Done"]),
            (~digest.download_ok, "failed", STATUS_COLOURS["Failed"]),
        ):
            if mask.any():
                done = np.searchsorted(times[mask], digest.edges, side="right")
                ax.step(digest.edges, done, where="post", label=label, color=colour)
        _time_axis(ax, digest.unit)
        ax.set_ylabel("downloads (cumulated)")
        ax.yaxis.set_major_locator(_whole())
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
        return _svg(fig, "downloads")


CHARTS: dict[str, Chart] = {
    "status": status_chart,
    "rates": rate_chart,
    "durations": duration_chart,
    "sites": site_chart,
    "minor": minor_chart,
    "attempts": attempt_chart,
    "downloads": download_chart,
}
