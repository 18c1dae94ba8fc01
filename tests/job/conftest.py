"""Fixtures of the job layer's tests (helpers live in ``_jobref.py``, a unique module name)."""

from __future__ import annotations

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
    if not CASES.is_dir():
        pytest.skip(f"DIRAC reference cases not found at {CASES} (clone shared/ beside the repo)")
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
    if not DIRACX_PYTHON.exists():
        pytest.skip(
            f"DIRACCommon is not installed ({DIRACX_PYTHON} missing): install DiracX with "
            "scripts/diracx.sh or set AIODIRAC_DIRACX_VENV"
        )
    probe = subprocess.run(
        [str(DIRACX_PYTHON), "-c", "import DIRACCommon.Core.Utilities.ClassAd.ClassAdLight"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"{DIRACX_PYTHON} cannot import DIRACCommon")
    return run_oracle
