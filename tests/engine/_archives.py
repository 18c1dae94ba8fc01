"""Archives for the download, unpack and hostile tests: tars of named files or of any member
kind, compressed as asked, the hostile archives every extraction must refuse, and bombs."""

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


MiB = 1 << 20


def tar_of(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A PAX tar of ``members``: (header, data) pairs, data ``None`` for links, folders, devices."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def member(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    """A regular file member."""
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    """A member without data: a folder, a link, a device, a FIFO."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


#: Archives that must be refused whole, by name: what each one tries.
HOSTILE: dict[str, list[tuple[tarfile.TarInfo, bytes | None]]] = {
    "absolute": [member("/tmp/aiodirac-evil")],
    "dotdot": [member("../outside/evil")],
    "dotdot-inner": [member("a/b/../../../outside/evil")],
    "backslash": [member("..\\outside\\evil")],
    "drive": [member("C:evil")],
    "symlink-absolute": [special("link", tarfile.SYMTYPE, "/etc")],
    "symlink-up": [special("link", tarfile.SYMTYPE, "../outside")],
    "symlink-up-inner": [special("a/link", tarfile.SYMTYPE, "b/../../..")],
    "through-symlink": [
        special("link", tarfile.SYMTYPE, "sub"),
        member("link/evil"),
    ],
    "through-file": [member("f"), member("f/evil")],
    "hardlink-absolute": [special("h", tarfile.LNKTYPE, "/etc/passwd")],
    "hardlink-up": [special("h", tarfile.LNKTYPE, "../outside/x")],
    "hardlink-unknown": [special("h", tarfile.LNKTYPE, "not-in-archive")],
    "chardev": [special("tty", tarfile.CHRTYPE)],
    "blockdev": [special("sda", tarfile.BLKTYPE)],
    "fifo": [special("pipe", tarfile.FIFOTYPE)],
    "case-collision": [member("Std.out", b"a"), member("std.out", b"b")],
    "nfc-collision": [member("caf\u00e9.txt", b"a"), member("cafe\u0301.txt", b"b")],
    "duplicate": [member("std.out", b"a"), member("./std.out", b"b")],
    "file-then-dir": [member("x", b"a"), special("X", tarfile.DIRTYPE)],
    "root-replaced": [member("./", b"a")],
}


def zstd_bomb(member_size: int, members: int = 1, frame: int = 8 * MiB) -> bytes:
    """Concatenated zstd frames: a few KiB that expand to ``members * member_size`` bytes."""
    cctx = zstandard.ZstdCompressor(level=1)
    zero_frame = cctx.compress(b"\0" * frame)
    out = bytearray()
    for i in range(members):
        info = tarfile.TarInfo(f"zeros{i}")
        info.size = member_size
        out += cctx.compress(info.tobuf(format=tarfile.PAX_FORMAT))
        full, rest = divmod(member_size, frame)
        out += zero_frame * full
        if rest:
            out += cctx.compress(b"\0" * rest)
    out += cctx.compress(b"\0" * 1024)
    return bytes(out)
