"""Fixtures for the command line tests: run ``aiodirac`` in-process against the real local backend.

Every test has its own ``AIODIRAC_HOME`` (the root conftest), so its own job store and its own
local agent, which is stopped when the test ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from cli_support import Invoke, Run
from typer.testing import CliRunner


def pytest_configure(config: pytest.Config) -> None:
    # the DiracX server plugin, for the tests marked diracx (registered once, whoever does it)
    import diracx_server

    if not config.pluginmanager.has_plugin("diracx_server"):
        config.pluginmanager.register(diracx_server, "diracx_server")


@pytest.fixture
def aiodirac(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run ``aiodirac ARGS`` in this process, from ``tmp_path``; returns a :class:`Run`."""
    from aiodirac.cli._app import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Run:
        result = runner.invoke(app, list(args), input=input, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture(autouse=True)
def _stop_agent() -> Iterator[None]:
    """Whatever started the test's local agent (in-process or a real ``aiodirac`` process), it
    is stopped when the test ends, passed or failed."""
    yield
    home = Path(os.environ["AIODIRAC_HOME"])
    if not home.exists():
        return
    from aiodirac.backends.local import LocalBackend

    async def stop() -> None:
        async with LocalBackend(home) as backend:
            await backend.stop_agent()

    anyio.run(stop)


@pytest.fixture
def submitted(aiodirac: Invoke) -> Callable[..., list[int]]:
    """Submit with ``aiodirac --json submit ARGS`` and return the job IDs."""

    def submit(*args: str) -> list[int]:
        run = aiodirac("--json", "submit", *args)
        assert run.code == 0, run.stderr
        ids: list[int] = run.json()["job_ids"]
        return ids

    return submit


@pytest.fixture
def finished(aiodirac: Invoke) -> Callable[[list[int]], None]:
    """Wait (with ``aiodirac watch``) until jobs are final."""

    def wait(ids: list[int]) -> None:
        run = aiodirac("--json", "watch", *map(str, ids))
        assert run.code in (0, 1), run.stderr

    return wait
