"""The DiracX backend: DIRAC jobs through DiracX's REST API.

Usage::

    from aiodirac.backends.diracx import DiracXBackend
"""

from __future__ import annotations

from ._backend import DiracXBackend

__all__ = ["DiracXBackend"]
