"""MkDocs hook: every public name of ``aiodirac`` and ``aiodirac.backends`` (the two public tiers)
must be documented in ``docs/reference/``.

The API reference pages are ``::: aiodirac.Name`` (``::: aiodirac.backends.Name``) blocks rendered
by mkdocstrings from the docstrings. When a name is exported and on no page, the build warns (and
``mkdocs build --strict`` fails) with the fix to make.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.aiodirac")

_DIRECTIVE = re.compile(r"^::: (aiodirac(?:\.backends)?)\.(\w+)\s*$", re.MULTILINE)


def documented_names(reference: Path) -> set[str]:
    """Names rendered by the reference pages, as ``module.Name``."""
    names: set[str] = set()
    for page in reference.glob("*.md"):
        names.update(f"{m}.{n}" for m, n in _DIRECTIVE.findall(page.read_text(encoding="utf-8")))
    return names


def on_config(config: Any, **kwargs: Any) -> Any:
    import aiodirac
    import aiodirac.backends

    reference = Path(config["docs_dir"]) / "reference"
    documented = documented_names(reference)
    public = {
        f"{module.__name__}.{name}"
        for module in (aiodirac, aiodirac.backends)
        for name in module.__all__
        if not name.startswith("__")
    }
    for name in sorted(public - documented):
        log.warning(
            "%s is public but not in the API reference: add '::: %s' to a page of docs/reference/",
            name,
            name,
        )
    for name in sorted(documented - public):
        log.warning("docs/reference/ documents %s, which its module does not export", name)
    return config
