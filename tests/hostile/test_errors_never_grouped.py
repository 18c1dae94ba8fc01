"""A refused token or a dead network: every public call raises one typed aiodirac error (never an
``ExceptionGroup``), and the blocking facade returns ``S_ERROR`` (never raises)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from _checks import assert_no_token
from _server import TOKEN, FakeDiracX, FakeJob, HostileServer

from aiodirac import (
    AsyncDirac,
    AuthenticationError,
    BackendError,
    Dirac,
    DiracError,
    DownloadConfig,
    Job,
    Limits,
    NetworkError,
    RetryPolicy,
    SubmissionError,
    TrackConfig,
)

QUICK_RETRY = RetryPolicy(deadline=0.5, initial=0.05, max_backoff=0.1)


def _job() -> Job:
    job = Job()
    job.setExecutable("/bin/echo", arguments="hello")
    return job


def _client(url: str) -> AsyncDirac:
    return AsyncDirac(
        "diracx",
        url=url,
        token=TOKEN,
        limits=Limits(retry=QUICK_RETRY),
        track_config=TrackConfig(min_interval=0.05, max_interval=0.1, retry=QUICK_RETRY),
        download_config=DownloadConfig(retry=QUICK_RETRY, processes=0),
    )


CALLS: dict[str, Callable[[AsyncDirac, Path], Awaitable[Any]]] = {
    "status": lambda d, _: d.status([1, 2]),
    "status-many-pages": lambda d, _: d.status(list(range(1, 25_000))),
    "summary": lambda d, _: d.summary([1, 2]),
    "wait": lambda d, _: d.wait([1, 2]),
    "submit": lambda d, _: d.submit(_job()),
    "kill": lambda d, _: d.kill([1]),
    "delete": lambda d, _: d.delete([1]),
    "reschedule": lambda d, _: d.reschedule([1]),
    "peek": lambda d, _: d.peek(1),
    "select": lambda d, _: d.select(status="Running"),
    "attributes": lambda d, _: d.attributes([1, 2]),
    "logging_info": lambda d, _: d.logging_info(1),
    "submit_stream": lambda d, _: _stream(d),
    "campaign": lambda d, p: d.campaign(_job(), journal=p / "c.db").run(),
}


# A campaign rides out outages for as long as it runs (it waits and tries again): only a refused
# token stops it.
OUTAGE_CALLS = {name: call for name, call in CALLS.items() if name != "campaign"}


async def _stream(dirac: AsyncDirac) -> None:
    async with dirac.submit_stream(_job()) as submitted:
        async for _ in submitted:
            pass


async def _track(dirac: AsyncDirac) -> None:
    async with dirac.track([1, 2]) as events:
        async for _ in events:
            pass


@pytest.fixture
def refusing(fake: FakeDiracX, server: HostileServer) -> str:
    fake.jobs = {1: FakeJob(1, status="Running"), 2: FakeJob(2, status="Running")}
    fake.refuse_token = True
    return server.url


@pytest.fixture
def dead_url() -> str:
    # A port that was listening a moment ago and no longer is: connections are refused.
    with HostileServer(FakeDiracX()) as gone:
        url = gone.url
    return url


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_refused_token_is_one_authentication_error(
    refusing: str, tmp_path: Path, call: str, logs
) -> None:
    async with _client(refusing) as dirac:
        with pytest.raises(DiracError) as caught:
            await CALLS[call](dirac, tmp_path)
    assert not isinstance(caught.value, BaseExceptionGroup)
    assert isinstance(caught.value, AuthenticationError | BackendError)
    assert_no_token(caught.value, logs.text)


@pytest.mark.parametrize("call", sorted(OUTAGE_CALLS))
async def test_network_failure_is_one_network_error(
    dead_url: str, tmp_path: Path, call: str, logs
) -> None:
    async with _client(dead_url) as dirac:
        with pytest.raises(DiracError) as caught:
            await CALLS[call](dirac, tmp_path)
    assert not isinstance(caught.value, BaseExceptionGroup)
    assert isinstance(caught.value, NetworkError | BackendError | SubmissionError), repr(
        caught.value
    )
    assert_no_token(caught.value, logs.text)


@pytest.mark.parametrize("where", ["refusing", "dead_url"])
async def test_track_and_download(where: str, request: pytest.FixtureRequest, tmp_path: Path):
    url = request.getfixturevalue(where)
    async with _client(url) as dirac:
        with pytest.raises(BackendError) as caught:
            await _track(dirac)
        assert not isinstance(caught.value, BaseExceptionGroup)
        # Downloads report failures per job, never by raising for all.
        (result,) = await dirac.download([1], tmp_path / "out")
    assert not result.ok
    assert isinstance(result.exception, BackendError)
    assert_no_token(result.error, caught.value)


SYNC_CALLS: dict[str, Callable[[Dirac], dict[str, Any]]] = {
    "getJobStatus": lambda d: d.getJobStatus([1, 2]),
    "status": lambda d: d.status(1),
    "wait": lambda d: d.wait([1], timeout=5),
    "submitJob": lambda d: d.submitJob(_job()),
    "getOutputSandbox": lambda d: d.getOutputSandbox(1, outputDir="out"),
    "killJob": lambda d: d.killJob(1),
    "deleteJob": lambda d: d.deleteJob(1),
    "rescheduleJob": lambda d: d.rescheduleJob(1),
    "peekJob": lambda d: d.peekJob(1),
    "getJobJDL": lambda d: d.getJobJDL(1),
    "selectJobs": lambda d: d.selectJobs(status="Running"),
    "getJobAttributes": lambda d: d.getJobAttributes(1),
    "getJobSummary": lambda d: d.getJobSummary(1),
    "getJobLoggingInfo": lambda d: d.getJobLoggingInfo(1),
    "getInputSandbox": lambda d: d.getInputSandbox(1),
}


@pytest.mark.parametrize("where", ["refusing", "dead_url"])
@pytest.mark.parametrize("call", sorted(SYNC_CALLS))
def test_blocking_facade_returns_s_error(
    where: str,
    call: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = request.getfixturevalue(where)
    monkeypatch.chdir(tmp_path)
    with Dirac(
        backend="diracx",
        url=url,
        token=TOKEN,
        limits=Limits(retry=QUICK_RETRY),
        track_config=TrackConfig(min_interval=0.05, max_interval=0.1, retry=QUICK_RETRY),
        download_config=DownloadConfig(retry=QUICK_RETRY, processes=0),
    ) as dirac:
        result = SYNC_CALLS[call](dirac)
    assert result["OK"] is False
    assert result["Message"]
    assert_no_token(result, caplog.text)
    assert not (tmp_path / "out" / "1").exists()
