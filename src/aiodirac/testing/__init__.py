"""Test helpers for aiodirac users and for its own suite.

- :class:`MemoryBackend`: an in-memory backend that follows DIRAC's rules, with fault injection.
- :class:`FaultProxy`: a loopback TCP proxy that adds latency, resets, 429/503 answers, stalls
  and outages between a client and a real server.
- :class:`DiracXTestPilot`: plays the grid for a DiracX development server: runs the user's
  waiting jobs with the local executor, uploads their outputs, and moves their statuses.
- :func:`synthetic_report_data`: a realistic campaign history, to try the HTML report.

Usage::

    from aiodirac.testing import MemoryBackend
    async with AsyncDirac(MemoryBackend()) as dirac:
        ...
"""

from __future__ import annotations

from aiodirac._engine._retry import retry_test_mode

from ._grid import SimulatedGrid
from ._memory import Faults, MemoryBackend, MemoryJob
from ._pilot import DiracXTestPilot, PilotRun, StatusStep, read_env_file
from ._proxy import FaultProxy, ProxyFaults
from ._report_data import synthetic_report_data

__all__ = [
    "DiracXTestPilot",
    "FaultProxy",
    "Faults",
    "MemoryBackend",
    "MemoryJob",
    "PilotRun",
    "ProxyFaults",
    "SimulatedGrid",
    "StatusStep",
    "read_env_file",
    "retry_test_mode",
    "synthetic_report_data",
]
