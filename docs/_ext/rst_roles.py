"""Griffe extension: show the reST roles of aiodirac's docstrings as Markdown.

aiodirac's docstrings use Sphinx roles (``:class:`~aiodirac.Journal```), read well in editors
and ``help()``. In the Markdown reference a role becomes a cross-reference when it names a
public object of ``aiodirac`` (so it resolves), and inline code otherwise; ``Usage::`` loses its
second colon; an argument entry documenting several names at once (``a, b: ...``) becomes one
entry per name.
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


# "a, b, c: description" in an Args section (names may wrap): one entry per name for griffe.
_SHARED = re.compile(
    r"^(?P<indent>[ \t]*)(?P<names>[A-Za-z_]\w*(?:,[ \t]*\n?[ \t]*[A-Za-z_]\w*)+):(?P<desc>.*)"
    r"(?P<more>(?:\n(?P=indent)[ \t]+\S.*)*)$",
    re.MULTILINE,
)


def _split_shared(match: re.Match[str]) -> str:
    indent = match["indent"]
    names = [n.strip() for n in match["names"].replace("\n", " ").split(",")]
    desc = " ".join([match["desc"].strip(), *(line.strip() for line in match["more"].split("\n"))])
    return "\n".join(f"{indent}{name}: {desc.strip()}" for name in names)


class RstRoles(griffe.Extension):
    """Rewrite Sphinx roles, ``::`` literal markers and shared parameter entries."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None:
            return
        text = _ROLE.sub(_replace, docstring.value)
        text = _SHARED.sub(_split_shared, text)
        docstring.value = re.sub(r"(\w)::\s*$", r"\1:", text, flags=re.MULTILINE)
