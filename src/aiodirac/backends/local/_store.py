"""The local job store: one SQLite file (WAL), shared by every process that uses a state folder.

Clients (submit, status, kill...) and the agent write to it concurrently; every write is one short
``BEGIN IMMEDIATE`` transaction, readers never wait for writers (WAL). A store that stays locked
longer than the busy timeout raises :class:`StoreLockedError` (worth retrying); a file that is not
a SQLite database raises :class:`~aiodirac.LocalBackendError` and is left untouched.

Tables: ``jobs`` (one row per job: its status, its concrete description as JSON, its output
sandbox), ``history`` (every status change, DIRAC's logging info), ``chunks`` (one per submitted
chunk: where its input sandbox is stored).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiodirac._exceptions import LocalBackendError, StoreLockedError
from aiodirac._job._spec import ConcreteJob, JDLValue, Step
from aiodirac._job._status import JobStatus, MinorStatus

__all__ = [
    "ACTIVE",
    "AttributeRow",
    "Claimed",
    "JobRow",
    "Store",
    "StoreLockedError",
    "Update",
    "decode_job",
    "encode_job",
]

_SCHEMA_VERSION = "1"
_BUSY_TIMEOUT_MS = 10_000

#: Statuses of a job the agent has taken: it owns the job while it is in one of these.
ACTIVE: tuple[str, ...] = (JobStatus.MATCHED, JobStatus.RUNNING, JobStatus.COMPLETING)

#: Columns jobs can be selected on (:meth:`Store.select`).
_SELECTABLE = frozenset({"status", "minor_status", "application_status", "site", "job_group"})

#: DIRAC's default MaxRescheduling.
MAX_RESCHEDULING = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sandbox TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id INTEGER NOT NULL REFERENCES chunks(id),
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    minor_status TEXT NOT NULL,
    application_status TEXT NOT NULL DEFAULT 'Unknown',
    site TEXT NOT NULL DEFAULT 'ANY',
    name TEXT NOT NULL,
    job_group TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL DEFAULT 1,
    submitted REAL NOT NULL,
    updated REAL NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    reschedules INTEGER NOT NULL DEFAULT 0,
    spec TEXT NOT NULL,
    pgid INTEGER,
    sandbox_path TEXT,
    sandbox_size INTEGER,
    sandbox_sha256 TEXT,
    parameters TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, priority DESC, id);
CREATE INDEX IF NOT EXISTS jobs_unconfirmed ON jobs (job_group, submitted) WHERE status = 'Submitting';
CREATE TABLE IF NOT EXISTS history (
    job_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    minor_status TEXT NOT NULL,
    application_status TEXT NOT NULL,
    time REAL NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_job ON history (job_id);
"""


def encode_job(job: ConcreteJob) -> str:
    """A concrete job as JSON (lists for tuples).

    Usage: ``decode_job(encode_job(job)) == job``
    """
    return json.dumps(
        {
            "index": job.index,
            "attributes": {
                k: list(v) if isinstance(v, tuple) else v for k, v in job.attributes.items()
            },
            "steps": [[s.number, s.executable, s.arguments, s.log_file] for s in job.steps],
            "parameters": dict(job.parameters),
        },
        separators=(",", ":"),
    )


def decode_job(text: str) -> ConcreteJob:
    """The concrete job :func:`encode_job` wrote.

    Usage: ``job = decode_job(row.spec)``
    """
    data = json.loads(text)
    attributes: dict[str, JDLValue] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in data["attributes"].items()
    }
    steps = tuple(Step(int(n), str(e), str(a), str(log)) for n, e, a, log in data["steps"])
    return ConcreteJob(int(data["index"]), attributes, steps, dict(data["parameters"]))


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job's status columns.

    Usage: ``row.status``
    """

    job_id: int
    status: str
    minor_status: str
    application_status: str
    site: str
    updated: float


@dataclass(frozen=True, slots=True)
class AttributeRow:
    """What the store knows of a job's DIRAC attributes (times: epoch seconds or ``None``).

    Usage: ``row.job_type``
    """

    job_id: int
    status: str
    minor_status: str
    application_status: str
    site: str
    name: str
    job_group: str
    job_type: str
    priority: int
    reschedules: int
    submitted: float
    updated: float
    started: float | None
    ended: float | None
    rescheduled: float | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job the agent has just taken (``Matched``).

    Usage: ``run(claimed.job, claimed.sandbox)``
    """

    job_id: int
    attempt: int
    job: ConcreteJob
    sandbox: str | None


@dataclass(frozen=True, slots=True)
class Update:
    """A status change the agent reports for a job it owns (applied only if it still owns it).

    Attributes:
        job_id: the job.
        attempt: the attempt the agent runs; a rescheduled job has a new one.
        status: new status, or ``None`` to keep it.
        minor_status: new minor status, or ``None`` to keep it.
        application_status: new ApplicationStatus, or ``None`` to keep it.
        time: when it happened (epoch seconds).
        parameters: job parameters to merge in.
        sandbox: ``(path, size, sha256)`` of the packed output sandbox.
        pgid: the process group of the step now running.

    Usage: ``Update(7, 1, JobStatus.DONE, "Execution Complete", None, time.time())``
    """

    job_id: int
    attempt: int
    status: str | None
    minor_status: str | None
    application_status: str | None
    time: float
    parameters: Mapping[str, str] | None = None
    sandbox: tuple[str, int, str] | None = None
    pgid: int | None = None


def _ids_json(ids: Iterable[int]) -> str:
    return json.dumps([int(i) for i in ids])


class Store:
    """A connection to one job store, safe to share between threads (calls are serialised).

    Raises:
        LocalBackendError: the state folder or the store cannot be opened or written.

    Usage: ``store = Store(Path("home/jobs.sqlite")); store.status([1, 2])``
    """

    def __init__(self, path: Path, *, busy_timeout_ms: int = _BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LocalBackendError(
                f"cannot create the local state folder {path.parent}: {exc.strerror}; "
                "choose a writable folder with AIODIRAC_HOME or LocalBackend(home=...)"
            ) from exc
        with self._translate():
            self._db = sqlite3.connect(
                path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
        try:
            with self._translate():
                self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError("cannot switch the store to WAL mode")
                self._db.execute("PRAGMA synchronous = NORMAL")
                version = self._schema_version()
                if version is None:
                    with self._write() as db:
                        for statement in _SCHEMA.split(";"):
                            if statement.strip():
                                db.execute(statement)
                        db.execute(
                            "INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,)
                        )
                elif version != _SCHEMA_VERSION:
                    raise LocalBackendError(
                        f"the job store {path} has schema version {version}, this aiodirac "
                        f"reads version {_SCHEMA_VERSION}; use another AIODIRAC_HOME"
                    )
        except BaseException:
            self._db.close()
            raise

    def _schema_version(self) -> str | None:
        row = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if row is None:
            return None
        found = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return None if found is None else str(found[0])

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "locked" in text or "busy" in text:
                raise StoreLockedError(
                    f"the job store {self.path} is locked by another process; retry later"
                ) from exc
            if "full" in text:
                raise LocalBackendError(
                    f"the disk holding the job store {self.path} is full; free some space"
                ) from exc
            if "readonly" in text or "unable to open" in text or "read-only" in text:
                raise LocalBackendError(
                    f"the job store {self.path} cannot be written ({exc}); "
                    "choose a writable folder with AIODIRAC_HOME or LocalBackend(home=...)"
                ) from exc
            raise LocalBackendError(f"the job store {self.path} failed: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise LocalBackendError(
                f"the job store {self.path} is damaged ({exc}); it was left untouched: move it "
                "away (or use another AIODIRAC_HOME) to start a new store"
            ) from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (the caller holds ``self._lock``)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, errors translated.

        Usage: ``with store.transaction() as db: db.execute(...)``
        """
        with self._lock, self._translate(), self._write() as db:
            yield db

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Serialised read access, errors translated.

        Usage: ``with store.reading() as db: db.execute(...)``
        """
        with self._lock, self._translate():
            yield self._db

    # -- clients -------------------------------------------------------------------------------

    def add_chunk(self, jobs: Sequence[ConcreteJob], sandbox: str | None, now: float) -> list[int]:
        """Store jobs unconfirmed (``Submitting``); return their IDs in order.

        Usage: ``ids = store.add_chunk(chunk.jobs, "sandboxes/3", time.time())``
        """
        with self.transaction() as db:
            chunk_id = db.execute(
                "INSERT INTO chunks (sandbox, created) VALUES (?, ?)", (sandbox, now)
            ).lastrowid
            ids: list[int] = []
            for job in jobs:
                group = job.attributes.get("JobGroup", "")
                priority = job.attributes.get("Priority", 1)
                row = db.execute(
                    "INSERT INTO jobs (chunk_id, idx, status, minor_status, name, job_group,"
                    " priority, submitted, updated, spec) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        chunk_id,
                        job.index,
                        JobStatus.SUBMITTING.value,
                        MinorStatus.BULK_CONFIRMATION.value,
                        job.name,
                        group if isinstance(group, str) else str(group),
                        priority if isinstance(priority, int) else 1,
                        now,
                        now,
                        encode_job(job),
                    ),
                )
                ids.append(int(row.lastrowid or 0))
            db.executemany(
                "INSERT INTO history VALUES (?, ?, ?, 'Unknown', ?, 'JobManager')",
                [
                    (i, JobStatus.SUBMITTING.value, MinorStatus.BULK_CONFIRMATION.value, now)
                    for i in ids
                ],
            )
        return ids

    def move(
        self,
        job_ids: Sequence[int],
        *,
        source: Sequence[str],
        status: str,
        minor_status: str,
        now: float,
        origin: str,
    ) -> list[int]:
        """Move the jobs among ``job_ids`` that are in ``source`` statuses; return those moved.

        Usage: ``store.move(ids, source=["Submitting"], status="Received", ...)``
        """
        marks = ",".join("?" * len(source))
        with self.transaction() as db:
            moved = [
                int(r[0])
                for r in db.execute(
                    f"UPDATE jobs SET status = ?, minor_status = ?, updated = ? "
                    f"WHERE id IN (SELECT value FROM json_each(?)) AND status IN ({marks}) "
                    f"RETURNING id",
                    (status, minor_status, now, _ids_json(job_ids), *source),
                )
            ]
            self._log(db, moved, status, minor_status, None, now, origin)
        return moved

    @staticmethod
    def _log(
        db: sqlite3.Connection,
        ids: Iterable[int],
        status: str,
        minor: str,
        app: str | None,
        now: float,
        origin: str,
    ) -> None:
        db.executemany(
            "INSERT INTO history SELECT id, ?, ?, COALESCE(?, application_status), ?, ? "
            "FROM jobs WHERE id = ?",
            [(status, minor, app, now, origin, i) for i in ids],
        )

    def known(self, job_ids: Sequence[int]) -> set[int]:
        """The IDs among ``job_ids`` that exist.

        Usage: ``missing = set(ids) - store.known(ids)``
        """
        with self.reading() as db:
            return {
                int(r[0])
                for r in db.execute(
                    "SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
                    (_ids_json(job_ids),),
                )
            }

    def status(self, job_ids: Sequence[int]) -> list[JobRow]:
        """Status columns of the known jobs among ``job_ids`` (one query).

        Usage: ``rows = store.status(range(1, 1001))``
        """
        with self.reading() as db:
            return [
                JobRow(int(r[0]), r[1], r[2], r[3], r[4], float(r[5]))
                for r in db.execute(
                    "SELECT id, status, minor_status, application_status, site, updated FROM jobs "
                    "WHERE id IN (SELECT value FROM json_each(?))",
                    (_ids_json(job_ids),),
                )
            ]

    def status_rows(self, job_ids: Sequence[int]) -> list[tuple[int, str, str, str, str, float]]:
        """``(id, status, minor, application, site, updated)`` of the known jobs (one query).

        Usage: ``store.status_rows(range(1, 1001))``
        """
        with self.reading() as db:
            return db.execute(
                "SELECT id, status, minor_status, application_status, site, updated FROM jobs "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (_ids_json(job_ids),),
            ).fetchall()

    def list_jobs(
        self, statuses: Sequence[str], limit: int | None
    ) -> list[tuple[int, str, str, str, str, str, float, float]]:
        """Every job (or those in ``statuses``), newest first, at most ``limit``:
        ``(id, name, job_group, status, minor_status, site, submitted, updated)``."""
        query = (
            "SELECT id, name, job_group, status, minor_status, site, submitted, updated FROM jobs"
            + (f" WHERE status IN ({','.join('?' * len(statuses))})" if statuses else "")
            + " ORDER BY id DESC"
            + (" LIMIT ?" if limit else "")
        )
        params: list[object] = [*statuses, *([limit] if limit else [])]
        with self.reading() as db:
            return [tuple(row) for row in db.execute(query, params)]

    def summary(self, job_ids: Sequence[int]) -> dict[str, int]:
        """Counts per status among the known jobs of ``job_ids``.

        Usage: ``store.summary(ids)`` -> ``{"Done": 3}``
        """
        with self.reading() as db:
            return {
                str(r[0]): int(r[1])
                for r in db.execute(
                    "SELECT status, COUNT(*) FROM jobs WHERE id IN "
                    "(SELECT value FROM json_each(?)) GROUP BY status",
                    (_ids_json(job_ids),),
                )
            }

    def unconfirmed(
        self,
        *,
        job_group: str | None,
        name_prefix: str | None,
        since: float | None,
        until: float | None,
    ) -> list[tuple[int, str, str, float]]:
        """``(id, name, group, submitted)`` of the ``Submitting`` jobs matching every filter.

        Usage: ``store.unconfirmed(job_group="c1", name_prefix=None, since=None, until=None)``
        """
        query = "SELECT id, name, job_group, submitted FROM jobs WHERE status = 'Submitting'"
        args: list[Any] = []
        if job_group is not None:
            query += " AND job_group = ?"
            args.append(job_group)
        if name_prefix:
            query += " AND substr(name, 1, ?) = ?"
            args.extend((len(name_prefix), name_prefix))
        if since is not None:
            query += " AND submitted >= ?"
            args.append(since)
        if until is not None:
            query += " AND submitted <= ?"
            args.append(until)
        with self.reading() as db:
            return [
                (int(r[0]), str(r[1]), str(r[2]), float(r[3]))
                for r in db.execute(query + " ORDER BY id", args)
            ]

    def job_details(self, job_id: int) -> dict[str, Any] | None:
        """Everything stored about one job, or ``None`` when unknown.

        Usage: ``store.job_details(7)["spec"]``
        """
        with self.reading() as db:
            db.row_factory = sqlite3.Row
            try:
                row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            finally:
                db.row_factory = None
        return None if row is None else dict(row)

    def history(self, job_id: int) -> list[tuple[str, str, str, float, str]]:
        """The status changes of a job, oldest first.

        Usage: ``[h[0] for h in store.history(7)]`` -> ``["Submitting", "Received", ...]``
        """
        with self.reading() as db:
            return [
                (str(r[0]), str(r[1]), str(r[2]), float(r[3]), str(r[4]))
                for r in db.execute(
                    "SELECT status, minor_status, application_status, time, source FROM history "
                    "WHERE job_id = ? ORDER BY rowid",
                    (job_id,),
                )
            ]

    def select(self, conditions: Mapping[str, Sequence[str]], since: float | None) -> list[int]:
        """IDs of the jobs whose columns hold one of the given values each, updated since then.

        Args:
            conditions: column name (``status``, ``minor_status``, ``application_status``,
                ``site``, ``job_group``) -> accepted values; an empty sequence does not filter.
            since: keep jobs updated at or after this epoch time.

        Usage: ``store.select({"status": ["Done"]}, since=None)``
        """
        query = "SELECT id FROM jobs WHERE 1"
        args: list[Any] = []
        for column, values in conditions.items():
            if column not in _SELECTABLE:
                raise ValueError(f"cannot select jobs on {column!r}")
            if values:
                query += f" AND {column} IN (SELECT value FROM json_each(?))"
                args.append(json.dumps(list(values)))
        if since is not None:
            query += " AND updated >= ?"
            args.append(since)
        with self.reading() as db:
            return [int(r[0]) for r in db.execute(query + " ORDER BY id", args)]

    def attribute_rows(self, job_ids: Sequence[int]) -> list[AttributeRow]:
        """DIRAC's job attributes of the known jobs among ``job_ids`` (one query).

        Start and end of execution and the last reschedule come from the history.

        Usage: ``store.attribute_rows([7])[0].status``
        """
        with self.reading() as db:
            return [
                AttributeRow(*row)
                for row in db.execute(
                    "WITH wanted(id) AS (SELECT value FROM json_each(?)), times AS ("
                    " SELECT h.job_id,"
                    "  MAX(CASE WHEN h.status = 'Running' THEN h.time END) AS started,"
                    "  MAX(CASE WHEN h.status IN ('Done', 'Failed', 'Killed', 'Completed')"
                    "   THEN h.time END) AS ended,"
                    "  MAX(CASE WHEN h.status = 'Rescheduled' THEN h.time END) AS rescheduled"
                    " FROM history h JOIN wanted w ON h.job_id = w.id GROUP BY h.job_id) "
                    "SELECT j.id, j.status, j.minor_status, j.application_status, j.site, j.name,"
                    " j.job_group, COALESCE(json_extract(j.spec, '$.attributes.JobType'), 'User'),"
                    " j.priority, j.reschedules, j.submitted, j.updated,"
                    " t.started, t.ended, t.rescheduled "
                    "FROM jobs j JOIN wanted w ON j.id = w.id LEFT JOIN times t ON t.job_id = j.id "
                    "ORDER BY j.id",
                    (_ids_json(job_ids),),
                )
            ]

    def chunk_sandbox(self, job_id: int) -> tuple[bool, str | None]:
        """``(known, folder)``: whether the job exists, and its chunk's stored input sandbox.

        Usage: ``known, folder = store.chunk_sandbox(7)``
        """
        with self.reading() as db:
            row = db.execute(
                "SELECT c.sandbox FROM jobs j JOIN chunks c ON c.id = j.chunk_id WHERE j.id = ?",
                (job_id,),
            ).fetchone()
        return (False, None) if row is None else (True, row[0])

    def act(
        self, job_ids: Sequence[int], target: JobStatus, now: float
    ) -> tuple[list[int], dict[int, str], list[str]]:
        """Kill, delete or reschedule jobs under DIRAC's transition rules, in one transaction.

        Returns:
            ``(done, refused, stale_archives)``: the jobs acted on, the refused ones with their
            status (or ``"unknown job"``), and output archives that no longer belong to a job.

        Usage: ``done, refused, stale = store.act(ids, JobStatus.KILLED, time.time())``
        """
        done: list[int] = []
        refused: dict[int, str] = {}
        stale: list[str] = []
        with self.transaction() as db:
            rows = {
                int(r[0]): (JobStatus(r[1]), int(r[2]), r[3])
                for r in db.execute(
                    "SELECT id, status, reschedules, sandbox_path FROM jobs "
                    "WHERE id IN (SELECT value FROM json_each(?))",
                    (_ids_json(job_ids),),
                )
            }
            for job_id in dict.fromkeys(int(i) for i in job_ids):
                found = rows.get(job_id)
                if found is None:
                    refused[job_id] = "unknown job"
                    continue
                current, reschedules, archive = found
                # DIRAC deletes a running job by killing it first (Running -> Killed -> Deleted)
                via_kill = target is JobStatus.DELETED and not current.can_move_to(target)
                if not current.can_move_to(target) and not (
                    via_kill and current.can_move_to(JobStatus.KILLED)
                ):
                    refused[job_id] = current.value
                    continue
                done.append(job_id)
                if target is JobStatus.KILLED:
                    if current is JobStatus.KILLED:
                        continue
                    self._set(db, job_id, JobStatus.KILLED, MinorStatus.MARKED_FOR_TERMINATION, now)
                elif target is JobStatus.DELETED:
                    if current is JobStatus.DELETED:
                        continue
                    if via_kill:
                        self._set(
                            db, job_id, JobStatus.KILLED, MinorStatus.MARKED_FOR_TERMINATION, now
                        )
                    self._set(db, job_id, JobStatus.DELETED, "Checking accounting", now)
                    if archive:
                        stale.append(archive)
                    db.execute(
                        "UPDATE jobs SET sandbox_path = NULL, sandbox_size = NULL, "
                        "sandbox_sha256 = NULL WHERE id = ?",
                        (job_id,),
                    )
                elif reschedules >= MAX_RESCHEDULING:
                    self._set(db, job_id, JobStatus.FAILED, MinorStatus.MAX_RESCHEDULING, now)
                else:
                    if archive:
                        stale.append(archive)
                    db.execute(
                        "UPDATE jobs SET status = ?, minor_status = ?, application_status = "
                        "'Unknown', site = 'ANY', updated = ?, reschedules = reschedules + 1, "
                        "attempt = attempt + 1, sandbox_path = NULL, sandbox_size = NULL, "
                        "sandbox_sha256 = NULL, pgid = NULL WHERE id = ?",
                        (JobStatus.RECEIVED.value, MinorStatus.RESCHEDULED.value, now, job_id),
                    )
                    self._log(
                        db,
                        [job_id],
                        JobStatus.RESCHEDULED,
                        MinorStatus.RESCHEDULED,
                        None,
                        now,
                        "JobManager",
                    )
                    self._log(
                        db,
                        [job_id],
                        JobStatus.RECEIVED,
                        MinorStatus.RESCHEDULED,
                        "Unknown",
                        now,
                        "JobManager",
                    )
        return done, refused, stale

    def _set(
        self, db: sqlite3.Connection, job_id: int, status: str, minor: str, now: float
    ) -> None:
        db.execute(
            "UPDATE jobs SET status = ?, minor_status = ?, updated = ? WHERE id = ?",
            (status, minor, now, job_id),
        )
        self._log(db, [job_id], status, minor, None, now, "JobManager")

    # -- agent ---------------------------------------------------------------------------------

    def pending(self) -> int:
        """How many jobs wait for the agent (``Received`` or ``Waiting``).

        Usage: ``if store.pending(): start_agent()``
        """
        with self.reading() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status IN ('Received', 'Waiting')"
            ).fetchone()
        return int(row[0])

    def cycle(self, updates: Sequence[Update], claim: int, site: str, now: float) -> list[Claimed]:
        """One agent round in one transaction: apply updates, queue received jobs, claim some.

        Updates apply only to jobs the agent still owns (same attempt, an ACTIVE status), so a
        job killed, deleted or rescheduled meanwhile keeps what its owner set.

        Returns:
            The jobs claimed (now ``Matched``), highest priority first, at most ``claim``.

        Usage: ``claimed = store.cycle(updates, 4, "DIRAC.vm.local", time.time())``
        """
        with self.transaction() as db:
            self._apply(db, updates)
            received = [
                int(r[0])
                for r in db.execute(
                    "UPDATE jobs SET status = 'Waiting', minor_status = ?, updated = ? "
                    "WHERE status = 'Received' RETURNING id",
                    (MinorStatus.PILOT_AGENT_SUBMISSION.value, now),
                )
            ]
            self._log(
                db,
                received,
                JobStatus.WAITING,
                MinorStatus.PILOT_AGENT_SUBMISSION,
                None,
                now,
                "Agent",
            )
            if claim <= 0:
                return []
            rows = db.execute(
                "UPDATE jobs SET status = 'Matched', minor_status = 'Assigned', site = ?, "
                "updated = ?, attempt = attempt + 1, pgid = NULL WHERE id IN (SELECT id FROM jobs "
                "WHERE status = 'Waiting' ORDER BY priority DESC, id LIMIT ?) "
                "RETURNING id, attempt, chunk_id, spec",
                (site, now, claim),
            ).fetchall()
            claimed_ids = [int(r[0]) for r in rows]
            self._log(db, claimed_ids, JobStatus.MATCHED, "Assigned", None, now, "Agent")
            sandboxes = {
                int(r[0]): r[1]
                for r in db.execute(
                    "SELECT id, sandbox FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
                    (_ids_json({int(r[2]) for r in rows}),),
                )
            }
        return [
            Claimed(int(r[0]), int(r[1]), decode_job(r[3]), sandboxes.get(int(r[2]))) for r in rows
        ]

    def _apply(self, db: sqlite3.Connection, updates: Sequence[Update]) -> None:
        """Fold a batch of updates into one row write per job (plus its history rows)."""
        if not updates:
            return
        current: dict[int, list[Any]] = {
            int(r[0]): [int(r[1]), r[2], r[3], r[4]]
            for r in db.execute(
                "SELECT id, attempt, status, minor_status, application_status FROM jobs "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (_ids_json({u.job_id for u in updates}),),
            )
        }
        history: list[tuple[int, str, str, str, float]] = []
        rows: dict[int, dict[str, Any]] = {}
        for up in updates:
            cur = current.get(up.job_id)
            # only while the agent still owns the job: same attempt, not killed/deleted/ended
            if cur is None or cur[0] != up.attempt or cur[1] not in ACTIVE:
                continue
            row = rows.setdefault(
                up.job_id, {"time": None, "parameters": {}, "sandbox": None, "pgid": None}
            )
            changed = False
            for position, value in enumerate(
                (up.status, up.minor_status, up.application_status), start=1
            ):
                if value is not None:
                    cur[position] = str(value)
                    changed = True
            if changed:
                # a process-group note is not a status change: it keeps the time of the last one
                row["time"] = up.time
                history.append((up.job_id, cur[1], cur[2], cur[3], up.time))
            if up.parameters:
                row["parameters"].update(up.parameters)
            if up.sandbox is not None:
                row["sandbox"] = up.sandbox
            if up.pgid is not None:
                row["pgid"] = up.pgid
        params = [
            (
                current[job_id][1],
                current[job_id][2],
                current[job_id][3],
                row["time"],
                json.dumps(row["parameters"]) if row["parameters"] else None,
                *(row["sandbox"] or (None, None, None)),
                row["pgid"],
                job_id,
            )
            for job_id, row in rows.items()
        ]
        db.executemany(
            "UPDATE jobs SET status = ?, minor_status = ?, application_status = ?, "
            "updated = COALESCE(?, updated), "
            "parameters = json_patch(parameters, COALESCE(?, '{}')), "
            "sandbox_path = COALESCE(?, sandbox_path), sandbox_size = COALESCE(?, sandbox_size), "
            "sandbox_sha256 = COALESCE(?, sandbox_sha256), pgid = COALESCE(?, pgid) WHERE id = ?",
            params,
        )
        db.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, 'JobWrapper')", history)

    def owned(self, owned: Mapping[int, int]) -> set[int]:
        """Which of the agent's jobs (``{id: attempt}``) it no longer owns.

        Usage: ``for job_id in store.owned(inflight): cancel(job_id)``
        """
        if not owned:
            return set()
        marks = ",".join("?" * len(ACTIVE))
        with self.reading() as db:
            still = {
                int(r[0])
                for r in db.execute(
                    f"SELECT id, attempt FROM jobs WHERE id IN (SELECT value FROM json_each(?)) "
                    f"AND status IN ({marks})",
                    (_ids_json(owned), *ACTIVE),
                )
                if owned.get(int(r[0])) == int(r[1])
            }
        return set(owned) - still

    def recover(self, now: float) -> list[tuple[int, int | None]]:
        """Deal with the jobs a dead agent left behind; return ``(id, pgid)`` of those failed.

        ``Matched`` jobs never started: they wait again. ``Running``/``Completing`` ones were
        cut off: ``Failed`` / ``Job stalled: pilot not running``, as DIRAC's stalled-job agent
        does when a pilot dies.

        Usage: ``for job_id, pgid in store.recover(time.time()): kill_group(pgid)``
        """
        with self.transaction() as db:
            requeued = [
                int(r[0])
                for r in db.execute(
                    "UPDATE jobs SET status = 'Waiting', minor_status = ?, site = 'ANY', "
                    "updated = ? WHERE status = 'Matched' RETURNING id",
                    (MinorStatus.PILOT_AGENT_SUBMISSION.value, now),
                )
            ]
            self._log(
                db,
                requeued,
                JobStatus.WAITING,
                MinorStatus.PILOT_AGENT_SUBMISSION,
                None,
                now,
                "Agent",
            )
            failed = [
                (int(r[0]), None if r[1] is None else int(r[1]))
                for r in db.execute(
                    "UPDATE jobs SET status = 'Failed', minor_status = ?, updated = ?, "
                    "parameters = json_patch(parameters, ?) "
                    "WHERE status IN ('Running', 'Completing') RETURNING id, pgid",
                    (
                        _STALLED,
                        now,
                        json.dumps({"ApplicationError": "the local agent running it died"}),
                    ),
                )
            ]
            self._log(db, [f[0] for f in failed], JobStatus.FAILED, _STALLED, None, now, "Agent")
        return failed

    def requeue(self, owned: Mapping[int, int], now: float) -> list[int]:
        """Give back jobs an agent that stops owns (``Received`` / ``Job Rescheduled``).

        Usage: ``store.requeue({7: 1}, time.time())``
        """
        moved: list[int] = []
        marks = ",".join("?" * len(ACTIVE))
        with self.transaction() as db:
            for job_id, attempt in owned.items():
                row = db.execute(
                    "UPDATE jobs SET status = 'Received', minor_status = ?, site = 'ANY', "
                    "application_status = 'Unknown', updated = ?, pgid = NULL "
                    f"WHERE id = ? AND attempt = ? AND status IN ({marks}) RETURNING id",
                    (MinorStatus.RESCHEDULED.value, now, job_id, attempt, *ACTIVE),
                ).fetchone()
                if row is not None:
                    moved.append(job_id)
            self._log(
                db, moved, JobStatus.RECEIVED, MinorStatus.RESCHEDULED, "Unknown", now, "Agent"
            )
        return moved

    def finished_sandboxes(self) -> list[tuple[int, str]]:
        """Chunks whose jobs can never run again, with their stored input sandbox folder.

        Usage: ``for chunk_id, folder in store.finished_sandboxes(): remove(folder)``
        """
        with self.reading() as db:
            return [
                (int(r[0]), str(r[1]))
                for r in db.execute(
                    "SELECT c.id, c.sandbox FROM chunks c WHERE c.sandbox IS NOT NULL AND NOT "
                    "EXISTS (SELECT 1 FROM jobs j WHERE j.chunk_id = c.id AND j.status NOT IN "
                    "('Done', 'Killed', 'Deleted'))"
                )
            ]

    def forget_sandbox(self, chunk_id: int) -> None:
        """Record that a chunk's input sandbox folder was removed.

        Usage: ``store.forget_sandbox(3)``
        """
        with self.transaction() as db:
            db.execute("UPDATE chunks SET sandbox = NULL WHERE id = ?", (chunk_id,))


_STALLED = "Job stalled: pilot not running"
