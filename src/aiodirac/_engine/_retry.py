"""Retries of transient failures: exponential backoff with full jitter, a total deadline.

Built on tenacity (its ``AsyncRetrying`` loop), with anyio's sleep and clock so that it runs on
asyncio and trio alike, and follows trio's ``MockClock`` in tests.

The wait before attempt ``n + 1`` (after ``n`` failures, ``n >= 1``) is::

    backoff(n) = min(max_backoff, initial * multiplier ** (n - 1))
    wait(n)    = max(uniform(0, backoff(n)), retry_after)        # full jitter, Retry-After honoured

and retrying stops, re-raising the last error, as soon as ``max_attempts`` attempts were made or
the next wait would end past ``deadline`` seconds after the first attempt began. Only the
exception types in ``retry_on`` (by default :class:`aiodirac.TransientError`: network errors,
timeouts, 429, 502-504) are retried; anything else propagates at once.

Usage::

    ids = await retry_call(lambda: backend.submit(chunk), RetryPolicy())
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.lowlevel

from aiodirac._exceptions import ConfigurationError, TransientError

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["RetryEvent", "RetryPolicy", "retry_call", "retry_test_mode"]

T = TypeVar("T")

logger = logging.getLogger("aiodirac.retry")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often to retry a transient failure.

    The defaults suit a shared production service: the first retry comes after at most 0.5 s,
    waits grow by 2x up to 20 s, and a call gives up 120 s after its first attempt (enough to ride
    out a service restart, short enough that a dead service is reported within two minutes).

    Attributes:
        deadline: seconds from the first attempt after which no new attempt starts.
        initial: upper bound of the first (jittered) wait, in seconds.
        max_backoff: upper bound of any jittered wait, in seconds (``Retry-After`` may exceed it).
        multiplier: growth factor of the upper bound per failure.
        max_attempts: attempts in all (the first included), or ``None`` for no limit but the
            deadline.

    Usage: ``RetryPolicy(deadline=30, max_attempts=5)``
    """

    deadline: float = 120.0
    initial: float = 0.5
    max_backoff: float = 20.0
    multiplier: float = 2.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.deadline < 0 or self.initial < 0 or self.max_backoff < 0:
            raise ConfigurationError("RetryPolicy: deadline, initial and max_backoff must be >= 0")
        if self.multiplier < 1:
            raise ConfigurationError("RetryPolicy: multiplier must be >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigurationError("RetryPolicy: max_attempts must be >= 1 or None")

    def backoff(self, failures: int) -> float:
        """The upper bound of the jittered wait after ``failures`` failures (``failures >= 1``).

        Usage: ``RetryPolicy().backoff(3)`` -> ``2.0``
        """
        exponent = max(failures - 1, 0)
        bound = self.initial
        # Grow step by step so that a huge exponent cannot overflow a float.
        for _ in range(exponent):
            if bound >= self.max_backoff:
                break
            bound *= self.multiplier
        return min(self.max_backoff, bound)


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One failed attempt that is about to be retried, for ``on_retry`` hooks.

    Attributes:
        attempt: the number of the attempt that failed (1 for the first).
        wait: seconds to wait before the next attempt.
        elapsed: seconds since the first attempt began.
        error: the exception the attempt raised.

    Usage: ``retry_call(fn, policy, on_retry=lambda e: log.info("retry %d in %.1fs", e.attempt, e.wait))``
    """

    attempt: int
    wait: float
    elapsed: float
    error: BaseException = field(repr=False)


_TEST_MODE: ContextVar[bool] = ContextVar("aiodirac_retry_test_mode", default=False)


@contextlib.contextmanager
def retry_test_mode(enabled: bool = True) -> Iterator[None]:
    """Within this block, :func:`retry_call` does not really wait (tests take no wall time).

    Waits are still computed, reported to ``on_retry`` and counted against the deadline as if
    they had happened, so a test sees the same number of attempts as production would. Tasks
    started inside the block inherit the mode.

    Usage::

        with retry_test_mode():
            await retry_call(flaky, RetryPolicy(deadline=60))
    """
    token = _TEST_MODE.set(enabled)
    try:
        yield
    finally:
        _TEST_MODE.reset(token)


def _retry_after(error: BaseException | None) -> float:
    value = getattr(error, "retry_after", None)
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return 0.0


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    retry_on: tuple[type[BaseException], ...] = (TransientError,),
    on_retry: Callable[[RetryEvent], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    rng: random.Random | None = None,
) -> T:
    """Call ``fn()`` until it succeeds, retrying the ``retry_on`` errors by ``policy``.

    Args:
        fn: makes one attempt; called afresh for each attempt.
        policy: backoff, deadline and attempt limit (see the module docstring for the formula).
        retry_on: the exception types worth another attempt; others propagate at once.
        on_retry: called before each wait; an exception it raises is logged and ignored.
        sleep: the wait function (default ``anyio.sleep``); tests may pass their own.
        rng: the random source of the jitter (default: the ``random`` module's).

    Returns:
        What the successful attempt returned.

    Raises:
        The last error, unchanged, once the policy gives up; any non-retried error at once.
        Cancellation is never retried.

    Usage: ``ids = await retry_call(lambda: backend.submit(chunk), RetryPolicy())``
    """
    # tenacity is imported by the first call: a policy can be made without it.
    from tenacity import AsyncRetrying, retry_if_exception_type

    test_mode = _TEST_MODE.get()
    real_sleep = sleep if sleep is not None else anyio.sleep
    uniform = rng.uniform if rng is not None else random.uniform
    start = anyio.current_time()
    # Waits skipped in test mode still count against the deadline.
    skipped = 0.0

    def elapsed() -> float:
        return anyio.current_time() - start + skipped

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        jittered = uniform(0.0, policy.backoff(state.attempt_number))
        return max(jittered, _retry_after(error))

    def stop(state: RetryCallState) -> bool:
        if policy.max_attempts is not None and state.attempt_number >= policy.max_attempts:
            return True
        return elapsed() + state.upcoming_sleep > policy.deadline

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is None:
            return
        error = state.outcome.exception() if state.outcome is not None else None
        event = RetryEvent(
            attempt=state.attempt_number,
            wait=state.upcoming_sleep,
            elapsed=elapsed(),
            error=error if error is not None else RuntimeError("no error recorded"),
        )
        try:
            on_retry(event)
        except Exception:
            logger.exception("on_retry hook failed; retrying anyway")

    async def do_sleep(seconds: float) -> None:
        nonlocal skipped
        if test_mode:
            skipped += seconds
            # Still a checkpoint, so that cancellation and other tasks get their turn.
            await anyio.lowlevel.checkpoint()
        else:
            await real_sleep(seconds)

    retrying = AsyncRetrying(
        sleep=do_sleep,
        stop=stop,
        wait=wait,
        retry=retry_if_exception_type(retry_on),
        before_sleep=before_sleep,
        reraise=True,
    )

    # tenacity calls a plain function (such as a lambda returning a coroutine) without awaiting
    # what it returns: always hand it a coroutine function.
    async def attempt() -> T:
        return await fn()

    return await retrying(attempt)
