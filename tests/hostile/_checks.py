"""What every hostile case must leave behind: checks shared by the hostile tests."""

from __future__ import annotations

import os
from pathlib import Path

from _server import TOKEN


def assert_no_token(*texts: object) -> None:
    """The bearer token appears in none of ``texts``."""
    for text in texts:
        assert TOKEN not in str(text), "the bearer token leaked"


def assert_contained(root: Path, job_dir: Path | None = None) -> None:
    """Under ``root``: nothing temporary left, and nothing outside ``job_dir`` (if given)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            assert ".part" not in name, f"temporary file left: {path}"
            assert ".unpack-" not in name, f"temporary folder left: {path}"
            assert ".old-" not in name, f"temporary folder left: {path}"
            if job_dir is not None and path != job_dir and job_dir not in path.parents:
                assert path in job_dir.parents, f"written outside the job folder: {path}"


def socket_buffers() -> int:
    """The most a loopback connection's kernel buffers hold (send + receive), from
    ``/proc/sys/net/ipv4/tcp_{w,r}mem`` (64 MiB where they cannot be read)."""
    try:
        sizes = [
            int(Path(f"/proc/sys/net/ipv4/tcp_{kind}mem").read_text().split()[2])
            for kind in ("w", "r")
        ]
    except (OSError, ValueError, IndexError):
        return 64 << 20
    return sum(sizes)
