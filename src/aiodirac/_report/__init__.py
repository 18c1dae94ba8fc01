"""The campaign report: a campaign's history (:class:`ReportData`) drawn as one HTML page.

The charts need the ``report`` extra (matplotlib); they are imported only when a report is
written.

Usage::

    from aiodirac._report import ReportData, write_report
"""

from __future__ import annotations

from ._data import (
    DownloadOutcome,
    Downloads,
    Labels,
    ReportData,
    Retries,
    Retry,
    Submission,
    Submissions,
    Transition,
    Transitions,
)
from ._write import render_report, write_report

__all__ = [
    "DownloadOutcome",
    "Downloads",
    "Labels",
    "ReportData",
    "Retries",
    "Retry",
    "Submission",
    "Submissions",
    "Transition",
    "Transitions",
    "render_report",
    "write_report",
]
