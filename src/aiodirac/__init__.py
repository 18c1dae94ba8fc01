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

from ._backend import ActionResult, Backend, Capabilities, OutputSandbox, UnconfirmedJob
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
    ServiceUnavailableError,
    StoreLockedError,
    SubmissionError,
    TrackingTimeoutError,
    TransientError,
    UnsafeArchiveError,
    UnsafeValueError,
)
from ._jdl import parse_jdl, render_jdl
from ._job import Job
from ._parametric import chunk_jobs
from ._result import S_ERROR, S_OK
from ._spec import ConcreteJob, Step, SubmitChunk
from ._status import FINAL_STATUSES, JobState, JobStatus, MinorStatus

if TYPE_CHECKING:
    from ._client import AsyncDirac
    from ._diracx import DiracXBackend
    from ._download import Downloader
    from ._download_model import (
        DownloadConfig,
        DownloadPhase,
        DownloadProgress,
        DownloadResult,
        JobProgress,
    )
    from ._events import JobEvent, JobVanished, PollFailed, PollRecovered, TrackEvent, TrackSummary
    from ._journal import CampaignInfo, CampaignSummary, DownloadRecord, Journal
    from ._local import LocalBackend
    from ._ratelimit import RateLimiter
    from ._retry import RetryEvent, RetryPolicy
    from ._submit import Submitter
    from ._submit_model import ChunkFailure, SubmitConfig, SubmitReport, SubmittedJob
    from ._sync import Dirac
    from ._track import TrackConfig, Tracker, TrackStream
    from ._unpack import UnpackedFile

__version__ = "0.1.0.dev0"

# name -> module that defines it, imported on first access (PEP 562).
_LAZY: dict[str, str] = {
    "AsyncDirac": "._client",
    "CampaignInfo": "._journal",
    "CampaignSummary": "._journal",
    "ChunkFailure": "._submit_model",
    "Dirac": "._sync",
    "DiracXBackend": "._diracx",
    "DownloadConfig": "._download_model",
    "DownloadPhase": "._download_model",
    "DownloadProgress": "._download_model",
    "DownloadRecord": "._journal",
    "DownloadResult": "._download_model",
    "Downloader": "._download",
    "JobEvent": "._events",
    "JobProgress": "._download_model",
    "JobVanished": "._events",
    "Journal": "._journal",
    "LocalBackend": "._local",
    "PollFailed": "._events",
    "PollRecovered": "._events",
    "RateLimiter": "._ratelimit",
    "RetryEvent": "._retry",
    "RetryPolicy": "._retry",
    "SubmitConfig": "._submit_model",
    "SubmitReport": "._submit_model",
    "SubmittedJob": "._submit_model",
    "Submitter": "._submit",
    "TrackConfig": "._track",
    "TrackEvent": "._events",
    "TrackStream": "._track",
    "TrackSummary": "._events",
    "Tracker": "._track",
    "UnpackedFile": "._unpack",
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
    "CampaignInfo",
    "CampaignSummary",
    "Capabilities",
    "ChunkFailure",
    "ConcreteJob",
    "ConfigurationError",
    "Dirac",
    "DiracError",
    "DiracXBackend",
    "DownloadConfig",
    "DownloadPhase",
    "DownloadProgress",
    "DownloadRecord",
    "DownloadResult",
    "Downloader",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "JDLSyntaxError",
    "Job",
    "JobDescriptionError",
    "JobEvent",
    "JobNotFoundError",
    "JobProgress",
    "JobState",
    "JobStatus",
    "JobVanished",
    "Journal",
    "JournalError",
    "LocalBackend",
    "LocalBackendError",
    "MinorStatus",
    "NetworkError",
    "NotSupportedError",
    "OutputSandbox",
    "ParametricError",
    "PermissionDeniedError",
    "PollFailed",
    "PollRecovered",
    "RateLimiter",
    "RetryEvent",
    "RetryPolicy",
    "SandboxError",
    "SandboxNotAvailableError",
    "ServiceUnavailableError",
    "Step",
    "StoreLockedError",
    "SubmissionError",
    "SubmitChunk",
    "SubmitConfig",
    "SubmitReport",
    "SubmittedJob",
    "Submitter",
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
    "parse_jdl",
    "render_jdl",
]
