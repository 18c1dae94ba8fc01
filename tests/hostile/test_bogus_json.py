"""A fake DiracX answering 200 with JSON of the wrong shape, or with no JSON at all: each call
raises one ``BackendError`` naming the request and what was expected (``S_ERROR`` from the
blocking facade), never an ``AttributeError`` or ``KeyError`` from inside aiodirac."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from _checks import assert_contained, assert_no_token, socket_buffers
from _server import TOKEN, FakeDiracX, FakeJob, HostileServer, Reply, endless

from aiodirac import (
    AsyncDirac,
    BackendError,
    Dirac,
    DownloadConfig,
    Job,
    Limits,
    RetryPolicy,
    SubmissionError,
)

QUICK = Limits(retry=RetryPolicy(deadline=0.3, initial=0.05, max_backoff=0.1))

BOGUS: dict[str, Reply] = {
    "string": Reply.json("surprise"),
    "number": Reply.json(42),
    "null": Reply.json(None),
    "object": Reply.json({"unexpected": "object"}),
    "list-of-strings": Reply.json(["a", "b"]),
    "rows-without-JobID": Reply.json([{"Status": "Done"}]),
    "rows-with-bad-JobID": Reply.json([{"JobID": "abc", "Status": "Done"}]),
    "rows-with-negative-JobID": Reply.json([{"JobID": -3, "Status": "Done"}]),
    "html": Reply(body=b"<html>maintenance</html>", headers={"Content-Type": "text/html"}),
    "empty": Reply(body=b""),
}


def _job() -> Job:
    job = Job()
    job.setExecutable("/bin/echo", arguments="hello")
    return job


# endpoint -> a call that reads its answer
CALLS: dict[str, Callable[[AsyncDirac, Path], Awaitable[Any]]] = {
    "search": lambda d, _: d.status([1]),
    "summary": lambda d, _: d.summary([1]),
    "status": lambda d, _: d.kill([1]),
    "reschedule": lambda d, _: d.reschedule([1]),
    "sandbox_register": lambda d, _: d.submit(_job()),
    "submit": lambda d, _: d.submit(_job()),
}


@pytest.fixture
def dx(fake: FakeDiracX, server: HostileServer) -> str:
    fake.jobs = {1: FakeJob(1, status="Running", sandbox=b"x")}
    return server.url


def _client(url: str) -> AsyncDirac:
    return AsyncDirac(
        "diracx",
        url=url,
        token=TOKEN,
        limits=QUICK,
        download_config=DownloadConfig(retry=QUICK.retry, processes=0),
    )


@pytest.mark.parametrize("shape", sorted(BOGUS))
@pytest.mark.parametrize("endpoint", sorted(CALLS))
async def test_wrong_shape_is_a_backend_error(
    fake: FakeDiracX, dx: str, tmp_path: Path, endpoint: str, shape: str, logs
) -> None:
    fake.override[endpoint] = BOGUS[shape]
    if endpoint == "submit":
        fake.override["sandbox_register"] = Reply.json(
            {"pfn": "SB:SandboxSE|/S3/store/sha256:" + "0" * 64 + ".tar.bz2", "url": None}
        )
    if endpoint == "reschedule":
        fake.jobs[1].status = "Failed"
    async with _client(dx) as dirac:
        with pytest.raises((BackendError, SubmissionError)) as caught:
            await CALLS[endpoint](dirac, tmp_path)
    error = caught.value
    assert not isinstance(error, BaseExceptionGroup)
    text = str(error)
    assert "DiracX answered" in text or "DiracX" in text, text
    if isinstance(error, BackendError) and shape not in ("html", "empty"):
        assert "expected" in text, text
    assert_no_token(text, logs.text)


@pytest.mark.parametrize("shape", sorted(BOGUS))
@pytest.mark.parametrize("endpoint", ["sandbox_listing", "sandbox_url"])
async def test_wrong_sandbox_answers_fail_the_job_only(
    fake: FakeDiracX, dx: str, tmp_path: Path, endpoint: str, shape: str
) -> None:
    fake.jobs[1].status = "Done"
    fake.override[endpoint] = BOGUS[shape]
    async with _client(dx) as dirac:
        (result,) = await dirac.download([1], tmp_path / "out")
    assert not result.ok
    assert isinstance(result.exception, BackendError | Exception)
    assert "unexpected error" not in (result.error or "")
    assert not isinstance(result.exception, AttributeError | KeyError | TypeError | ValueError)
    assert_contained(tmp_path / "out")


def test_blocking_facade_returns_s_error_naming_the_endpoint(
    fake: FakeDiracX, dx: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    fake.override["search"] = BOGUS["string"]
    with Dirac(backend="diracx", url=dx, token=TOKEN, limits=QUICK) as dirac:
        result = dirac.getJobStatus(1)
    assert result["OK"] is False
    assert "POST /api/jobs/search" in result["Message"]
    assert "expected a list of objects with a JobID" in result["Message"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(body=endless(b'[{"JobID": 1, "Status": "'), length=None), "more than"),
        (Reply(body=b"[]", stall=True), "timed out"),
        (
            Reply(500, b"<h1>Internal Server Error</h1>", headers={"Content-Type": "text/html"}),
            "500",
        ),
    ],
    ids=["endless-body", "stall", "500-html"],
)
async def test_floods_stalls_and_500s_end_with_one_error(
    fake: FakeDiracX,
    dx: str,
    server: HostileServer,
    monkeypatch: pytest.MonkeyPatch,
    reply: Reply,
    expected: str,
) -> None:
    import tracemalloc

    from aiodirac.backends.diracx import DiracXBackend, _shapes

    monkeypatch.setattr(_shapes, "MAX_ANSWER_BYTES", 4 << 20)
    fake.override["search"] = reply
    tracemalloc.start()
    try:
        async with DiracXBackend(dx, token=TOKEN, timeout=0.5) as backend:
            with pytest.raises(BackendError) as caught:
                await backend.status([1])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert expected in str(caught.value)
    assert peak < 32 << 20, f"{peak} bytes of Python memory for a 4 MiB cap"
    assert server.sent < (4 << 20) + socket_buffers()
    assert_no_token(caught.value)
