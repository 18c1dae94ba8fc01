"""Test-wide fixtures: every test runs with its own aiodirac state and settings folders."""

from __future__ import annotations

from pathlib import Path

import pytest

# The real DiracX server (scripts/diracx.sh), started once per session by the tests that need it.
pytest_plugins = ["diracx_server"]


@pytest.fixture(autouse=True)
def _isolated_environment(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads the developer's settings, DiracX login or local job store."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("AIODIRAC_HOME", str(tmp_path / "aiodirac-home"))
    # matplotlib (the HTML report) keeps its font cache in the session's temporary folder,
    # built once, not in ~/.cache/matplotlib (and not in each test's folder either)
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path_factory.getbasetemp() / "matplotlib"))
    for name in (
        "DIRACX_URL",
        "DIRACX_CREDENTIALS_PATH",
        "DIRACX_CA_PATH",
        "AIODIRAC_BACKEND",
        "AIODIRAC_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
