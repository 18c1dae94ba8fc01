"""Transfers in helper processes (DownloadConfig.processes): same results, errors, progress and
on-disk guarantees as in one process, and nothing left behind when a helper or the parent dies."""

from __future__ import annotations

import hashlib
import os
import signal
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from _archives import make_archive
from test_download import (
    FAST,
    SandboxServer,
    UrlBackend,
    helper_first,
    helpers_of,
    hidden,
    job_files,
    serve,
)

from aiodirac import IntegrityError, UnsafeArchiveError
from aiodirac._engine.download._downloader import DownloadConfig, Downloader, DownloadProgress
from aiodirac._engine.download._model import _Run
from aiodirac._engine.download._transfer_pool import default_processes
from aiodirac._engine.download._unpack import UnpackedFile

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


async def test_a_helper_shares_the_transfers(tmp_path: Path) -> None:
    contents, archives = tar_jobs({j: 150_000 + 1000 * j for j in range(1, 41)})
    server, backend = tar_server(archives, 0.002)
    out = tmp_path / "out"
    seen: list[DownloadProgress] = []
    with server:
        async with Downloader(backend, replace(ONE_HELPER, max_concurrency=8)) as dl:
            results = await dl.download(helper_first(dl, list(archives)), out, progress=seen.append)
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
    # Every transfer is handed to the helper itself, so each assertion is about the helper.
    contents, archives = tar_jobs({1: 200_000, 3: 200_000})
    archives[2] = make_archive({"../../evil": b"x" * 100_000}, "tar")
    server, backend = tar_server(archives, 0.0)
    # Every first URL has expired: the helper asks this process for a fresh one.
    server.expired = {f"{j}-1" for j in archives}
    backend.sha_override[3] = "0" * 64
    out = tmp_path / "out"
    out.mkdir()
    with server:
        async with Downloader(backend, ONE_HELPER) as dl, dl._transfer_pool() as pool:
            pool._start_helpers()
            [helper] = pool.helpers
            with anyio.fail_after(30):
                while not helper.ready:
                    await anyio.sleep(0.01)

            async def in_helper(job_id: int) -> tuple[int, str, list[UnpackedFile]]:
                info = await dl._locate(job_id)
                part = out / f".{job_id}.tar.part"
                return await helper.fetch(info, part, _Run(None, None), (out / str(job_id), False))

            size, sha, files = await in_helper(1)
            with pytest.raises(UnsafeArchiveError) as unsafe:
                await in_helper(2)
            with pytest.raises(IntegrityError) as corrupt:
                await in_helper(3)
    assert (size, sha) == (len(archives[1]), hashlib.sha256(archives[1]).hexdigest())
    assert set(files) == {UnpackedFile(n, len(d)) for n, d in contents[1].items()}
    for name, data in contents[1].items():
        assert (out / "1" / name).read_bytes() == data
    assert unsafe.value.job_id == 2
    assert corrupt.value.job_id == 3
    assert "SHA-256" in str(corrupt.value)
    # Each job's first URL was refused and a fresh one asked of this process (job 3: for each
    # of its attempts, as the integrity check starts it over).
    assert backend.calls.count(1) == 2
    assert backend.calls.count(2) == 2
    assert backend.calls.count(3) >= 2
    assert not (tmp_path / "evil").exists()
    assert sorted(p.name for p in out.iterdir()) == ["1"]


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
                results = await dl.download(helper_first(dl, list(archives)), out)
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
    # Cancelled once a helper finished a transfer (others in flight, here and in the helper).
    # With a progress callback the helper waits for the parent before it installs a job's
    # files: a cancelled parent never answers, and the helper must still end and clean up.
    helper_finished = anyio.Event()
    ended = False

    def on_progress(_: DownloadProgress) -> None:
        if dl.helper_transfers > 0:
            helper_finished.set()

    async def cancel_after_a_helper_transfer(scope: anyio.CancelScope) -> None:
        await helper_finished.wait()
        scope.cancel()

    with server:
        async with Downloader(backend, replace(ONE_HELPER, max_concurrency=8)) as dl:
            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_after_a_helper_transfer, tg.cancel_scope)
                await dl.download(helper_first(dl, list(archives)), out, progress=on_progress)
                ended = True
            assert not ended, "every job was downloaded before a helper transfer finished"
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


async def test_automatic_helpers_wait_for_a_busy_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow server keeps this process waiting, not busy: helpers would only take CPU from
    # whatever is slow, so the automatic setting starts none (not even a process).
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(4)), raising=False)
    _, archives = tar_jobs(dict.fromkeys(range(1, 13), 300_000))
    server, backend = tar_server(archives, 0.04)
    started: set[int] = set()

    async def watch() -> None:
        while True:
            started.update(helpers_of(os.getpid()))
            await anyio.sleep(0.02)

    with server:
        async with Downloader(backend, replace(FAST, max_concurrency=4)) as dl:
            assert dl.config.processes is None
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                results = await dl.download(archives, tmp_path / "out")
                tg.cancel_scope.cancel()
            assert dl.helper_transfers == 0
    assert all(r.ok for r in results)
    assert started == set()  # of the 3 this machine's 4 cores would allow


@pytest.mark.parametrize(("cores", "helpers"), [(1, 0), (2, 1), (3, 2), (8, 4), (64, 4)])
def test_default_helpers_leave_this_process_one_core(
    monkeypatch: pytest.MonkeyPatch, cores: int, helpers: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)), raising=False)
    assert default_processes() == helpers
    backend = UrlBackend("http://127.0.0.1:9", {})
    automatic = Downloader(backend, FAST)._transfer_pool()
    assert (automatic.processes, automatic.when_busy) == (helpers, True)
    chosen = Downloader(backend, replace(FAST, processes=3))._transfer_pool()
    assert (chosen.processes, chosen.when_busy) == (3, False)
    # A caller's own HTTP client cannot go to a helper.
    assert Downloader(backend, ONE_HELPER)._transfer_pool(enabled=False).processes == 0
    with pytest.raises(ValueError, match="processes"):
        DownloadConfig(processes=-1)


def test_helpers_on_trio(tmp_path: Path) -> None:
    contents, archives = tar_jobs(dict.fromkeys(range(1, 21), 200_000))
    server, backend = tar_server(archives, 0.005)
    out = tmp_path / "out"

    async def main() -> int:
        async with Downloader(backend, replace(ONE_HELPER, max_concurrency=6)) as dl:
            results = await dl.download(helper_first(dl, list(archives)), out)
            assert [r.error for r in results if not r.ok] == []
            return dl.helper_transfers

    with server:
        assert anyio.run(main, backend="trio") > 0
    for j, files in contents.items():
        for name, data in files.items():
            assert (out / str(j) / name).read_bytes() == data
    assert hidden(out) == []
