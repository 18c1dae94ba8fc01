"""What the benchmarks measure of the DiracX server they start: its CPU time (Linux /proc).

Usage: ``before = server_cpu(pid); ...; used = server_cpu(pid) - before``
"""

from __future__ import annotations

import os
from pathlib import Path


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
