"""``aiodirac jobs`` and ``aiodirac history`` against the real local backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from cli_support import Invoke


def _done(aiodirac: Invoke, submitted: Callable[..., list[int]], *args: str) -> list[int]:
    ids = submitted(*args)
    watched = aiodirac("--json", "watch", *map(str, ids))
    assert watched.code in (0, 1), watched.stderr
    return ids


def test_jobs_selects_and_lists(aiodirac: Invoke, submitted: Callable[..., list[int]]) -> None:
    done = _done(aiodirac, submitted, "--name", "ok-%n", "-p", "n=1..2", "--", "/bin/echo", "%(n)s")
    (failed,) = _done(aiodirac, submitted, "--name", "bad", "--", "/bin/false")

    listed = aiodirac("--json", "jobs", "--all")
    assert listed.code == 0, listed.stderr
    jobs = {j["job_id"]: j for j in listed.json()["jobs"]}
    assert set(jobs) == {*done, failed}
    assert jobs[failed]["status"] == "Failed"
    assert jobs[done[0]]["job_name"] == "ok-0"  # %n is the index, from 0
    assert jobs[done[0]]["end_exec_time"] is not None

    only_done = aiodirac("--json", "jobs", "--status", "done", "--since", "2000-01-01")
    assert [j["job_id"] for j in only_done.json()["jobs"]] == done
    both = aiodirac("--json", "jobs", "--status", "Done", "--status", "Failed", "--ids", "--all")
    assert both.json() == {"job_ids": sorted([*done, failed])}
    assert aiodirac("jobs", "--all", "--ids", "--status", "Failed").stdout == f"{failed}\n"

    table = aiodirac("jobs", "--status", "Failed", "--all")
    assert table.code == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[:3] == ["ID", "Status", "MinorStatus"]
    assert row.split()[:2] == [str(failed), "Failed"]
    assert table.stderr == "1 job\n"

    # without --since or --all: the jobs updated today (UTC)
    day = datetime.now(UTC).date()
    today = aiodirac("jobs", "--ids")
    if datetime.now(UTC).date() == day:
        assert today.stdout.split() == [str(i) for i in sorted([*done, failed])]

    future = aiodirac("jobs", "--since", "2999-01-01")
    assert future.code == 0
    assert future.stdout == ""
    assert "no jobs updated since 2999-01-01 match" in future.stderr


def test_jobs_refuses_bad_conditions(aiodirac: Invoke) -> None:
    status = aiodirac("jobs", "--status", "Finished")
    assert status.code == 2
    assert status.stderr.startswith("aiodirac: error: unknown job status 'Finished': use one of")
    date = aiodirac("jobs", "--since", "yesterday")
    assert date.code == 2
    assert "YYYY-MM-DD" in date.stderr
    both = aiodirac("jobs", "--since", "2026-01-01", "--all")
    assert both.code == 2
    assert both.stderr == "aiodirac: error: give --since or --all, not both\n"


def test_history(aiodirac: Invoke, submitted: Callable[..., list[int]]) -> None:
    (job_id,) = _done(aiodirac, submitted, "--", "/bin/echo", "hi")
    shown = aiodirac("history", str(job_id))
    assert shown.code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == [
        "Time",
        "(UTC)",
        "Status",
        "MinorStatus",
        "ApplicationStatus",
        "Source",
    ]
    assert "Submitting  Bulk transaction confirmation" in lines[1]
    assert lines[-1].split()[2:4] == ["Done", "Execution"]

    data = aiodirac("--json", "history", str(job_id)).json()
    assert data["job_id"] == job_id
    statuses = [r["status"] for r in data["history"]]
    assert statuses[:2] == ["Submitting", "Received"]
    assert statuses[-1] == "Done"
    assert {r["source"] for r in data["history"]} >= {"JobManager", "JobWrapper"}

    unknown = aiodirac("history", "99999")
    assert unknown.code == 1
    assert unknown.stderr == "aiodirac: warning: job 99999: not found\n"
    bad = aiodirac("history", "12x")
    assert bad.code == 2
    assert "job ID must be an integer" in bad.stderr
