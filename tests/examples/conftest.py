"""Fixtures for the example scripts: each runs as its own process on the real local backend."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from example_support import EXAMPLES, RunExample, stop_local_agent


@pytest.fixture
def run_example(tmp_path: Path) -> Iterator[RunExample]:
    """Run ``python examples/<name> ARGS`` from ``tmp_path`` with the test's AIODIRAC_HOME."""

    def run(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(EXAMPLES / name), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ),
            check=False,
        )

    yield run
    stop_local_agent()
