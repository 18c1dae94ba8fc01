"""The campaign's own pages of the journal: history, retries, download failures, its end.

They sit in the same SQLite file as the submission journal (:mod:`aiodirac._journal`), written
through its connection, one short transaction at a time::

    campaign_run  (id = 1, total, submitted, created, ended, outcome, backend)
    strings       (id, text UNIQUE)             every status, minor status, site... stored once
    history       (job_id, attempt, status, minor, app, site, time)   one row per observed change
    retries       (idx, attempt, method, state, old_job_id, job_id, time, reason)
                  PRIMARY KEY (idx, attempt): written as an intent BEFORE the retry is sent
    download_failures (job_id PRIMARY KEY, time, error)

A history row is seven integers (strings are ids into ``strings``, the time a float): about
30 bytes on disk, so the seven changes a job typically shows cost about 200 bytes. Resubmitted
jobs are journaled by the submitter under the index ``(attempt - 1) * 2**32 + index``, so that
one concrete job submitted again is a new chunk of its own, created exactly once.

Usage::

    records = CampaignRecords(journal)
    await records.open(total=1000, backend="local")
    records.add_history(job_id, attempt, state, time)
    await records.flush()
"""

from __future__ import annotations

import sqlite3
import time as _time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiodirac._job._status import JobState, JobStatus
from aiodirac._journal import Journal

__all__ = ["STRIDE", "CampaignRecords", "RetryRecord", "Snapshot", "split_index", "virtual_index"]

#: Resubmissions of a job are journaled under ``index + (attempt - 1) * STRIDE``.
STRIDE = 1 << 32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign_run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    total INTEGER NOT NULL,
    submitted INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    ended REAL,
    outcome TEXT NOT NULL DEFAULT '',
    backend TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS strings (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS history (
    job_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER NOT NULL,
    minor INTEGER NOT NULL,
    app INTEGER NOT NULL,
    site INTEGER NOT NULL,
    time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS retries (
    idx INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    method TEXT NOT NULL,
    state TEXT NOT NULL,
    old_job_id INTEGER NOT NULL,
    job_id INTEGER NOT NULL DEFAULT 0,
    time REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (idx, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS download_failures (
    job_id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    error TEXT NOT NULL
);
"""


def virtual_index(index: int, attempt: int) -> int:
    """The journal index of ``attempt`` of job ``index`` (the first attempt keeps ``index``).

    Usage: ``virtual_index(7, 2)`` -> ``4294967303``
    """
    return index + (attempt - 1) * STRIDE


def split_index(virtual: int) -> tuple[int, int]:
    """``(index, attempt)`` of a journal index.

    Usage: ``split_index(4294967303)`` -> ``(7, 2)``
    """
    return virtual % STRIDE, virtual // STRIDE + 1


@dataclass(frozen=True, slots=True)
class _Buffered:
    strings: list[tuple[int, str]]
    history: list[tuple[int, int, int, int, int, int, float]]
    download_failures: list[tuple[int, float, str]]

    @property
    def empty(self) -> bool:
        return not (self.strings or self.history or self.download_failures)


@dataclass(frozen=True, slots=True)
class RetryRecord:
    """One retry as journaled.

    ``state`` is ``intent`` (decided, maybe sent), ``done`` (``job_id`` runs it) or
    ``failed`` (refused; it counted as an attempt).

    Usage: ``[r for r in snapshot.retries if r.state == "intent"]``
    """

    index: int
    attempt: int
    method: str
    state: str
    old_job_id: int
    job_id: int
    time: float
    reason: str


@dataclass(slots=True)
class Snapshot:
    """What a journal says about a campaign, for a resumed run (read once, then dropped).

    Attributes:
        total: jobs in the campaign (0 before the first run).
        submitted: the first submission of every job finished.
        created: when the campaign began (Unix time).
        ended: when it ended, if it did; ``outcome`` then says how.
        jobs: journal index -> job ID, confirmed jobs only.
        retries: every retry, by (index, attempt).
        last: job ID -> (attempt, last state observed, its time).
        failed: job IDs that were seen in a failed status (any attempt).
        downloads: job IDs whose outputs are in place.
        download_failures: job ID -> why its download failed.
    """

    total: int = 0
    submitted: bool = False
    created: float = 0.0
    ended: float | None = None
    outcome: str = ""
    backend: str = ""
    jobs: dict[int, int] = field(default_factory=dict)
    retries: list[RetryRecord] = field(default_factory=list)
    last: dict[int, tuple[int, JobState]] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    downloads: set[int] = field(default_factory=set)
    download_failures: dict[int, str] = field(default_factory=dict)


class CampaignRecords:
    """Reads and writes the campaign's tables of a :class:`~aiodirac.Journal`.

    History rows are buffered and written in batches (:meth:`flush`); every other write flushes
    them first, in the same transaction, so the journal never holds a retry whose failure it
    does not show.

    Args:
        journal: the open journal.

    Usage: ``records = CampaignRecords(journal); snapshot = await records.open(100, "local")``
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._strings: dict[str, int] = {}
        self._new_strings: list[tuple[int, str]] = []
        self._history: list[tuple[int, int, int, int, int, int, float]] = []
        self._download_failures: list[tuple[int, float, str]] = []

    @property
    def buffered(self) -> int:
        """History rows and download failures not written yet."""
        return len(self._history) + len(self._download_failures)

    # -- plumbing ------------------------------------------------------------------------------

    def _sid(self, text: str) -> int:
        sid = self._strings.get(text)
        if sid is None:
            sid = len(self._strings) + 1
            self._strings[text] = sid
            self._new_strings.append((sid, text))
        return sid

    def _take(self) -> _Buffered:
        taken = _Buffered(self._new_strings, self._history, self._download_failures)
        self._new_strings, self._history, self._download_failures = [], [], []
        return taken

    def _give_back(self, taken: _Buffered) -> None:
        self._new_strings[:0] = taken.strings
        self._history[:0] = taken.history
        self._download_failures[:0] = taken.download_failures

    @staticmethod
    def _put(db: sqlite3.Connection, taken: _Buffered) -> None:
        if taken.strings:
            db.executemany("INSERT INTO strings (id, text) VALUES (?, ?)", taken.strings)
        if taken.history:
            db.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)", taken.history)
        if taken.download_failures:
            db.executemany(
                "INSERT OR REPLACE INTO download_failures VALUES (?, ?, ?)",
                taken.download_failures,
            )

    async def _commit(self, statements: Callable[[sqlite3.Connection], None] | None) -> None:
        """Write the buffered rows and ``statements`` in one transaction."""
        taken = self._take()
        if taken.empty and statements is None:
            return

        def write(db: sqlite3.Connection) -> None:
            self._put(db, taken)
            if statements is not None:
                statements(db)

        try:
            await self.journal._run(lambda db: Journal._write(db, write))
        except BaseException:
            # Not written (cancelled before the thread ran, or an error): keep them for later.
            self._give_back(taken)
            raise

    async def _write(self, extra: str | None = None, args: Iterable[object] = ()) -> None:
        if extra is None:
            await self._commit(None)
            return
        sql, values = extra, tuple(args)

        def statement(db: sqlite3.Connection) -> None:
            db.execute(sql, values)

        await self._commit(statement)

    # -- reading -------------------------------------------------------------------------------

    async def open(
        self, total: int, backend: str, failures: frozenset[JobStatus] = frozenset()
    ) -> Snapshot:
        """Create the tables if needed, record the campaign's size, and read what is known.

        ``failures``: the statuses that count as failed (:attr:`Snapshot.failed`).

        Usage: ``snapshot = await records.open(len(job), dirac.backend.description)``
        """

        def read(db: sqlite3.Connection) -> Snapshot:
            db.executescript(f"BEGIN; {_SCHEMA} COMMIT;")
            snap = Snapshot()
            row = db.execute(
                "SELECT total, submitted, created, ended, outcome, backend FROM campaign_run"
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO campaign_run (id, total, created, backend) VALUES (1, ?, ?, ?)",
                    (total, _time.time(), backend),
                )
                row = db.execute(
                    "SELECT total, submitted, created, ended, outcome, backend FROM campaign_run"
                ).fetchone()
            snap.total, snap.submitted, snap.created = int(row[0]), bool(row[1]), float(row[2])
            snap.ended, snap.outcome, snap.backend = row[3], str(row[4]), str(row[5])
            texts = dict(db.execute("SELECT id, text FROM strings"))
            self._strings = {text: sid for sid, text in texts.items()}
            snap.jobs = dict(db.execute("SELECT idx, job_id FROM jobs WHERE confirmed = 1"))
            snap.retries = [
                RetryRecord(*r)
                for r in db.execute(
                    "SELECT idx, attempt, method, state, old_job_id, job_id, time, reason "
                    "FROM retries ORDER BY idx, attempt"
                )
            ]
            statuses = {sid: JobStatus(text) for sid, text in texts.items() if text in _STATUS}
            failing = {sid for sid, status in statuses.items() if status in failures}
            # One pass over every change: the last one of each job wins; objects are made
            # only for those (a campaign of 100,000 jobs has over half a million rows).
            rows: dict[int, tuple[int, int, int, int, int, float]] = {}
            failed = snap.failed
            for job_id, attempt, status, minor, app, site, when in db.execute(
                "SELECT job_id, attempt, status, minor, app, site, time FROM history"
            ):
                if status in failing:
                    failed.add(job_id)
                rows[job_id] = (attempt, status, minor, app, site, when)
            last = {
                job_id: (
                    attempt,
                    JobState(
                        job_id,
                        statuses[status],
                        texts[minor],
                        texts[app],
                        texts[site],
                        _utc(when),
                    ),
                )
                for job_id, (attempt, status, minor, app, site, when) in rows.items()
            }
            del rows
            snap.last = last
            snap.downloads = {r[0] for r in db.execute("SELECT job_id FROM downloads")}
            snap.download_failures = dict(db.execute("SELECT job_id, error FROM download_failures"))
            return snap

        return await self.journal._run(read)

    # -- writing -------------------------------------------------------------------------------

    def add_history(self, job_id: int, attempt: int, state: JobState, when: float) -> None:
        """Buffer one observed change (written by the next :meth:`flush` or write).

        Usage: ``records.add_history(event.job_id, 1, event.new, time.time())``
        """
        sid = self._sid
        self._history.append(
            (
                job_id,
                attempt,
                sid(state.status),
                sid(state.minor_status),
                sid(state.application_status),
                sid(state.site),
                when,
            )
        )

    async def flush(self) -> None:
        """Write the buffered history.

        Usage: ``await records.flush()``
        """
        await self._write()

    async def submitted(self) -> None:
        """Record that the first submission of every job finished.

        Usage: ``await records.submitted()``
        """
        await self._write("UPDATE campaign_run SET submitted = 1 WHERE id = 1")

    async def retry_intents(self, intents: Iterable[tuple[int, int, str, int, str]]) -> None:
        """Record retries about to be made: ``(index, attempt, method, old job ID, reason)``.

        Written (with the buffered history) BEFORE any retry request leaves.

        Usage: ``await records.retry_intents([(7, 2, "reschedule", 1207, "Failed")])``
        """
        now = _time.time()
        rows = [(i, a, m, "intent", old, 0, now, reason) for i, a, m, old, reason in intents]
        if not rows:
            return

        def write(db: sqlite3.Connection) -> None:
            db.executemany("INSERT OR REPLACE INTO retries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

        await self._commit(write)

    async def retries_settled(
        self, done: Iterable[tuple[int, int, int]], failed: Iterable[tuple[int, int, str]] = ()
    ) -> None:
        """Record retries made ``(index, attempt, job ID)`` and refused ``(index, attempt, why)``.

        Usage: ``await records.retries_settled([(7, 2, 1207)])``
        """
        ok = [(job_id, idx, attempt) for idx, attempt, job_id in done]
        bad = [(why, idx, attempt) for idx, attempt, why in failed]

        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE retries SET state = 'done', job_id = ? WHERE idx = ? AND attempt = ?", ok
            )
            db.executemany(
                "UPDATE retries SET state = 'failed', reason = ? WHERE idx = ? AND attempt = ?",
                bad,
            )

        await self._commit(write)

    def note_download_failure(self, job_id: int, error: str) -> None:
        """Buffer that a job's outputs could not be fetched (a later run tries again).

        Usage: ``records.note_download_failure(1207, "job 1207 has no output sandbox")``
        """
        self._download_failures.append((job_id, _time.time(), error))

    async def ended(self, outcome: str) -> None:
        """Record that the campaign ended, and how.

        Usage: ``await records.ended("complete")``
        """
        await self._write(
            "UPDATE campaign_run SET ended = ?, outcome = ? WHERE id = 1", (_time.time(), outcome)
        )


_STATUS = frozenset(str(s) for s in JobStatus)


def _utc(when: float) -> datetime:
    return datetime.fromtimestamp(when, UTC)
