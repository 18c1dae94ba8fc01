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
   in a worker thread (:class:`aiodirac._engine.download._unpack.Extraction`): the archive is never stored, and a
   hostile archive stops the transfer at once. With ``unpack=False`` they go to
   ``<dest>/.<id>.<format>.part`` through :mod:`aiodirac._engine.download._files`.
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
from collections.abc import AsyncIterable, Callable, Coroutine, Iterable, Mapping, Sized
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
import httpx

from aiodirac._engine._gate import Limits, RequestGate
from aiodirac._engine.download import _files
from aiodirac._engine.download._model import (
    DownloadConfig,
    DownloadJournal,
    DownloadPhase,
    DownloadProgress,
    DownloadRecordLike,
    DownloadResult,
    JobProgress,
    SandboxLocator,
    _Run,
)
from aiodirac._exceptions import (
    DiracError,
    IntegrityError,
    InvalidArgumentError,
    SandboxError,
    SandboxNotAvailableError,
)
from aiodirac._resource import AsyncResource, ungrouped
from aiodirac.backends._http._tls import ssl_verify
from aiodirac.backends._http._transport import http_client
from aiodirac.backends._protocol import OutputSandbox

from ._space import TemporarySpace
from ._transfer import _ExtractSink, _FileSink, _Transfer
from ._transfer_pool import TransferPool
from ._unpack import UnpackedFile, UnpackLimits, unpack

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

_FORMATS = frozenset({"tar", "tar.gz", "tgz", "tar.bz2", "tar.xz", "tar.zst"})
# Start a transfer over (size or checksum mismatch) at most this many times.
_MAX_RESTARTS = 2


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
        backend: where the sandboxes are located (:meth:`Backend.output_sandbox`): any backend,
            or anything else with that method (:class:`SandboxLocator`).
        config: concurrency, chunking, retries, caps (defaults: :class:`DownloadConfig`).
        journal: records finished downloads and lets a restarted campaign skip them.
        http: the client for sandbox URLs; by default one is created on first use and closed by
            :meth:`aclose`. It must not carry the backend's credentials.
        gate: the request gate the sandbox look-ups pass (the client's, shared with its other
            requests); default: a gate of its own allowing ``config.max_concurrency`` look-ups
            in flight, retried under ``config.retry``.

    Raises:
        ConfigurationError: ``config.verify`` names CA certificates that cannot be read.

    Usage::

        async with Downloader(backend) as downloader:
            results = await downloader.download([12, 13], "out/")
    """

    def __init__(
        self,
        backend: SandboxLocator,
        config: DownloadConfig | None = None,
        *,
        journal: DownloadJournal | None = None,
        http: httpx.AsyncClient | None = None,
        gate: RequestGate | None = None,
    ) -> None:
        self._backend = backend
        self.config = config or DownloadConfig()
        self._gate = (
            gate
            if gate is not None
            else RequestGate(
                Limits(max_in_flight=self.config.max_concurrency, retry=self.config.retry)
            )
        )
        # Read now: a bad CA path is a configuration error before any transfer starts.
        self._verify = ssl_verify(self.config.verify) if http is None else True
        self._journal = journal
        self._space = TemporarySpace(self.config.temporary_cap)
        self._http = http
        self._own_http = http is None
        self._active = 0
        self._done = 0
        self._failed = 0
        self._helper_done = 0  # by helpers of finished runs
        self._pools: list[TransferPool] = []  # of the runs going on

    @property
    def helper_transfers(self) -> int:
        """Transfers done by helper processes so far (see ``DownloadConfig.processes``)."""
        return self._helper_done + sum(pool.helper_transfers for pool in self._pools)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            c = self.config
            n = c.max_concurrency
            # Reads of up to 1 MiB: a quarter to a sixteenth of the CPU per byte received.
            self._http = http_client(
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                verify=self._verify,
                timeout=httpx.Timeout(
                    connect=c.connect_timeout,
                    read=c.read_timeout,
                    write=c.read_timeout,
                    pool=c.pool_timeout,
                ),
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
            f"concurrency {self.config.max_concurrency}, {self.helper_transfers} in helpers]>"
        )

    async def download(
        self,
        ids: Iterable[int] | AsyncIterable[int],
        dest: str | os.PathLike[str],
        *,
        no_job_dir: bool = False,
        unpack: bool = True,
        progress: Callable[[DownloadProgress], object] | None = None,
        on_result: Callable[[DownloadResult], object] | None = None,
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
            on_result: called with each job's :class:`DownloadResult` as soon as it is known
                (a campaign reports each job while the others still download); its errors are
                logged and ignored.

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
                raise InvalidArgumentError(f"job IDs are positive integers, got {bad[0]!r}")

        run = _Run(progress, len(ids) if isinstance(ids, Sized) else None)
        # What an interrupted run left behind, found in one pass, removed job by job.
        leftovers = await anyio.to_thread.run_sync(_find_leftovers, dest_path)
        send, receive = anyio.create_memory_object_stream[int](0)
        # A client given by the caller cannot be shared with helper processes.
        pool = self._transfer_pool(enabled=self._own_http)

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
                            pool,
                        )
                    finally:
                        self._active -= 1
                    results[job_id] = result
                    if result.ok:
                        self._done += 1
                    else:
                        self._failed += 1
                    if on_result is not None:
                        try:
                            on_result(result)
                        except Exception:
                            logger.exception("download result callback failed; downloads go on")

        self._pools.append(pool)
        try:
            with ungrouped():
                async with pool, anyio.create_task_group() as tg:
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
        finally:
            self._pools.remove(pool)
            self._helper_done += pool.helper_transfers
        if bad:
            # Raised outside the task group, so callers see the error itself, not a group.
            raise InvalidArgumentError(f"job IDs are positive integers, got {bad[0]!r}")
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
        pool: TransferPool,
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
                size, sha, streamed = await pool.fetch(info, part, run, extraction, dest)
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

    def _transfer_pool(self, *, enabled: bool = True) -> TransferPool:
        """A pool running this downloader's transfers here or in helper processes."""
        return TransferPool(
            self.config,
            fetch=self._fetch,
            locate=self._locate,
            clean_leftovers=self._clean_leftovers,
            space=self._space,
            enabled=enabled,
        )

    async def _locate(self, job_id: int) -> OutputSandbox:
        return await self._gate.call(lambda: self._backend.output_sandbox(job_id), paced=False)

    async def _clean_leftovers(self, dest: Path, job_id: int) -> None:
        """Remove what a stopped transfer of ``job_id`` left in ``dest`` (hidden names only)."""
        found = await anyio.to_thread.run_sync(_find_leftovers, dest)
        await anyio.to_thread.run_sync(_remove_all, found.get(job_id, ()))

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
        lease = self._space.lease(job_id)
        try:
            return await unpack(
                source,
                final,
                limits=UnpackLimits(max_bytes=c.max_unpacked_bytes, max_members=c.max_members),
                merge=no_job_dir,
                job_id=job_id,
                fsync=c.fsync,
                on_bytes=lease.take,
            )
        finally:
            lease.release()

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
        before_install: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> tuple[int, str, list[UnpackedFile]]:
        """Stream ``info.url`` into ``part`` (or, with ``extraction=(target, merge)``, straight
        into a safe extraction); resume cuts; refresh expired URLs; verify; then install.

        ``before_install`` is awaited (on the event loop) after the extraction is verified and
        before its files become visible."""
        job_id = info.job_id
        restarts = 0
        while True:
            sink: _FileSink | _ExtractSink
            lease = self._space.lease(job_id)
            if extraction is None:
                sink = _FileSink(part, self.config.fsync, lease)
            else:
                c = self.config
                sink = _ExtractSink(
                    extraction[0],
                    UnpackLimits(max_bytes=c.max_unpacked_bytes, max_members=c.max_members),
                    merge=extraction[1],
                    fsync=c.fsync,
                    job_id=job_id,
                    chunk_size=c.chunk_size,
                    lease=lease,
                    before_install=before_install,
                )
            transfer = _Transfer(self._client, self._locate, self.config, info, sink, run)
            try:
                files = await transfer.run()
                return transfer.size, transfer.sink.hasher.hexdigest(), files
            except IntegrityError:
                restarts += 1
                if restarts > _MAX_RESTARTS:
                    raise
                logger.warning("job %d: integrity check failed, downloading again", job_id)
            info = transfer.info
