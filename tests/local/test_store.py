"""The SQLite job store under contention and damage."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from _localjobs import concrete

from aiodirac import JobStatus, LocalBackendError, TransientError
from aiodirac.backends.local import StoreLockedError
from aiodirac.backends.local._store import Store, decode_job, encode_job


def test_job_description_round_trips(tmp_path: Path) -> None:
    job = concrete(
        ("/bin/echo", "a 'b' \"c\""), ("x.py", ""), inputs=("in.txt",), CPUTime=5, Priority=3
    )
    assert decode_job(encode_job(job)) == job


def test_locked_store_refuses_writes_with_a_retryable_error_but_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store = Store(path, busy_timeout_ms=200)
    ids = store.add_chunk([concrete(("/bin/true", ""))], None, time.time())
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreLockedError, match="locked") as caught:
            store.add_chunk([concrete(("/bin/true", ""))], None, time.time())
        assert isinstance(caught.value, TransientError)
        assert isinstance(caught.value, LocalBackendError)
        # WAL: readers never wait for the writer
        assert [row.status for row in store.status(ids)] == [JobStatus.SUBMITTING]
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert len(store.add_chunk([concrete(("/bin/true", ""))], None, time.time())) == 1
    assert store.known([*ids, 99]) == set(ids)
    store.close()


def test_nothing_stored_is_lost_when_a_write_fails(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store = Store(path, busy_timeout_ms=100)
    ids = store.add_chunk([concrete(("/bin/true", ""), index=i) for i in range(3)], None, 1.0)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreLockedError):
        store.act(ids, JobStatus.KILLED, 2.0)
    other.execute("ROLLBACK")
    other.close()
    store.close()
    reopened = Store(path)
    assert {row.status for row in reopened.status(ids)} == {JobStatus.SUBMITTING}
    reopened.close()


def test_store_with_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '999' WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(LocalBackendError, match="schema version 999"):
        Store(path)
