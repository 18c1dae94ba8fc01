"""The downloader: many output sandboxes at once, streamed to disk, verified, unpacked safely.

:class:`Downloader` fetches the output sandbox of each job it is given with at most
``max_concurrency`` jobs in flight (one pooled HTTP client for every presigned URL, never carrying
the backend's credentials), and reports one :class:`DownloadResult` per job: a job that is not final,
has no sandbox, or sent a hostile archive is a failed *result*, never an exception for all.

For each job:

1. If the journal says the job was downloaded to the same place and that place is still intact
   (the job folder holds as many bytes as recorded; a kept archive has its recorded size; with
   ``no_job_dir``, only that ``dest`` exists, since other jobs share it), it is skipped. Otherwise
   what an interrupted run left for it (``.<id>.*.part``, ``.<id>.unpack-*``, ``.<id>.old-*``,
   found in one scan of ``dest``) is removed and the job is done again.
2. :meth:`Backend.output_sandbox` says where the archive is: a local file (unpacked or copied
   directly, no HTTP) or a URL.
3. A URL is streamed in ``chunk_size`` pieces (the whole archive is never in memory), hashed on
   the way in a worker thread. With ``unpack`` the pieces go straight into a safe extraction running
   in a worker thread (:class:`aiodirac._unpack.Extraction`): the archive is never stored, and a
   hostile archive stops the transfer at once. With ``unpack=False`` they go to
   ``<dest>/.<id>.<format>.part`` through :mod:`aiodirac._files`.
   A cut transfer is resumed with ``Range: bytes=<n>-`` (a ``206`` whose ``Content-Range`` starts
   at ``n`` continues the stream; a ``200`` means the server ignored the range, and the transfer and
   extraction start over). A resume that brought new bytes is retried at once; failures without
   progress back off by the retry policy. A ``400``/``401``/``403`` (an expired presigned URL) asks
   the backend for a fresh URL, as does a URL older than 90% of its ``expires_in``.
4. The size and SHA-256 are checked against what the backend said (and against ``Content-Length``
   / ``Content-Range``) before anything is made visible; a mismatch starts over (twice), then fails
   as ``IntegrityError``.
5. The unpacked folder, built hidden beside its target, is renamed to ``<dest>/<id>/`` (an existing
   folder is replaced as a whole) or, with ``no_job_dir``, its entries are moved into ``<dest>``;
   with ``unpack=False`` the archive is renamed to ``<dest>/<id>/<id>.<format>``
   (``<dest>/<id>.<format>`` with ``no_job_dir``). Nothing is visible under a final name before it
   is complete.
6. The journal records the job (``record_download``) only then.

DIRAC's ``getOutputSandbox`` refuses a ``<dest>/<id>`` that exists; that refusal belongs to the
synchronous facade. The engine replaces such a folder unless the journal says it is complete.

Usage::

    async with Downloader(backend, journal=journal) as downloader:
        results = await downloader.download(ids, "out/")
        failed = [r for r in results if not r.ok]
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sized
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar, cast

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import _files
from ._backend import Backend, OutputSandbox
from ._exceptions import (
    DiracError,
    IntegrityError,
    NetworkError,
    SandboxError,
    SandboxNotAvailableError,
    ServiceUnavailableError,
    TransientError,
    UnsafeArchiveError,
)
from ._resource import AsyncResource
from ._retry import RetryPolicy, retry_call
from ._unpack import Extraction, UnpackedFile, UnpackLimits, unpack

__all__ = [
    "DownloadConfig",
    "DownloadJournal",
    "DownloadPhase",
    "DownloadProgress",
    "DownloadResult",
    "Downloader",
    "JobProgress",
    "UnpackedFile",
]

logger = logging.getLogger("aiodirac.download")

T = TypeVar("T")

MiB = 1 << 20
GiB = 1 << 30

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_FORMATS = frozenset({"tar", "tar.gz", "tgz", "tar.bz2", "tar.xz", "tar.zst"})
# Give up on an expired-URL loop after this many fresh URLs in a row without a new byte.
_MAX_RELOCATIONS = 3
# Start a transfer over (size or checksum mismatch) at most this many times.
_MAX_RESTARTS = 2


@dataclass(frozen=True, slots=True)
class DownloadConfig:
    """How the downloader behaves. Every field has a default that suits a campaign.

    Attributes:
        max_concurrency: jobs in flight at once (HTTP connections, files open, unpacks).
        chunk_size: bytes gathered from the network before each write to disk; with
            ``max_concurrency`` it bounds the memory used by transfers.
        retry: backoff and deadline for failures that make no progress (see
            :class:`aiodirac._retry.RetryPolicy`); a resumed transfer that gains bytes retries at once.
        max_unpacked_bytes: cap on one archive's unpacked size (archive bomb guard).
        max_members: cap on one archive's number of members.
        verify_checksums: check the SHA-256 when the backend gives one.
        fsync: flush archives and unpacked files to stable storage before they are renamed into
            place (survives a machine crash; a killed process never leaves partial content anyway).
        connect_timeout: seconds to open a connection.
        read_timeout: seconds without a byte before a transfer counts as cut (then resumed).
        pool_timeout: seconds to wait for a free connection in the pool.

    Usage: ``DownloadConfig(max_concurrency=32, max_unpacked_bytes=1 << 30)``
    """

    max_concurrency: int = 16
    chunk_size: int = 256 * 1024
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(deadline=300.0, initial=0.5, max_backoff=20.0)
    )
    max_unpacked_bytes: int = 4 * GiB
    max_members: int = 100_000
    verify_checksums: bool = True
    fsync: bool = False
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    pool_timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError("DownloadConfig.max_concurrency must be >= 1")
        if self.chunk_size < 4096:
            raise ValueError("DownloadConfig.chunk_size must be >= 4096")
        if self.max_unpacked_bytes < 0 or self.max_members < 1:
            raise ValueError("DownloadConfig: max_unpacked_bytes >= 0 and max_members >= 1")


class DownloadPhase(StrEnum):
    """Where one job's download stands.

    Sandboxes fetched over HTTP are unpacked *while* they download; ``UNPACKING`` then means
    that every byte has arrived and the extraction is finishing.

    Usage: ``if p.job.phase is DownloadPhase.DONE: ...``
    """

    LOCATING = "locating"
    DOWNLOADING = "downloading"
    UNPACKING = "unpacking"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobProgress:
    """One job's progress at one moment.

    Attributes:
        job_id: the job.
        phase: what it is doing.
        bytes_done: archive bytes on disk so far.
        bytes_total: archive size when known.

    Usage: ``f"{p.job_id}: {p.bytes_done}/{p.bytes_total}"``
    """

    job_id: int
    phase: DownloadPhase
    bytes_done: int = 0
    bytes_total: int | None = None


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """A snapshot handed to the ``progress`` callback: one job's change, and the totals.

    Attributes:
        job: the job whose progress changed.
        jobs_total: jobs to download, when known (``None`` while an async source still yields).
        jobs_done: jobs finished (downloaded or skipped).
        jobs_failed: jobs that failed.
        jobs_skipped: jobs the journal said were already complete (counted in ``jobs_done``).
        bytes_done: archive bytes transferred in this run.
        files_done: files unpacked in this run (archives kept count as one).
        elapsed: seconds since the download started.

    Usage: ``progress=lambda p: bar.update(completed=p.bytes_done)``
    """

    job: JobProgress
    jobs_total: int | None
    jobs_done: int
    jobs_failed: int
    jobs_skipped: int
    bytes_done: int
    files_done: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Average bytes per second since the start."""
        return self.bytes_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def files_per_second(self) -> float:
        """Average files per second since the start."""
        return self.files_done / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """The outcome for one job.

    Attributes:
        job_id: the job.
        ok: the sandbox is in place (downloaded now, or skipped as already complete).
        path: the job folder (or ``dest`` with ``no_job_dir``), or the kept archive with
            ``unpack=False``; ``None`` when not ok.
        files: the files unpacked, with sizes (empty when the archive was kept).
        bytes: archive bytes transferred in this run (0 when skipped or local).
        sha256: the archive's SHA-256 (hex), when known.
        skipped: the journal said this job was already complete and its files were intact.
        error: why it failed, in words that say what to do; ``None`` when ok.
        exception: the error itself (:class:`aiodirac.SandboxNotAvailableError`,
            :class:`aiodirac.UnsafeArchiveError`, :class:`aiodirac.IntegrityError`, ...).

    Usage: ``[r.error for r in results if not r.ok]``
    """

    job_id: int
    ok: bool
    path: Path | None = None
    files: tuple[UnpackedFile, ...] = ()
    bytes: int = 0
    sha256: str | None = None
    skipped: bool = False
    error: str | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def unpacked_bytes(self) -> int:
        """Total size of the unpacked files (DIRAC's ``getOutputSandbox`` value)."""
        return sum(f.size for f in self.files)


class DownloadRecordLike(Protocol):
    """What the downloader reads from a journal's download records.

    Usage: ``record = (await journal.downloads())[job_id]; record.path, record.size``
    """

    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def sha256(self) -> str: ...


class DownloadJournal(Protocol):
    """The part of the campaign journal the downloader uses.

    Usage: ``Downloader(backend, journal=campaign_journal)``
    """

    async def record_download(self, job_id: int, path: str, size: int, sha256: str) -> None:
        """Remember that ``job_id``'s sandbox is complete at ``path`` (``size`` bytes)."""
        ...

    async def downloads(self) -> Mapping[int, DownloadRecordLike]:
        """Every download recorded so far, by job ID."""
        ...


class _Run:
    """The shared counters of one :meth:`Downloader.download` call."""

    def __init__(
        self, progress: Callable[[DownloadProgress], object] | None, total: int | None
    ) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.bytes = 0
        self.files = 0
        self.start = time.monotonic()

    def emit(self, job: JobProgress) -> None:
        if self.progress is None:
            return
        snapshot = DownloadProgress(
            job=job,
            jobs_total=self.total,
            jobs_done=self.done,
            jobs_failed=self.failed,
            jobs_skipped=self.skipped,
            bytes_done=self.bytes,
            files_done=self.files,
            elapsed=time.monotonic() - self.start,
        )
        try:
            self.progress(snapshot)
        except Exception:
            # A broken progress display must never stop downloads.
            logger.exception("progress callback failed; downloads continue")


async def _aiter_ids(ids: Iterable[int] | AsyncIterable[int]) -> AsyncIterable[int]:
    if isinstance(ids, AsyncIterable):
        async for job_id in ids:
            yield job_id
    else:
        for job_id in ids:
            yield job_id


_LEFTOVER = re.compile(r"\.(\d+)\.(?:.+\.part|unpack-[0-9a-f]+|old-[0-9a-f]+)")


def _find_leftovers(dest: Path) -> dict[int, list[Path]]:
    found: dict[int, list[Path]] = {}
    with os.scandir(dest) as entries:
        for entry in entries:
            m = _LEFTOVER.fullmatch(entry.name)
            if m:
                found.setdefault(int(m.group(1)), []).append(Path(entry.path))
    return found


def _remove_all(paths: Iterable[Path]) -> None:
    for path in paths:
        _files._remove_sync(path)


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            st = os.lstat(os.path.join(root, name))
            if not os.path.islink(os.path.join(root, name)):
                total += st.st_size
    return total


def _list_tree(path: Path) -> tuple[UnpackedFile, ...]:
    found: list[UnpackedFile] = []
    for root, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            if os.path.islink(full):
                continue
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            found.append(UnpackedFile(rel, os.lstat(full).st_size))
    return tuple(sorted(found, key=lambda f: f.name))


def _sha256_file(path: str) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


class Downloader(AsyncResource):
    """Downloads output sandboxes of many jobs in parallel into per-job folders.

    Args:
        backend: where the sandboxes are located (:meth:`Backend.output_sandbox`).
        config: concurrency, chunking, retries, caps (defaults: :class:`DownloadConfig`).
        journal: records finished downloads and lets a restarted campaign skip them.
        http: the client for sandbox URLs; by default one is created on first use and closed by
            :meth:`aclose`. It must not carry the backend's credentials.

    Usage::

        async with Downloader(backend) as downloader:
            results = await downloader.download([12, 13], "out/")
    """

    def __init__(
        self,
        backend: Backend,
        config: DownloadConfig | None = None,
        *,
        journal: DownloadJournal | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._backend = backend
        self.config = config or DownloadConfig()
        self._journal = journal
        self._http = http
        self._own_http = http is None
        self._active = 0
        self._done = 0
        self._failed = 0

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            c = self.config
            n = c.max_concurrency
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(
                    connect=c.connect_timeout,
                    read=c.read_timeout,
                    write=c.read_timeout,
                    pool=c.pool_timeout,
                ),
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                # Presigned URLs may redirect to another endpoint; they carry no credentials.
                follow_redirects=True,
                # Ranges count archive bytes, so ask for them unencoded.
                headers={"Accept-Encoding": "identity"},
            )
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP client if this downloader created it. Idempotent.

        Usage: ``await downloader.aclose()``
        """
        if self._own_http and self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    def __repr__(self) -> str:
        return (
            f"<Downloader [{self._active} active, {self._done} done, {self._failed} failed, "
            f"concurrency {self.config.max_concurrency}]>"
        )

    async def download(
        self,
        ids: Iterable[int] | AsyncIterable[int],
        dest: str | os.PathLike[str],
        *,
        no_job_dir: bool = False,
        unpack: bool = True,
        progress: Callable[[DownloadProgress], object] | None = None,
    ) -> list[DownloadResult]:
        """Download the output sandbox of every job in ``ids`` into ``dest``.

        Jobs start as soon as their ID arrives: ``ids`` may be an async iterable fed while other
        jobs still run (e.g. from the tracker's ``Done`` events). A repeated ID is done once.

        Args:
            ids: job IDs, in any order.
            dest: the folder receiving ``<id>/`` folders (created if missing).
            no_job_dir: unpack straight into ``dest`` (DIRAC's ``noJobDir``).
            unpack: unpack the archives (``False``: keep ``<id>.<format>``).
            progress: called with a :class:`DownloadProgress` on every phase change and chunk
                written; its errors are logged and ignored.

        Returns:
            One :class:`DownloadResult` per distinct job, in the order the IDs came.

        Raises:
            ValueError: an ID that is not a positive integer (from a plain iterable: before
                anything is fetched; from an async one: the jobs before it are completed first).
            OSError: ``dest`` cannot be created.

        Usage: ``results = await downloader.download(ids, "out/", progress=show)``
        """
        dest_path = Path(dest)
        await anyio.Path(dest_path).mkdir(parents=True, exist_ok=True)
        records: Mapping[int, DownloadRecordLike] = (
            await self._journal.downloads() if self._journal is not None else {}
        )
        results: dict[int, DownloadResult] = {}
        order: list[int] = []
        bad: list[object] = []
        if not isinstance(ids, AsyncIterable):
            ids = list(ids)
            bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int) or i <= 0]
            if bad:
                raise ValueError(f"job IDs are positive integers, got {bad[0]!r}")

        run = _Run(progress, len(ids) if isinstance(ids, Sized) else None)
        # What an interrupted run left behind, found in one pass, removed job by job.
        leftovers = await anyio.to_thread.run_sync(_find_leftovers, dest_path)
        send, receive = anyio.create_memory_object_stream[int](0)

        async def worker(inbox: anyio.abc.ObjectReceiveStream[int]) -> None:
            async with inbox:
                async for job_id in inbox:
                    self._active += 1
                    try:
                        result = await self._one(
                            job_id,
                            dest_path,
                            records.get(job_id),
                            run,
                            no_job_dir,
                            unpack,
                            leftovers,
                        )
                    finally:
                        self._active -= 1
                    results[job_id] = result
                    if result.ok:
                        self._done += 1
                    else:
                        self._failed += 1

        async with anyio.create_task_group() as tg:
            async with receive:
                for _ in range(self.config.max_concurrency):
                    tg.start_soon(worker, receive.clone())
            async with send:
                seen: set[int] = set()
                async for raw in _aiter_ids(ids):
                    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                        bad.append(raw)
                        break
                    if raw in seen:
                        continue
                    seen.add(raw)
                    order.append(raw)
                    await send.send(raw)
            if run.total is None:
                run.total = len(order)
        if bad:
            # Raised outside the task group, so callers see a plain ValueError.
            raise ValueError(f"job IDs are positive integers, got {bad[0]!r}")
        return [results[job_id] for job_id in order]

    # ------------------------------------------------------------------ one job

    def _targets(
        self, job_id: int, dest: Path, fmt: str, no_job_dir: bool, unpack: bool
    ) -> tuple[Path, Path]:
        """(job folder or dest, final path) for this job."""
        folder = dest if no_job_dir else dest / str(job_id)
        return folder, (folder / f"{job_id}.{fmt}" if not unpack else folder)

    async def _one(
        self,
        job_id: int,
        dest: Path,
        record: DownloadRecordLike | None,
        run: _Run,
        no_job_dir: bool,
        unpack: bool,
        leftovers: dict[int, list[Path]],
    ) -> DownloadResult:
        phase = DownloadPhase.LOCATING
        ours: Path | None = None
        try:
            if record is not None:
                fmt = Path(record.path).name.partition(".")[2] or "tar"
                folder, final = self._targets(job_id, dest, fmt, no_job_dir, unpack)
                # no_job_dir shares dest with other jobs: its byte count cannot be checked.
                expected_ok = await self._intact_for(record, final, unpack, no_job_dir)
                if expected_ok:
                    listed = () if not unpack or no_job_dir else await self._listing(final)
                    run.done += 1
                    run.skipped += 1
                    run.emit(JobProgress(job_id, DownloadPhase.SKIPPED, record.size, record.size))
                    return DownloadResult(
                        job_id, True, final, listed, 0, record.sha256 or None, skipped=True
                    )
            stale = leftovers.pop(job_id, ())
            if stale:
                await anyio.to_thread.run_sync(_remove_all, stale)
            run.emit(JobProgress(job_id, phase))
            info = await self._locate(job_id)
            # The format only names files: the content decides how it is read.
            fmt = info.format if info.format in _FORMATS else "tar"
            folder, final = self._targets(job_id, dest, fmt, no_job_dir, unpack)
            part = dest / f".{job_id}.{fmt}.part"
            ours = part
            phase = DownloadPhase.DOWNLOADING
            transferred = 0
            files: tuple[UnpackedFile, ...] = ()
            if info.url is not None and info.path is None:
                extraction = (final, no_job_dir) if unpack else None
                size, sha, streamed = await self._fetch(info, part, run, extraction)
                transferred = size
                if unpack:
                    files = tuple(streamed)
                    recorded_size = sum(f.size for f in files)
                    run.files += len(files)
                else:
                    await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
                    await _files.commit(part, final, fsync=self.config.fsync)
                    recorded_size = size
                    run.files += 1
            elif info.path is not None:
                source, size, sha = await self._local(info, part, unpack, run)
                try:
                    if unpack:
                        phase = DownloadPhase.UNPACKING
                        run.emit(JobProgress(job_id, phase, size, size))
                        files = tuple(await self._unpack(source, final, no_job_dir, job_id))
                        recorded_size = sum(f.size for f in files)
                        run.files += len(files)
                    else:
                        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
                        await _files.commit(source, final, fsync=self.config.fsync)
                        recorded_size = size
                        run.files += 1
                finally:
                    await _files.remove(part)
            else:
                raise SandboxNotAvailableError(
                    f"the backend gave no location for job {job_id}'s output sandbox",
                    job_id=job_id,
                )
            if self._journal is not None:
                with anyio.CancelScope(shield=True):
                    await self._journal.record_download(job_id, str(final), recorded_size, sha)
            run.done += 1
            run.emit(JobProgress(job_id, DownloadPhase.DONE, size, size))
            return DownloadResult(job_id, True, final, files, transferred, sha)
        except (DiracError, OSError) as exc:
            err: BaseException = exc
            if isinstance(exc, OSError):
                err = SandboxError(
                    f"job {job_id}: cannot write its output sandbox under {dest}: {exc}",
                    job_id=job_id,
                )
                err.__cause__ = exc
            elif isinstance(exc, SandboxError) and exc.job_id is None:
                exc.job_id = job_id
            run.failed += 1
            run.emit(JobProgress(job_id, DownloadPhase.FAILED))
            logger.info("job %d: output sandbox %s failed: %s", job_id, phase.value, err)
            if ours is not None:
                await _files.remove(ours)  # nothing of ours may stay behind
            text = str(err)
            message = text if f"job {job_id}" in text else f"job {job_id}: {text}"
            return DownloadResult(job_id, False, error=message, exception=err)
        except BaseException:
            # Cancelled (or a bug): leave no temporary behind; final names are never partial.
            if ours is not None:
                await _files.remove(ours)  # shielded inside
            raise

    async def _locate(self, job_id: int) -> OutputSandbox:
        async def once() -> OutputSandbox:
            return await self._backend.output_sandbox(job_id)

        return await _retrying(once, self.config.retry)

    async def _intact_for(
        self, record: DownloadRecordLike, final: Path, unpack: bool, no_job_dir: bool
    ) -> bool:
        path = anyio.Path(record.path)
        if Path(record.path) != final:
            return False
        if not unpack:
            return await path.is_file() and (await path.stat()).st_size == record.size
        if not await path.is_dir():
            return False
        if no_job_dir:
            return True
        total = await anyio.to_thread.run_sync(_tree_bytes, Path(record.path))
        return total == record.size

    async def _listing(self, folder: Path) -> tuple[UnpackedFile, ...]:
        return await anyio.to_thread.run_sync(_list_tree, folder)

    async def _unpack(
        self, source: Path, final: Path, no_job_dir: bool, job_id: int
    ) -> list[UnpackedFile]:
        c = self.config
        return await unpack(
            source,
            final,
            limits=UnpackLimits(max_bytes=c.max_unpacked_bytes, max_members=c.max_members),
            merge=no_job_dir,
            job_id=job_id,
            fsync=c.fsync,
        )

    def _check(self, info: OutputSandbox, size: int, sha: str) -> None:
        if info.size is not None and size != info.size:
            raise IntegrityError(
                f"output sandbox of job {info.job_id} has {size} bytes, the backend said "
                f"{info.size}",
                job_id=info.job_id,
            )
        if self.config.verify_checksums and info.sha256 and sha != info.sha256.lower():
            raise IntegrityError(
                f"output sandbox of job {info.job_id} has SHA-256 {sha}, the backend said "
                f"{info.sha256}",
                job_id=info.job_id,
            )

    async def _local(
        self, info: OutputSandbox, part: Path, unpack: bool, run: _Run
    ) -> tuple[Path, int, str]:
        """A local archive: checked, then unpacked in place, or copied to ``part``."""
        assert info.path is not None
        src = Path(info.path)
        if unpack:
            try:
                size, sha = await anyio.to_thread.run_sync(_sha256_file, info.path)
            except FileNotFoundError as exc:
                raise SandboxNotAvailableError(
                    f"job {info.job_id}'s output sandbox {info.path} is missing", job_id=info.job_id
                ) from exc
            self._check(info, size, sha)
            return src, size, sha
        h = hashlib.sha256()
        async with await _files.open_writer(part) as out:
            async for chunk in _files.iter_file(src, self.config.chunk_size):
                h.update(chunk)
                await out.write(chunk)
            if self.config.fsync:
                await out.sync()
        size, sha = out.size, h.hexdigest()
        self._check(info, size, sha)
        return part, size, sha

    async def _fetch(
        self,
        info: OutputSandbox,
        part: Path,
        run: _Run,
        extraction: tuple[Path, bool] | None,
    ) -> tuple[int, str, list[UnpackedFile]]:
        """Stream ``info.url`` into ``part`` (or, with ``extraction=(target, merge)``, straight
        into a safe extraction); resume cuts; refresh expired URLs; verify; then install."""
        job_id = info.job_id
        restarts = 0
        while True:
            sink: _FileSink | _ExtractSink
            if extraction is None:
                sink = _FileSink(part, self.config.fsync)
            else:
                c = self.config
                sink = _ExtractSink(
                    extraction[0],
                    UnpackLimits(max_bytes=c.max_unpacked_bytes, max_members=c.max_members),
                    merge=extraction[1],
                    fsync=c.fsync,
                    job_id=job_id,
                )
            transfer = _Transfer(self, info, sink, run)
            try:
                files = await transfer.run()
                return transfer.size, transfer.sink.hasher.hexdigest(), files
            except IntegrityError:
                restarts += 1
                if restarts > _MAX_RESTARTS:
                    raise
                logger.warning("job %d: integrity check failed, downloading again", job_id)
            info = transfer.info


class _FileSink:
    """Archive bytes to a ``.part`` file (kept archives)."""

    def __init__(self, part: Path, fsync: bool) -> None:
        self.part = part
        self.fsync = fsync
        self.out: _files.AsyncWriter | None = None
        self.hasher = hashlib.sha256()

    async def open(self, tg: anyio.abc.TaskGroup) -> None:
        self.hasher = hashlib.sha256()
        self.out = await _files.open_writer(self.part)

    async def write(self, data: bytes) -> None:
        assert self.out is not None
        # hashlib releases the GIL on large buffers: hashing in a thread overlaps the network.
        await anyio.to_thread.run_sync(self.hasher.update, data)
        await self.out.write(data)

    async def restart(self, tg: anyio.abc.TaskGroup) -> None:
        await self.abort()
        await self.open(tg)

    async def finish(self) -> list[UnpackedFile]:
        assert self.out is not None
        if self.fsync:
            await self.out.sync()
        await self.out.aclose()
        return []

    async def install(self) -> None:
        """The caller renames the part file into place."""

    async def abort(self) -> None:
        if self.out is not None:
            await self.out.aclose()
        await _files.remove(self.part)


class _ExtractSink:
    """Archive bytes fed to a safe extraction running in a worker thread, as they arrive.

    Nothing is written twice: the archive is never stored, its members go to a hidden folder,
    which becomes visible only after the checksum is verified (:meth:`install`). A resumed
    transfer simply continues the stream; a restart from byte 0 starts a new extraction.
    """

    def __init__(
        self, target: Path, limits: UnpackLimits, *, merge: bool, fsync: bool, job_id: int
    ) -> None:
        self.target = target
        self.limits = limits
        self.merge = merge
        self.fsync = fsync
        self.job_id = job_id
        self.extraction: Extraction | None = None
        self.send: MemoryObjectSendStream[bytes] | None = None
        self.finished = anyio.Event()
        self.files: list[UnpackedFile] = []
        self.error: BaseException | None = None
        self.hasher = hashlib.sha256()

    async def open(self, tg: anyio.abc.TaskGroup) -> None:
        target, limits, merge, fsync = self.target, self.limits, self.merge, self.fsync
        self.extraction = await anyio.to_thread.run_sync(
            lambda: Extraction(
                target, limits=limits, merge=merge, fsync=fsync, tag=str(self.job_id)
            )
        )
        # Up to 8 chunks queued (2 MiB by default): the extraction thread takes them in batches.
        send, receive = anyio.create_memory_object_stream[bytes](8)
        self.send = send
        self.finished = anyio.Event()
        self.error = None
        self.hasher = hashlib.sha256()
        tg.start_soon(self._run, self.extraction, receive)

    async def _run(self, extraction: Extraction, receive: MemoryObjectReceiveStream[bytes]) -> None:
        # The extraction thread hashes what it reads, off the event loop.
        reader = _ChunkReader(receive, self.hasher)
        name = f"the output sandbox of job {self.job_id}"
        try:
            with receive:
                stream = cast("IO[bytes]", reader)
                self.files = await anyio.to_thread.run_sync(extraction.run, stream, name)
        except Exception as exc:  # noqa: BLE001 - reported by write() or finish()
            # Never raised into the task group: the transfer reports it as the job's error.
            self.error = exc
        finally:
            self.finished.set()

    async def write(self, data: bytes) -> None:
        assert self.send is not None
        try:
            await self.send.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self.finished.wait()
            raise self._failure() from None

    def _failure(self) -> BaseException:
        if (
            isinstance(self.error, UnsafeArchiveError | IntegrityError)
            and self.error.job_id is None
        ):
            self.error.job_id = self.job_id
        return self.error or IntegrityError(
            f"job {self.job_id}: the extraction stopped early", job_id=self.job_id
        )

    async def _stop(self) -> None:
        if self.send is not None:
            self.send.close()
        with anyio.CancelScope(shield=True):
            await self.finished.wait()

    async def restart(self, tg: anyio.abc.TaskGroup) -> None:
        await self.abort()
        await self.open(tg)

    async def finish(self) -> list[UnpackedFile]:
        await self._stop()
        if self.error is not None:
            raise self._failure()
        return self.files

    async def install(self) -> None:
        assert self.extraction is not None
        extraction, self.extraction = self.extraction, None
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(extraction.install)
            except BaseException:
                await anyio.to_thread.run_sync(extraction.discard)
                raise

    async def abort(self) -> None:
        await self._stop()
        if self.extraction is not None:
            extraction, self.extraction = self.extraction, None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(extraction.discard)


class _ChunkReader:
    """A blocking ``read()`` over an anyio stream of chunks, for the extraction thread."""

    def __init__(self, receive: MemoryObjectReceiveStream[bytes], hasher: Any) -> None:
        self._receive = receive
        self._hasher = hasher
        self._buf = memoryview(b"")
        self._pending: list[bytes] = []
        self._eof = False

    async def _take(self) -> list[bytes]:
        # Everything queued at once: a hand-off between threads costs more than the data.
        chunks = [await self._receive.receive()]
        while True:
            try:
                chunks.append(self._receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                return chunks

    def _fill(self) -> bool:
        if not self._buf and not self._pending and not self._eof:
            try:
                self._pending = anyio.from_thread.run(self._take)
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._eof = True
        if not self._buf and self._pending:
            chunk = self._pending.pop(0)
            self._hasher.update(chunk)
            self._buf = memoryview(chunk)
        return bool(self._buf)

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            parts = []
            while self._fill():
                parts.append(self._buf.tobytes())
                self._buf = memoryview(b"")
            return b"".join(parts)
        if not self._fill():
            return b""
        data = self._buf[:n].tobytes()
        self._buf = self._buf[n:]
        return data


class _Transfer:
    """One transfer of one archive into its sink, resumed across cuts."""

    def __init__(
        self, owner: Downloader, info: OutputSandbox, sink: _FileSink | _ExtractSink, run: _Run
    ) -> None:
        self.owner = owner
        self.info = info
        self.sink = sink
        self.run_state = run
        self.size = 0
        self.expected_total: int | None = info.size
        self.url_time = time.monotonic()
        self.relocations = 0
        self.restarts = 0
        self.high_water = 0
        self.tg: anyio.abc.TaskGroup | None = None

    async def run(self) -> list[UnpackedFile]:
        """Transfer, verify, install; the unpacked files (empty for a kept archive)."""
        error: Exception | None = None
        files: list[UnpackedFile] = []
        async with anyio.create_task_group() as tg:
            self.tg = tg
            try:
                await self.sink.open(tg)
                await _retrying(self._attempt, self.owner.config.retry)
                if isinstance(self.sink, _ExtractSink):
                    self.run_state.emit(
                        JobProgress(self.info.job_id, DownloadPhase.UNPACKING, self.size, self.size)
                    )
                files = await self.sink.finish()
                self._verify()
                await self.sink.install()
            except Exception as exc:  # noqa: BLE001 - re-raised below, unchanged
                # Kept out of the task group so that callers see the error itself.
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
        if (
            self.owner.config.verify_checksums
            and self.info.sha256
            and sha != self.info.sha256.lower()
        ):
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
        fresh = await self.owner._locate(self.info.job_id)
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
        chunk_size = self.owner.config.chunk_size
        buf: list[bytes] = []
        buffered = 0
        gained = 0

        async def flush() -> None:
            nonlocal gained, buffered
            if not buf:
                return
            data = b"".join(buf)
            buf.clear()
            buffered = 0
            await self.sink.write(data)
            self.size += len(data)
            gained += len(data)
            self.run_state.bytes += len(data)
            self.run_state.emit(
                JobProgress(job_id, DownloadPhase.DOWNLOADING, self.size, self.expected_total)
            )

        try:
            async with self.owner._client().stream("GET", self.info.url, headers=headers) as resp:
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
                        retry_after=_retry_after(resp.headers.get("Retry-After")),
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
                    if buffered >= chunk_size:
                        await flush()
                await flush()
        except httpx.TransportError as exc:
            # Bytes received before the cut are good (TCP keeps order): keep them, resume after.
            with anyio.CancelScope(shield=True):
                await flush()
            logger.debug("job %d: transfer cut after %d bytes: %r", job_id, self.size, exc)
            if gained == 0:
                raise NetworkError(
                    f"job {job_id}: the transfer of its output sandbox failed: {exc}",
                    job_ids=(job_id,),
                ) from exc
            return gained
        return None

    def _expect(self, total: int) -> None:
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


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
