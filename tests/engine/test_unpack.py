"""Safe extraction: every escape refused, bombs stopped, nothing partial, formats recognised."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
from _archives import HOSTILE, compress
from _archives import member as _file
from _archives import special as _special
from _archives import tar_of as _tar
from _archives import zstd_bomb as _zstd_bomb

from aiodirac import IntegrityError, UnsafeArchiveError
from aiodirac._engine.download._unpack import (
    ChunkSource,
    Extraction,
    UnpackLimits,
    extract,
    sniff_format,
    unpack,
)

GiB = 1 << 30
MiB = 1 << 20


@pytest.fixture
def area(tmp_path: Path) -> Path:
    """A dest folder with a sentinel sibling that hostile archives try to reach."""
    (tmp_path / "dest").mkdir()
    (tmp_path / "outside").mkdir()
    return tmp_path


def _write(area: Path, data: bytes, name: str = "sb.tar") -> Path:
    path = area / name
    path.write_bytes(data)
    return path


def _assert_untouched(area: Path) -> None:
    """Nothing outside the job folder, and no job folder or temporary left behind."""
    assert list((area / "outside").iterdir()) == []
    assert sorted(p.name for p in (area / "dest").iterdir()) == []
    assert not (area / "evil").exists()
    assert not Path("/tmp/aiodirac-evil").exists()


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tar.bz2", "tar.zst"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_refused(area: Path, case: str, fmt: str) -> None:
    members = HOSTILE[case]
    # A harmless member first: it must not survive the refusal either.
    archive = _write(area, compress(_tar([_file("ok.txt", b"fine"), *members]), fmt))
    with pytest.raises(UnsafeArchiveError):
        extract(archive, area / "dest" / "12")
    _assert_untouched(area)


def test_10_gib_bomb_refused_by_default(area: Path) -> None:
    data = _zstd_bomb(10 * GiB)
    assert len(data) < 1 * MiB
    archive = _write(area, data, "bomb.tar.zst")
    with pytest.raises(UnsafeArchiveError, match="archive bomb"):
        extract(archive, area / "dest" / "12")
    _assert_untouched(area)


def test_bomb_of_small_members_stopped_while_streaming(area: Path) -> None:
    # 10 GiB in 1,280 members of 8 MiB: no single header is alarming; the running count is.
    data = _zstd_bomb(8 * MiB, members=1280)
    archive = _write(area, data, "bomb.tar.zst")
    with pytest.raises(UnsafeArchiveError, match="archive bomb"):
        extract(archive, area / "dest" / "12", limits=UnpackLimits(max_bytes=40 * MiB))
    _assert_untouched(area)


def test_member_count_cap(area: Path) -> None:
    archive = _write(area, _tar([_file(f"f{i}") for i in range(101)]))
    with pytest.raises(UnsafeArchiveError, match="members"):
        extract(archive, area / "dest" / "12", limits=UnpackLimits(max_members=100))
    _assert_untouched(area)
    assert len(extract(archive, area / "dest" / "12", limits=UnpackLimits(max_members=101))) == 101


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst"])
def test_formats_recognised_and_extracted(area: Path, fmt: str) -> None:
    raw = _tar(
        [
            _file("std.out", b"hello\n"),
            _file("bin/run.sh", b"#!/bin/sh\n", mode=0o4755),
            _special("sub", tarfile.DIRTYPE),
            _file("sub/data.bin", os.urandom(3000)),
        ]
    )
    archive = _write(area, compress(raw, fmt), "sb")
    assert sniff_format(archive.read_bytes()[:6]) == fmt
    files = extract(archive, area / "dest" / "12")
    assert [(f.name, f.size) for f in files] == [
        ("std.out", 6),
        ("bin/run.sh", 10),
        ("sub/data.bin", 3000),
    ]
    job = area / "dest" / "12"
    assert (job / "std.out").read_bytes() == b"hello\n"
    # Executable kept, setuid dropped.
    assert stat.S_IMODE((job / "bin/run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((job / "std.out").stat().st_mode) == 0o644
    assert sorted(p.name for p in (area / "dest").iterdir()) == ["12"]


def test_internal_links(area: Path) -> None:
    raw = _tar(
        [
            _file("run3/out.txt", b"result"),
            _special("latest", tarfile.SYMTYPE, "run3/out.txt"),
            _special("copy.txt", tarfile.LNKTYPE, "run3/out.txt"),
        ]
    )
    files = extract(_write(area, raw), area / "dest" / "1")
    job = area / "dest" / "1"
    assert os.readlink(job / "latest") == "run3/out.txt"
    assert (job / "latest").read_bytes() == b"result"
    # The hard link is an independent copy.
    assert (job / "copy.txt").read_bytes() == b"result"
    assert (job / "copy.txt").stat().st_ino != (job / "run3/out.txt").stat().st_ino
    assert {f.name for f in files} == {"run3/out.txt", "copy.txt"}


def test_repeated_folder_entries_are_fine(area: Path) -> None:
    raw = _tar(
        [
            _special("d", tarfile.DIRTYPE),
            _file("d/a"),
            _special("d/", tarfile.DIRTYPE),
            _special(".", tarfile.DIRTYPE),
        ]
    )
    assert [f.name for f in extract(_write(area, raw), area / "dest" / "1")] == ["d/a"]


def test_existing_folder_replaced_as_a_whole(area: Path) -> None:
    job = area / "dest" / "7"
    job.mkdir()
    (job / "stale.txt").write_text("old")
    extract(_write(area, _tar([_file("new.txt", b"new")])), job)
    assert sorted(p.name for p in job.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in (area / "dest").iterdir()) == ["7"]


def test_refused_archive_leaves_existing_folder_alone(area: Path) -> None:
    job = area / "dest" / "7"
    job.mkdir()
    (job / "keep.txt").write_text("old")
    with pytest.raises(UnsafeArchiveError):
        extract(_write(area, _tar([_file("a"), _file("../evil")])), job)
    assert sorted(p.name for p in (area / "dest").iterdir()) == ["7"]
    assert (job / "keep.txt").read_text() == "old"


def test_merge_into_existing_folder(area: Path) -> None:
    dest = area / "dest"
    (dest / "mine.txt").write_text("user file")
    (dest / "sub").mkdir()
    (dest / "sub" / "old.txt").write_text("old")
    # A link in the way must be replaced, never followed out of the folder.
    (dest / "linkdir").symlink_to(area / "outside")
    raw = _tar(
        [_file("std.out", b"1"), _file("sub/new.txt", b"2"), _file("linkdir/x", b"3")],
    )
    extract(_write(area, raw), dest, merge=True)
    assert (dest / "mine.txt").read_text() == "user file"
    assert (dest / "sub" / "old.txt").read_text() == "old"
    assert (dest / "sub" / "new.txt").read_text() == "2"
    assert not (dest / "linkdir").is_symlink()
    assert (dest / "linkdir" / "x").read_text() == "3"
    assert list((area / "outside").iterdir()) == []
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tar.bz2", "tar.zst"])
def test_truncated_archive_is_an_integrity_error(area: Path, fmt: str) -> None:
    data = compress(_tar([_file("big", os.urandom(200_000))]), fmt)
    archive = _write(area, data[: len(data) // 2])
    with pytest.raises(IntegrityError):
        extract(archive, area / "dest" / "3")
    _assert_untouched(area)


async def test_unpack_runs_in_a_thread_and_tags_the_job(area: Path) -> None:
    archive = _write(area, _tar([_file("../evil")]))
    with pytest.raises(UnsafeArchiveError) as info:
        await unpack(archive, area / "dest" / "99", job_id=99)
    assert info.value.job_id == 99
    files = await unpack(_write(area, _tar([_file("a", b"abc")]), "ok.tar"), area / "dest" / "98")
    assert [(f.name, f.size) for f in files] == [("a", 3)]


def test_hardlink_bomb_counted_by_real_bytes(area: Path) -> None:
    # Hard link headers say size 0; each one would copy 1 MiB. Only the running count sees it.
    links = [_special(f"l{i}", tarfile.LNKTYPE, "big") for i in range(64)]
    archive = _write(area, _tar([_file("big", b"\0" * MiB), *links]))
    with pytest.raises(UnsafeArchiveError, match="archive bomb"):
        extract(archive, area / "dest" / "5", limits=UnpackLimits(max_bytes=32 * MiB))
    _assert_untouched(area)


def _pieces(data: bytes, size: int) -> ChunkSource:
    chunks = iter([data[i : i + size] for i in range(0, len(data), size)])
    return lambda: next(chunks, b"")


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tar.zst"])
@pytest.mark.parametrize("piece", [1, 511, 512, 4096, 65536])
def test_streamed_in_pieces_of_any_size(area: Path, fmt: str, piece: int) -> None:
    # Piece boundaries anywhere (inside headers, on block edges, mid-member): same content.
    long_name = "deep/" + "n" * 150 + "/leaf.txt"  # a PAX extended header
    contents = {
        "empty": b"",
        "block": os.urandom(512),
        "odd": os.urandom(1000),
        long_name: os.urandom(70_000),
        "two-blocks": os.urandom(1024),
    }
    raw = _tar([_file(name, data) for name, data in contents.items()])
    _extract_and_check(area, _pieces(compress(raw, fmt), piece), contents)


def _extract_and_check(area: Path, source: Any, contents: dict[str, bytes]) -> None:
    """Extract ``source`` (pieces or a file) into ``area/dest/7``: exactly ``contents``."""
    job = Extraction(area / "dest" / "7")
    try:
        files = job.run(source)
        job.install()
    finally:
        job.discard()
    assert [(f.name, f.size) for f in files] == [(n, len(d)) for n, d in contents.items()]
    for name, data in contents.items():
        assert (area / "dest" / "7" / name).read_bytes() == data


@pytest.mark.parametrize("cut", [100, 512 + 300, 512 + 1000])
def test_streamed_archive_cut_short_is_an_integrity_error(area: Path, cut: int) -> None:
    raw = _tar([_file("a.bin", os.urandom(2000)), _file("b.bin", os.urandom(10))])
    job = Extraction(area / "dest" / "7")
    try:
        with pytest.raises(IntegrityError):
            job.run(_pieces(raw[:cut], 64))
    finally:
        job.discard()
    assert not (area / "dest" / "7").exists()


def _views_of_one_buffer(data: bytes, size: int) -> ChunkSource:
    """Pieces that are views of a single buffer, overwritten (with junk first) by every call."""
    buffer = bytearray(size)
    at = 0

    def piece() -> memoryview:
        nonlocal at
        buffer[:] = b"\xff" * size  # anything kept from the last piece is now garbage
        n = len(data[at : at + size])
        buffer[:n] = data[at : at + n]
        at += n
        return memoryview(buffer)[:n]

    return piece


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst"])
@pytest.mark.parametrize("piece", [700, 65536])
def test_pieces_may_be_views_of_a_reused_buffer(area: Path, fmt: str, piece: int) -> None:
    # The ChunkSource contract: a piece is used before the next call. The decompressed stream
    # relies on it too (read into one buffer per thread), so every format is checked.
    contents = {"a.bin": os.urandom(3 * piece + 5), "deep/" + "n" * 120: os.urandom(900)}
    raw = _tar([_file(name, data) for name, data in contents.items()])
    _extract_and_check(area, _views_of_one_buffer(compress(raw, fmt), piece), contents)


class _ReadOnly:
    """A binary stream with read() only (no readinto), as some file-like objects are."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(n)


@pytest.mark.parametrize("fmt", ["tar", "tar.zst"])
@pytest.mark.parametrize("readinto", [True, False])
def test_archive_files_with_or_without_readinto(area: Path, fmt: str, readinto: bool) -> None:
    data = os.urandom(3 * MiB + 17)  # several of the reader's pieces
    archive = compress(_tar([_file("big.bin", data)]), fmt)
    raw: Any = io.BytesIO(archive) if readinto else _ReadOnly(archive)
    _extract_and_check(area, raw, {"big.bin": data})


def test_scratch_buffers_are_per_thread_and_reused() -> None:
    import threading

    from aiodirac._engine.download._unpack import _scratch

    first = _scratch("test", 1000)
    again = _scratch("test", 500)
    assert len(first) == 1000
    assert len(again) == 500
    assert again.obj is first.obj  # reused, not reallocated
    assert _scratch("other", 10).obj is not first.obj
    elsewhere: list[object] = []
    thread = threading.Thread(target=lambda: elsewhere.append(_scratch("test", 1000).obj))
    thread.start()
    thread.join()
    assert elsewhere[0] is not first.obj


@pytest.mark.parametrize("name", ["x" * 300, "/".join(["d" * 250] * 20) + "/f"])
def test_name_too_long_for_the_file_system_is_unsafe(area: Path, name: str) -> None:
    # Not "corrupt" (which a download retries): the same archive would fail the same way.
    archive = _write(area, _tar([_file("ok.txt"), _file(name)]))
    with pytest.raises(UnsafeArchiveError, match="too long"):
        extract(archive, area / "dest" / "12")
    _assert_untouched(area)
