"""``aiodirac local agent|ps|clean``: the local backend's agent, its jobs, and its state folder.

The local backend keeps its jobs in a state folder (``$AIODIRAC_HOME``, else
``~/.local/share/aiodirac``) and runs them in one detached agent process, started on demand by
any client and stopping by itself when idle. These commands look after it by hand.

Usage: ``aiodirac local agent status``; ``aiodirac local agent stop``
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import ExitCode, Options, command, run
from ._output import Output

if TYPE_CHECKING:
    from aiodirac._local import LocalBackend

__all__ = ["register"]

local_app = typer.Typer(
    name="local",
    help="The local backend: its agent process, its jobs, its state folder.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        metavar="DIR",
        help="The state folder (default: $AIODIRAC_HOME, else ~/.local/share/aiodirac).",
        show_default=False,
    ),
]


class AgentAction(enum.StrEnum):
    """What ``local agent`` does."""

    STATUS = "status"
    START = "start"
    STOP = "stop"


def local_backend(home: Path | None) -> LocalBackend:
    """The local backend of ``home``, or of the configured state folder.

    Usage: ``async with local_backend(None) as backend: ...``
    """
    from aiodirac._config import choose_backend
    from aiodirac._local import LocalBackend

    if home is None:
        configured = choose_backend("local").local_home
        return LocalBackend(configured)
    return LocalBackend(home)


def register(app: typer.Typer) -> None:
    """Add the ``local`` group to the app."""

    @command(local_app, "agent")
    def agent(
        opts: Options,
        action: Annotated[
            AgentAction, typer.Argument(help="status (default), start or stop.")
        ] = AgentAction.STATUS,
        home: HomeOpt = None,
    ) -> None:
        """Show, start or stop the local agent that runs this state folder's jobs.

        Stopping it gives its running jobs back to the queue; the next client starts it again.
        """
        out = Output(opts)

        async def body() -> int:
            async with local_backend(home) as backend:
                changed = False
                if action is AgentAction.START:
                    changed = await backend.start_agent()
                elif action is AgentAction.STOP:
                    if not await backend.stop_agent():
                        out.warn("the agent did not stop in time")
                        return ExitCode.SERVICE
                    changed = True
                pid = await backend.agent_pid()
                where = str(backend.home)
            if out.json:
                out.data(
                    {"home": where, "running": pid is not None, "pid": pid, "changed": changed}
                )
            elif pid is None:
                out.result(f"No agent running for {where}")
            else:
                verb = "Started" if changed else "Running"
                out.result(f"{verb}: agent pid {pid} for {where}")
            return ExitCode.OK

        run(opts, body)

    app.add_typer(local_app)
