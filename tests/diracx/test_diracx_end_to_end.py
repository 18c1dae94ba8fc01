"""The seed job on a real DiracX: submitted, run by the test pilot, tracked to Done, downloaded."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import anyio
import pytest
from _dxjobs import make_chunk

from aiodirac import DownloadConfig, Downloader, InvalidTransitionError, JobStatus
from aiodirac.backends.diracx import DiracXBackend
from aiodirac.testing._pilot import DiracXTestPilot
from diracx_server import DiracXServer

pytestmark = pytest.mark.diracx


async def _until_final(backend: DiracXBackend, ids: list[int]) -> dict[int, JobStatus]:
    with anyio.fail_after(60):
        while True:
            states = await backend.status(ids)
            if len(states) == len(ids) and all(s.final for s in states.values()):
                return {i: s.status for i, s in states.items()}
            await anyio.sleep(0.2)


async def _download(server: DiracXServer, backend: DiracXBackend, job_id: int, dest: Path) -> Path:
    """The job's output sandbox fetched and unpacked by the library's own Downloader."""
    async with Downloader(backend, DownloadConfig(verify=server.verify)) as downloader:
        (result,) = await downloader.download([job_id], dest)
    assert result.ok, result.error
    assert result.path == dest / str(job_id)
    assert result.bytes > 0
    return result.path


async def test_seed_job_end_to_end(
    diracx_server: DiracXServer,
    credentials: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "aiodirac"):
        caplog.set_level(logging.DEBUG, logger=name)  # restored after the test
    secrets = json.loads(credentials.read_text())
    async with (
        diracx_server.backend(credentials) as backend,
        diracx_server.pilot(tmp_path / "grid", credentials) as pilot,
    ):
        ids = await backend.submit(make_chunk([0], name="API"))
        assert (await backend.status(ids))[ids[0]].status is JobStatus.SUBMITTING
        assert await pilot.run_jobs(ids) == []  # unconfirmed jobs never run
        await backend.confirm(ids)
        assert ids[0] in await pilot.waiting_jobs()
        runs = await pilot.run_jobs(ids)
        assert [r.job_id for r in runs] == ids
        assert await _until_final(backend, ids) == {ids[0]: JobStatus.DONE}
        state = (await backend.status(ids))[ids[0]]
        assert state.minor_status == "Execution Complete"
        assert state.site == "ANY" or state.site
        folder = await _download(diracx_server, backend, ids[0], tmp_path / "out")
        text = repr(backend) + repr(pilot)

    assert (folder / "Script1_echo.log").read_text().count("hello") == 1
    assert socket.gethostname() in (folder / "Script2_hostname.log").read_text()
    assert "hello again" in (folder / "Script3_echo.log").read_text()
    stdout = (folder / "std.out").read_text()
    assert "hello" in stdout
    assert "hello again" in stdout
    # tokens never reach logs or reprs (httpx's and httpcore's DEBUG logs included)
    assert {r.name.split(".")[0] for r in caplog.records} >= {"httpx", "httpcore"}
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records) + caplog.text + text
    for secret in (secrets["access_token"], secrets["refresh_token"]):
        assert secret
        assert secret not in logged
        assert secret[-20:] not in logged


async def test_failing_job_ends_failed_with_its_output(
    diracx_server: DiracXServer, backend: DiracXBackend, pilot: DiracXTestPilot, tmp_path: Path
) -> None:
    from aiodirac import Step

    steps = (
        Step(1, "/bin/echo", "before", "Script1_echo.log"),
        Step(2, "/bin/false", "", "Script2_false.log"),
    )
    ids = await backend.submit(make_chunk([0, 1], name="fails", steps=steps))
    await backend.confirm(ids)
    runs = await pilot.run_jobs(ids)
    assert {r.status for r in runs} == {JobStatus.FAILED}
    states = await backend.status(ids)
    assert {s.status for s in states.values()} == {JobStatus.FAILED}
    assert {s.minor_status for s in states.values()} == {"Application Finished With Errors"}
    folder = await _download(diracx_server, backend, ids[1], tmp_path / "out")
    assert "before" in (folder / "std.out").read_text()


async def test_pilot_drives_many_jobs_along_legal_sequences(
    backend: DiracXBackend, pilot: DiracXTestPilot
) -> None:
    ids: list[int] = []
    for start in range(0, 60, 20):
        ids += await backend.submit(make_chunk(range(start, start + 20), name="drive"))
    await backend.confirm(ids)
    path = ["Checking", "Waiting", "Matched", "Running"]
    sequences = {
        job_id: [*path, "Done"] if i % 3 == 0 else [*path, "Failed"] if i % 3 == 1 else ["Killed"]
        for i, job_id in enumerate(ids)
    }
    reached = await pilot.set_status(sequences)
    assert reached == {j: JobStatus(seq[-1]) for j, seq in sequences.items()}
    counts = await backend.summary(ids)
    assert counts == {JobStatus.DONE: 20, JobStatus.FAILED: 20, JobStatus.KILLED: 20}
    # an illegal move is refused by DiracX with a 200: the pilot reports it
    with pytest.raises(InvalidTransitionError, match="did not move") as info:
        await pilot.set_status({ids[0]: ["Running"]})
    assert info.value.job_ids == (ids[0],)
