"""``aiodirac jobs`` (DIRAC's selectJobs) and ``aiodirac history`` (its getJobLoggingInfo).

Usage: ``aiodirac jobs --status Failed --job-group scan``; ``aiodirac history 12``
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import ExitCode, Options, command, make_client, run, usage_error
from ._output import Output

if TYPE_CHECKING:
    from aiodirac._job._monitoring import JobAttributes, LoggingRecord

__all__ = ["attributes_json", "record_json", "register"]


def _when(value: datetime | None) -> str:
    """A time for a table: UTC, to the second, as DIRAC shows it; ``-`` when unset."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def attributes_json(attrs: JobAttributes) -> dict[str, Any]:
    """A job's attributes as a JSON object (stable snake_case keys, ISO times).

    Usage: ``attributes_json(attrs)["status"]`` -> ``"Done"``
    """
    return {
        "job_id": attrs.job_id,
        "status": str(attrs.status),
        "minor_status": attrs.minor_status,
        "application_status": attrs.application_status,
        "site": attrs.site,
        "job_name": attrs.job_name,
        "job_group": attrs.job_group,
        "job_type": attrs.job_type,
        "owner": attrs.owner,
        "owner_group": attrs.owner_group,
        "vo": attrs.vo,
        "user_priority": attrs.user_priority,
        "reschedule_counter": attrs.reschedule_counter,
        "submission_time": _iso(attrs.submission_time),
        "last_update_time": _iso(attrs.last_update_time),
        "start_exec_time": _iso(attrs.start_exec_time),
        "end_exec_time": _iso(attrs.end_exec_time),
        "heart_beat_time": _iso(attrs.heart_beat_time),
        "reschedule_time": _iso(attrs.reschedule_time),
    }


def record_json(record: LoggingRecord) -> dict[str, Any]:
    """One status change as a JSON object.

    Usage: ``record_json(r)`` -> ``{"status": "Running", ..., "source": "JobWrapper"}``
    """
    return {
        "status": str(record.status),
        "minor_status": record.minor_status,
        "application_status": record.application_status,
        "time": record.time.isoformat(),
        "source": record.source,
    }


_ANY = " Repeat it for several values (any of them matches)."

StatusOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        metavar="STATUS",
        help="Only jobs in this Status (Done, Failed, Running...)." + _ANY,
        show_default=False,
    ),
]
MinorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--minor-status",
        metavar="TEXT",
        help="Only jobs with this MinorStatus." + _ANY,
        show_default=False,
    ),
]
AppOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--application-status",
        metavar="TEXT",
        help="Only jobs with this ApplicationStatus." + _ANY,
        show_default=False,
    ),
]
SiteOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--site", metavar="SITE", help="Only jobs at this site." + _ANY, show_default=False
    ),
]
OwnerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--owner", metavar="NAME", help="Only jobs of this owner." + _ANY, show_default=False
    ),
]
OwnerGroupOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--owner-group",
        metavar="GROUP",
        help="Only jobs of this owner group." + _ANY,
        show_default=False,
    ),
]
GroupOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--job-group",
        "--group",
        metavar="GROUP",
        help="Only jobs of this job group." + _ANY,
        show_default=False,
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="DATE",
        help="Only jobs updated on or after this UTC date (YYYY-MM-DD [HH:MM:SS]); "
        "default: today, as DIRAC's selectJobs.",
        show_default=False,
    ),
]
AllOpt = Annotated[
    bool, typer.Option("--all", help="Any last update time (instead of --since today).")
]
IdsOnlyOpt = Annotated[
    bool, typer.Option("--ids", help="Only the job IDs, one per line (for other commands).")
]


def register(app: typer.Typer) -> None:
    """Add ``jobs`` and ``history`` to the app."""

    @command(app, "jobs")
    def jobs(
        opts: Options,
        status: StatusOpt = None,
        minor_status: MinorOpt = None,
        application_status: AppOpt = None,
        site: SiteOpt = None,
        owner: OwnerOpt = None,
        owner_group: OwnerGroupOpt = None,
        job_group: GroupOpt = None,
        since: SinceOpt = None,
        any_time: AllOpt = False,
        ids_only: IdsOnlyOpt = False,
    ) -> None:
        """List the jobs that meet every condition (DIRAC's selectJobs), as a table.

        Conditions of different kinds must all hold; several values of one kind are
        alternatives. Without --since or --all, only jobs updated today (UTC) are listed.
        """
        if since is not None and any_time:
            usage_error("give --since or --all, not both")
        out = Output(opts)

        async def body() -> int:
            when = None if any_time else since or datetime.now(UTC).date()
            async with make_client(opts, quick=True) as dirac:
                ids = await dirac.select(
                    status=status,
                    minor_status=minor_status,
                    application_status=application_status,
                    site=site,
                    owner=owner,
                    owner_group=owner_group,
                    job_group=job_group,
                    since=when,
                )
                found = await dirac.attributes(ids) if ids and not ids_only else {}
            if out.json:
                if ids_only:
                    out.data({"job_ids": ids})
                else:
                    out.data({"jobs": [attributes_json(a) for a in found.values()]})
                return ExitCode.OK
            if ids_only:
                for job_id in ids:
                    out.result(str(job_id))
                return ExitCode.OK
            if not found:
                when_text = "" if any_time else f" updated since {since or 'today (UTC)'}"
                hint = "" if any_time else " (--all lists older ones)"
                out.note(f"no jobs{when_text} match{hint}")
                return ExitCode.OK
            out.table(
                [
                    "ID",
                    "Status",
                    "MinorStatus",
                    "ApplicationStatus",
                    "Site",
                    "Name",
                    "Group",
                    "Updated (UTC)",
                ],
                (
                    [
                        a.job_id,
                        a.status,
                        a.minor_status,
                        a.application_status,
                        a.site,
                        a.job_name,
                        a.job_group,
                        _when(a.last_update_time),
                    ]
                    for a in found.values()
                ),
                styles=[None, "status", None, None, None, None, None, None],
            )
            noun = "job" if len(found) == 1 else "jobs"
            out.note(f"{len(found)} {noun}")
            return ExitCode.OK

        run(opts, body)

    @command(app, "history")
    def history(
        opts: Options,
        job_id: Annotated[str, typer.Argument(help="The job ID.", show_default=False)],
    ) -> None:
        """Show a job's status history (DIRAC's getJobLoggingInfo): every change of Status,
        MinorStatus and ApplicationStatus, when it happened and who reported it."""
        out = Output(opts)

        async def body() -> int:
            from aiodirac import JobNotFoundError

            async with make_client(opts, quick=True) as dirac:
                try:
                    records = await dirac.logging_info(job_id)
                except JobNotFoundError:
                    out.warn(f"job {job_id}: not found")
                    return ExitCode.JOBS_FAILED
            if out.json:
                out.data({"job_id": int(job_id), "history": [record_json(r) for r in records]})
                return ExitCode.OK
            out.table(
                ["Time (UTC)", "Status", "MinorStatus", "ApplicationStatus", "Source"],
                (
                    [_when(r.time), r.status, r.minor_status, r.application_status, r.source]
                    for r in records
                ),
                styles=[None, "status", None, None, None],
            )
            return ExitCode.OK

        run(opts, body)
