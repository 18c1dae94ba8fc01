"""How commands print: results on stdout, notes and progress on stderr, JSON for scripts.

- ``--json``: one JSON document on stdout (``watch`` writes one JSON object per line); nothing
  else on stdout, errors still one line on stderr. Keys are stable and snake_case.
- On a terminal: rich tables, colours, live progress bars (on stderr).
- Not on a terminal (a pipe, a file, CI): plain aligned columns, no colours, no progress bars.
- ``--quiet``: results only; no notes, no progress.

Usage::

    out = Output(opts)
    out.table(["ID", "Status"], [[12, "Done"]])
    out.note("12 jobs submitted")
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn

    from aiodirac._engine.track._events import JobEvent, TrackEvent
    from aiodirac._job._status import JobState, JobStatus

    from ._options import Options

from ._terminal_text import UNSAFE, inert, json_escape

__all__ = [
    "STATUS_STYLES",
    "Output",
    "compact_ids",
    "error_text",
    "event_json",
    "human_bytes",
    "inert",
    "state_json",
]

#: Environment variables with which rich treats a non-terminal as a terminal.
_FORCED_TERMINAL = ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE")

#: How many ranges of unknown job IDs a warning spells out.
MISSING_GROUPS = 20

#: Colours per DIRAC status on a terminal.
STATUS_STYLES: Mapping[str, str] = {
    "Submitting": "dim",
    "Received": "blue",
    "Checking": "blue",
    "Scouting": "blue",
    "Staging": "blue",
    "Waiting": "yellow",
    "Matched": "yellow",
    "Rescheduled": "yellow",
    "Running": "cyan",
    "Stalled": "bold yellow",
    "Completing": "cyan",
    "Done": "green",
    "Completed": "green",
    "Failed": "bold red",
    "Killed": "magenta",
    "Deleted": "dim",
}


def human_bytes(n: float) -> str:
    """A byte count for people.

    Usage: ``human_bytes(1536)`` -> ``"1.5 KiB"``
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def error_text(exc: BaseException) -> str:
    """What an error says at the command line: the message and the command line's hint (never
    the Python one: a CLI user has options, not ``verify=`` or class names).

    Usage: ``out.warn(error_text(exc))``
    """
    from aiodirac import DiracError

    if isinstance(exc, DiracError):
        return exc.explain("cli")
    return str(exc)


def state_json(state: JobState) -> dict[str, Any]:
    """A job state as a JSON object (stable keys).

    Usage: ``state_json(state)["status"]`` -> ``"Done"``
    """
    return {
        "job_id": state.job_id,
        "status": str(state.status),
        "minor_status": state.minor_status,
        "application_status": state.application_status,
        "site": state.site,
        "time": _time(state.time),
    }


def event_json(event: TrackEvent) -> dict[str, Any]:
    """A tracking event as a JSON object: ``{"event": "job" | "vanished" | ..., ...}``.

    Usage: ``json.dumps(event_json(event))``
    """
    from aiodirac import JobEvent, JobVanished, PollFailed, PollRecovered

    if isinstance(event, JobEvent):
        return {
            "event": "job",
            "job_id": event.job_id,
            "old_status": None if event.old_status is None else str(event.old_status),
            "status": str(event.status),
            "minor_status": event.minor_status,
            "application_status": event.application_status,
            "site": event.site,
            "final": event.final,
            "seen": event.seen.isoformat(),
        }
    if isinstance(event, JobVanished):
        return {"event": "vanished", "job_id": event.job_id, "seen": event.seen.isoformat()}
    if isinstance(event, PollFailed):
        return {
            "event": "poll_failed",
            "error": error_text(event.error),
            "attempt": event.attempt,
            "next_retry_in": round(event.next_retry_in, 3),
            "seen": event.seen.isoformat(),
        }
    if isinstance(event, PollRecovered):
        return {
            "event": "poll_recovered",
            "failed_attempts": event.failed_attempts,
            "outage": round(event.outage, 3),
            "seen": event.seen.isoformat(),
        }
    raise TypeError(f"unknown tracking event {event!r}")


def counts_json(counts: Mapping[JobStatus, int]) -> dict[str, int]:
    """Counts per status as a JSON object, in DIRAC's status order.

    Usage: ``counts_json({JobStatus.DONE: 3})`` -> ``{"Done": 3}``
    """
    return {str(status): n for status, n in sorted(counts.items(), key=lambda kv: kv[0].level)}


def compact_ids(ids: Iterable[int]) -> str:
    """Job IDs written as ranges, the form :func:`parse_ids` reads back.

    Usage: ``compact_ids([1, 2, 3, 7])`` -> ``"1-3,7"``
    """
    ordered = sorted(set(ids))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        if j == i:
            parts.append(str(ordered[i]))
        elif j == i + 1:
            parts.extend((str(ordered[i]), str(ordered[j])))
        else:
            parts.append(f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


class Output:
    """Where and how one command invocation prints (see the module docstring).

    Usage: ``out = Output(opts); out.result("ok")``
    """

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self._out: Console | None = None
        self._err: Console | None = None

    @property
    def json(self) -> bool:
        """True when the user asked for JSON."""
        return self.opts.json

    @property
    def out(self) -> Console:
        """The rich console on stdout (created on first use: tests swap stdout)."""
        if self._out is None:
            from rich.console import Console

            self._out = Console(file=sys.stdout, highlight=False, soft_wrap=False)
        return self._out

    @property
    def err(self) -> Console:
        """The rich console on stderr, for notes and progress bars."""
        if self._err is None:
            from rich.console import Console

            self._err = Console(file=sys.stderr, highlight=False)
        return self._err

    @property
    def terminal(self) -> bool:
        """True when stdout is a terminal (tables and colours).

        Asked of the file itself first: in a pipe, plain output needs no rich console (importing
        rich is a fifth of a one-shot command's start-up). The variables that make rich treat a
        non-terminal as one still decide through rich.
        """
        if self._out is None and not any(os.environ.get(name) for name in _FORCED_TERMINAL):
            try:
                return sys.stdout.isatty()
            except (AttributeError, ValueError):  # replaced or closed by the caller
                return False
        return self.out.is_terminal

    @property
    def live(self) -> bool:
        """True when progress bars and live displays should be drawn."""
        return not self.opts.json and not self.opts.quiet and self.terminal and self.err.is_terminal

    # -- printing ---------------------------------------------------------------------------
    def data(self, document: Any) -> None:
        """Write one JSON document (a line) on stdout.

        Usage: ``out.data({"job_ids": [1, 2]})``
        """
        # json escapes C0 controls; C1 controls and bidi marks are escaped the same way here.
        text = UNSAFE.sub(json_escape, json.dumps(document, ensure_ascii=False))
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def result(self, text: str, style: str | None = None) -> None:
        """A line of the command's result on stdout (never in JSON mode).

        Usage: ``out.result("Submitted job 12")``
        """
        if self.opts.json:
            return
        text = inert(text, lines=True)
        if self.terminal:
            from rich.text import Text

            self.out.print(Text(text, style=style or ""))
        else:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def note(self, text: str) -> None:
        """An informational line on stderr (silenced by ``--quiet`` and ``--json``).

        Usage: ``out.note("resuming from journal c.db")``
        """
        if self.opts.quiet or self.opts.json:
            return
        sys.stderr.write(inert(text, lines=True) + "\n")
        sys.stderr.flush()

    def warn(self, text: str) -> None:
        """A warning line on stderr (even with ``--quiet``).

        Usage: ``out.warn("3 jobs could not be killed")``
        """
        sys.stderr.write(f"aiodirac: warning: {inert(text)}\n")
        sys.stderr.flush()

    def missing(self, job_ids: Sequence[int]) -> None:
        """Warn about job IDs the backend does not know: the same lines in every command.

        One line whatever the number: ``job 12: not found`` or ``3 jobs not found: 12-14``
        (at most :data:`MISSING_GROUPS` ranges are spelt out).

        Usage: ``out.missing([12])``
        """
        if not job_ids:
            return
        if len(job_ids) == 1:
            self.warn(f"job {job_ids[0]}: not found")
            return
        groups = compact_ids(job_ids).split(",")
        shown = ",".join(groups[:MISSING_GROUPS])
        more = (
            f" and {len(groups) - MISSING_GROUPS} more ranges"
            if len(groups) > MISSING_GROUPS
            else ""
        )
        self.warn(f"{len(job_ids)} jobs not found: {shown}{more}")

    def table(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[object]],
        *,
        styles: Sequence[str | None] | None = None,
        title: str | None = None,
    ) -> None:
        """A table on stdout: rich on a terminal, plain aligned columns otherwise.

        ``styles[i]`` names a column whose cells are DIRAC statuses to colour (``"status"``).

        Usage: ``out.table(["ID", "Status"], [[12, "Done"]], styles=[None, "status"])``
        """
        if self.opts.json:
            return
        materialised = [[inert(cell) for cell in row] for row in rows]
        if self.terminal:
            self.out.print(_rich_table(headers, materialised, styles, title))
            return
        widths = [len(h) for h in headers]
        for row in materialised:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        lines: list[Sequence[str]] = [headers, *materialised]
        for line in lines:
            cells = [cell.ljust(w) for cell, w in zip(line, widths, strict=True)]
            sys.stdout.write("  ".join(cells).rstrip() + "\n")
        sys.stdout.flush()

    def progress(self, *columns: ProgressColumn | str) -> Progress:
        """A rich progress display on stderr, disabled when it should not be drawn.

        Usage::

            with out.progress() as bar:
                task = bar.add_task("Submitting", total=100)
        """
        from rich.progress import Progress

        return Progress(*columns, console=self.err, disable=not self.live, transient=False)


def _rich_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    styles: Sequence[str | None] | None,
    title: str | None,
) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    kinds = list(styles or [None] * len(headers))
    for row in rows:
        cells = [
            Text(cell, style=STATUS_STYLES.get(cell, "")) if kind == "status" else Text(cell)
            for cell, kind in zip(row, kinds, strict=True)
        ]
        table.add_row(*cells)
    return table


def describe_event(event: JobEvent) -> str:
    """One line for a job event, as ``watch`` shows it, with the ApplicationStatus once known.

    Usage: ``describe_event(e)`` -> ``"12  Running -> Done  (Execution Complete)  DIRAC.x.local"``
    """
    if event.status_changed:
        old = "new" if event.old_status is None else str(event.old_status)
        change = f"{old} -> {event.status}"
    else:
        change = str(event.status)
    minor = f"  ({event.minor_status})" if event.minor_status else ""
    site = f"  {event.site}" if event.site and event.site != "ANY" else ""
    app = event.application_status
    application = f"  application: {app}" if app and app != "Unknown" else ""
    return inert(f"{event.job_id}  {change}{minor}{site}{application}")
