"""Archives for the download and unpack tests: a tar of named files, compressed as asked."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Mapping

import zstandard


def compress(raw: bytes, fmt: str) -> bytes:
    """``raw`` (a tar) compressed to ``fmt``: tar, tar.gz, tar.bz2, tar.xz or tar.zst."""
    if fmt == "tar.gz":
        return gzip.compress(raw, compresslevel=1)
    if fmt == "tar.bz2":
        return bz2.compress(raw)
    if fmt == "tar.xz":
        return lzma.compress(raw)
    if fmt == "tar.zst":
        return zstandard.ZstdCompressor(level=1).compress(raw)
    return raw


def make_archive(files: Mapping[str, bytes], fmt: str = "tar.gz") -> bytes:
    """A tar of regular files named as the keys, compressed to ``fmt``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return compress(buf.getvalue(), fmt)
