"""Helpers of the job layer's tests: DIRAC's reference cases and DIRAC's own JDL code.

The reference is ``tests/reference/dirac/``, written from the real DIRAC package by
``scripts/dirac_reference.sh`` and checked in. DIRAC's JDL code runs in the DiracX venv (the first that exists of ``$AIODIRAC_DIRACX_VENV``,
``$DX_VENV``, ``scripts/diracx.sh``'s default ``${DX_HOME:-${TMPDIR:-/tmp}/aiodirac-diracx}/venv``
and ``/tmp/diracx-local/venv``) through ``dirac_oracle.py``, in a subprocess with a timeout,
because some JDL texts make it loop forever.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiodirac._job._spec import JDLValue

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent / "reference" / "dirac"
CASES = REFERENCE / "cases"
ORACLE_SCRIPT = HERE / "dirac_oracle.py"


def _diracx_python() -> Path:
    home = os.environ.get("DX_HOME") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "aiodirac-diracx"
    )
    candidates = [
        os.environ.get("AIODIRAC_DIRACX_VENV"),
        os.environ.get("DX_VENV"),
        os.path.join(home, "venv"),
        "/tmp/diracx-local/venv",
    ]
    pythons = [Path(c) / "bin" / "python" for c in candidates if c]
    return next((p for p in pythons if p.exists()), pythons[0])


DIRACX_PYTHON = _diracx_python()

#: The files DIRAC's reference scripts were run beside.
CASE_FILES = ("input1.txt", "input2.dat", "a.cfg", "b.cfg", "myscript.sh", "libdir/mylib.py")

Oracle = Callable[[list[dict[str, str]]], list[dict[str, Any]]]


def case_names() -> list[str]:
    """The reference case names."""
    return sorted(p.name[: -len(".py")] for p in CASES.glob("*.py"))


def run_oracle(requests: list[dict[str, str]], timeout: float = 120) -> list[dict[str, Any]]:
    """Run requests through DIRAC's JDL code (see ``dirac_oracle.py``)."""
    completed = subprocess.run(
        [str(DIRACX_PYTHON), str(ORACLE_SCRIPT)],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise AssertionError(f"DIRAC oracle failed: {completed.stderr[-2000:]}")
    answers: list[dict[str, Any]] = json.loads(completed.stdout)
    return answers


def normalize(attrs: dict[str, JDLValue] | dict[str, Any]) -> dict[str, object]:
    """Attribute values as DIRAC's readers compare them: strings, lists of strings.

    Ints become strings (DIRAC's ``CPUTime = 500`` and ``"500"`` read the same), one-item lists
    become the item (DIRAC writes a one-entry list as a scalar).
    """
    out: dict[str, object] = {}
    for name, value in attrs.items():
        if isinstance(value, tuple | list):
            items = [str(v) for v in value]
            out[name] = items[0] if len(items) == 1 else items
        else:
            out[name] = str(value)
    return out
