"""The temporary disk space of the downloads in flight, against one cap.

A download writes under temporary names until it is complete: the ``.part`` file of a kept
archive, or the hidden folder an archive is unpacked into. Each is capped on its own
(``DownloadConfig.max_unpacked_bytes``); :class:`TemporarySpace` caps their sum
(``DownloadConfig.max_temporary_bytes``), so that many large sandboxes at once cannot fill a disk.
Each transfer holds a :class:`SpaceLease`: it takes bytes as they are written (from any thread)
and gives them all back when its files are installed under their final names or removed.

Usage::

    space = TemporarySpace(16 << 30)
    lease = space.lease(job_id=12)
    lease.take(len(chunk))   # raises TemporarySpaceError past the cap
    lease.release()
"""

from __future__ import annotations

import threading

from aiodirac._exceptions import TemporarySpaceError

__all__ = ["SpaceLease", "TemporarySpace"]


class TemporarySpace:
    """Bytes held under temporary names by every transfer of one downloader (thread-safe).

    Usage: ``TemporarySpace(cap).lease(job_id).take(n)``
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.used = 0
        self.peak = 0
        self._lock = threading.Lock()

    def take(self, n: int, job_id: int | None = None) -> None:
        """Count ``n`` more bytes, or raise :class:`TemporarySpaceError` if the cap is passed."""
        with self._lock:
            if self.used + n > self.cap:
                used = self.used
            else:
                self.used += n
                self.peak = max(self.peak, self.used)
                return
        where = f"job {job_id}: " if job_id is not None else ""
        raise TemporarySpaceError(
            f"{where}the downloads in flight already hold {used} bytes of temporary disk space "
            f"and the cap is {self.cap} (DownloadConfig.max_temporary_bytes): download fewer "
            "jobs at once (max_concurrency) or raise the cap",
            job_id=job_id,
        )

    def give(self, n: int) -> None:
        """Give back ``n`` bytes."""
        with self._lock:
            self.used -= n

    def lease(self, job_id: int) -> SpaceLease:
        """A new lease for one transfer of ``job_id``."""
        return SpaceLease(self, job_id)


class SpaceLease:
    """What one transfer holds of a :class:`TemporarySpace`; released as a whole.

    Usage: ``lease.take(n)``; ``lease.release()``
    """

    def __init__(self, space: TemporarySpace, job_id: int) -> None:
        self.space = space
        self.job_id = job_id
        self.held = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        """Count ``n`` bytes written under a temporary name (any thread)."""
        self.space.take(n, self.job_id)
        with self._lock:
            self.held += n

    def release(self) -> None:
        """Give everything back (the files were installed or removed). Idempotent."""
        with self._lock:
            held, self.held = self.held, 0
        if held:
            self.space.give(held)
