"""Text from a service or a job made inert on a terminal (no escape sequence obeyed).

:func:`inert` and :data:`UNSAFE` live in :mod:`aiodirac._text` (the HTML report uses them
too); this module adds the JSON form of the same escapes.

Usage: ``from aiodirac.cli._terminal_text import inert``
"""

from __future__ import annotations

import re

from aiodirac._text import UNSAFE, inert

__all__ = ["UNSAFE", "inert", "json_escape"]


def json_escape(match: re.Match[str]) -> str:
    """A character of :data:`UNSAFE` as a JSON ``\\u`` escape of four hex digits (for ``re.sub``)."""
    return f"\\u{ord(match.group()):04x}"
