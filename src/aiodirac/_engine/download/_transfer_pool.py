"""Transfer processes: output sandboxes streamed and unpacked in helper processes, in parallel.

One Python process runs one thing at a time (the GIL): its event loop parses HTTP and its worker
threads hash, decompress and write, and on a campaign of many small sandboxes they take turns
instead of working side by side. A :class:`TransferPool` starts ``DownloadConfig.processes`` helper
processes (:mod:`aiodirac._engine.download._transfer_worker`) the first time two transfers run at once (with the
automatic setting, ``None``: once this process also keeps most of a core busy), and hands each
new transfer to whichever of this process and the ready helpers has the fewest in
flight. A helper does exactly what this process would (:meth:`Downloader._fetch`: stream, resume,
verify, extract into a hidden folder, install), with its own pooled HTTP client and no credentials:
it is given the presigned URL, and asks this process for a fresh one when it expires.

Messages are pickled frames (a 4-byte length, then the pickle) over the helper's stdin and
stdout, between this process and its own child only. A helper dies with this process
(``PR_SET_PDEATHSIG`` on Linux, end of stdin elsewhere); if a helper dies first, its transfers are
cleaned up and done again in this process. Nothing changes for the caller: results, errors,
progress events and the on-disk guarantees are the same as in one process.

Usage (inside :meth:`Downloader.download`)::

    async with downloader._transfer_pool() as pool:
        size, sha, files = await pool.fetch(info, part, run, extraction, dest)
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from aiodirac._exceptions import SandboxError, TemporarySpaceError
from aiodirac._resource import TaskGroupResource
from aiodirac.backends._protocol import OutputSandbox

from ._model import CleanLeftovers, DownloadConfig, Fetch, Locate, _Run
from ._space import TemporarySpace
from ._unpack import UnpackedFile

__all__ = ["TransferPool", "default_processes", "encode_frame", "read_frame"]

logger = logging.getLogger("aiodirac.download")

_HEADER = struct.Struct(">I")
# A helper that does not answer a cancellation within this many seconds is killed.
_CANCEL_GRACE = 30.0
# How long a helper may take to start (import aiodirac) before it is given up on.
_START_TIMEOUT = 60.0
# The helper imports this very aiodirac, wherever it was imported from.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])  # the folder holding aiodirac/
# Automatic setting: helpers start once this process used this share of a core over a window. Long enough that start-up and bursts do not count: a client waiting on DiracX's
# one-process server reaches 0.6-0.75 over 0.1 s now and then, but 0.2-0.6 over 0.3 s
# (measured), and a helper there only takes CPU from the server.
_BUSY_SHARE = 0.8
_BUSY_WINDOW = 0.3
# The helper's command. Two imports it never uses are skipped: httpx's command-line client
# (click, rich, pygments; httpx allows it missing) and trio, which httpcore imports when it is
# installed (the helper runs on asyncio). Its imports: 0.33 s with both (python -X importtime);
# 0.24-0.27 s of user CPU without the first, 0.17-0.19 s without either (/usr/bin/time).
_HELPER_MAIN = (
    "import sys; sys.modules['httpx._main'] = None; sys.modules['trio'] = None; "
    "from aiodirac._engine.download._transfer_worker import main; main()"
)
# What a send to a helper that has gone raises.
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


def default_processes() -> int:
    """Helper processes used when ``DownloadConfig.processes`` is ``None``: one per spare core
    (this process keeps one), at most 4.

    Usage: ``n = default_processes()``
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(0, min(4, cores - 1))


def encode_frame(message: object) -> bytes:
    """A message as one frame: its pickle's length (4 bytes, big-endian), then the pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


async def read_frame(receive_exactly: Callable[[int], Awaitable[bytes]]) -> Any:
    """The next message, read with ``receive_exactly(n)`` (the stream's own end-of-stream error
    passes through). Trusted: it comes from our own helper or parent, over private pipes."""
    (size,) = _HEADER.unpack(await receive_exactly(_HEADER.size))
    return pickle.loads(await receive_exactly(size))


def _safe_error(exc: BaseException, job_id: int) -> BaseException:
    """``exc`` if it survives pickling, else a :class:`SandboxError` with its text."""
    try:
        pickle.dumps(exc)
    except Exception:  # noqa: BLE001 - any failure means: send the text instead
        return SandboxError(f"job {job_id}: {type(exc).__name__}: {exc}", job_id=job_id)
    return exc


class _HelperLost(Exception):
    """The helper process ended while it had this transfer: do it again here."""


class _Pending:
    """One transfer handed to a helper: its run, and the answer once it comes."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.seen = 0  # the helper's run.bytes for this job, as last reported
        self.answer: tuple[Any, ...] | None = None
        self.finished = anyio.Event()

    def count(self, run_bytes: int) -> None:
        self.run.bytes += run_bytes - self.seen
        self.seen = run_bytes


class _Helper:
    """One helper process, and the transfers it has."""

    def __init__(self, pool: TransferPool, number: int) -> None:
        self.pool = pool
        self.number = number
        self.process: anyio.abc.Process | None = None
        self.ready = False
        self.gone = False
        self.pending: dict[int, _Pending] = {}
        self.send_lock = anyio.Lock()
        self.granted = 0  # temporary space the helper holds of the downloader's (see _space)

    async def send(self, message: object) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        async with self.send_lock:
            await self.process.stdin.send(encode_frame(message))

    async def run(self) -> None:
        """Start the helper, then read its messages until it ends (task of the pool)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p
        )
        try:
            self.process = await anyio.open_process(
                [sys.executable, "-c", _HELPER_MAIN, str(os.getpid())],
                env=env,
                stderr=None,
            )
        except OSError as exc:
            logger.info("transfer helper %d could not start (%s): one process", self.number, exc)
            self.gone = True
            return
        assert self.process.stdout is not None
        stdout = BufferedByteReceiveStream(self.process.stdout)

        async def receive() -> Any:
            try:
                return await read_frame(stdout.receive_exactly)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                return None

        try:
            level = logging.getLogger("aiodirac").getEffectiveLevel()
            await self.send(("config", self.pool.config, level))
            with anyio.move_on_after(_START_TIMEOUT):
                hello = await receive()
            if hello != ("ready",):
                logger.info("transfer helper %d did not start: one process", self.number)
                return
            self.ready = True
            while (message := await receive()) is not None:
                await self._handle(message)
        finally:
            self.ready = False
            self.gone = True
            with anyio.CancelScope(shield=True):
                await self._stop()
            self.pool.space.give(self.granted)
            self.granted = 0
            for pending in self.pending.values():
                pending.answer = ("lost",)
                pending.finished.set()

    async def _handle(self, message: tuple[Any, ...]) -> None:
        kind, job_id = message[0], message[1]
        if kind == "log":
            _, _, level, name, text = message
            logging.getLogger(name).log(level, "%s", text)
            return
        if kind == "space-back":
            self.pool.space.give(message[2])
            self.granted -= message[2]
            return
        pending = self.pending.get(job_id)
        if pending is None:
            return
        if kind == "progress":
            _, _, run_bytes, job = message
            pending.count(run_bytes)
            pending.run.emit(job)
        elif kind == "locate":
            self.pool.tg.start_soon(self._locate, job_id)
        elif kind == "space":
            error: BaseException | None = None
            try:
                self.pool.space.take(message[2], job_id)
                self.granted += message[2]
            except TemporarySpaceError as exc:
                error = exc
            self.pool.tg.start_soon(self._answer, ("space", job_id, error))
        elif kind == "installing":
            # Every earlier event of this job has been shown: its files may become visible.
            self.pool.tg.start_soon(self._answer, ("install", job_id))
        else:  # "done", "failed", "cancelled": the transfer is over
            pending.answer = message
            pending.finished.set()

    async def _locate(self, job_id: int) -> None:
        try:
            answer: OutputSandbox | BaseException = await self.pool.locate(job_id)
        except Exception as exc:  # noqa: BLE001 - handed to the helper, raised there
            answer = _safe_error(exc, job_id)
        await self._answer(("located", job_id, answer))

    async def _answer(self, message: object) -> None:
        # A helper that is gone gets nothing: its transfers come back as lost.
        if not self.gone:
            with contextlib.suppress(*_GONE):
                await self.send(message)

    async def _stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(*_GONE):
                await process.stdin.aclose()
        with anyio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()

    async def fetch(
        self, info: OutputSandbox, part: Path, run: _Run, extraction: tuple[Path, bool] | None
    ) -> tuple[int, str, list[UnpackedFile]]:
        job_id = info.job_id
        pending = self.pending[job_id] = _Pending(run)
        try:
            try:
                extraction_arg = None if extraction is None else (str(extraction[0]), extraction[1])
                await self.send(
                    ("fetch", job_id, info, str(part), extraction_arg, run.progress is not None)
                )
                await pending.finished.wait()
            except _GONE:
                raise _HelperLost from None
            except BaseException:
                # Cancelled: the helper stops the transfer and removes what it wrote first.
                with anyio.CancelScope(shield=True):
                    await self._cancel(job_id, pending)
                raise
        finally:
            del self.pending[job_id]
        answer = pending.answer
        assert answer is not None
        if answer[0] == "done":
            _, _, size, sha, files, run_bytes = answer
            pending.count(run_bytes)
            return size, sha, files
        if answer[0] == "failed":
            _, _, error, run_bytes = answer
            pending.count(run_bytes)
            raise error
        raise _HelperLost

    async def _cancel(self, job_id: int, pending: _Pending) -> None:
        if self.gone:
            return
        try:
            await self.send(("cancel", job_id))
        except _GONE:
            return
        with anyio.move_on_after(_CANCEL_GRACE) as scope:
            await pending.finished.wait()
        if scope.cancelled_caught and self.process is not None:
            logger.warning("transfer helper %d ignored a cancellation: killed", self.number)
            self.process.kill()


class TransferPool(TaskGroupResource):
    """This process and up to ``processes`` helper processes, sharing the transfers of one run.

    ``enabled=False`` keeps every transfer in this process (a caller's own HTTP client cannot be
    shared with helpers).

    Usage::

        async with TransferPool(config, fetch=fetch, locate=locate, clean_leftovers=clean) as pool:
            size, sha, files = await pool.fetch(info, part, run, extraction, dest)
    """

    def __init__(
        self,
        config: DownloadConfig,
        *,
        fetch: Fetch,
        locate: Locate,
        clean_leftovers: CleanLeftovers,
        space: TemporarySpace | None = None,
        enabled: bool = True,
    ) -> None:
        self.config = config
        # The temporary disk space helpers take their grants of (see ``_space``).
        self.space = space or TemporarySpace(config.temporary_cap)
        self.locate = locate
        self._fetch = fetch
        self._clean_leftovers = clean_leftovers
        self.helper_transfers = 0
        """Transfers done by helper processes in this run."""
        configured = config.processes
        # Automatic (None): as many as there are spare cores, used once this process is busy.
        self.when_busy = configured is None
        self.processes = (
            0 if not enabled else default_processes() if configured is None else configured
        )
        self.helpers: list[_Helper] = []
        self.local = 0  # transfers running in this process
        self._window = (time.monotonic(), time.process_time())

    def _start_helpers(self) -> None:
        for number in range(self.processes):
            helper = _Helper(self, number)
            self.helpers.append(helper)
            self.tg.start_soon(helper.run)

    def _busy(self) -> bool:
        """Whether this process used ``_BUSY_SHARE`` of a core since the last look (at least
        ``_BUSY_WINDOW`` seconds ago): only then do helpers pay for their start and hand-offs.
        Waiting on a slow service or network, they would only take CPU from it."""
        now, cpu = time.monotonic(), time.process_time()
        start, start_cpu = self._window
        if now - start < _BUSY_WINDOW:
            return False
        self._window = (now, cpu)
        return cpu - start_cpu >= _BUSY_SHARE * (now - start)

    def _pick(self) -> _Helper | None:
        """The ready helper with the fewest transfers, if it has fewer than this process.

        Helpers start when two transfers first run at once; with the automatic setting, only
        once this process is also seen busy. Starting one earlier, idle until then, was tried:
        its imports (0.3 s of CPU) cost the DiracX path more than the 3% it gained on nginx.
        """
        if (
            not self.helpers
            and self.processes
            and self.local >= 1
            and (not self.when_busy or self._busy())
        ):
            self._start_helpers()
        best: _Helper | None = None
        for helper in self.helpers:
            if helper.ready and (best is None or len(helper.pending) < len(best.pending)):
                best = helper
        if best is not None and len(best.pending) < self.local:
            return best
        return None

    async def fetch(
        self,
        info: OutputSandbox,
        part: Path,
        run: _Run,
        extraction: tuple[Path, bool] | None,
        dest: Path,
    ) -> tuple[int, str, list[UnpackedFile]]:
        """Run :meth:`Downloader._fetch` here or in a helper; same result, same errors."""
        helper = self._pick()
        if helper is not None:
            try:
                answer = await helper.fetch(info, part, run, extraction)
                self.helper_transfers += 1
                return answer
            except _HelperLost:
                logger.warning(
                    "transfer helper %d ended during job %d: doing it again here",
                    helper.number,
                    info.job_id,
                )
                await self._clean_leftovers(dest, info.job_id)
        self.local += 1
        try:
            return await self._fetch(info, part, run, extraction)
        finally:
            self.local -= 1
