"""Writing the campaign report for 100,000 jobs: the binned report vs a point per job.

Builds a synthetic history (``aiodirac.testing.synthetic_report_data``: ``--jobs`` jobs, of
which ``--retried`` fail once and are retried, a tenth of those again) and times
``write_report`` over ``--rounds`` rounds: wall time, CPU time, the page's size, and the share
of each phase (digest, charts, page). The first round includes importing matplotlib, as a
command-line ``aiodirac campaign report`` pays it.

Side by side, the alternative the report avoids: the same status history drawn with a point
per status change (one matplotlib scatter, SVG), timed once.

Target (issue 15): the report for 100,000 jobs in at most 10 s.

    .venv/bin/python benchmarks/report.py [--jobs 100000] [--retried 0.05] [--rounds 3]

``benchmarks/campaign.py`` times the report of its own campaign with :func:`time_report`::

    from report import time_report          # benchmarks/ is on sys.path when run as a script
    timing = time_report(data, folder)      # ReportTiming(wall=..., cpu=..., size=...)
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from aiodirac._report import ReportData, write_report
from aiodirac.testing import synthetic_report_data


@dataclass(frozen=True, slots=True)
class ReportTiming:
    """One report written: wall and CPU seconds, and the HTML file's size in bytes."""

    wall: float
    cpu: float
    size: int


def time_report(data: ReportData, folder: Path) -> ReportTiming:
    """Write ``data``'s report into ``folder`` (as ``report.html``) and time it."""
    path = folder / "report.html"
    wall, cpu = time.perf_counter(), time.process_time()
    write_report(data, path)
    return ReportTiming(time.perf_counter() - wall, time.process_time() - cpu, path.stat().st_size)


def phases(data: ReportData) -> dict[str, float]:
    """Seconds spent in each phase of one report (matplotlib already imported)."""
    from aiodirac._report._digest import digest_report
    from aiodirac._report._figures import CHARTS
    from aiodirac._report._page import render_page

    start = time.perf_counter()
    digest = digest_report(data)
    digested = time.perf_counter()
    charts = {name: chart(digest) for name, chart in CHARTS.items()}
    drawn = time.perf_counter()
    render_page(data, digest, charts)
    return {
        "digest": digested - start,
        "charts": drawn - digested,
        "page": time.perf_counter() - drawn,
    }


def point_per_change(data: ReportData) -> tuple[float, int]:
    """The naive chart: every status change as a point (time, job), as SVG: seconds, bytes."""
    import numpy as np
    from matplotlib.figure import Figure

    start = time.perf_counter()
    times = np.asarray(data.transitions.time)
    jobs = np.asarray(data.transitions.job_id)
    fig = Figure(figsize=(9, 3.8))
    ax = fig.add_subplot()
    ax.scatter(times - times.min(), jobs, s=1, c=np.asarray(data.transitions.status.codes))
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    return time.perf_counter() - start, len(buffer.getvalue().encode())


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--retried", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-naive", action="store_true", help="skip the point-per-change run")
    args = parser.parse_args()

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    made = time.perf_counter()
    data = synthetic_report_data(args.jobs, retried=args.retried)
    print(
        f"history: {args.jobs:,} jobs, {len(data.transitions):,} status changes, "
        f"{len(data.submissions):,} job IDs, {len(data.retries):,} retries, "
        f"{len(data.downloads):,} downloads (built in {time.perf_counter() - made:.1f} s); "
        f"peak RSS {peak_rss_mib():.0f} MiB"
    )
    with tempfile.TemporaryDirectory() as folder:
        timings = [time_report(data, Path(folder)) for _ in range(args.rounds)]
    split = phases(data)
    walls = [t.wall for t in timings]
    cpus = [t.cpu for t in timings]
    print(
        f"\nbinned report (aiodirac): wall {min(walls):.2f}-{max(walls):.2f} s "
        f"(median {statistics.median(walls):.2f}, first round {walls[0]:.2f} with imports), "
        f"CPU {min(cpus):.2f}-{max(cpus):.2f} s, page {timings[-1].size / 1e3:,.0f} kB"
    )
    print("  phases: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in split.items()))
    print(f"  peak RSS after the reports: {peak_rss_mib():.0f} MiB (history included)")
    print(f"  target: at most 10 s for 100,000 jobs -> {'met' if max(walls) <= 10 else 'MISSED'}")
    if not args.skip_naive:
        seconds, size = point_per_change(data)
        print(
            f"\na point per status change (one chart only): {seconds:.2f} s, "
            f"SVG {size / 1e6:,.1f} MB ({size / max(timings[-1].size, 1):,.0f}x the whole report)"
        )
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
