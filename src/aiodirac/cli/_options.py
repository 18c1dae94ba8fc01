"""The global options of every command, as one value.

Usage: ``from aiodirac.cli._options import Options``
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Options"]


@dataclass(frozen=True, slots=True)
class Options:
    """The global options, merged from before and after the command name.

    Usage: ``Options(json=True).json``
    """

    backend: str | None = None
    url: str | None = None
    json: bool = False
    debug: bool = False
    quiet: bool = False
    rate: float | None = None
    max_in_flight: int | None = None
    ca_bundle: str | None = None
