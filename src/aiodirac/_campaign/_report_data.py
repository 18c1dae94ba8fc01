"""A campaign's journal read back as :class:`~aiodirac._report.ReportData` (what a report draws).

Read-only and synchronous: it opens the journal file on its own (a running campaign may hold it
too: SQLite's WAL lets both read and write), reads every table once, column by column, and
closes it. Run it in a worker thread from async code (``anyio.to_thread.run_sync``).

Usage::

    data = read_report_data("scan.db")
    write_report(data, "scan.html")
"""

from __future__ import annotations

import os
import sqlite3
from array import array
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from aiodirac._exceptions import JournalError
from aiodirac._job._status import JobStatus
from aiodirac._report import Downloads, Labels, ReportData, Retries, Submissions, Transitions

from ._records import STRIDE

__all__ = ["current_statuses", "read_report_data"]


def _seconds(text: str | None) -> float:
    return datetime.fromisoformat(text).timestamp() if text else 0.0


def read_report_data(journal: str | os.PathLike[str]) -> ReportData:
    """Everything a report shows about the campaign of ``journal``.

    Args:
        journal: the campaign's journal file.

    Returns:
        The campaign's :class:`ReportData` (``ended`` is ``None`` while it has not ended).

    Raises:
        JournalError: no such file, or not the journal of a campaign.

    Usage: ``data = read_report_data("scan.db")``
    """
    path = Path(journal)
    if not path.is_file():
        raise JournalError(f"no campaign journal at {path}")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read the campaign journal {path}: {exc}") from exc
    try:
        return _read(db, path)
    except sqlite3.Error as exc:
        raise JournalError(
            f"{path} is not the journal of a campaign run by aiodirac ({exc}): run the "
            "campaign with AsyncDirac.campaign or 'aiodirac campaign run'"
        ) from exc
    finally:
        db.close()


def _read(db: sqlite3.Connection, path: Path) -> ReportData:
    run = db.execute(
        "SELECT total, created, ended, outcome, backend FROM campaign_run WHERE id = 1"
    ).fetchone()
    if run is None:
        raise JournalError(f"the campaign of {path} has not started yet")
    name_row = db.execute("SELECT name FROM campaign WHERE id = 1").fetchone()
    texts = dict(db.execute("SELECT id, text FROM strings"))

    # Column by column: the rows transposed at C speed, the text ids of each column numbered
    # in order (a campaign of 100,000 jobs has over half a million rows).
    rows = db.execute(
        "SELECT job_id, attempt, status, minor, app, site, time FROM history"
    ).fetchall()
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 7
    del rows

    def labels(column: tuple[Any, ...]) -> Labels:
        used = sorted(set(column))
        code = {sid: n for n, sid in enumerate(used)}
        return Labels(array("i", map(code.__getitem__, column)), tuple(texts[s] for s in used))

    transitions = Transitions(
        job_id=array("q", columns[0]),
        attempt=array("q", columns[1]),
        status=labels(columns[2]),
        minor_status=labels(columns[3]),
        application_status=labels(columns[4]),
        site=labels(columns[5]),
        time=array("d", columns[6]),
    )
    del columns

    chunk_times = {
        chunk_id: _seconds(updated)
        for chunk_id, updated in db.execute("SELECT chunk_id, updated FROM chunks")
    }

    def submissions() -> Iterator[tuple[int, int, float]]:
        for idx, job_id, chunk_id in db.execute(
            "SELECT idx, job_id, chunk_id FROM jobs WHERE confirmed = 1 ORDER BY idx"
        ):
            yield job_id, idx // STRIDE + 1, chunk_times.get(chunk_id, 0.0)

    retries = db.execute(
        "SELECT old_job_id, job_id, attempt, time, reason FROM retries WHERE state = 'done' "
        "ORDER BY time, idx"
    )
    fetched = {
        job_id: (size, _seconds(when))
        for job_id, size, when in db.execute("SELECT job_id, size, time FROM downloads")
    }
    failed = db.execute("SELECT job_id, time, error FROM download_failures").fetchall()

    def downloads() -> Iterator[tuple[int, bool, int, float, str]]:
        for job_id, (size, when) in sorted(fetched.items()):
            yield job_id, True, size, when, ""
        for job_id, when, error in sorted(failed):
            if job_id not in fetched:
                yield job_id, False, 0, when, error

    ended = run[2]
    return ReportData(
        campaign=name_row[0] if name_row else path.stem,
        backend=run[4],
        created=float(run[1]),
        jobs=int(run[0]),
        transitions=transitions,
        submissions=Submissions.from_rows(submissions()),
        retries=Retries.from_rows(retries),
        downloads=Downloads.from_rows(downloads()),
        ended=float(ended) if ended is not None else None,
        outcome=run[3] if ended is not None else "running",
    )


def current_statuses(data: ReportData) -> Counter[JobStatus]:
    """How many of the campaign's jobs are in each status, by their latest attempt.

    A job replaced by a resubmission counts once, by its replacement.

    Usage: ``current_statuses(read_report_data("scan.db"))`` -> ``Counter({Done: 98, ...})``
    """
    replaced = {
        old
        for old, new in zip(data.retries.job_id, data.retries.new_job_id, strict=True)
        if old != new
    }
    # The last change of each job wins.
    last = dict(zip(data.transitions.job_id, data.transitions.status, strict=True))
    return Counter(JobStatus(status) for job_id, status in last.items() if job_id not in replaced)
