"""The live ``watch`` display and the event lines, rendered without a terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

from rich.console import Console

from aiodirac import JobState, JobStatus, NetworkError
from aiodirac._engine.track._events import (
    JobEvent,
    JobVanished,
    PollFailed,
    PollRecovered,
    TrackSummary,
)
from aiodirac.cli._output import describe_event, event_json
from aiodirac.cli._watch_cmd import WatchView

T = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _event(job_id: int, old: JobStatus | None, new: JobStatus, minor: str = "") -> JobEvent:
    before = None if old is None else JobState(job_id, old)
    return JobEvent(job_id, before, JobState(job_id, new, minor, site="DIRAC.x.local"), T)


def _text(view: WatchView, summary: TrackSummary) -> str:
    console = Console(record=True, width=100, color_system=None)
    console.print(view.render(summary))
    return console.export_text()


def test_counts_events_and_service_health() -> None:
    view = WatchView(events=3)
    for job_id in range(1, 6):
        view.add(_event(job_id, JobStatus.WAITING, JobStatus.RUNNING, "Application"))
    view.add(PollFailed(NetworkError("connection refused"), 2, 8.0, 1, 1, T))
    summary = TrackSummary(
        counts=MappingProxyType({JobStatus.DONE: 2, JobStatus.RUNNING: 3}),
        total=6,
        final=2,
        unseen=1,
        requests=7,
    )
    text = _text(view, summary)
    assert "2/6 final" in text
    assert "7 requests" in text
    lines = [line.split() for line in text.splitlines()]
    assert ["Running", "3"] in [line[:2] for line in lines]
    assert ["Done", "2"] in [line[:2] for line in lines]
    assert "(not seen yet)  1" in " ".join(text.split("\n"))
    assert "service not answering (connection refused); retry 2 in 8 s" in text
    # only the 3 latest events are kept
    assert "5  Waiting -> Running  (Application)  DIRAC.x.local" in text
    assert "2  Waiting -> Running" not in text

    view.add(PollRecovered(2, 12.0, T))
    text = _text(view, summary)
    assert "service not answering" not in text
    assert "service back after 12 s" in text


def test_event_lines() -> None:
    assert describe_event(_event(7, None, JobStatus.WAITING)) == "7  new -> Waiting  DIRAC.x.local"
    same = JobEvent(7, JobState(7, JobStatus.RUNNING, "a"), JobState(7, JobStatus.RUNNING, "b"), T)
    assert describe_event(same) == "7  Running  (b)"


def test_event_lines_show_the_application_status() -> None:
    app = "'program' Exited With Status 1000 (Cannot run 'program': [Errno 2] No such file)"
    before = JobState(8, JobStatus.RUNNING)
    after = JobState(8, JobStatus.FAILED, "Application Finished With Errors", app, "DIRAC.x.local")
    assert describe_event(JobEvent(8, before, after, T)) == (
        "8  Running -> Failed  (Application Finished With Errors)  DIRAC.x.local"
        f"  application: {app}"
    )


def test_event_json_shapes() -> None:
    job = event_json(_event(3, JobStatus.RUNNING, JobStatus.DONE, "Execution Complete"))
    assert job == {
        "event": "job",
        "job_id": 3,
        "old_status": "Running",
        "status": "Done",
        "minor_status": "Execution Complete",
        "application_status": "Unknown",
        "site": "DIRAC.x.local",
        "final": True,
        "seen": "2026-01-02T03:04:05+00:00",
    }
    assert event_json(JobVanished(4, None, T))["event"] == "vanished"
    failed = event_json(PollFailed(NetworkError("x"), 1, 2.5, 1, 2, T))
    assert (failed["event"], failed["attempt"], failed["next_retry_in"]) == ("poll_failed", 1, 2.5)
    assert event_json(PollRecovered(1, 3.0, T))["event"] == "poll_recovered"


HOSTILE_TEXT = "\x1b]0;TITLE\x07\x1b[2J\x1b[31mALL GOOD\x1b[0m\x9b1m\u202eevil\u2066\r\x08"


def _no_controls(text: str) -> None:
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
    bad += [c for c in text if c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"]
    assert not bad, f"raw control characters reach the terminal: {bad!r}"


def test_inert_escapes_every_control_and_keeps_the_rest() -> None:
    from aiodirac.cli._output import inert

    shown = inert(HOSTILE_TEXT)
    _no_controls(shown)
    assert "\\x1b]0;TITLE\\x07" in shown
    assert "ALL GOOD" in shown
    assert "\\x9b" in shown
    assert "\\u202e" in shown
    assert inert("Durée ☃ done") == "Durée ☃ done"
    assert inert("a\nb") == "a\\nb"
    assert inert("a\nb\x1b", lines=True) == "a\nb\\x1b"


def test_hostile_status_fields_are_inert_in_the_watch_view_and_event_lines() -> None:
    before = JobState(9, JobStatus.RUNNING)
    after = JobState(9, JobStatus.DONE, HOSTILE_TEXT, HOSTILE_TEXT, site=HOSTILE_TEXT)
    event = JobEvent(9, before, after, T)
    _no_controls(describe_event(event))
    view = WatchView(events=3)
    view.add(event)
    view.add(PollFailed(NetworkError(HOSTILE_TEXT), 1, 1.0, 1, 1, T))
    summary = TrackSummary(
        counts=MappingProxyType({JobStatus.DONE: 1}), total=1, final=1, unseen=0, requests=1
    )
    _no_controls(_text(view, summary))


def test_error_lines_and_json_are_inert() -> None:
    import io
    import json
    import sys

    from aiodirac.cli._common import Options, error_line
    from aiodirac.cli._output import Output

    _no_controls(error_line(NetworkError(HOSTILE_TEXT)))
    _no_controls(error_line(RuntimeError(HOSTILE_TEXT)))
    buf = io.StringIO()
    saved, sys.stdout = sys.stdout, buf
    try:
        Output(Options(json=True)).data({"status": HOSTILE_TEXT})
        Output(Options()).table(["a"], [[HOSTILE_TEXT]])
        Output(Options()).result(HOSTILE_TEXT)
    finally:
        sys.stdout = saved
    document, *rest = buf.getvalue().splitlines()
    _no_controls(buf.getvalue())
    assert json.loads(document) == {"status": HOSTILE_TEXT}
    assert len(rest) == 3  # header, row, result


def test_the_campaign_display_and_its_lines() -> None:
    from aiodirac import (
        BrakeEngaged,
        CampaignProgress,
        GaveUp,
        JobChanged,
        PollProblem,
        RetryMethod,
        RetryStarted,
    )
    from aiodirac.cli._campaign_cmd import CampaignView, describe, event_doc

    view = CampaignView(events=4)
    view.add(JobChanged(3, 1, _event(103, JobStatus.RUNNING, JobStatus.FAILED, "Exit 1")))
    retry = RetryStarted(3, 2, 103, 103, RetryMethod.RESCHEDULE, "Failed: Exit 1")
    view.add(retry)
    view.add(GaveUp(7, 107, 3, "3 attempts used up (last: Failed)"))
    view.add(BrakeEngaged(30, 100, 0.25))
    view.add(PollProblem(PollFailed(NetworkError("connection refused"), 1, 4.0, 1, 1, T)))
    progress = CampaignProgress(
        name="scan",
        total=100,
        submitted=100,
        counts=MappingProxyType({JobStatus.DONE: 60, JobStatus.RUNNING: 10}),
        downloaded=58,
        download_failed=1,
        retries=12,
        retries_pending=2,
        gave_up=1,
        braked=True,
    )
    console = Console(record=True, width=100, color_system=None)
    console.print(view.render(progress))
    text = console.export_text()
    assert "aiodirac campaign scan  100/100 submitted  60 final" in text
    assert "outputs: 58 fetched, 1 failed; retries: 12 made, 2 waiting; given up: 1" in text
    assert "brake engaged" in text
    assert "service not answering (connection refused); retrying" in text
    # the 4 latest lines only
    assert "103  Running -> Failed" not in text
    assert "103  retry 2 by reschedule (same job ID): Failed: Exit 1" in text
    assert "107  given up: 3 attempts used up (last: Failed)" in text
    assert "30 of 100 jobs failed (more than 25%): no more retries" in text
    assert describe(retry) == "103  retry 2 by reschedule (same job ID): Failed: Exit 1"
    doc = event_doc(retry)
    assert doc == {"type": "RetryStarted", "line": describe(retry)}
