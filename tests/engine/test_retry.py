"""Tests of aiodirac._engine._retry: backoff formula, deadline, Retry-After, which errors are retried."""

from __future__ import annotations

import random

import anyio
import pytest
from trio.testing import MockClock

from aiodirac._engine._retry import RetryEvent, RetryPolicy, retry_call, retry_test_mode
from aiodirac._exceptions import (
    InvalidRequestError,
    NetworkError,
    ServiceUnavailableError,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Flaky:
    """Fails with the given errors, one per call, then returns ``value``."""

    def __init__(self, errors: list[BaseException], value: str = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.value = value

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


def test_backoff_formula() -> None:
    policy = RetryPolicy(initial=0.5, max_backoff=20, multiplier=2)
    assert [policy.backoff(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 20, 20]
    assert policy.backoff(10_000) == 20


@pytest.mark.parametrize(
    "kwargs",
    [{"deadline": -1}, {"multiplier": 0.5}, {"max_attempts": 0}, {"initial": -0.1}],
)
def test_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


async def test_retries_transient_then_succeeds() -> None:
    events: list[RetryEvent] = []
    fn = Flaky([NetworkError("reset"), ServiceUnavailableError("503", status_code=503)])
    with retry_test_mode():
        result = await retry_call(fn, RetryPolicy(), on_retry=events.append)
    assert result == "ok"
    assert fn.calls == 3
    assert [e.attempt for e in events] == [1, 2]
    assert all(0 <= e.wait <= RetryPolicy().backoff(e.attempt) for e in events)
    assert isinstance(events[0].error, NetworkError)


async def test_non_transient_is_not_retried() -> None:
    fn = Flaky([InvalidRequestError("bad JDL", status_code=400)])
    with retry_test_mode(), pytest.raises(InvalidRequestError, match="bad JDL"):
        await retry_call(fn, RetryPolicy())
    assert fn.calls == 1


async def test_max_attempts_reraises_last_error() -> None:
    errors: list[BaseException] = [NetworkError(f"reset {i}") for i in range(10)]
    fn = Flaky(errors)
    with retry_test_mode(), pytest.raises(NetworkError, match="reset 3"):
        await retry_call(fn, RetryPolicy(max_attempts=4))
    assert fn.calls == 4


async def test_deadline_bounds_total_time_on_virtual_clock() -> None:
    """On trio's MockClock (or in test mode) the deadline is measured, not wall time."""
    fn = Flaky([NetworkError("down")] * 10_000)
    events: list[RetryEvent] = []
    policy = RetryPolicy(deadline=60, initial=1, max_backoff=8)
    with retry_test_mode(), pytest.raises(NetworkError):
        await retry_call(fn, policy, on_retry=events.append)
    waited = sum(e.wait for e in events)
    assert waited <= 60
    # Full jitter averages half the bound: 8 s caps -> about 4 s per wait -> many attempts.
    assert fn.calls >= 8
    assert events[-1].elapsed <= 60


async def test_retry_after_is_honoured_as_a_minimum() -> None:
    fn = Flaky([ServiceUnavailableError("429", status_code=429, retry_after=7.5)])
    events: list[RetryEvent] = []
    with retry_test_mode():
        await retry_call(fn, RetryPolicy(initial=0.1, max_backoff=0.2), on_retry=events.append)
    assert [e.wait for e in events] == [7.5]


async def test_retry_after_past_deadline_gives_up() -> None:
    fn = Flaky([ServiceUnavailableError("503", status_code=503, retry_after=100)])
    with retry_test_mode(), pytest.raises(ServiceUnavailableError):
        await retry_call(fn, RetryPolicy(deadline=10))
    assert fn.calls == 1


async def test_really_sleeps_outside_test_mode() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    fn = Flaky([NetworkError("a"), NetworkError("b")])
    await retry_call(fn, RetryPolicy(), sleep=fake_sleep, rng=random.Random(1))
    assert len(slept) == 2
    assert 0 <= slept[0] <= 0.5
    assert 0 <= slept[1] <= 1.0


async def test_failing_hook_does_not_stop_retries(caplog: pytest.LogCaptureFixture) -> None:
    def hook(event: RetryEvent) -> None:
        raise RuntimeError("hook broke")

    fn = Flaky([NetworkError("a")])
    with retry_test_mode():
        assert await retry_call(fn, RetryPolicy(), on_retry=hook) == "ok"
    assert "on_retry hook failed" in caplog.text


async def test_custom_retry_on() -> None:
    fn = Flaky([KeyError("x")])
    with retry_test_mode():
        assert await retry_call(fn, RetryPolicy(), retry_on=(KeyError,)) == "ok"
    fn2 = Flaky([KeyError("x")])
    with retry_test_mode(), pytest.raises(KeyError):
        await retry_call(fn2, RetryPolicy())


async def test_cancellation_is_not_retried() -> None:
    calls = 0

    async def slow() -> None:
        nonlocal calls
        calls += 1
        await anyio.sleep(10)

    with anyio.move_on_after(0.05) as scope:
        await retry_call(slow, RetryPolicy())
    assert scope.cancelled_caught
    assert calls == 1


def test_real_waits_on_trio_mock_clock() -> None:
    """Without test mode, waits really happen, on trio's virtual clock: no wall time spent."""

    async def main() -> tuple[int, float]:
        fn = Flaky([NetworkError("down")] * 1000)
        start = anyio.current_time()
        with pytest.raises(NetworkError):
            await retry_call(fn, RetryPolicy(deadline=300, initial=1, max_backoff=30))
        return fn.calls, anyio.current_time() - start

    calls, spent = anyio.run(
        main, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)}
    )
    assert spent <= 300
    assert spent > 100  # it did wait: full jitter of waits capped at 30 s
    assert calls > 5
