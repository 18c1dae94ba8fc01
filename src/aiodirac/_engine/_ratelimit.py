"""A token-bucket rate limiter on anyio: requests per second with a burst, FIFO waiters.

The bucket holds at most ``burst`` tokens and gains ``rate`` tokens per second; each request
takes one. It starts full, so that ``burst`` requests may go at once, and then at most
``burst + rate * t`` requests happen in any window of ``t`` seconds. Waiters are served in the
order they arrived (an anyio lock is fair), so that no request starves.

Usage::

    limiter = RateLimiter(rate=20, burst=10)
    async with limiter:
        await client.post(...)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

import anyio

from aiodirac._exceptions import ConfigurationError

__all__ = ["RateLimiter"]

# A token counts as available when this close to whole: floating-point refills must not leave a
# waiter sleeping for 1e-17 s forever on a clock that cannot represent such a step.
_EPSILON = 1e-9


class RateLimiter:
    """Allows ``rate`` acquisitions per second on average, at most ``burst`` at once.

    Args:
        rate: tokens gained per second (> 0).
        burst: bucket size: acquisitions allowed back to back after a quiet period (>= 1).
        clock: returns the current time in seconds (default ``anyio.current_time``, which follows
            trio's ``MockClock`` in tests).
        sleep: waits a number of seconds on that clock (default ``anyio.sleep``).

    Cancelling a waiting :meth:`acquire` takes no token and leaves the queue intact.

    Usage::

        limiter = RateLimiter(20, burst=10)
        await limiter.acquire()
        async with limiter:
            ...
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if not rate > 0:
            raise ConfigurationError(f"RateLimiter: rate must be > 0, got {rate!r}")
        if burst < 1:
            raise ConfigurationError(f"RateLimiter: burst must be >= 1, got {burst!r}")
        self._rate = float(rate)
        self._burst = int(burst)
        self._clock = clock
        self._sleep = sleep if sleep is not None else anyio.sleep
        self._tokens = float(burst)
        self._stamp: float | None = None
        self._lock: anyio.Lock | None = None
        self._waiting = 0
        self._acquired = 0

    @property
    def rate(self) -> float:
        """Tokens gained per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """The bucket size."""
        return self._burst

    @property
    def acquired(self) -> int:
        """Tokens taken since creation (for statistics)."""
        return self._acquired

    def _now(self) -> float:
        return self._clock() if self._clock is not None else anyio.current_time()

    def _refill(self) -> float:
        now = self._now()
        if self._stamp is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        return self._tokens

    @property
    def level(self) -> float:
        """Tokens available right now (0 .. burst). Needs a running event loop for the clock."""
        return self._refill()

    def has_capacity(self) -> bool:
        """Whether :meth:`acquire` would return without waiting (no one queued, a token left).

        Usage: ``if limiter.has_capacity(): ...``
        """
        return self._waiting == 0 and self._refill() >= 1 - _EPSILON

    async def acquire(self) -> None:
        """Wait for a token and take it. Waiters are served first come, first served.

        Usage: ``await limiter.acquire()``
        """
        if self._lock is None:
            # Created lazily: an anyio lock binds to the event loop that first uses it.
            self._lock = anyio.Lock()
        self._waiting += 1
        try:
            async with self._lock:
                while self._refill() < 1 - _EPSILON:
                    await self._sleep((1 - self._tokens) / self._rate)
                self._tokens = max(self._tokens - 1, 0.0)
                self._acquired += 1
        finally:
            self._waiting -= 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __repr__(self) -> str:
        level = f"{self._tokens:.2f}" if self._stamp is not None else f"{self._burst}"
        return (
            f"<RateLimiter [rate: {self._rate:g}/s, burst: {self._burst}, tokens: {level}, "
            f"waiting: {self._waiting}]>"
        )
