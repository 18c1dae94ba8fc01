"""``aiodirac local agent|ps|clean``: the local backend's agent, its jobs, and its state folder.

The local backend keeps its jobs in a state folder (``$AIODIRAC_HOME``, else
``~/.local/share/aiodirac``) and runs them in one detached agent process, started on demand by
any client and stopping by itself when idle. These commands look after it by hand.

Usage: ``aiodirac local agent status``; ``aiodirac local ps``; ``aiodirac local clean``
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import ExitCode, Options, command, run
from ._output import Output

if TYPE_CHECKING:
    from aiodirac.backends.local import LocalBackend

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
    from aiodirac import LocalBackend
    from aiodirac._config import choose_backend

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
                before = await backend.agent_pid()
                changed = False
                if action is AgentAction.START:
                    changed = await backend.start_agent()
                elif action is AgentAction.STOP and before is not None:
                    if not await backend.stop_agent():
                        out.warn(f"the agent (pid {before}) did not stop in time")
                        return ExitCode.SERVICE
                    changed = True
                pid = await backend.agent_pid()
                where = str(backend.home)
            if out.json:
                out.data(
                    {"home": where, "running": pid is not None, "pid": pid, "changed": changed}
                )
            elif action is AgentAction.STOP and changed:
                out.result(f"Stopped: agent pid {before} for {where}")
            elif pid is None:
                out.result(f"No agent running for {where}")
            else:
                verb = "Started" if changed else "Running"
                out.result(f"{verb}: agent pid {pid} for {where}")
            return ExitCode.OK

        run(opts, body)

    @command(local_app, "ps")
    def ps(
        opts: Options,
        status: Annotated[
            list[str] | None,
            typer.Option(
                "--status", "-s", metavar="STATUS", help="Only jobs in this status (repeat)."
            ),
        ] = None,
        limit: Annotated[
            int, typer.Option("--limit", "-n", metavar="N", help="At most N jobs (0: all).", min=0)
        ] = 50,
        home: HomeOpt = None,
    ) -> None:
        """List the jobs of the local state folder, newest first."""
        out = Output(opts)

        async def body() -> int:
            async with local_backend(home) as backend:
                folder = backend.home
                jobs = await backend.list_jobs(statuses=status or (), limit=limit or None)
            if out.json:
                out.data(
                    {
                        "home": str(folder),
                        "jobs": [
                            {
                                "job_id": j.job_id,
                                "name": j.name,
                                "job_group": j.job_group,
                                "status": j.status,
                                "minor_status": j.minor_status,
                                "site": j.site,
                                "submitted": j.submitted.isoformat(),
                                "updated": j.updated.isoformat(),
                            }
                            for j in jobs
                        ],
                    }
                )
                return ExitCode.OK
            if not jobs:
                out.result(f"No jobs in {folder}")
                return ExitCode.OK
            out.table(
                ["ID", "Status", "MinorStatus", "Name", "Updated"],
                ([j.job_id, j.status, j.minor_status, j.name, _age(j.updated)] for j in jobs),
                styles=[None, "status", None, None, None],
            )
            return ExitCode.OK

        run(opts, body)

    @command(local_app, "clean")
    def clean(
        opts: Options,
        older_than: Annotated[
            float,
            typer.Option(
                "--older-than",
                metavar="DAYS",
                min=0,
                help="Clean final jobs last changed more than DAYS days ago.",
            ),
        ] = 7.0,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Say what would be cleaned; change nothing.")
        ] = False,
        home: HomeOpt = None,
    ) -> None:
        """Delete old finished jobs and free their output archives and working folders.

        Jobs still queued or running are never touched; deleted jobs stay listed as Deleted.
        """
        from ._output import human_bytes

        out = Output(opts)

        async def body() -> int:
            async with local_backend(home) as backend:
                report = await backend.clean(older_than=older_than * 86400, dry_run=dry_run)
            if out.json:
                out.data(
                    {
                        "jobs": list(report.jobs),
                        "deleted": report.deleted,
                        "files_removed": report.files_removed,
                        "bytes_freed": report.bytes_freed,
                        "dry_run": report.dry_run,
                    }
                )
            else:
                verb = "Would clean" if dry_run else "Cleaned"
                out.result(
                    f"{verb} {len(report.jobs)} jobs: {report.files_removed} files or folders, "
                    f"{human_bytes(report.bytes_freed)}"
                )
            return ExitCode.OK

        run(opts, body)

    app.add_typer(local_app)


def _age(when: datetime) -> str:
    seconds = max(0.0, (datetime.now(UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"
