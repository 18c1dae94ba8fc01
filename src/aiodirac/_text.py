"""Text from a service or a job made inert wherever aiodirac shows it (a terminal, a report).

Strings from a server or a job (statuses, sites, error details, file names) can hold escape
sequences that retitle a terminal, clear it, move the cursor or recolour what follows, controls
that an HTML or SVG document cannot carry, and bidi marks that reorder what is shown.
:func:`inert` shows each such character as its visible escape; everything else is kept.

Usage: ``from aiodirac._text import inert``
"""

from __future__ import annotations

import re

__all__ = ["UNSAFE", "inert"]

# What a terminal would act on instead of showing: C0 controls (ESC starts every escape
# sequence, BEL ends OSC titles, CR and BS overwrite what was printed), DEL, C1 controls (0x9b is
# an 8-bit CSI on some terminals), and the Unicode marks that reorder or hide text (zero-width
# characters, bidi marks, embeddings, overrides and isolates, line and paragraph separators, BOM).
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: object, *, lines: bool = False) -> str:
    """``text`` made safe to show: every control character shown, none obeyed.

    Each character of :data:`UNSAFE` becomes its visible escape (``ESC`` -> ``\\x1b``, U+202E
    -> ``\\u202e``); everything else, accents included, is kept. With ``lines=True`` newlines
    are kept (several lines of our own); otherwise they are shown as ``\\n`` too (a table cell,
    one event, one error line, a chart's label).

    Usage: ``out.result(inert(state.application_status))``
    """
    safe = UNSAFE.sub(_escape, str(text))
    return safe if lines else safe.replace("\n", "\\n")
