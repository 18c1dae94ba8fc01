"""The one small async file layer of aiodirac.

Every file the engine writes goes through here, so that the rules live in one place:

* I/O runs in worker threads, never on the event loop: ``aiofiles`` when the loop is asyncio,
  anyio's thread-backed files otherwise (trio).
* Whole files appear atomically: content is written under a hidden temporary name beside its final
  name (:func:`part_path`), then moved with ``os.replace`` (:func:`commit`), so nothing is ever
  visible under a final name before it is complete.
* Durability is a policy, not an accident: with ``fsync=True`` the file is flushed to stable storage
  before the rename and the folder after it, so a power loss cannot leave a renamed-but-empty file.
  Without it, a killed *process* still never leaves partial content (the kernel keeps what was
  written); only a machine crash could.

Usage::

    async with await open_writer(part_path(final)) as out:
        await out.write(b"data")
        await out.sync()
    await commit(part_path(final), final, fsync=True)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import aiofiles
import anyio

from aiodirac._resource import AsyncResource

__all__ = [
    "AsyncWriter",
    "commit",
    "fsync_dir",
    "iter_file",
    "open_writer",
    "part_path",
    "remove",
]


def _on_asyncio() -> bool:
    # trio depends on sniffio, so without sniffio the loop can only be asyncio.
    try:
        import sniffio
    except ImportError:
        return True
    try:
        return sniffio.current_async_library() == "asyncio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


async def _close(file: Any) -> None:
    # anyio's AsyncFile closes with aclose(); aiofiles' files with an awaitable close().
    if isinstance(file, anyio.AsyncFile):
        await file.aclose()
    else:
        await file.close()


class AsyncWriter(AsyncResource):
    """A binary file open for writing, whose blocking calls run in a worker thread.

    Obtain one with :func:`open_writer`; use it as an async context manager or call :meth:`aclose`.

    Usage: ``async with await open_writer(path) as out: await out.write(chunk)``
    """

    __slots__ = ("_file", "_path", "_written")

    def __init__(self, file: Any, path: Path, written: int) -> None:
        # ``file`` is an aiofiles or anyio async file: both offer awaitable write/flush/close.
        self._file = file
        self._path = path
        self._written = written

    @property
    def path(self) -> Path:
        """The file being written."""
        return self._path

    @property
    def size(self) -> int:
        """Bytes in the file so far (including those present when it was opened for append)."""
        return self._written

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data`` at the end of the file."""
        await self._file.write(data)
        self._written += len(data)

    async def write_hashed(
        self, chunks: Sequence[bytes], update: Callable[[bytes], object]
    ) -> None:
        """Write ``chunks`` in order, each passed to ``update`` (e.g. a hash) first.

        Two worker-thread calls for the whole batch, whatever its number of chunks: one hashes
        it (``hashlib`` releases the GIL) and joins it, one writes it.

        Usage: ``await out.write_hashed(chunks, sha.update)``
        """

        def digest() -> bytes:
            for chunk in chunks:
                update(chunk)
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)

        await self.write(await anyio.to_thread.run_sync(digest))

    async def sync(self) -> None:
        """Flush Python's buffer and ``fsync`` the file to stable storage."""
        await self._file.flush()
        fd = self._fileno()
        await anyio.to_thread.run_sync(os.fsync, fd)

    def _fileno(self) -> int:
        wrapped = getattr(self._file, "wrapped", None)  # anyio.AsyncFile
        fileno = int(wrapped.fileno() if wrapped is not None else self._file.fileno())
        return fileno

    async def aclose(self) -> None:
        """Close the file. Idempotent; shielded so that a cancelled task still releases it."""
        with anyio.CancelScope(shield=True):
            await _close(self._file)

    def __repr__(self) -> str:
        return f"<AsyncWriter {str(self._path)!r} [{self._written} bytes]>"


async def open_writer(path: str | os.PathLike[str], *, append: bool = False) -> AsyncWriter:
    """Open ``path`` for binary writing (truncated, or appended to with ``append=True``).

    Args:
        path: the file; its folder must exist.
        append: keep existing content and write after it (used to resume a transfer).

    Raises:
        OSError: the file cannot be opened.

    Usage: ``out = await open_writer(tmp, append=True)``
    """
    p = Path(path)
    mode: Literal["ab", "wb"] = "ab" if append else "wb"
    start = 0
    if append:
        start = (await anyio.Path(p).stat()).st_size if await anyio.Path(p).exists() else 0
    file: Any
    if _on_asyncio():
        file = await aiofiles.open(p, mode)
    else:
        file = await anyio.open_file(p, mode)
    return AsyncWriter(file, p, start)


async def iter_file(path: str | os.PathLike[str], chunk_size: int) -> AsyncIterator[bytes]:
    """Yield a file's content in chunks of at most ``chunk_size`` bytes, read in a worker thread.

    Usage: ``async for chunk in iter_file(path, 1 << 20): ...``
    """
    file: Any
    file = await aiofiles.open(path, "rb") if _on_asyncio() else await anyio.open_file(path, "rb")
    try:
        while chunk := await file.read(chunk_size):
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await _close(file)


def part_path(final: str | os.PathLike[str], suffix: str = ".part") -> Path:
    """The hidden temporary name beside ``final`` under which its content is written.

    Usage: ``part_path("out/12.tar.bz2")  # Path("out/.12.tar.bz2.part")``
    """
    f = Path(final)
    return f.with_name(f".{f.name}{suffix}")


def _fsync_dir_sync(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """``fsync`` a folder so that renames inside it survive a machine crash.

    Usage: ``await fsync_dir(dest)``
    """
    await anyio.to_thread.run_sync(_fsync_dir_sync, Path(folder))


async def commit(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, fsync: bool = False
) -> None:
    """Move a completed temporary file (or folder) to its final name in one atomic step.

    ``dst`` is replaced if it is a file. Shielded from cancellation: a rename is never left half done.

    Args:
        src: the temporary file, already written, closed (and synced if ``fsync``).
        dst: its final name, in the same file system.
        fsync: also ``fsync`` the destination folder so the rename itself is durable.

    Usage: ``await commit(part_path(final), final, fsync=True)``
    """
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(os.replace, src, dst)
        if fsync:
            await fsync_dir(Path(dst).parent)


def _remove_sync(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


async def remove(path: str | os.PathLike[str]) -> None:
    """Delete a file or folder tree if it exists (missing is fine). Shielded from cancellation.

    Usage: ``await remove(part_path(final))``
    """
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_remove_sync, Path(path))
