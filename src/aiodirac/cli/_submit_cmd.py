"""``aiodirac submit``: a JDL file, a Python file defining a Job, or a command with parameters.

Usage: ``aiodirac submit --param n=1..100 -- /bin/echo hello '%(n)s'``
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import (
    CommandAfterOptions,
    ExitCode,
    Options,
    command,
    make_client,
    run,
)
from ._jobspec import JobOptions, build_jobs
from ._output import Output, compact_ids

if TYPE_CHECKING:
    from aiodirac._client import AsyncDirac
    from aiodirac._job._job import Job

__all__ = ["register", "submit_jobs"]

SpecArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="A .jdl file, a .py file defining `job` (or `j`), or a command and its arguments "
        "(put `--` before a command that has options of its own).",
        show_default=False,
        metavar="JDL|PY|COMMAND...",
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="NAME=VALUES",
        help="A parameter sequence: name=a,b,c or name=1..1000 (inclusive); one job per value, "
        "%(name)s in the command replaced. Several --param are zipped, as DIRAC does.",
        show_default=False,
    ),
]
NameOpt = Annotated[
    str | None,
    typer.Option(
        "--name", metavar="NAME", help="Job name (%n: the job's index).", show_default=False
    ),
]
CpuOpt = Annotated[
    int | None,
    typer.Option(
        "--cpu-time",
        metavar="SECONDS",
        help="CPU time limit in seconds.",
        min=1,
        show_default=False,
    ),
]
InputOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        metavar="PATH",
        help="A file or folder for the input sandbox (repeat).",
        show_default=False,
    ),
]
OutputOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--output",
        "-o",
        metavar="PATTERN",
        help="An output sandbox file pattern (repeat).",
        show_default=False,
    ),
]
JournalOpt = Annotated[
    Path | None,
    typer.Option(
        "--journal",
        "-j",
        metavar="FILE",
        help="Campaign journal (SQLite): running again with it submits nothing twice.",
        show_default=False,
    ),
]


def job_options(
    name: str | None,
    cpu_time: int | None,
    inputs: list[str] | None,
    outputs: list[str] | None,
    params: list[str] | None,
) -> JobOptions:
    """The job-shaping options as one value."""
    return JobOptions(
        name=name,
        cpu_time=cpu_time,
        inputs=tuple(inputs or ()),
        outputs=tuple(outputs or ()),
        params=tuple(params or ()),
    )


async def submit_jobs(dirac: AsyncDirac, jobs: list[Job], out: Output) -> list[int]:
    """Submit with a progress bar of confirmed jobs; return the IDs in job order.

    Raises:
        SubmissionError: some chunks failed for good (``.submitted`` has the others).

    Usage: ``ids = await submit_jobs(dirac, jobs, out)``
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    total = sum(len(job) for job in jobs)
    found: dict[int, int] = {}
    with out.progress(
        TextColumn("[bold]Submitting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("jobs"),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("submit", total=total)
        async with dirac.submit_stream(jobs[0] if len(jobs) == 1 else jobs) as stream:
            async for submitted in stream:
                found[submitted.index] = submitted.job_id
                bar.advance(task)
    return [found[i] for i in sorted(found)]


def _report(out: Output, ids: list[int], journal: Path | None, failures: tuple[str, ...]) -> None:
    if out.json:
        out.data(
            {
                "job_ids": ids,
                "count": len(ids),
                "journal": None if journal is None else str(journal),
                "failures": list(failures),
            }
        )
        return
    if out.opts.quiet:
        out.result(compact_ids(ids))
    elif len(ids) == 1:
        out.result(f"Submitted job {ids[0]}")
    else:
        out.result(f"Submitted {len(ids)} jobs: {compact_ids(ids)}")
    for failure in failures:
        out.warn(failure)


def register(app: typer.Typer) -> None:
    """Add ``submit`` to the app."""

    @command(app, "submit", cls=CommandAfterOptions)
    def submit(
        opts: Options,
        spec: SpecArg = None,
        param: ParamOpt = None,
        name: NameOpt = None,
        cpu_time: CpuOpt = None,
        input_: InputOpt = None,
        output: OutputOpt = None,
        journal: JournalOpt = None,
    ) -> None:
        """Submit a job (one, or one per parameter value) and print the job IDs.

        \b
        aiodirac submit job.jdl
        aiodirac submit myjob.py
        aiodirac submit --name hello -- /bin/echo hello
        aiodirac submit -p n=1..100 -o 'result-*.txt' -- ./run.sh '%(n)s'
        """
        from aiodirac import SubmissionError

        out = Output(opts)
        shape = job_options(name, cpu_time, input_, output, param)

        async def body() -> int:
            jobs = build_jobs(spec or [], shape)
            async with make_client(
                opts, journal=None if journal is None else str(journal)
            ) as dirac:
                try:
                    ids = await submit_jobs(dirac, jobs, out)
                except SubmissionError as exc:
                    if not exc.submitted:
                        raise
                    _report(out, list(exc.submitted), journal, exc.failures or (str(exc),))
                    return ExitCode.JOBS_FAILED
            _report(out, ids, journal, ())
            return ExitCode.OK

        run(opts, body)
