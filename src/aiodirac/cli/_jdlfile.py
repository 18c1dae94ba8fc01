"""A hand-written DIRAC JDL file turned into a :class:`~aiodirac.Job`, through its setters.

``aiodirac submit job.jdl`` takes the JDL users write for ``dirac-wms-job-submit``::

    [
      Executable = "/bin/echo";
      Arguments = "hello %s";
      JobName = "hello_%n";
      Parameters = {"a", "b", "c"};
      OutputSandbox = {"std.out", "std.err"};
    ]

Every attribute goes through the ``Job`` setter DIRAC would use, so it is validated the same
way and the job is rendered exactly as one built in Python. DIRAC's parametric forms are
understood: ``Parameters = {...}`` or ``Parameters = N`` with ``ParameterStart`` and
``ParameterStep`` (the value is ``%s``), and named ``Parameters.<name> = {...}`` (``%(name)s``).
An attribute with no setter is refused with its name, rather than dropped.

Usage: ``job = job_from_jdl(Path("job.jdl").read_text(), "job.jdl")``
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._common import UsageProblem

if TYPE_CHECKING:
    from aiodirac._job._job import Job
    from aiodirac._job._spec import JDLValue

__all__ = ["SUPPORTED", "job_from_jdl"]

#: The sequence name given to DIRAC's unnamed ``Parameters`` (its ``%s`` placeholder).
UNNAMED = "value"
_NAMED = re.compile(r"^Parameters\.([A-Za-z_][A-Za-z0-9_]*)$")
_HANDLED_ELSEWHERE = frozenset(
    {
        "Executable",
        "Arguments",
        "StdOutput",
        "StdError",
        "Parameters",
        "ParameterStart",
        "ParameterStep",
        "OutputSE",
        "OutputPath",
    }
)


def _strings(value: JDLValue) -> list[str]:
    return list(value) if isinstance(value, tuple) else [str(value)]


def _text(value: JDLValue, attribute: str, source: str) -> str:
    if isinstance(value, tuple):
        raise UsageProblem(f"{source}: {attribute} must be a single value, not a list")
    return str(value)


def _integer(value: JDLValue, attribute: str, source: str) -> int:
    text = _text(value, attribute, source)
    try:
        return int(text)
    except ValueError:
        raise UsageProblem(f"{source}: {attribute} = {text!r} is not an integer") from None


def _setters(job: Job, source: str) -> dict[str, Callable[[JDLValue], object]]:
    def integer(attribute: str) -> Callable[[JDLValue], int]:
        return lambda v: _integer(v, attribute, source)

    return {
        "JobName": lambda v: job.setName(_text(v, "JobName", source)),
        "CPUTime": lambda v: job.setCPUTime(integer("CPUTime")(v)),
        "MaxCPUTime": lambda v: job.setCPUTime(integer("MaxCPUTime")(v)),
        "InputSandbox": lambda v: job.setInputSandbox(_strings(v)),
        "OutputSandbox": lambda v: job.setOutputSandbox(_strings(v)),
        "InputData": lambda v: job.setInputData(_strings(v)),
        "Site": lambda v: job.setDestination(_strings(v)),
        "BannedSites": lambda v: job.setBannedSites(_strings(v)),
        "BannedSite": lambda v: job.setBannedSites(_strings(v)),
        "Platform": lambda v: job.setPlatform(_text(v, "Platform", source)),
        "Tags": lambda v: job.setTag(_strings(v)),
        "Tag": lambda v: job.setTag(_strings(v)),
        "Priority": lambda v: job.setPriority(integer("Priority")(v)),
        "JobGroup": lambda v: job.setJobGroup(_text(v, "JobGroup", source)),
        "LogLevel": lambda v: job.setLogLevel(_text(v, "LogLevel", source)),
        "JobType": lambda v: job.setType(_text(v, "JobType", source)),
        "NumberOfProcessors": lambda v: job.setNumberOfProcessors(integer("NumberOfProcessors")(v)),
    }


#: JDL attributes ``aiodirac submit job.jdl`` understands.
SUPPORTED = frozenset(
    {
        *_HANDLED_ELSEWHERE,
        "OutputData",
        "JobName",
        "CPUTime",
        "MaxCPUTime",
        "InputSandbox",
        "OutputSandbox",
        "InputData",
        "Site",
        "BannedSites",
        "BannedSite",
        "Platform",
        "Tags",
        "Tag",
        "Priority",
        "JobGroup",
        "LogLevel",
        "JobType",
        "NumberOfProcessors",
    }
)


def _unnamed_values(attrs: dict[str, JDLValue], source: str) -> list[str] | None:
    if "Parameters" not in attrs:
        for key in ("ParameterStart", "ParameterStep"):
            if key in attrs:
                raise UsageProblem(f"{source}: {key} without Parameters")
        return None
    value = attrs["Parameters"]
    if isinstance(value, tuple):
        if "ParameterStart" in attrs or "ParameterStep" in attrs:
            raise UsageProblem(f"{source}: ParameterStart/Step go with Parameters = <count>")
        return list(value)
    count = _integer(value, "Parameters", source)
    start = attrs.get("ParameterStart", 0)
    step = attrs.get("ParameterStep", 1)
    numbers: list[float] = []
    first = float(_text(start, "ParameterStart", source))
    delta = float(_text(step, "ParameterStep", source))
    if count < 1:
        raise UsageProblem(f"{source}: Parameters = {count} must be at least 1")
    numbers = [first + i * delta for i in range(count)]
    return [str(int(n)) if n.is_integer() else repr(n) for n in numbers]


def job_from_jdl(text: str, source: str) -> Job:
    """Build a Job from a DIRAC JDL (see the module docstring).

    Raises:
        JDLSyntaxError: the text is not a JDL.
        UsageProblem: no Executable, an attribute with no setter, a JDL made by DIRAC's ``Job``.
        JobDescriptionError: a value a setter refuses.

    Usage: ``job_from_jdl('[Executable = "/bin/ls";]', "ls.jdl")``
    """
    from aiodirac import Job, JobDescriptionError, parse_jdl

    attrs = parse_jdl(text)
    if "Executable" not in attrs:
        raise UsageProblem(f"{source}: the JDL has no Executable")
    executable = _text(attrs["Executable"], "Executable", source)
    if executable.strip() == "dirac-jobexec":
        raise UsageProblem(
            f"{source} was written by DIRAC's Job class (Executable = dirac-jobexec): submit the "
            "Python script that built it instead (aiodirac submit script.py)"
        )
    unknown = sorted(k for k in attrs if k not in SUPPORTED and not _NAMED.match(k))
    if unknown:
        raise UsageProblem(
            f"{source}: JDL attribute(s) {', '.join(unknown)} not supported by 'aiodirac submit' "
            "(describe the job in a Python file with Job's setters instead)"
        )
    job = Job(
        stdout=_text(attrs.get("StdOutput", "std.out"), "StdOutput", source),
        stderr=_text(attrs.get("StdError", "std.err"), "StdError", source),
    )
    unnamed = _unnamed_values(attrs, source)

    def placeholders(value: str) -> str:
        # DIRAC's unnamed parameter is %s; Job's sequences are named.
        return value.replace("%s", f"%({UNNAMED})s") if unnamed is not None else value

    arguments = placeholders(_text(attrs.get("Arguments", ""), "Arguments", source))
    job.setExecutable(executable, arguments=arguments)
    setters = _setters(job, source)
    for key, value in attrs.items():
        setter = setters.get(key)
        if setter is None:
            continue
        if key == "JobName":
            value = placeholders(_text(value, key, source))
        try:
            setter(value)
        except JobDescriptionError as exc:
            if not exc.expected:
                raise
            # the setter names its Python argument; the file names a JDL attribute
            raise UsageProblem(
                f"{source}: {key} = {exc.value!r} is not accepted: expected {exc.expected}"
            ) from None
    if "OutputData" in attrs:
        se = attrs.get("OutputSE")
        job.setOutputData(
            _strings(attrs["OutputData"]),
            outputSE=None if se is None else _strings(se),
            outputPath=_text(attrs.get("OutputPath", ""), "OutputPath", source),
        )
    if unnamed is not None:
        job.setParameterSequence(UNNAMED, unnamed)
    for key, value in attrs.items():
        named = _NAMED.match(key)
        if named:
            job.setParameterSequence(named[1], _strings(value))
    return job
