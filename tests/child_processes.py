"""Child processes that never outlive their test (a module, not a conftest: tests import it).

:func:`child` starts a process in a process group of its own, with SIGINT at its default as a
terminal gives it, and kills and reaps the whole group when the ``with`` block ends, whether
the test passed, failed or timed out. Anything the child started in its group (transfer
helpers, a shell's children) goes with it.

Why SIGINT is reset: a process started by a non-interactive shell with ``&`` (CI steps,
``bash scripts/test.sh &``, many harnesses) inherits SIGINT *ignored*, and so does every child
it starts; a Ctrl-C test run from there sends a SIGINT its child never sees, and the child runs
on until its job ends. Only an ignored disposition is inherited through ``exec``; a caught one
is reset to the default, so SIGINT is caught around the start of the child.

Usage::

    with child([sys.executable, "-m", "aiodirac.cli", "watch", "12"]) as proc:
        proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["child", "stop_group", "wait_until"]


@contextlib.contextmanager
def child(args: Sequence[str], **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """Start ``args`` (text mode, own process group); kill and reap its group afterwards."""
    popen.setdefault("text", True)
    previous = signal.getsignal(signal.SIGINT)
    reset = previous is signal.SIG_IGN and threading.current_thread() is threading.main_thread()
    if reset:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(list(args), process_group=0, **popen)
    finally:
        if reset:
            signal.signal(signal.SIGINT, previous)
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the process's group and reap the process; close its pipes."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Wait for a condition only the outside world can make true (a file appearing).

    Polls every 10 ms; raises ``AssertionError`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what or condition}")
        time.sleep(0.01)
