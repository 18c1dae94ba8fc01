"""The hostile suite: aiodirac against a server of our own that lies, floods, stalls and injects.

Every test gets a :class:`FakeDiracX` behind a :class:`HostileServer` on a free loopback port
(stopped when the test ends), and checks what each case must leave: nothing outside the job
folder, nothing partial that looks complete, bounded memory and disk, one clear typed error
(``S_ERROR`` from the blocking facade), and the token nowhere in any output.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The archive builders of the engine tests, shared rather than copied.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from _server import FakeDiracX, HostileServer


@pytest.fixture
def fake() -> FakeDiracX:
    """The fake DiracX's jobs and overrides (fill before or during the test)."""
    return FakeDiracX()


@pytest.fixture
def server(fake: FakeDiracX) -> Iterator[HostileServer]:
    """The hostile server, playing ``fake``; stopped (every connection cut) after the test."""
    with HostileServer(fake, deadline=20.0) as running:
        fake.base = running.url
        yield running


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every aiodirac log line down to DEBUG, to check that no token leaks there."""
    caplog.set_level(logging.DEBUG, logger="aiodirac")
    return caplog
