"""``aiodirac campaign run|resume|report``: submit, follow and download, with a journal.

Presentation only: ``run`` and ``resume`` run the library's :class:`~aiodirac.Campaign` (submit
once, follow, download each Done job's outputs while the others run, retry failed jobs by the
failure policy) and display its events and progress; ``report`` reads the journal alone, no
service is contacted.

The journal (the library's SQLite file) records everything the campaign did. What it cannot
hold, the command line that made the campaign, is kept beside it in ``<journal>.cli.json`` so
that ``resume`` needs nothing but the journal's name.

Usage::

    aiodirac campaign run --journal scan.db --dest out/ -p n=1..1000 -- ./scan.sh '%(n)s'
    aiodirac campaign run -j scan.db --attempts 5 --retry-by resubmit --retry-delay 0 -- ...
    aiodirac campaign resume --journal scan.db
    aiodirac campaign report --journal scan.db
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import (
    CommandAfterOptions,
    ExitCode,
    Options,
    UsageProblem,
    command,
    make_client,
    one_line,
    run,
    usage_error,
)
from ._jobspec import JobOptions, build_jobs
from ._output import Output, counts_json, describe_event
from ._output_cmd import DestOpt, job_error, result_json
from ._status_cmd import FAILED, summary_line
from ._submit_cmd import (
    CpuOpt,
    InputOpt,
    NameOpt,
    OutputOpt,
    ParamOpt,
    SpecArg,
    job_options,
)
from ._terminal_text import inert
from ._watch_cmd import EventsOpt, IntervalOpt

if TYPE_CHECKING:
    from rich.console import RenderableType

    from aiodirac import CampaignEvent, CampaignProgress, FailurePolicy
    from aiodirac._client import AsyncDirac
    from aiodirac._job._job import Job
    from aiodirac._journal import CampaignSummary
    from aiodirac._report import ReportData

__all__ = ["CampaignSpec", "register", "run_campaign"]

JournalOpt = Annotated[
    Path,
    typer.Option(
        "--journal",
        "-j",
        metavar="FILE",
        help="The campaign journal (SQLite; created if missing).",
    ),
]
NoDownloadOpt = Annotated[
    bool, typer.Option("--no-download", help="Submit and follow, but download nothing.")
]
AttemptsOpt = Annotated[
    int,
    typer.Option(
        "--attempts",
        metavar="N",
        help="Runs of a job at most, the first included (1: never retry a failed job).",
    ),
]
RetryByOpt = Annotated[
    str,
    typer.Option(
        "--retry-by",
        metavar="HOW",
        help="Retry a failed job by 'reschedule' (same job ID) or 'resubmit' (a new job).",
    ),
]
RetryDelayOpt = Annotated[
    float,
    typer.Option(
        "--retry-delay", metavar="SECONDS", help="Wait this long after a failure before retrying."
    ),
]
MaxFailedOpt = Annotated[
    float,
    typer.Option(
        "--max-failed",
        metavar="FRACTION",
        help="Stop retrying once more than this fraction of the jobs has failed (0-1).",
    ),
]
HtmlOpt = Annotated[
    Path | None,
    typer.Option(
        "--html",
        metavar="FILE",
        help="Also write the campaign's report with charts to FILE (one HTML file, no network "
        "needed to read it; needs pip install 'aiodirac[report]').",
    ),
]

campaign_app = typer.Typer(
    name="campaign",
    help="Campaigns with a journal: run, resume after a crash, report.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """What ``campaign run`` was asked to do, kept beside the journal for ``resume``.

    Relative paths are resolved against ``cwd``, the folder ``run`` was started from.

    Usage: ``CampaignSpec.load(Path("scan.db"))``
    """

    spec: tuple[str, ...]
    options: JobOptions
    dest: str
    download: bool
    cwd: str
    attempts: int = 3
    retry_by: str = "reschedule"
    retry_delay: float = 60.0
    max_failed: float = 0.25

    @staticmethod
    def path_for(journal: Path) -> Path:
        """Where the spec of ``journal`` is kept."""
        return journal.with_name(journal.name + ".cli.json")

    def policy(self) -> FailurePolicy:
        """The failure policy these options give.

        Raises:
            UsageProblem: a value the policy refuses.
        """
        from aiodirac import FailurePolicy, InvalidArgumentError

        try:
            return FailurePolicy(
                max_attempts=self.attempts,
                max_failed_fraction=self.max_failed,
                delay=self.retry_delay,
                method=self.retry_by,
            )
        except InvalidArgumentError as exc:
            # The library names its fields; the command line names its options.
            text = str(exc)
            for field, option in (
                ("FailurePolicy.max_attempts", "--attempts"),
                ("FailurePolicy.max_failed_fraction", "--max-failed"),
                ("FailurePolicy.delay", "--retry-delay"),
                ("FailurePolicy.method", "--retry-by"),
            ):
                text = text.replace(field, option)
            raise UsageProblem(text) from None

    def save(self, journal: Path) -> None:
        """Write the spec beside the journal (atomically)."""
        target = self.path_for(journal)
        data = {
            "version": 1,
            "spec": list(self.spec),
            "options": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.options).items()
            },
            "dest": self.dest,
            "download": self.download,
            "cwd": self.cwd,
            "attempts": self.attempts,
            "retry_by": self.retry_by,
            "retry_delay": self.retry_delay,
            "max_failed": self.max_failed,
        }
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, target)

    @classmethod
    def load(cls, journal: Path) -> CampaignSpec:
        """Read the spec kept beside ``journal``.

        Raises:
            UsageProblem: no journal, or no spec beside it (made by the library, not the CLI).
        """
        if not journal.is_file():
            raise UsageProblem(f"no campaign journal at {journal}")
        source = cls.path_for(journal)
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
            options = data["options"]
            return cls(
                spec=tuple(data["spec"]),
                options=JobOptions(
                    name=options["name"],
                    cpu_time=options["cpu_time"],
                    inputs=tuple(options["inputs"]),
                    outputs=tuple(options["outputs"]),
                    params=tuple(options["params"]),
                ),
                dest=data["dest"],
                download=bool(data["download"]),
                cwd=data["cwd"],
                attempts=int(data.get("attempts", 3)),
                retry_by=str(data.get("retry_by", "reschedule")),
                retry_delay=float(data.get("retry_delay", 60.0)),
                max_failed=float(data.get("max_failed", 0.25)),
            )
        except FileNotFoundError:
            raise UsageProblem(
                f"{journal} was not made by 'aiodirac campaign run' (no {source.name} beside it): "
                "run the same 'campaign run' command again to resume it"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageProblem(f"cannot read {source}: {exc}") from exc


def describe(event: CampaignEvent) -> str | None:
    """One line for a campaign event, or ``None`` for the ones a display leaves out.

    Usage: ``describe(event)`` -> ``"job 7 (1207): retry 2 by reschedule (Failed: ...)"``
    """
    from aiodirac import (
        BrakeEngaged,
        CampaignEnded,
        DownloadFinished,
        GaveUp,
        JobChanged,
        PollFailed,
        PollProblem,
        PollRecovered,
        RetryFailed,
        RetryStarted,
    )

    match event:
        case JobChanged(event=change):
            return describe_event(change)
        case DownloadFinished(result=result) if not result.ok:
            return inert(f"{result.job_id}  download failed: {one_line(job_error(result) or '')}")
        case DownloadFinished(result=result):
            return f"{result.job_id}  outputs in {result.path}"
        case RetryStarted(attempt=a, old_job_id=old, new_job_id=new, method=how):
            again = f"as job {new}" if new != old else "same job ID"
            return inert(f"{old}  retry {a} by {how} ({again}): {one_line(event.reason)}")
        case RetryFailed(job_id=job_id, attempt=a, error=error):
            return inert(f"{job_id}  retry {a} failed: {one_line(error)}")
        case GaveUp(job_id=job_id, reason=reason):
            return inert(f"{job_id}  given up: {reason}")
        case BrakeEngaged(failed=n, total=t, fraction=f):
            return f"{n} of {t} jobs failed (more than {f:.0%}): no more retries"
        case PollProblem(event=PollFailed(error=error)):
            return inert(f"service not answering ({one_line(str(error))}); retrying")
        case PollProblem(event=PollRecovered(outage=outage)):
            return f"service back after {outage:.0f} s"
        case CampaignEnded():
            return None
    return None


def event_doc(event: CampaignEvent) -> dict[str, Any]:
    """A campaign event as JSON (``type`` names it; ``line`` is what the display shows).

    Usage: ``out.data(event_doc(event))``
    """
    from aiodirac import CampaignEnded, DownloadFinished, JobChanged

    doc: dict[str, Any] = {"type": type(event).__name__}
    if isinstance(event, JobChanged):
        doc.update(index=event.index, attempt=event.attempt, job_id=event.job_id)
        doc["status"] = str(event.status)
    elif isinstance(event, DownloadFinished):
        doc.update(index=event.index, job_id=event.result.job_id, ok=event.ok)
    elif isinstance(event, CampaignEnded):
        doc["outcome"] = event.progress.outcome
    line = describe(event)
    if line is not None:
        doc["line"] = line
    return doc


class CampaignView:
    """The live display of a campaign: counts per status, downloads, retries, latest events.

    Usage::

        view = CampaignView(events=10)
        view.add(event)
        console.print(view.render(campaign.progress))
    """

    def __init__(self, events: int = 10) -> None:
        self.recent: deque[str] = deque(maxlen=max(events, 0) or None)
        self.show_events = events > 0
        self.problem: str | None = None
        self.started = time.monotonic()

    def add(self, event: CampaignEvent) -> None:
        """Take one event into account.

        Usage: ``view.add(event)``
        """
        from aiodirac import PollFailed, PollProblem

        if isinstance(event, PollProblem):
            self.problem = describe(event) if isinstance(event.event, PollFailed) else None
        line = describe(event)
        if line is not None and self.show_events:
            self.recent.append(line)

    def render(self, progress: CampaignProgress) -> RenderableType:
        """The display for ``progress``.

        Usage: ``live.update(view.render(campaign.progress))``
        """
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        from ._output import STATUS_STYLES

        elapsed = time.monotonic() - self.started
        final = sum(n for status, n in progress.counts.items() if status.final)
        head = Text.assemble(
            (f"aiodirac campaign {progress.name}", "bold"),
            f"  {progress.submitted}/{progress.total} submitted",
            f"  {final} final",
            (f"  {elapsed:.0f} s", "dim"),
        )
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("status")
        table.add_column("n", justify="right")
        for status, n in counts_json(progress.counts).items():
            table.add_row(Text(inert(status), style=STATUS_STYLES.get(status, "")), str(n))
        parts: list[RenderableType] = [head, table]
        extra = []
        if progress.downloads:
            failed = f", {progress.download_failed} failed" if progress.download_failed else ""
            extra.append(f"outputs: {progress.downloaded} fetched{failed}")
        extra.append(f"retries: {progress.retries} made, {progress.retries_pending} waiting")
        if progress.gave_up:
            extra.append(f"given up: {progress.gave_up}")
        if progress.braked:
            extra.append("brake engaged")
        parts.append(Text("; ".join(extra), style="bold"))
        if self.problem:
            parts.append(Text(self.problem, style="bold red"))
        if self.recent:
            parts.append(Text("latest events", style="bold"))
            parts.extend(Text(line, style="dim") for line in self.recent)
        return Group(*parts)


async def run_campaign(
    dirac: AsyncDirac,
    job: Job,
    out: Output,
    *,
    journal: Path,
    dest: Path | None,
    policy: FailurePolicy,
    events: int = 10,
) -> int:
    """Run the campaign, display it, print how it ended; return the exit code.

    Usage: ``code = await run_campaign(dirac, job, out, journal=j, dest=d, policy=p)``
    """
    from aiodirac import CampaignEnded, GaveUp, JobChanged

    campaign = dirac.campaign(job, journal=journal, dest=dest, policy=policy)
    given_up: list[int] = []
    vanished: list[int] = []
    download_failures: list[dict[str, Any]] = []
    out.note(f"campaign {campaign.name}: {campaign.total} jobs; journal {journal}")

    def note(event: CampaignEvent) -> None:
        from aiodirac import DownloadFinished, JobVanished, PollProblem

        if isinstance(event, GaveUp) and event.job_id:
            given_up.append(event.job_id)
        elif isinstance(event, PollProblem) and isinstance(event.event, JobVanished):
            vanished.append(event.event.job_id)
        elif isinstance(event, DownloadFinished) and not event.ok:
            download_failures.append(result_json(event.result))

    async with campaign:
        if out.live:
            from rich.live import Live

            view = CampaignView(events)
            last = 0.0
            with Live(view.render(campaign.progress), console=out.out, auto_refresh=False) as live:
                async for event in campaign:
                    note(event)
                    view.add(event)
                    now = time.monotonic()
                    if now - last >= 0.2 or isinstance(event, CampaignEnded):
                        live.update(view.render(campaign.progress), refresh=True)
                        last = now
        else:
            async for event in campaign:
                note(event)
                if out.json or out.opts.quiet:
                    continue
                line = describe(event)
                if line is not None and not isinstance(event, JobChanged):
                    out.result(line)
    progress = campaign.progress
    job_ids = campaign.job_ids
    if out.json:
        out.data(
            {
                "job_ids": job_ids,
                "count": len(job_ids),
                "counts": counts_json(progress.counts),
                "failed": sorted(given_up),
                "vanished": sorted(vanished),
                "killed": progress.killed,
                "retries": progress.retries,
                "dest": str(dest) if dest is not None else None,
                "downloaded": progress.downloaded,
                "download_failures": download_failures,
                "outcome": progress.outcome,
                "complete": progress.complete,
            }
        )
    else:
        out.result(summary_line(progress.counts, 0))
        if dest is not None:
            out.result(f"Outputs of {progress.downloaded} jobs in {dest}")
        if progress.retries:
            out.result(f"{progress.retries} failed jobs were retried")
        if progress.complete:
            out.result("Campaign complete")
        else:
            out.warn(f"campaign ended: {progress.outcome}")
    return ExitCode.OK if progress.complete else ExitCode.JOBS_FAILED


def report_json(summary: CampaignSummary, path: Path, data: ReportData | None) -> dict[str, Any]:
    """A journal's summary as JSON (stable keys); with the campaign's history when it has one.

    Usage: ``out.data(report_json(await journal.summary(), path, data))``
    """
    doc: dict[str, Any] = {
        "journal": str(path),
        "name": summary.name,
        "job_group": summary.job_group,
        "chunks": {str(state): n for state, n in sorted(summary.chunks.items())},
        "jobs_recorded": summary.jobs_recorded,
        "jobs_confirmed": summary.jobs_confirmed,
        "swept": summary.swept,
        "statuses": counts_json(summary.statuses),
        "downloads": summary.downloads,
    }
    if data is not None:
        from aiodirac import current_statuses

        doc["statuses"] = counts_json(current_statuses(data))
        doc["jobs"] = data.jobs
        doc["retries"] = len(data.retries)
        doc["download_failures"] = sum(1 for ok in data.downloads.ok if not ok)
        doc["outcome"] = data.outcome
    return doc


def _run_spec(
    opts: Options,
    cspec: CampaignSpec,
    journal: Path,
    *,
    events: int,
    interval: float | None,
    save: bool,
) -> None:
    out = Output(opts)
    journal = journal.absolute()

    async def body() -> int:
        # Paths in the job description are relative to where 'run' was started.
        previous = Path.cwd()
        os.chdir(cspec.cwd)
        try:
            policy = cspec.policy()
            jobs = build_jobs(list(cspec.spec), cspec.options)
            if len(jobs) != 1:
                raise UsageProblem(
                    f"a campaign runs one job description (parametric or not), {cspec.spec[0]} "
                    f"holds {len(jobs)}: run a campaign for each"
                )
            if save:
                journal.parent.mkdir(parents=True, exist_ok=True)
                cspec.save(journal)
            async with make_client(opts, poll_interval=interval) as dirac:
                return await run_campaign(
                    dirac,
                    jobs[0],
                    out,
                    journal=journal,
                    dest=Path(cspec.dest) if cspec.download else None,
                    policy=policy,
                    events=events,
                )
        finally:
            os.chdir(previous)

    run(opts, body)


def register(app: typer.Typer) -> None:
    """Add the ``campaign`` group to the app."""

    @command(campaign_app, "run", cls=CommandAfterOptions)
    def campaign_run(
        opts: Options,
        spec: SpecArg = None,
        journal: JournalOpt = Path("campaign.db"),
        dest: DestOpt = Path("."),
        param: ParamOpt = None,
        name: NameOpt = None,
        cpu_time: CpuOpt = None,
        input_: InputOpt = None,
        output: OutputOpt = None,
        no_download: NoDownloadOpt = False,
        attempts: AttemptsOpt = 3,
        retry_by: RetryByOpt = "reschedule",
        retry_delay: RetryDelayOpt = 60.0,
        max_failed: MaxFailedOpt = 0.25,
        interval: IntervalOpt = None,
        events: EventsOpt = 10,
    ) -> None:
        """Submit a campaign, follow it live, download outputs as jobs finish, retry failures.

        A Failed or Stalled job runs again, up to --attempts times in all, --retry-delay
        seconds after it failed, by reschedule (same job ID) or resubmission (--retry-by);
        once more than --max-failed of the jobs failed, nothing more is retried. Killed or
        interrupted, run the same command again (or 'campaign resume'): nothing is submitted,
        retried or downloaded twice. Exits with 1 unless every job is Done (and fetched).

        \b
        aiodirac campaign run -j scan.db -d out/ -p n=1..1000 -- ./scan.sh '%(n)s'
        """
        shape = job_options(name, cpu_time, input_, output, param)
        cspec = CampaignSpec(
            spec=tuple(spec or ()),
            options=shape,
            dest=str(dest.resolve()),
            download=not no_download,
            cwd=str(Path.cwd()),
            attempts=attempts,
            retry_by=retry_by,
            retry_delay=retry_delay,
            max_failed=max_failed,
        )
        try:
            cspec.policy()
        except UsageProblem as exc:
            usage_error(str(exc))
        _run_spec(opts, cspec, journal, events=events, interval=interval, save=True)

    @command(campaign_app, "resume")
    def campaign_resume(
        opts: Options,
        journal: JournalOpt = Path("campaign.db"),
        interval: IntervalOpt = None,
        events: EventsOpt = 10,
    ) -> None:
        """Run the campaign recorded with JOURNAL again, from where it stopped.

        Nothing is submitted, retried or downloaded twice; jobs already final are not polled.
        """
        try:
            cspec = CampaignSpec.load(journal)
        except UsageProblem as exc:
            usage_error(str(exc))
        _run_spec(opts, cspec, journal, events=events, interval=interval, save=False)

    @command(campaign_app, "report")
    def campaign_report(
        opts: Options, journal: JournalOpt = Path("campaign.db"), html: HtmlOpt = None
    ) -> None:
        """Summarise a campaign from its journal alone (no service is contacted).

        With --html FILE, also write the report with charts (statuses over time, rates, waiting
        and running times, failures by site and minor status, attempts, downloads) to FILE.
        Exits with 1 when the campaign's jobs are not all Done.
        """
        out = Output(opts)

        async def body() -> int:
            import anyio.to_thread

            from aiodirac import (
                Journal,
                JournalError,
                current_statuses,
                read_report_data,
                write_report,
            )

            if not journal.is_file():
                raise UsageProblem(f"no campaign journal at {journal}")
            async with await Journal.open(journal) as opened:
                summary = await opened.summary()
            data: ReportData | None
            try:
                data = await anyio.to_thread.run_sync(read_report_data, journal)
            except JournalError:
                data = None  # jobs submitted with --journal, no campaign run on them yet
            statuses = current_statuses(data) if data is not None else summary.statuses
            if html is not None:
                if data is None:
                    raise UsageProblem(
                        f"{journal} has no campaign history to draw (its jobs were submitted "
                        "with --journal, not run as a campaign): no HTML report written"
                    )
                await anyio.to_thread.run_sync(write_report, data, html)
            if out.json:
                payload = report_json(summary, journal, data)
                if html is not None:
                    payload["html"] = str(html)
                out.data(payload)
            else:
                out.result(
                    f"Campaign {summary.name or '?'} (JobGroup {summary.job_group or '?'}) "
                    f"in {journal}"
                )
                rows: list[list[object]] = [
                    ["recorded", summary.jobs_recorded],
                    ["confirmed", summary.jobs_confirmed],
                    ["swept (unconfirmed leftovers)", summary.swept],
                    ["outputs downloaded", summary.downloads],
                ]
                if data is not None:
                    failures = sum(1 for ok in data.downloads.ok if not ok)
                    rows[1:1] = [["in the campaign", data.jobs]]
                    rows.append(["downloads failed", failures])
                    rows.append(["retries", len(data.retries)])
                out.table(["", "jobs"], rows)
                if statuses:
                    out.result("Last known statuses: " + summary_line(statuses))
                if data is not None:
                    out.result(f"Outcome: {data.outcome}")
                if html is not None:
                    out.result(f"Report with charts written to {html}")
                pending = {str(s): n for s, n in summary.chunks.items() if str(s) != "confirmed"}
                if any(pending.values()):
                    out.result(
                        "Chunks not confirmed: "
                        + ", ".join(f"{n} {s}" for s, n in sorted(pending.items()))
                        + " (run 'aiodirac campaign resume' to finish them)"
                    )
            if data is not None and data.ended is not None:
                return ExitCode.OK if data.outcome == "complete" else ExitCode.JOBS_FAILED
            failed = {str(s) for s, n in statuses.items() if n}
            return ExitCode.JOBS_FAILED if failed & FAILED else ExitCode.OK

        run(opts, body)

    app.add_typer(campaign_app)
