"""What a new user met on a fresh clone (issue 17): each behaviour through the real local backend.

Unknown job IDs read the same in every command; a command that cannot start says why in the
ApplicationStatus; ``submit ls -l`` says where ``--`` goes; killing a job that already ended
says so; errors speak of options and environment variables, never of Python names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

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

    def test_campaign_run_gets_the_same_fix(self, aiodirac: Invoke) -> None:
        run = aiodirac("campaign", "run", "-j", "c.db", "ls", "-l")
        assert run.code == 2
        assert "put -- before the command: aiodirac campaign run -j c.db -- ls -l" in run.stderr

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

    def test_killing_a_deleted_job_says_so(self, aiodirac: Invoke, submitted: Submit) -> None:
        ids = submitted("--", "/bin/sleep", "30")
        assert aiodirac("delete", str(ids[0])).code == 0
        again = aiodirac("kill", str(ids[0]))
        assert again.code == 0, again.stderr
        assert again.stdout.strip() == f"job {ids[0]} (Deleted): already final, nothing to kill"
        doc = aiodirac("--json", "kill", str(ids[0])).json()
        assert (doc["done"], doc["already"], doc["refused"]) == ([], ids, [])


# Python names a command-line user never wrote: classes, keyword arguments, config objects.
# (DiracX and DIRACX_URL are names a user knows; DiracXBackend and token= are not.)
_PYTHON_NAMES = re.compile(r"\b[A-Z]\w*[a-z][A-Z]\w*[a-z]\w*|\b[a-z_]+=|\(\)|\.verify\b")


class TestErrorsFitTheCommandLine:
    """Library errors carry one hint per interface; the CLI shows its own (issue 17, point 4)."""

    @pytest.mark.parametrize(
        "args",
        [("status", "1"), ("watch", "1"), ("kill", "1"), ("output", "1", "--dest", "o")],
    )
    def test_diracx_url_without_credentials(
        self,
        aiodirac: Invoke,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        args: tuple[str, ...],
    ) -> None:
        monkeypatch.setenv("DIRACX_URL", "https://127.0.0.1:9")
        monkeypatch.setenv("DIRACX_CREDENTIALS_PATH", str(tmp_path / "absent.json"))
        run = aiodirac(*args)
        assert run.code in (1, 3), run.stdout
        assert "no DiracX credentials file at" in run.stderr
        assert "run `dirac login`" in run.stderr
        assert "--backend local" in run.stderr
        assert not _PYTHON_NAMES.search(run.stderr), run.stderr

    def test_diracx_without_a_url(self, aiodirac: Invoke) -> None:
        run = aiodirac("--backend", "diracx", "status", "1")
        assert run.code == 2
        assert "give --url URL, set DIRACX_URL" in run.stderr
        assert not _PYTHON_NAMES.search(run.stderr), run.stderr

    def test_unzippable_params_name_the_options(self, aiodirac: Invoke) -> None:
        run = aiodirac("submit", "-p", "n=1..3", "-p", "m=1..2", "--", "/bin/echo", "%(n)s")
        assert run.code == 2
        assert "--param n has 3, --param m has 2 values" in run.stderr
        assert not _PYTHON_NAMES.search(run.stderr), run.stderr
        assert "parameterList" not in run.stderr

    def test_an_unknown_placeholder_suggests_the_option(self, aiodirac: Invoke) -> None:
        run = aiodirac("submit", "--", "/bin/echo", "a%(zz)s")
        assert run.code == 2
        assert "add it with --param zz=VALUES or remove the placeholder" in run.stderr
        assert "setParameterSequence" not in run.stderr

    def test_a_jdl_files_bad_value_is_named_as_in_the_file(
        self, aiodirac: Invoke, tmp_path: Path
    ) -> None:
        (tmp_path / "bad.jdl").write_text('Executable = "/bin/echo";\nCPUTime = -5;\n')
        run = aiodirac("submit", "bad.jdl")
        assert run.code == 2
        assert "bad.jdl: CPUTime = -5 is not accepted: expected a number of seconds >= 0" in (
            run.stderr
        )
        assert "timeInSecs" not in run.stderr

    def test_the_library_keeps_its_own_hint(self, tmp_path: Path) -> None:
        from aiodirac import AuthenticationError
        from aiodirac.backends.diracx._auth import _read_file

        with pytest.raises(AuthenticationError) as info:
            _read_file(tmp_path / "absent.json")
        assert str(info.value).endswith("or pass a valid token (AsyncDirac(token=...))")
        cli = info.value.explain("cli")
        assert cli.startswith(f"no DiracX credentials file at {tmp_path / 'absent.json'}: ")
        assert not _PYTHON_NAMES.search(cli), cli

    @pytest.mark.parametrize("hints", ["LOGIN_HINTS", "CA_HINTS"])
    def test_every_cli_hint_is_free_of_python_names(self, hints: str) -> None:
        from aiodirac.backends.diracx import _errors

        table = getattr(_errors, hints)
        assert set(table) == {"python", "cli"}
        assert not _PYTHON_NAMES.search(table["cli"]), table["cli"]
        assert _PYTHON_NAMES.search(table["python"])  # the library's names it (what a script uses)
