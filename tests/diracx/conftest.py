"""Fixtures for the DiracX integration tests: the session's server, backends, a test pilot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiodirac.backends.diracx import DiracXBackend
from aiodirac.testing._pilot import DiracXTestPilot
from diracx_server import DiracXServer


@pytest.fixture
def credentials(diracx_server: DiracXServer, tmp_path: Path) -> Path:
    """A private copy of localuser's credentials file (refreshes write to it)."""
    return diracx_server.write_credentials(tmp_path / "credentials.json")


@pytest.fixture
async def backend(diracx_server: DiracXServer, credentials: Path) -> AsyncIterator[DiracXBackend]:
    """localuser's DiracX backend."""
    async with diracx_server.backend(credentials) as b:
        yield b


@pytest.fixture
async def pilot(
    diracx_server: DiracXServer, credentials: Path, tmp_path: Path
) -> AsyncIterator[DiracXTestPilot]:
    """A test pilot playing the grid for localuser's jobs."""
    async with diracx_server.pilot(tmp_path / "grid", credentials) as p:
        yield p
