"""The Job class: DIRAC's setters checked at once, expansion and chunking semantics."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodirac._exceptions import JobDescriptionError, ParametricError, UnsafeValueError
from aiodirac._job._jdl import parse_jdl
from aiodirac._job._job import Job
from aiodirac._job._parametric import INDEX_PARAMETER, chunk_jobs
from aiodirac._job._spec import Step


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local.sh").write_text("#!/bin/sh\n")
    return tmp_path


def scan(n: int = 3) -> Job:
    job = Job(name="scan-%n")
    job.setExecutable("/bin/echo", arguments="v=%(x)s")
    job.setParameterSequence("x", [f"v{i}" for i in range(n)])
    return job


def test_keyword_aliases_match_setters() -> None:
    job = Job(
        name="n",
        cpu_time=60,
        job_group="g",
        priority=3,
        log_level="debug",
        job_type="User",
        platform="Linux_x86_64_glibc-2.17",
        tags=("GPU",),
        destination=["LCG.CERN.cern"],
        banned_sites="LCG.RAL.uk",
        input_sandbox=["a.txt"],
        output_sandbox=["*.root"],
        input_data=["/vo/f1"],
    )
    other = Job()
    other.setName("n")
    other.setCPUTime(60)
    other.setJobGroup("g")
    other.setPriority(3)
    other.setLogLevel("debug")
    other.setType("User")
    other.setPlatform("Linux_x86_64_glibc-2.17")
    other.setTag(["GPU"])
    other.setDestination(["LCG.CERN.cern"])
    other.setBannedSites("LCG.RAL.uk")
    other.setInputSandbox(["a.txt"])
    other.setOutputSandbox(["*.root"])
    other.setInputData(["/vo/f1"])
    assert job.to_jdl() == other.to_jdl()
    assert job.name == "n"
    assert job.job_group == "g"
    assert Job().name == "Name"
    assert Job().job_group == ""


def test_setters_return_dirac_results() -> None:
    job = Job()
    assert job.setName("x") == {"OK": True, "Value": None}
    assert job.setExecutable("/bin/true") == {
        "OK": True,
        "Value": {"name": "RunScriptStep1", "type": "ScriptStep1", "descr_short": ""},
    }
    assert job.setRAMRequirements(100, 200) == {"OK": True, "Value": None}
    assert job.errorDict == {}


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda j: j.setName(5), "jobName"),
        (lambda j: j.setName(""), "jobName"),
        (lambda j: j.setType(""), "jobType"),
        (lambda j: j.setPlatform(""), "platform"),
        (lambda j: j.setCPUTime("fast"), "timeInSecs"),
        (lambda j: j.setCPUTime(None), "timeInSecs"),
        (lambda j: j.setCPUTime(-1), "timeInSecs"),
        (lambda j: j.setPriority("1"), "priority"),
        (lambda j: j.setLogLevel("LOUD"), "logLevel"),
        (lambda j: j.setInputSandbox([]), "files"),
        (lambda j: j.setInputSandbox([1]), "files"),
        (lambda j: j.setInputSandbox(["sub/jobDescription.xml"]), "files"),
        (lambda j: j.setOutputSandbox(None), "files"),
        (lambda j: j.setInputData(["a", 2]), "lfns"),
        (lambda j: j.setOutputData([], outputSE="X"), "lfns"),
        (lambda j: j.setOutputData("a", outputPath="///"), "outputPath"),
        (lambda j: j.setNumberOfProcessors(0), "numberOfProcessors"),
        (lambda j: j.setNumberOfProcessors(maxNumberOfProcessors=2.5), "maxNumberOfProcessors"),
        (lambda j: j.setRAMRequirements(-1), "ramRequired"),
        (lambda j: j.setRAMRequirements(4000, 2000), "maxRAM"),
        (lambda j: j.setExecutionEnv([("A", 1)]), "environmentDict"),
        (lambda j: j.setExecutionEnv({"A B": 1}), "environmentDict"),
        (lambda j: j.setExecutable(["/bin/ls"]), "executable"),
        (lambda j: j.setExecutable(" "), "executable"),
        (lambda j: j.setExecutable("/bin/ls", arguments="'open"), "arguments"),
        (lambda j: j.setExecutable("/bin/ls", modulesList=["Other"]), "modulesList"),
        (lambda j: j.setExecutable("/bin/ls", parameters=[("a", "b", "c", "d")]), "parameters"),
        (lambda j: j.setParameterSequence("1x", [1]), "name"),
        (lambda j: j.setParameterSequence("ParameterX", [1]), "name"),
        (lambda j: j.setParameterSequence(INDEX_PARAMETER, [1]), "name"),
        (lambda j: j.setParameterSequence("x", "abc"), "parameterList"),
        (lambda j: j.setParameterSequence("x", [None]), "parameterList"),
        (lambda j: j.setParameterSequence("x", [1], addToWorkflow="a b"), "addToWorkflow"),
        (lambda j: j.setParameterSequence("InputSandbox", ["local.txt"]), "parameterList"),
        (lambda j: j._addJDLParameter("Parameters", "1"), "name"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(call: object, argument: str) -> None:
    with pytest.raises(JobDescriptionError) as info:
        call(Job())  # type: ignore[operator]
    assert info.value.attribute == argument
    assert argument in str(info.value)


@pytest.mark.parametrize(
    ("call", "attribute"),
    [
        (lambda j: j.setName('say "hi"'), "JobName"),
        (lambda j: j.setName("[abc]"), "JobName"),
        (lambda j: j.setJobGroup("a;b"), "JobGroup"),
        (lambda j: j.setInputSandbox(["my file.txt"]), "InputSandbox"),
        (lambda j: j.setOutputSandbox(["a,b"]), "OutputSandbox"),
        (lambda j: j.setExecutable("/bin/echo", arguments="a]]>b"), "arguments"),
        (lambda j: j.setExecutable("/bin/echo", arguments="'it' %n"), "arguments"),
        (lambda j: j.setExecutable("/bin/echo", arguments='say "%n"'), "Arguments"),
        (lambda j: j.setExecutable("/bin/echo", arguments="{%n}"), "arguments"),
        (lambda j: j.setParameterSequence("x", ["a b"]), "Parameters.x"),
        (lambda j: j.setParameterSequence("x", ["%(y)s"]), "Parameters.x"),
        (lambda j: j.setParameterSequence("x", ["{1}"]), "Parameters.x"),
        (lambda j: j.setParameterSequence("x", ["a=b"], addToWorkflow=True), "Parameters.x"),
        (lambda j: j.setParameterSequence("x", ["$(id)"], addToWorkflow=True), "Parameters.x"),
        (lambda j: j.setConfigArgs("/a=b; rm -rf /"), "JobConfigArgs"),
    ],
)
def test_unsafe_values_raise_naming_the_attribute(call: object, attribute: str) -> None:
    with pytest.raises(UnsafeValueError) as info:
        call(Job())  # type: ignore[operator]
    assert info.value.attribute == attribute
    assert attribute in str(info.value)


def test_sequences_must_fit_together() -> None:
    job = Job()
    job.setParameterSequence("a", [1, 2, 3])
    with pytest.raises(ParametricError, match="same length"):
        job.setParameterSequence("b", [1, 2])
    with pytest.raises(ParametricError, match="empty"):
        job.setParameterSequence("c", [])
    job.setParameterSequence("a", ["p", "q", "r"])  # redefinition replaces, as in DIRAC
    assert job.parameter_sequences == {"a": ("p", "q", "r")}
    job.setParameterSequence("a", range(5))  # the only sequence may change length
    assert len(job) == job.n_jobs == 5


def test_one_step_carries_parametric_arguments() -> None:
    job = Job()
    job.setExecutable("/bin/echo", arguments="%(x)s")
    with pytest.raises(ParametricError, match="one step"):
        job.setExecutable("/bin/echo", arguments="%n")
    with pytest.raises(ParametricError, match="no arguments"):
        job.setExecutable("/bin/hostname")
    job.setExecutable("/bin/ls", arguments="-l")
    other = Job()
    other.setExecutable("/bin/hostname")
    with pytest.raises(ParametricError, match="step 1 has no arguments"):
        other.setExecutable("/bin/echo", arguments="hello %(n)s")


def test_unknown_placeholders_fail_at_expansion() -> None:
    job = Job(name="x-%(nope)s")
    job.setExecutable("/bin/true", arguments="-v")
    with pytest.raises(ParametricError, match="nope"):
        job.expand()
    with pytest.raises(ParametricError, match="nope"):
        job.chunks()
    with pytest.raises(ParametricError, match="nope"):
        list(chunk_jobs([job]))


def test_plain_job_is_one_job_and_percent_n_is_its_index() -> None:
    job = Job(name="plain-%n")
    job.setExecutable("/bin/echo", arguments="-n hi")
    assert len(job) == 1
    assert not job.is_parametric
    [concrete] = job.expand()
    assert concrete.index == 0
    assert concrete.name == "plain-0"
    assert concrete.steps == (Step(1, "/bin/echo", "-n hi", "Script1_echo.log"),)
    assert "Parameter" not in concrete.attributes
    [chunk] = job.chunks()
    assert chunk.attributes["Parameters"] == 1
    assert chunk.attributes[f"Parameters.{INDEX_PARAMETER}"] == ("0",)
    assert chunk.attributes["JobName"] == f"plain-%({INDEX_PARAMETER})s"
    assert chunk.jobs[0].name == "plain-0"


def test_percent_n_is_padded_like_dirac() -> None:
    names = [j.name for j in scan(11).expand()]
    assert names[0] == "scan-00"
    assert names[-1] == "scan-10"
    assert [j.name for j in scan(10).expand()][-1] == "scan-9"


def test_chunks_cover_the_job_in_order() -> None:
    job = scan(45)
    chunks = list(job.chunks(20))
    assert [len(c) for c in chunks] == [20, 20, 5]
    assert [i for c in chunks for i in c.indices] == list(range(45))

    def key(c: object) -> list[object]:  # same jobs whatever the chunk size, but the
        return [  # server's ParameterNumber counts within the chunk
            (j.index, {k: v for k, v in j.attributes.items() if k != "ParameterNumber"}, j.steps)
            for j in c.jobs  # type: ignore[attr-defined]
        ]

    assert [x for c in chunks for x in key(c)] == [x for c in job.chunks(7) for x in key(c)]
    assert [j.attributes["ParameterNumber"] for j in chunks[1].jobs] == list(range(20))
    resumed = list(job.chunks(20, start=40))
    assert [c.indices for c in resumed] == [tuple(range(40, 45))]
    assert chunks[1].attributes["Parameters.x"] == tuple(f"v{i}" for i in range(20, 40))
    assert chunks[1].attributes[f"Parameters.{INDEX_PARAMETER}"] == tuple(
        f"{i:02d}" for i in range(20, 40)
    )
    assert chunks[0].workflow_xml == job.to_workflow_xml()
    for bad in (0, -1, 1.5):
        with pytest.raises(JobDescriptionError):
            job.chunks(bad)  # type: ignore[arg-type]
    with pytest.raises(JobDescriptionError):
        job.chunks(20, start=46)
    assert list(job.chunks(20, start=45)) == []


def test_chunk_sandbox_is_absolute_and_local_entries_listed(in_tmp: Path) -> None:
    job = Job()
    job.setExecutable("local.sh", arguments="-x")
    job.setInputSandbox(["data/in.txt", "LFN:/vo/big.tgz", str(in_tmp / "abs.txt"), "folder"])
    # The JDL shows what the user gave, as DIRAC's does.
    assert parse_jdl(job.to_jdl())["InputSandbox"] == (
        "data/in.txt",
        "LFN:/vo/big.tgz",
        str(in_tmp / "abs.txt"),
        "folder",
        "local.sh",
        "jobDescription.xml",
    )
    [chunk] = job.chunks()
    local = (
        str(in_tmp / "data" / "in.txt"),
        str(in_tmp / "abs.txt"),
        str(in_tmp / "folder"),
        str(in_tmp / "local.sh"),
    )
    assert chunk.local_sandbox == local
    assert chunk.attributes["InputSandbox"] == (
        local[0],
        "LFN:/vo/big.tgz",
        *local[1:],
        "jobDescription.xml",
    )
    assert chunk.jobs[0].strings("InputSandbox") == chunk.attributes["InputSandbox"]


def test_paths_are_resolved_when_set_not_when_rendered(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = Job()
    job.setExecutable("/bin/true")
    job.setInputSandbox(["in.txt"])
    first = job.to_jdl()
    monkeypatch.chdir(os.path.dirname(in_tmp))
    assert job.to_jdl() == first
    assert next(iter(job.chunks())).local_sandbox == (str(in_tmp / "in.txt"), "/bin/true")


def test_executable_rule_is_dirac_s(in_tmp: Path) -> None:
    job = Job()
    job.setExecutable("local.sh")
    job.setExecutable("not-here.sh")
    job.setExecutable("local.sh", arguments="-v", includeInSandbox=False)
    assert [s.log_file for s in job.steps] == [
        "Script1_local.sh.log",
        "Script2_CodeOutput.log",
        "Script3_CodeOutput.log",
    ]
    assert parse_jdl(job.to_jdl())["InputSandbox"] == ("local.sh", "jobDescription.xml")


def test_setters_dirac_semantics() -> None:
    job = Job()
    job.setExecutable("/bin/true")
    job.setJobGroup("")
    job.setPlatform("any")
    job.setDestination("ANY")
    job.setOutputData(["o.root"], outputSE=[" A ", "B"], outputPath="//p/q")
    job.setNumberOfProcessors(numberOfProcessors=3, minNumberOfProcessors=5)
    job.setExecutionEnv({"V": "a b;c"})
    job._addJDLParameter("Extra", "x;y")
    job._addJDLParameter("Count", 4)
    job.setConfigArgs("/LocalSite/Site=Foo")
    attrs = parse_jdl(job.to_jdl())
    assert not {"JobGroup", "Platform", "Site"} & set(attrs)
    assert attrs["OutputSE"] == ("A", "B")
    assert attrs["OutputPath"] == "p/q"
    assert attrs["NumberOfProcessors"] == attrs["MaxNumberOfProcessors"] == 5
    assert attrs["ExecutionEnvironment"] == "V=a%20b%3Bc"
    assert attrs["Extra"] == ("x", "y")
    assert attrs["Count"] == 4
    assert attrs["Arguments"] == "jobDescription.xml -o LogLevel=INFO --cfg /LocalSite/Site=Foo"
    ranged = Job()
    ranged.setNumberOfProcessors(maxNumberOfProcessors=4)
    assert parse_jdl(ranged.to_jdl())["MinNumberOfProcessors"] == 1
    same = Job()
    same.setNumberOfProcessors(minNumberOfProcessors=6, maxNumberOfProcessors=4)
    assert parse_jdl(same.to_jdl())["NumberOfProcessors"] == 4


def test_script_argument_is_refused() -> None:
    with pytest.raises(JobDescriptionError, match="script"):
        Job(script="jobDescription.xml")  # type: ignore[arg-type]


def test_template_is_cached_until_a_setter_runs() -> None:
    job = scan(3)
    assert job.template() is job.template()
    before = job.template()
    job.setCPUTime(10)
    assert job.template() is not before
    assert job.template().attributes["CPUTime"] == 10


def test_design_example_is_refused_with_a_fix() -> None:
    """DESIGN.md's first example: DIRAC's worker node would run 'hostname hello 5'."""
    job = Job()
    job.setCPUTime(500)
    job.setExecutable("/bin/echo", arguments="hello %(n)s")
    with pytest.raises(ParametricError, match="explicit arguments"):
        job.setExecutable("/bin/hostname")


def test_chunk_jobs_mixes_plain_and_parametric_jobs() -> None:
    first = Job(name="a-%n")
    first.setExecutable("/bin/true", arguments="-x")
    second = Job(name="b-%n")
    second.setExecutable("/bin/true", arguments="-x")
    para = scan(12)
    last = Job(name="c-%n")
    last.setExecutable("/bin/true", arguments="-x")
    chunks = list(chunk_jobs([first, second, para, last], max_jobs=5))
    assert [len(c) for c in chunks] == [2, 5, 5, 2, 1]
    jobs = [j for c in chunks for j in c.jobs]
    assert [j.index for j in jobs] == list(range(15))
    assert [j.name for j in jobs] == [
        "a-0",
        "b-1",
        *[f"scan-{i:02d}" for i in range(2, 14)],
        "c-14",
    ]
    assert jobs[2].parameters == {"x": "v0"}
    assert jobs[2].steps[0].arguments == "v=v0"
    with pytest.raises(JobDescriptionError):
        list(chunk_jobs([first], max_jobs=0))
    with pytest.raises(JobDescriptionError):
        list(chunk_jobs(["not a job"]))  # type: ignore[list-item]


def test_chunk_jobs_shares_chunks_only_where_dirac_can_carry_it() -> None:
    jobs = []
    for i in range(4):
        job = Job(name=f"t{i}")
        job.setExecutable("/bin/true", arguments="-x")
        jobs.append(job)
    jobs[2].setCPUTime(5)  # a new attribute: not the same template
    chunks = list(chunk_jobs(jobs))
    assert [len(c) for c in chunks] == [2, 1, 1]
    assert chunks[0].attributes["JobName"] == "%(aiodiracVary0)s"
    assert chunks[0].attributes["Parameters.aiodiracVary0"] == ("t0", "t1")
    assert [j.name for c in chunks for j in c.jobs] == ["t0", "t1", "t2", "t3"]
    assert all(j.parameters == {} for c in chunks for j in c.jobs)


def test_a_one_value_sequence_stays_a_list() -> None:
    job = scan(1)
    attrs = parse_jdl(job.to_jdl())
    assert attrs["Parameters"] == 1
    assert attrs["Parameters.x"] == ("v0",)
    assert [j.name for j in job.expand()] == ["scan-0"]


def test_placeholders_and_parameter_values() -> None:
    from aiodirac._job._parametric import check_parameter_value, placeholders

    assert placeholders("run %(seed)s of %n, %(a)s %(seed)s") == {"seed", "a"}
    assert placeholders("plain") == set()
    check_parameter_value("x", "LFN:/vo/a-1.tgz")
    for bad in ("", "a b", "%(y)s", "%n", "{a}", "a]", "it's", "a,b", "50%s", "a%", "%j"):
        with pytest.raises(UnsafeValueError):
            check_parameter_value("x", bad)


def _attrs_of(build: object) -> dict[str, object] | None:
    job = Job(name="base")
    job.setExecutable("/bin/echo", arguments="%(p)s")
    job.setParameterSequence("p", ["1", "2"])
    try:
        build(job)  # type: ignore[operator]
        job.expand()
    except JobDescriptionError:
        return None
    return dict(parse_jdl(job.to_jdl()))


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=16))
def test_any_string_round_trips_or_is_refused_and_touches_nothing_else(value: str) -> None:
    baseline = _attrs_of(lambda j: None)
    assert baseline is not None
    contexts = {
        "JobName": lambda j: j.setName(value),
        "OutputSandbox": lambda j: j.setOutputSandbox([value]),
        "Parameters.p": lambda j: j.setParameterSequence("p", [value, "2"]),
        "Arguments": lambda j: j.setExecutable("/bin/true", arguments=value),
    }
    for attribute, build in contexts.items():
        got = _attrs_of(build)
        if got is None:
            continue
        changed = {k for k in set(got) | set(baseline) if got.get(k) != baseline.get(k)}
        if attribute == "JobName":
            assert got["JobName"] == value
            assert changed <= {"JobName"}
        elif attribute == "OutputSandbox":
            assert value in got["OutputSandbox"]  # type: ignore[operator]
            assert changed <= {"OutputSandbox"}
        elif attribute == "Parameters.p":
            assert got["Parameters.p"] == (value, "2")
            assert changed <= {"Parameters.p"}
        else:  # a second, plain step: only the XML and the sandboxes (its log, /bin/true) change
            assert changed <= {"OutputSandbox", "InputSandbox"}


def test_a_percent_before_a_placeholder_is_refused() -> None:
    job = Job(name="x%%(p)s")
    job.setExecutable("/bin/echo", arguments="%(p)s")
    job.setParameterSequence("p", ["1", "2"])
    with pytest.raises(ParametricError, match="right before"):
        job.expand()
