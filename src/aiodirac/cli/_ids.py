"""Which jobs a command acts on: IDs on the command line, on stdin, or a campaign journal's.

Usage: ``wanted = await resolve_ids(dirac, ids, journal)``
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import UsageProblem, parse_ids

if TYPE_CHECKING:
    from aiodirac._client import AsyncDirac

__all__ = ["IdsArg", "JournalIdsOpt", "check_journal", "resolve_ids"]

IdsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Job IDs: 12, 12,13, 12-40 (inclusive), or - to read them from stdin.",
        show_default=False,
        metavar="IDS...",
    ),
]
JournalIdsOpt = Annotated[
    Path | None,
    typer.Option(
        "--journal",
        "-j",
        metavar="FILE",
        help="A campaign journal: act on every job it recorded (instead of IDS).",
        show_default=False,
    ),
]


def check_journal(journal: Path | None, *, must_exist: bool = True) -> str | None:
    """The journal path for the client, refusing a missing file where one must exist.

    Opening a journal creates it, so a typo in ``--journal`` must not silently start an empty one.

    Raises:
        UsageProblem: ``must_exist`` and there is no such file.

    Usage: ``AsyncDirac(journal=check_journal(path))``
    """
    if journal is None:
        return None
    if must_exist and not journal.is_file():
        raise UsageProblem(f"no campaign journal at {journal}")
    return str(journal)


async def resolve_ids(dirac: AsyncDirac, ids: list[str] | None, journal: Path | None) -> list[int]:
    """The job IDs given, or the journal's, never both and never none.

    Raises:
        UsageProblem: neither or both given, a bad ID, or an empty journal.

    Usage: ``wanted = await resolve_ids(dirac, ["12-20"], None)``
    """
    if ids and journal is not None:
        raise UsageProblem("give job IDs or --journal, not both")
    if ids:
        wanted = parse_ids(ids)
        if not wanted:
            raise UsageProblem("no job IDs given")
        return wanted
    if journal is None or dirac.journal is None:
        raise UsageProblem("give job IDs (e.g. 12 or 12-40) or --journal FILE")
    wanted = await dirac.journal.job_ids()
    if not wanted:
        raise UsageProblem(f"the journal {journal} holds no submitted jobs yet")
    return wanted
