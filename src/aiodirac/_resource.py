"""``AsyncResource``: the one way aiodirac objects are closed with ``async with``;
``TaskGroupResource``: an object whose background tasks live exactly as long as its ``async with``;
and ``ungrouped``: what escapes a task group is one exception, never an ``ExceptionGroup``.

Usage::

    class Thing(AsyncResource):
        async def aclose(self) -> None: ...

    async with Thing() as thing:
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    import anyio.abc

__all__ = ["AsyncResource", "TaskGroupResource", "ungrouped"]


class AsyncResource:
    """Base of objects that hold connections or files: ``async with`` closes them.

    Subclasses implement :meth:`aclose` (idempotent); ``__aenter__`` may be overridden to open.

    Usage: ``async with resource: ...`` or ``await resource.aclose()``
    """

    async def aclose(self) -> None:
        """Release what the object holds. Idempotent."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class TaskGroupResource:
    """Owns a task group from ``__aenter__`` to ``__aexit__``: its tasks are cancelled on exit.

    Subclasses start tasks in :attr:`tg`, may override :meth:`_started` (run once the group is
    entered; if it fails, the group is closed and the error raised) and :meth:`_closing` (run
    shielded after the tasks were told to stop, before the group is left).

    Usage::

        class Pool(TaskGroupResource):
            async def _started(self) -> None:
                self.tg.start_soon(self._serve)
    """

    _tg: anyio.abc.TaskGroup | None = None

    @property
    def tg(self) -> anyio.abc.TaskGroup:
        """The task group (between ``__aenter__`` and ``__aexit__``)."""
        assert self._tg is not None, "use this object with `async with`"
        return self._tg

    async def _started(self) -> None:
        """Called once the task group is entered."""

    async def _closing(self) -> None:
        """Called (shielded) when leaving, after the tasks were cancelled."""

    async def __aenter__(self) -> Self:
        import anyio  # here: `import aiodirac` loads no async library

        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self._started()
        except BaseException:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        import anyio

        tg = self.tg
        tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._closing()
        with ungrouped():
            return await tg.__aexit__(exc_type, exc, tb)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


def _cancellation(exc: BaseException) -> bool:
    import anyio  # here: `import aiodirac` loads no async library

    return isinstance(exc, anyio.get_cancelled_exc_class())


def _ours(exc: BaseException) -> bool:
    # aiodirac's own error tree (this layer cannot import it): any class defined in aiodirac.
    return type(exc).__module__.split(".")[0] == "aiodirac"


@contextmanager
def ungrouped() -> Iterator[None]:
    """Around a task group: what escapes it is one exception, never an ``ExceptionGroup``.

    anyio's task groups wrap every error, even a single one, in an ``ExceptionGroup``, which an
    ``except AuthenticationError`` does not catch. This raises the one that matters instead: an
    interrupt (``KeyboardInterrupt``, ``SystemExit``) first, then aiodirac's own errors, then any
    other error (a bug), in the order they happened; the others become notes on it. A group of
    cancellations only is left as it is (the task group's own cancel scope owns it).

    Usage::

        with ungrouped():
            async with anyio.create_task_group() as tg:
                tg.start_soon(poll)
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = [e for e in _leaves(group) if not _cancellation(e)]
        if not leaves:
            raise
        ranked = sorted(
            leaves,
            key=lambda e: 0 if not isinstance(e, Exception) else 1 if _ours(e) else 2,
        )
        chosen = ranked[0]
        for other in ranked[1:]:
            chosen.add_note(f"also: {type(other).__name__}: {other}")
        raise chosen from chosen.__cause__
