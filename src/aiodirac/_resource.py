"""``AsyncResource``: the one way aiodirac objects are closed with ``async with``; and
``TaskGroupResource``: an object whose background tasks live exactly as long as its ``async with``.

Usage::

    class Thing(AsyncResource):
        async def aclose(self) -> None: ...

    async with Thing() as thing:
        ...
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    import anyio.abc

__all__ = ["AsyncResource", "TaskGroupResource"]


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
        return await tg.__aexit__(exc_type, exc, tb)
