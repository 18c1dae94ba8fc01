"""The command line against the real DiracX server (a test pilot plays the grid)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from cli_support import Invoke

pytestmark = pytest.mark.diracx


@pytest.fixture
def dx(
    aiodirac: Invoke, diracx_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Invoke:
    """``aiodirac`` pointed at the session's DiracX with localuser's credentials, as users do."""
    credentials = diracx_server.write_credentials(tmp_path / "credentials.json")
    for name, value in diracx_server.client_environment(credentials).items():
        monkeypatch.setenv(name, value)
    return aiodirac


def _run_on_grid(server: Any, tmp_path: Path, ids: Sequence[int]) -> None:
    async def run() -> None:
        async with server.pilot(tmp_path / "grid", tmp_path / "credentials.json") as pilot:
            runs = await pilot.run_jobs(ids)
        assert {r.job_id for r in runs} == set(ids)

    anyio.run(run)


def test_submit_run_status_watch_output(dx: Invoke, diracx_server: Any, tmp_path: Path) -> None:
    run = dx("--json", "submit", "--name", "cli-%n", "-p", "n=1..3", "--", "/bin/echo", "dx-%(n)s")
    assert run.code == 0, run.stderr
    ids = run.json()["job_ids"]
    assert len(ids) == 3

    waiting = dx("--json", "status", *map(str, ids)).json()
    assert {j["status"] for j in waiting["jobs"]} <= {"Received", "Checking", "Waiting"}

    _run_on_grid(diracx_server, tmp_path, ids)

    watched = dx("--json", "watch", *map(str, ids))
    assert watched.code == 0, watched.stderr
    assert watched.lines()[-1]["counts"] == {"Done": 3}

    out = dx("--json", "output", *map(str, ids), "--dest", "out")
    assert out.code == 0, out.stderr
    assert out.json()["downloaded"] == 3
    texts = {(tmp_path / "out" / str(i) / "std.out").read_text().strip() for i in ids}
    assert texts == {"dx-1", "dx-2", "dx-3"}


def test_kill_delete_and_refusals(dx: Invoke) -> None:
    ids = dx("--json", "submit", "--", "/bin/sleep", "60").json()["job_ids"]
    killed = dx("--json", "kill", str(ids[0]))
    assert killed.code == 0, killed.stderr
    assert killed.json()["done"] == ids
    assert dx("--json", "status", str(ids[0])).json()["jobs"][0]["status"] == "Killed"
    deleted = dx("delete", str(ids[0]))
    assert deleted.code == 0, deleted.stderr
    assert dx("--json", "status", str(ids[0])).json()["jobs"][0]["status"] == "Deleted"
    # issue 17: a Deleted job is already final (it was killed first): said so, exit 0
    again = dx("kill", str(ids[0]))
    assert again.code == 0, again.stderr
    assert again.stdout.strip() == f"job {ids[0]} (Deleted): already final, nothing to kill"
    doc = dx("--json", "kill", str(ids[0])).json()
    assert (doc["done"], doc["already"], doc["refused"]) == ([], ids, [])


def test_bad_token_is_a_service_error(
    dx: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"access_token": "not-a-token", "refresh_token": null, "expires_on": 4102444800}'
    )
    bad.chmod(0o600)
    monkeypatch.setenv("DIRACX_CREDENTIALS_PATH", str(bad))
    run = dx("status", "1")
    assert run.code == 3
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("aiodirac: error: ")
    assert "not-a-token" not in run.stderr


def test_campaign_resumes_a_journal_on_diracx(
    dx: Invoke, diracx_server: Any, tmp_path: Path
) -> None:
    spec = ("-p", "n=1..3", "--", "/bin/echo", "camp-%(n)s")
    first = dx("--json", "submit", "-j", "c.db", *spec)
    assert first.code == 0, first.stderr
    ids = first.json()["job_ids"]
    _run_on_grid(diracx_server, tmp_path, ids)

    run = dx("--json", "campaign", "run", "-j", "c.db", "-d", "out", *spec)
    assert run.code == 0, run.stderr
    doc = run.json()
    assert doc["job_ids"] == ids  # nothing submitted twice
    assert doc["counts"] == {"Done": 3}
    assert doc["downloaded"] == 3
    texts = {(tmp_path / "out" / str(i) / "std.out").read_text().strip() for i in ids}
    assert texts == {"camp-1", "camp-2", "camp-3"}

    report = dx("--json", "campaign", "report", "-j", "c.db").json()
    assert (report["jobs_confirmed"], report["downloads"]) == (3, 3)
    assert report["statuses"] == {"Done": 3}


def test_jobs_and_history_on_diracx_show_server_strings_inert(
    dx: Invoke, diracx_server: Any, tmp_path: Path
) -> None:
    ids = dx("--json", "submit", "--", "/bin/echo", "hi").json()["job_ids"]
    (job_id,) = ids
    hostile = "\x1b]0;owned\x07\x1b[2J\u202egnp.exe"

    async def move() -> None:
        async with diracx_server.pilot(tmp_path / "grid", tmp_path / "credentials.json") as pilot:
            await pilot.set_status(
                {job_id: [("Checking", "JobSanity"), ("Waiting", "Pilot", hostile)]}
            )

    anyio.run(move)
    shown = dx("history", str(job_id))
    assert shown.code == 0, shown.stderr
    assert "\x1b" not in shown.stdout
    assert "\u202e" not in shown.stdout
    assert "\\x1b]0;owned\\x07\\x1b[2J\\u202egnp.exe" in shown.stdout
    assert shown.stdout.splitlines()[-1].split()[2:4] == ["Waiting", "Pilot"]
    data = dx("--json", "history", str(job_id)).json()
    assert data["history"][-1]["application_status"] == hostile  # JSON keeps the value

    listed = dx("jobs", "--status", "Waiting", "--all")
    assert listed.code == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith(f"{job_id} "))
    assert "\\x1b]0;owned" in line
    assert "\x1b" not in listed.stdout
    assert dx("history", "999999999").code == 1


def test_unknown_ids_and_final_jobs_read_as_on_the_local_backend(dx: Invoke) -> None:
    """Issue 17: unknown IDs and already-final jobs are reported alike on both backends."""
    unknown = 987_654_321
    for args in (("status",), ("watch",), ("output", "--dest", "o"), ("kill",), ("delete",)):
        run = dx(*args, str(unknown))
        assert run.code == 1, (args, run.stdout, run.stderr)
        assert run.stderr.splitlines()[-1] == f"aiodirac: warning: job {unknown}: not found"
    ids = dx("--json", "submit", "--", "/bin/sleep", "60").json()["job_ids"]
    assert dx("kill", str(ids[0])).code == 0
    again = dx("--json", "kill", str(ids[0]))
    assert again.code == 0, again.stderr
    assert (again.json()["done"], again.json()["already"]) == ([], ids)


def test_a_command_that_cannot_start_says_why_on_diracx(
    dx: Invoke, diracx_server: Any, tmp_path: Path
) -> None:
    """Issue 17: the reason reaches DiracX's ApplicationStatus (set by the test pilot's run)."""
    ids = dx("--json", "submit", "--", "/no/such/program", "arg").json()["job_ids"]
    _run_on_grid(diracx_server, tmp_path, ids)
    job = dx("--json", "status", str(ids[0])).json()["jobs"][0]
    assert job["status"] == "Failed"
    assert job["application_status"].startswith(
        "'program' Exited With Status 1000 (Cannot run '/no/such/program arg': [Errno 2]"
    )
    watched = dx("watch", str(ids[0]))
    assert "application: 'program' Exited With Status 1000 (Cannot run" in watched.stdout
