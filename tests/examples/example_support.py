"""What the example tests share (a module, not a conftest, so tests can import it)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

RunExample = Callable[..., subprocess.CompletedProcess[str]]


def stop_local_agent() -> None:
    """Stop the test's local agent (it would otherwise idle for a minute)."""
    home = Path(os.environ["AIODIRAC_HOME"])
    if not home.exists():
        return
    from aiodirac.backends.local import LocalBackend

    async def stop() -> None:
        async with LocalBackend(home) as backend:
            await backend.stop_agent()

    anyio.run(stop)
