"""The embedded local backend: a SQLite job store and a detached agent that runs jobs here.

Names load on first use (PEP 562): running a job in the foreground (``_foreground``, DIRAC's
local mode) needs the executor, not the job store or the agent.

Usage: ``from aiodirac.backends.local import LocalBackend``
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._admin import CleanReport, LocalJob
    from ._backend import LocalBackend
    from ._executor import JobOutcome, StepResult, run_job
    from ._foreground import ForegroundOutcome, run_in_foreground
    from ._paths import default_home, local_site_name
    from ._sandbox import pack_output_sandbox, stage_input_sandbox
    from ._store import StoreLockedError

__all__ = [
    "CleanReport",
    "ForegroundOutcome",
    "JobOutcome",
    "LocalBackend",
    "LocalJob",
    "StepResult",
    "StoreLockedError",
    "default_home",
    "local_site_name",
    "pack_output_sandbox",
    "run_in_foreground",
    "run_job",
    "stage_input_sandbox",
]

_WHERE = {
    "CleanReport": "._admin",
    "LocalJob": "._admin",
    "LocalBackend": "._backend",
    "JobOutcome": "._executor",
    "StepResult": "._executor",
    "run_job": "._executor",
    "ForegroundOutcome": "._foreground",
    "run_in_foreground": "._foreground",
    "default_home": "._paths",
    "local_site_name": "._paths",
    "pack_output_sandbox": "._sandbox",
    "stage_input_sandbox": "._sandbox",
    "StoreLockedError": "._store",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
