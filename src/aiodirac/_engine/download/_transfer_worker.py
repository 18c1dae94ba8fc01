"""A transfer helper process: ``python -m aiodirac._engine.download._transfer_worker <parent pid>``.

Started by :class:`aiodirac._engine.download._transfer_pool.TransferPool`, never by hand. It reads pickled frames
on stdin (``config``, then ``fetch``, ``cancel`` and ``located``) and answers on stdout
(``ready``, ``progress``, ``locate``, ``space``, ``space-back``, ``log``, then ``done``,
``failed`` or ``cancelled`` per transfer). Each transfer runs :meth:`Downloader._fetch` exactly as the parent would; a fresh URL
is asked of the parent, which alone talks to the backend. The helper exits at the end of stdin,
cancelling what is in flight (each transfer removes what it wrote), and is killed with its parent
on Linux.

Usage: started by the pool; ``python -m aiodirac._engine.download._transfer_worker $$`` waits for a config frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread

from aiodirac._engine.download._downloader import Downloader
from aiodirac._engine.download._model import DownloadConfig, DownloadProgress, _Run
from aiodirac.backends._protocol import OutputSandbox

from ._space import TemporarySpace
from ._transfer_pool import _safe_error, encode_frame, read_frame

_PR_SET_PDEATHSIG = 1
# Temporary space is asked of the parent in pieces of this size (one message each).
_GRANT = 8 << 20


class _Abandoned(Exception):
    """The parent cancelled this transfer, or is gone: a wait for its answer ends with this
    (raised in the extraction thread, which then removes what it wrote and installs nothing)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id}: the transfer was cancelled")


def _die_with_parent(parent: int) -> None:
    """Be killed when the parent dies (Linux); elsewhere the end of stdin stops us."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)  # the parent died before the request took effect


class _Channel:
    """Frames on stdin and stdout, through asyncio pipes (this process runs asyncio)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, read_fd: int, write_fd: int) -> _Channel:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 26)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(write_fd, "wb", buffering=0)
        )
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        return cls(reader, writer)

    async def receive(self) -> Any:
        try:
            return await read_frame(self.reader.readexactly)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    def send_nowait(self, message: object) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_frame(message))

    async def send(self, message: object) -> None:
        self.send_nowait(message)
        with contextlib.suppress(ConnectionError):  # the parent is gone: stdin ends next
            await self.writer.drain()


class _ParentLocator:
    """Locates sandboxes by asking the parent process (which alone holds the backend)."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        self.answers: dict[int, anyio.Event] = {}
        self.located: dict[int, OutputSandbox | BaseException] = {}

    async def output_sandbox(self, job_id: int) -> OutputSandbox:
        event = self.answers[job_id] = anyio.Event()
        try:
            await self.channel.send(("locate", job_id))
            await event.wait()
        finally:
            del self.answers[job_id]
        answer = self.located.pop(job_id)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def answer(self, job_id: int, answer: OutputSandbox | BaseException) -> None:
        event = self.answers.get(job_id)
        if event is not None:
            self.located[job_id] = answer
            event.set()


class _ParentSpace(TemporarySpace):
    """The parent's temporary space, taken in grants of ``_GRANT`` bytes: the cap holds for the
    downloads of every process together, at one message per grant."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__(cap=0)
        self.channel = channel
        self.allowance = 0
        self.answers: dict[int, anyio.Event] = {}
        self.refused: dict[int, BaseException | None] = {}
        self.abandoned: set[int] = set()
        self.loop_thread = threading.get_ident()

    def take(self, n: int, job_id: int | None = None) -> None:
        # Called in worker threads only (the writes and the extraction run there).
        with self._lock:
            if self.allowance >= n:
                self.allowance -= n
                return
        want = max(n, _GRANT)
        error = anyio.from_thread.run(self._ask, job_id or 0, want)
        if error is not None:
            raise error
        with self._lock:
            self.allowance += want - n

    async def _ask(self, job_id: int, want: int) -> BaseException | None:
        if job_id in self.abandoned:
            return _Abandoned(job_id)
        event = self.answers[job_id] = anyio.Event()
        try:
            await self.channel.send(("space", job_id, want))
            await event.wait()
        finally:
            del self.answers[job_id]
        return self.refused.pop(job_id, None)

    def answer(self, job_id: int, error: BaseException | None) -> None:
        event = self.answers.get(job_id)
        if event is not None:
            self.refused[job_id] = error
            event.set()

    def abandon(self, job_id: int) -> None:
        """The transfer of ``job_id`` is cancelled: its ask (now or later) is refused."""
        self.abandoned.add(job_id)
        self.answer(job_id, _Abandoned(job_id))

    def give(self, n: int) -> None:
        with self._lock:
            self.allowance += n
            surplus = self.allowance - 2 * _GRANT
            if surplus <= 0:
                return
            self.allowance -= surplus
        message = ("space-back", 0, surplus)
        if threading.get_ident() == self.loop_thread:
            self.channel.send_nowait(message)
        else:
            anyio.from_thread.run_sync(self.channel.send_nowait, message)


class _LogForwarder(logging.Handler):
    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.channel.send_nowait(("log", 0, record.levelno, record.name, record.getMessage()))
        except Exception:  # noqa: BLE001 - logging must never break a transfer
            self.handleError(record)


async def _serve(read_fd: int, write_fd: int) -> None:
    channel = await _Channel.open(read_fd, write_fd)
    first = await channel.receive()
    if first is None or first[0] != "config":
        return
    _, config, level = first
    assert isinstance(config, DownloadConfig)
    root = logging.getLogger("aiodirac")
    root.setLevel(level)
    root.addHandler(_LogForwarder(channel))
    root.propagate = False
    backend = _ParentLocator(channel)
    scopes: dict[int, anyio.CancelScope] = {}
    installs: dict[int, anyio.Event] = {}
    space = _ParentSpace(channel)

    def abandon(job_id: int) -> None:
        # The waits for the parent's answers run in tasks of their own (the extraction thread
        # starts them), outside the transfer's scope: they end now too, with an error, since a
        # cancelled parent sends no answer. Nothing is installed; what was written is removed.
        space.abandon(job_id)
        scopes[job_id].cancel()
        if job_id in installs:
            installs[job_id].set()

    async def transfer(
        job_id: int,
        info: OutputSandbox,
        part: str,
        extraction: tuple[str, bool] | None,
        progress: bool,
        scope: anyio.CancelScope,
    ) -> None:
        def forward(snapshot: DownloadProgress) -> None:
            # With the run's bytes so far: the parent adds what is new to its own run.
            channel.send_nowait(("progress", job_id, run.bytes, snapshot.job))

        async def before_install() -> None:
            # The parent has shown every earlier progress event of this job once it answers:
            # nothing appears under its final name while the parent still reports it in flight.
            if job_id in space.abandoned:
                raise _Abandoned(job_id)
            event = installs[job_id] = anyio.Event()
            await channel.send(("installing", job_id))
            await event.wait()
            if job_id in space.abandoned:
                raise _Abandoned(job_id)

        run = _Run(forward if progress else None, None)
        target = None if extraction is None else (Path(extraction[0]), extraction[1])
        answer: tuple[Any, ...] = ("cancelled", job_id)
        with scope:
            try:
                size, sha, files = await dl._fetch(
                    info, Path(part), run, target, before_install if progress else None
                )
                answer = ("done", job_id, size, sha, files, run.bytes)
            except Exception as exc:  # noqa: BLE001 - the parent raises it for this job
                answer = ("failed", job_id, _safe_error(exc, job_id), run.bytes)
        del scopes[job_id]
        installs.pop(job_id, None)
        space.abandoned.discard(job_id)
        await channel.send(answer)

    async with Downloader(backend, config) as dl, anyio.create_task_group() as tg:
        dl._space = space
        await channel.send(("ready",))
        while (message := await channel.receive()) is not None:
            kind, job_id = message[0], message[1]
            if kind == "fetch":
                _, _, info, part, extraction, progress = message
                scope = scopes[job_id] = anyio.CancelScope()
                tg.start_soon(transfer, job_id, info, part, extraction, progress, scope)
            elif kind == "cancel":
                if job_id in scopes:
                    abandon(job_id)
            elif kind == "located":
                backend.answer(job_id, message[2])
            elif kind == "space":
                space.answer(job_id, message[2])
            elif kind == "install" and job_id in installs:
                installs[job_id].set()
        # The parent is gone or done: stop what runs (each transfer cleans up after itself).
        for job_id in list(scopes):
            abandon(job_id)
        tg.cancel_scope.cancel()


def main() -> None:
    """Entry point of ``python -m aiodirac._engine.download._transfer_worker <parent pid>``."""
    _die_with_parent(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())
    # Ctrl-C in a terminal signals the whole foreground process group, this helper too: the
    # parent alone decides (it closes our stdin, and each transfer removes what it wrote); a
    # KeyboardInterrupt here would only print a traceback under the parent's one line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The frames get their own descriptor; a stray print() goes to stderr, never into them.
    write_fd = os.dup(1)
    os.dup2(2, 1)
    anyio.run(_serve, 0, write_fd, backend="asyncio")


if __name__ == "__main__":
    main()
