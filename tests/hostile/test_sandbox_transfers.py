"""Sandbox URLs that lie, flood, stall or fail: the downloader, through DiracXBackend, against
the hostile server. Every case ends (no endless stream), with one typed error per job, nothing
temporary or partial left, and the disk and memory it used bounded by the caps."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from _archives import make_archive
from _checks import assert_contained, assert_no_token, socket_buffers
from _server import TOKEN, FakeDiracX, FakeJob, HostileServer, Reply, endless
from test_download import helper_first

from aiodirac import (
    DownloadConfig,
    Downloader,
    DownloadProgress,
    IntegrityError,
    NetworkError,
    RetryPolicy,
    SandboxTooLargeError,
    ServiceUnavailableError,
    TemporarySpaceError,
)
from aiodirac.backends.diracx import DiracXBackend

MiB = 1 << 20
CAP = 4 * MiB
QUICK = DownloadConfig(
    max_unpacked_bytes=CAP,
    read_timeout=1.0,
    connect_timeout=2.0,
    retry=RetryPolicy(deadline=1.5, initial=0.05, max_backoff=0.2),
    processes=0,
)
FILES = {"std.out": b"hello from a hostile worker\n", "data.bin": bytes(range(256)) * 64}
ARCHIVE = make_archive(FILES, "tar.bz2")


def _job(archive: bytes = ARCHIVE, *, sha: bool = True, job_id: int = 12) -> FakeJob:
    digest = hashlib.sha256(archive).hexdigest() if sha else None
    return FakeJob(job_id, sandbox=archive, sandbox_sha256=digest)


async def _download(
    server: HostileServer,
    out: Path,
    config: DownloadConfig = QUICK,
    *,
    unpack: bool = True,
    ids: tuple[int, ...] = (12,),
    progress: Callable[[DownloadProgress], object] | None = None,
) -> list:
    async with (
        DiracXBackend(server.url, token=TOKEN) as backend,
        Downloader(backend, config) as downloader,
    ):
        return await downloader.download(list(ids), out, unpack=unpack, progress=progress)


def _failed(results: list, kind: type[BaseException]) -> BaseException:
    (result,) = results
    assert not result.ok
    assert isinstance(result.exception, kind), result.exception
    assert_no_token(result.error, repr(result.exception))
    assert str(result.job_id) in result.error
    return result.exception


@pytest.mark.parametrize("unpack", [False, True])
@pytest.mark.parametrize("announced", [False, True], ids=["no-size", "size-announced"])
async def test_endless_body_is_cut_at_the_cap(
    fake: FakeDiracX, server: HostileServer, tmp_path: Path, unpack: bool, announced: bool, logs
) -> None:
    # The archive, then zeros forever: with or without an honest Content-Length first.
    fake.jobs[12] = _job(sha=False)
    fake.override["sandbox"] = Reply(
        body=endless(ARCHIVE), length=len(ARCHIVE) if announced else None
    )
    received = 0

    def progress(p: DownloadProgress) -> None:
        nonlocal received
        received = max(received, p.job.bytes_done)

    tracemalloc.start()
    try:
        results = await _download(server, tmp_path / "out", unpack=unpack, progress=progress)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if announced:
        # More than announced: the transfer stops at the announced size, the check refuses it.
        (result,) = results
        assert not result.ok or result.bytes == len(ARCHIVE)
    else:
        _failed(results, SandboxTooLargeError)
    # It ended, having taken in at most the cap (the kernel's socket buffers may have held more
    # of what the server wrote when it stopped reading: up to tcp_wmem + tcp_rmem).
    assert received <= CAP
    assert server.sent < CAP + socket_buffers()
    assert peak < 32 * MiB, f"{peak} bytes of Python memory for a {CAP}-byte cap"
    assert_contained(tmp_path / "out", tmp_path / "out" / "12" if results[0].ok else None)
    assert_no_token(logs.text)


@pytest.mark.parametrize("unpack", [False, True])
async def test_announced_size_beyond_the_cap_is_refused_before_reading(
    fake: FakeDiracX, server: HostileServer, tmp_path: Path, unpack: bool
) -> None:
    fake.jobs[12] = _job(sha=False)
    fake.override["sandbox"] = Reply(body=endless(ARCHIVE), length=100 * CAP)
    error = _failed(await _download(server, tmp_path / "out", unpack=unpack), SandboxTooLargeError)
    assert "max_unpacked_bytes" in str(error)
    assert server.sent < CAP + socket_buffers()
    # Not retried as if transient: one request for the archive.
    assert [r.path for r in server.requests].count("/sandbox-store/12") == 1
    assert_contained(tmp_path / "out")


@pytest.mark.parametrize("unpack", [False, True])
@pytest.mark.parametrize("checksum", [True, False], ids=["sha", "no-sha"])
@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(body=ARCHIVE, length=len(ARCHIVE) - 100), IntegrityError),
        (Reply(body=ARCHIVE[:-100], length=None), IntegrityError),
        (Reply(body=ARCHIVE, cut_after=len(ARCHIVE) // 2), NetworkError),
        (
            Reply(body=b"<html>" + b"x" * 5000, headers={"Content-Type": "text/html"}),
            IntegrityError,
        ),
        (Reply.json({"detail": "not an archive"}), IntegrityError),
    ],
    ids=["short-length", "truncated", "cut-mid-body", "html-instead", "json-instead"],
)
async def test_lying_or_broken_bodies(
    fake: FakeDiracX,
    server: HostileServer,
    tmp_path: Path,
    unpack: bool,
    checksum: bool,
    reply: Reply,
    error: type[Exception],
) -> None:
    fake.jobs[12] = _job(sha=checksum)
    fake.override["sandbox"] = reply
    results = await _download(server, tmp_path / "out", unpack=unpack)
    if not unpack and not checksum and error is IntegrityError:
        # Kept as bytes, unchecked: nothing can tell a short archive from a whole one then,
        # but the archive is whole as far as the server's own length goes.
        return
    _failed(results, error)
    assert_contained(tmp_path / "out")
    assert not (tmp_path / "out" / "12").exists()


@pytest.mark.parametrize("unpack", [False, True])
async def test_lying_checksum(
    fake: FakeDiracX, server: HostileServer, tmp_path: Path, unpack: bool
) -> None:
    fake.jobs[12] = FakeJob(12, sandbox=ARCHIVE, sandbox_sha256="ab" * 32)
    error = _failed(await _download(server, tmp_path / "out", unpack=unpack), IntegrityError)
    assert "SHA-256" in str(error)
    assert_contained(tmp_path / "out")
    assert not (tmp_path / "out" / "12").exists()


async def test_stall_after_the_headers(
    fake: FakeDiracX, server: HostileServer, tmp_path: Path
) -> None:
    fake.jobs[12] = _job()
    fake.override["sandbox"] = Reply(body=ARCHIVE, stall=True)
    _failed(await _download(server, tmp_path / "out"), NetworkError)
    assert_contained(tmp_path / "out")


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_errors(
    fake: FakeDiracX, server: HostileServer, tmp_path: Path, status: int
) -> None:
    fake.jobs[12] = _job()
    fake.override["sandbox"] = Reply(status, b"<h1>broken</h1>", headers={"Retry-After": "0"})
    _failed(await _download(server, tmp_path / "out"), ServiceUnavailableError)
    assert_contained(tmp_path / "out")


async def test_total_temporary_space_is_capped(
    fake: FakeDiracX, server: HostileServer, tmp_path: Path
) -> None:
    # Eight sandboxes that never end, each under the per-sandbox cap while they stream: together
    # they would hold 8 x 4 MiB of temporary disk; the total cap of 6 MiB stops them first.
    for job_id in range(1, 9):
        fake.jobs[job_id] = _job(sha=False, job_id=job_id)
    fake.override["sandbox"] = Reply(body=endless(ARCHIVE), length=None)
    config = replace(QUICK, max_temporary_bytes=6 * MiB, max_concurrency=8)
    results = await _download(
        server, tmp_path / "out", config, unpack=False, ids=tuple(range(1, 9))
    )
    errors = [r.exception for r in results]
    assert all(not r.ok for r in results)
    assert any(isinstance(e, TemporarySpaceError) for e in errors), errors
    assert all(isinstance(e, TemporarySpaceError | SandboxTooLargeError) for e in errors), errors
    assert "max_temporary_bytes" in next(
        str(e) for e in errors if isinstance(e, TemporarySpaceError)
    )
    assert_contained(tmp_path / "out")


@pytest.mark.parametrize("unpack", [False, True])
async def test_helper_processes_take_the_parents_temporary_space(
    fake: FakeDiracX,
    server: HostileServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    unpack: bool,
) -> None:
    # Jobs 1 and 2 stall, holding this process's slots; the others go to the helper process,
    # whose temporary space is asked of this process in grants (8 MiB each, beyond the 6 MiB
    # total here): they are refused there, with the same error, and nothing is left.
    from aiodirac._engine.download import _space

    asked: list[int] = []
    take = _space.TemporarySpace.take

    def spy(self: _space.TemporarySpace, n: int, job_id: int | None = None) -> None:
        asked.append(n)
        take(self, n, job_id)

    monkeypatch.setattr(_space.TemporarySpace, "take", spy)
    for job_id in range(1, 9):
        fake.jobs[job_id] = _job(sha=False, job_id=job_id)
    stalled = Reply(body=ARCHIVE, stall=True)
    flood = Reply(body=endless(ARCHIVE), length=None)
    fake.override["sandbox"] = lambda r: stalled if r.path.endswith(("/1", "/2")) else flood
    config = replace(QUICK, max_temporary_bytes=6 * MiB, max_concurrency=8, processes=1)
    async with (
        DiracXBackend(server.url, token=TOKEN) as backend,
        Downloader(backend, config) as downloader,
    ):
        results = await downloader.download(
            helper_first(downloader, list(range(1, 9))), tmp_path / "out", unpack=unpack
        )
        assert downloader._space.used == 0  # every grant given back
    errors = {r.job_id: r.exception for r in results}
    assert all(not r.ok for r in results)
    assert any(n >= 8 * MiB for n in asked), (asked, errors)
    assert any(isinstance(e, TemporarySpaceError) for e in errors.values()), errors
    assert_contained(tmp_path / "out")


def test_temporary_cap_defaults_to_four_sandboxes_of_the_largest_size() -> None:
    from aiodirac import ConfigurationError

    assert DownloadConfig().temporary_cap == 16 << 30
    # one sandbox as large as allowed always fits
    assert DownloadConfig(max_unpacked_bytes=32 << 30).temporary_cap == 128 << 30
    assert DownloadConfig(max_temporary_bytes=MiB).temporary_cap == MiB
    with pytest.raises(ConfigurationError, match="max_temporary_bytes"):
        DownloadConfig(max_temporary_bytes=-1)
