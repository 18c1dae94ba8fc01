"""DiracXBackend against a real DiracX 0.7.0 server (started by scripts/diracx.sh)."""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from _dxjobs import make_chunk

from aiodirac import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    InvalidTransitionError,
    JobNotFoundError,
    JobStatus,
    NetworkError,
    NotSupportedError,
    PermissionDeniedError,
    SandboxNotAvailableError,
)
from aiodirac._engine._retry import RetryPolicy, retry_call
from aiodirac.backends.diracx import DiracXBackend
from aiodirac.backends.diracx import _http as http_module
from aiodirac.testing._pilot import DiracXTestPilot, _read_jdls
from diracx_server import DiracXServer

pytestmark = pytest.mark.diracx


def _group(request: pytest.FixtureRequest) -> str:
    # DiracX's JobGroup column holds 32 characters (MariaDB refuses more)
    return f"g-{request.node.name[5:19]}-{time.time_ns() % 10**12}"


async def test_submit_leaves_jobs_unconfirmed_until_confirmed(backend: DiracXBackend) -> None:
    chunk = make_chunk([0, 1, 2], name="two-phase")
    ids = await backend.submit(chunk)
    assert len(ids) == 3
    states = await backend.status(ids)
    assert {s.status for s in states.values()} == {JobStatus.SUBMITTING}
    await backend.confirm(ids)
    await backend.confirm(ids)  # twice is harmless
    states = await backend.status(ids)
    assert [states[i].status for i in ids] == [JobStatus.RECEIVED] * 3
    assert all(states[i].time is not None and states[i].time.tzinfo for i in ids)  # type: ignore[union-attr]


async def test_sweep_finds_and_discards_unconfirmed(
    backend: DiracXBackend, request: pytest.FixtureRequest
) -> None:
    group = _group(request)
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = await backend.submit(make_chunk(range(5), name="sweep_a%b", job_group=group))
    other = await backend.submit(make_chunk([7], name="other", job_group=group))
    after = datetime.now(UTC) + timedelta(seconds=1)

    found = await backend.find_unconfirmed(job_group=group)
    assert sorted(j.job_id for j in found) == sorted(ids + other)
    # '%' and '_' in the prefix are LIKE wildcards on the server: the client filters exactly
    found = await backend.find_unconfirmed(job_group=group, name_prefix="sweep_a%b-")
    assert sorted(j.job_id for j in found) == sorted(ids)
    assert {j.name for j in found} == {f"sweep_a%b-{i}" for i in range(5)}
    assert all(before <= j.submitted <= after for j in found)  # type: ignore[operator]
    assert await backend.find_unconfirmed(job_group=group, since=after) == []
    assert await backend.find_unconfirmed(job_group=group, until=before) == []

    await backend.discard(ids, "aiodirac sweep: never confirmed")
    states = await backend.status(ids)
    assert {s.status for s in states.values()} == {JobStatus.KILLED}
    assert {s.minor_status for s in states.values()} == {"aiodirac sweep: never confirmed"}
    assert [j.job_id for j in await backend.find_unconfirmed(job_group=group)] == other
    # a discarded job cannot be confirmed any more, and the 200 answer does not hide it.
    # (On MariaDB, DiracX answers 500 to a change of a job killed in the same second: it
    # records a second Kill command under the same key. Repeatable: the engine retries it.)
    with pytest.raises(InvalidTransitionError) as info:
        await retry_call(lambda: backend.confirm([*ids, *other]), RetryPolicy(deadline=30))
    assert set(info.value.job_ids) == set(ids)
    assert (await backend.status(other))[other[0]].status is JobStatus.RECEIVED


async def test_status_follows_paging(
    backend: DiracXBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await backend.submit(make_chunk(range(7), name="paging"))
    monkeypatch.setattr(http_module, "MAX_PER_PAGE", 3)
    states = await backend.status([*ids, 987654321])
    assert sorted(states) == sorted(ids)  # unknown IDs are absent
    assert await backend.summary([*ids, 987654321]) == {JobStatus.SUBMITTING: 7}


async def test_input_sandbox_uploaded_once_per_content(
    diracx_server: DiracXServer, credentials: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "b.txt").write_text("bee")
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho run\n")
    script.chmod(0o755)
    uploads: list[str] = []
    real_post = DiracXBackend._post_presigned

    async def spy(self, url, fields, payload):
        uploads.append(url)
        await real_post(self, url, fields, payload)

    monkeypatch.setattr(DiracXBackend, "_post_presigned", spy)
    sandbox = [str(script), str(data)]
    async with diracx_server.backend(credentials) as backend:
        first = await backend.submit(make_chunk(range(20), name="sb", local_sandbox=sandbox))
        second = await backend.submit(make_chunk(range(20, 40), name="sb", local_sandbox=sandbox))
    assert len(uploads) == 1
    # a new client (empty cache) with the same content: the server already holds it
    os.utime(script, (1, 1))  # mtimes are not part of the archive
    async with diracx_server.backend(credentials) as backend:
        third = await backend.submit(make_chunk([40], name="sb", local_sandbox=sandbox))
    assert len(uploads) == 1
    jdls = _read_jdls(diracx_server.jobdb, [first[0], second[0], third[0]])
    pfns = {jdl.split("SB:", 1)[1].split('"', 1)[0] for jdl in jdls.values()}
    assert len(pfns) == 1
    assert str(script) not in jdls[first[0]]


async def test_chunks_sent_at_once_share_one_archive(
    diracx_server: DiracXServer, credentials: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks sent together build their common sandbox once; its files are looked at again
    only once their last look is older than the TTL, and then a change is seen."""
    from aiodirac.backends.diracx import _backend as backend_module

    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho one\n")
    builds: list[int] = []
    looks: list[int] = []
    uploads: list[str] = []
    real_build, real_post = backend_module.build_input_sandbox, DiracXBackend._post_presigned
    real_look = backend_module.sandbox_signature

    def counting_build(paths, workflow_xml):  # type: ignore[no-untyped-def]
        builds.append(1)
        return real_build(paths, workflow_xml)

    def counting_look(paths, workflow_xml):  # type: ignore[no-untyped-def]
        looks.append(1)
        return real_look(paths, workflow_xml)

    async def spy(self, url, fields, payload):  # type: ignore[no-untyped-def]
        uploads.append(url)
        await real_post(self, url, fields, payload)

    monkeypatch.setattr(backend_module, "build_input_sandbox", counting_build)
    monkeypatch.setattr(backend_module, "sandbox_signature", counting_look)
    monkeypatch.setattr(DiracXBackend, "_post_presigned", spy)
    monkeypatch.setattr(backend_module, "_SIGNATURE_TTL", 3600.0)  # however slow the server
    sandbox = [str(script)]
    created: list[list[int]] = []
    async with diracx_server.backend(credentials) as backend:

        async def one(start: int) -> None:
            chunk = make_chunk(range(start, start + 2), name="shared", local_sandbox=sandbox)
            created.append(await backend.submit(chunk))

        async with anyio.create_task_group() as tg:
            for start in range(0, 16, 2):
                tg.start_soon(one, start)
        assert len(builds) == 1
        assert len(uploads) == 1
        # within the TTL, the next chunk reuses the last look: no stat, no worker thread
        looked = len(looks)
        created.append(await backend.submit(make_chunk([16], name="shared", local_sandbox=sandbox)))
        assert len(looks) == looked
        # the file changes: once its last look is older than the TTL, a new archive is made
        script.write_text("#!/bin/sh\necho two, longer\n")
        monkeypatch.setattr(backend_module, "_SIGNATURE_TTL", 0.0)
        created.append(await backend.submit(make_chunk([17], name="shared", local_sandbox=sandbox)))
        assert len(looks) == looked + 1
    assert len(builds) == 2
    assert len(uploads) == 2
    jdls = _read_jdls(diracx_server.jobdb, [ids[0] for ids in created])
    pfns = [jdl.split("SB:", 1)[1].split('"', 1)[0] for jdl in jdls.values()]
    assert len(set(pfns)) == 2
    assert pfns.count(jdls[created[-1][0]].split("SB:", 1)[1].split('"', 1)[0]) == 1  # the last


async def test_kill_delete_reschedule_read_back(
    backend: DiracXBackend, pilot: DiracXTestPilot
) -> None:
    ids = await backend.submit(make_chunk(range(4), name="actions"))
    await backend.confirm(ids)
    done = ids[0]
    await pilot.set_status(
        {done: ["Checking", "Waiting", "Matched", "Running", ("Done", "Execution Complete")]}
    )
    killed = await backend.kill([ids[1], done])
    assert killed.done == (ids[1],)
    assert killed.refused == {done: "Done"}

    # DiracX's own reschedule leaves a Failed job Failed: the backend goes through Rescheduled
    await pilot.set_status({ids[2]: ["Checking", "Waiting", "Matched", "Running", "Failed"]})
    rescheduled = await backend.reschedule([ids[1], ids[2], ids[3]])
    assert rescheduled.done == (ids[2],)
    assert rescheduled.refused == {ids[1]: "Killed", ids[3]: "Received"}
    state = (await backend.status([ids[2]]))[ids[2]]
    assert (state.status, state.minor_status) == (JobStatus.RECEIVED, "Job Rescheduled")

    deleted = await backend.delete([done, ids[3], 987654321])
    assert set(deleted.done) == {done, ids[3]}
    assert deleted.refused == {987654321: "unknown job"}
    states = await backend.status(ids)
    assert states[done].status is JobStatus.DELETED
    assert states[ids[3]].status is JobStatus.DELETED
    # DiracX would bring a Deleted job back as Killed; DIRAC's rules do not
    assert (await backend.kill([done])).refused == {done: "Deleted"}


async def test_output_sandbox_errors(
    backend: DiracXBackend, diracx_server: DiracXServer, tmp_path: Path
) -> None:
    ids = await backend.submit(make_chunk([0], name="nosb"))
    with pytest.raises(SandboxNotAvailableError, match="wait"):
        await backend.output_sandbox(ids[0])
    await backend.discard(ids, "test")
    with pytest.raises(SandboxNotAvailableError, match="no output sandbox"):
        await backend.output_sandbox(ids[0])
    with pytest.raises(JobNotFoundError) as missing:
        await backend.output_sandbox(987654321)
    assert missing.value.job_ids == (987654321,)
    with pytest.raises(NotSupportedError, match="no endpoint"):
        await backend.get_jdl(ids[0])

    other = diracx_server.write_credentials(tmp_path / "other.json", "otheruser")
    async with diracx_server.backend(other) as theirs:
        with pytest.raises(PermissionDeniedError) as denied:
            await theirs.output_sandbox(ids[0])
        assert denied.value.job_ids == (ids[0],)
        result = await theirs.kill(ids)
        assert result.refused == {ids[0]: "belongs to another user"}
        with pytest.raises(PermissionDeniedError):
            await theirs.confirm(ids)


async def test_rejected_jdl_names_the_jobs(backend: DiracXBackend) -> None:
    chunk = make_chunk([3, 4], name="rejected", extra={"CPUTime": "abc"})
    with pytest.raises(InvalidRequestError) as info:
        await backend.submit(chunk)
    message = str(info.value)
    assert "'rejected-3'..'rejected-4'" in message
    assert info.value.status_code == 400


async def test_expired_token_without_refresh(diracx_server: DiracXServer, tmp_path: Path) -> None:
    path = diracx_server.write_credentials(
        tmp_path / "c.json", expires_on=time.time() - 10, refresh=False
    )
    token = json.loads(path.read_text())["access_token"]
    async with diracx_server.backend(path) as backend:
        with pytest.raises(AuthenticationError, match="dirac login") as info:
            await backend.status([1])
    assert token not in str(info.value)


async def test_refresh_once_for_concurrent_requests(
    diracx_server: DiracXServer, tmp_path: Path
) -> None:
    path = diracx_server.write_credentials(tmp_path / "c.json", expires_on=time.time() + 5)
    old = json.loads(path.read_text())
    async with diracx_server.backend(path) as backend:
        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(backend.status, [1, 2, 3])
        assert backend._tokens.refreshes == 1
    new = json.loads(path.read_text())
    assert new["access_token"] != old["access_token"]
    assert new["expires_on"] > old["expires_on"] + 600
    assert new["refresh_token"]  # legacy-exchange tokens are not rotated: the old one is kept
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_invalid_token_is_retried_once_after_refresh(
    diracx_server: DiracXServer, tmp_path: Path
) -> None:
    path = diracx_server.write_credentials(tmp_path / "c.json")
    data = json.loads(path.read_text())
    data["access_token"] = "not-a-valid-token"
    path.write_text(json.dumps(data))
    async with diracx_server.backend(path) as backend:
        assert await backend.status([987654321]) == {}
        assert backend._tokens.refreshes == 1
    with pytest.raises(AuthenticationError):
        async with diracx_server.backend(token="not-a-valid-token") as backend:
            await backend.status([1])


async def test_server_down_is_a_network_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with DiracXBackend(f"http://127.0.0.1:{port}", token="t", timeout=5) as backend:
        with pytest.raises(NetworkError) as info:
            await backend.submit(make_chunk([0]))
    assert "unknown" in str(info.value)


def test_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="DIRACX_URL"):
        DiracXBackend.from_environment()
    monkeypatch.setenv("DIRACX_URL", "https://diracx.invalid")
    monkeypatch.setenv("DIRACX_CREDENTIALS_PATH", str(tmp_path / "none.json"))
    with pytest.raises(ConfigurationError, match="dirac login"):
        DiracXBackend.from_environment()
    (tmp_path / "none.json").write_text("{}")
    backend = DiracXBackend.from_environment()
    assert "diracx.invalid" in repr(backend)
    assert backend.description == "DiracX at https://diracx.invalid"
    with pytest.raises(ConfigurationError):
        DiracXBackend("ftp://x")

    async def provider() -> str:
        return "b"

    with pytest.raises(ConfigurationError, match="not both"):
        DiracXBackend("https://x", token="a", token_provider=provider)
    # an explicit token wins over a credentials file
    explicit = DiracXBackend("https://x", token="a", credentials_path=tmp_path / "none.json")
    assert "token" in repr(explicit)
    assert "none.json" not in repr(explicit)


async def test_presigned_requests_carry_no_token(
    backend: DiracXBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request)

    backend.http_client.event_hooks["request"].append(hook)
    (tmp_path / "in.txt").write_text(str(time.time_ns()))
    await backend.submit(make_chunk([0], name="hook", local_sandbox=[str(tmp_path / "in.txt")]))
    s3 = [r for r in seen if not r.url.path.startswith("/api/")]
    api = [r for r in seen if r.url.path.startswith("/api/")]
    assert s3
    assert api
    assert all("authorization" not in r.headers for r in s3)
    assert all(r.headers["authorization"].startswith("Bearer ") for r in api)


async def test_reads_the_credentials_file_diracx_itself_wrote(
    diracx_server: DiracXServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scripts/diracx.sh wrote it with diracx.core.utils.write_credentials, as `dirac login` does
    env = diracx_server.client_environment(diracx_server.credentials_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = diracx_server.credentials_path.read_bytes()
    async with DiracXBackend.from_environment() as backend:
        ids = await backend.submit(make_chunk([0], name="own-file"))
        assert set(await backend.status(ids)) == set(ids)
    assert diracx_server.credentials_path.read_bytes() == before  # valid: not rewritten
