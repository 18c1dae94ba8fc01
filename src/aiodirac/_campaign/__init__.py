"""Campaigns: submit -> follow -> fetch -> retry what failed, resumable from the journal.

Usage: ``campaign = dirac.campaign(job, journal="scan.db", dest="out/")``
"""

from __future__ import annotations

from ._campaign import Campaign, CampaignCallback
from ._events import (
    BrakeEngaged,
    CampaignEnded,
    CampaignEvent,
    CampaignProgress,
    DownloadFinished,
    GaveUp,
    JobChanged,
    PollProblem,
    RetryFailed,
    RetryStarted,
)
from ._policy import FailurePolicy, RetryMethod
from ._report_data import current_statuses, read_report_data

__all__ = [
    "BrakeEngaged",
    "Campaign",
    "CampaignCallback",
    "CampaignEnded",
    "CampaignEvent",
    "CampaignProgress",
    "DownloadFinished",
    "FailurePolicy",
    "GaveUp",
    "JobChanged",
    "PollProblem",
    "RetryFailed",
    "RetryMethod",
    "RetryStarted",
    "current_statuses",
    "read_report_data",
]
