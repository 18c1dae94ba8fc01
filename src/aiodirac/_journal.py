"""The campaign journal: one SQLite file that lets a campaign be killed and started again.

It records, in this order, each submission chunk before its request is sent, the job IDs the
server returned, and their confirmation; then the last known status of each job and the
downloads that finished. A campaign run again with the same journal confirms what was created
and recorded, leaves what was never recorded to the sweep, and submits only what is missing
(see :mod:`aiodirac._engine.submit._submitter`); the tracker and the downloader skip what it says is done.

Schema (``PRAGMA user_version`` = 1)::

    campaign   (id = 1, name, job_group, owns_group, created)
    chunks     (chunk_id, first, last, digest, job_group, state, attempts, error, updated)
               UNIQUE (first, last): a chunk is its range of global indices; ``digest`` is the
               SHA-256 of its JDL and workflow, so a resumed run proves it is the same campaign
    jobs       (idx PRIMARY KEY, job_id UNIQUE, chunk_id, name, confirmed)
    statuses   (job_id PRIMARY KEY, status, minor_status, application_status, site, time)
    downloads  (job_id PRIMARY KEY, path, size, sha256, time)
    swept      (job_id PRIMARY KEY, reason, time)

Durability: WAL mode with ``synchronous=NORMAL``: every committed write survives the death of
the process (``kill -9``); only a power loss may drop the last few. Each write is one short
transaction run in a worker thread (``anyio.to_thread``), one at a time, so the event loop
never blocks on the disk; a write that has started always completes, even when its caller is
cancelled.

Usage::

    async with await Journal.open("campaign.db") as journal:
        print(await journal.summary())
"""

from __future__ import annotations

import contextlib
import enum
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Self, TypeVar

import anyio
import anyio.to_thread

from aiodirac._job._status import JobState, JobStatus

from ._exceptions import JournalError
from ._resource import AsyncResource

try:  # POSIX: an advisory lock that dies with its process (no stale locks after kill -9).
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CampaignInfo",
    "CampaignSummary",
    "ChunkRecord",
    "ChunkState",
    "DownloadRecord",
    "Journal",
]

T = TypeVar("T")

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    job_group TEXT NOT NULL,
    owns_group INTEGER NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id INTEGER PRIMARY KEY,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    digest TEXT NOT NULL,
    job_group TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    updated TEXT NOT NULL,
    UNIQUE (first, last)
);
CREATE TABLE IF NOT EXISTS jobs (
    idx INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL UNIQUE,
    chunk_id INTEGER NOT NULL REFERENCES chunks (chunk_id),
    name TEXT NOT NULL,
    confirmed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_chunk ON jobs (chunk_id);
CREATE TABLE IF NOT EXISTS statuses (
    job_id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    minor_status TEXT NOT NULL,
    application_status TEXT NOT NULL,
    site TEXT NOT NULL,
    time TEXT
);
CREATE TABLE IF NOT EXISTS downloads (
    job_id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS swept (
    job_id INTEGER PRIMARY KEY,
    reason TEXT NOT NULL,
    time TEXT NOT NULL
);
"""


class ChunkState(enum.StrEnum):
    """Where a chunk is in the two-phase protocol.

    ``sent`` (written just before the request leaves; the server may have created
    jobs that nobody recorded) -> ``created`` (IDs recorded, unconfirmed) -> ``confirmed``;
    ``failed`` when the server refused it (a resumed campaign sends it again).

    Usage: ``record.state is ChunkState.CONFIRMED``
    """

    SENT = "sent"
    CREATED = "created"
    CONFIRMED = "confirmed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    """Who a journal's campaign is.

    Attributes:
        name: the campaign's name.
        job_group: the DIRAC JobGroup its jobs carry (the sweep's proof of ownership).
        owns_group: True when the campaign made the group up (unique to it), False when the
            user chose it (other campaigns may share it: the sweep then waits a grace period).
        created: when the campaign was first started (UTC).

    Usage: ``(await journal.campaign()).job_group``
    """

    name: str
    job_group: str
    owns_group: bool
    created: datetime


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """One chunk as journaled.

    Usage: ``record = await journal.chunk(0, 19)``
    """

    chunk_id: int
    first: int
    last: int
    digest: str
    job_group: str
    state: ChunkState
    attempts: int
    error: str
    job_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class DownloadRecord:
    """A finished download of a job's output sandbox.

    Usage: ``(await journal.downloads())[job_id].sha256``
    """

    job_id: int
    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """Counts that describe a campaign's progress.

    Attributes:
        name: campaign name ("" before the campaign was started).
        job_group: its JobGroup.
        chunks: number of chunks per state.
        jobs_recorded: jobs whose ID is known.
        jobs_confirmed: jobs confirmed (released to run).
        swept: unconfirmed leftovers that were discarded.
        statuses: last known status counts (from :meth:`Journal.record_states`).
        downloads: finished downloads.

    Usage: ``print(await journal.summary())``
    """

    name: str = ""
    job_group: str = ""
    chunks: Mapping[ChunkState, int] = field(default_factory=dict)
    jobs_recorded: int = 0
    jobs_confirmed: int = 0
    swept: int = 0
    statuses: Mapping[JobStatus, int] = field(default_factory=dict)
    downloads: int = 0

    def __str__(self) -> str:
        chunks = ", ".join(f"{n} {s}" for s, n in sorted(self.chunks.items()))
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items()))
        return (
            f"campaign {self.name or '?'} (JobGroup {self.job_group or '?'}): "
            f"{self.jobs_confirmed} jobs confirmed of {self.jobs_recorded} recorded; "
            f"chunks: {chunks or 'none'}; swept: {self.swept}; "
            f"statuses: {statuses or 'none'}; downloads: {self.downloads}"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class Journal(AsyncResource):
    """A campaign journal in one SQLite file (created if missing).

    Open with :meth:`open` (or the constructor, then ``async with``); all methods are coroutines
    that run their SQL in a worker thread, one at a time.

    Args:
        path: the journal file.

    Raises:
        JournalError: the file is not a journal of this version, or cannot be opened.

    Usage::

        async with Journal("campaign.db") as journal:
            await journal.record_states(states)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._lock_file: IO[bytes] | None = None
        self._submitting = False
        self._closed = False

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Journal:
        """Open (or create) the journal at ``path``.

        Usage: ``journal = await Journal.open("campaign.db")``
        """
        journal = cls(path)
        await journal._ensure_open()
        return journal

    @property
    def path(self) -> Path:
        """The journal file."""
        return self._path

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._db is not None else "not opened")
        return f"<Journal [{self._path}, {state}]>"

    async def __aenter__(self) -> Self:
        await self._ensure_open()
        return self

    async def aclose(self) -> None:
        """Close the file (and release the submission lock). Idempotent.

        Usage: ``await journal.aclose()``
        """
        if self._closed:
            return
        self._closed = True
        db, self._db = self._db, None
        if db is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(db.close, limiter=self._limiter)
        self._release_lock()

    # -- plumbing ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA foreign_keys=ON")
                db.execute("PRAGMA busy_timeout=10000")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, _SCHEMA_VERSION):
                    raise JournalError(
                        f"{self._path} is a journal of schema version {version}, this aiodirac "
                        f"reads version {_SCHEMA_VERSION}: use another journal file"
                    )
                db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version={_SCHEMA_VERSION}; COMMIT;")
            except BaseException:
                db.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"cannot open the campaign journal {self._path}: {exc} "
                "(is it a journal file, and writable?)"
            ) from exc
        return db

    async def _ensure_open(self) -> sqlite3.Connection:
        if self._closed:
            raise JournalError(f"the journal {self._path} is closed")
        if self._limiter is None:
            # One thread at a time: sqlite3 connections are not safe to share concurrently.
            self._limiter = anyio.CapacityLimiter(1)
        if self._db is None:
            db = await anyio.to_thread.run_sync(self._connect, limiter=self._limiter)
            if self._db is None:
                self._db = db
            else:  # another task opened it while we were connecting
                db.close()
        return self._db

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = await self._ensure_open()

        def call() -> T:
            try:
                return fn(db)
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise JournalError(f"campaign journal {self._path}: {exc}") from exc

        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    @staticmethod
    def _write(db: sqlite3.Connection, statements: Callable[[sqlite3.Connection], T]) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = statements(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # -- exclusive use for submission ------------------------------------------------------

    def acquire_submit_lock(self) -> None:
        """Take the journal's submission lock (``<journal>.lock``) for this process.

        Two submitters on one journal would each sweep the other's unrecorded jobs, so a second
        one is refused. The lock dies with its process (no stale lock after ``kill -9``).

        Raises:
            JournalError: another submitter holds it.

        Usage: ``journal.acquire_submit_lock()``
        """
        if self._submitting:
            raise JournalError(
                f"a submission is already running on the journal {self._path} in this process: "
                "wait for it to finish"
            )
        self._submitting = True
        if fcntl is None:
            return
        lock_path = self._path.with_name(self._path.name + ".lock")
        handle = lock_path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            self._submitting = False
            raise JournalError(
                f"another submission is running on the journal {self._path}: wait for it to "
                "finish, or use another journal"
            ) from exc
        self._lock_file = handle

    def _release_lock(self) -> None:
        self._submitting = False
        handle, self._lock_file = self._lock_file, None
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def release_submit_lock(self) -> None:
        """Release :meth:`acquire_submit_lock`'s lock. Idempotent.

        Usage: ``journal.release_submit_lock()``
        """
        self._release_lock()

    # -- campaign -----------------------------------------------------------------------------

    async def campaign(self) -> CampaignInfo | None:
        """The journal's campaign, or None before :meth:`start_campaign`.

        Usage: ``info = await journal.campaign()``
        """

        def read(db: sqlite3.Connection) -> CampaignInfo | None:
            row = db.execute(
                "SELECT name, job_group, owns_group, created FROM campaign WHERE id = 1"
            ).fetchone()
            if row is None:
                return None
            return CampaignInfo(row[0], row[1], bool(row[2]), datetime.fromisoformat(row[3]))

        return await self._run(read)

    async def start_campaign(self, name: str, job_group: str, *, owns_group: bool) -> CampaignInfo:
        """Record the campaign's identity, or return the one already recorded.

        Raises:
            JournalError: the journal belongs to a campaign of another name.

        Usage: ``info = await journal.start_campaign("scan", "aiodirac-scan-1f2e", owns_group=True)``
        """

        def write(db: sqlite3.Connection) -> tuple[str, str, int, str]:
            row = db.execute(
                "SELECT name, job_group, owns_group, created FROM campaign WHERE id = 1"
            ).fetchone()
            if row is None:
                row = (name, job_group, int(owns_group), _now())
                db.execute("INSERT INTO campaign VALUES (1, ?, ?, ?, ?)", row)
            return (row[0], row[1], row[2], row[3])

        stored = await self._run(lambda db: self._write(db, write))
        if stored[0] != name:
            raise JournalError(
                f"the journal {self._path} belongs to campaign {stored[0]!r}, not {name!r}: "
                "use another journal file, or the same campaign name"
            )
        return CampaignInfo(
            stored[0], stored[1], bool(stored[2]), datetime.fromisoformat(stored[3])
        )

    # -- chunks -------------------------------------------------------------------------------

    @staticmethod
    def _chunk_from_row(db: sqlite3.Connection, row: Sequence[object]) -> ChunkRecord:
        chunk_id = int(str(row[0]))
        ids = tuple(
            r[0]
            for r in db.execute(
                "SELECT job_id FROM jobs WHERE chunk_id = ? ORDER BY idx", (chunk_id,)
            )
        )
        return ChunkRecord(
            chunk_id=chunk_id,
            first=int(str(row[1])),
            last=int(str(row[2])),
            digest=str(row[3]),
            job_group=str(row[4]),
            state=ChunkState(str(row[5])),
            attempts=int(str(row[6])),
            error=str(row[7]),
            job_ids=ids,
        )

    _CHUNK_COLUMNS = "chunk_id, first, last, digest, job_group, state, attempts, error"

    async def chunk(self, first: int, last: int) -> ChunkRecord | None:
        """The chunk covering global indices ``first..last`` exactly, if journaled.

        Usage: ``record = await journal.chunk(0, 19)``
        """

        def read(db: sqlite3.Connection) -> ChunkRecord | None:
            row = db.execute(
                f"SELECT {self._CHUNK_COLUMNS} FROM chunks WHERE first = ? AND last = ?",
                (first, last),
            ).fetchone()
            return None if row is None else self._chunk_from_row(db, row)

        return await self._run(read)

    async def chunks(self, states: Iterable[ChunkState] | None = None) -> list[ChunkRecord]:
        """Journaled chunks (optionally only in ``states``), by first index.

        Usage: ``unfinished = await journal.chunks([ChunkState.SENT, ChunkState.CREATED])``
        """
        wanted = None if states is None else [str(s) for s in states]

        def read(db: sqlite3.Connection) -> list[ChunkRecord]:
            rows = db.execute(f"SELECT {self._CHUNK_COLUMNS} FROM chunks ORDER BY first").fetchall()
            return [
                self._chunk_from_row(db, row)
                for row in rows
                if wanted is None or str(row[5]) in wanted
            ]

        return await self._run(read)

    async def chunk_groups(self) -> set[str]:
        """The JobGroups of every journaled chunk (what a sweep must look at).

        Usage: ``groups = await journal.chunk_groups()``
        """
        return await self._run(
            lambda db: {r[0] for r in db.execute("SELECT DISTINCT job_group FROM chunks")}
        )

    async def overlapping_indices(self, first: int, last: int) -> int:
        """How many recorded jobs have a global index in ``first..last`` (chunking checks).

        Usage: ``await journal.overlapping_indices(0, 19)``
        """

        def read(db: sqlite3.Connection) -> int:
            return int(
                db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE idx BETWEEN ? AND ?", (first, last)
                ).fetchone()[0]
            )

        return await self._run(read)

    async def chunk_sent(self, first: int, last: int, digest: str, job_group: str) -> ChunkRecord:
        """Record that chunk ``first..last`` is about to be sent (call BEFORE sending it).

        A new chunk is inserted; a journaled one (resent after an ambiguous failure or a
        crash) goes back to ``sent`` with one more attempt, and forgets its old job IDs, which
        were never confirmed.

        Raises:
            JournalError: the journal holds this range with another digest (another campaign),
                or the chunk is already created or confirmed.

        Usage: ``record = await journal.chunk_sent(0, 19, digest, "aiodirac-scan-1f2e")``
        """

        def write(db: sqlite3.Connection) -> ChunkRecord:
            row = db.execute(
                "SELECT chunk_id, digest, state FROM chunks WHERE first = ? AND last = ?",
                (first, last),
            ).fetchone()
            if row is None:
                cursor = db.execute(
                    "INSERT INTO chunks (first, last, digest, job_group, state, attempts, updated) "
                    "VALUES (?, ?, ?, ?, 'sent', 1, ?)",
                    (first, last, digest, job_group, _now()),
                )
                chunk_id = int(cursor.lastrowid or 0)
            else:
                chunk_id = int(row[0])
                if row[1] != digest:
                    raise JournalError(
                        f"jobs {first}-{last} in the journal {self._path} were a different job "
                        "description: this journal belongs to another campaign (use a new file)"
                    )
                if row[2] in (ChunkState.CREATED, ChunkState.CONFIRMED):
                    raise JournalError(
                        f"jobs {first}-{last} are already {row[2]} in the journal {self._path}"
                    )
                db.execute("DELETE FROM jobs WHERE chunk_id = ?", (chunk_id,))
                db.execute(
                    "UPDATE chunks SET state = 'sent', attempts = attempts + 1, error = '', "
                    "job_group = ?, updated = ? WHERE chunk_id = ?",
                    (job_group, _now(), chunk_id),
                )
            return self._chunk_from_row(
                db,
                db.execute(
                    f"SELECT {self._CHUNK_COLUMNS} FROM chunks WHERE chunk_id = ?", (chunk_id,)
                ).fetchone(),
            )

        return await self._run(lambda db: self._write(db, write))

    async def chunk_created(self, chunk_id: int, jobs: Sequence[tuple[int, int, str]]) -> None:
        """Record the IDs a chunk's request returned: ``(global index, job ID, name)`` each.

        Raises:
            JournalError: an index or a job ID is already recorded for another chunk.

        Usage: ``await journal.chunk_created(record.chunk_id, [(0, 101, "scan-0"), ...])``
        """

        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM jobs WHERE chunk_id = ?", (chunk_id,))
            db.executemany(
                "INSERT INTO jobs (idx, job_id, chunk_id, name, confirmed) VALUES (?, ?, ?, ?, 0)",
                [(index, job_id, chunk_id, name) for index, job_id, name in jobs],
            )
            db.execute(
                "UPDATE chunks SET state = 'created', error = '', updated = ? WHERE chunk_id = ?",
                (_now(), chunk_id),
            )

        await self._run(lambda db: self._write(db, write))

    async def chunks_confirmed(self, chunk_ids: Iterable[int]) -> None:
        """Record that these chunks' jobs were confirmed.

        Usage: ``await journal.chunks_confirmed([record.chunk_id])``
        """
        ids = [(chunk_id,) for chunk_id in chunk_ids]

        def write(db: sqlite3.Connection) -> None:
            stamp = _now()
            db.executemany("UPDATE jobs SET confirmed = 1 WHERE chunk_id = ?", ids)
            db.executemany(
                "UPDATE chunks SET state = 'confirmed', error = '', updated = ? WHERE chunk_id = ?",
                [(stamp, chunk_id) for (chunk_id,) in ids],
            )

        await self._run(lambda db: self._write(db, write))

    async def chunk_failed(self, chunk_id: int, error: str) -> None:
        """Record that the server refused a chunk (a resumed campaign will send it again).

        Usage: ``await journal.chunk_failed(record.chunk_id, "400 JDL syntax error")``
        """

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE chunks SET state = 'failed', error = ?, updated = ? WHERE chunk_id = ?",
                (error, _now(), chunk_id),
            )

        await self._run(lambda db: self._write(db, write))

    async def last_unsettled(self) -> datetime | None:
        """When the latest submit request whose reply may have been lost was journaled.

        That is the latest chunk still ``sent`` (its outcome unknown) or sent more than once
        (an earlier attempt was lost); ``None`` when every request was answered.

        Usage: ``when = await journal.last_unsettled()``
        """
        return await self._run(
            lambda db: _time(
                db.execute(
                    "SELECT max(updated) FROM chunks WHERE state = 'sent' OR attempts > 1"
                ).fetchone()[0]
            )
        )

    async def recorded_ids(self) -> set[int]:
        """Every job ID the journal holds, confirmed or not (the sweep leaves these alone).

        Usage: ``known = await journal.recorded_ids()``
        """
        return await self._run(lambda db: {r[0] for r in db.execute("SELECT job_id FROM jobs")})

    async def record_swept(self, job_ids: Iterable[int], reason: str) -> None:
        """Record unconfirmed leftovers that a sweep discarded.

        Usage: ``await journal.record_swept([812, 813], "unrecorded leftover")``
        """
        rows = [(job_id, reason, _now()) for job_id in job_ids]

        def write(db: sqlite3.Connection) -> None:
            db.executemany("INSERT OR REPLACE INTO swept VALUES (?, ?, ?)", rows)

        await self._run(lambda db: self._write(db, write))

    async def swept_ids(self) -> list[int]:
        """Job IDs discarded by sweeps, increasing.

        Usage: ``await journal.swept_ids()``
        """
        return await self._run(
            lambda db: [r[0] for r in db.execute("SELECT job_id FROM swept ORDER BY job_id")]
        )

    # -- jobs, statuses, downloads (the tracker's and the downloader's side) --------------------

    async def job_ids(self) -> list[int]:
        """Confirmed job IDs, in global index order.

        Usage: ``ids = await journal.job_ids()``
        """
        return await self._run(
            lambda db: [
                r[0] for r in db.execute("SELECT job_id FROM jobs WHERE confirmed = 1 ORDER BY idx")
            ]
        )

    async def jobs(self) -> dict[int, tuple[int, bool]]:
        """Every recorded job: global index -> (job ID, confirmed).

        Usage: ``index_to_id = {i: j for i, (j, ok) in (await journal.jobs()).items() if ok}``
        """
        return await self._run(
            lambda db: {
                r[0]: (r[1], bool(r[2]))
                for r in db.execute("SELECT idx, job_id, confirmed FROM jobs ORDER BY idx")
            }
        )

    async def record_states(self, states: Iterable[JobState]) -> None:
        """Store each job's last known state (replacing the previous one).

        Usage: ``await journal.record_states(changed)``
        """
        rows = [
            (
                s.job_id,
                str(s.status),
                s.minor_status,
                s.application_status,
                s.site,
                s.time.isoformat() if s.time is not None else None,
            )
            for s in states
        ]
        if not rows:
            return

        def write(db: sqlite3.Connection) -> None:
            db.executemany("INSERT OR REPLACE INTO statuses VALUES (?, ?, ?, ?, ?, ?)", rows)

        await self._run(lambda db: self._write(db, write))

    async def last_states(self) -> dict[int, JobState]:
        """The last stored state of every job that has one.

        Usage: ``known = await journal.last_states()``
        """

        def read(db: sqlite3.Connection) -> dict[int, JobState]:
            return {
                r[0]: JobState(
                    job_id=r[0],
                    status=JobStatus(r[1]),
                    minor_status=r[2],
                    application_status=r[3],
                    site=r[4],
                    time=_time(r[5]),
                )
                for r in db.execute("SELECT * FROM statuses")
            }

        return await self._run(read)

    async def record_download(self, job_id: int, path: str, size: int, sha256: str) -> None:
        """Record a finished, verified download of a job's output sandbox.

        Usage: ``await journal.record_download(42, "out/42", 1234, digest)``
        """

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO downloads VALUES (?, ?, ?, ?, ?)",
                (job_id, path, size, sha256, _now()),
            )

        await self._run(lambda db: self._write(db, write))

    async def downloads(self) -> dict[int, DownloadRecord]:
        """Finished downloads, by job ID.

        Usage: ``done = await journal.downloads()``
        """
        return await self._run(
            lambda db: {
                r[0]: DownloadRecord(r[0], r[1], r[2], r[3])
                for r in db.execute("SELECT job_id, path, size, sha256 FROM downloads")
            }
        )

    async def summary(self) -> CampaignSummary:
        """Counts of chunks, jobs, sweeps, statuses and downloads.

        Usage: ``print(await journal.summary())``
        """

        def read(db: sqlite3.Connection) -> CampaignSummary:
            campaign = db.execute("SELECT name, job_group FROM campaign WHERE id = 1").fetchone()
            chunks = {
                ChunkState(state): n
                for state, n in db.execute("SELECT state, COUNT(*) FROM chunks GROUP BY state")
            }
            recorded, confirmed = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(confirmed), 0) FROM jobs"
            ).fetchone()
            statuses = {
                JobStatus(status): n
                for status, n in db.execute("SELECT status, COUNT(*) FROM statuses GROUP BY status")
            }
            return CampaignSummary(
                name=campaign[0] if campaign else "",
                job_group=campaign[1] if campaign else "",
                chunks=chunks,
                jobs_recorded=int(recorded),
                jobs_confirmed=int(confirmed),
                swept=int(db.execute("SELECT COUNT(*) FROM swept").fetchone()[0]),
                statuses=statuses,
                downloads=int(db.execute("SELECT COUNT(*) FROM downloads").fetchone()[0]),
            )

        return await self._run(read)
