"""Fixtures of the local backend's tests: a state folder and backends whose agent stops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from aiodirac.backends.local import LocalBackend


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The state folder of the test."""
    return tmp_path / "home"


@pytest.fixture
def make_backend(home: Path) -> Callable[..., LocalBackend]:
    """Backends on the test's state folder (their agent is stopped at the end)."""
    made: list[LocalBackend] = []

    def make(**options: object) -> LocalBackend:
        options.setdefault("idle_timeout", 10.0)
        backend = LocalBackend(home, **options)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    return make


@pytest.fixture
async def backend(make_backend: Callable[..., LocalBackend]) -> AsyncIterator[LocalBackend]:
    """A local backend whose agent is stopped when the test ends."""
    backend = make_backend(max_parallel=2)
    try:
        yield backend
    finally:
        assert await backend.stop_agent()
        await backend.aclose()
