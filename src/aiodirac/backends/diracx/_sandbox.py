"""Input sandboxes for DiracX: a deterministic archive, uploaded once per content.

DiracX stores sandboxes by content (``.../sha256:<hex>.tar.bz2``) and answers ``url: null`` for
one it already holds, so the same inputs must give the same bytes: entries are sorted, and every
member has a fixed mtime, owner and mode (0755 when the file is executable, 0644 otherwise).
``bz2`` holds no timestamp, unlike gzip. Symbolic links are followed (their target's content is
stored), so an archive never holds a link that could point outside the job's folder.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiodirac._exceptions import JobDescriptionError

__all__ = [
    "MAX_SANDBOX_BYTES",
    "SANDBOX_FORMAT",
    "WORKFLOW_NAME",
    "SandboxArchive",
    "build_input_sandbox",
    "sandbox_signature",
]

#: DiracX 0.7.0 refuses sandboxes over 100 MiB.
MAX_SANDBOX_BYTES = 100 * 1024 * 1024
SANDBOX_FORMAT = "tar.bz2"
WORKFLOW_NAME = "jobDescription.xml"
_MTIME = 0
_COMPRESS_LEVEL = 9


@dataclass(frozen=True, slots=True)
class SandboxArchive:
    """A packed input sandbox.

    Attributes:
        data: the archive bytes.
        sha256: their checksum (hex).
        format: DiracX's name of the format (``tar.bz2``).

    Usage: ``archive = build_input_sandbox(paths, xml); len(archive.data)``
    """

    data: bytes
    sha256: str
    format: str = SANDBOX_FORMAT

    @property
    def size(self) -> int:
        """The archive's size in bytes."""
        return len(self.data)

    def __repr__(self) -> str:
        return f"SandboxArchive(sha256={self.sha256!r}, size={self.size})"


def _entries(paths: Sequence[str]) -> Iterator[tuple[str, Path]]:
    """(archive name, local path) of every file and folder, top-level names from basenames."""
    seen: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        if not path.is_absolute():
            raise JobDescriptionError(
                f"input sandbox entry {raw!r} must be an absolute path",
                attribute="InputSandbox",
                value=raw,
            )
        if not path.exists():
            raise JobDescriptionError(
                f"input sandbox entry {raw!r} does not exist",
                attribute="InputSandbox",
                value=raw,
            )
        name = path.name
        if name == WORKFLOW_NAME:
            raise JobDescriptionError(
                f"input sandbox entry {raw!r} would replace the job's own {WORKFLOW_NAME}",
                attribute="InputSandbox",
                value=raw,
            )
        if name in seen:
            raise JobDescriptionError(
                f"input sandbox entries {seen[name]!r} and {raw!r} have the same name {name!r}",
                attribute="InputSandbox",
                value=raw,
            )
        seen[name] = raw
        yield name, path
        if path.is_dir():
            yield from _walk(name, path, {path.resolve()})


def _walk(prefix: str, folder: Path, visiting: set[Path]) -> Iterator[tuple[str, Path]]:
    for child in sorted(os.listdir(folder)):
        path = folder / child
        name = f"{prefix}/{child}"
        if path.is_dir():
            real = path.resolve()
            if real in visiting:
                raise JobDescriptionError(
                    f"input sandbox folder {str(path)!r} links back to itself",
                    attribute="InputSandbox",
                    value=str(path),
                )
            yield name, path
            yield from _walk(name, path, visiting | {real})
        elif path.is_file():
            yield name, path
        # dangling links, sockets, devices: nothing a job can use, left out


def _member(name: str, mode: int, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = size
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = mode
    return info


def build_input_sandbox(paths: Sequence[str], workflow_xml: str) -> SandboxArchive:
    """Pack local files and folders plus ``jobDescription.xml`` into a deterministic tar.bz2.

    Blocking (reads files, compresses): call it in a worker thread.

    Args:
        paths: absolute paths of files and folders; each lands at the archive's top level
            under its base name, folders recursively.
        workflow_xml: the job's ``jobDescription.xml``.

    Raises:
        JobDescriptionError: a path is relative, missing, or two entries share a name.

    Usage: ``archive = build_input_sandbox(["/home/me/run.sh"], workflow_xml)``
    """
    members: list[tuple[str, Path | None]] = [(WORKFLOW_NAME, None)]
    members.extend(_entries(paths))
    members.sort(key=lambda item: item[0])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in members:
            if path is None:
                data = workflow_xml.encode("utf-8")
                tar.addfile(_member(name, 0o644, size=len(data)), io.BytesIO(data))
                continue
            st = path.stat()
            if stat.S_ISDIR(st.st_mode):
                tar.addfile(_member(name, 0o755, directory=True))
                continue
            mode = 0o755 if st.st_mode & 0o111 else 0o644
            with path.open("rb") as handle:
                tar.addfile(_member(name, mode, size=st.st_size), handle)
    data = bz2.compress(raw.getvalue(), _COMPRESS_LEVEL)
    if len(data) > MAX_SANDBOX_BYTES:
        raise JobDescriptionError(
            f"the input sandbox is {len(data)} bytes packed, over DiracX's limit of "
            f"{MAX_SANDBOX_BYTES} bytes: put large inputs on grid storage (InputData)",
            attribute="InputSandbox",
        )
    return SandboxArchive(data, hashlib.sha256(data).hexdigest())


def sandbox_signature(paths: Sequence[str], workflow_xml: str) -> tuple[object, ...]:
    """A cheap key that changes when the archive would: names, sizes, mtimes, modes, the XML.

    Blocking (stats files): call it in a worker thread.

    Usage: ``cache[sandbox_signature(paths, xml)]``
    """
    parts: list[object] = [hashlib.sha256(workflow_xml.encode("utf-8")).hexdigest()]
    for name, path in _entries(paths):
        st = path.stat()
        parts.append((name, str(path), st.st_size, st.st_mtime_ns, st.st_mode, st.st_ino))
    return tuple(parts)
