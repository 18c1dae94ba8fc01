"""What the benchmarks measure of the servers they start: their CPU time (Linux /proc).

Usage: ``before = server_cpu(pid); ...; used = server_cpu(pid) - before``
"""

from __future__ import annotations

import os
from pathlib import Path


def _fields(stat: Path) -> list[str]:
    """A /proc ``stat`` file's fields after the command name: state (0), ppid (1), ..."""
    return stat.read_text().rsplit(")", 1)[1].split()


def _seconds(fields: list[str]) -> float:
    # utime and stime, in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process ``pid`` has used so far."""
    return _seconds(_fields(Path(f"/proc/{pid}/stat")))


def children_cpu(pid: int) -> float:
    """CPU seconds used so far by the live children of ``pid`` (e.g. nginx's workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _fields(stat)
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += _seconds(fields)
    return total
