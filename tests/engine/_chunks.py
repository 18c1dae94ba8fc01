"""Helpers shared by the engine tests: submit chunks built by hand, as the job layer would."""

from __future__ import annotations

from collections.abc import Iterator

from aiodirac._job._spec import ConcreteJob, Step, SubmitChunk


def make_chunk(
    indices: range | list[int],
    *,
    name: str = "scan",
    job_group: str | None = None,
    executable: str = "/bin/echo",
) -> SubmitChunk:
    """A parametric chunk of jobs ``name-<index>``, one parameter ``n`` = the global index."""
    values = tuple(str(i) for i in indices)
    attributes: dict[str, str | int | tuple[str, ...]] = {
        "Executable": "dirac-jobexec",
        "Arguments": "jobDescription.xml -o LogLevel=INFO",
        "JobName": f"{name}-%(n)s",
        "Parameters.n": values,
        "Parameters": len(values),
        "n": "%(n)s",
    }
    if job_group is not None:
        attributes["JobGroup"] = job_group
    jobs = []
    for value in values:
        concrete: dict[str, str | int | tuple[str, ...]] = {
            "Executable": "dirac-jobexec",
            "JobName": f"{name}-{value}",
            "n": value,
        }
        if job_group is not None:
            concrete["JobGroup"] = job_group
        jobs.append(
            ConcreteJob(
                index=int(value),
                attributes=concrete,
                steps=(Step(1, executable, f"hello {value}", "Script1_echo.log"),),
                parameters={"n": value},
            )
        )
    return SubmitChunk(
        attributes=attributes, workflow_xml=f"<Workflow>{name}</Workflow>", jobs=tuple(jobs)
    )


def make_chunks(total: int, size: int = 20, **kwargs: object) -> Iterator[SubmitChunk]:
    """``total`` jobs as consecutive chunks of ``size``."""
    for start in range(0, total, size):
        yield make_chunk(range(start, min(start + size, total)), **kwargs)  # type: ignore[arg-type]
