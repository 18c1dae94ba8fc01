"""The public surface: what ``aiodirac`` exports, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiodirac
import aiodirac._exceptions

ROOT = Path(__file__).resolve().parents[1]


def test_all_names_resolve_and_are_documented() -> None:
    for name in aiodirac.__all__:
        value = getattr(aiodirac, name)
        if isinstance(value, type):
            assert value.__doc__, f"{name} has no docstring"
    assert len(set(aiodirac.__all__)) == len(aiodirac.__all__)


def test_public_classes_of_private_modules_are_exported() -> None:
    exported = {getattr(aiodirac, name) for name in aiodirac.__all__}
    for name in aiodirac._exceptions.__all__:
        assert getattr(aiodirac._exceptions, name) in exported, name


def test_every_exception_is_a_dirac_error() -> None:
    for name in aiodirac._exceptions.__all__:
        assert issubclass(getattr(aiodirac._exceptions, name), aiodirac.DiracError)


def test_error_tree_in_the_docs_matches_the_module() -> None:
    doc = aiodirac._exceptions.__doc__ or ""
    tree = doc[doc.index("    DiracError\n") : doc.index("\nUsage::")].rstrip()
    lines = [line[4:] for line in tree.splitlines()]
    page = (ROOT / "docs/reference/errors.md").read_text()
    assert "\n".join(lines) in page
    for name in aiodirac._exceptions.__all__:
        assert name in tree, f"{name} missing from the tree drawn in _exceptions.py"


def test_import_does_not_load_the_engine_or_http() -> None:
    code = (
        "import sys, aiodirac; "
        "heavy = [m for m in ('httpx', 'anyio', 'tenacity', 'aiofiles', 'aiodirac._client') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_names_load_on_use() -> None:
    code = "import aiodirac; print(aiodirac.AsyncDirac.__name__, aiodirac.Dirac.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["AsyncDirac", "Dirac"]
