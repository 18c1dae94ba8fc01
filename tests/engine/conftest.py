"""Engine tests: the DiracX server plugin (tests/diracx_server.py) for the tests marked diracx."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # The plugin may already be registered (tests/conftest.py or tests/diracx); never twice.
    if not config.pluginmanager.has_plugin("diracx_server"):
        config.pluginmanager.import_plugin("diracx_server")
