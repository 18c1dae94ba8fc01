"""aiodirac: run large campaigns of DIRAC grid jobs from Python.

DIRAC's job API (``Job``, ``Dirac.submitJob``, ``status``, ``getOutputSandbox``) with an async
client that submits thousands of jobs concurrently, tracks them in batches as events, and downloads
their output sandboxes in parallel, against DiracX or an embedded local backend.

Only the error tree is imported at once; everything else (``Job``, statuses, the client, the
engine, the backends) loads on first use, so that ``import aiodirac`` takes a few milliseconds
and the command line owns Ctrl-C almost from the process's first instruction.

Usage::

    from aiodirac import AsyncDirac, Job
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    from aiodirac._client import AsyncDirac, JobIDs
    from aiodirac._engine._gate import Limits, RequestGate
    from aiodirac._engine._ratelimit import RateLimiter
    from aiodirac._engine._retry import RetryEvent, RetryPolicy
    from aiodirac._engine.download._downloader import Downloader
    from aiodirac._engine.download._model import (
        DownloadConfig,
        DownloadJournal,
        DownloadPhase,
        DownloadProgress,
        DownloadRecordLike,
        DownloadResult,
        JobProgress,
        SandboxLocator,
    )
    from aiodirac._engine.download._unpack import UnpackedFile
    from aiodirac._engine.submit._model import (
        ChunkFailure,
        SubmitConfig,
        SubmitJournal,
        SubmitReport,
        SubmittedJob,
    )
    from aiodirac._engine.submit._submitter import SubmissionStream, Submitter
    from aiodirac._engine.track._config import TrackConfig
    from aiodirac._engine.track._events import (
        JobEvent,
        JobVanished,
        PollFailed,
        PollRecovered,
        TrackEvent,
        TrackSummary,
    )
    from aiodirac._engine.track._tracker import StateJournal, TrackCallback, Tracker, TrackStream
    from aiodirac._job._chunking import Chunkable, Submittable
    from aiodirac._job._job import Job
    from aiodirac._job._monitoring import (
        CPUSample,
        JobAttributes,
        JobSelection,
        LoggingRecord,
        SelectConditions,
    )
    from aiodirac._job._status import FINAL_STATUSES, JobState, JobStatus, MinorStatus
    from aiodirac._journal import (
        CampaignInfo,
        CampaignSummary,
        ChunkRecord,
        ChunkState,
        DownloadRecord,
        Journal,
    )
    from aiodirac._report import (
        Downloads,
        ReportData,
        Retries,
        Submissions,
        Transitions,
        render_report,
        write_report,
    )
    from aiodirac._result import DiracResult
    from aiodirac._sync import Dirac
    from aiodirac.backends.diracx import DiracXBackend
    from aiodirac.backends.local import LocalBackend

__version__ = "0.1.0.dev0"

# name -> module that defines it, imported on first access (PEP 562).
_LAZY: dict[str, str] = {
    "MinorStatus": "._job._status",
    "JobStatus": "._job._status",
    "JobState": "._job._status",
    "FINAL_STATUSES": "._job._status",
    "LoggingRecord": "._job._monitoring",
    "JobSelection": "._job._monitoring",
    "JobAttributes": "._job._monitoring",
    "CPUSample": "._job._monitoring",
    "Job": "._job._job",
    "Submittable": "._job._chunking",
    "Chunkable": "._job._chunking",
    "Downloads": "._report",
    "Retries": "._report",
    "Submissions": "._report",
    "Transitions": "._report",
    "SubmissionStream": "._engine.submit._submitter",
    "SelectConditions": "._job._monitoring",
    "ChunkState": "._journal",
    "ChunkRecord": "._journal",
    "DiracResult": "._result",
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
    "DownloadJournal": "._engine.download._model",
    "DownloadRecordLike": "._engine.download._model",
    "SandboxLocator": "._engine.download._model",
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
    "JobIDs": "._client",
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
    "SubmitJournal": "._engine.submit._model",
    "SubmitReport": "._engine.submit._model",
    "SubmittedJob": "._engine.submit._model",
    "Submitter": "._engine.submit._submitter",
    "StateJournal": "._engine.track._tracker",
    "TrackCallback": "._engine.track._tracker",
    "TrackConfig": "._engine.track._config",
    "TrackEvent": "._engine.track._events",
    "TrackStream": "._engine.track._tracker",
    "TrackSummary": "._engine.track._events",
    "Tracker": "._engine.track._tracker",
    "UnpackedFile": "._engine.download._unpack",
    "render_report": "._report",
    "write_report": "._report",
}


#: Names for backend authors, exported from :mod:`aiodirac.backends`; still found here.
_BACKEND_TIER = frozenset(
    {
        "ActionResult",
        "Backend",
        "Capabilities",
        "ConcreteJob",
        "OutputSandbox",
        "Step",
        "SubmitChunk",
        "UnconfirmedJob",
        "chunk_jobs",
        "parse_jdl",
        "render_jdl",
    }
)


def _public(value: Any, module: str) -> Any:
    """Show a public name under the module users import it from (reprs, tracebacks, help)."""
    if isinstance(value, type) and "._" in value.__module__:
        value.__module__ = module
    return value


def __getattr__(name: str) -> Any:
    if name in _BACKEND_TIER:
        return getattr(importlib.import_module(".backends", __name__), name)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiodirac' has no attribute {name!r}")
    value = _public(getattr(importlib.import_module(module, __name__), name), __name__)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FINAL_STATUSES",
    "S_ERROR",
    "S_OK",
    "AsyncDirac",
    "AuthenticationError",
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
    "ChunkFailure",
    "ChunkRecord",
    "ChunkState",
    "Chunkable",
    "ConfigurationError",
    "Dirac",
    "DiracError",
    "DiracResult",
    "DiracXBackend",
    "DownloadConfig",
    "DownloadFinished",
    "DownloadJournal",
    "DownloadPhase",
    "DownloadProgress",
    "DownloadRecord",
    "DownloadRecordLike",
    "DownloadResult",
    "Downloader",
    "Downloads",
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
    "JobIDs",
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
    "ParametricError",
    "PermissionDeniedError",
    "PollFailed",
    "PollProblem",
    "PollRecovered",
    "RateLimiter",
    "ReportData",
    "RequestGate",
    "Retries",
    "RetryEvent",
    "RetryFailed",
    "RetryMethod",
    "RetryPolicy",
    "RetryStarted",
    "SandboxError",
    "SandboxLocator",
    "SandboxNotAvailableError",
    "SandboxTooLargeError",
    "SelectConditions",
    "ServiceUnavailableError",
    "StateJournal",
    "StoreLockedError",
    "SubmissionError",
    "SubmissionStream",
    "Submissions",
    "SubmitConfig",
    "SubmitJournal",
    "SubmitReport",
    "Submittable",
    "SubmittedJob",
    "Submitter",
    "TemporarySpaceError",
    "TrackCallback",
    "TrackConfig",
    "TrackEvent",
    "TrackStream",
    "TrackSummary",
    "Tracker",
    "TrackingTimeoutError",
    "TransientError",
    "Transitions",
    "UnpackedFile",
    "UnsafeArchiveError",
    "UnsafeValueError",
    "__version__",
    "current_statuses",
    "read_report_data",
    "render_report",
    "write_report",
]

for _name in __all__:
    if _name in globals():
        _public(globals()[_name], __name__)
