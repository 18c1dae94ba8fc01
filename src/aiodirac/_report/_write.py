"""Write a campaign's report: :func:`write_report` (to a file) and :func:`render_report` (text).

The charts need matplotlib (with numpy), the ``report`` extra: ``pip install 'aiodirac[report]'``.
They are imported when a report is written, not before, so that ``import aiodirac`` stays light
and a campaign runs without them.

Usage::

    from aiodirac import write_report
    write_report(data, "report.html")
"""

from __future__ import annotations

import glob
import importlib
import os
import secrets
from pathlib import Path
from types import ModuleType

from aiodirac._exceptions import ConfigurationError, InvalidArgumentError

from ._data import ReportData

__all__ = ["render_report", "write_report"]

INSTALL_HINT = "pip install 'aiodirac[report]'"


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigurationError(
            f"the campaign report draws its charts with matplotlib, which is not installed "
            f"({exc}); install it with: {INSTALL_HINT}"
        ) from exc


def render_report(data: ReportData) -> str:
    """The campaign's report as one self-contained HTML document.

    The page has no script and loads nothing: its charts are inline SVG, its style inline CSS.
    The same data always gives the same text. The charts are drawn under matplotlib settings
    changed for the duration (``matplotlib.rc_context``, which is process-wide): do not draw
    other matplotlib figures in another thread meanwhile.

    Args:
        data: the campaign's history.

    Returns:
        The HTML text.

    Raises:
        InvalidArgumentError: ``data`` is not a :class:`ReportData`.
        ConfigurationError: matplotlib is not installed (``pip install 'aiodirac[report]'``).

    Usage: ``html = render_report(data)``
    """
    if not isinstance(data, ReportData):
        raise InvalidArgumentError(
            f"a report is drawn from a ReportData, not a {type(data).__name__}"
        )
    _import("numpy")
    _import("matplotlib")
    # Imported here, not at the top: they import numpy and matplotlib.
    from ._digest import digest_report
    from ._figures import CHARTS
    from ._page import render_page

    digest = digest_report(data)
    return render_page(data, digest, {name: chart(digest) for name, chart in CHARTS.items()})


def write_report(data: ReportData, path: str | os.PathLike[str]) -> Path:
    """Write the campaign's report to ``path``, an HTML file readable with no network.

    The file appears whole or not at all: it is written under a temporary name in the same
    folder (``.<name>.<pid>.<random>.tmp``), then renamed. A temporary file that a killed
    writer left behind (its process is gone) is removed by the next write to the same path.

    Args:
        data: the campaign's history (a campaign's journal loader builds it).
        path: the HTML file to write (replaced if it exists).

    Returns:
        The path written.

    Raises:
        InvalidArgumentError: ``data`` is not a :class:`ReportData`, or ``path``'s folder does
            not exist or ``path`` is a folder.
        ConfigurationError: matplotlib is not installed (``pip install 'aiodirac[report]'``).
        OSError: the file could not be written (disk full, no permission).

    Usage: ``write_report(data, "report.html")``
    """
    target = Path(os.fspath(path))
    if target.is_dir():
        raise InvalidArgumentError(f"the report path {str(target)!r} is a folder, not a file")
    folder = target.parent
    if not folder.is_dir():
        raise InvalidArgumentError(
            f"cannot write the report to {str(target)!r}: the folder {str(folder)!r} does not exist"
        )
    text = render_report(data)
    _remove_leftovers(target)
    # A new name in the same folder, created with the usual permissions (umask applies).
    temporary = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def _remove_leftovers(target: Path) -> None:
    """Remove the temporary files of writers of ``target`` that died before renaming them."""
    prefix = f".{target.name}."
    for leftover in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = leftover.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
