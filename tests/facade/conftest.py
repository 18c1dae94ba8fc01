"""Fixtures of the facade tests: clients on the test's own local backend, agent stopped after."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from aiodirac import AsyncDirac, Dirac
from aiodirac.backends.local import LocalBackend


def _stop_agent() -> None:
    home = Path(os.environ["AIODIRAC_HOME"])
    if home.exists():

        async def stop() -> None:
            async with LocalBackend(home) as backend:
                await backend.stop_agent()

        anyio.run(stop)


@pytest.fixture
async def dirac() -> AsyncIterator[AsyncDirac]:
    """An open AsyncDirac on the local backend (chosen by default: no DiracX configured)."""
    async with AsyncDirac() as client:
        yield client
        assert isinstance(client.backend, LocalBackend)
        await client.backend.stop_agent()


@pytest.fixture
def sync_dirac(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dirac]:
    """A DIRAC-style client, run from ``tmp_path`` (outputs land there, as in DIRAC)."""
    monkeypatch.chdir(tmp_path)
    client = Dirac()
    try:
        yield client
    finally:
        client.close()
        _stop_agent()
