"""Hand-made concrete jobs and chunks for the local backend's tests."""

from __future__ import annotations

from pathlib import Path

from aiodirac import ConcreteJob, Step, SubmitChunk
from aiodirac._job._spec import JDLValue


def concrete(
    *steps: tuple[str, str],
    index: int = 0,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    **attributes: JDLValue,
) -> ConcreteJob:
    """A concrete job with the given (executable, arguments) steps, as the Job layer makes it."""
    made = tuple(
        Step(n, exe, args, f"Script{n}_{Path(exe.split()[0]).name}.log")
        for n, (exe, args) in enumerate(steps, start=1)
    )
    logs = tuple(s.log_file for s in made)
    attrs: dict[str, JDLValue] = {
        "JobName": f"local-{index}",
        "StdOutput": "std.out",
        "StdError": "std.err",
        "OutputSandbox": (*outputs, *logs, "std.err", "std.out"),
    }
    if inputs:
        attrs["InputSandbox"] = (*inputs, "jobDescription.xml")
    attrs.update(attributes)
    return ConcreteJob(index, attrs, made)


def chunk_of(*jobs: ConcreteJob, local: tuple[str, ...] = ()) -> SubmitChunk:
    """A submission chunk of hand-made jobs."""
    return SubmitChunk({"JobName": "local"}, "<Workflow/>\n", tuple(jobs), local)
