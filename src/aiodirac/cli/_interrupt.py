"""Ctrl-C for every command: one line on stderr, exit status 130, never a traceback.

Python's own handling leaves gaps. ``asyncio.Runner`` turns SIGINT into a cancellation only while
its main task runs; before that (imports, argument parsing) and after it (``Runner.close()``
cancelling leftover tasks, joining the default executor's threads, closing the loop; then the
interpreter's teardown) a SIGINT raises ``KeyboardInterrupt`` at whatever bytecode runs. Landing
inside ``Runner.close()`` it leaves the loop half closed: at exit the garbage collector finalises
the loop's self-pipe socket first, and ``BaseEventLoop.__del__`` prints ``ValueError: Invalid file
descriptor: -1`` (or ``coroutine 'BaseEventLoop.shutdown_default_executor' was never awaited``)
after the command's one line.

So the command line owns SIGINT from its first line to its last (:func:`handle_ctrl_c`):

* while a command's async body runs (:func:`cancel_on_ctrl_c`), the first Ctrl-C cancels it:
  its ``finally`` blocks and context managers clean up (partial files removed, journal
  consistent), then the command prints ``aiodirac: interrupted`` and exits with 130; a cleanup
  still running after :data:`GRACE` seconds is given up on (the process ends);
* any other Ctrl-C (during start-up, during teardown, or a second one while cleaning up) ends the
  process at once with the same line and status: nothing of the command is left half-done there
  that a graceful path would finish.

A SIGINT that is ignored when the process starts stays ignored: a job started with ``&`` by a
non-interactive shell inherits that, so that Ctrl-C in the terminal reaches only the foreground
command (POSIX); Python keeps that rule too.

Usage::

    with handle_ctrl_c() as ctrl_c:
        ...                                       # plain code: Ctrl-C exits with 130
        anyio.run(cancel_on_ctrl_c, ctrl_c, body) # async body: Ctrl-C cancels it
        if ctrl_c.interrupted: ...
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import Any, NoReturn, TypeVar

__all__ = ["INTERRUPTED_LINE", "CtrlC", "cancel_on_ctrl_c", "handle_ctrl_c"]

_T = TypeVar("_T")

#: What an interrupted command prints on stderr, its only line about the interruption.
INTERRUPTED_LINE = "aiodirac: interrupted\n"
#: The exit status of an interrupted command (128 + SIGINT, what shells report).
INTERRUPTED_STATUS = 130
#: Seconds a command's cleanup may take after Ctrl-C before the process ends regardless, so
#: that it ends within a second. Cleanups take 5-300 ms (scripts/sigint_loop.sh); one that
#: waits on a worker thread (an unpack of a big sandbox under load) took over a second. Nothing
#: is lost by ending it: the journal is transactional and downloads write to temporary names
#: that the next run removes.
GRACE = 0.75


class CtrlC:
    """The SIGINT handler of one command (see the module's description).

    Usage: ``signal.signal(signal.SIGINT, CtrlC())``
    """

    def __init__(self) -> None:
        self.interrupted = False
        self.reported = False
        self._wake: socket.socket | None = None
        self._timer: threading.Timer | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self._wake is not None and not self.interrupted:
            self.interrupted = True
            with contextlib.suppress(OSError):  # the body already ended: it is woken anyway
                self._wake.send(b"\0")
            # Cleanup that outlasts the grace (a thread blocked on a read, a wedged server)
            # is given up on: the process ends anyway.
            self._timer = threading.Timer(GRACE, self._give_up)
            self._timer.daemon = True
            self._timer.start()
            return
        self.exit_now()

    def _give_up(self) -> None:
        # Another thread: flushing could wait forever on a stream lock the main thread holds
        # (a write to a full pipe), so only the line is written, straight to the descriptor.
        if not self.reported:
            self.reported = True
            with contextlib.suppress(OSError):
                os.write(2, INTERRUPTED_LINE.encode())
        os._exit(INTERRUPTED_STATUS)

    def report(self) -> None:
        """Write the one line on stderr (once).

        Usage: ``ctrl_c.report()``
        """
        if self.reported:
            return
        self.reported = True
        try:
            sys.stderr.write(INTERRUPTED_LINE)
            sys.stderr.flush()
        except (OSError, ValueError, RuntimeError):  # closed, or a write it interrupted
            with contextlib.suppress(OSError):
                os.write(2, INTERRUPTED_LINE.encode())

    def exit_now(self) -> NoReturn:
        """End the process now: what was printed is flushed, the line written, status 130.

        Skips the interpreter's teardown: the command's own cleanup ran (or was given up by a
        second Ctrl-C), and that teardown takes up to a second on a busy machine.

        Usage: ``ctrl_c.exit_now()``
        """
        for stream in (sys.stdout, sys.stderr):
            # RuntimeError: the signal arrived in the middle of a write to this very stream.
            with contextlib.suppress(Exception):
                stream.flush()
        if not self.reported:
            self.reported = True
            with contextlib.suppress(OSError):
                os.write(2, INTERRUPTED_LINE.encode())
        os._exit(INTERRUPTED_STATUS)

    def arm(self, wake: socket.socket) -> None:
        """From now on the first Ctrl-C writes a byte to ``wake`` instead of exiting."""
        self._wake = wake

    def disarm(self) -> None:
        """From now on every Ctrl-C exits at once."""
        self._wake = None


@contextlib.contextmanager
def handle_ctrl_c() -> Iterator[CtrlC]:
    """Own SIGINT for the duration (the previous handler comes back after it).

    Outside the main thread, or when SIGINT was ignored at start, nothing is installed and the
    returned handler never fires.

    Usage: ``with handle_ctrl_c() as ctrl_c: ...``
    """
    handler = CtrlC()
    if threading.current_thread() is not threading.main_thread():
        yield handler
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        yield handler
        return
    if isinstance(previous, CtrlC):  # a command run from inside another one's handler
        yield previous
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield handler
    finally:
        signal.signal(signal.SIGINT, previous)
        if handler._timer is not None:  # the cleanup ended in time; the caller goes on
            handler._timer.cancel()


async def cancel_on_ctrl_c(ctrl_c: CtrlC, body: Callable[[], Awaitable[_T]]) -> _T | None:
    """Run ``body``; the first Ctrl-C meanwhile cancels it (then ``None`` is returned).

    Usage: ``anyio.run(cancel_on_ctrl_c, ctrl_c, body)``
    """
    import anyio

    receive, wake = socket.socketpair()
    result: Any = None
    with receive, wake:
        receive.setblocking(False)
        wake.setblocking(False)
        async with anyio.create_task_group() as tg:

            async def cancel_when_woken() -> None:
                await anyio.wait_readable(receive)
                tg.cancel_scope.cancel()

            tg.start_soon(cancel_when_woken)
            ctrl_c.arm(wake)
            try:
                result = await body()
            finally:
                ctrl_c.disarm()
            tg.cancel_scope.cancel()
    return None if ctrl_c.interrupted else result
