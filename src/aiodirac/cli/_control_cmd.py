"""``aiodirac kill|delete|reschedule``: change jobs' status the way DIRAC allows.

Usage: ``aiodirac kill 12-40``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import typer

from ._common import ExitCode, Options, command, compact_ids, make_client, one_line, run
from ._ids import IdsArg, JournalIdsOpt, check_journal, resolve_ids
from ._output import Output

if TYPE_CHECKING:
    from aiodirac._client import AsyncDirac

__all__ = ["register"]

Action = Literal["kill", "delete", "reschedule"]
_PAST = {"kill": "Killed", "delete": "Deleted", "reschedule": "Rescheduled"}
_HELP = {
    "kill": "Kill jobs: running ones are stopped, waiting ones never start.",
    "delete": "Delete jobs (running ones are killed first, as DIRAC does).",
    "reschedule": "Run jobs again from the start (DIRAC's reschedule of Failed or Done jobs).",
}


async def apply(
    dirac: AsyncDirac, action: Action, ids: list[int]
) -> tuple[list[int], list[int], str]:
    """Apply ``action``; return (done, refused, why refused) instead of raising for refusals.

    Usage: ``done, refused, why = await apply(dirac, "kill", ids)``
    """
    from aiodirac import InvalidTransitionError

    method = {"kill": dirac.kill, "delete": dirac.delete, "reschedule": dirac.reschedule}[action]
    try:
        return await method(ids), [], ""
    except InvalidTransitionError as exc:
        refused = set(exc.job_ids)
        done = [job_id for job_id in ids if job_id not in refused]
        return done, [job_id for job_id in ids if job_id in refused], one_line(str(exc))


def _make(app: typer.Typer, action: Action) -> None:
    def act(opts: Options, ids: IdsArg = None, journal: JournalIdsOpt = None) -> None:
        out = Output(opts)

        async def body() -> int:
            async with make_client(opts, journal=check_journal(journal), quick=True) as dirac:
                wanted = await resolve_ids(dirac, ids, journal)
                done, refused, why = await apply(dirac, action, wanted)
            if out.json:
                out.data({"action": action, "done": done, "refused": refused, "error": why or None})
            else:
                if done:
                    out.result(f"{_PAST[action]} {len(done)} job(s): {compact_ids(done)}")
                if refused:
                    out.warn(why)
            return ExitCode.JOBS_FAILED if refused else ExitCode.OK

        run(opts, body)

    act.__doc__ = _HELP[action]
    act.__name__ = action
    command(app, action)(act)


def register(app: typer.Typer) -> None:
    """Add ``kill``, ``delete`` and ``reschedule`` to the app."""
    actions: tuple[Action, ...] = ("kill", "delete", "reschedule")
    for action in actions:
        _make(app, action)
