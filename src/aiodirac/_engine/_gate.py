"""The request gate: the one policy every request to a backend obeys.

A client sends many kinds of requests to its backend: submissions and confirmations, status
pages, summaries, kills, monitoring queries, sandbox look-ups. They all share one service, so
they share one budget. The gate applies, to each attempt of each call:

- an in-flight cap (:class:`anyio.CapacityLimiter`): at most ``max_in_flight`` requests at once;
- a rate limit (:class:`~aiodirac.RateLimiter`, a token bucket): ``rate`` requests per second
  in the long run, bursts of ``burst``;
- retries of transient failures (:class:`~aiodirac.RetryPolicy`): network errors, timeouts,
  429 and 5xx answers to requests that are safe to repeat. The wait between attempts holds no
  slot: a request backing off does not keep others from being sent.

Output-sandbox look-ups are the one kind of request that is not paced (``paced=False``): each is
followed by a transfer of the sandbox itself, which the downloader's own concurrency bounds, and
pacing them at the submission rate would cap downloads at ``rate`` sandboxes per second.

Engine and facades never build limiters or retry loops of their own; they ask the gate.

Usage::

    gate = RequestGate(Limits(rate=5, max_in_flight=4))
    states = await gate.call(lambda: backend.status([1, 2, 3]))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TypeVar

import anyio

from aiodirac._exceptions import ConfigurationError, TransientError

from ._ratelimit import RateLimiter
from ._retry import RetryEvent, RetryPolicy, retry_call

__all__ = ["Limits", "RequestGate"]

T = TypeVar("T")

_NO_HOLD: AbstractAsyncContextManager[object] = nullcontext()


@dataclass(frozen=True, slots=True)
class Limits:
    """How hard one client may press its backend. The defaults suit a shared production service.

    A DiracX server takes 20 jobs per submission request: the defaults allow 8 requests in flight
    and 20 requests per second in the long run (bursts of 10), every kind of request included;
    about 365 jobs/s submitted from one client, a load a production DiracX absorbs, while one
    user cannot flood it. Transient failures are retried for up to 120 s per request
    (:class:`~aiodirac.RetryPolicy`'s defaults).

    Attributes:
        max_in_flight: requests in progress at once.
        rate: requests per second in the long run (token bucket).
        burst: requests allowed back to back after a quiet period.
        retry: the retry policy of every request that is safe to repeat.

    Raises:
        ConfigurationError: ``max_in_flight`` or ``burst`` below 1, ``rate`` not above 0.

    Usage: ``AsyncDirac(limits=Limits(rate=5, max_in_flight=4))``
    """

    max_in_flight: int = 8
    rate: float = 20.0
    burst: int = 10
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if isinstance(self.max_in_flight, bool) or not isinstance(self.max_in_flight, int):
            raise ConfigurationError(
                f"Limits.max_in_flight must be an integer, got {self.max_in_flight!r}"
            )
        if self.max_in_flight < 1:
            raise ConfigurationError(
                f"Limits.max_in_flight must be at least 1, got {self.max_in_flight}"
            )
        if not isinstance(self.rate, int | float) or not self.rate > 0:
            raise ConfigurationError(f"Limits.rate must be a number > 0, got {self.rate!r}")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigurationError(f"Limits.burst must be an integer >= 1, got {self.burst!r}")
        if not isinstance(self.retry, RetryPolicy):
            raise ConfigurationError(f"Limits.retry must be a RetryPolicy, got {self.retry!r}")

    @property
    def window(self) -> int:
        """Work items a pipeline keeps alive at once for these limits (four per request slot,
        at least 4): enough to keep every slot busy, few enough to bound memory."""
        return max(4, 4 * self.max_in_flight)


class RequestGate:
    """Between the engine (or a facade) and a backend: the in-flight cap, the rate limit and the
    retry policy of :class:`Limits`, applied to every call. One gate per client, shared by all
    its work, so that a submission, a tracker and a status query share one budget.

    Args:
        limits: the policy (default :class:`Limits`).

    Usage::

        gate = RequestGate(Limits(rate=5))
        done = await gate.call(lambda: backend.kill([12, 13]))
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits if limits is not None else Limits()
        self._capacity = anyio.CapacityLimiter(self.limits.max_in_flight)
        self._limiter = RateLimiter(self.limits.rate, self.limits.burst)
        self.requests = 0
        """Attempts sent through the gate so far (retries included)."""

    def __repr__(self) -> str:
        return (
            f"<RequestGate [in flight {self._capacity.borrowed_tokens}/"
            f"{self.limits.max_in_flight}, {self._limiter!r}, {self.requests} requests]>"
        )

    @property
    def in_flight(self) -> int:
        """Requests in progress now."""
        return int(self._capacity.borrowed_tokens)

    async def once(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        hold: Callable[[], AbstractAsyncContextManager[object]] | None = None,
        paced: bool = True,
    ) -> T:
        """One attempt of ``fn`` within the cap and the rate limit, not retried.

        For callers that handle failure themselves (the tracker retries a whole polling cycle,
        not one page; the submitter resends an ambiguous submission as a new chunk). ``hold``
        makes a context entered around the attempt, before the in-flight slot is taken (e.g. a
        turn that keeps confirmations apart from submissions). ``paced=False`` takes no rate
        token.

        Usage: ``states = await gate.once(lambda: backend.status(page))``
        """
        async with hold() if hold is not None else _NO_HOLD, self._capacity:
            if paced:
                await self._limiter.acquire()
            self.requests += 1
            return await fn()

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        hold: Callable[[], AbstractAsyncContextManager[object]] | None = None,
        paced: bool = True,
    ) -> T:
        """``fn`` within the cap and the rate limit, its transient failures retried.

        Each attempt takes its own slot and rate token; waits between attempts hold neither.
        Only requests that are safe to repeat belong here: a backend raises
        :class:`~aiodirac.TransientError` only where repeating cannot do harm.

        Args:
            fn: the call, made anew for each attempt.
            retry: a policy for this call instead of the gate's (e.g. a shorter deadline for a
                person waiting at a terminal).
            on_retry: told of each retry (attempt, error, wait).
            hold: makes a context entered around each attempt, before the in-flight slot is
                taken.
            paced: whether each attempt takes a rate token (see the module docstring).

        Raises:
            The last error of ``fn`` once the policy gives up, or at once for an error that is
            not transient.

        Usage: ``done = await gate.call(lambda: backend.kill(ids))``
        """
        policy = retry if retry is not None else self.limits.retry
        if on_retry is None:
            # Most calls succeed at once, and setting up a retry loop for each of thousands of
            # calls costs more CPU than the call itself: the loop starts at the first failure,
            # which costs one attempt of the policy's budget, never less waiting.
            try:
                return await self.once(fn, hold=hold, paced=paced)
            except TransientError:
                pass
        return await retry_call(
            lambda: self.once(fn, hold=hold, paced=paced), policy, on_retry=on_retry
        )
