"""What a new user met on a fresh clone (issue 17): each behaviour through the real local backend.

Unknown job IDs read the same in every command; a command that cannot start says why in the
ApplicationStatus; ``submit ls -l`` says where ``--`` goes; killing a job that already ended
says so.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import Invoke

Submit = Callable[..., list[int]]
Wait = Callable[[list[int]], None]


class TestUnknownJobs:
    """``status``, ``watch``, ``output``, ``kill``, ``delete``, ``reschedule``: one behaviour."""

    @pytest.mark.parametrize(
        "args",
        [
            ("status",),
            ("watch",),
            ("output", "--dest", "o"),
            ("kill",),
            ("delete",),
            ("reschedule",),
        ],
    )
    def test_an_unknown_id_is_named_and_exit_1(
        self, aiodirac: Invoke, args: tuple[str, ...]
    ) -> None:
        run = aiodirac(*args, "99999")
        assert run.code == 1, run.stdout
        assert run.stderr.splitlines()[-1] == "aiodirac: warning: job 99999: not found"

    @pytest.mark.parametrize(
        "args",
        [("status",), ("watch",), ("output", "--dest", "o"), ("kill",), ("delete",)],
    )
    def test_unknown_ids_among_known_ones_are_reported_as_one_range(
        self, aiodirac: Invoke, submitted: Submit, finished: Wait, args: tuple[str, ...]
    ) -> None:
        ids = submitted("--", "/bin/echo", "x")
        finished(ids)
        run = aiodirac(*args, f"{ids[0]}-{ids[0] + 5000}")
        assert run.code == 1, run.stderr
        assert f"5000 jobs not found: {ids[0] + 1}-{ids[0] + 5000}" in run.stderr

    @pytest.mark.parametrize(
        ("args", "key"),
        [
            (("status",), "missing"),
            (("output", "--dest", "o"), "missing"),
            (("kill",), "missing"),
            (("reschedule",), "missing"),
        ],
    )
    def test_json_lists_them_under_missing(
        self, aiodirac: Invoke, args: tuple[str, ...], key: str
    ) -> None:
        run = aiodirac("--json", *args, "99998-99999")
        assert run.code == 1
        assert run.json()[key] == [99998, 99999]

    def test_watch_json_summary_lists_them(self, aiodirac: Invoke) -> None:
        run = aiodirac("--json", "watch", "99999")
        assert run.code == 1
        summary = run.lines()[-1]
        assert summary["event"] == "summary"
        assert summary["missing"] == [99999]

    def test_watch_summary_line_counts_them(self, aiodirac: Invoke) -> None:
        run = aiodirac("watch", "99999")
        assert run.stdout.strip() == "1 job: 1 not found"


def test_a_command_that_cannot_start_says_why_in_status_and_watch(
    aiodirac: Invoke, submitted: Submit
) -> None:
    ids = submitted("--", "/no/such/program", "arg")
    watch = aiodirac("watch", str(ids[0]))
    assert watch.code == 1
    why = "Cannot run '/no/such/program arg': [Errno 2] No such file or directory"
    assert why in watch.stdout
    status = aiodirac("--json", "status", str(ids[0])).json()["jobs"][0]
    assert status["status"] == "Failed"
    assert status["application_status"].startswith(f"'program' Exited With Status 1000 ({why}")
    assert why in aiodirac("status", str(ids[0])).stdout


class TestDoubleDash:
    def test_an_option_of_the_command_gets_the_fix(self, aiodirac: Invoke) -> None:
        run = aiodirac("submit", "ls", "-l")
        assert run.code == 2
        assert "No such option: -l" in run.stderr
        assert "put -- before the command: aiodirac submit -- ls -l" in run.stderr

    def test_the_fix_keeps_aiodiracs_own_options_first(self, aiodirac: Invoke) -> None:
        run = aiodirac("submit", "--name", "x y", "-p", "n=1..2", "ls", "-l", "a b")
        assert run.code == 2
        assert "aiodirac submit --name 'x y' -p n=1..2 -- ls -l 'a b'" in run.stderr

    def test_no_fix_for_a_misspelt_option_of_aiodirac(self, aiodirac: Invoke) -> None:
        run = aiodirac("submit", "--nmae", "x", "ls")
        assert run.code == 2
        assert "No such option: --nmae" in run.stderr
        assert "put --" not in run.stderr


class TestAlreadyFinal:
    def test_killing_a_killed_job_says_so(self, aiodirac: Invoke, submitted: Submit) -> None:
        ids = submitted("--", "/bin/sleep", "30")
        first = aiodirac("kill", str(ids[0]))
        assert first.stdout.startswith("Killed 1 job(s)")
        again = aiodirac("kill", str(ids[0]))
        assert again.code == 0, again.stderr
        assert "Killed 1 job(s)" not in again.stdout
        assert again.stdout.strip() == f"job {ids[0]} (Killed): already final, nothing to kill"
        doc = aiodirac("--json", "kill", str(ids[0])).json()
        assert (doc["done"], doc["already"], doc["refused"]) == ([], ids, [])

    def test_killing_a_done_job_says_it_ended(
        self, aiodirac: Invoke, submitted: Submit, finished: Wait
    ) -> None:
        ids = submitted("--", "/bin/echo", "x")
        finished(ids)
        run = aiodirac("kill", str(ids[0]))
        assert run.code == 1
        assert f"job {ids[0]} (Done): already ended, cannot be killed" in run.stderr

    def test_deleting_a_deleted_job_says_so(self, aiodirac: Invoke, submitted: Submit) -> None:
        ids = submitted("--", "/bin/sleep", "30")
        assert aiodirac("delete", str(ids[0])).code == 0
        again = aiodirac("delete", str(ids[0]))
        assert again.code == 0, again.stderr
        assert again.stdout.strip() == f"job {ids[0]} (Deleted): already final, nothing to delete"
