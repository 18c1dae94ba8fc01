"""aiodirac: run large campaigns of DIRAC grid jobs from Python.

DIRAC's job API (``Job``, ``Dirac.submitJob``, ``status``, ``getOutputSandbox``) with an async
client that submits thousands of jobs concurrently, tracks them in batches as events, and downloads
their output sandboxes in parallel, against DiracX or an embedded local backend.

Usage::

    from aiodirac import AsyncDirac, Job
"""

from __future__ import annotations

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
    SubmissionError,
    TransientError,
    UnsafeArchiveError,
    UnsafeValueError,
)
from ._result import S_ERROR, S_OK
from ._spec import ConcreteJob, Step, SubmitChunk
from ._status import FINAL_STATUSES, JobState, JobStatus, MinorStatus

__version__ = "0.1.0.dev0"

__all__ = [
    "FINAL_STATUSES",
    "S_ERROR",
    "S_OK",
    "ActionResult",
    "AuthenticationError",
    "Backend",
    "BackendError",
    "Capabilities",
    "ConcreteJob",
    "ConfigurationError",
    "DiracError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "JDLSyntaxError",
    "JobDescriptionError",
    "JobNotFoundError",
    "JobState",
    "JobStatus",
    "JournalError",
    "LocalBackendError",
    "MinorStatus",
    "NetworkError",
    "NotSupportedError",
    "OutputSandbox",
    "ParametricError",
    "PermissionDeniedError",
    "SandboxError",
    "SandboxNotAvailableError",
    "ServiceUnavailableError",
    "Step",
    "SubmissionError",
    "SubmitChunk",
    "TransientError",
    "UnconfirmedJob",
    "UnsafeArchiveError",
    "UnsafeValueError",
    "__version__",
]
