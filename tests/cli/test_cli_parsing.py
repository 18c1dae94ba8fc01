"""The command line's own parsing: job IDs, --param sequences, JDL files, exit codes, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiodirac import (
    ConfigurationError,
    InvalidTransitionError,
    JDLSyntaxError,
    JobNotFoundError,
    NetworkError,
    SubmissionError,
)
from aiodirac.cli._common import (
    ExitCode,
    UsageProblem,
    error_line,
    exit_code_for,
    parse_ids,
)
from aiodirac.cli._jdlfile import job_from_jdl
from aiodirac.cli._jobspec import JobOptions, build_jobs, parse_param
from aiodirac.cli._output import compact_ids


class TestJobIds:
    def test_single_lists_and_ranges(self) -> None:
        assert parse_ids(["12"]) == [12]
        assert parse_ids(["12,14", "13-15"]) == [12, 14, 13, 15]

    def test_stdin(self) -> None:
        assert parse_ids(["-"], stdin=lambda: "3 4\n5,6\n") == [3, 4, 5, 6]

    @pytest.mark.parametrize("bad", ["abc", "0", "-3", "5-2", "1-2000000", "1.5", "12-"])
    def test_refused(self, bad: str) -> None:
        with pytest.raises(UsageProblem, match=r"job ID|range"):
            parse_ids([bad])

    @pytest.mark.parametrize(
        ("ids", "text"),
        [([1, 2, 3, 7], "1-3,7"), ([5], "5"), ([1, 2], "1,2"), ([9, 3, 4, 5, 3], "3-5,9")],
    )
    def test_compact_round_trip(self, ids: list[int], text: str) -> None:
        assert compact_ids(ids) == text
        assert sorted(parse_ids([text])) == sorted(set(ids))


class TestParam:
    def test_range_is_inclusive(self) -> None:
        assert parse_param("n=1..3") == ("n", [1, 2, 3])

    def test_list_of_integers_and_words(self) -> None:
        assert parse_param("n=1,2,10") == ("n", [1, 2, 10])
        assert parse_param("x=a,b,007") == ("x", ["a", "b", "007"])

    @pytest.mark.parametrize(
        "bad", ["n", "=1,2", "1n=1", "n=", "n=a,,b", "n=5..1", "n=1..99999999"]
    )
    def test_refused(self, bad: str) -> None:
        with pytest.raises(UsageProblem, match="--param"):
            parse_param(bad)


class TestBuildJobs:
    def test_command_with_parameters(self) -> None:
        (job,) = build_jobs(
            ["/bin/echo", "hello", "%(n)s"], JobOptions(name="scan-%n", params=("n=1..4",))
        )
        assert len(job) == 4
        assert [j.name for j in job.expand()] == ["scan-0", "scan-1", "scan-2", "scan-3"]
        assert [j.steps[0].arguments for j in job.expand()][-1] == "hello 4"

    def test_command_arguments_are_quoted_for_the_worker_shell(self) -> None:
        (job,) = build_jobs(["/bin/echo", "two words", "x"], JobOptions())
        assert job.steps[0].arguments == "'two words' x"

    def test_parameter_in_an_argument_with_spaces_is_refused(self) -> None:
        with pytest.raises(UsageProblem, match="its own argument"):
            build_jobs(["/bin/echo", "hello %(n)s"], JobOptions(params=("n=1..2",)))

    def test_sequences_of_different_lengths(self) -> None:
        # refused by the command line, naming its options, before the Job is touched
        with pytest.raises(UsageProblem, match="--param a has 2, --param b has 3 values"):
            build_jobs(["/bin/echo", "%(a)s", "%(b)s"], JobOptions(params=("a=1..2", "b=1..3")))

    def test_nothing_to_submit(self) -> None:
        with pytest.raises(UsageProblem, match="nothing to submit"):
            build_jobs([], JobOptions())

    def test_python_file_without_a_job(self, tmp_path: Path) -> None:
        script = tmp_path / "nojob.py"
        script.write_text("x = 1\n")
        with pytest.raises(UsageProblem, match="named 'job' or 'j'"):
            build_jobs([str(script)], JobOptions())


class TestJdlFile:
    def test_plain_job(self) -> None:
        job = job_from_jdl(
            '[ Executable = "/bin/echo"; Arguments = "hi there"; JobName = "x"; CPUTime = 50;'
            ' OutputSandbox = {"std.out", "out.txt"}; ]',
            "t.jdl",
        )
        assert job.name == "x"
        assert job.steps[0].executable == "/bin/echo"
        assert "out.txt" in job.to_jdl()

    def test_unnamed_parameters_list(self) -> None:
        job = job_from_jdl(
            'Executable = "/bin/echo"; Arguments = "v=%s"; JobName = "p_%n";'
            ' Parameters = {"a", "b", "c"};',
            "t.jdl",
        )
        jobs = job.expand()
        assert [j.steps[0].arguments for j in jobs] == ["v=a", "v=b", "v=c"]
        assert [j.name for j in jobs] == ["p_0", "p_1", "p_2"]

    def test_numeric_parameters(self) -> None:
        job = job_from_jdl(
            'Executable = "/bin/echo"; Arguments = "%s"; Parameters = 3;'
            " ParameterStart = 10; ParameterStep = 5;",
            "t.jdl",
        )
        assert [j.steps[0].arguments for j in job.expand()] == ["10", "15", "20"]

    def test_named_parameters(self) -> None:
        job = job_from_jdl(
            'Executable = "/bin/echo"; Arguments = "%(seed)s"; Parameters.seed = {"1", "2"};',
            "t.jdl",
        )
        assert len(job) == 2

    def test_unknown_attribute_is_named(self) -> None:
        with pytest.raises(UsageProblem, match="Frobnicate"):
            job_from_jdl('Executable = "/bin/ls"; Frobnicate = 1;', "t.jdl")

    def test_dirac_generated_jdl_is_refused(self) -> None:
        with pytest.raises(UsageProblem, match="Python script"):
            job_from_jdl('Executable = "dirac-jobexec"; Arguments = "x.xml";', "t.jdl")

    def test_no_executable(self) -> None:
        with pytest.raises(UsageProblem, match="no Executable"):
            job_from_jdl('JobName = "x";', "t.jdl")

    def test_syntax_error(self) -> None:
        with pytest.raises(JDLSyntaxError):
            job_from_jdl("[ Executable = ", "t.jdl")


class TestExitCodes:
    @pytest.mark.parametrize(
        ("error", "code"),
        [
            (UsageProblem("x"), ExitCode.USAGE),
            (JDLSyntaxError("x"), ExitCode.USAGE),
            (ConfigurationError("x"), ExitCode.USAGE),
            (NetworkError("x"), ExitCode.SERVICE),
            (JobNotFoundError("x"), ExitCode.SERVICE),
            (InvalidTransitionError("x"), ExitCode.JOBS_FAILED),
            (SubmissionError("x", submitted=(1,)), ExitCode.JOBS_FAILED),
            (SubmissionError("x"), ExitCode.SERVICE),
            (ExceptionGroup("g", [ValueError("v"), NetworkError("n")]), ExitCode.SERVICE),
            (KeyboardInterrupt(), ExitCode.INTERRUPTED),
        ],
    )
    def test_mapping(self, error: BaseException, code: ExitCode) -> None:
        assert exit_code_for(error) is code

    def test_error_line_is_one_line(self) -> None:
        line = error_line(NetworkError("connection refused\n  to host x"))
        assert line == "aiodirac: error: connection refused to host x"

    def test_unexpected_error_points_to_debug(self) -> None:
        assert "--debug" in error_line(ZeroDivisionError("boom"))

    def test_group_shows_the_library_error(self) -> None:
        group = ExceptionGroup("g", [ExceptionGroup("h", [JobNotFoundError("job 9 unknown")])])
        assert error_line(group) == "aiodirac: error: job 9 unknown"
