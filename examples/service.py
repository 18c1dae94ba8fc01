"""An event-driven web service: submit jobs over HTTP, stream their events to clients (SSE).

One :class:`aiodirac.AsyncDirac` serves the whole application (one connection pool, one rate
limit); each client that follows jobs gets its own tracking stream, polled in batches, and
receives every change as a server-sent event the moment the service sees it.

    pip install 'aiodirac[examples]'        # starlette and uvicorn
    python examples/service.py --port 8000

    curl -X POST localhost:8000/jobs -d '{"arguments": "hello %(n)s", "values": [1, 2, 3]}'
    curl -N localhost:8000/jobs/1-3/events  # event: job ... until event: end
    curl localhost:8000/jobs/1-3            # the current states, as JSON

Routes:
    POST /jobs                 {"executable", "arguments", "name", "values"} -> {"job_ids": [...]}
    GET  /jobs/{ids}           current states ({ids}: ``12``, ``12,13`` or ``12-20``)
    GET  /jobs/{ids}/events    text/event-stream: ``job``, ``vanished``, ``poll_failed``,
                               ``poll_recovered`` events, then ``end`` when all are final
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aiodirac import (
    AsyncDirac,
    DiracError,
    Job,
    JobEvent,
    JobState,
    JobVanished,
    PollFailed,
    PollRecovered,
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


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with AsyncDirac() as dirac:
        app.state.dirac = dirac
        yield


async def submit(request: Request) -> Response:
    try:
        body = await request.json()
        job = Job()
        job.setName(str(body.get("name", "service-%n")))
        job.setExecutable(
            str(body.get("executable", "/bin/echo")), arguments=str(body.get("arguments", ""))
        )
        values = body.get("values")
        if values is not None:
            job.setParameterSequence(str(body.get("parameter", "n")), list(values))
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
