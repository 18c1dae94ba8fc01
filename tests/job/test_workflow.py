"""jobDescription.xml: DIRAC's files read back, ours written safely, dirac-jobexec's -p rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from _jobref import case_names

from aiodirac._exceptions import JDLSyntaxError, UnsafeValueError
from aiodirac._job._spec import Step
from aiodirac._job._workflow import (
    WorkflowParameter,
    check_xml_value,
    jobexec_overrides,
    parse_workflow,
    render_workflow,
    steps_for,
    workflow_parameters,
)


def test_reads_dirac_seed_workflow(reference: Path) -> None:
    assert parse_workflow((reference / "01_seed.xml").read_text()) == (
        Step(1, "/bin/echo hello", "", "Script1_CodeOutput.log"),
        Step(2, "/bin/hostname", "", "Script2_hostname.log"),
        Step(3, "/bin/echo hello again", "", "Script3_CodeOutput.log"),
    )
    assert parse_workflow((reference / "02_exe_args_log.xml").read_text())[1] == Step(
        2, "/usr/bin/env", 'python3 -c "print(42)"', "python.log"
    )
    assert parse_workflow((reference / "20_defaults.xml").read_text()) == ()


@pytest.mark.parametrize("name", case_names())
def test_our_rendering_reads_back(reference: Path, name: str) -> None:
    xml = (reference / f"{name}.xml").read_text()
    steps = parse_workflow(xml)
    params = workflow_parameters(xml)
    again = render_workflow(
        params.get("JobName", "x"),
        [WorkflowParameter(k, "JDL", v, "") for k, v in params.items()],
        steps,
    )
    assert parse_workflow(again) == steps
    assert workflow_parameters(again) == params


def test_escapes_and_refusals() -> None:
    xml = render_workflow(
        "a<b>&c", [WorkflowParameter("JobName", "JDL", "<x>&", 'd"e')], [Step(1, "e", "", "l")]
    )
    assert "<name>a&lt;b&gt;&amp;c</name>" in xml
    assert workflow_parameters(xml)["JobName"] == "<x>&"
    for bad in ("a]]>b", "a\rb", "a\x00b", "a\ufffeb"):
        with pytest.raises(UnsafeValueError):
            check_xml_value("arguments", bad)
        with pytest.raises(UnsafeValueError):
            render_workflow("x", [], [Step(1, "e", bad, "l")])
    check_xml_value("arguments", "tab\there é ]] > <&'\"")


def test_not_a_workflow() -> None:
    with pytest.raises(JDLSyntaxError):
        parse_workflow("<Workflow>")
    with pytest.raises(JDLSyntaxError):
        parse_workflow("<Other/>")


def test_jobexec_overrides_follow_dirac_jobexec() -> None:
    assert jobexec_overrides(
        "jobDescription.xml -o LogLevel=INFO -p arguments='a b=c'  -p seed=11 "
        "--parameter='x={1, 2}' -pY=z"
    ) == {"arguments": "a b=c", "seed": "11", "x": "1;2", "Y": "z"}
    assert jobexec_overrides("jobDescription.xml") == {}
    for bad in ("x -p", "x -p novalue", "x -p 'open"):
        with pytest.raises(JDLSyntaxError):
            jobexec_overrides(bad)


def test_steps_for_gives_blank_steps_the_parametric_arguments() -> None:
    xml = render_workflow(
        "j",
        [WorkflowParameter("arguments", "string", "", "")],
        [Step(1, "/bin/echo", "", "a.log"), Step(2, "/bin/ls", "-l", "b.log")],
    )
    attrs = {"Arguments": "jobDescription.xml -o LogLevel=INFO -p arguments=' x=1 '"}
    assert steps_for(attrs, xml) == (
        Step(1, "/bin/echo", "x=1", "a.log"),
        Step(2, "/bin/ls", "-l", "b.log"),
    )
    assert steps_for({"Arguments": "jobDescription.xml"}, xml) == parse_workflow(xml)
    # A workflow-level 'arguments' value reaches blank steps even without -p (Script module).
    preset = render_workflow(
        "j", [WorkflowParameter("arguments", "string", "-v", "")], [Step(1, "e", "", "l")]
    )
    assert steps_for({}, preset) == (Step(1, "e", "-v", "l"),)
