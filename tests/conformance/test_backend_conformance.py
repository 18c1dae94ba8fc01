"""Behaviours every backend must show, run once per backend kind (see conftest.KINDS)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from aiodirac import (
    Backend,
    JobNotFoundError,
    JobState,
    JobStatus,
    NotSupportedError,
    SandboxNotAvailableError,
    SubmitChunk,
)
from aiodirac.backends._protocol import OutputSandbox
from diracx_server import current_server

MakeChunk = Callable[..., SubmitChunk]
Drive = Callable[..., Awaitable[dict[int, JobState]]]


async def sandbox_members(info: OutputSandbox) -> dict[str, bytes]:
    """The files of an output sandbox archive, by name, whether it is a local file or a URL."""
    if info.path is not None:
        with open(info.path, "rb") as handle:
            data = handle.read()
    else:
        assert info.url is not None
        # only the DiracX kind answers URLs: its S3 store is HTTPS, signed by the server's CA
        async with httpx.AsyncClient(timeout=30, verify=current_server().ssl) as client:
            response = await client.get(info.url)
            response.raise_for_status()
            data = response.content
    if info.size is not None:
        assert len(data) == info.size
    mode = {"tar": "r:", "tar.gz": "r:gz", "tar.bz2": "r:bz2"}.get(info.format)
    if mode is None:
        import zstandard

        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        mode = "r:"
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member)
            if extracted is not None:
                members[member.name] = extracted.read()
    return members


async def test_capabilities_are_usable(backend: Backend) -> None:
    caps = backend.capabilities
    assert caps.max_jobs_per_submit >= 1
    assert caps.max_ids_per_status >= 100
    assert caps.max_ids_per_update >= 1
    assert backend.description


async def test_submitted_jobs_stay_unconfirmed_and_never_run(
    backend: Backend, make_chunk: MakeChunk, drive_jobs: Drive
) -> None:
    waiting = await backend.submit(make_chunk(3, name="unconfirmed"))
    assert len(set(waiting)) == len(waiting) == 3
    # run other jobs to the end, so that whatever executes jobs has had its chance
    other = await backend.submit(make_chunk(1, name="confirmed"))
    await backend.confirm(other)
    await drive_jobs(other)
    states = await backend.status(waiting)
    assert {s.status for s in states.values()} == {JobStatus.SUBMITTING}
    assert {s.minor_status for s in states.values()} == {"Bulk transaction confirmation"}


async def test_confirmed_jobs_run_to_done(
    backend: Backend, make_chunk: MakeChunk, drive_jobs: Drive
) -> None:
    ids = await backend.submit(make_chunk(2, name="runs"))
    await backend.confirm(ids)
    first = await backend.status(ids)
    assert all(s.status is not JobStatus.SUBMITTING for s in first.values())
    final = await drive_jobs(ids)
    for state in final.values():
        assert state.status is JobStatus.DONE, state
        assert state.minor_status == "Execution Complete"
        assert state.site not in ("", "ANY")


async def test_confirming_twice_is_harmless(
    backend: Backend, make_chunk: MakeChunk, drive_jobs: Drive
) -> None:
    ids = await backend.submit(make_chunk(1))
    await backend.confirm(ids)
    await backend.confirm(ids)
    final = await drive_jobs(ids)
    assert final[ids[0]].status is JobStatus.DONE


async def test_status_of_many_ids_leaves_unknown_ones_out(
    backend: Backend, make_chunk: MakeChunk
) -> None:
    ids = await backend.submit(make_chunk(5))
    unknown = max(ids) + 1_000_000
    states = await backend.status([*ids, unknown])
    assert set(states) == set(ids)
    assert all(states[i].job_id == i for i in ids)
    assert await backend.status([unknown]) == {}


async def test_output_sandbox_holds_the_logs_and_real_output(
    backend: Backend, make_chunk: MakeChunk, drive_jobs: Drive
) -> None:
    ids = await backend.submit(make_chunk(1, arguments="conformance-output"))
    await backend.confirm(ids)
    await drive_jobs(ids)
    info = await backend.output_sandbox(ids[0])
    assert info.job_id == ids[0]
    members = await sandbox_members(info)
    assert b"conformance-output" in members["std.out"]
    assert "std.err" in members
    log = members["Script1_echo.log"].decode()
    assert log.startswith("<<<<<<<<<< ")
    assert "Standard Output >>>>>>>>>>\n\nconformance-output\n" in log


async def test_output_sandbox_refused_before_the_job_ends(
    backend: Backend, make_chunk: MakeChunk
) -> None:
    ids = await backend.submit(make_chunk(1))
    with pytest.raises(SandboxNotAvailableError):
        await backend.output_sandbox(ids[0])


async def test_unknown_job_has_no_output_sandbox(backend: Backend, make_chunk: MakeChunk) -> None:
    ids = await backend.submit(make_chunk(1))
    with pytest.raises(JobNotFoundError):
        await backend.output_sandbox(max(ids) + 1_000_000)


async def test_failing_payload_ends_failed(
    backend: Backend, make_chunk: MakeChunk, drive_jobs: Drive
) -> None:
    ids = await backend.submit(make_chunk(1, command="/bin/sh", arguments="-c 'exit 3'"))
    await backend.confirm(ids)
    final = await drive_jobs(ids)
    assert final[ids[0]].status is JobStatus.FAILED
    assert final[ids[0]].minor_status == "Application Finished With Errors"


async def test_kill_delete_reschedule_follow_dirac_rules(
    backend: Backend, make_chunk: MakeChunk, drive_jobs: Drive
) -> None:
    done = await backend.submit(make_chunk(1))
    await backend.confirm(done)
    await drive_jobs(done)
    unknown = max(done) + 1_000_000

    result = await backend.kill([done[0], unknown])
    assert result.done == ()
    assert result.refused[done[0]] == "Done"
    assert unknown in result.refused

    result = await backend.reschedule(done)
    assert result.refused == {done[0]: "Done"}

    result = await backend.delete(done)
    assert result.done == (done[0],)
    assert (await backend.status(done))[done[0]].status is JobStatus.DELETED

    result = await backend.kill(done)
    assert result.refused == {done[0]: "Deleted"}


async def test_unconfirmed_jobs_can_be_killed(backend: Backend, make_chunk: MakeChunk) -> None:
    ids = await backend.submit(make_chunk(2))
    result = await backend.kill(ids)
    assert set(result.done) == set(ids)
    states = await backend.status(ids)
    assert {s.status for s in states.values()} == {JobStatus.KILLED}


async def test_failed_job_can_be_rescheduled(
    backend: Backend, make_chunk: MakeChunk, drive_jobs: Drive
) -> None:
    ids = await backend.submit(make_chunk(1, command="/bin/sh", arguments="-c 'exit 1'"))
    await backend.confirm(ids)
    await drive_jobs(ids)
    result = await backend.reschedule(ids)
    assert result.done == (ids[0],)
    state = (await backend.status(ids))[ids[0]]
    assert state.status is not JobStatus.FAILED or state.minor_status != (
        "Application Finished With Errors"
    )
    final = await drive_jobs(ids)
    assert final[ids[0]].status is JobStatus.FAILED


async def test_summary_counts_per_status(
    backend: Backend, make_chunk: MakeChunk, drive_jobs: Drive
) -> None:
    pending = await backend.submit(make_chunk(3))
    ran = await backend.submit(make_chunk(2))
    await backend.confirm(ran)
    await drive_jobs(ran)
    summary = await backend.summary([*pending, *ran, max(ran) + 1_000_000])
    assert summary == {JobStatus.SUBMITTING: 3, JobStatus.DONE: 2}


async def test_find_unconfirmed_filters_and_discard(
    backend: Backend, make_chunk: MakeChunk
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    mine = await backend.submit(make_chunk(2, name="sweep-me", group="conformance-sweep"))
    other = await backend.submit(make_chunk(1, name="other", group="conformance-other"))

    found = await backend.find_unconfirmed(job_group="conformance-sweep")
    assert {j.job_id for j in found} == set(mine)
    assert all(j.job_group == "conformance-sweep" for j in found)
    assert all(j.name.startswith("sweep-me") for j in found)

    by_name = await backend.find_unconfirmed(name_prefix="sweep-")
    assert {j.job_id for j in by_name} >= set(mine)
    assert not {j.job_id for j in by_name} & set(other)

    window = await backend.find_unconfirmed(
        job_group="conformance-sweep", since=before, until=datetime.now(UTC) + timedelta(seconds=5)
    )
    assert {j.job_id for j in window} == set(mine)
    assert await backend.find_unconfirmed(job_group="conformance-sweep", until=before) == []

    await backend.discard(mine, "swept by the conformance suite")
    states = await backend.status(mine)
    assert {s.status for s in states.values()} == {JobStatus.KILLED}
    assert {s.minor_status for s in states.values()} == {"swept by the conformance suite"}
    assert await backend.find_unconfirmed(job_group="conformance-sweep") == []
    assert (await backend.status(other))[other[0]].status is JobStatus.SUBMITTING


async def test_discard_leaves_confirmed_jobs_alone(
    backend: Backend, make_chunk: MakeChunk, drive_jobs: Drive
) -> None:
    ids = await backend.submit(make_chunk(1))
    await backend.confirm(ids)
    await backend.discard(ids, "too late")
    final = await drive_jobs(ids)
    assert final[ids[0]].status is JobStatus.DONE


async def test_get_jdl_names_the_job(backend: Backend, make_chunk: MakeChunk) -> None:
    ids = await backend.submit(make_chunk(1, name="jdl-name"))
    try:
        jdl = await backend.get_jdl(ids[0])
    except NotSupportedError:
        pytest.skip("this backend cannot return a JDL")
    assert "jdl-name" in jdl
    with pytest.raises(JobNotFoundError):
        await backend.get_jdl(max(ids) + 1_000_000)
