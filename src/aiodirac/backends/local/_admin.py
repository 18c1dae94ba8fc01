"""Housekeeping of a local state folder: list every job, clear out old ones.

The local backend answers status queries for IDs it is given; listing *every* job of a state
folder and freeing old ones are an administrator's needs (``aiodirac local ps|clean``), served by
:meth:`LocalBackend.list_jobs` and :meth:`LocalBackend.clean` through this module. Old jobs are
removed with the backend's own ``delete`` (DIRAC's rules) before their output archives and
working folders are freed.

Usage: ``jobs = await LocalBackend().list_jobs(statuses=["Running"], limit=20)``
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiodirac._job._status import FINAL_STATUSES

from ._paths import StatePaths

__all__ = ["FINAL_NAMES", "CleanReport", "LocalJob", "job_files", "remove_all", "size_of"]

#: The final statuses, as the store writes them: the jobs ``clean`` may free.
FINAL_NAMES: tuple[str, ...] = tuple(sorted(str(s) for s in FINAL_STATUSES))


@dataclass(frozen=True, slots=True)
class LocalJob:
    """One job of a local state folder, as ``local ps`` lists it.

    Usage: ``job.status``; ``job.updated.isoformat()``
    """

    job_id: int
    name: str
    job_group: str
    status: str
    minor_status: str
    site: str
    submitted: datetime
    updated: datetime

    @classmethod
    def from_row(cls, row: tuple[object, ...]) -> LocalJob:
        """A job from the store's ``(id, name, job_group, status, minor_status, site,
        submitted, updated)`` row (times in seconds since the epoch)."""
        job_id, name, group, status, minor, site, submitted, updated = row
        return cls(
            job_id=int(str(job_id)),
            name=str(name),
            job_group=str(group),
            status=str(status),
            minor_status=str(minor),
            site=str(site),
            submitted=datetime.fromtimestamp(float(str(submitted)), UTC),
            updated=datetime.fromtimestamp(float(str(updated)), UTC),
        )


@dataclass(frozen=True, slots=True)
class CleanReport:
    """What ``local clean`` did (or would do, with ``dry_run``).

    Usage: ``print(report.jobs, report.bytes_freed)``
    """

    jobs: tuple[int, ...]
    deleted: int
    files_removed: int
    bytes_freed: int
    dry_run: bool


def job_files(paths: StatePaths, job_id: int) -> list[Path]:
    """A job's output archives and working folders (what ``clean`` frees)."""
    # <id>.tar.bz2 / <id>.<attempt>.tar.bz2 archives, <id> / <id>.<attempt> working folders
    found: list[Path] = [paths.workdir(job_id)]
    for folder in (paths.output, paths.work):
        if folder.is_dir():
            found.extend(folder.glob(f"{job_id}.*"))
    return [p for p in found if p.exists() or p.is_symlink()]


def size_of(path: Path) -> int:
    """Bytes held by a file or a folder (links counted as links)."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def remove_all(paths: list[Path]) -> None:
    """Remove files and folders (a link is removed, never followed)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
