"""Input sandbox storage at submit time and output sandbox packing."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from _localjobs import chunk_of, concrete

from aiodirac import InvalidRequestError
from aiodirac.backends.local import pack_output_sandbox
from aiodirac.backends.local._sandbox import resolve_output_files, store_input_sandbox


def _workdir(tmp_path: Path) -> Path:
    work = tmp_path / "w"
    (work / "outdir" / "sub").mkdir(parents=True)
    (work / "outdir" / "sub" / "deep.txt").write_text("deep")
    (work / "result_1.txt").write_text("r1")
    (work / "result_2.txt").write_text("r2")
    (work / "std.out").write_text("out")
    (work / "std.err").write_text("")
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (work / "link_out.txt").symlink_to(secret)
    return work


def test_patterns_files_folders_and_missing(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    job = concrete(
        ("/bin/true", ""),
        outputs=(
            "result_*.txt",
            "outdir",
            "link_out.txt",
            "absent.txt",
            "nothing_*",
            "/etc/passwd",
            "../w/std.out",
        ),
    )
    found = resolve_output_files(job, work)
    assert found.files == ("result_1.txt", "result_2.txt", "std.err", "std.out")
    assert found.folders == ("outdir",)
    # a link leading outside the working folder and an absolute path count as missing
    assert set(found.missing) == {"link_out.txt", "absent.txt", "/etc/passwd", "Script1_true.log"}


def test_archive_is_deterministic_and_safe(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    job = concrete(("/bin/true", ""), outputs=("result_*.txt", "outdir"))
    first = pack_output_sandbox(job, work, tmp_path / "a")
    second = pack_output_sandbox(job, work, tmp_path / "b")
    assert first is not None
    assert second is not None
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first, "r:bz2") as tar:
        names = tar.getnames()
        assert names == sorted(names)
        assert names == ["outdir.tar", "result_1.txt", "result_2.txt", "std.err", "std.out"]
        for member in tar.getmembers():
            assert member.uid == member.gid == 0
            assert member.uname == member.gname == ""
            assert member.isfile()
        inner = tar.extractfile("outdir.tar")
        assert inner is not None
        with tarfile.open(fileobj=inner) as folder:
            assert "outdir/sub/deep.txt" in folder.getnames()


def test_nothing_matched_means_no_sandbox(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    job = concrete(("/bin/true", ""), OutputSandbox=("nothing.txt",))
    assert pack_output_sandbox(job, tmp_path / "w", tmp_path / "out") is None
    assert not (tmp_path / "out").exists()


def test_store_copies_inputs_and_the_workflow(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("in")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "f.txt").write_text("f")
    job = concrete(("/bin/true", ""), inputs=(str(tmp_path / "in.txt"), str(tmp_path / "folder")))
    dest = tmp_path / "store" / "1"
    store_input_sandbox(chunk_of(job, local=(str(tmp_path / "in.txt"),)), dest)
    assert sorted(os.listdir(dest)) == ["folder", "in.txt", "jobDescription.xml"]
    assert (dest / "folder" / "f.txt").read_text() == "f"
    assert (dest / "jobDescription.xml").read_text() == "<Workflow/>\n"


@pytest.mark.parametrize(
    "attributes",
    [
        {"InputSandbox": ("LFN:/vo/user/file.txt",)},
        {"InputSandbox": ("lfn:/vo/user/file.txt",)},
        {"InputData": ("LFN:/vo/data/file.root",)},
    ],
)
def test_grid_inputs_are_refused(tmp_path: Path, attributes: dict[str, tuple[str, ...]]) -> None:
    job = concrete(("/bin/true", ""), **attributes)
    with pytest.raises(InvalidRequestError, match="LFN"):
        store_input_sandbox(chunk_of(job), tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_missing_and_clashing_inputs_are_refused(tmp_path: Path) -> None:
    job = concrete(("/bin/true", ""), inputs=(str(tmp_path / "absent.txt"),))
    with pytest.raises(InvalidRequestError, match=r"absent\.txt"):
        store_input_sandbox(chunk_of(job), tmp_path / "s")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.txt").write_text("a")
    (tmp_path / "b" / "x.txt").write_text("b")
    job = concrete(("/bin/true", ""), inputs=(str(tmp_path / "a/x.txt"), str(tmp_path / "b/x.txt")))
    with pytest.raises(InvalidRequestError, match=r"x\.txt"):
        store_input_sandbox(chunk_of(job), tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_folder_is_packed_in_bounded_memory(tmp_path: Path) -> None:
    # A 256 MiB (sparse) file inside a folder named in the OutputSandbox: the folder's tar is
    # streamed to disk, so the packing process's peak memory stays far below the file's size
    # (it was above it: the tar was built in memory).
    import subprocess
    import sys

    work = tmp_path / "w"
    (work / "outdir").mkdir(parents=True)
    size = 256 << 20
    with (work / "outdir" / "big.bin").open("wb") as big:
        big.truncate(size)
    (work / "std.out").write_text("out")
    # VmHWM, this process's own peak (ru_maxrss would count the forking pytest's, kept by exec).
    script = f"""
import re, sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from _localjobs import concrete
from aiodirac.backends.local import pack_output_sandbox
job = concrete(("/bin/true", ""), outputs=("outdir", "std.out"))
archive = pack_output_sandbox(job, Path({str(work)!r}), Path({str(tmp_path / "out")!r}))
status = Path("/proc/self/status").read_text()
print(archive, int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024)
"""
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, check=True
    )
    archive, peak = run.stdout.split()
    assert int(peak) < 128 << 20, f"peak RSS {int(peak) >> 20} MiB packing a {size >> 20} MiB file"
    with tarfile.open(archive, "r:bz2") as tar:
        assert tar.getnames() == ["outdir.tar", "std.out"]
        assert tar.getmember("outdir.tar").size > size
    # nothing left beside the archive
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [Path(archive).name]


def test_owner_permission_bits_survive_pack_and_unpack(tmp_path: Path) -> None:
    from aiodirac._engine.download._unpack import extract

    work = tmp_path / "w"
    work.mkdir()
    modes = {"key.pem": 0o600, "run.sh": 0o700, "setuid": 0o4755, "open.txt": 0o666, "x": 0o644}
    for name, mode in modes.items():
        (work / name).write_text(name)
        os.chmod(work / name, mode)
    job = concrete(("/bin/true", ""), outputs=tuple(modes))
    archive = pack_output_sandbox(job, work, tmp_path / "out")
    assert archive is not None
    old = os.umask(0o022)
    try:
        extract(archive, tmp_path / "job")
    finally:
        os.umask(old)
    got = {name: (tmp_path / "job" / name).stat().st_mode & 0o7777 for name in modes}
    # the owner's bits kept; never set-ID, never write for others
    assert got == {
        "key.pem": 0o600,
        "run.sh": 0o700,
        "setuid": 0o755,
        "open.txt": 0o644,
        "x": 0o644,
    }
