"""What backend authors need: the backend protocol, its value types, and the JDL tools.

Users never need this module: :class:`~aiodirac.AsyncDirac` and :class:`~aiodirac.Dirac` choose a
backend for them. Someone who writes a backend for another DIRAC service implements
:class:`Backend` (see its docstring for the contract each method keeps) and receives
:class:`SubmitChunk` objects: at most ``Capabilities.max_jobs_per_submit`` concrete jobs rendered
as one parametric JDL. The job-monitoring methods (``select_jobs``, ``attributes``,
``logging_info``...) answer with :class:`JobAttributes`, :class:`LoggingRecord` and
:class:`CPUSample`, and raise :class:`~aiodirac.NotSupportedError` by default.

The two backends aiodirac ships live in ``aiodirac.backends.local`` and
``aiodirac.backends.diracx`` and are also exported from :mod:`aiodirac`.

Usage::

    from aiodirac.backends import Backend, Capabilities, SubmitChunk
"""

from __future__ import annotations

from aiodirac._job._jdl import parse_jdl, render_jdl
from aiodirac._job._monitoring import CPUSample, JobAttributes, JobSelection, LoggingRecord
from aiodirac._job._parametric import JobTemplate, Templated, chunk_jobs
from aiodirac._job._spec import ConcreteJob, Step, SubmitChunk

from ._protocol import ActionResult, Backend, Capabilities, OutputSandbox, UnconfirmedJob

__all__ = [
    "ActionResult",
    "Backend",
    "CPUSample",
    "Capabilities",
    "ConcreteJob",
    "JobAttributes",
    "JobSelection",
    "JobTemplate",
    "LoggingRecord",
    "OutputSandbox",
    "Step",
    "SubmitChunk",
    "Templated",
    "UnconfirmedJob",
    "chunk_jobs",
    "parse_jdl",
    "render_jdl",
]

for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) and "._" in _value.__module__:
        # reprs, tracebacks and help() name the module backend authors import from
        _value.__module__ = __name__
