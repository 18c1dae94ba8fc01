"""Griffe extension: show the reST roles of aiodirac's docstrings as Markdown.

aiodirac's docstrings use Sphinx roles (``:class:`~aiodirac.Journal```), read well in editors
and ``help()``. In the Markdown reference a role becomes a cross-reference when it names a
public object of ``aiodirac`` (so it resolves), and inline code otherwise; ``Usage::`` loses its
second colon.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

import aiodirac

_ROLE = re.compile(r":(?:py:)?(?:class|exc|func|meth|attr|mod|data|obj|const):`(~?)([^`]+)`")
_PUBLIC = set(aiodirac.__all__)


def _replace(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2).strip()
    target = target.removesuffix("()")
    shown = target.rsplit(".", 1)[-1] if short else target
    last = target.rsplit(".", 1)[-1]
    if last in _PUBLIC and (target == last or target.startswith("aiodirac.")):
        return f"[`{shown}`][aiodirac.{last}]"
    return f"`{shown}`"


class RstRoles(griffe.Extension):
    """Rewrite Sphinx roles and ``::`` literal markers in every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None:
            return
        text = _ROLE.sub(_replace, docstring.value)
        docstring.value = re.sub(r"(\w)::\s*$", r"\1:", text, flags=re.MULTILINE)
