"""The workflow file (``jobDescription.xml``) that DIRAC's ``dirac-jobexec`` runs on a worker node.

A DIRAC job's JDL always runs ``dirac-jobexec jobDescription.xml -o LogLevel=... [-p name=value]``;
the steps themselves (executable, arguments, log file of each ``ScriptStep<N>``) live in this XML.
:func:`render_workflow` writes it in the layout of DIRAC's ``Workflow.toXML()``; :func:`parse_workflow`
reads DIRAC's or ours back into :class:`~aiodirac.Step` values; :func:`steps_for` tells what
``dirac-jobexec`` would run for one concrete job, applying the ``-p`` overrides of its Arguments the
way DIRAC does: a ``-p arguments='...'`` value becomes the arguments of every step whose own
arguments are empty (``Script._resolveInputVariables``).

Pure: no I/O. ``xml.etree`` is imported on first parse only, to keep ``import aiodirac`` fast.

Usage::

    steps = steps_for(concrete.attributes, chunk.workflow_xml)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiodirac._exceptions import JDLSyntaxError, UnsafeValueError

from ._spec import JDLValue, Step

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

__all__ = [
    "WorkflowParameter",
    "check_xml_value",
    "jobexec_overrides",
    "parse_workflow",
    "render_workflow",
    "steps_for",
    "workflow_parameters",
]

_XML_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff\ufffe\uffff]|]]>")


@dataclass(frozen=True, slots=True)
class WorkflowParameter:
    """One workflow-level ``<Parameter>`` of ``jobDescription.xml``.

    Attributes:
        name: the parameter name (``JobName``, ``arguments``, ...).
        type: ``"JDL"`` for JDL attributes, ``"string"`` for the workflow's own parameters.
        value: the value as DIRAC writes it (lists joined with ``;``).
        description: DIRAC's description text.

    Usage: ``WorkflowParameter("JobName", "JDL", "scan-%n", "User specified name")``
    """

    name: str
    type: str
    value: str
    description: str


def check_xml_value(attribute: str, value: str) -> None:
    """Check that a value can be written into ``jobDescription.xml`` and read back unchanged.

    XML 1.0 cannot carry most control characters, turns ``\\r`` into ``\\n``, and DIRAC writes
    values inside ``<![CDATA[...]]>`` sections that ``]]>`` would close.

    Raises:
        UnsafeValueError: naming the character (or ``]]>``) and the attribute.

    Usage: ``check_xml_value("arguments", "-n 5")``
    """
    match = _XML_UNSAFE.search(value)
    if match is not None:
        character = match.group()
        raise UnsafeValueError(
            f"{attribute}: the value {value!r} holds {character!r} at position {match.start()}, "
            "which DIRAC's workflow XML (jobDescription.xml) cannot carry unchanged; remove it",
            attribute=attribute,
            value=value,
            character=character,
        )


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(value: str) -> str:
    return _text(value).replace('"', "&quot;")


def _parameter(name: str, ptype: str, value: str, description: str) -> str:
    return (
        f'<Parameter name="{_attr(name)}" type="{ptype}" linked_module="" linked_parameter="" '
        f'in="True" out="False" description="{_attr(description)}">'
        f"<value><![CDATA[{value}]]></value></Parameter>\n"
    )


_MODULE_DEFINITION = (
    "<ModuleDefinition>\n<body><![CDATA[\nfrom DIRAC.Workflow.Modules.Script import Script\n]]>"
    "</body>\n<descr_short></descr_short>\n<description><![CDATA[ The Script class provides a "
    "simple way for users to specify an executable\n    or file to run (and is also a simple "
    "example of a workflow module).\n]]></description>\n<origin></origin>\n<required></required>"
    "\n<type>Script</type>\n<version>0.0</version>\n</ModuleDefinition>\n"
)

_STEP_PARAMETERS = (
    ("executable", "Executable Script"),
    ("arguments", "Arguments for executable Script"),
    ("applicationLog", "Log file name"),
)


def render_workflow(
    name: str, parameters: Iterable[WorkflowParameter], steps: Sequence[Step]
) -> str:
    """Write ``jobDescription.xml`` in the layout of DIRAC's ``Workflow.toXML()``.

    Args:
        name: the workflow name (DIRAC uses the job name).
        parameters: the workflow-level parameters, in order.
        steps: the script steps; ``arguments`` as the XML must hold them (empty for a step whose
            arguments travel in the JDL as ``-p arguments='...'``).

    Raises:
        UnsafeValueError: a value the XML cannot carry (see :func:`check_xml_value`).

    Usage: ``render_workflow("job", [], [Step(1, "/bin/echo", "hi", "Script1_echo.log")])``
    """
    check_xml_value("JobName", name)
    out = [
        "<Workflow>\n<descr_short></descr_short>\n<description><![CDATA[]]></description>\n",
        f"<name>{_text(name)}</name>\n<origin></origin>\n<type></type>\n<version>0.0</version>\n",
    ]
    for par in parameters:
        check_xml_value(par.name, par.value)
        out.append(_parameter(par.name, par.type, par.value, par.description))
    if steps:
        out.append(_MODULE_DEFINITION)
    for step in steps:
        out.append(
            "<StepDefinition>\n<descr_short></descr_short>\n<description><![CDATA[]]>"
            f"</description>\n<origin></origin>\n<type>ScriptStep{step.number}</type>\n"
            "<version>0.0</version>\n"
        )
        out.extend(_parameter(pname, "string", "", descr) for pname, descr in _STEP_PARAMETERS)
        out.append(
            "<ModuleInstance>\n<descr_short></descr_short>\n<name>Script</name>\n"
            "<type>Script</type>\n</ModuleInstance>\n</StepDefinition>\n"
        )
    for step in steps:
        for attribute, value in (
            ("executable", step.executable),
            ("arguments", step.arguments),
            ("applicationLog", step.log_file),
        ):
            check_xml_value(attribute, value)
        out.append(
            "<StepInstance>\n<descr_short></descr_short>\n"
            f"<name>RunScriptStep{step.number}</name>\n<type>ScriptStep{step.number}</type>\n"
        )
        values = (step.executable, step.arguments, step.log_file)
        out.extend(
            _parameter(pname, "string", value, descr)
            for (pname, descr), value in zip(_STEP_PARAMETERS, values, strict=True)
        )
        out.append("</StepInstance>\n")
    out.append("</Workflow>\n")
    return "".join(out)


def _parameters_of(element: Element) -> dict[str, str]:
    values: dict[str, str] = {}
    for par in element.findall("Parameter"):
        name = par.get("name", "")
        value = par.find("value")
        values[name] = "" if value is None or value.text is None else value.text
    return values


def _root(xml: str) -> Element:
    from xml.etree import ElementTree  # lazy: keeps `import aiodirac` fast

    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise JDLSyntaxError(f"not a workflow XML: {exc}", position=exc.position[1]) from exc
    if root.tag != "Workflow":
        raise JDLSyntaxError(f"not a workflow XML: root element <{root.tag}>, not <Workflow>")
    return root


def parse_workflow(xml: str) -> tuple[Step, ...]:
    """Read the script steps of a ``jobDescription.xml`` (DIRAC's or ours), in order.

    Steps are numbered 1, 2, ... in the order of their ``StepInstance`` elements, as
    ``dirac-jobexec`` runs them. Arguments are the XML's own (see :func:`steps_for` for the
    ``-p`` overrides a concrete job adds).

    Raises:
        JDLSyntaxError: text that is not a workflow XML.

    Usage: ``[s.executable for s in parse_workflow(open("jobDescription.xml").read())]``
    """
    root = _root(xml)
    steps = []
    for number, instance in enumerate(root.findall("StepInstance"), start=1):
        values = _parameters_of(instance)
        steps.append(
            Step(
                number,
                values.get("executable", ""),
                values.get("arguments", ""),
                values.get("applicationLog", ""),
            )
        )
    return tuple(steps)


def workflow_parameters(xml: str) -> dict[str, str]:
    """The workflow-level parameters of a ``jobDescription.xml``, by name.

    Usage: ``workflow_parameters(xml)["JobName"]``
    """
    return _parameters_of(_root(xml))


def jobexec_overrides(arguments: str) -> dict[str, str]:
    """The ``-p name=value`` workflow parameters of a ``dirac-jobexec`` command line.

    The JDL ``Arguments`` is run through a shell on the worker node, so it is split like a shell
    would. Like ``dirac-jobexec``, a value is stripped and a ``{a, b}`` value becomes ``a;b``.
    Unlike DIRAC 9.1 (which splits on every ``=`` and fails on a value holding one), the name ends
    at the first ``=``.

    Raises:
        JDLSyntaxError: unbalanced quotes, or a ``-p`` without ``name=value``.

    Usage: ``jobexec_overrides("jobDescription.xml -p arguments='a b'")`` -> ``{"arguments": "a b"}``
    """
    import shlex  # lazy: only setters and readers of Arguments need it

    try:
        words = shlex.split(arguments)
    except ValueError as exc:
        raise JDLSyntaxError(f"Arguments {arguments!r} cannot be split: {exc}") from exc
    overrides: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        parameter: str | None = None
        if word in ("-p", "--parameter"):
            if index + 1 >= len(words):
                raise JDLSyntaxError(f"Arguments {arguments!r}: '-p' without a value")
            parameter = words[index + 1]
            index += 1
        elif word.startswith("--parameter="):
            parameter = word[len("--parameter=") :]
        elif word.startswith("-p") and len(word) > 2:
            parameter = word[2:]
        index += 1
        if parameter is None:
            continue
        name, sep, value = parameter.partition("=")
        if not sep:
            raise JDLSyntaxError(f"Arguments {arguments!r}: '-p {parameter}' is not name=value")
        value = value.strip()
        if value.startswith("{"):
            value = ";".join(value[1:-1].replace('"', "").replace(" ", "").split(","))
        overrides[name] = value
    return overrides


def steps_for(attributes: Mapping[str, JDLValue], workflow_xml: str) -> tuple[Step, ...]:
    """The steps ``dirac-jobexec`` runs for one concrete job.

    Reads the steps of ``workflow_xml`` and applies the ``-p`` overrides found in the job's
    ``Arguments``: a ``-p arguments=...`` value replaces the arguments of every step whose own
    arguments are blank, exactly as DIRAC's ``Script`` module does.

    Args:
        attributes: the concrete job's JDL attributes (placeholders already substituted).
        workflow_xml: the job's ``jobDescription.xml``.

    Raises:
        JDLSyntaxError: unreadable XML or Arguments.

    Usage: ``steps_for(parse_jdl(jdl_text), xml_text)``
    """
    steps = parse_workflow(workflow_xml)
    raw = attributes.get("Arguments", "")
    overrides = jobexec_overrides(raw if isinstance(raw, str) else str(raw))
    shared = overrides.get("arguments")
    if shared is None:
        shared = workflow_parameters(workflow_xml).get("arguments", "")
    if not shared.strip():
        return steps
    return tuple(
        Step(step.number, step.executable, shared, step.log_file)
        if not step.arguments.strip()
        else step
        for step in steps
    )
