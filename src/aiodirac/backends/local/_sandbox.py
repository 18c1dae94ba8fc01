"""Input sandboxes in, output sandboxes out, the way DIRAC's job wrapper handles them.

At submit time the local files and folders of a chunk's input sandbox are copied into the state
folder (:func:`store_input_sandbox`), so a job still runs when its files have changed or gone.
When the job starts, every InputSandbox entry is staged into its working folder by its base name
(:func:`stage_input_sandbox`): files are copied, folders copied whole, and a file that is a tar
archive (``tarfile.is_tarfile``, whatever its name: ``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``)
is also unpacked next to itself, as ``JobWrapper.transferInputSandbox`` does. DIRAC does not unpack
zip files, and neither do we. When the job is over, the OutputSandbox patterns are globbed in the
working folder and packed into one deterministic ``tar.bz2`` (:func:`pack_output_sandbox`); a
folder that matches is packed as ``<folder>.tar``, as DIRAC's wrapper does.
"""

from __future__ import annotations

import bz2
import errno
import glob
import hashlib
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aiodirac._exceptions import InvalidRequestError
from aiodirac._job._spec import ConcreteJob, SubmitChunk

__all__ = [
    "INPUT_ARCHIVE_SUFFIX",
    "WORKFLOW_FILE",
    "OutputFiles",
    "StagingError",
    "file_digest",
    "pack_files",
    "pack_output_sandbox",
    "resolve_output_files",
    "stage_input_sandbox",
    "store_input_sandbox",
]

#: The workflow file DIRAC's worker nodes run; always part of the input sandbox.
WORKFLOW_FILE = "jobDescription.xml"

#: Beside a stored input sandbox folder ``<name>``, its archive ``<name>.tar.bz2``.
INPUT_ARCHIVE_SUFFIX = ".tar.bz2"

_COMPRESS_LEVEL = 9
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class StagingError(Exception):
    """An input sandbox entry could not be staged into a job's working folder.

    Usage: ``except StagingError as exc: print(exc)``
    """


def _is_grid_entry(entry: str) -> bool:
    return entry[:4].upper() == "LFN:"


def _entry_name(entry: str) -> str:
    return os.path.basename(entry.rstrip("/"))


def _local_entries(chunk: SubmitChunk, cwd: Path) -> dict[str, Path]:
    """Every local input of the chunk by the name it is staged under, refusing grid inputs."""
    grid: list[str] = []
    for job in chunk.jobs:
        grid.extend(e for e in job.strings("InputSandbox") if _is_grid_entry(e))
        grid.extend(job.strings("InputData"))
    grid.extend(e for e in _strings(chunk.attributes.get("InputSandbox")) if _is_grid_entry(e))
    if grid:
        shown = ", ".join(sorted(set(grid))[:5])
        raise InvalidRequestError(
            f"the local backend cannot fetch grid files (LFN inputs need a DIRAC file catalogue): "
            f"{shown}; copy them locally and put the local paths in the input sandbox, or submit "
            "to DiracX"
        )
    wanted: list[str] = list(chunk.local_sandbox)
    for job in chunk.jobs:
        wanted.extend(job.strings("InputSandbox"))
    entries: dict[str, Path] = {}
    missing: list[str] = []
    for entry in wanted:
        name = _entry_name(entry)
        if not name or name == WORKFLOW_FILE or entry.startswith("SB:"):
            continue
        path = Path(entry) if os.path.isabs(entry) else cwd / entry
        if name in entries:
            if entries[name] != path and not os.path.isabs(entry):
                continue  # a bare name that an absolute entry already provides
            if entries[name] != path:
                raise InvalidRequestError(
                    f"two input sandbox entries are both staged as {name!r}: "
                    f"{entries[name]} and {path}; rename one of them"
                )
            continue
        if not path.exists():
            missing.append(str(path))
            continue
        entries[name] = path
    if missing:
        raise InvalidRequestError(
            "input sandbox files not found: " + ", ".join(sorted(set(missing))),
        )
    return entries


def _strings(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, tuple):
        return tuple(str(v) for v in value)
    return (str(value),)


def store_input_sandbox(chunk: SubmitChunk, dest: Path, *, cwd: Path | None = None) -> None:
    """Copy a chunk's local input sandbox and its workflow into ``dest`` (created here).

    Everything is checked before anything is copied; the copy goes to a temporary folder that is
    renamed into place, so ``dest`` either holds the whole sandbox or does not exist.

    Raises:
        InvalidRequestError: a grid (``LFN:``) input, a missing file, or two entries with one name.
        OSError: the state folder cannot be written.

    Usage: ``store_input_sandbox(chunk, home / "sandboxes" / "17")``
    """
    entries = _local_entries(chunk, cwd or Path.cwd())
    partial = dest.with_name(f".{dest.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        for name, path in entries.items():
            target = partial / name
            if path.is_dir():
                shutil.copytree(path, target, symlinks=True)
            else:
                shutil.copy2(path, target)
        (partial / WORKFLOW_FILE).write_text(chunk.workflow_xml, encoding="utf-8")
        os.replace(partial, dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def stage_input_sandbox(job: ConcreteJob, workdir: Path, inputs: Path | None) -> list[str]:
    """Stage a job's InputSandbox from ``inputs`` into ``workdir``, as DIRAC's wrapper does.

    Each entry is looked up in ``inputs`` by its base name; an entry whose name already exists in
    the working folder is skipped. Tar archives are unpacked into the working folder (members that
    would land outside it are refused). ``jobDescription.xml`` is always staged when present.

    Returns:
        The names staged.

    Raises:
        StagingError: an entry is missing from ``inputs`` or an archive cannot be unpacked.

    Usage: ``stage_input_sandbox(job, Path("work/7"), Path("sandboxes/3"))``
    """
    names: list[str] = []
    for entry in (*job.strings("InputSandbox"), WORKFLOW_FILE):
        if entry.startswith("SB:") or _is_grid_entry(entry):
            raise StagingError(f"cannot stage {entry!r}: not a local input sandbox entry")
        name = _entry_name(entry)
        if name and name not in names:
            names.append(name)
    staged: list[str] = []
    for name in names:
        target = workdir / name
        if target.exists() or target.is_symlink():
            continue
        source = inputs / name if inputs is not None else None
        if source is None or not (source.exists() or source.is_symlink()):
            if name == WORKFLOW_FILE:
                continue
            raise StagingError(f"Can not copy InputSandbox file {name}: not in the stored sandbox")
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True)
        else:
            # DIRAC's shutil.copy: content and permission bits (not times or xattrs)
            shutil.copyfile(source, target, follow_symlinks=False)
            if not target.is_symlink():
                shutil.copymode(source, target)
                if _may_be_tar(target) and tarfile.is_tarfile(target):
                    _unpack(target, workdir)
        staged.append(name)
    return staged


_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def _may_be_tar(path: Path) -> bool:
    """A cheap look at the first bytes before ``tarfile.is_tarfile`` opens the file four times."""
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    if head.startswith(_COMPRESSED_MAGIC):
        return True
    # an uncompressed tar: a 512-byte header whose checksum field holds octal digits
    return len(head) == 512 and head[148:154].strip(b" \0").isdigit()


def _unpack(archive: Path, workdir: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(workdir, filter="data")
    except tarfile.TarError as exc:
        raise StagingError(f"Could not untar {archive.name}: {exc}") from exc
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise
        raise StagingError(f"Could not untar {archive.name}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class OutputFiles:
    """What the OutputSandbox patterns matched in a working folder.

    Attributes:
        files: relative paths of regular files to pack, sorted.
        folders: relative paths of folders, packed as ``<folder>.tar``.
        missing: patterns without a wildcard that matched nothing (DIRAC's
            ``OutputSandboxMissingFiles``).

    Usage: ``resolve_output_files(job, workdir).missing``
    """

    files: tuple[str, ...]
    folders: tuple[str, ...]
    missing: tuple[str, ...]


def resolve_output_files(job: ConcreteJob, workdir: Path) -> OutputFiles:
    """Glob the job's OutputSandbox patterns in ``workdir``.

    Only what lies inside the working folder counts: absolute patterns, ``..`` and symbolic links
    that lead outside are ignored, and only regular files and folders are packed.

    Usage: ``resolve_output_files(job, Path("work/7"))``
    """
    root = os.path.realpath(workdir)
    files: set[str] = set()
    folders: set[str] = set()
    missing: list[str] = []
    for pattern in job.strings("OutputSandbox"):
        matched = False
        if pattern and not os.path.isabs(pattern) and not _is_grid_entry(pattern):
            for rel in glob.glob(pattern, root_dir=root):
                key = os.path.relpath(os.path.normpath(os.path.join(root, rel)), root)
                kind = _inside(root, key)
                if kind == "dir":
                    folders.add(key)
                    matched = True
                elif kind == "file":
                    files.add(key)
                    matched = True
        if not matched and not glob.has_magic(pattern) and pattern not in missing:
            missing.append(pattern)
    return OutputFiles(tuple(sorted(files)), tuple(sorted(folders)), tuple(missing))


def _inside(root: str, key: str) -> str:
    """``"file"``/``"dir"`` when ``root/key`` is one and really lies inside ``root``, else ``""``."""
    if key.startswith("..") or key == ".":
        return ""
    path = os.path.join(root, key)
    try:
        st = os.lstat(path)
    except OSError:
        return ""
    if os.sep in key or stat.S_ISLNK(st.st_mode):
        # a link, or a path through folders that may be links: look where it really leads
        real = os.path.realpath(path)
        if real == root or not real.startswith(root + os.sep):
            return ""
        try:
            st = os.stat(real)
        except OSError:
            return ""
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "file" if stat.S_ISREG(st.st_mode) else ""


#: The permission bits a packed file keeps: its owner's, and read/execute for the others; never
#: set-user-ID, set-group-ID, sticky, or write for anyone but the owner (a private key made
#: ``0600`` by the job stays ``0600``).
KEPT_MODE = 0o755


def _tarinfo(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = st.st_size
    info.mtime = int(st.st_mtime)
    info.mode = stat.S_IMODE(st.st_mode) & KEPT_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> None:
    with path.open("rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            return
        tar.addfile(_tarinfo(name, st), handle)


def _folder_tar(folder: Path, root: Path, out: Path) -> None:
    """Write a plain tar of ``folder`` (paths relative to ``root``), sorted and owner-free, to
    the file ``out``: streamed, whatever the folder's size (never built in memory)."""
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk_sorted(folder):
            rel = path.relative_to(root).as_posix()
            real = path.resolve()
            if not real.is_relative_to(root):
                continue
            if path.is_dir() and not path.is_symlink():
                info = _tarinfo(rel, path.stat())
                info.type = tarfile.DIRTYPE
                info.size = 0
                info.mode = 0o755
                tar.addfile(info)
            elif real.is_file():
                _add_file(tar, real, rel)


def _walk_sorted(folder: Path) -> Iterable[Path]:
    yield folder
    try:
        children = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError:
        return
    for child in children:
        if child.is_dir() and not child.is_symlink():
            yield from _walk_sorted(child)
        else:
            yield child


def pack_output_sandbox(
    job: ConcreteJob,
    workdir: Path,
    dest_dir: Path,
    *,
    name: str = "output_sandbox.tar.bz2",
) -> Path | None:
    """Pack the files matching the job's OutputSandbox patterns into ``dest_dir/name``.

    The archive is deterministic for a given working folder: members sorted by name, no owner
    names, uid/gid 0; it appears atomically (written under a temporary name, then renamed).

    Returns:
        The archive path, or ``None`` when no pattern matched anything (no output sandbox).

    Raises:
        OSError: the archive could not be written (``ENOSPC`` when the disk is full).

    Usage: ``pack_output_sandbox(job, Path("work/7"), Path("output"))``
    """
    found = resolve_output_files(job, workdir)
    return pack_files(workdir, found.files, found.folders, dest_dir / name)


def pack_files(
    workdir: Path, files: Sequence[str], folders: Sequence[str], archive: Path
) -> Path | None:
    """Pack ``files`` and ``folders`` (relative to ``workdir``) into ``archive`` (tar.bz2).

    Usage: ``pack_files(workdir, ["std.out"], [], Path("out.tar.bz2"))``
    """
    if not files and not folders:
        return None
    root = workdir.resolve()
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f".{archive.name}.partial")
    # A folder goes in as a tar of its own (as DIRAC does), written to a scratch file first.
    scratch = archive.with_name(f".{archive.name}.folders.partial")
    members: list[tuple[str, Path, bool]] = [(f, root / f, False) for f in files]
    try:
        if folders:
            scratch.mkdir(exist_ok=True)
        for n, d in enumerate(folders):
            nested = scratch / f"{n}.tar"
            _folder_tar(root / d, root, nested)
            members.append((f"{d}.tar", nested, True))
        members.sort(key=lambda m: m[0])
        with (
            bz2.open(partial, "wb", compresslevel=_COMPRESS_LEVEL) as raw,
            tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            seen: set[str] = set()
            for member, source, folder_tar in members:
                arcname = PurePosixPath(member).as_posix()
                if arcname in seen:
                    continue
                seen.add(arcname)
                if folder_tar:
                    with source.open("rb") as handle:
                        info = tarfile.TarInfo(arcname)
                        info.size = os.fstat(handle.fileno()).st_size
                        info.mode = 0o644
                        tar.addfile(info, handle)
                else:
                    _add_file(tar, source, arcname)
        os.replace(partial, archive)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return archive


def file_digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 (hex) of a file.

    Usage: ``size, sha = file_digest(Path("out.tar.bz2"))``
    """
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
