"""AsyncDirac end to end on the real local backend: submit, status, wait, download, control."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest

from aiodirac import (
    AsyncDirac,
    InvalidArgumentError,
    InvalidTransitionError,
    Job,
    JobEvent,
    JobStatus,
)
from aiodirac._client import job_ids
from aiodirac._engine.track._tracker import TrackConfig
from aiodirac.testing import MemoryBackend


def _echo_job(n: int = 1) -> Job:
    job = Job(name="echo-%n", cpu_time=60)
    job.setExecutable("/bin/echo", arguments="value %(x)s")
    job.setParameterSequence("x", [str(i) for i in range(n)])
    return job


def _sleep_job(seconds: int = 60) -> Job:
    job = Job(name="sleeper", cpu_time=600)
    job.setExecutable("/bin/sleep", arguments=str(seconds))
    return job


def test_job_ids_normalised_and_checked_before_anything_is_sent() -> None:
    assert job_ids("196") == [196]
    assert job_ids([3, "4", 3]) == [3, 4]
    for bad in (["x"], [0], [-3], [True], [1.5]):
        with pytest.raises(InvalidArgumentError, match="job ID"):
            job_ids(bad)  # type: ignore[arg-type]


async def test_not_open_is_a_clear_error() -> None:
    client = AsyncDirac()
    with pytest.raises(RuntimeError, match="async with AsyncDirac"):
        await client.status([1])


async def test_submit_track_wait_download(dirac: AsyncDirac, tmp_path: Path) -> None:
    ids = await dirac.submit(_echo_job(5))
    assert len(ids) == len(set(ids)) == 5
    seen: dict[int, list[JobStatus]] = {job_id: [] for job_id in ids}
    async with dirac.track(ids) as events:
        async for event in events:
            if isinstance(event, JobEvent):
                seen[event.job_id].append(event.status)
    assert all(statuses[-1] is JobStatus.DONE for statuses in seen.values()), seen
    final = await dirac.wait(ids, timeout=30)
    assert {s.status for s in final.values()} == {JobStatus.DONE}
    assert {s.minor_status for s in final.values()} == {"Execution Complete"}
    states = await dirac.status([*ids, 999_999])
    assert list(states) == ids  # unknown IDs are absent, order kept
    assert (await dirac.summary(ids)) == {JobStatus.DONE: 5}

    results = await dirac.download(ids, tmp_path / "out")
    assert [r.job_id for r in results] == ids
    assert all(r.ok for r in results), [r.error for r in results]
    for index, job_id in enumerate(ids):
        assert (tmp_path / "out" / str(job_id) / "std.out").read_text() == f"value {index}\n"


async def test_kill_a_running_job_and_refuse_a_final_one(dirac: AsyncDirac) -> None:
    (sleeper,) = await dirac.submit(_sleep_job())
    (quick,) = await dirac.submit(_echo_job())
    with anyio.fail_after(30):
        while (await dirac.status([sleeper]))[sleeper].status is not JobStatus.RUNNING:
            await anyio.sleep(0.1)
    await dirac.wait([quick], timeout=30)
    assert await dirac.kill([sleeper]) == [sleeper]
    final = await dirac.wait([sleeper], timeout=30)
    assert final[sleeper].status is JobStatus.KILLED
    # Killed -> Killed is allowed (as DIRAC's state machine has it); Done -> Killed is not.
    with pytest.raises(InvalidTransitionError) as info:
        await dirac.kill([quick, sleeper])
    assert info.value.job_ids == (quick,)
    assert f"job {quick}" in str(info.value)
    assert "Done" in str(info.value)
    assert await dirac.delete([sleeper]) == [sleeper]
    assert (await dirac.status([sleeper]))[sleeper].status is JobStatus.DELETED


async def test_reschedule_runs_a_failed_job_again(dirac: AsyncDirac) -> None:
    job = Job(name="fails")
    job.setExecutable("/bin/sh", arguments="-c 'exit 3'")
    (job_id,) = await dirac.submit(job)
    assert (await dirac.wait([job_id], timeout=30))[job_id].status is JobStatus.FAILED
    assert await dirac.reschedule([job_id]) == [job_id]
    again = await dirac.wait([job_id], timeout=30)
    assert again[job_id].status is JobStatus.FAILED
    with pytest.raises(InvalidTransitionError):
        await dirac.reschedule([job_id + 1000])


async def test_jdl_and_peek(dirac: AsyncDirac) -> None:
    (job_id,) = await dirac.submit(_echo_job())
    await dirac.wait([job_id], timeout=30)
    assert "echo-0" in await dirac.get_jdl(job_id)
    assert "value 0" in await dirac.peek(job_id)


async def test_backend_choice_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiodirac")
    from aiodirac import _client

    _client._announced.clear()
    for _ in range(2):
        async with AsyncDirac() as client:
            await client.status([1])
    lines = [r.getMessage() for r in caplog.records if "aiodirac uses" in r.getMessage()]
    assert len(lines) == 1
    assert "local backend" in lines[0]
    assert "no DiracX server configured" in lines[0]


async def test_secrets_stay_out_of_reprs() -> None:
    # Every object on the way from AsyncDirac(token=...) to the request holds or hands out the
    # token; none shows it.
    import httpx

    from aiodirac.backends.diracx._auth import _Credentials

    secret = "very-secret-token"
    async with AsyncDirac(url="https://diracx.invalid", token=secret) as client:
        backend = client.backend
        tokens = backend._tokens  # type: ignore[attr-defined]
        async with httpx.AsyncClient() as http:
            assert await tokens.get(http) == secret  # the token is there, to be hidden
        shown = [repr(client), str(client), repr(backend), repr(tokens)]
    shown.append(repr(_Credentials(secret, "refresh-" + secret, 0.0)))
    for text in shown:
        assert secret not in text, text


async def test_track_unsealed_waits_for_jobs_still_to_come() -> None:
    """``track(sealed=False)``: the stream outlives its first jobs' ends until ``seal()``."""

    def job(name: str) -> Job:
        j = Job()
        j.setExecutable("/bin/true")
        j.setName(name)
        return j

    # No pause between polls: the poller is either polling or waiting for jobs, never in a timed
    # sleep, so "every task blocked" means it waits with nothing to poll.
    fast = TrackConfig(min_interval=0, max_interval=0)
    async with MemoryBackend() as backend, AsyncDirac(backend, track_config=fast) as dirac:
        first = await dirac.submit(job("first"))
        backend.advance(first, to=JobStatus.DONE)
        finals: list[int] = []
        async with dirac.track(first, sealed=False) as events:
            async for event in events:
                if isinstance(event, JobEvent) and event.final:
                    finals.append(event.job_id)
                    if event.job_id in first:
                        # The first job is final and the poller, with nothing left to poll,
                        # waits: the stream must wait for the second one.
                        await anyio.wait_all_tasks_blocked()
                        assert not events.pending
                        second = await dirac.submit(job("second"))
                        assert events.add(second) == 1
                        events.seal()
                        backend.advance(second, to=JobStatus.DONE)
    assert finals == [*first, *second]
