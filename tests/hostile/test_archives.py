"""Hostile archives served as output sandboxes (gz, bz2 and zst), fetched through DiracXBackend by
the downloader and both facades: each is refused whole with one typed error (``S_ERROR`` from
the blocking facade), nothing lands outside the job folder, nothing partial is left, and a
refused archive is fetched once (never retried as if the network had failed)."""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from pathlib import Path

import pytest
from _archives import HOSTILE, compress, member, special, tar_of, zstd_bomb
from _checks import assert_contained, assert_no_token
from _server import TOKEN, FakeDiracX, FakeJob, HostileServer

from aiodirac import (
    AsyncDirac,
    Dirac,
    DownloadConfig,
    IntegrityError,
    Limits,
    RetryPolicy,
    SandboxTooLargeError,
    UnsafeArchiveError,
)

MiB = 1 << 20
FORMATS = ["tar.gz", "tar.bz2", "tar.zst"]
QUICK = Limits(retry=RetryPolicy(deadline=1.0, initial=0.05, max_backoff=0.1))
CONFIG = DownloadConfig(
    retry=QUICK.retry, processes=0, max_unpacked_bytes=64 * MiB, max_members=1000
)

EXTRA: dict[str, list[tuple[tarfile.TarInfo, bytes | None]]] = {
    "control-character-name": [member("std\x1b[2J.out"), member("STD\x1b[2j.OUT")],
    "many-members": [member(f"f{i}") for i in range(1001)],
    "name-too-long": [member("x" * 300)],
}


def _served(fake: FakeDiracX, data: bytes, fmt: str, job_id: int = 7) -> None:
    sha = hashlib.sha256(data).hexdigest()
    fake.jobs[job_id] = FakeJob(job_id, sandbox=data, sandbox_sha256=sha, sandbox_format=fmt)


def _fetches(server: HostileServer, job_id: int = 7) -> int:
    return [r.path for r in server.requests].count(f"/sandbox-store/{job_id}")


async def _download(server: HostileServer, out: Path, job_id: int = 7):
    async with AsyncDirac(
        "diracx", url=server.url, token=TOKEN, limits=QUICK, download_config=CONFIG
    ) as dirac:
        (result,) = await dirac.download([job_id], out)
    return result


@pytest.fixture
def area(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    return tmp_path


def _untouched(area: Path) -> None:
    assert list((area / "outside").iterdir()) == []
    assert not Path("/tmp/aiodirac-evil").exists()
    assert_contained(area / "out")
    assert not (area / "out" / "7").exists()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(HOSTILE) + sorted(EXTRA))
async def test_hostile_archive_refused_once(
    fake: FakeDiracX, server: HostileServer, area: Path, case: str, fmt: str, logs
) -> None:
    members = HOSTILE.get(case) or EXTRA[case]
    _served(fake, compress(tar_of([member("ok.txt", b"fine"), *members]), fmt), fmt)
    result = await _download(server, area / "out")
    assert not result.ok
    assert isinstance(result.exception, UnsafeArchiveError), result.exception
    assert _fetches(server) == 1, "a refused archive was fetched again"
    _untouched(area)
    assert_no_token(result.error, logs.text)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("cut", ["truncated", "corrupt"])
async def test_corrupt_or_truncated(
    fake: FakeDiracX, server: HostileServer, area: Path, fmt: str, cut: str
) -> None:
    data = compress(tar_of([member("a.bin", os.urandom(200_000))]), fmt)
    if cut == "truncated":
        data = data[: len(data) // 2]
    else:
        data = data[:100] + bytes(b ^ 0x5A for b in data[100:400]) + data[400:]
    _served(fake, data, fmt)  # the checksum matches these very bytes: the archive itself is bad
    result = await _download(server, area / "out")
    assert not result.ok
    assert isinstance(result.exception, IntegrityError | UnsafeArchiveError), result.exception
    _untouched(area)


async def test_zstd_bomb(fake: FakeDiracX, server: HostileServer, area: Path) -> None:
    # A few hundred KiB that expand to 10 GiB: stopped at the 64 MiB cap.
    _served(fake, zstd_bomb(10 << 30), "tar.zst")
    result = await _download(server, area / "out")
    assert isinstance(result.exception, SandboxTooLargeError)
    assert _fetches(server) == 1
    _untouched(area)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_setuid_bits_dropped_owner_bits_kept(
    fake: FakeDiracX, server: HostileServer, area: Path, fmt: str
) -> None:
    members = [
        member("suid", b"x", mode=0o4755),
        member("sgid-sticky", b"x", mode=0o3775),
        member("key.pem", b"secret", mode=0o600),
        member("world-writable", b"x", mode=0o666),
        special("dir", tarfile.DIRTYPE),
    ]
    _served(fake, compress(tar_of(members), fmt), fmt)
    result = await _download(server, area / "out")
    assert result.ok, result.error
    job = area / "out" / "7"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in job.iterdir() if p.is_file()}
    assert modes["key.pem"] == 0o600
    assert not any(mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX) for mode in modes.values())
    assert not any(mode & stat.S_IWOTH for mode in modes.values())
    assert_contained(area / "out", job)


def test_blocking_facade_s_error(
    fake: FakeDiracX,
    server: HostileServer,
    area: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(area)
    _served(fake, compress(tar_of(HOSTILE["dotdot"]), "tar.bz2"), "tar.bz2")
    with Dirac(
        backend="diracx", url=server.url, token=TOKEN, limits=QUICK, download_config=CONFIG
    ) as dirac:
        result = dirac.getOutputSandbox(7)
    assert result["OK"] is False
    assert ".." in result["Message"]
    assert not (area / "7").exists()
    assert list((area / "outside").iterdir()) == []
    assert_no_token(result, caplog.text)
