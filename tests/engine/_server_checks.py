"""Exactly-once checks made on the DiracX server itself, shared by the submission tests.

Every job of a campaign (its JobGroup) is listed straight from DiracX (not through a proxy, not
through aiodirac), and each parameter value must appear in exactly one confirmed job, every other
job of the group being a swept leftover (Killed), none left in Submitting.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiodirac._job._job import Job
from aiodirac._job._status import JobStatus


def make_job(name: str, n: int) -> Job:
    job = Job()
    job.setExecutable("/bin/echo", arguments="value %(n)s")
    job.setName(f"{name}-%n")
    job.setParameterSequence("n", [str(i) for i in range(n)])
    return job


def group_jobs(server: Any, group: str) -> list[dict[str, Any]]:
    """Every job of a JobGroup, straight from DiracX (no proxy, no aiodirac)."""
    token = server.token()
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        response = server.request(
            "POST",
            "/api/jobs/search",
            params={"page": page, "per_page": 10_000},
            headers={"Authorization": f"Bearer {token}"},
            json={
                "parameters": ["JobID", "JobName", "Status", "MinorStatus", "JobGroup"],
                "search": [{"parameter": "JobGroup", "operator": "eq", "value": group}],
                "sort": [{"parameter": "JobID", "direction": "asc"}],
            },
        )
        if response.status_code == 416:
            break
        rows.extend(response.json())
        if response.status_code != 206:
            break
        page += 1
    return rows


def assert_exactly_once_on_server(
    rows: list[dict[str, Any]], name: str, n: int, journal_ids: dict[int, tuple[int, bool]]
) -> Counter[str]:
    statuses = Counter(str(row["Status"]) for row in rows)
    live = [row for row in rows if row["Status"] != JobStatus.KILLED]
    names = Counter(str(row["JobName"]) for row in live)
    width = len(str(n - 1))
    assert sorted(names) == sorted(f"{name}-{i:0{width}d}" for i in range(n))
    twice = [
        (row["JobID"], row["JobName"], row["Status"])
        for row in live
        if names[str(row["JobName"])] > 1
    ]
    assert not twice, f"parameter values live twice on the server: {twice[:6]}"
    assert all(row["Status"] == JobStatus.RECEIVED for row in live)
    assert statuses[JobStatus.SUBMITTING] == 0
    swept = [row for row in rows if row["Status"] == JobStatus.KILLED]
    assert all(str(row["MinorStatus"]).startswith("Swept by aiodirac") for row in swept)
    # The journal maps each job to exactly the one ID that lives on the server.
    assert sorted(journal_ids) == list(range(n))
    assert all(ok for _, ok in journal_ids.values())
    assert {job_id for job_id, _ in journal_ids.values()} == {int(row["JobID"]) for row in live}
    return statuses
