"""``aiodirac campaign run|resume|report``: submit, follow and download, with a journal.

``run`` submits the jobs (the journal makes a second run submit nothing twice), follows them
with the live ``watch`` display, and downloads each job's outputs as soon as it is Done, while
the others still run. ``resume`` runs the campaign recorded beside the journal again (after a
crash, a Ctrl-C, or a reboot). ``report`` reads the journal alone: no service is contacted.

The journal (the library's SQLite file) records chunks, job IDs, statuses and downloads. What
the journal cannot hold, the command line that made the campaign, is kept beside it in
``<journal>.cli.json`` so that ``resume`` needs nothing but the journal's name.

Usage::

    aiodirac campaign run --journal scan.db --dest out/ -p n=1..1000 -- ./scan.sh '%(n)s'
    aiodirac campaign resume --journal scan.db
    aiodirac campaign report --journal scan.db
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import ExitCode, Options, UsageProblem, command, make_client, run, usage_error
from ._jobspec import JobOptions, build_jobs
from ._output import Output, counts_json, human_bytes
from ._output_cmd import DestOpt, result_json
from ._status_cmd import FAILED, summary_line
from ._submit_cmd import (
    CpuOpt,
    InputOpt,
    NameOpt,
    OutputOpt,
    ParamOpt,
    SpecArg,
    job_options,
    submit_jobs,
)
from ._watch_cmd import EventsOpt, IntervalOpt, WatchView

if TYPE_CHECKING:
    from aiodirac._client import AsyncDirac
    from aiodirac._engine.download._downloader import DownloadProgress, DownloadResult
    from aiodirac._engine.track._events import TrackEvent
    from aiodirac._job._job import Job
    from aiodirac._journal import CampaignSummary

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

    @staticmethod
    def path_for(journal: Path) -> Path:
        """Where the spec of ``journal`` is kept."""
        return journal.with_name(journal.name + ".cli.json")

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
            )
        except FileNotFoundError:
            raise UsageProblem(
                f"{journal} was not made by 'aiodirac campaign run' (no {source.name} beside it): "
                "run the same 'campaign run' command again to resume it"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageProblem(f"cannot read {source}: {exc}") from exc


class _DownloadLine:
    """The downloads' line under the live display."""

    def __init__(self) -> None:
        self.last: DownloadProgress | None = None
        self.queued = 0

    def text(self) -> str:
        p = self.last
        if p is None:
            if self.queued:
                return f"downloads: {self.queued} queued"
            return "downloads: waiting for Done jobs"
        size = f", {human_bytes(p.bytes_done)} at {human_bytes(p.rate)}/s" if p.bytes_done else ""
        failed = f", {p.jobs_failed} failed" if p.jobs_failed else ""
        return f"downloads: {p.jobs_done}/{self.queued} jobs{failed}, {p.files_done} files{size}"


async def run_campaign(
    dirac: AsyncDirac,
    jobs: list[Job],
    out: Output,
    *,
    dest: Path,
    download: bool,
    events: int = 10,
) -> int:
    """Submit, follow to the end and download; print the report; return the exit code.

    Usage: ``code = await run_campaign(dirac, jobs, out, dest=Path("out"), download=True)``
    """
    import anyio
    from anyio.streams.memory import MemoryObjectSendStream

    from aiodirac import JobEvent, JobStatus

    ids = await submit_jobs(dirac, jobs, out)
    out.note(f"{len(ids)} jobs in the campaign; following them until they are final")
    wanted = {JobStatus.DONE, JobStatus.COMPLETED}
    results: list[DownloadResult] = []
    line = _DownloadLine()
    send, receive = anyio.create_memory_object_stream[int](max_buffer_size=len(ids) + 1)
    queued: set[int] = set()

    def queue(job_id: int, sender: MemoryObjectSendStream[int]) -> None:
        if job_id not in queued:
            queued.add(job_id)
            line.queued += 1
            sender.send_nowait(job_id)

    def on_progress(p: DownloadProgress) -> None:
        line.last = p

    async def downloads() -> None:
        async with receive:
            results.extend(await dirac.download(receive, dest, progress=on_progress))

    async with dirac.track(ids) as stream, anyio.create_task_group() as tg:
        if download:
            tg.start_soon(downloads)
        async with send:
            if download:
                for job_id, state in stream.states.items():
                    if state.status in wanted:
                        queue(job_id, send)

            def on_event(event: TrackEvent) -> None:
                if download and isinstance(event, JobEvent) and event.status in wanted:
                    queue(event.job_id, send)

            await _follow(stream, out, events, on_event, line)
            behind = line.queued - (line.last.jobs_done + line.last.jobs_failed if line.last else 0)
            if download and behind > 0:
                out.note(f"all jobs are final; finishing {behind} downloads")
        final = stream.summary
        states = dict(stream.states)
        vanished = sorted(stream.vanished)
    failed_jobs = sorted(j for j, s in states.items() if str(s.status) in FAILED)
    failed_downloads = [r for r in results if not r.ok]
    if out.json:
        out.data(
            {
                "job_ids": ids,
                "count": len(ids),
                "counts": counts_json(final.counts),
                "failed": failed_jobs,
                "vanished": vanished,
                "dest": str(dest) if download else None,
                "downloaded": sum(1 for r in results if r.ok),
                "download_failures": [result_json(r) for r in failed_downloads],
            }
        )
    else:
        out.result(summary_line(final.counts, 0))
        if download:
            ok = sum(1 for r in results if r.ok)
            files = sum(len(r.files) for r in results if r.ok)
            out.result(f"Outputs of {ok} jobs in {dest} ({files} files)")
        for r in failed_downloads:
            out.warn(f"job {r.job_id}: {r.error}")
        if failed_jobs:
            out.warn(
                f"{len(failed_jobs)} jobs failed or were killed: see 'aiodirac status' on them"
            )
    bad = failed_jobs or failed_downloads or vanished
    return ExitCode.JOBS_FAILED if bad else ExitCode.OK


async def _follow(
    stream: Any, out: Output, events: int, on_event: Any, line: _DownloadLine
) -> None:
    """The watch display, with the downloads' line under it (no per-event lines in JSON)."""
    from ._watch_cmd import follow

    view = _CampaignView(events, line) if out.live else None
    await follow(stream, out, events=events, on_event=on_event, view=view, lines=not out.json)


class _CampaignView(WatchView):
    def __init__(self, events: int, line: _DownloadLine) -> None:
        super().__init__(events, title="aiodirac campaign")
        self.line = line

    def render(self, summary: Any) -> Any:
        from rich.console import Group
        from rich.text import Text

        return Group(super().render(summary), Text(self.line.text(), style="bold"))


def report_json(summary: CampaignSummary, path: Path) -> dict[str, Any]:
    """A journal's summary as JSON (stable keys).

    Usage: ``out.data(report_json(await journal.summary(), path))``
    """
    return {
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
            jobs = build_jobs(list(cspec.spec), cspec.options)
            if save:
                journal.parent.mkdir(parents=True, exist_ok=True)
                cspec.save(journal)
            client = make_client(opts, journal=str(journal), poll_interval=interval)
            async with client as dirac:
                return await run_campaign(
                    dirac, jobs, out, dest=Path(cspec.dest), download=cspec.download, events=events
                )
        finally:
            os.chdir(previous)

    run(opts, body)


def register(app: typer.Typer) -> None:
    """Add the ``campaign`` group to the app."""

    @command(campaign_app, "run")
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
        interval: IntervalOpt = None,
        events: EventsOpt = 10,
    ) -> None:
        """Submit a campaign, follow it live, and download outputs as jobs finish.

        Killed or interrupted, run the same command again (or 'campaign resume'): nothing is
        submitted or downloaded twice. Exits with 1 when a job failed or an output is missing.

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
        )
        _run_spec(opts, cspec, journal, events=events, interval=interval, save=True)

    @command(campaign_app, "resume")
    def campaign_resume(
        opts: Options,
        journal: JournalOpt = Path("campaign.db"),
        interval: IntervalOpt = None,
        events: EventsOpt = 10,
    ) -> None:
        """Run the campaign recorded with JOURNAL again, from where it stopped.

        Nothing is submitted or downloaded twice; jobs already final are not polled.
        """
        try:
            cspec = CampaignSpec.load(journal)
        except UsageProblem as exc:
            usage_error(str(exc))
        _run_spec(opts, cspec, journal, events=events, interval=interval, save=False)

    @command(campaign_app, "report")
    def campaign_report(opts: Options, journal: JournalOpt = Path("campaign.db")) -> None:
        """Summarise a campaign from its journal alone (no service is contacted).

        Exits with 1 when the last known status of a job is Failed or Killed.
        """
        out = Output(opts)

        async def body() -> int:
            from aiodirac import Journal

            if not journal.is_file():
                raise UsageProblem(f"no campaign journal at {journal}")
            async with await Journal.open(journal) as opened:
                summary = await opened.summary()
            if out.json:
                out.data(report_json(summary, journal))
            else:
                out.result(
                    f"Campaign {summary.name or '?'} (JobGroup {summary.job_group or '?'}) "
                    f"in {journal}"
                )
                out.table(
                    ["", "jobs"],
                    [
                        ["recorded", summary.jobs_recorded],
                        ["confirmed", summary.jobs_confirmed],
                        ["swept (unconfirmed leftovers)", summary.swept],
                        ["outputs downloaded", summary.downloads],
                    ],
                )
                if summary.statuses:
                    out.result("Last known statuses: " + summary_line(summary.statuses))
                pending = {str(s): n for s, n in summary.chunks.items() if str(s) != "confirmed"}
                if any(pending.values()):
                    out.result(
                        "Chunks not confirmed: "
                        + ", ".join(f"{n} {s}" for s, n in sorted(pending.items()))
                        + " (run 'aiodirac campaign resume' to finish them)"
                    )
            failed = Counter({str(s): n for s, n in summary.statuses.items()})
            return ExitCode.JOBS_FAILED if any(failed[s] for s in FAILED) else ExitCode.OK

        run(opts, body)

    app.add_typer(campaign_app)
