"""Housekeeping of a local state folder for ``aiodirac local ps|clean``.

The local backend answers status queries for IDs it is given; listing *every* job of a state
folder and clearing out old ones are an administrator's needs, served here: the job store is
read through its own SQLite file, read-only and only at the schema version this aiodirac writes,
and old jobs are removed through the backend's public ``delete`` (DIRAC's rules) before their
output archives and working folders are freed.

Usage: ``jobs = list_local_jobs(Path("~/.local/share/aiodirac").expanduser())``
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiodirac.backends.local import LocalBackend

__all__ = ["CleanReport", "LocalJob", "clean_local", "list_local_jobs"]

#: The job store schema these queries are written for.
STORE_SCHEMA = "1"
_FINAL = ("Done", "Completed", "Failed", "Killed", "Deleted")


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


def _connect(store: Path) -> sqlite3.Connection:
    from aiodirac import LocalBackendError

    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.Error as exc:
        raise LocalBackendError(f"cannot read the local job store {store}: {exc}") from exc
    if row is None or str(row[0]) != STORE_SCHEMA:
        db.close()
        raise LocalBackendError(
            f"the local job store {store} has schema {row and row[0]!r}; this aiodirac lists "
            f"schema {STORE_SCHEMA!r} only"
        )
    return db


def list_local_jobs(
    home: Path, *, statuses: Iterable[str] = (), limit: int | None = None
) -> list[LocalJob]:
    """The jobs of a state folder, newest first.

    Raises:
        LocalBackendError: the store cannot be read, or has another schema.

    Usage: ``list_local_jobs(home, statuses=["Running"], limit=20)``
    """
    from aiodirac.backends.local._paths import StatePaths

    store = StatePaths(home).store
    if not store.is_file():
        return []
    wanted = list(statuses)
    query = (
        "SELECT id, name, job_group, status, minor_status, site, submitted, updated FROM jobs"
        + (f" WHERE status IN ({','.join('?' * len(wanted))})" if wanted else "")
        + " ORDER BY id DESC"
        + (" LIMIT ?" if limit else "")
    )
    params: list[object] = [*wanted, *([limit] if limit else [])]
    db = _connect(store)
    try:
        rows = db.execute(query, params).fetchall()
    except sqlite3.Error as exc:
        from aiodirac import LocalBackendError

        raise LocalBackendError(f"cannot read the local job store {store}: {exc}") from exc
    finally:
        db.close()
    return [
        LocalJob(
            job_id=int(r[0]),
            name=str(r[1]),
            job_group=str(r[2]),
            status=str(r[3]),
            minor_status=str(r[4]),
            site=str(r[5]),
            submitted=datetime.fromtimestamp(float(r[6]), UTC),
            updated=datetime.fromtimestamp(float(r[7]), UTC),
        )
        for r in rows
    ]


def _job_files(home: Path, job_id: int) -> list[Path]:
    from aiodirac.backends.local._paths import StatePaths

    paths = StatePaths(home)
    # <id>.tar.bz2 / <id>.<attempt>.tar.bz2 archives, <id> / <id>.<attempt> working folders
    found: list[Path] = [paths.workdir(job_id)]
    for folder in (paths.output, paths.work):
        if folder.is_dir():
            found.extend(folder.glob(f"{job_id}.*"))
    return [p for p in found if p.exists() or p.is_symlink()]


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


async def clean_local(
    backend: LocalBackend, *, older_than: float, dry_run: bool = False
) -> CleanReport:
    """Delete final jobs last changed more than ``older_than`` seconds ago and free their files.

    Jobs still queued or running are never touched. Deleted jobs stay in the store as
    ``Deleted`` (as in DIRAC); their output archives and working folders are removed.

    Usage: ``report = await clean_local(backend, older_than=7 * 86400)``
    """
    import anyio.to_thread

    home = backend.home
    cutoff = datetime.fromtimestamp(time.time() - older_than, UTC)
    jobs = await anyio.to_thread.run_sync(lambda: list_local_jobs(home, statuses=_FINAL))
    old = [j for j in jobs if j.updated < cutoff]
    files = [f for j in old for f in _job_files(home, j.job_id)]
    freed = sum(_size(f) for f in files)
    to_delete = [j.job_id for j in old if j.status != "Deleted"]
    deleted = 0
    if not dry_run:
        if to_delete:
            deleted = len((await backend.delete(to_delete)).done)

        def remove() -> None:
            for path in files:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(remove)
    return CleanReport(
        jobs=tuple(sorted(j.job_id for j in old)),
        deleted=deleted if not dry_run else len(to_delete),
        files_removed=len(files),
        bytes_freed=freed,
        dry_run=dry_run,
    )
