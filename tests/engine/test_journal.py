"""Tests of aiodirac._journal.Journal: the campaign journal on a real SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from aiodirac._exceptions import JournalError
from aiodirac._job._status import JobState, JobStatus
from aiodirac._journal import ChunkState, DownloadRecord, Journal


async def test_campaign_identity_is_kept_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with await Journal.open(path) as journal:
        assert await journal.campaign() is None
        info = await journal.start_campaign("scan", "aiodirac-scan-01", owns_group=True)
        assert info.job_group == "aiodirac-scan-01"
        assert info.owns_group
    async with Journal(path) as journal:
        again = await journal.start_campaign("scan", "other-group", owns_group=False)
        assert again == info  # the journal's identity wins on resume
        with pytest.raises(JournalError, match="belongs to campaign 'scan'"):
            await journal.start_campaign("other", "g", owns_group=True)


async def test_chunk_lifecycle(tmp_path: Path) -> None:
    async with await Journal.open(tmp_path / "c.db") as journal:
        await journal.start_campaign("c", "g", owns_group=True)
        record = await journal.chunk_sent(0, 2, "d1", "g")
        assert record.state is ChunkState.SENT
        assert record.attempts == 1
        # An ambiguous failure: the chunk is sent again, as the same journal row.
        record = await journal.chunk_sent(0, 2, "d1", "g")
        assert record.attempts == 2
        with pytest.raises(JournalError, match="another campaign"):
            await journal.chunk_sent(0, 2, "other-digest", "g")
        await journal.chunk_created(record.chunk_id, [(0, 10, "a"), (1, 11, "b"), (2, 12, "c")])
        with pytest.raises(JournalError, match="already created"):
            await journal.chunk_sent(0, 2, "d1", "g")
        created = await journal.chunk(0, 2)
        assert created is not None
        assert created.state is ChunkState.CREATED
        assert created.job_ids == (10, 11, 12)
        assert await journal.job_ids() == []  # not confirmed yet
        assert await journal.recorded_ids() == {10, 11, 12}
        await journal.chunks_confirmed([record.chunk_id])
        assert await journal.job_ids() == [10, 11, 12]
        second = await journal.chunk_sent(3, 4, "d2", "g")
        await journal.chunk_failed(second.chunk_id, "400 bad JDL")
        failed = await journal.chunks([ChunkState.FAILED])
        assert [(c.first, c.error) for c in failed] == [(3, "400 bad JDL")]
        assert await journal.overlapping_indices(0, 4) == 3
        # A job ID recorded twice is a bug the journal refuses.
        third = await journal.chunk_sent(5, 5, "d3", "g")
        with pytest.raises(JournalError, match="UNIQUE"):
            await journal.chunk_created(third.chunk_id, [(5, 10, "dup")])
        assert (await journal.chunk(5, 5)).state is ChunkState.SENT  # type: ignore[union-attr]
        await journal.record_swept([99, 98], "leftover")
        assert await journal.swept_ids() == [98, 99]
        summary = await journal.summary()
        assert summary.jobs_confirmed == 3
        assert summary.jobs_recorded == 3
        assert summary.swept == 2
        assert summary.chunks == {
            ChunkState.CONFIRMED: 1,
            ChunkState.FAILED: 1,
            ChunkState.SENT: 1,
        }
        assert "3 jobs confirmed" in str(summary)


async def test_states_and_downloads_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    t = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    states = [
        JobState(1, JobStatus.RUNNING, "Application", "Unknown", "LCG.CERN.ch", t),
        JobState(2, JobStatus.DONE, "Execution Complete"),
    ]
    async with await Journal.open(path) as journal:
        await journal.record_states(states)
        await journal.record_states([JobState(1, JobStatus.DONE, "Execution Complete", time=t)])
        await journal.record_states([])
        await journal.record_download(2, "out/2", 10, "ab" * 32)
    async with await Journal.open(path) as journal:
        last = await journal.last_states()
        assert last[1] == JobState(1, JobStatus.DONE, "Execution Complete", time=t)
        assert last[2] == states[1]
        assert await journal.downloads() == {2: DownloadRecord(2, "out/2", 10, "ab" * 32)}
        assert (await journal.summary()).statuses == {JobStatus.DONE: 2}


async def test_not_a_journal(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="cannot open"):
        await Journal.open(bad)
    future = tmp_path / "future.db"
    db = sqlite3.connect(future)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(JournalError, match="schema version 99"):
        await Journal.open(future)


async def test_closed_journal_refuses(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "c.db")
    await journal.aclose()
    await journal.aclose()
    assert "closed" in repr(journal)
    with pytest.raises(JournalError, match="closed"):
        await journal.job_ids()


async def test_submit_lock_excludes_a_second_submitter(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with await Journal.open(path) as first, await Journal.open(path) as second:
        first.acquire_submit_lock()
        with pytest.raises(JournalError, match="another submission"):
            second.acquire_submit_lock()
        first.release_submit_lock()
        second.acquire_submit_lock()
    # A process that dies holding the lock leaves no stale lock behind.
    code = (
        "import anyio, os; from aiodirac._journal import Journal\n"
        "async def main():\n"
        f"    j = await Journal.open({str(path)!r}); j.acquire_submit_lock(); os._exit(0)\n"
        "anyio.run(main)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    async with await Journal.open(path) as third:
        third.acquire_submit_lock()


async def test_concurrent_writers_in_one_process(tmp_path: Path) -> None:
    async with await Journal.open(tmp_path / "c.db") as journal:
        await journal.start_campaign("c", "g", owns_group=True)

        async def one(i: int) -> None:
            record = await journal.chunk_sent(i * 10, i * 10 + 9, f"d{i}", "g")
            await journal.chunk_created(
                record.chunk_id, [(i * 10 + k, 1000 + i * 10 + k, "x") for k in range(10)]
            )
            await journal.chunks_confirmed([record.chunk_id])

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
        ids = await journal.job_ids()
        assert ids == list(range(1000, 1500))


async def test_cancelled_write_completes(tmp_path: Path) -> None:
    async with await Journal.open(tmp_path / "c.db") as journal:
        await journal.start_campaign("c", "g", owns_group=True)
        with anyio.CancelScope() as scope:
            scope.cancel()
            # Shielded, as the submitter does for its small writes.
            with anyio.CancelScope(shield=True):
                await journal.chunk_sent(0, 0, "d", "g")
        assert (await journal.chunk(0, 0)) is not None
