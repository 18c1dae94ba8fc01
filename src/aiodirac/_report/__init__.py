"""The campaign report: a campaign's history (:class:`ReportData`) drawn as one HTML page.

Usage::

    from aiodirac._report import ReportData
"""

from __future__ import annotations

from aiodirac._report._data import (
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
]
