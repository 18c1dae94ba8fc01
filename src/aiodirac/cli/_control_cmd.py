"""``aiodirac kill|delete|reschedule``: change jobs' status the way DIRAC allows.

Usage: ``aiodirac kill 12-40``
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import typer

from ._common import ExitCode, Options, command, make_client, one_line, run
from ._ids import IdsArg, JournalIdsOpt, check_journal, resolve_ids
from ._output import Output, compact_ids, error_text

if TYPE_CHECKING:
    from aiodirac._client import AsyncDirac
    from aiodirac._job._status import JobState

__all__ = ["register"]

Action = Literal["kill", "delete", "reschedule"]
_PAST = {"kill": "Killed", "delete": "Deleted", "reschedule": "Rescheduled"}
_HELP = {
    "kill": "Kill jobs: running ones are stopped, waiting ones never start.",
    "delete": "Delete jobs (running ones are killed first, as DIRAC does).",
    "reschedule": "Run jobs again from the start (DIRAC's reschedule of Failed or Done jobs).",
}


@dataclass(frozen=True, slots=True)
class Applied:
    """What an action did to each job asked for.

    Attributes:
        done: jobs the action was applied to.
        already: jobs already where the action leads (killing a Killed job), with their status.
        ended: jobs that already ended, which DIRAC cannot kill, with their status.
        refused: jobs the backend refused, and its one-line explanation.
        missing: jobs the backend does not know.
    """

    done: list[int]
    already: dict[int, str]
    ended: dict[int, str]
    refused: tuple[list[int], str]
    missing: list[int]


def _settled(action: Action, state: JobState) -> Literal["already", "ended"] | None:
    """Why ``action`` has nothing to do on a job in ``state`` (``None``: ask the backend).

    Killing a Killed or Deleted job, or deleting a Deleted one, leaves it as asked; killing a job
    that already ended (Done, Failed) is refused, saying so.
    """
    status = str(state.status)
    if status == "Deleted" or (action == "kill" and status == "Killed"):
        return "already" if action in ("kill", "delete") else None
    if action == "kill" and state.status.final:
        return "ended"
    return None


async def apply(dirac: AsyncDirac, action: Action, ids: list[int]) -> Applied:
    """Apply ``action``, asking the jobs' status first so that unknown and already final jobs
    are told apart from refusals (one status request per page of IDs).

    Usage: ``applied = await apply(dirac, "kill", ids)``
    """
    from aiodirac import InvalidTransitionError

    states = await dirac.status(ids)
    missing = [job_id for job_id in ids if job_id not in states]
    already: dict[int, str] = {}
    ended: dict[int, str] = {}
    todo: list[int] = []
    for job_id in ids:
        state = states.get(job_id)
        if state is None:
            continue
        settled = _settled(action, state)
        if settled == "already":
            already[job_id] = str(state.status)
        elif settled == "ended":
            ended[job_id] = str(state.status)
        else:
            todo.append(job_id)
    method = {"kill": dirac.kill, "delete": dirac.delete, "reschedule": dirac.reschedule}[action]
    done: list[int] = []
    refused: tuple[list[int], str] = ([], "")
    if todo:
        try:
            done = await method(todo)
        except InvalidTransitionError as exc:
            done = [job_id for job_id in todo if job_id not in exc.job_ids]
            refused = (sorted(exc.job_ids), one_line(error_text(exc)))
    return Applied(done, already, ended, refused, missing)


def _by_status(jobs: dict[int, str]) -> str:
    """``"job 12 (Done)"`` or ``"3 jobs (2 Done, 1 Failed): 12-14"``."""
    if len(jobs) == 1:
        ((job_id, status),) = jobs.items()
        return f"job {job_id} ({status})"
    counts = Counter(jobs.values())
    mix = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"{len(jobs)} jobs ({mix}): {compact_ids(jobs)}"


def _explain(out: Output, action: Action, applied: Applied) -> None:
    """Say what was left as it was, what was refused and what is unknown."""
    if applied.already:
        out.result(f"{_by_status(applied.already)}: already final, nothing to {action}")
    if applied.ended:
        out.warn(f"{_by_status(applied.ended)}: already ended, cannot be killed")
    if applied.refused[0]:
        out.warn(applied.refused[1])
    out.missing(applied.missing)


def _make(app: typer.Typer, action: Action) -> None:
    def act(opts: Options, ids: IdsArg = None, journal: JournalIdsOpt = None) -> None:
        out = Output(opts)

        async def body() -> int:
            async with make_client(opts, journal=check_journal(journal), quick=True) as dirac:
                wanted = await resolve_ids(dirac, ids, journal)
                applied = await apply(dirac, action, wanted)
            refused = sorted([*applied.ended, *applied.refused[0]])
            if out.json:
                reasons = [
                    f"{_by_status(applied.ended)}: already ended" if applied.ended else "",
                    applied.refused[1],
                ]
                out.data(
                    {
                        "action": action,
                        "done": applied.done,
                        "already": sorted(applied.already),
                        "refused": refused,
                        "missing": applied.missing,
                        "error": "; ".join(r for r in reasons if r) or None,
                    }
                )
            else:
                if applied.done:
                    out.result(
                        f"{_PAST[action]} {len(applied.done)} job(s): {compact_ids(applied.done)}"
                    )
                _explain(out, action, applied)
            failed = refused or applied.missing
            return ExitCode.JOBS_FAILED if failed else ExitCode.OK

        run(opts, body)

    act.__doc__ = _HELP[action]
    act.__name__ = action
    command(app, action)(act)


def register(app: typer.Typer) -> None:
    """Add ``kill``, ``delete`` and ``reschedule`` to the app."""
    actions: tuple[Action, ...] = ("kill", "delete", "reschedule")
    for action in actions:
        _make(app, action)
