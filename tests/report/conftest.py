"""Report tests: the Chromium they open reports in, and the DiracX server plugin."""

from __future__ import annotations

import os

import pytest
from _browser import find_chromium


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("diracx_server"):
        config.pluginmanager.import_plugin("diracx_server")


@pytest.fixture
def chromium() -> str:
    """The Chromium executable; a clear failure (or a skip, if asked) when there is none."""
    found = find_chromium()
    if found is None:
        if os.environ.get("AIODIRAC_SKIP_BROWSER") == "1":
            pytest.skip("AIODIRAC_SKIP_BROWSER=1: the real-browser tests are skipped")
        pytest.fail(
            "no Chromium on PATH: run scripts/test.sh (it installs the Debian packages "
            "chromium and chromium-driver) or apt-get install chromium; "
            "AIODIRAC_SKIP_BROWSER=1 skips these tests"
        )
    return found
