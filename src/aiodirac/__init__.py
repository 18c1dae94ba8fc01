"""aiodirac: run large campaigns of DIRAC grid jobs from Python.

DIRAC's job API (``Job``, ``Dirac.submitJob``, ``status``, ``getOutputSandbox``) with an async
client that submits thousands of jobs concurrently, tracks them in batches as events, and downloads
their output sandboxes in parallel, against DiracX or an embedded local backend.

The job description layer (``Job``, statuses, errors) is imported at once; the client, the engine
and the backends load on first use, so that ``import aiodirac`` stays fast.

Usage::

    from aiodirac import AsyncDirac, Job
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aiodirac._job._jdl import parse_jdl, render_jdl
from aiodirac._job._job import Job
from aiodirac._job._monitoring import CPUSample, JobAttributes, JobSelection, LoggingRecord
from aiodirac._job._parametric import chunk_jobs
from aiodirac._job._spec import ConcreteJob, Step, SubmitChunk
from aiodirac._job._status import FINAL_STATUSES, JobState, JobStatus, MinorStatus
from aiodirac.backends._protocol import (
    ActionResult,
    Backend,
    Capabilities,
    OutputSandbox,
    UnconfirmedJob,
)

from ._exceptions import (
    AuthenticationError,
    BackendError,
    ConfigurationError,
    DiracError,
    IntegrityError,
    InvalidArgumentError,
    InvalidRequestError,
    InvalidTransitionError,
    JDLSyntaxError,
    JobDescriptionError,
    JobNotFoundError,
    JournalError,
    LocalBackendError,
    NetworkError,
    NotSupportedError,
    ParametricError,
    PermissionDeniedError,
    SandboxError,
    SandboxNotAvailableError,
    SandboxTooLargeError,
    ServiceUnavailableError,
    StoreLockedError,
    SubmissionError,
    TemporarySpaceError,
    TrackingTimeoutError,
    TransientError,
    UnsafeArchiveError,
    UnsafeValueError,
)
from ._result import S_ERROR, S_OK

if TYPE_CHECKING:
    from aiodirac._campaign import (
        BrakeEngaged,
        Campaign,
        CampaignCallback,
        CampaignEnded,
        CampaignEvent,
        CampaignProgress,
        DownloadFinished,
        FailurePolicy,
        GaveUp,
        JobChanged,
        PollProblem,
        RetryFailed,
        RetryMethod,
        RetryStarted,
        current_statuses,
        read_report_data,
    )
    from aiodirac._engine._gate import Limits, RequestGate
    from aiodirac._engine._ratelimit import RateLimiter
    from aiodirac._engine._retry import RetryEvent, RetryPolicy
    from aiodirac._engine.download._downloader import Downloader
    from aiodirac._engine.download._model import (
        DownloadConfig,
        DownloadPhase,
        DownloadProgress,
        DownloadResult,
        JobProgress,
    )
    from aiodirac._engine.download._unpack import UnpackedFile
    from aiodirac._engine.submit._model import (
        ChunkFailure,
        SubmitConfig,
        SubmitReport,
        SubmittedJob,
    )
    from aiodirac._engine.submit._submitter import Submitter
    from aiodirac._engine.track._events import (
        JobEvent,
        JobVanished,
        PollFailed,
        PollRecovered,
        TrackEvent,
        TrackSummary,
    )
    from aiodirac._engine.track._tracker import TrackConfig, Tracker, TrackStream
    from aiodirac._report import ReportData, render_report, write_report
    from aiodirac.backends.diracx import DiracXBackend
    from aiodirac.backends.local import LocalBackend

    from ._client import AsyncDirac
    from ._journal import CampaignInfo, CampaignSummary, DownloadRecord, Journal
    from ._sync import Dirac

__version__ = "0.1.0.dev0"

# name -> module that defines it, imported on first access (PEP 562).
_LAZY: dict[str, str] = {
    "AsyncDirac": "._client",
    "BrakeEngaged": "._campaign",
    "Campaign": "._campaign",
    "CampaignCallback": "._campaign",
    "CampaignEnded": "._campaign",
    "CampaignEvent": "._campaign",
    "CampaignInfo": "._journal",
    "CampaignProgress": "._campaign",
    "CampaignSummary": "._journal",
    "ChunkFailure": "._engine.submit._model",
    "Dirac": "._sync",
    "DiracXBackend": ".backends.diracx",
    "DownloadConfig": "._engine.download._model",
    "DownloadFinished": "._campaign",
    "DownloadPhase": "._engine.download._model",
    "DownloadProgress": "._engine.download._model",
    "DownloadRecord": "._journal",
    "DownloadResult": "._engine.download._model",
    "Downloader": "._engine.download._downloader",
    "FailurePolicy": "._campaign",
    "GaveUp": "._campaign",
    "JobChanged": "._campaign",
    "JobEvent": "._engine.track._events",
    "JobProgress": "._engine.download._model",
    "JobVanished": "._engine.track._events",
    "Journal": "._journal",
    "LocalBackend": ".backends.local",
    "PollFailed": "._engine.track._events",
    "PollProblem": "._campaign",
    "PollRecovered": "._engine.track._events",
    "Limits": "._engine._gate",
    "RateLimiter": "._engine._ratelimit",
    "RequestGate": "._engine._gate",
    "ReportData": "._report",
    "RetryEvent": "._engine._retry",
    "RetryFailed": "._campaign",
    "RetryMethod": "._campaign",
    "RetryPolicy": "._engine._retry",
    "RetryStarted": "._campaign",
    "current_statuses": "._campaign",
    "read_report_data": "._campaign",
    "SubmitConfig": "._engine.submit._model",
    "SubmitReport": "._engine.submit._model",
    "SubmittedJob": "._engine.submit._model",
    "Submitter": "._engine.submit._submitter",
    "TrackConfig": "._engine.track._tracker",
    "TrackEvent": "._engine.track._events",
    "TrackStream": "._engine.track._tracker",
    "TrackSummary": "._engine.track._events",
    "Tracker": "._engine.track._tracker",
    "UnpackedFile": "._engine.download._unpack",
    "render_report": "._report",
    "write_report": "._report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiodirac' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FINAL_STATUSES",
    "S_ERROR",
    "S_OK",
    "ActionResult",
    "AsyncDirac",
    "AuthenticationError",
    "Backend",
    "BackendError",
    "BrakeEngaged",
    "CPUSample",
    "Campaign",
    "CampaignCallback",
    "CampaignEnded",
    "CampaignEvent",
    "CampaignInfo",
    "CampaignProgress",
    "CampaignSummary",
    "Capabilities",
    "ChunkFailure",
    "ConcreteJob",
    "ConfigurationError",
    "Dirac",
    "DiracError",
    "DiracXBackend",
    "DownloadConfig",
    "DownloadFinished",
    "DownloadPhase",
    "DownloadProgress",
    "DownloadRecord",
    "DownloadResult",
    "Downloader",
    "FailurePolicy",
    "GaveUp",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "JDLSyntaxError",
    "Job",
    "JobAttributes",
    "JobChanged",
    "JobDescriptionError",
    "JobEvent",
    "JobNotFoundError",
    "JobProgress",
    "JobSelection",
    "JobState",
    "JobStatus",
    "JobVanished",
    "Journal",
    "JournalError",
    "Limits",
    "LocalBackend",
    "LocalBackendError",
    "LoggingRecord",
    "MinorStatus",
    "NetworkError",
    "NotSupportedError",
    "OutputSandbox",
    "ParametricError",
    "PermissionDeniedError",
    "PollFailed",
    "PollProblem",
    "PollRecovered",
    "RateLimiter",
    "ReportData",
    "RequestGate",
    "RetryEvent",
    "RetryFailed",
    "RetryMethod",
    "RetryPolicy",
    "RetryStarted",
    "SandboxError",
    "SandboxNotAvailableError",
    "SandboxTooLargeError",
    "ServiceUnavailableError",
    "Step",
    "StoreLockedError",
    "SubmissionError",
    "SubmitChunk",
    "SubmitConfig",
    "SubmitReport",
    "SubmittedJob",
    "Submitter",
    "TemporarySpaceError",
    "TrackConfig",
    "TrackEvent",
    "TrackStream",
    "TrackSummary",
    "Tracker",
    "TrackingTimeoutError",
    "TransientError",
    "UnconfirmedJob",
    "UnpackedFile",
    "UnsafeArchiveError",
    "UnsafeValueError",
    "__version__",
    "chunk_jobs",
    "current_statuses",
    "parse_jdl",
    "read_report_data",
    "render_jdl",
    "render_report",
    "write_report",
]
