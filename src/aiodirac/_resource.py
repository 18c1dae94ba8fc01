"""``AsyncResource``: the one way aiodirac objects are closed with ``async with``.

Usage::

    class Thing(AsyncResource):
        async def aclose(self) -> None: ...

    async with Thing() as thing:
        ...
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncResource"]


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
