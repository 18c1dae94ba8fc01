"""MkDocs hook: every public name of ``aiodirac`` must be documented in ``docs/reference/``.

The API reference pages are ``::: aiodirac.Name`` blocks rendered by mkdocstrings from the
docstrings. When a name is added to ``aiodirac.__all__`` and to no page, the build warns (and
``mkdocs build --strict`` fails) with the fix to make.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.aiodirac")

_DIRECTIVE = re.compile(r"^::: aiodirac\.(\w+)\s*$", re.MULTILINE)


def documented_names(reference: Path) -> set[str]:
    """Names rendered by the reference pages."""
    names: set[str] = set()
    for page in reference.glob("*.md"):
        names.update(_DIRECTIVE.findall(page.read_text(encoding="utf-8")))
    return names


def on_config(config: Any, **kwargs: Any) -> Any:
    import aiodirac

    reference = Path(config["docs_dir"]) / "reference"
    documented = documented_names(reference)
    public = {name for name in aiodirac.__all__ if not name.startswith("__")}
    for name in sorted(public - documented):
        log.warning(
            "aiodirac.%s is public but not in the API reference: add '::: aiodirac.%s' to a page "
            "of docs/reference/",
            name,
            name,
        )
    for name in sorted(documented - public):
        log.warning("docs/reference/ documents aiodirac.%s, which is not in aiodirac.__all__", name)
    return config
