"""Transfers in helper processes (DownloadConfig.processes): same results, errors, progress and
on-disk guarantees as in one process, and nothing left behind when a helper or the parent dies."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from _archives import make_archive
from test_download import (
    FAST,
    SandboxServer,
    UrlBackend,
    helpers_of,
    hidden,
    job_files,
    serve,
)

from aiodirac import IntegrityError, UnsafeArchiveError
from aiodirac._download import DownloadConfig, Downloader, DownloadProgress
from aiodirac._transfer_pool import default_processes
from aiodirac._unpack import UnpackedFile

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="helper processes: POSIX only")

ONE_HELPER = replace(FAST, processes=1)


def tar_jobs(sizes: dict[int, int]) -> tuple[dict[int, dict[str, bytes]], dict[int, bytes]]:
    """Each job's files (``job_files`` of the given size) and its tar archive."""
    contents = {j: job_files(j, size) for j, size in sizes.items()}
    return contents, {j: make_archive(f, "tar") for j, f in contents.items()}


def tar_server(archives: dict[int, bytes], delay: float) -> tuple[SandboxServer, UrlBackend]:
    """A server for ``archives`` (``delay`` seconds per 64 KiB) and a backend pointing at it."""
    server, _ = serve(archives, "tar", chunk_delay=delay)
    return server, UrlBackend(f"http://127.0.0.1:{server.port}", archives, fmt="tar")


async def helper_first(ids: list[int], first: int = 2) -> AsyncIterator[int]:
    """Yield ``first`` IDs, then the rest once a helper process has had time to start (it is
    started by the second transfer at once, and imports aiodirac before taking any)."""
    for job_id in ids[:first]:
        yield job_id
    with anyio.fail_after(30):
        while not helpers_of(os.getpid()):
            await anyio.sleep(0.01)
    await anyio.sleep(1.5)
    for job_id in ids[first:]:
        yield job_id


async def test_a_helper_shares_the_transfers(tmp_path: Path) -> None:
    contents, archives = tar_jobs({j: 150_000 + 1000 * j for j in range(1, 41)})
    server, backend = tar_server(archives, 0.002)
    out = tmp_path / "out"
    seen: list[DownloadProgress] = []
    with server:
        async with Downloader(backend, replace(ONE_HELPER, max_concurrency=8)) as dl:
            results = await dl.download(helper_first(list(archives)), out, progress=seen.append)
            assert dl.helper_transfers > 0, "no transfer ran in the helper process"
            assert dl.helper_transfers < len(archives), "this process must do its share"
    assert [r.error for r in results if not r.ok] == []
    for j, r in enumerate(results, start=1):
        assert r.sha256 == hashlib.sha256(archives[j]).hexdigest()
        assert r.bytes == len(archives[j])
        assert set(r.files) == {UnpackedFile(n, len(d)) for n, d in contents[j].items()}
        for name, data in contents[j].items():
            assert (out / str(j) / name).read_bytes() == data
    assert hidden(out) == []
    # The helpers' progress reaches the caller: every byte, every file.
    last = seen[-1]
    assert last.bytes_done == sum(len(a) for a in archives.values())
    assert last.jobs_done == len(archives)
    assert last.files_done == sum(len(f) for f in contents.values())
    assert helpers_of(os.getpid()) == []


async def test_processes_zero_keeps_every_transfer_here(tmp_path: Path) -> None:
    _, archives = tar_jobs(dict.fromkeys(range(1, 11), 50_000))
    server, backend = tar_server(archives, 0.002)
    with server:
        async with Downloader(backend, replace(FAST, processes=0)) as dl:
            results = await dl.download(archives, tmp_path / "out")
            assert dl.helper_transfers == 0
    assert all(r.ok for r in results)


async def test_errors_and_fresh_urls_cross_the_process_boundary(tmp_path: Path) -> None:
    good = {j: make_archive(job_files(j, 200_000), "tar") for j in range(1, 21)}
    hostile = {j: make_archive({"../../evil": b"x" * 100_000}, "tar") for j in range(21, 31)}
    archives = {**good, **hostile}
    server, backend = tar_server(archives, 0.005)
    # Every first URL has expired: the helper asks this process for a fresh one.
    server.expired = {f"{j}-1" for j in archives}
    with server:
        for j in range(11, 16):
            backend.sha_override[j] = "0" * 64
        async with Downloader(backend, replace(ONE_HELPER, max_concurrency=8)) as dl:
            results = await dl.download(helper_first(list(archives)), tmp_path / "out")
            assert dl.helper_transfers > 0
    by_id = {r.job_id: r for r in results}
    for j in range(1, 11):
        assert by_id[j].ok, by_id[j].error
    for j in range(11, 16):
        assert isinstance(by_id[j].exception, IntegrityError), by_id[j].error
        assert by_id[j].exception.job_id == j
    for j in hostile:
        assert isinstance(by_id[j].exception, UnsafeArchiveError), by_id[j].error
        assert f"job {j}" in (by_id[j].error or "")
    assert not (tmp_path / "evil").exists()
    assert hidden(tmp_path / "out") == []
    assert sorted(int(p.name) for p in (tmp_path / "out").iterdir()) == list(range(1, 11)) + list(
        range(16, 21)
    )


async def test_a_helper_that_dies_hands_its_transfers_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    contents, archives = tar_jobs(dict.fromkeys(range(1, 25), 1 << 20))
    server, backend = tar_server(archives, 0.03)
    out = tmp_path / "out"
    killed: list[int] = []
    with server:
        async with Downloader(backend, replace(ONE_HELPER, max_concurrency=6)) as dl:

            async def kill_helper_mid_transfer() -> None:
                with anyio.fail_after(60):
                    while dl.helper_transfers < 1:
                        await anyio.sleep(0.005)
                # It has just finished one and holds its share of the others.
                for pid in helpers_of(os.getpid()):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_helper_mid_transfer)
                results = await dl.download(helper_first(list(archives)), out)
    assert killed
    assert "ended during job" in caplog.text
    assert [r.error for r in results if not r.ok] == []
    for j, files in contents.items():
        for name, data in files.items():
            assert (out / str(j) / name).read_bytes() == data
    assert hidden(out) == []


async def test_cancellation_with_helpers_leaves_nothing_partial(tmp_path: Path) -> None:
    contents, archives = tar_jobs(dict.fromkeys(range(1, 41), 2_000_000))
    server, backend = tar_server(archives, 0.01)
    out = tmp_path / "out"
    with server:
        async with Downloader(backend, replace(ONE_HELPER, max_concurrency=8)) as dl:
            with anyio.move_on_after(2.4) as scope:
                await dl.download(helper_first(list(archives)), out)
            assert scope.cancelled_caught
            assert dl.helper_transfers > 0
            assert "0 active" in repr(dl)
        assert helpers_of(os.getpid()) == []
    # What is there is complete; nothing hidden or partial is left.
    done = [int(p.name) for p in out.iterdir()]
    assert 0 < len(done) < len(archives)
    for j in done:
        for name, data in contents[j].items():
            assert (out / str(j) / name).read_bytes() == data
    assert hidden(out) == []


async def test_automatic_helpers_wait_for_a_busy_process(tmp_path: Path) -> None:
    # A slow server keeps this process waiting, not busy: helpers would only take CPU from
    # whatever is slow, so the automatic setting starts none.
    _, archives = tar_jobs(dict.fromkeys(range(1, 13), 300_000))
    server, backend = tar_server(archives, 0.02)
    with server:
        async with Downloader(backend, replace(FAST, max_concurrency=4)) as dl:
            assert dl.config.processes is None
            results = await dl.download(archives, tmp_path / "out")
            assert dl.helper_transfers == 0
    assert all(r.ok for r in results)
    assert helpers_of(os.getpid()) == []


def test_default_helpers_leave_this_process_one_core() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert default_processes() == max(0, min(4, (cores or 1) - 1))
    with pytest.raises(ValueError, match="processes"):
        DownloadConfig(processes=-1)


def test_helpers_on_trio(tmp_path: Path) -> None:
    contents, archives = tar_jobs(dict.fromkeys(range(1, 21), 200_000))
    server, backend = tar_server(archives, 0.005)
    out = tmp_path / "out"

    async def main() -> int:
        async with Downloader(backend, replace(ONE_HELPER, max_concurrency=6)) as dl:
            results = await dl.download(helper_first(list(archives)), out)
            assert [r.error for r in results if not r.ok] == []
            return dl.helper_transfers

    with server:
        assert anyio.run(main, backend="trio") > 0
    for j, files in contents.items():
        for name, data in files.items():
            assert (out / str(j) / name).read_bytes() == data
    assert hidden(out) == []
