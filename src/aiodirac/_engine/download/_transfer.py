"""One output sandbox from an HTTP URL or a local file to disk: stream, resume, verify.

Used by :class:`~aiodirac.Downloader`: a transfer writes through ``_files`` under a temporary
name (or straight into a safe extraction), resumes a cut transfer with a Range request, asks for a
fresh URL when a presigned one expired, and checks size and SHA-256 before anything is renamed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
import httpx

from aiodirac._engine._retry import RetryPolicy, retry_call
from aiodirac._exceptions import (
    IntegrityError,
    NetworkError,
    SandboxError,
    SandboxNotAvailableError,
    SandboxTooLargeError,
    ServiceUnavailableError,
    TransientError,
    UnsafeArchiveError,
    certificate_refused,
    reason_of,
)
from aiodirac._resource import ungrouped
from aiodirac.backends._http._headers import parse_retry_after
from aiodirac.backends._http._tls import untrusted_certificate
from aiodirac.backends._protocol import OutputSandbox

from . import _files
from ._model import DownloadConfig, DownloadPhase, JobProgress, Locate, _Run
from ._space import SpaceLease
from ._unpack import Extraction, UnpackedFile, UnpackLimits

logger = logging.getLogger("aiodirac.download")

T = TypeVar("T")

MiB = 1 << 20

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
# Give up on an expired-URL loop after this many fresh URLs in a row without a new byte.
_MAX_RELOCATIONS = 3
# Start a transfer over (size or checksum mismatch) at most this many times.
_MAX_RESTARTS = 2
# An extraction's queue holds this many hand-offs (``DownloadConfig.chunk_size`` each: 2 MiB with
# the default) before the transfer waits for the extraction thread.
_PIPE_CHUNKS = 8
# The extraction thread takes queued network reads together, up to this many bytes at once.
_JOIN = 1 << 20


class _FileSink:
    """Archive bytes to a ``.part`` file (kept archives), counted against the temporary space."""

    def __init__(self, part: Path, fsync: bool, lease: SpaceLease) -> None:
        self.part = part
        self.fsync = fsync
        self.lease = lease
        self.out: _files.AsyncWriter | None = None
        self.hasher = hashlib.sha256()

    def _update(self, chunk: bytes) -> None:
        # In the worker thread, before the chunk is written.
        self.lease.take(len(chunk))
        self.hasher.update(chunk)

    async def open(self, tg: anyio.abc.TaskGroup) -> None:
        self.hasher = hashlib.sha256()
        self.out = await _files.open_writer(self.part)

    async def write(self, chunks: list[bytes], size: int) -> None:
        assert self.out is not None
        # One worker-thread call hashes and writes the batch (hashlib releases the GIL).
        await self.out.write_hashed(chunks, self._update)

    async def restart(self, tg: anyio.abc.TaskGroup) -> None:
        await self.abort()
        await self.open(tg)

    async def finish(self, verify: Callable[[], None]) -> list[UnpackedFile]:
        """Close the part file and check it with ``verify``; the caller renames it into place."""
        assert self.out is not None
        if self.fsync:
            await self.out.sync()
        await self.out.aclose()
        verify()
        # The caller renames it into place at once.
        self.lease.release()
        return []

    async def abort(self) -> None:
        if self.out is not None:
            await self.out.aclose()
        await _files.remove(self.part)
        self.lease.release()


class _ChunkPipe:
    """Chunks from the event loop to the extraction thread, hashed by the thread as it takes them.

    The event loop's side never waits while fewer than ``high`` bytes are queued: chunks are handed
    over under a lock, with no thread hop or task per chunk. The thread blocks on a condition until
    half of that is queued (or the stream ends); it wakes the loop (one ``from_thread`` call) only
    when the loop waits for room.
    """

    def __init__(self, hasher: Any, high: int) -> None:
        self.hasher = hasher
        self.high = high
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._closed = False  # no more chunks will come
        self.verify: Callable[[], None] | None = None  # set by close() when the stream is whole
        self._gone = False  # the reader stopped (finished or failed)
        self._reader_waits = False
        self._room: anyio.Event | None = None
        self._batch: deque[bytes] = deque()

    # ------------------------------------------------------------------ event loop side

    async def put(self, chunks: list[bytes], size: int) -> bool:
        """Queue ``chunks`` (``size`` bytes in all); False if the reader is gone."""
        with self._cond:
            if self._gone:
                return False
            self._queue.extend(chunks)
            self._queued += size
            # The thread is woken for half the queue at once: each wake-up is a hand-off of the
            # GIL between threads, which costs more than the bytes when done for every chunk.
            if self._reader_waits and self._queued >= self.high // 2:
                self._cond.notify()
            if self._queued < self.high:
                return True
            room = self._room = anyio.Event()
        await room.wait()
        return not self._gone

    def close(self, verify: Callable[[], None] | None = None) -> None:
        """No more chunks: the reader gets the end of the stream once the queue is empty.

        ``verify`` (the stream is complete: check it) is read by the reader after the end; without
        it the stream was abandoned.
        """
        with self._cond:
            if not self._closed:
                self.verify = verify
            self._closed = True
            self._cond.notify()

    # ------------------------------------------------------------------ extraction thread side

    def read_chunk(self) -> bytes:
        """The next chunk, hashed; ``b""`` at the end (a :data:`aiodirac._engine.download._unpack.ChunkSource`)."""
        if not self._batch:
            wake: anyio.Event | None = None
            with self._cond:
                while not self._queue and not self._closed:
                    self._reader_waits = True
                    self._cond.wait()
                self._reader_waits = False
                # Everything queued at once: one lock round per batch, not per chunk.
                self._batch, self._queue = self._queue, self._batch
                self._queued = 0
                wake, self._room = self._room, None
            if wake is not None:
                anyio.from_thread.run_sync(wake.set)
            if not self._batch:
                return b""
        chunk = self._batch.popleft()
        if self._batch and len(chunk) < _JOIN:
            # Several network reads as one piece: one hash call and one write for all of them.
            # Each of those releases and retakes the GIL, and retaking it while the event loop
            # runs costs more than copying the bytes once.
            parts, size = [chunk], len(chunk)
            while self._batch and size + len(self._batch[0]) <= _JOIN:
                part = self._batch.popleft()
                parts.append(part)
                size += len(part)
            if len(parts) > 1:
                chunk = b"".join(parts)
        self.hasher.update(chunk)
        return chunk

    def stop(self) -> None:
        """The reader is done: later chunks are refused and a waiting writer is released."""
        with self._cond:
            self._gone = True
            self._queue.clear()
            wake, self._room = self._room, None
        if wake is not None:
            anyio.from_thread.run_sync(wake.set)


class _ExtractSink:
    """Archive bytes fed to a safe extraction running in a worker thread, as they arrive.

    Nothing is written twice: the archive is never stored, its members go to a hidden folder,
    which becomes visible only after the checksum is verified. One worker thread does all of a
    job's file work (creates the hidden folder, extracts, verifies, installs or discards), so a
    job costs one thread hand-off, not one per step. A resumed transfer simply continues the
    stream; a restart from byte 0 starts a new extraction.
    """

    def __init__(
        self,
        target: Path,
        limits: UnpackLimits,
        *,
        merge: bool,
        fsync: bool,
        job_id: int,
        chunk_size: int,
        lease: SpaceLease,
        before_install: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.target = target
        self.lease = lease
        self.before_install = before_install
        self.limits = limits
        self.queue_bytes = _PIPE_CHUNKS * chunk_size
        self.merge = merge
        self.fsync = fsync
        self.job_id = job_id
        self.pipe: _ChunkPipe | None = None
        self.finished = anyio.Event()
        self.files: list[UnpackedFile] = []
        self.error: BaseException | None = None
        self.hasher = hashlib.sha256()

    async def open(self, tg: anyio.abc.TaskGroup) -> None:
        self.finished = anyio.Event()
        self.error = None
        self.hasher = hashlib.sha256()
        # What is queued per job is bounded: with max_concurrency, this bounds the memory.
        self.pipe = _ChunkPipe(self.hasher, self.queue_bytes)
        tg.start_soon(self._run, self.pipe)

    async def _run(self, pipe: _ChunkPipe) -> None:
        name = f"the output sandbox of job {self.job_id}"
        target, limits, merge, fsync = self.target, self.limits, self.merge, self.fsync
        before_install, lease = self.before_install, self.lease

        def run() -> list[UnpackedFile]:
            extraction: Extraction | None = None
            installed = False
            try:
                extraction = Extraction(
                    target,
                    limits=limits,
                    merge=merge,
                    fsync=fsync,
                    tag=str(self.job_id),
                    on_bytes=lease.take,
                )
                files = extraction.run(pipe.read_chunk, name)
                # Set by finish(), never by abort(): only a complete, verified archive goes in.
                verify = pipe.verify
                if verify is None:
                    raise IntegrityError(f"job {self.job_id}: the transfer was abandoned")
                verify()
                if before_install is not None:
                    anyio.from_thread.run(before_install)
                extraction.install()
                installed = True
                return files
            finally:
                pipe.stop()
                if extraction is not None and not installed:
                    extraction.discard()
                # Installed under final names, or removed: no longer temporary either way.
                lease.release()

        try:
            self.files = await anyio.to_thread.run_sync(run)
        except Exception as exc:  # noqa: BLE001 - reported by write() or finish()
            # Never raised into the task group: the transfer reports it as the job's error.
            self.error = exc
        finally:
            self.finished.set()

    async def write(self, chunks: list[bytes], size: int) -> None:
        assert self.pipe is not None
        if not await self.pipe.put(chunks, size):
            await self.finished.wait()
            raise self._failure()

    def _failure(self) -> BaseException:
        if (
            isinstance(self.error, UnsafeArchiveError | IntegrityError)
            and self.error.job_id is None
        ):
            self.error.job_id = self.job_id
        return self.error or IntegrityError(
            f"job {self.job_id}: the extraction stopped early", job_id=self.job_id
        )

    async def _stop(self, verify: Callable[[], None] | None) -> None:
        if self.pipe is not None:
            self.pipe.close(verify)
        with anyio.CancelScope(shield=True):
            await self.finished.wait()

    async def restart(self, tg: anyio.abc.TaskGroup) -> None:
        await self.abort()
        await self.open(tg)

    async def finish(self, verify: Callable[[], None]) -> list[UnpackedFile]:
        """End the stream; the extraction thread checks it with ``verify`` (which raises
        :class:`IntegrityError`) and only then moves the files into place."""
        await self._stop(verify)
        if self.error is not None:
            raise self._failure()
        return self.files

    async def abort(self) -> None:
        """End the stream; whatever was extracted is discarded (idempotent)."""
        await self._stop(None)


class _Transfer:
    """One transfer of one archive into its sink, resumed across cuts."""

    def __init__(
        self,
        client: Callable[[], httpx.AsyncClient],
        locate: Locate,
        config: DownloadConfig,
        info: OutputSandbox,
        sink: _FileSink | _ExtractSink,
        run: _Run,
    ) -> None:
        self.client = client
        self.locate = locate
        self.config = config
        self.info = info
        self.sink = sink
        self.run_state = run
        self.size = 0
        self.expected_total: int | None = info.size
        self.url_time = time.monotonic()
        self.relocations = 0
        self.restarts = 0
        self.high_water = 0
        self.cap = config.max_unpacked_bytes
        self.tg: anyio.abc.TaskGroup | None = None

    def _too_large(self, size: int, announced: bool = False) -> SandboxTooLargeError:
        job_id = self.info.job_id
        what = "announces" if announced else "sent more than"
        return SandboxTooLargeError(
            f"job {job_id}: the sandbox storage {what} {size} bytes, beyond the cap of "
            f"{self.cap} bytes per sandbox (DownloadConfig.max_unpacked_bytes); raise the cap "
            "if this sandbox is genuine",
            job_id=job_id,
        )

    async def run(self) -> list[UnpackedFile]:
        """Transfer, verify, install; the unpacked files (empty for a kept archive)."""
        error: Exception | None = None
        files: list[UnpackedFile] = []
        with ungrouped():
            async with anyio.create_task_group() as tg:
                self.tg = tg
                try:
                    await self.sink.open(tg)
                    await _retrying(self._attempt, self.config.retry)
                    if isinstance(self.sink, _ExtractSink):
                        self.run_state.emit(
                            JobProgress(
                                self.info.job_id, DownloadPhase.UNPACKING, self.size, self.size
                            )
                        )
                    files = await self.sink.finish(self._verify)
                except Exception as exc:  # noqa: BLE001 - re-raised below, unchanged
                    error = exc
                finally:
                    with anyio.CancelScope(shield=True):
                        if error is not None or not isinstance(self.sink, _FileSink):
                            await self.sink.abort()
        if error is not None:
            raise error
        return files

    def _verify(self) -> None:
        job_id = self.info.job_id
        size, sha = self.size, self.sink.hasher.hexdigest()
        if self.expected_total is not None and size != self.expected_total:
            raise IntegrityError(
                f"output sandbox of job {job_id}: got {size} bytes, expected {self.expected_total}",
                job_id=job_id,
            )
        if self.config.verify_checksums and self.info.sha256 and sha != self.info.sha256.lower():
            raise IntegrityError(
                f"output sandbox of job {job_id} has SHA-256 {sha}, the backend said "
                f"{self.info.sha256}",
                job_id=job_id,
            )

    async def _relocate(self, *, refused: bool) -> None:
        self.relocations += refused
        if self.relocations > _MAX_RELOCATIONS:
            raise SandboxError(
                f"job {self.info.job_id}: the storage refused {_MAX_RELOCATIONS} fresh URLs in a "
                "row; check your permissions on this job",
                job_id=self.info.job_id,
            )
        fresh = await self.locate(self.info.job_id)
        if fresh.url is None:
            raise SandboxNotAvailableError(
                f"job {self.info.job_id}: the backend no longer gives a URL for its sandbox",
                job_id=self.info.job_id,
            )
        self.info = fresh
        self.url_time = time.monotonic()

    def _expired(self) -> bool:
        ttl = self.info.expires_in
        # Ask again a little before the end, so a request never starts with a dying URL.
        return ttl is not None and time.monotonic() - self.url_time > ttl * 0.9

    async def _restart(self, *, unexpected: bool = True) -> None:
        self.restarts += unexpected
        if self.restarts > 2 * _MAX_RESTARTS:
            raise SandboxError(
                f"job {self.info.job_id}: the storage keeps answering with byte ranges that were "
                "not asked for; try again later",
                job_id=self.info.job_id,
            )
        assert self.tg is not None
        await self.sink.restart(self.tg)
        self.size = 0

    async def _attempt(self) -> None:
        while True:
            if self._expired():
                await self._relocate(refused=False)
            gained = await self._request()
            if gained is None:
                return
            if gained > 0:
                if self.size <= self.high_water:
                    # Cut again before getting further (a server that ignores Range): back off.
                    raise NetworkError(
                        f"job {self.info.job_id}: the transfer of its output sandbox was cut "
                        f"again at {self.size} bytes",
                        job_ids=(self.info.job_id,),
                    )
                # A cut after progress is resumed at once; only stalls count as failed attempts.
                self.high_water = self.size
                self.relocations = 0
            # gained < 0: a fresh URL or a fresh start, tried at once (both are bounded).

    async def _request(self) -> int | None:
        """One GET from the current offset.

        Returns None when complete, the bytes gained when cut after progress, or -1 to try again
        at once (a fresh URL, or starting over). A cut without progress raises NetworkError.
        """
        assert self.info.url is not None
        job_id = self.info.job_id
        offset = self.size
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        chunk_size = self.config.chunk_size
        buf: list[bytes] = []
        buffered = 0
        gained = 0

        async def flush() -> None:
            nonlocal gained, buffered
            if not buf:
                return
            chunks, size = buf[:], buffered
            buf.clear()
            buffered = 0
            await self.sink.write(chunks, size)
            self.size += size
            gained += size
            self.run_state.bytes += size
            self.run_state.emit(
                JobProgress(job_id, DownloadPhase.DOWNLOADING, self.size, self.expected_total)
            )

        try:
            async with self.client().stream("GET", self.info.url, headers=headers) as resp:
                status = resp.status_code
                if status in (400, 401, 403):
                    # S3 answers an expired presigned URL with 403 (or 400): ask for a new one.
                    await self._relocate(refused=True)
                    return -1
                if status == 404:
                    raise SandboxNotAvailableError(
                        f"job {job_id}'s output sandbox is missing from storage (404)",
                        job_id=job_id,
                    )
                if status == 416 and offset:
                    if self.expected_total == offset:
                        return None
                    await self._restart()
                    return -1
                if status == 429 or status >= 500:
                    raise ServiceUnavailableError(
                        f"job {job_id}: sandbox storage answered {status}",
                        status_code=status,
                        job_ids=(job_id,),
                        retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                    )
                if status not in (200, 206):
                    raise SandboxError(
                        f"job {job_id}: sandbox storage answered {status}", job_id=job_id
                    )
                if status == 206:
                    m = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
                    if not m or int(m.group(1)) != offset:
                        # A range we did not ask for: trust nothing, start over.
                        await self._restart()
                        return -1
                    if m.group(3) != "*":
                        self._expect(int(m.group(3)))
                else:
                    if offset:
                        # The server ignored Range: the body is the whole archive again.
                        await self._restart(unexpected=False)
                        offset = 0
                    length = resp.headers.get("Content-Length")
                    if length is not None and length.isdigit():
                        self._expect(int(length))
                async for chunk in resp.aiter_raw():
                    buf.append(chunk)
                    buffered += len(chunk)
                    if self.size + buffered > self.cap:
                        # Whether or not a size was announced: nothing past the cap is read.
                        raise self._too_large(self.cap)
                    if buffered >= chunk_size:
                        await flush()
                await flush()
        except httpx.TransportError as exc:
            if certificate_refused(exc):
                raise untrusted_certificate(exc, f"job {job_id}'s sandbox storage") from exc
            # Bytes received before the cut are good (TCP keeps order): keep them, resume after.
            with anyio.CancelScope(shield=True):
                await flush()
            logger.debug("job %d: transfer cut after %d bytes: %r", job_id, self.size, exc)
            if gained == 0:
                raise NetworkError(
                    f"job {job_id}: the transfer of its output sandbox failed: {reason_of(exc)}",
                    job_ids=(job_id,),
                ) from exc
            return gained
        return None

    def _expect(self, total: int) -> None:
        if total > self.cap:
            raise self._too_large(total, announced=True)
        if self.expected_total is not None and self.expected_total != total:
            raise IntegrityError(
                f"output sandbox of job {self.info.job_id}: the server announces {total} bytes, "
                f"the backend said {self.expected_total}",
                job_id=self.info.job_id,
            )
        self.expected_total = total


async def _retrying(fn: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """``retry_call`` with a fast first attempt: most calls succeed at once, and setting up a
    retry loop for each of thousands of jobs costs more CPU than the call itself."""
    try:
        return await fn()
    except TransientError:
        pass
    # The first failure costs one extra attempt against the policy's budget, never less waiting.
    return await retry_call(fn, policy)
