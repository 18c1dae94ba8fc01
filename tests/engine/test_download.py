"""The downloader against a real HTTP server on loopback: cuts, resumes, expiry, per-job errors.

The server (:class:`SandboxServer`) is a real threaded HTTP/1.1 server serving archives from
memory, with Range support that can be switched off, presigned-style tokens that can be expired,
and a seeded random cut of the connection after some bytes of a response.
"""

from __future__ import annotations

import hashlib
import random
import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
import trustme
from _archives import make_archive

from aiodirac import (
    ActionResult,
    Backend,
    Capabilities,
    ConfigurationError,
    IntegrityError,
    JobNotFoundError,
    JobState,
    JobStatus,
    NotSupportedError,
    OutputSandbox,
    SandboxNotAvailableError,
    SubmitChunk,
    UnconfirmedJob,
    UnsafeArchiveError,
)
from aiodirac._engine._retry import RetryPolicy, retry_test_mode
from aiodirac._engine.download._downloader import (
    DownloadConfig,
    Downloader,
    DownloadPhase,
    DownloadProgress,
    DownloadResult,
)
from aiodirac._journal import Journal
from aiodirac.backends.diracx import DiracXBackend

# ---------------------------------------------------------------------------- the server


class _QuietServer(ThreadingHTTPServer):
    connections = 0  # accepted, or refused during the TLS handshake

    def get_request(self) -> tuple[socket.socket, object]:
        self.connections += 1
        return super().get_request()

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that drop a connection we cut are expected here.
        pass


class SandboxServer:
    """A real HTTP server on 127.0.0.1 serving ``files`` at ``/<name>?token=<t>``."""

    def __init__(
        self,
        files: Mapping[str, bytes],
        *,
        seed: int = 0,
        cut_probability: float = 0.0,
        honour_range: bool = True,
        chunk_delay: float = 0.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.files = dict(files)
        self.rng = random.Random(seed)
        self.cut_probability = cut_probability
        self.honour_range = honour_range
        self.chunk_delay = chunk_delay
        self.expired: set[str] = set()
        self.lock = threading.Lock()
        self.log: list[tuple[str, str | None, int]] = []
        self.cuts = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._serve(self)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:  # HTTPS, as presigned S3 URLs are in production
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, name: str, token: str = "t") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}?token={token}"

    def requests_for(self, name: str) -> list[tuple[str, str | None, int]]:
        with self.lock:
            return [r for r in self.log if r[0] == name]

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        name = parts.path.lstrip("/")
        token = parse_qs(parts.query).get("token", [""])[0]
        rng_header = h.headers.get("Range")

        def reply(status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            with self.lock:
                self.log.append((name, rng_header, status))
            h.send_response(status)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)

        if token in self.expired:
            reply(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message>")
            return
        data = self.files.get(name)
        if data is None:
            reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
            return
        status, start = 200, 0
        headers = {"Accept-Ranges": "bytes"} if self.honour_range else {}
        if rng_header and self.honour_range:
            start = int(rng_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        with self.lock:
            self.log.append((name, rng_header, status))
            cut_at = (
                self.rng.randrange(0, len(body))
                if body and self.rng.random() < self.cut_probability
                else None
            )
            if cut_at is not None:
                self.cuts += 1
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        end = len(body) if cut_at is None else cut_at
        step = 64 * 1024
        for i in range(0, end, step):
            h.wfile.write(body[i : min(i + step, end)])
            if self.chunk_delay:
                h.wfile.flush()
                threading.Event().wait(self.chunk_delay)
        if cut_at is not None:
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------- fakes


class UrlBackend(Backend):
    """A backend whose only real method is ``output_sandbox``: URLs on a :class:`SandboxServer`."""

    capabilities = Capabilities(1, 1, 1)

    def __init__(
        self,
        server_url: str,
        archives: Mapping[int, bytes],
        *,
        fmt: str = "tar.gz",
        give_sha: bool = True,
        expires_in: float | None = None,
        not_final: Sequence[int] = (),
        no_sandbox: Sequence[int] = (),
        on_grid: Sequence[int] = (),
    ) -> None:
        self.base = server_url.rstrip("/")
        self.archives = dict(archives)
        self.fmt = fmt
        self.give_sha = give_sha
        self.expires_in = expires_in
        self.not_final = set(not_final)
        self.no_sandbox = set(no_sandbox)
        self.on_grid = set(on_grid)
        self.calls: list[int] = []
        self.sha_override: dict[int, str] = {}
        self.size_override: dict[int, int] = {}

    @property
    def description(self) -> str:
        return f"test backend at {self.base}"

    async def output_sandbox(self, job_id: int) -> OutputSandbox:
        self.calls.append(job_id)
        if job_id in self.not_final:
            raise SandboxNotAvailableError(f"job {job_id} is Running: not final yet")
        if job_id in self.no_sandbox:
            raise SandboxNotAvailableError(f"job {job_id} has no output sandbox")
        if job_id in self.on_grid:
            raise SandboxNotAvailableError(
                f"job {job_id}'s output sandbox was too big and is on grid storage "
                "(OutputSandboxLFN); it needs grid storage access"
            )
        if job_id not in self.archives:
            raise JobNotFoundError(f"no job {job_id}", job_ids=(job_id,))
        data = self.archives[job_id]
        token = f"{job_id}-{self.calls.count(job_id)}"
        return OutputSandbox(
            job_id=job_id,
            url=f"{self.base}/{job_id}.{self.fmt}?token={token}",
            size=self.size_override.get(job_id, len(data)),
            sha256=self.sha_override.get(job_id, hashlib.sha256(data).hexdigest())
            if self.give_sha
            else None,
            format=self.fmt,
            expires_in=self.expires_in,
        )

    async def submit(self, chunk: SubmitChunk) -> list[int]:
        raise NotSupportedError("test backend: downloads only")

    async def confirm(self, job_ids: Sequence[int]) -> None:
        raise NotSupportedError("test backend: downloads only")

    async def discard(self, job_ids: Sequence[int], reason: str) -> None:
        raise NotSupportedError("test backend: downloads only")

    async def find_unconfirmed(
        self,
        *,
        job_group: str | None = None,
        name_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UnconfirmedJob]:
        raise NotSupportedError("test backend: downloads only")

    async def status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        raise NotSupportedError("test backend: downloads only")

    async def kill(self, job_ids: Sequence[int]) -> ActionResult:
        raise NotSupportedError("test backend: downloads only")

    async def delete(self, job_ids: Sequence[int]) -> ActionResult:
        raise NotSupportedError("test backend: downloads only")

    async def reschedule(self, job_ids: Sequence[int]) -> ActionResult:
        raise NotSupportedError("test backend: downloads only")

    async def summary(self, job_ids: Sequence[int]) -> dict[JobStatus, int]:
        raise NotSupportedError("test backend: downloads only")

    async def get_jdl(self, job_id: int) -> str:
        raise NotSupportedError("test backend: downloads only")


# ---------------------------------------------------------------------------- helpers


def job_files(job_id: int, size: int, seed: int = 0) -> dict[str, bytes]:
    rng = random.Random(job_id * 7919 + seed)
    return {
        "std.out": f"job {job_id} done\n".encode(),
        "data/result.bin": rng.randbytes(size),
    }


def hidden(dest: Path) -> list[str]:
    return sorted(str(p.relative_to(dest)) for p in dest.rglob(".*"))


FAST = DownloadConfig(
    retry=RetryPolicy(deadline=60, initial=0.01, max_backoff=0.05),
    read_timeout=10,
)


@pytest.fixture
def no_wait() -> Iterator[None]:
    with retry_test_mode():
        yield


def helpers_of(pid: int) -> list[int]:
    """PIDs of the live transfer helper processes started by process ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        helper = any(b"aiodirac._engine.download._transfer_worker" in arg for arg in argv)
        if helper and str(pid).encode() in argv and state != "Z":
            found.append(int(entry.name))
    return found


async def helper_first(dl: Downloader, ids: list[int], first: int = 2) -> AsyncIterator[int]:
    """Yield ``first`` IDs, then the rest once a transfer helper process said it is ready (the
    second transfer starts one at once; it imports aiodirac before taking any)."""
    for job_id in ids[:first]:
        yield job_id
    with anyio.fail_after(60):
        # the helper's readiness is a flag its reader task sets: checked between transfers
        while not any(h.ready for pool in dl._pools for h in pool.helpers):
            await anyio.sleep(0.01)
    for job_id in ids[first:]:
        yield job_id


def serve(
    archives: Mapping[int, bytes], fmt: str = "tar.gz", **kw: object
) -> tuple[SandboxServer, dict[str, bytes]]:
    files = {f"{j}.{fmt}": data for j, data in archives.items()}
    return SandboxServer(files, **kw), files  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- tests


async def test_downloads_into_job_folders(tmp_path: Path) -> None:
    contents = {j: job_files(j, 50_000) for j in range(1, 21)}
    archives = {j: make_archive(f) for j, f in contents.items()}
    server, _ = serve(archives)
    snapshots: list[DownloadProgress] = []
    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives)
        async with Downloader(backend, FAST) as dl:
            results = await dl.download(list(archives), tmp_path / "out", progress=snapshots.append)
            assert "0 active, 20 done" in repr(dl)
    out = tmp_path / "out"
    assert [r.job_id for r in results] == list(range(1, 21))
    for r in results:
        assert r.ok, r.error
        assert r.path == out / str(r.job_id)
        assert {f.name: f.size for f in r.files} == {
            n: len(d) for n, d in contents[r.job_id].items()
        }
        assert r.bytes == len(archives[r.job_id])
        assert r.sha256 == hashlib.sha256(archives[r.job_id]).hexdigest()
        for name, data in contents[r.job_id].items():
            assert (out / str(r.job_id) / name).read_bytes() == data
    assert hidden(out) == []
    last = snapshots[-1]
    assert last.jobs_done == 20
    assert last.jobs_total == 20
    assert last.bytes_done == sum(len(a) for a in archives.values())
    assert last.files_done == 40
    assert last.rate > 0
    assert {s.job.phase for s in snapshots} >= {
        DownloadPhase.LOCATING,
        DownloadPhase.DOWNLOADING,
        DownloadPhase.UNPACKING,
        DownloadPhase.DONE,
    }


@pytest.mark.parametrize("processes", [0, 1])
@pytest.mark.parametrize(("honour_range", "unpack"), [(True, True), (True, False), (False, True)])
async def test_connection_cut_at_random_points(
    tmp_path: Path, no_wait: None, honour_range: bool, unpack: bool, processes: int
) -> None:
    n = 100 if honour_range and unpack else 30
    contents = {
        j: job_files(j, random.Random(j).randrange(20_000, 400_000)) for j in range(1, n + 1)
    }
    archives = {j: make_archive(f, "tar") for j, f in contents.items()}
    server, _ = serve(archives, "tar", seed=n, cut_probability=0.6, honour_range=honour_range)
    out = tmp_path / "out"
    early: list[str] = []

    def watch(p: DownloadProgress) -> None:
        # Nothing may be visible under its final name before it is complete.
        if p.job.phase in (DownloadPhase.DOWNLOADING, DownloadPhase.UNPACKING):
            job_dir = out / str(p.job.job_id)
            if job_dir.exists() and any(job_dir.iterdir()):
                early.append(str(job_dir))

    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives, fmt="tar")
        async with Downloader(backend, replace(FAST, processes=processes)) as dl:
            ids = helper_first(dl, list(archives)) if processes else list(archives)
            results = await dl.download(ids, out, unpack=unpack, progress=watch)
            # With a helper, it did its share (in one process, nothing else ran).
            assert (dl.helper_transfers > 0) is bool(processes)
    assert server.cuts >= n // 3
    assert early == []
    assert [r.error for r in results if not r.ok] == []
    for j, r in enumerate(results, start=1):
        assert r.sha256 == hashlib.sha256(archives[j]).hexdigest()
        if unpack:
            for name, data in contents[j].items():
                assert (out / str(j) / name).read_bytes() == data
        else:
            assert r.path == out / str(j) / f"{j}.tar"
            assert r.path.read_bytes() == archives[j]
    statuses = {status for _, _, status in server.log}
    assert (206 in statuses) is honour_range
    assert hidden(out) == []


async def test_expired_urls_are_asked_for_again(tmp_path: Path, no_wait: None) -> None:
    archives = {j: make_archive(job_files(j, 10_000)) for j in (1, 2, 3)}
    server, _ = serve(archives)
    # The first URL of every job has expired by the time it is used (S3 answers 403).
    server.expired = {f"{j}-1" for j in archives}
    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives)
        async with Downloader(backend, FAST) as dl:
            results = await dl.download(archives, tmp_path / "out")
    assert all(r.ok for r in results), [r.error for r in results]
    assert sorted(backend.calls) == [1, 1, 2, 2, 3, 3]


async def test_url_older_than_its_lifetime_is_refreshed_before_use(
    tmp_path: Path, no_wait: None
) -> None:
    archives = {1: make_archive(job_files(1, 300_000), "tar")}
    server, _ = serve(archives, "tar", seed=3, cut_probability=0.7)
    server.expired = {"1-1"}
    with server:
        backend = UrlBackend(
            f"http://127.0.0.1:{server.port}", archives, fmt="tar", expires_in=1e-6
        )
        async with Downloader(backend, FAST) as dl:
            [result] = await dl.download([1], tmp_path / "out")
    # Every request used a fresh URL; the expired one never reached the server.
    assert result.ok, result.error
    assert all(status != 403 for _, _, status in server.log)
    assert len(backend.calls) >= 2


async def test_url_refused_for_good_is_a_per_job_error(tmp_path: Path, no_wait: None) -> None:
    archives = {1: make_archive(job_files(1, 1000)), 2: make_archive(job_files(2, 1000))}
    server, _ = serve(archives)
    server.expired = {f"1-{i}" for i in range(1, 10)}
    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives)
        async with Downloader(backend, FAST) as dl:
            r1, r2 = await dl.download([1, 2], tmp_path / "out")
    assert not r1.ok
    assert "fresh URLs" in (r1.error or "")
    assert r2.ok
    assert hidden(tmp_path / "out") == []


async def test_per_job_errors_never_crash_the_rest(tmp_path: Path, no_wait: None) -> None:
    good = {j: make_archive(job_files(j, 1000)) for j in (1, 2)}
    hostile = make_archive({"../../evil": b"x"})
    archives = {**good, 6: hostile, 7: good[1], 8: good[2], 9: good[1]}
    server, _ = serve(archives)
    del server.files["7.tar.gz"]  # listed by the backend, gone from storage
    with server:
        backend = UrlBackend(
            f"http://127.0.0.1:{server.port}",
            archives,
            not_final=[3],
            no_sandbox=[4],
            on_grid=[5],
        )
        backend.sha_override[8] = "0" * 64
        backend.size_override[9] = len(good[1]) + 1
        async with Downloader(backend, FAST) as dl:
            results = await dl.download([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], tmp_path / "out")
    by_id = {r.job_id: r for r in results}
    assert by_id[1].ok
    assert by_id[2].ok
    assert "not final" in (by_id[3].error or "")
    assert isinstance(by_id[3].exception, SandboxNotAvailableError)
    assert "no output sandbox" in (by_id[4].error or "")
    assert "grid storage" in (by_id[5].error or "")
    assert isinstance(by_id[6].exception, UnsafeArchiveError)
    assert isinstance(by_id[7].exception, SandboxNotAvailableError)
    assert "404" in (by_id[7].error or "")
    assert isinstance(by_id[8].exception, IntegrityError)
    assert "SHA-256" in (by_id[8].error or "")
    assert isinstance(by_id[9].exception, IntegrityError)
    assert isinstance(by_id[10].exception, JobNotFoundError)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["1", "2"]
    assert not (tmp_path / "evil").exists()
    # An integrity failure is retried from scratch before it is reported.
    assert len(server.requests_for("8.tar.gz")) == 3


async def test_journal_skips_complete_jobs_and_redoes_damaged_ones(tmp_path: Path) -> None:
    archives = {j: make_archive(job_files(j, 20_000)) for j in range(1, 6)}
    server, _ = serve(archives)
    out = tmp_path / "out"
    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives)
        async with (
            await Journal.open(tmp_path / "campaign.db") as journal,
            Downloader(backend, FAST, journal=journal) as dl,
        ):
            first = await dl.download(archives, out)
            assert all(r.ok and not r.skipped for r in first)
            assert set((await journal.downloads()).keys()) == set(archives)
            backend.calls.clear()
            second = await dl.download(archives, out)
            assert all(r.ok and r.skipped for r in second)
            assert [set(r.files) for r in second] == [set(r.files) for r in first]
            assert backend.calls == []
            (out / "3" / "data" / "result.bin").unlink()
            third = await dl.download(archives, out)
    assert backend.calls == [3]
    assert [r.skipped for r in third] == [True, True, False, True, True]
    assert (out / "3" / "data" / "result.bin").exists()


async def test_keep_archives_and_skip_them_on_restart(tmp_path: Path) -> None:
    archives = {j: make_archive(job_files(j, 5_000), "tar.zst") for j in (1, 2)}
    server, _ = serve(archives, "tar.zst")
    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives, fmt="tar.zst")
        async with (
            await Journal.open(tmp_path / "campaign.db") as journal,
            Downloader(backend, FAST, journal=journal) as dl,
        ):
            first = await dl.download([1, 2], tmp_path / "out", unpack=False, no_job_dir=True)
            second = await dl.download([1, 2], tmp_path / "out", unpack=False, no_job_dir=True)
    assert [r.path for r in first] == [
        tmp_path / "out" / "1.tar.zst",
        tmp_path / "out" / "2.tar.zst",
    ]
    assert [r.skipped for r in second] == [True, True]
    assert (tmp_path / "out" / "2.tar.zst").read_bytes() == archives[2]


async def test_no_job_dir_merges_into_dest(tmp_path: Path) -> None:
    archives = {
        1: make_archive({"a.txt": b"1"}),
        2: make_archive({"b.txt": b"2", "sub/c.txt": b"3"}),
    }
    server, _ = serve(archives)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives)
        async with Downloader(backend, FAST) as dl:
            results = await dl.download([1, 2], out, no_job_dir=True)
    assert all(r.ok and r.path == out for r in results)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "a.txt",
        "b.txt",
        "mine.txt",
        "sub",
        "sub/c.txt",
    ]


async def test_downloads_start_while_ids_still_arrive(tmp_path: Path) -> None:
    archives = {j: make_archive(job_files(j, 1000)) for j in (1, 2, 3)}
    server, _ = serve(archives)
    out = tmp_path / "out"
    send, receive = anyio.create_memory_object_stream[int](10)

    async def feed() -> None:
        async with send:
            for j in archives:
                await send.send(j)
                # The next job only "turns Done" once this one is on disk.
                with anyio.fail_after(10):
                    while not (out / str(j) / "std.out").exists():
                        await anyio.sleep(0.01)

    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives)
        async with Downloader(backend, FAST) as dl, receive, anyio.create_task_group() as tg:
            tg.start_soon(feed)
            results = await dl.download(receive, out)
    assert [r.job_id for r in results] == [1, 2, 3]
    assert all(r.ok for r in results)


async def test_duplicate_and_bad_ids(tmp_path: Path) -> None:
    archives = {1: make_archive(job_files(1, 100))}
    server, _ = serve(archives)
    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives)
        async with Downloader(backend, FAST) as dl:
            results = await dl.download([1, 1, 1], tmp_path / "out")
            assert len(results) == 1
            assert backend.calls == [1]
            with pytest.raises(ValueError, match="positive integers"):
                await dl.download([1, 0], tmp_path / "out")
            with pytest.raises(ValueError, match="positive integers"):
                await dl.download([True], tmp_path / "out")


async def test_given_http_client_is_used_and_left_open(tmp_path: Path) -> None:
    archives = {1: make_archive(job_files(1, 100))}
    server, _ = serve(archives)
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(str(request.url))
        assert "authorization" not in request.headers

    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives)
        async with httpx.AsyncClient(event_hooks={"request": [hook]}) as http:
            async with Downloader(backend, FAST, http=http) as dl:
                [r] = await dl.download([1], tmp_path / "out")
            assert not http.is_closed
    assert r.ok
    assert len(seen) == 1


def waiting_bytes(sock: socket.socket) -> int:
    """How many received bytes wait in a socket's buffer."""
    import fcntl
    import termios

    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


@pytest.mark.parametrize("backend_name", ["asyncio", "trio"])
def test_own_client_reads_more_than_httpcores_64_kib(tmp_path: Path, backend_name: str) -> None:
    # httpcore reads 64 KiB at a time; the downloader's own client takes what the socket holds
    # (up to 1 MiB): a quarter to a sixteenth of the per-read CPU on big sandboxes.
    body = random.Random(5).randbytes(8 << 20)
    server = SandboxServer({"big": body})

    async def sizes(http: httpx.AsyncClient, ready: int = 64 * 1024 + 1) -> list[int]:
        async with http.stream("GET", server.url("big")) as r:
            # Until the socket holds ``ready`` bytes (FIONREAD): more than one httpcore read for
            # the clients that must take more at once; plain httpx reads 64 KiB whatever waits.
            sock = r.extensions["network_stream"].get_extra_info("socket")
            with anyio.fail_after(30):
                while waiting_bytes(sock) < ready:
                    await anyio.sleep(0.005)
            return [len(piece) async for piece in r.aiter_raw()]

    async def main() -> tuple[list[int], list[int], list[int]]:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", {})
        async with (
            Downloader(backend, FAST) as dl,
            DiracXBackend(f"http://127.0.0.1:{server.port}", token="t") as dx,
            httpx.AsyncClient() as plain,
        ):
            return await sizes(dl._client()), await sizes(dx.http_client), await sizes(plain, 1)

    with server:
        ours, diracx, plain = anyio.run(main, backend=backend_name)
    assert sum(ours) == sum(diracx) == sum(plain) == len(body)
    assert max(plain) <= 64 * 1024
    # The downloader's client and DiracXBackend's (which also fetches presigned URLs).
    assert max(ours) > 64 * 1024
    assert max(diracx) > 64 * 1024


@pytest.mark.parametrize("backend_name", ["asyncio", "trio"])
def test_own_client_sees_idle_connections_the_server_closed(backend_name: str) -> None:
    # The server answers with keep-alive, then closes the idle connection: the pool must notice
    # (httpcore asks the stream "is_readable") and open a new one, not send into a dead socket.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[int] = []
    got_first = threading.Event()  # the client read the answer: the connection is idle
    closed = threading.Event()  # the server closed it

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            accepted.append(1)
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                got_first.wait(30)
            closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    async def main() -> list[bytes]:
        async with Downloader(UrlBackend("http://unused.invalid", {}), FAST) as dl:
            http = dl._client()
            first = (await http.get(f"http://127.0.0.1:{port}/a")).content
            got_first.set()
            await anyio.to_thread.run_sync(closed.wait, 30)
            second = (await http.get(f"http://127.0.0.1:{port}/b")).content
            return [first, second]

    try:
        assert anyio.run(main, backend=backend_name) == [b"ok", b"ok"]
    finally:
        listener.close()
    assert accepted == [1, 1]


@pytest.mark.parametrize(
    ("backend_name", "processes"), [("asyncio", 0), ("asyncio", 1), ("trio", 0)]
)
def test_https_sandboxes_are_verified_against_the_configured_ca(
    tmp_path: Path, backend_name: str, processes: int
) -> None:
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    contents = {j: job_files(j, 600_000) for j in range(1, 6)}
    archives = {j: make_archive(f, "tar") for j, f in contents.items()}
    server, _ = serve(archives, "tar", seed=3, cut_probability=0.4, tls=tls)

    async def main(config: DownloadConfig, out: Path) -> tuple[list[DownloadResult], int]:
        backend = UrlBackend(f"https://127.0.0.1:{server.port}", archives, fmt="tar")
        # With a helper process, most jobs go to it: the CA path must reach it too.
        async with Downloader(backend, replace(config, processes=processes)) as dl:
            ids = helper_first(dl, list(archives)) if processes else list(archives)
            return await dl.download(ids, out), dl.helper_transfers

    with server, retry_test_mode():
        trusted, helped = anyio.run(
            main, replace(FAST, verify=str(bundle)), tmp_path / "ok", backend=backend_name
        )
        before = server.httpd.connections
        untrusted, _ = anyio.run(main, FAST, tmp_path / "no", backend=backend_name)
        attempts = server.httpd.connections - before
    assert [r.ok for r in trusted] == [True] * 5
    assert (helped > 0) == (processes > 0)
    for j, files in contents.items():
        for name, data in files.items():
            assert (tmp_path / "ok" / str(j) / name).read_bytes() == data
    # TLS verification stays on by default: a CA the system does not know is refused, per job.
    assert [r.ok for r in untrusted] == [False] * 5
    assert all("certificate is not trusted" in str(r.error) for r in untrusted)
    assert all(type(r.exception) is ConfigurationError for r in untrusted)
    assert attempts == 5  # one per job: a certificate that does not verify is not retried
    assert not (tmp_path / "no").exists() or not any((tmp_path / "no").iterdir())


def test_a_ca_path_that_cannot_be_read_is_a_configuration_error(tmp_path: Path) -> None:
    backend = UrlBackend("https://127.0.0.1:1", {})
    with pytest.raises(ConfigurationError, match="CA certificates"):
        Downloader(backend, replace(FAST, verify=str(tmp_path / "missing.pem")))
    with pytest.raises(ValueError, match="verify"):
        DownloadConfig(verify="")


class LocalPathBackend(UrlBackend):
    """Sandboxes as local files (what the local backend gives)."""

    def __init__(self, folder: Path, archives: Mapping[int, bytes]) -> None:
        super().__init__("http://unused.invalid", archives)
        self.folder = folder
        for j, data in archives.items():
            (folder / f"{j}.tar.gz").write_bytes(data)

    async def output_sandbox(self, job_id: int) -> OutputSandbox:
        self.calls.append(job_id)
        data = self.archives[job_id]
        return OutputSandbox(
            job_id=job_id,
            path=str(self.folder / f"{job_id}.tar.gz"),
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            format="tar.gz",
        )


async def test_local_sandboxes_need_no_http(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    archives = {j: make_archive(job_files(j, 3000)) for j in (1, 2)}
    backend = LocalPathBackend(store, archives)
    async with Downloader(backend, FAST) as dl:
        unpacked = await dl.download([1, 2], tmp_path / "out")
        kept = await dl.download([1, 2], tmp_path / "kept", unpack=False)
        assert dl._http is None
    assert all(r.ok for r in unpacked + kept)
    assert (tmp_path / "out" / "2" / "std.out").read_bytes() == b"job 2 done\n"
    assert (tmp_path / "kept" / "1" / "1.tar.gz").read_bytes() == archives[1]
    # The backend's own files are left where they were.
    assert sorted(p.name for p in store.iterdir()) == ["1.tar.gz", "2.tar.gz"]


def test_runs_on_trio(tmp_path: Path) -> None:
    archives = {j: make_archive(job_files(j, 100_000), "tar") for j in (1, 2, 3)}
    server, _ = serve(archives, "tar", seed=1, cut_probability=0.5)

    async def main() -> list[bool]:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives, fmt="tar")
        async with Downloader(backend, FAST) as dl:
            results = await dl.download(archives, tmp_path / "out", unpack=False)
        return [r.ok for r in results]

    with server, retry_test_mode():
        assert anyio.run(main, backend="trio") == [True, True, True]
    assert (tmp_path / "out" / "3" / "3.tar").read_bytes() == archives[3]


async def test_cancellation_leaves_no_partial_content(tmp_path: Path) -> None:
    archives = {j: make_archive(job_files(j, 2_000_000), "tar") for j in range(1, 5)}
    server, _ = serve(archives, "tar", chunk_delay=0.01)
    out = tmp_path / "out"
    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives, fmt="tar")
        async with Downloader(backend, FAST) as dl:
            with anyio.move_on_after(0.3) as scope:
                await dl.download(archives, out)
            assert scope.cancelled_caught
            assert "0 active" in repr(dl)
    assert list(out.iterdir()) == []


CHILD = """
import sys
from pathlib import Path

import anyio

sys.path.insert(0, {here!r})
from test_download import FAST, UrlBackend

from aiodirac._engine.download._downloader import DownloadConfig, Downloader
from aiodirac._journal import Journal

archives = {{int(p.stem): p.read_bytes() for p in Path({store!r}).iterdir()}}


async def main() -> None:
    backend = UrlBackend({url!r}, archives, fmt="tar")
    config = DownloadConfig(max_concurrency=3, retry=FAST.retry, processes=1)
    async with (
        await Journal.open({journal!r}) as journal,
        Downloader(backend, config, journal=journal) as dl,
    ):
        await dl.download(sorted(archives), {out!r})


anyio.run(main)
"""


@pytest.mark.slow
async def test_sigkill_then_restart_downloads_nothing_twice(tmp_path: Path) -> None:
    import subprocess
    import sys

    store = tmp_path / "store"
    store.mkdir()
    contents = {j: job_files(j, 1 << 20) for j in range(1, 25)}
    archives = {j: make_archive(f, "tar") for j, f in contents.items()}
    for j, data in archives.items():
        (store / f"{j}.tar").write_bytes(data)
    server, _ = serve(archives, "tar", chunk_delay=0.004)
    journal_path = tmp_path / "campaign.db"
    out = tmp_path / "out"
    with server:
        script = CHILD.format(
            here=str(Path(__file__).parent),
            store=str(store),
            url=f"http://127.0.0.1:{server.port}",
            journal=str(journal_path),
            out=str(out),
        )
        child = subprocess.Popen([sys.executable, "-c", script])
        try:
            with anyio.fail_after(60):
                while not journal_path.exists():
                    await anyio.sleep(0.02)
                async with await Journal.open(journal_path) as watcher:
                    while len(await watcher.downloads()) < 6 or not helpers_of(child.pid):
                        assert child.poll() is None, "the child finished before it was killed"
                        await anyio.sleep(0.02)
            child.kill()  # SIGKILL: no cleanup of any kind
        finally:
            child.kill()
            child.wait()
        # Its transfer helper processes die with it (they would otherwise write on).
        with anyio.fail_after(10):
            while helpers_of(child.pid):
                await anyio.sleep(0.02)
        journal = await Journal.open(journal_path)
        done_before = set(await journal.downloads())
        assert done_before < set(archives)
        requests_before = len(server.log)

        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives, fmt="tar")
        async with Downloader(backend, FAST, journal=journal) as dl:
            results = await dl.download(sorted(archives), out)

    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert {r.job_id for r in results if r.skipped} == done_before
    assert not set(backend.calls) & done_before
    again = {name for name, _, _ in server.log[requests_before:]}
    assert not again & {f"{j}.tar" for j in done_before}
    for j, files in contents.items():
        for name, data in files.items():
            assert (out / str(j) / name).read_bytes() == data
    assert hidden(out) == []
    assert set(await journal.downloads()) == set(archives)
    await journal.aclose()


async def test_leftovers_of_an_interrupted_run_are_removed(tmp_path: Path) -> None:
    archives = {j: make_archive(job_files(j, 1000)) for j in (5, 6)}
    server, _ = serve(archives)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".5.tar.gz.part").write_bytes(b"half")
    (out / ".5.unpack-0badcafe").mkdir()
    (out / ".5.unpack-0badcafe" / "std.out").write_text("partial")
    (out / ".6.old-12345678").mkdir()
    (out / ".notes").write_text("the user's own hidden file")
    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives)
        async with Downloader(backend, FAST) as dl:
            results = await dl.download([5, 6], out)
    assert all(r.ok for r in results)
    assert hidden(out) == [".notes"]


@pytest.mark.parametrize("unpack", [True, False])
async def test_fsync_policy(tmp_path: Path, unpack: bool) -> None:
    archives = {1: make_archive(job_files(1, 70_000))}
    server, _ = serve(archives)
    with server:
        backend = UrlBackend(f"http://127.0.0.1:{server.port}", archives)
        config = DownloadConfig(fsync=True, retry=FAST.retry)
        async with Downloader(backend, config) as dl:
            [r] = await dl.download([1], tmp_path / "out", unpack=unpack)
    assert r.ok, r.error
    assert r.sha256 == hashlib.sha256(archives[1]).hexdigest()
    assert hidden(tmp_path / "out") == []
