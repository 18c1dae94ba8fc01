"""aiodirac's JDL against DIRAC's own parsers (DIRACCommon 9.1, as DiracX 0.7.0 runs it).

What a user gives either reaches the server's stored job unchanged, or is refused at the setter:
checked character by character, then with random strings (hypothesis), then for whole chunks,
whose server-side expansion must give exactly the chunk's concrete jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _jobref import Oracle, normalize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiodirac._exceptions import JobDescriptionError
from aiodirac._job._jdl import parse_jdl, render_jdl
from aiodirac._job._job import Job
from aiodirac._job._parametric import chunk_jobs
from aiodirac._job._spec import SubmitChunk
from aiodirac._job._workflow import steps_for

# Keys the server adds or fills in itself.
SERVER_KEYS = {"Owner", "OwnerGroup", "CPUTime", "Priority", "VirtualOrganization"}

PROBES = [chr(c) for c in range(0x80) if chr(c) != "["] + [
    "\x85",
    "\xa0",
    "é",
    "\u2028",
    "\u200b",
    "\ufeff",
    "\U0001f600",
    "]]>",
    "%n",
    "%s",
    "%(x)s",
    "%%",
    "{a}",
    "a=b",
    "x];Executable=rm;[",
]
FORMS: list[Callable[[str], str]] = [
    lambda c: f"a{c}b",
    lambda c: c,
    lambda c: f"{c}b",
    lambda c: f"a{c}",
]


def server_jobs(chunk: SubmitChunk, answer: dict[str, Any]) -> None:
    """The server's jobs for ``chunk`` are exactly ``chunk.jobs``: every attribute, every step."""
    assert answer["OK"], answer
    assert len(answer["jobs"]) == len(chunk.jobs)
    for concrete, stored in zip(chunk.jobs, answer["jobs"], strict=True):
        values = {k: v for k, v in stored["values"].items() if k not in SERVER_KEYS}
        assert values == normalize(
            {k: v for k, v in concrete.attributes.items() if k not in SERVER_KEYS}
        )
        assert steps_for(parse_jdl(stored["expanded"]), chunk.workflow_xml) == concrete.steps


def try_job(build: Callable[[Job], object]) -> Job | None:
    """The job built with a value, or None when aiodirac refuses it (setter or expansion)."""
    job = Job(name="probe-%n")
    try:
        build(job)
        if not job.steps:
            job.setExecutable("/bin/echo", arguments="-n x")
        job.expand()
    except JobDescriptionError:
        return None
    return job


CONTEXTS: dict[str, Callable[[str], Callable[[Job], object]]] = {
    "JobName": lambda v: lambda j: j.setName(v),
    "JobGroup": lambda v: lambda j: j.setJobGroup(v),
    "OutputSandbox": lambda v: lambda j: j.setOutputSandbox([v, "z.txt"]),
    "InputData": lambda v: lambda j: j.setInputData(v),
    "arguments": lambda v: lambda j: j.setExecutable("/bin/echo", arguments=v),
    "parametric arguments": lambda v: (
        lambda j: (
            j.setExecutable("/bin/echo", arguments=f"{v} %(p)s"),
            j.setParameterSequence("p", ["1", "2"]),
        )
    ),
    "parameter value": lambda v: (
        lambda j: (
            j.setExecutable("/bin/echo", arguments="%(p)s"),
            j.setParameterSequence("p", [v, "ok"]),
        )
    ),
}


def check_values(values: list[str], oracle: Oracle) -> int:
    """Every value: refused at the setter, or carried exactly. Returns how many were carried."""
    jobs: list[tuple[str, str, Job]] = []
    for value in values:
        for context, make in CONTEXTS.items():
            job = try_job(make(value))
            if job is not None:
                jobs.append((context, value, job))
    chunks = [next(iter(job.chunks())) for _, _, job in jobs]
    answers = oracle([{"op": "server", "jdl": render_jdl(c.attributes)} for c in chunks])
    for (context, value, job), chunk, answer in zip(jobs, chunks, answers, strict=True):
        try:
            server_jobs(chunk, answer)
        except AssertionError as exc:
            raise AssertionError(f"{context} = {value!r} accepted but not carried: {exc}") from exc
        first = chunk.jobs[0]
        if context == "JobName":
            assert first.attributes["JobName"] == value.replace("%n", "0")
        elif context == "parameter value":
            assert first.parameters["p"] == value
            assert first.steps[0].arguments == value
        elif context == "arguments":
            assert first.steps[0].arguments == value.replace("%n", "0")
        assert job.to_jdl() == job.to_jdl()
    return len(jobs)


@pytest.mark.slow
def test_characters_are_refused_or_carried(oracle: Oracle) -> None:
    values = [form(c) for c in PROBES for form in FORMS]
    carried = check_values(values, oracle)
    assert carried > len(values)  # most values are carried in most contexts


@pytest.mark.parametrize(
    ("value", "damage"),
    [
        ("semi;colon", "truncated"),
        ("comma, inside", "list"),
        ('quote"inside', "error"),
        ("new\nline", "dropped"),
    ],
)
def test_refused_characters_do_corrupt_dirac(value: str, damage: str, oracle: Oracle) -> None:
    """The refusals are needed: written raw (as DIRAC does), these values come back changed."""
    with pytest.raises(JobDescriptionError):
        Job(name=value)
    jdl = f'[ Executable = "x"; JobName = "{value}"; Parameters = 1; Tail = "ok"; ]'
    [answer] = oracle([{"op": "server", "jdl": jdl}])
    if damage == "error":
        assert not answer["OK"] or answer["jobs"][0]["values"].get("JobName") != value
    else:
        assert answer["jobs"][0]["values"]["JobName"] != value


def test_sub_jdl_bracket_hangs_dirac_and_is_refused(oracle: Oracle) -> None:
    """'[abc]' in a value sends DIRAC's ClassAd scanner into an endless loop; we refuse '['."""
    with pytest.raises(JobDescriptionError, match=r"'\['"):
        Job(name="[abc]")
    import subprocess

    with pytest.raises(subprocess.TimeoutExpired):
        oracle([{"op": "classad", "jdl": '[ JobName = "[abc]"; Executable = "x"; ]'}], timeout=3)  # type: ignore[call-arg]


@pytest.mark.slow
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(values=st.lists(st.text(min_size=1, max_size=12), min_size=25, max_size=25))
def test_any_string_is_refused_or_carried(values: list[str], oracle: Oracle) -> None:
    check_values(values, oracle)


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_characters="[\n"), max_size=10),
        min_size=25,
        max_size=25,
    )
)
def test_printable_strings_are_refused_or_carried(values: list[str], oracle: Oracle) -> None:
    check_values([v for v in values if v], oracle)


def big_job() -> Job:
    job = Job(name="scan-%n", job_group="grp")
    job.setExecutable("/bin/echo", arguments="seed=%(seed)s idx=%n")
    job.setExecutable("/bin/true", arguments="-x")
    job.setInputSandbox(["input1.txt", "LFN:/vo/common.tgz"])
    job.setParameterSequence("seed", list(range(100, 145)), addToWorkflow=True)
    job.setParameterSequence("InputSandbox", [f"LFN:/vo/in/{i}.tgz" for i in range(45)])
    job.setParameterSequence("InputData", [f"LFN:/vo/data/{i}.dst" for i in range(45)])
    return job


def test_chunks_expand_on_the_server_into_their_jobs(
    oracle: Oracle, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "input1.txt").write_text("x")
    job = big_job()
    chunks = list(job.chunks(20))
    assert [len(c) for c in chunks] == [20, 20, 5]
    answers = oracle([{"op": "server", "jdl": render_jdl(c.attributes)} for c in chunks])
    for chunk, answer in zip(chunks, answers, strict=True):
        server_jobs(chunk, answer)
    jobs = [j for c in chunks for j in c.jobs]
    assert [j.index for j in jobs] == list(range(45))
    assert [j.name for j in jobs] == [f"scan-{i:02d}" for i in range(45)]
    expanded = job.expand()
    for concrete, full in zip(jobs, expanded, strict=True):
        assert concrete.parameters == full.parameters
        assert concrete.steps == full.steps
        bookkeeping = ("Parameter", "InputSandbox")
        assert {k: v for k, v in concrete.attributes.items() if not k.startswith(bookkeeping)} == {
            k: v for k, v in full.attributes.items() if not k.startswith(bookkeeping)
        }


def test_the_whole_job_expands_on_the_server_as_expand_says(
    oracle: Oracle, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    job = big_job()
    [answer] = oracle([{"op": "expand", "jdl": job.to_jdl()}])
    assert answer["OK"], answer
    theirs = [normalize(parse_jdl(text)) for text in answer["value"]]
    assert [normalize(dict(j.attributes)) for j in job.expand()] == theirs


def test_factored_chunks_expand_on_the_server_into_each_job(
    oracle: Oracle, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    jobs = []
    for i in range(7):
        job = Job(name=f"task-{i}", job_group="g" if i < 5 else "other")
        job.setExecutable("/bin/echo", arguments="hello world")
        job.setCPUTime(600)
        jobs.append(job)
    spaced = Job(name="has space")  # a name a parameter value cannot carry: its own chunk
    spaced.setExecutable("/bin/echo", arguments="hello world")
    spaced.setCPUTime(600)
    jobs.insert(3, spaced)
    chunks = list(chunk_jobs(jobs, max_jobs=20))
    assert [len(c) for c in chunks] == [3, 1, 4]
    answers = oracle([{"op": "server", "jdl": render_jdl(c.attributes)} for c in chunks])
    for chunk, answer in zip(chunks, answers, strict=True):
        server_jobs(chunk, answer)
    concrete = [j for c in chunks for j in c.jobs]
    assert [j.index for j in concrete] == list(range(8))
    assert [j.name for j in concrete] == [job.name for job in jobs]
    for job, got in zip(jobs, concrete, strict=True):
        [alone] = job.expand()
        assert {k: v for k, v in got.attributes.items() if not k.startswith("Parameter")} == {
            k: v for k, v in alone.attributes.items() if k != "InputSandbox"
        } | {"InputSandbox": got.attributes["InputSandbox"]}


@pytest.mark.parametrize("n_jobs", [1, 2, 11])
def test_to_jdl_expands_on_the_server_as_expand_says(n_jobs: int, oracle: Oracle) -> None:
    job = Job(name="n-%n", job_group="g")
    job.setExecutable("/bin/echo", arguments="x=%(x)s %n")
    job.setParameterSequence("x", [f"v{i}" for i in range(n_jobs)], addToWorkflow="X")
    [answer] = oracle([{"op": "expand", "jdl": job.to_jdl()}])
    assert answer["OK"], answer
    assert [normalize(parse_jdl(t)) for t in answer["value"]] == [
        normalize(dict(j.attributes)) for j in job.expand()
    ]
