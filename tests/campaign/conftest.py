"""Campaign tests: the DiracX server plugin (tests/diracx_server.py) for the tests marked diracx."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("diracx_server"):
        config.pluginmanager.import_plugin("diracx_server")
