"""What a download run is configured with and reports: settings, progress, results.

Pure values (and the counters of one run); the engine is in ``_download.py``, the byte
transfer in ``_transfer.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from aiodirac._engine._retry import RetryPolicy
from aiodirac._exceptions import ConfigurationError
from aiodirac.backends._protocol import OutputSandbox

if TYPE_CHECKING:
    # the unpacker (tarfile, zstandard) loads with the downloader, not with its settings
    from ._unpack import UnpackedFile

__all__ = [
    "DownloadConfig",
    "DownloadJournal",
    "DownloadPhase",
    "DownloadProgress",
    "DownloadRecordLike",
    "DownloadResult",
    "JobProgress",
    "SandboxLocator",
]

logger = logging.getLogger("aiodirac.download")


MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True, slots=True)
class DownloadConfig:
    """How the downloader behaves. Every field has a default that suits a campaign.

    Attributes:
        max_concurrency: jobs in flight at once (HTTP connections, files open, unpacks).
        chunk_size: bytes gathered from the network before each hand-off to the worker thread
            that hashes, writes (and unpacks) them; with ``max_concurrency`` it bounds the
            memory used by transfers.
        retry: backoff and deadline for failures that make no progress (see
            :class:`aiodirac._engine._retry.RetryPolicy`); a resumed transfer that gains bytes retries at once.
        max_unpacked_bytes: cap on one sandbox's size, as received and once unpacked (archive
            bomb and endless-body guard); a server that sends more is cut off there, whether or
            not it announced a size.
        max_temporary_bytes: cap on the temporary disk space of all the downloads in flight
            together (``.part`` files and folders being unpacked, helper processes included); a
            transfer that would pass it fails with :class:`aiodirac.TemporarySpaceError`.
            ``None`` (the default): four times ``max_unpacked_bytes`` (16 GiB), so that one
            sandbox as large as allowed always fits.
        max_members: cap on one archive's number of members.
        verify_checksums: check the SHA-256 when the backend gives one.
        fsync: flush archives and unpacked files to stable storage before they are renamed into
            place (survives a machine crash; a killed process never leaves partial content anyway).
        connect_timeout: seconds to open a connection.
        read_timeout: seconds without a byte before a transfer counts as cut (then resumed).
        pool_timeout: seconds to wait for a free connection in the pool.
        verify: TLS verification of sandbox URLs: ``True`` (the default CA store, or the one
            ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` names), a CA bundle file or folder (a grid
            site's ``/etc/grid-security/certificates``), or ``False`` (not recommended).
        processes: helper processes that stream and unpack sandboxes next to this one, started
            when two transfers first run at once. ``None`` (automatic): one per spare CPU core,
            at most 4, started only once this process also keeps 80% of a core busy over 0.3 s
            (fast storage, many sandboxes), never while it waits on a slow service; ``0``:
            everything in this process. Python runs one thread at a time per process, so a
            second process nearly doubles the rate where this one is the limit.

    Usage: ``DownloadConfig(max_concurrency=32, max_unpacked_bytes=1 << 30)``
    """

    max_concurrency: int = 16
    chunk_size: int = 256 * 1024
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(deadline=300.0, initial=0.5, max_backoff=20.0)
    )
    max_unpacked_bytes: int = 4 * GiB
    max_temporary_bytes: int | None = None
    max_members: int = 100_000
    verify_checksums: bool = True
    fsync: bool = False
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    pool_timeout: float = 120.0
    verify: bool | str = True
    processes: int | None = None

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigurationError("DownloadConfig.max_concurrency must be >= 1")
        if self.chunk_size < 4096:
            raise ConfigurationError("DownloadConfig.chunk_size must be >= 4096")
        if self.processes is not None and self.processes < 0:
            raise ConfigurationError("DownloadConfig.processes must be >= 0 (or None: automatic)")
        if not isinstance(self.verify, bool | str) or self.verify == "":
            raise ConfigurationError(
                "DownloadConfig.verify must be True, False or the path of CA certificates"
            )
        if self.max_unpacked_bytes < 0 or self.max_members < 1:
            raise ConfigurationError("DownloadConfig: max_unpacked_bytes >= 0 and max_members >= 1")
        if self.max_temporary_bytes is not None and self.max_temporary_bytes < 0:
            raise ConfigurationError("DownloadConfig.max_temporary_bytes must be >= 0 (or None)")

    @property
    def temporary_cap(self) -> int:
        """The temporary disk space cap in force: ``max_temporary_bytes``, or by default four
        sandboxes of the largest size allowed (16 GiB with the default 4 GiB).

        Usage: ``DownloadConfig(max_unpacked_bytes=1 << 30).temporary_cap``  # 4 GiB
        """
        if self.max_temporary_bytes is not None:
            return self.max_temporary_bytes
        return 4 * self.max_unpacked_bytes


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


class SandboxLocator(Protocol):
    """What the downloader asks of a backend: where a job's output sandbox is. Every
    :class:`aiodirac.Backend` is one.

    Usage: ``Downloader(backend)``
    """

    async def output_sandbox(self, job_id: int) -> OutputSandbox:
        """Where ``job_id``'s output sandbox is (a fresh URL, or a local path)."""
        ...


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


Locate = Callable[[int], Awaitable[OutputSandbox]]
"""Where a job's output sandbox is now (a fresh URL): the downloader's retried locator."""
Fetch = Callable[
    [OutputSandbox, Path, "_Run", "tuple[Path, bool] | None"],
    Awaitable["tuple[int, str, list[UnpackedFile]]"],
]
"""One sandbox streamed into a part file or an extraction: size, sha256 and unpacked files."""
CleanLeftovers = Callable[[Path, int], Awaitable[None]]
"""Remove what a stopped transfer of a job left in a folder."""


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
