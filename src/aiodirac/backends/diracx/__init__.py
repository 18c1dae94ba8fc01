"""The DiracX backend: DIRAC jobs through DiracX's REST API.

Usage::

    from aiodirac.backends.diracx import DiracXBackend
"""

from __future__ import annotations

from ._backend import DiracXBackend
from ._sandbox import SandboxArchive

__all__ = ["DiracXBackend", "SandboxArchive"]
