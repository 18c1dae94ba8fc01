"""``aiodirac status``: the current state of jobs, as a table, counts, or JSON.

Usage: ``aiodirac status 12-40``; ``aiodirac status --journal scan.db --summary``
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import ExitCode, Options, command, make_client, run
from ._ids import IdsArg, JournalIdsOpt, check_journal, resolve_ids
from ._output import Output, counts_json, state_json

if TYPE_CHECKING:
    from aiodirac._job._status import JobState, JobStatus

__all__ = ["FAILED", "register", "summary_line"]

#: Statuses that make a command exit with 1 ("some jobs failed").
FAILED = frozenset({"Failed", "Killed"})

SummaryOpt = Annotated[
    bool, typer.Option("--summary", "-s", help="Only the number of jobs in each status.")
]


def summary_line(counts: Mapping[JobStatus, int], missing: int = 0) -> str:
    """``"12 jobs: 10 Done, 2 Running"``, in DIRAC's status order.

    Usage: ``out.result(summary_line(counts))``
    """
    total = sum(counts.values()) + missing
    parts = [f"{n} {status}" for status, n in counts_json(counts).items()]
    if missing:
        parts.append(f"{missing} not found")
    noun = "job" if total == 1 else "jobs"
    return f"{total} {noun}: " + (", ".join(parts) if parts else "none")


def print_states(out: Output, states: Sequence[JobState]) -> None:
    """The per-job table.

    Usage: ``print_states(out, list(states.values()))``
    """
    out.table(
        ["ID", "Status", "MinorStatus", "Site", "ApplicationStatus"],
        ([s.job_id, s.status, s.minor_status, s.site, s.application_status] for s in states),
        styles=[None, "status", None, None, None],
    )


def register(app: typer.Typer) -> None:
    """Add ``status`` to the app."""

    @command(app, "status")
    def status(
        opts: Options,
        ids: IdsArg = None,
        journal: JournalIdsOpt = None,
        summary: SummaryOpt = False,
    ) -> None:
        """Show jobs' Status, MinorStatus and Site.

        Exits with 1 when a job is Failed, Killed or unknown, 0 otherwise.
        """
        out = Output(opts)

        async def body() -> int:
            async with make_client(opts, journal=check_journal(journal), quick=True) as dirac:
                wanted = await resolve_ids(dirac, ids, journal)
                states = await dirac.status(wanted)
            missing = [job_id for job_id in wanted if job_id not in states]
            counts = Counter(s.status for s in states.values())
            if out.json:
                out.data(
                    {
                        "jobs": [] if summary else [state_json(s) for s in states.values()],
                        "counts": counts_json(counts),
                        "missing": missing,
                    }
                )
            else:
                if not summary:
                    print_states(out, list(states.values()))
                if summary or len(wanted) > 1:
                    out.result(summary_line(counts, len(missing)))
                out.missing(missing)
            failed = missing or any(str(s.status) in FAILED for s in states.values())
            return ExitCode.JOBS_FAILED if failed else ExitCode.OK

        run(opts, body)
