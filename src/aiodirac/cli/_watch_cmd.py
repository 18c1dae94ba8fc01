"""``aiodirac watch``: a live table of counts per status and the latest events, until all final.

On a terminal the display redraws in place; in a pipe each event is one line; with ``--json``
each event is one JSON object per line, and the last line is ``{"event": "summary", ...}``.

Usage: ``aiodirac watch 12-40``; ``aiodirac watch --journal scan.db``
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import ExitCode, Options, command, make_client, one_line, run
from ._ids import IdsArg, JournalIdsOpt, check_journal, resolve_ids
from ._output import (
    STATUS_STYLES,
    Output,
    counts_json,
    describe_event,
    error_text,
    event_json,
    inert,
)
from ._status_cmd import FAILED, summary_line

if TYPE_CHECKING:
    from rich.console import RenderableType

    from aiodirac._engine.track._events import TrackEvent, TrackSummary
    from aiodirac._engine.track._tracker import TrackStream

__all__ = ["WatchView", "follow", "register"]

IntervalOpt = Annotated[
    float | None,
    typer.Option(
        "--interval",
        metavar="SECONDS",
        help="Seconds between status polls while jobs change (default: 0.2 local, 2 DiracX); "
        "polling slows down by itself while nothing changes.",
        min=0.05,
        show_default=False,
    ),
]
EventsOpt = Annotated[
    int,
    typer.Option(
        "--events", "-n", metavar="N", help="How many recent events the live display shows.", min=0
    ),
]


class WatchView:
    """What the live display shows: counts per status, the latest events, the service's health.

    Kept apart from the drawing loop so that it can be rendered (and tested) on its own.

    Usage::

        view = WatchView(events=10)
        view.add(event)
        console.print(view.render(stream.summary))
    """

    def __init__(self, events: int = 10, title: str = "aiodirac watch") -> None:
        self.recent: deque[str] = deque(maxlen=max(events, 0) or None)
        self.show_events = events > 0
        self.title = title
        self.problem: str | None = None
        self.started = time.monotonic()

    def add(self, event: TrackEvent) -> None:
        """Take one tracking event into account.

        Usage: ``view.add(event)``
        """
        from aiodirac import JobEvent, JobVanished, PollFailed, PollRecovered

        if isinstance(event, JobEvent):
            if self.show_events:
                self.recent.append(describe_event(event))
        elif isinstance(event, JobVanished):
            if self.show_events:
                gone = "not found" if event.last is None else "no longer known to the service"
                self.recent.append(f"{event.job_id}  {gone}")
        elif isinstance(event, PollFailed):
            self.problem = inert(
                f"service not answering ({one_line(error_text(event.error))}); "
                f"retry {event.attempt} in {event.next_retry_in:.0f} s"
            )
        elif isinstance(event, PollRecovered):
            self.problem = None
            if self.show_events:
                self.recent.append(f"service back after {event.outage:.0f} s")

    def render(self, summary: TrackSummary) -> RenderableType:
        """The display for the current summary.

        Usage: ``live.update(view.render(stream.summary))``
        """
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        head = Text.assemble(
            (self.title, "bold"),
            f"  {summary.final}/{summary.total} final",
            f"  {summary.pending} pending" if summary.pending else "",
            f"  {summary.vanished} vanished" if summary.vanished else "",
            (f"  {elapsed:.0f} s", "dim"),
            (f"  {summary.requests} requests", "dim"),
        )
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("status")
        table.add_column("n", justify="right")
        table.add_column("bar", width=30)
        width = max(summary.total, 1)
        for status, n in counts_json(summary.counts).items():
            style = STATUS_STYLES.get(status, "")
            table.add_row(
                Text(inert(status), style=style),
                str(n),
                ProgressBar(
                    total=width,
                    completed=n,
                    width=30,
                    complete_style=style or "white",
                    finished_style=style or "white",
                ),
            )
        if summary.unseen:
            table.add_row(Text("(not seen yet)", style="dim"), str(summary.unseen), "")
        parts: list[RenderableType] = [head, table]
        if self.problem:
            parts.append(Text(self.problem, style="bold red"))
        if self.recent:
            parts.append(Text("latest events", style="bold"))
            parts.extend(Text(line, style="dim") for line in self.recent)
        return Group(*parts)


async def follow(
    stream: TrackStream,
    out: Output,
    *,
    events: int = 10,
    on_event: Callable[[TrackEvent], Any] | None = None,
    view: WatchView | None = None,
    lines: bool = True,
) -> None:
    """Consume a tracking stream to its end, displaying it the way ``watch`` does.

    ``on_event`` sees every event first (``campaign run`` starts downloads from it); ``view``
    replaces the live display's content; ``lines=False`` prints nothing per event off a terminal.

    Usage: ``async with dirac.track(ids) as stream: await follow(stream, out)``
    """
    from aiodirac import JobEvent, PollFailed

    if out.live:
        from rich.live import Live

        view = view or WatchView(events)
        last = 0.0
        with Live(view.render(stream.summary), console=out.out, auto_refresh=False) as live:
            async for event in stream:
                if on_event is not None:
                    await _maybe_await(on_event(event))
                view.add(event)
                now = time.monotonic()
                # Thousands of events can arrive in one poll: redraw at most 5 times a second.
                if now - last >= 0.2:
                    live.update(view.render(stream.summary), refresh=True)
                    last = now
            live.update(view.render(stream.summary), refresh=True)
        return
    async for event in stream:
        if on_event is not None:
            await _maybe_await(on_event(event))
        if not lines:
            continue
        if out.json:
            out.data(event_json(event))
        elif out.opts.quiet:
            continue
        elif isinstance(event, JobEvent):
            out.result(describe_event(event))
        elif isinstance(event, PollFailed):
            out.warn(f"service not answering ({one_line(error_text(event.error))}); retrying")


async def _maybe_await(value: Any) -> None:
    import inspect

    if inspect.isawaitable(value):
        await value


def final_report(out: Output, stream: TrackStream) -> int:
    """The summary printed once tracking ends, and the exit code.

    Jobs the backend never knew are reported as ``status`` reports them (``not found``, exit 1);
    jobs seen and then gone count as failed.

    Usage: ``return final_report(out, stream)``
    """
    summary = stream.summary
    states = stream.states
    failed = sorted(
        job_id
        for job_id, state in states.items()
        if str(state.status) in FAILED or job_id in stream.vanished
    )
    missing = sorted(job_id for job_id in stream.vanished if job_id not in states)
    if out.json:
        out.data(
            {
                "event": "summary",
                "total": summary.total,
                "final": summary.final,
                "vanished": sorted(stream.vanished),
                "missing": missing,
                "counts": counts_json(summary.counts),
                "failed": failed,
            }
        )
    else:
        out.result(summary_line(summary.counts, len(missing)))
        out.missing(missing)
    return ExitCode.JOBS_FAILED if failed or missing else ExitCode.OK


def register(app: typer.Typer) -> None:
    """Add ``watch`` to the app."""

    @command(app, "watch")
    def watch(
        opts: Options,
        ids: IdsArg = None,
        journal: JournalIdsOpt = None,
        interval: IntervalOpt = None,
        events: EventsOpt = 10,
    ) -> None:
        """Follow jobs until every one is final: counts per status and the latest events.

        Exits with 1 when a job ended Failed or Killed (or vanished), 0 otherwise.
        """
        out = Output(opts)

        async def body() -> int:
            client = make_client(opts, journal=check_journal(journal), poll_interval=interval)
            async with client as dirac:
                wanted = await resolve_ids(dirac, ids, journal)
                async with dirac.track(wanted) as stream:
                    await follow(stream, out, events=events)
                    return final_report(out, stream)

        run(opts, body)
