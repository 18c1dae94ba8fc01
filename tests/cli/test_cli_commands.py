"""Every ``aiodirac`` command through the real local backend: results, JSON shapes, exit codes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import Invoke, flaky_script

Submit = Callable[..., list[int]]
Wait = Callable[[list[int]], None]


class TestSubmit:
    def test_one_job(self, aiodirac: Invoke) -> None:
        run = aiodirac("submit", "--name", "hello", "--", "/bin/echo", "hello")
        assert run.code == 0, run.stderr
        assert run.stdout.startswith("Submitted job ")
        assert run.stderr == ""

    def test_parametric_json(self, aiodirac: Invoke) -> None:
        run = aiodirac("--json", "submit", "-p", "n=1..3", "--", "/bin/echo", "%(n)s")
        assert run.code == 0, run.stderr
        doc = run.json()
        assert set(doc) == {"job_ids", "count", "journal", "failures"}
        assert doc["count"] == 3 == len(set(doc["job_ids"]))
        assert doc["journal"] is None
        assert doc["failures"] == []

    def test_quiet_prints_the_ids_only(self, aiodirac: Invoke) -> None:
        run = aiodirac("-q", "submit", "-p", "x=a,b", "--", "/bin/echo", "%(x)s")
        assert run.code == 0, run.stderr
        first, last = run.stdout.strip().replace(",", "-").split("-")
        assert int(last) == int(first) + 1

    def test_jdl_file(self, aiodirac: Invoke, finished: Wait, tmp_path: Path) -> None:
        (tmp_path / "job.jdl").write_text(
            '[\n  Executable = "/bin/echo";\n  Arguments = "from-jdl %s";\n'
            '  Parameters = {"a", "b"};\n  JobName = "jdl_%n";\n]\n'
        )
        run = aiodirac("--json", "submit", "job.jdl")
        assert run.code == 0, run.stderr
        ids = run.json()["job_ids"]
        finished(ids)
        out = aiodirac("--json", "output", *map(str, ids), "--dest", "out")
        assert out.code == 0, out.stderr
        texts = sorted((tmp_path / "out" / str(i) / "std.out").read_text() for i in ids)
        assert [t.strip() for t in texts] == ["from-jdl a", "from-jdl b"]

    @pytest.mark.parametrize("variable", ["job", "j"])
    def test_python_file(self, aiodirac: Invoke, tmp_path: Path, variable: str) -> None:
        (tmp_path / "myjob.py").write_text(
            "from aiodirac import Job\n"
            f"{variable} = Job()\n"
            f"{variable}.setExecutable('/bin/echo', arguments='py')\n"
            f"{variable}.setName('from-python')\n"
        )
        run = aiodirac("--json", "submit", "myjob.py")
        assert run.code == 0, run.stderr
        assert run.json()["count"] == 1

    def test_python_file_with_a_list_of_jobs(self, aiodirac: Invoke, tmp_path: Path) -> None:
        (tmp_path / "many.py").write_text(
            "from aiodirac import Job\n"
            "jobs = []\n"
            "for word in ('a', 'b'):\n"
            "    job = Job(name=f'word-{word}')\n"
            "    job.setExecutable('/bin/echo', arguments=word)\n"
            "    jobs.append(job)\n"
            "del job\n"
        )
        run = aiodirac("--json", "submit", "many.py")
        assert run.code == 0, run.stderr
        assert run.json()["count"] == 2

    def test_python_file_that_fails(self, aiodirac: Invoke, tmp_path: Path) -> None:
        (tmp_path / "broken.py").write_text("raise RuntimeError('oops')\n")
        run = aiodirac("submit", "broken.py")
        assert run.code == 2
        assert run.stderr == "aiodirac: error: broken.py failed: RuntimeError: oops\n"

    def test_input_and_output_sandboxes(
        self, aiodirac: Invoke, finished: Wait, tmp_path: Path
    ) -> None:
        (tmp_path / "data.txt").write_text("payload\n")
        run = aiodirac(
            "--json",
            "submit",
            "-i",
            "data.txt",
            "-o",
            "copy.txt",
            "--cpu-time",
            "60",
            "--",
            "/bin/cp",
            "data.txt",
            "copy.txt",
        )
        assert run.code == 0, run.stderr
        ids = run.json()["job_ids"]
        finished(ids)
        assert aiodirac("output", str(ids[0]), "--dest", "out").code == 0
        assert (tmp_path / "out" / str(ids[0]) / "copy.txt").read_text() == "payload\n"

    def test_journal_makes_a_second_submit_a_no_op(self, aiodirac: Invoke) -> None:
        args = ("--json", "submit", "-j", "c.db", "-p", "n=1..4", "--", "/bin/echo", "%(n)s")
        first = aiodirac(*args)
        second = aiodirac(*args)
        assert first.code == second.code == 0, first.stderr + second.stderr
        assert first.json()["job_ids"] == second.json()["job_ids"]
        assert first.json()["journal"] == "c.db"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ((), "nothing to submit"),
            (("-p", "n=3..1", "--", "/bin/echo", "%(n)s"), "is empty"),
            (("-p", "bad", "--", "/bin/echo"), "--param"),
            (("missing.jdl",), "no such JDL file"),
            (("missing.py",), "no such Python file"),
            (("-p", "n=1,2", "--", "/bin/echo", "%(m)s"), "m"),
        ],
    )
    def test_usage_errors(self, aiodirac: Invoke, args: tuple[str, ...], message: str) -> None:
        run = aiodirac("submit", *args)
        assert run.code == 2
        assert run.stdout == ""
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1, run.stderr
        assert lines[0].startswith("aiodirac: error: ")
        assert message in lines[0]

    def test_typer_usage_error_is_2(self, aiodirac: Invoke) -> None:
        assert aiodirac("submit", "--cpu-time", "0", "--", "/bin/true").code == 2
        assert aiodirac("no-such-command").code == 2


class TestStatus:
    def test_table_and_json(self, aiodirac: Invoke, submitted: Submit, finished: Wait) -> None:
        ids = submitted("-p", "n=1..2", "--", "/bin/echo", "%(n)s")
        finished(ids)
        table = aiodirac("status", *map(str, ids))
        assert table.code == 0, table.stderr
        header, *rows = table.stdout.strip().splitlines()
        assert header.split()[:4] == ["ID", "Status", "MinorStatus", "Site"]
        assert all(" Done " in row for row in rows[:2])
        assert rows[-1] == "2 jobs: 2 Done"

        doc = aiodirac("--json", "status", f"{ids[0]}-{ids[-1]}").json()
        assert set(doc) == {"jobs", "counts", "missing"}
        assert doc["counts"] == {"Done": 2}
        assert doc["missing"] == []
        job = doc["jobs"][0]
        assert set(job) == {
            "job_id",
            "status",
            "minor_status",
            "application_status",
            "site",
            "time",
        }
        assert job["status"] == "Done"

    def test_summary_and_ids_from_stdin(
        self, aiodirac: Invoke, submitted: Submit, finished: Wait
    ) -> None:
        ids = submitted("-p", "n=1..3", "--", "/bin/echo", "%(n)s")
        finished(ids)
        run = aiodirac("status", "--summary", "-", input="\n".join(map(str, ids)))
        assert run.code == 0, run.stderr
        assert run.stdout.strip() == "3 jobs: 3 Done"

    def test_unknown_job_is_exit_1(self, aiodirac: Invoke) -> None:
        run = aiodirac("--json", "status", "999999")
        assert run.code == 1
        assert run.json() == {"jobs": [], "counts": {}, "missing": [999999]}
        plain = aiodirac("status", "999999")
        assert plain.code == 1
        assert "job 999999: not found" in plain.stderr

    def test_failed_job_is_exit_1(
        self, aiodirac: Invoke, submitted: Submit, finished: Wait
    ) -> None:
        ids = submitted("--", "/bin/false")
        finished(ids)
        run = aiodirac("--json", "status", str(ids[0]))
        assert run.code == 1
        assert run.json()["jobs"][0]["status"] == "Failed"

    @pytest.mark.parametrize("args", [(), ("abc",), ("0",), ("1", "--journal", "x.db")])
    def test_usage_errors(self, aiodirac: Invoke, args: tuple[str, ...]) -> None:
        run = aiodirac("status", *args)
        assert run.code == 2
        assert run.stderr.startswith("aiodirac: error: ")

    def test_missing_journal_is_a_usage_error(self, aiodirac: Invoke, tmp_path: Path) -> None:
        run = aiodirac("status", "--journal", "nope.db")
        assert run.code == 2
        assert "no campaign journal at nope.db" in run.stderr
        assert not (tmp_path / "nope.db").exists()

    def test_options_after_the_command(self, aiodirac: Invoke) -> None:
        run = aiodirac("status", "999999", "--json", "--backend", "local")
        assert run.json()["missing"] == [999999]


class TestWatch:
    def test_json_lines_until_final(self, aiodirac: Invoke, submitted: Submit) -> None:
        ids = submitted("-p", "n=1..3", "--", "/bin/echo", "%(n)s")
        run = aiodirac("--json", "watch", *map(str, ids))
        assert run.code == 0, run.stderr
        *events, summary = run.lines()
        assert summary["event"] == "summary"
        assert summary["counts"] == {"Done": 3}
        assert summary["failed"] == []
        assert summary["total"] == summary["final"] == 3
        finals = {e["job_id"]: e["status"] for e in events if e["event"] == "job" and e["final"]}
        assert finals == dict.fromkeys(ids, "Done")
        assert set(events[0]) >= {"event", "job_id", "old_status", "status", "minor_status"}

    def test_plain_lines_and_failure_exit(self, aiodirac: Invoke, submitted: Submit) -> None:
        ids = submitted("--", "/bin/false")
        run = aiodirac("watch", str(ids[0]))
        assert run.code == 1
        assert f"{ids[0]}  " in run.stdout
        assert run.stdout.strip().splitlines()[-1] == "1 job: 1 Failed"


class TestOutput:
    def test_downloads_into_job_folders(
        self, aiodirac: Invoke, submitted: Submit, finished: Wait, tmp_path: Path
    ) -> None:
        ids = submitted("-p", "n=1..3", "--", "/bin/echo", "out-%(n)s")
        finished(ids)
        run = aiodirac("--json", "output", *map(str, ids), "--dest", "out")
        assert run.code == 0, run.stderr
        doc = run.json()
        assert set(doc) == {
            "dest",
            "downloaded",
            "skipped",
            "failed",
            "missing",
            "bytes",
            "results",
        }
        assert (doc["downloaded"], doc["failed"]) == (3, 0)
        result = doc["results"][0]
        assert set(result) == {
            "job_id",
            "ok",
            "path",
            "files",
            "bytes",
            "unpacked_bytes",
            "skipped",
            "error",
        }
        assert "std.out" in result["files"]
        outputs = {(tmp_path / "out" / str(i) / "std.out").read_text().strip() for i in ids}
        assert outputs == {"out-1", "out-2", "out-3"}

    def test_plain_report(self, aiodirac: Invoke, submitted: Submit, finished: Wait) -> None:
        ids = submitted("--", "/bin/echo", "x")
        finished(ids)
        run = aiodirac("output", str(ids[0]), "--dest", "o")
        assert run.code == 0, run.stderr
        assert run.stdout.startswith("Downloaded 1 of 1 jobs into o: ")

    def test_no_job_dir_and_no_unpack(
        self, aiodirac: Invoke, submitted: Submit, finished: Wait, tmp_path: Path
    ) -> None:
        ids = submitted("--", "/bin/echo", "flat")
        finished(ids)
        flat = aiodirac("output", str(ids[0]), "--dest", "flat", "--no-job-dir")
        assert flat.code == 0, flat.stderr
        assert (tmp_path / "flat" / "std.out").read_text().strip() == "flat"
        packed = aiodirac("--json", "output", str(ids[0]), "--dest", "packed", "--no-unpack")
        assert packed.code == 0, packed.stderr
        path = Path(packed.json()["results"][0]["path"])
        assert path.is_file()
        assert path.name.startswith(f"{ids[0]}.tar")

    def test_unfinished_and_unknown_jobs_are_reported(
        self, aiodirac: Invoke, submitted: Submit
    ) -> None:
        ids = submitted("--", "/bin/sleep", "30")
        run = aiodirac("--json", "output", str(ids[0]), "999999", "--dest", "o")
        assert run.code == 1
        doc = run.json()
        assert doc["failed"] == 2
        assert all(r["error"] for r in doc["results"])
        aiodirac("kill", str(ids[0]))


class TestControl:
    def test_kill_then_refused_kill(self, aiodirac: Invoke, submitted: Submit) -> None:
        ids = submitted("--", "/bin/sleep", "30")
        run = aiodirac("--json", "kill", str(ids[0]))
        assert run.code == 0, run.stderr
        assert run.json() == {
            "action": "kill",
            "done": ids,
            "already": [],
            "refused": [],
            "missing": [],
            "error": None,
        }
        status = aiodirac("--json", "status", str(ids[0])).json()
        assert status["jobs"][0]["status"] == "Killed"

        again = aiodirac("delete", str(ids[0]))
        assert again.code == 0, again.stderr
        assert again.stdout.startswith("Deleted 1 job(s): ")

    def test_refusal_is_exit_1_with_a_line(
        self, aiodirac: Invoke, submitted: Submit, finished: Wait
    ) -> None:
        ids = submitted("--", "/bin/echo", "x")
        finished(ids)
        run = aiodirac("--json", "kill", str(ids[0]))
        assert run.code == 1
        doc = run.json()
        assert doc["done"] == []
        assert doc["refused"] == ids
        assert str(ids[0]) in doc["error"]

    def test_reschedule_runs_again(
        self, aiodirac: Invoke, submitted: Submit, finished: Wait
    ) -> None:
        ids = submitted("--", "/bin/false")
        finished(ids)
        run = aiodirac("reschedule", str(ids[0]))
        assert run.code == 0, run.stderr
        assert run.stdout.startswith("Rescheduled 1 job(s)")
        finished(ids)
        assert aiodirac("--json", "status", str(ids[0])).json()["jobs"][0]["status"] == "Failed"


class TestCampaign:
    def test_run_report_resume(self, aiodirac: Invoke, tmp_path: Path) -> None:
        args = ("-j", "c.db", "-d", "out", "-p", "n=1..5", "--", "/bin/echo", "n=%(n)s")
        run = aiodirac("--json", "campaign", "run", *args)
        assert run.code == 0, run.stderr
        doc = run.json()
        assert doc["count"] == 5
        assert doc["counts"] == {"Done": 5}
        assert doc["downloaded"] == 5
        assert doc["failed"] == doc["vanished"] == doc["download_failures"] == []
        texts = {
            (tmp_path / "out" / str(i) / "std.out").read_text().strip() for i in doc["job_ids"]
        }
        assert texts == {f"n={n}" for n in range(1, 6)}
        assert (tmp_path / "c.db.cli.json").is_file()

        report = aiodirac("--json", "campaign", "report", "-j", "c.db")
        assert report.code == 0, report.stderr
        summary = report.json()
        assert summary["jobs_confirmed"] == 5
        assert summary["statuses"] == {"Done": 5}
        assert summary["downloads"] == 5
        assert summary["chunks"] == {"confirmed": 1}

        resumed = aiodirac("--json", "campaign", "resume", "-j", "c.db")
        assert resumed.code == 0, resumed.stderr
        assert resumed.json()["job_ids"] == doc["job_ids"]

        plain = aiodirac("campaign", "report", "-j", "c.db")
        assert plain.code == 0
        assert "Last known statuses: 5 jobs: 5 Done" in plain.stdout

    def test_failures_make_exit_1(self, aiodirac: Invoke) -> None:
        run = aiodirac("campaign", "run", "-j", "f.db", "--attempts", "1", "--", "/bin/false")
        assert run.code == 1
        assert "campaign ended: gave up on 1 failed jobs" in run.stderr
        assert aiodirac("campaign", "report", "-j", "f.db").code == 1

    def test_failed_jobs_are_retried(self, aiodirac: Invoke, tmp_path: Path) -> None:
        # a real process that fails the first time it runs for each n in {2, 4}
        script, _ = flaky_script(tmp_path)
        args = (
            "-j",
            "r.db",
            "-d",
            "out",
            "-p",
            "n=1..5",
            "--retry-delay",
            "0",
            "--max-failed",
            "1",
        )
        run = aiodirac(
            "--json", "campaign", "run", *args, "--", str(script), f"{tmp_path}/marks", "%(n)s"
        )
        assert run.code == 0, run.stderr
        doc = run.json()
        assert doc["counts"] == {"Done": 5}
        assert doc["retries"] == 2
        assert doc["outcome"] == "complete"
        assert doc["downloaded"] == 5
        texts = sorted(
            (tmp_path / "out" / str(i) / "std.out").read_text().strip() for i in doc["job_ids"]
        )
        assert texts == ["n=1", "n=2 again", "n=3", "n=4 again", "n=5"]
        report = aiodirac("--json", "campaign", "report", "-j", "r.db")
        assert report.code == 0, report.stderr
        assert report.json()["retries"] == 2
        assert report.json()["statuses"] == {"Done": 5}
        plain = aiodirac("campaign", "report", "-j", "r.db")
        assert "Outcome: complete" in plain.stdout

    @pytest.mark.parametrize(
        ("option", "words"),
        [
            (("--attempts", "0"), "--attempts must be a whole number of at least 1"),
            (("--max-failed", "1.5"), "--max-failed must be between 0 and 1"),
            (("--retry-delay", "-1"), "--retry-delay must be a number of seconds >= 0"),
            (("--retry-by", "prayer"), "--retry-by must be 'reschedule' or 'resubmit'"),
        ],
    )
    def test_bad_policy_is_refused_before_anything(
        self, aiodirac: Invoke, tmp_path: Path, option: tuple[str, str], words: str
    ) -> None:
        run = aiodirac("campaign", "run", "-j", "p.db", *option, "--", "/bin/echo")
        assert run.code == 2
        assert words in run.stderr
        assert "FailurePolicy" not in run.stderr
        assert not (tmp_path / "p.db").exists()
        assert not (tmp_path / "p.db.cli.json").exists()

    def test_resume_needs_a_cli_journal(self, aiodirac: Invoke) -> None:
        run = aiodirac("campaign", "resume", "-j", "missing.db")
        assert run.code == 2
        assert "no campaign journal" in run.stderr
        assert aiodirac("campaign", "report", "-j", "missing.db").code == 2

    def test_bad_spec_leaves_no_files(self, aiodirac: Invoke, tmp_path: Path) -> None:
        run = aiodirac("campaign", "run", "-j", "bad.db", "-p", "no-equals", "--", "/bin/echo")
        assert run.code == 2
        assert not (tmp_path / "bad.db").exists()
        assert not (tmp_path / "bad.db.cli.json").exists()


class TestLocal:
    def test_agent_start_status_stop(self, aiodirac: Invoke) -> None:
        started = aiodirac("--json", "local", "agent", "start")
        assert started.code == 0, started.stderr
        doc = started.json()
        assert doc["running"] is True
        assert isinstance(doc["pid"], int)
        status = aiodirac("local", "agent")
        assert f"agent pid {doc['pid']}" in status.stdout
        stopped = aiodirac("--json", "local", "agent", "stop").json()
        assert (stopped["running"], stopped["changed"]) == (False, True)
        aiodirac("local", "agent", "start")
        assert aiodirac("local", "agent", "stop").stdout.startswith("Stopped: agent pid ")
        assert aiodirac("local", "agent", "status").stdout.startswith("No agent running")

    def test_ps_lists_jobs_newest_first(
        self, aiodirac: Invoke, submitted: Submit, finished: Wait
    ) -> None:
        assert aiodirac("local", "ps").stdout.startswith("No jobs in ")
        ids = submitted("--name", "listed-%n", "-p", "n=1..3", "--", "/bin/echo", "%(n)s")
        finished(ids)
        doc = aiodirac("--json", "local", "ps").json()
        assert [j["job_id"] for j in doc["jobs"]] == sorted(ids, reverse=True)
        job = doc["jobs"][0]
        assert set(job) == {
            "job_id",
            "name",
            "job_group",
            "status",
            "minor_status",
            "site",
            "submitted",
            "updated",
        }
        assert job["status"] == "Done"
        assert job["name"].startswith("listed-")
        assert aiodirac("--json", "local", "ps", "-s", "Running").json()["jobs"] == []
        assert len(aiodirac("--json", "local", "ps", "-n", "1").json()["jobs"]) == 1
        table = aiodirac("local", "ps")
        assert table.stdout.splitlines()[0].split() == [
            "ID",
            "Status",
            "MinorStatus",
            "Name",
            "Updated",
        ]

    def test_clean_old_final_jobs_only(
        self, aiodirac: Invoke, submitted: Submit, finished: Wait
    ) -> None:
        done = submitted("--", "/bin/echo", "old")
        finished(done)
        running = submitted("--", "/bin/sleep", "30")
        home = Path(os.environ["AIODIRAC_HOME"])
        archives = list((home / "output").glob(f"{done[0]}.*"))
        assert archives

        assert aiodirac("--json", "local", "clean").json()["jobs"] == []  # not 7 days old
        dry = aiodirac("--json", "local", "clean", "--older-than", "0", "--dry-run").json()
        assert dry["jobs"] == done
        assert dry["dry_run"] is True
        assert all(a.is_file() for a in archives)

        run = aiodirac("--json", "local", "clean", "--older-than", "0")
        assert run.code == 0, run.stderr
        doc = run.json()
        assert (doc["jobs"], doc["deleted"]) == (done, 1)
        assert doc["files_removed"] >= 1
        assert doc["bytes_freed"] > 0
        assert not any(a.exists() for a in archives)
        states = aiodirac("--json", "status", str(done[0]), str(running[0])).json()["jobs"]
        assert states[0]["status"] == "Deleted"
        assert states[1]["status"] != "Deleted"
        aiodirac("kill", str(running[0]))


class TestErrors:
    def test_unusable_state_folder_is_a_service_error(
        self, aiodirac: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        monkeypatch.setenv("AIODIRAC_HOME", str(blocker / "home"))
        run = aiodirac("submit", "--", "/bin/true")
        assert run.code == 3
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("aiodirac: error: ")
        assert "Traceback" not in run.stderr

        debug = aiodirac("--debug", "submit", "--", "/bin/true")
        assert debug.code == 3
        assert "Traceback" in debug.stderr
        monkeypatch.setenv("AIODIRAC_HOME", str(tmp_path / "aiodirac-home"))

    @pytest.mark.slow
    def test_unreachable_service_gives_up_with_exit_3(
        self, aiodirac: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import socket

        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        credentials = tmp_path / "credentials.json"
        credentials.write_text(
            '{"access_token": "t", "refresh_token": null, "expires_on": 4102444800}'
        )
        monkeypatch.setenv("DIRACX_CREDENTIALS_PATH", str(credentials))
        run = aiodirac("--url", f"http://127.0.0.1:{port}", "status", "1")
        assert run.code == 3
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("aiodirac: error: ")

    def test_bad_settings_file_is_a_usage_error(
        self, aiodirac: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings = tmp_path / "settings.toml"
        settings.write_text("backend = 'elsewhere'\n")
        monkeypatch.setenv("AIODIRAC_CONFIG", str(settings))
        run = aiodirac("status", "1")
        assert run.code == 2
        assert "backend must be 'local' or 'diracx'" in run.stderr

    def test_json_errors_leave_stdout_empty(self, aiodirac: Invoke) -> None:
        run = aiodirac("--json", "status", "abc")
        assert run.code == 2
        assert run.stdout == ""
        with pytest.raises(json.JSONDecodeError):
            json.loads(run.stdout)
