"""An event-driven web service: run campaigns over HTTP, stream their events to clients (SSE).

One :class:`aiodirac.AsyncDirac` serves the whole application (one connection pool, one rate
limit). A campaign started over HTTP runs in the service (submitted once, followed, outputs
fetched, failed jobs retried, journaled under ``./campaigns/``); any number of clients follow
its event stream, each from the start, as server-sent events. Plain jobs can be submitted and
followed too: each client that follows them gets its own tracking stream.

    pip install 'aiodirac[examples]'        # starlette and uvicorn
    python examples/service.py --port 8000

    curl -X POST localhost:8000/campaigns -d '{"name": "hello", "arguments": "hi %(n)s",
                                               "values": [1, 2, 3]}'
    curl -N localhost:8000/campaigns/hello/events  # event: job ... until event: end
    curl localhost:8000/campaigns/hello            # its progress, as JSON

    curl -X POST localhost:8000/jobs -d '{"arguments": "hello %(n)s", "values": [1, 2, 3]}'
    curl -N localhost:8000/jobs/1-3/events  # event: job ... until event: end
    curl localhost:8000/jobs/1-3            # the current states, as JSON

Routes:
    POST /campaigns            {"name", "executable", "arguments", "values", "attempts",
                               "retry_delay", "retry_by", "max_failed"}
                               -> {"campaign": name} (202)
    GET  /campaigns/{name}     its progress: counts, outputs fetched, retries, outcome
    GET  /campaigns/{name}/events  text/event-stream from its start: ``job``, ``download``,
                               ``retry``, ``retry_failed``, ``gave_up``, ``brake``, ``poll``,
                               then ``end`` with the outcome
    POST /jobs                 {"executable", "arguments", "name", "values"} -> {"job_ids": [...]}
    GET  /jobs/{ids}           current states ({ids}: ``12``, ``12,13`` or ``12-20``)
    GET  /jobs/{ids}/events    text/event-stream: ``job``, ``vanished``, ``poll_failed``,
                               ``poll_recovered`` events, then ``end`` when all are final
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aiodirac import (
    AsyncDirac,
    BrakeEngaged,
    CampaignEnded,
    CampaignEvent,
    CampaignProgress,
    DiracError,
    DownloadFinished,
    FailurePolicy,
    GaveUp,
    Job,
    JobChanged,
    JobEvent,
    JobState,
    JobVanished,
    PollFailed,
    PollProblem,
    PollRecovered,
    RetryFailed,
    RetryStarted,
    TrackEvent,
)

MAX_IDS = 10_000


def parse_ids(text: str) -> list[int]:
    """``12``, ``12,13`` or ``12-20`` (inclusive) as a list of job IDs."""
    ids: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if low < 1 or high < low or high - low >= MAX_IDS:
            raise ValueError(part)
        ids.extend(range(low, high + 1))
    if len(ids) > MAX_IDS:
        raise ValueError(text)
    return ids


def state_json(state: JobState) -> dict[str, Any]:
    return {
        "job_id": state.job_id,
        "status": str(state.status),
        "minor_status": state.minor_status,
        "site": state.site,
    }


def event_json(event: TrackEvent) -> tuple[str, dict[str, Any]]:
    """The SSE event name and its data."""
    match event:
        case JobEvent():
            data = state_json(event.new)
            data["old_status"] = None if event.old_status is None else str(event.old_status)
            data["final"] = event.final
            return "job", data
        case JobVanished(job_id=job_id):
            return "vanished", {"job_id": job_id}
        case PollFailed(error=error, next_retry_in=delay):
            return "poll_failed", {"error": str(error), "next_retry_in": round(delay, 1)}
        case PollRecovered(outage=outage):
            return "poll_recovered", {"outage": round(outage, 1)}
    raise TypeError(event)


def sse(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def progress_json(progress: CampaignProgress) -> dict[str, Any]:
    return {
        "name": progress.name,
        "total": progress.total,
        "submitted": progress.submitted,
        "counts": {str(status): n for status, n in progress.counts.items()},
        "downloaded": progress.downloaded,
        "download_failed": progress.download_failed,
        "retries": progress.retries,
        "gave_up": progress.gave_up,
        "ended": progress.ended,
        "outcome": progress.outcome,
    }


def campaign_event_json(event: CampaignEvent) -> tuple[str, dict[str, Any]]:
    """The SSE event name and its data, for a campaign's event."""
    match event:
        case JobChanged(index=index, attempt=attempt, event=change):
            name, data = event_json(change)
            return name, {**data, "index": index, "attempt": attempt}
        case DownloadFinished(index=index, result=result):
            return "download", {
                "index": index,
                "job_id": result.job_id,
                "ok": result.ok,
                "error": result.error,
            }
        case RetryStarted(index=index, attempt=attempt, old_job_id=old, new_job_id=new):
            return "retry", {
                "index": index,
                "attempt": attempt,
                "old_job_id": old,
                "new_job_id": new,
                "method": str(event.method),
                "reason": event.reason,
            }
        case RetryFailed(index=index, attempt=attempt, job_id=job_id, error=error):
            return "retry_failed", {
                "index": index,
                "attempt": attempt,
                "job_id": job_id,
                "error": error,
            }
        case GaveUp(index=index, job_id=job_id, attempts=attempts, reason=reason):
            return "gave_up", {
                "index": index,
                "job_id": job_id,
                "attempts": attempts,
                "reason": reason,
            }
        case BrakeEngaged(failed=failed, total=total):
            return "brake", {"failed": failed, "total": total}
        case PollProblem(event=problem):
            name, data = event_json(problem)
            return "poll", {"kind": name, **data}
        case CampaignEnded(progress=progress):
            return "end", progress_json(progress)
    raise TypeError(event)


class Feed:
    """One campaign's events as SSE text, kept from its start so that late clients see all."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.changed = anyio.Event()
        self.progress: CampaignProgress | None = None
        self.ended = False

    def add(self, event: CampaignEvent) -> None:
        self.items.append(sse(*campaign_event_json(event)))
        if isinstance(event, CampaignEnded):
            self.ended = True
        self.changed.set()
        self.changed = anyio.Event()

    async def follow(self) -> AsyncIterator[str]:
        sent = 0
        while True:
            changed = self.changed
            while sent < len(self.items):
                yield self.items[sent]
                sent += 1
            if self.ended:
                return
            await changed.wait()


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with AsyncDirac() as dirac, anyio.create_task_group() as tasks:
        app.state.dirac = dirac
        app.state.tasks = tasks
        app.state.campaigns = {}
        yield
        tasks.cancel_scope.cancel()  # running campaigns stop; their journals resume them


def job_from(body: dict[str, Any], default_name: str) -> Job:
    """The parametric job a request body describes (a typed error for a bad value)."""
    job = Job()
    job.setName(str(body.get("job_name", default_name)))
    job.setExecutable(
        str(body.get("executable", "/bin/echo")), arguments=str(body.get("arguments", ""))
    )
    values = body.get("values")
    if values is not None:
        job.setParameterSequence(str(body.get("parameter", "n")), list(values))
    return job


async def start_campaign(request: Request) -> Response:
    try:
        body = await request.json()
        name = str(body.get("name", ""))
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ValueError("a campaign name is 1-64 letters, digits, '-' or '_'")
        job = job_from(body, f"{name}-%n")
        policy = FailurePolicy(
            max_attempts=int(body.get("attempts", 3)),
            delay=float(body.get("retry_delay", 60)),
            method=str(body.get("retry_by", "reschedule")),
            max_failed_fraction=float(body.get("max_failed", 0.25)),
        )
    except (ValueError, TypeError, AttributeError) as exc:  # aiodirac's typed errors included
        return JSONResponse({"error": str(exc)}, status_code=400)
    campaigns: dict[str, tuple[Feed, Any]] = request.app.state.campaigns
    if name in campaigns:
        return JSONResponse({"error": f"campaign {name} exists"}, status_code=409)
    folder = Path("campaigns")
    folder.mkdir(exist_ok=True)
    feed = Feed()
    dirac: AsyncDirac = request.app.state.dirac
    campaign = dirac.campaign(
        job,
        journal=folder / f"{name}.db",
        dest=folder / name,
        policy=policy,
        callbacks=[feed.add],
    )
    campaigns[name] = (feed, campaign)

    async def run() -> None:
        try:
            await campaign.run()
        except DiracError as exc:  # the service failed: the stream ends with the reason
            feed.items.append(sse("error", {"error": str(exc)}))
            feed.ended = True
            feed.changed.set()

    tasks: anyio.abc.TaskGroup = request.app.state.tasks
    tasks.start_soon(run)
    return JSONResponse({"campaign": name}, status_code=202)


def _campaign(request: Request) -> tuple[Feed, Any] | Response:
    found = request.app.state.campaigns.get(request.path_params["name"])
    if found is None:
        return JSONResponse({"error": "no such campaign"}, status_code=404)
    return found  # type: ignore[no-any-return]


async def campaign_progress(request: Request) -> Response:
    found = _campaign(request)
    if isinstance(found, Response):
        return found
    return JSONResponse(progress_json(found[1].progress))


async def campaign_events(request: Request) -> Response:
    found = _campaign(request)
    if isinstance(found, Response):
        return found
    return StreamingResponse(
        found[0].follow(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


async def submit(request: Request) -> Response:
    try:
        body = await request.json()
        job = job_from({**body, "job_name": body.get("name", "service-%n")}, "service-%n")
    except (ValueError, TypeError, AttributeError) as exc:  # DiracError's job errors included
        return JSONResponse({"error": str(exc)}, status_code=400)
    dirac: AsyncDirac = request.app.state.dirac
    try:
        ids = await dirac.submit(job)
    except ValueError as exc:  # the job cannot be described (JobDescriptionError)
        return JSONResponse({"error": str(exc)}, status_code=400)
    except DiracError as exc:  # the service failed
        return JSONResponse({"error": str(exc)}, status_code=502)
    return JSONResponse({"job_ids": ids}, status_code=201)


def _ids(request: Request) -> list[int] | Response:
    try:
        return parse_ids(request.path_params["ids"])
    except ValueError:
        return JSONResponse({"error": "job IDs: 12, 12,13 or 12-20"}, status_code=400)


async def status(request: Request) -> Response:
    ids = _ids(request)
    if isinstance(ids, Response):
        return ids
    dirac: AsyncDirac = request.app.state.dirac
    try:
        states = await dirac.status(ids)
    except DiracError as exc:
        return JSONResponse({"error": str(exc)}, status_code=502)
    return JSONResponse({"jobs": [state_json(s) for s in states.values()]})


async def events(request: Request) -> Response:
    ids = _ids(request)
    if isinstance(ids, Response):
        return ids
    dirac: AsyncDirac = request.app.state.dirac

    async def stream() -> AsyncIterator[str]:
        # Leaving this generator (the client went away) closes the tracking session with it.
        async with dirac.track(ids) as tracking:
            async for event in tracking:
                yield sse(*event_json(event))
            summary = tracking.summary
            counts = {str(status): n for status, n in summary.counts.items()}
            yield sse("end", {"counts": counts, "vanished": summary.vanished})

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


app = Starlette(
    routes=[
        Route("/campaigns", start_campaign, methods=["POST"]),
        Route("/campaigns/{name}", campaign_progress, methods=["GET"]),
        Route("/campaigns/{name}/events", campaign_events, methods=["GET"]),
        Route("/jobs", submit, methods=["POST"]),
        Route("/jobs/{ids}", status, methods=["GET"]),
        Route("/jobs/{ids}/events", events, methods=["GET"]),
    ],
    lifespan=lifespan,
)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="aiodirac event service example")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
