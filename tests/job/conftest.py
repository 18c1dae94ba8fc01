"""Fixtures of the job layer's tests (helpers live in ``_jobref.py``, a unique module name)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # let test modules import _jobref from this folder
    sys.path.insert(0, str(HERE))

from _jobref import CASE_FILES, CASES, DIRACX_PYTHON, Oracle, run_oracle


@pytest.fixture
def reference() -> Path:
    """DIRAC's reference cases (checked in under tests/reference/dirac/cases)."""
    return CASES


@pytest.fixture
def case_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder like the one DIRAC's reference scripts ran in, as the cwd."""
    for name in CASE_FILES:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    """DIRAC's own JDL code, from the DiracX venv (scripts/diracx.sh install makes it).

    Missing, it fails the tests that need it, as a DiracX server that did not start does;
    ``AIODIRAC_SKIP_DIRACX=1`` skips them instead.
    """
    if os.environ.get("AIODIRAC_SKIP_DIRACX") == "1":
        pytest.skip("AIODIRAC_SKIP_DIRACX=1: the tests that need DiracX's DIRACCommon are skipped")
    if not DIRACX_PYTHON.exists():
        pytest.fail(
            f"DIRACCommon is not installed ({DIRACX_PYTHON} missing): run "
            "bash scripts/diracx.sh install, or set AIODIRAC_DIRACX_VENV",
            pytrace=False,
        )
    probe = subprocess.run(
        [str(DIRACX_PYTHON), "-c", "import DIRACCommon.Core.Utilities.ClassAd.ClassAdLight"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.fail(f"{DIRACX_PYTHON} cannot import DIRACCommon: {probe.stderr[-2000:]}")
    return run_oracle
