"""Submit chunks for the DiracX tests, built by hand as the job layer builds them."""

from __future__ import annotations

from collections.abc import Sequence

from aiodirac._job._spec import ConcreteJob, JDLValue, Step, SubmitChunk
from aiodirac._job._workflow import render_workflow


def seed_steps() -> tuple[Step, ...]:
    """The seed job's three steps."""
    return (
        Step(1, "/bin/echo", "hello", "Script1_echo.log"),
        Step(2, "/bin/hostname", "", "Script2_hostname.log"),
        Step(3, "/bin/echo", "hello again", "Script3_echo.log"),
    )


def make_chunk(
    indices: Sequence[int],
    *,
    name: str = "API",
    steps: tuple[Step, ...] | None = None,
    job_group: str | None = None,
    local_sandbox: Sequence[str] = (),
    extra: dict[str, JDLValue] | None = None,
    cpu_time: int = 500,
) -> SubmitChunk:
    """A parametric chunk: JobName ``<name>`` or ``<name>-<index>`` (several jobs), param ``n``."""
    steps = steps if steps is not None else seed_steps()
    values = tuple(str(i) for i in indices)
    job_name = name if len(values) == 1 and "%" not in name else f"{name}-%(n)s"
    attributes: dict[str, JDLValue] = {
        "Executable": "dirac-jobexec",
        "Arguments": "jobDescription.xml -o LogLevel=INFO",
        "JobName": job_name,
        "CPUTime": cpu_time,
        "StdOutput": "std.out",
        "StdError": "std.err",
        "OutputSandbox": ("std.out", "std.err", *(s.log_file for s in steps)),
        "InputSandbox": (*local_sandbox, "jobDescription.xml"),
        "Parameters.n": values,
        "Parameters": len(values),
        "n": "%(n)s",
    }
    if job_group is not None:
        attributes["JobGroup"] = job_group
    if extra:
        attributes.update(extra)
    jobs = []
    for value in values:
        concrete = {
            k: v for k, v in attributes.items() if k not in ("Parameters", "Parameters.n", "n")
        }
        concrete["JobName"] = job_name.replace("%(n)s", value)
        concrete["n"] = value
        jobs.append(
            ConcreteJob(index=int(value), attributes=concrete, steps=steps, parameters={"n": value})
        )
    return SubmitChunk(
        attributes=attributes,
        workflow_xml=render_workflow(name.replace("%(n)s", ""), [], steps),
        jobs=tuple(jobs),
        local_sandbox=tuple(local_sandbox),
    )
