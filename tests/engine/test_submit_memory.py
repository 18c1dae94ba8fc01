"""Tests of aiodirac.testing._memory.MemoryBackend: DIRAC's rules, faults, speed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from _chunks import make_chunk

from aiodirac._exceptions import (
    InvalidRequestError,
    InvalidTransitionError,
    JobNotFoundError,
    NetworkError,
    SandboxNotAvailableError,
    ServiceUnavailableError,
    TransientError,
)
from aiodirac._job._status import JobStatus, MinorStatus
from aiodirac.backends._protocol import OutputSandbox
from aiodirac.testing._memory import Faults, MemoryBackend


async def test_two_phase_submit_confirm() -> None:
    backend = MemoryBackend()
    ids = await backend.submit(make_chunk(range(5), job_group="g1"))
    assert ids == [1, 2, 3, 4, 5]
    states = await backend.status(ids)
    assert {s.status for s in states.values()} == {JobStatus.SUBMITTING}
    assert states[1].minor_status == MinorStatus.BULK_CONFIRMATION
    # Submitting jobs never progress until confirmed.
    assert backend.advance(ids, to=JobStatus.DONE) == []
    with pytest.raises(InvalidTransitionError, match="unconfirmed"):
        backend.set_status(ids[:1], JobStatus.RUNNING)
    await backend.confirm(ids)
    await backend.confirm(ids)  # twice is harmless
    assert {s.status for s in (await backend.status(ids)).values()} == {JobStatus.RECEIVED}
    assert [j.job_id for j in backend.confirmed("g1")] == ids
    assert backend.jobs[3].name == "scan-2"
    assert backend.jobs[3].job_group == "g1"


async def test_advance_and_set_status_follow_dirac_rules() -> None:
    backend = MemoryBackend()
    ids = await backend.submit(make_chunk(range(3)))
    await backend.confirm(ids)
    assert backend.advance(ids[:1]) == ids[:1]
    assert backend.jobs[ids[0]].status is JobStatus.CHECKING
    backend.advance(ids[:2], to=JobStatus.RUNNING)
    assert backend.jobs[ids[1]].status is JobStatus.RUNNING
    assert backend.jobs[ids[1]].site == "Memory.Local.site"
    backend.advance(ids[:2], to=JobStatus.DONE)
    state = (await backend.status(ids[:1]))[ids[0]]
    assert state.status is JobStatus.DONE
    assert state.minor_status == MinorStatus.EXEC_COMPLETE
    with pytest.raises(InvalidTransitionError) as info:
        backend.set_status(ids[:1], JobStatus.RUNNING)
    assert info.value.current == "Done"
    backend.set_status(ids[2:], JobStatus.FAILED, "boom", application_status="Error 3")
    assert backend.jobs[ids[2]].application_status == "Error 3"
    with pytest.raises(ValueError, match="not on the path"):
        backend.advance(ids, to=JobStatus.FAILED)
    with pytest.raises(JobNotFoundError):
        backend.set_status([999], JobStatus.KILLED)


async def test_discard_find_unconfirmed_and_windows() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    backend = MemoryBackend(now=lambda: now)
    old = await backend.submit(make_chunk(range(2), job_group="a"))
    now += timedelta(minutes=10)
    new = await backend.submit(make_chunk(range(2, 4), job_group="a", name="other"))
    mine = await backend.submit(make_chunk(range(4, 6), job_group="b"))
    found = await backend.find_unconfirmed(job_group="a")
    assert [j.job_id for j in found] == old + new
    found = await backend.find_unconfirmed(
        job_group="a", until=datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    )
    assert [j.job_id for j in found] == old
    found = await backend.find_unconfirmed(name_prefix="other-")
    assert [j.job_id for j in found] == new
    found = await backend.find_unconfirmed(since=now)
    assert [j.job_id for j in found] == new + mine
    await backend.confirm(mine)
    await backend.discard(mine, "swept")  # confirmed: left alone, as every backend does
    assert {backend.jobs[i].status for i in mine} == {JobStatus.RECEIVED}
    await backend.discard(old, "aiodirac: swept")
    assert backend.jobs[old[0]].status is JobStatus.KILLED
    assert backend.jobs[old[0]].minor_status == "aiodirac: swept"
    with pytest.raises(InvalidTransitionError, match="cannot confirm"):
        await backend.confirm(old)
    assert backend.confirmed() == [backend.jobs[i] for i in mine]


async def test_kill_delete_reschedule_summary() -> None:
    backend = MemoryBackend()
    ids = await backend.submit(make_chunk(range(4)))
    await backend.confirm(ids)
    backend.advance(ids[:1], to=JobStatus.DONE)
    backend.advance(ids[1:2], to=JobStatus.RUNNING)
    result = await backend.kill([*ids, 99])
    assert result.done == tuple(ids[1:])
    assert result.refused == {ids[0]: "Done", 99: "unknown job"}
    assert await backend.summary(ids) == {JobStatus.DONE: 1, JobStatus.KILLED: 3}
    result = await backend.delete(ids)
    assert result.done == tuple(ids)
    ids2 = await backend.submit(make_chunk(range(4, 6)))
    await backend.confirm(ids2)
    backend.advance(ids2, to=JobStatus.RUNNING)
    backend.set_status(ids2[:1], JobStatus.FAILED)
    result = await backend.reschedule(ids2)
    assert result.done == tuple(ids2)
    assert backend.jobs[ids2[0]].minor_status == MinorStatus.RESCHEDULED
    assert backend.jobs[ids2[0]].status is JobStatus.RECEIVED


async def test_output_sandbox_and_jdl() -> None:
    backend = MemoryBackend()
    (job_id,) = await backend.submit(make_chunk([0]))
    await backend.confirm([job_id])
    with pytest.raises(SandboxNotAvailableError, match="final"):
        await backend.output_sandbox(job_id)
    backend.advance([job_id], to=JobStatus.DONE)
    with pytest.raises(SandboxNotAvailableError, match="no output"):
        await backend.output_sandbox(job_id)
    backend.set_output_sandbox(job_id, OutputSandbox(job_id=job_id, path="/x.tar", format="tar"))
    assert (await backend.output_sandbox(job_id)).path == "/x.tar"
    with pytest.raises(JobNotFoundError):
        await backend.output_sandbox(12345)
    jdl = await backend.get_jdl(job_id)
    assert 'JobName = "scan-0";' in jdl


async def test_refuse_and_limits() -> None:
    backend = MemoryBackend(refuse=lambda c: "bad job scan-3" if 3 in c.indices else None)
    with pytest.raises(InvalidRequestError, match="scan-3"):
        await backend.submit(make_chunk(range(3, 5)))
    with pytest.raises(InvalidRequestError, match="limit"):
        await backend.submit(make_chunk(range(100, 121)))
    assert backend.jobs == {}


async def test_seeded_faults_replay_and_ambiguous_creates_jobs() -> None:
    async def run(seed: int) -> tuple[list[str], int]:
        backend = MemoryBackend(
            faults=Faults(transient=0.2, unavailable=0.2, ambiguous=0.2, seed=seed)
        )
        outcome: list[str] = []
        for i in range(50):
            try:
                await backend.submit(make_chunk([i]))
                outcome.append("ok")
            except ServiceUnavailableError as exc:
                outcome.append(f"503 {exc.retry_after}")
            except NetworkError as exc:
                outcome.append("lost" if "lost reply" in str(exc) else "reset")
        return outcome, len(backend.jobs)

    first, created = await run(5)
    assert first == (await run(5))[0]
    assert set(first) == {"ok", "503 1.0", "lost", "reset"}
    # Ambiguous failures created their jobs; resets and 503s did not.
    assert created == first.count("ok") + first.count("lost")


async def test_faults_only_on_chosen_methods() -> None:
    backend = MemoryBackend(faults=Faults(transient=1.0, methods=frozenset({"confirm"})))
    ids = await backend.submit(make_chunk(range(2)))
    with pytest.raises(TransientError):
        await backend.confirm(ids)
    backend.set_faults(Faults())
    await backend.confirm(ids)
    assert backend.calls["confirm"] == 2
    with pytest.raises(ValueError, match="unknown methods"):
        Faults(methods=frozenset({"nope"}))
    with pytest.raises(ValueError, match="add up"):
        Faults(transient=0.6, ambiguous=0.6)


async def test_status_of_100000_jobs_is_quick() -> None:
    backend = MemoryBackend(first_id=1)
    for start in range(0, 100_000, 20):
        await backend.submit(make_chunk(range(start, start + 20)))
    ids = list(backend.jobs)
    await backend.confirm(ids[:1000])
    t0 = time.perf_counter()
    for page in range(0, 100_000, 10_000):
        answer = await backend.status(ids[page : page + 10_000])
        assert len(answer) == 10_000
    assert time.perf_counter() - t0 < 2.0
