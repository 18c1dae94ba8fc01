"""The embedded local backend: a SQLite job store and a detached agent that runs jobs here.

Usage: ``from aiodirac.backends.local import LocalBackend``
"""

from __future__ import annotations

from ._admin import CleanReport, LocalJob
from ._backend import LocalBackend
from ._executor import JobOutcome, StepResult, run_job
from ._paths import default_home, local_site_name
from ._sandbox import pack_output_sandbox, stage_input_sandbox
from ._store import StoreLockedError

__all__ = [
    "CleanReport",
    "JobOutcome",
    "LocalBackend",
    "LocalJob",
    "StepResult",
    "StoreLockedError",
    "default_home",
    "local_site_name",
    "pack_output_sandbox",
    "run_job",
    "stage_input_sandbox",
]
