"""What the command line tests share (a module, not a conftest, so tests can import it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Run:
    """What one ``aiodirac`` invocation did."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as one JSON document."""
        return json.loads(self.stdout)

    def lines(self) -> list[Any]:
        """stdout as JSON lines."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


Invoke = Callable[..., Run]


def flaky_script(folder: Path) -> tuple[Path, Path]:
    """A real program ``flaky.sh MARKS N`` that fails the first time it runs for N in {2, 4}.

    Returns the script and the MARKS folder (where it remembers that it ran).
    """
    script = folder / "flaky.sh"
    script.write_text(
        "#!/bin/sh\n"
        'case "$2" in 2|4) ;; *) echo "n=$2"; exit 0;; esac\n'
        'if [ -e "$1/$2" ]; then echo "n=$2 again"; exit 0; fi\n'
        'touch "$1/$2"; exit 1\n'
    )
    script.chmod(0o755)
    marks = folder / "marks"
    marks.mkdir()
    return script, marks
