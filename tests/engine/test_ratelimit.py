"""Tests of aiodirac._engine._ratelimit.RateLimiter on virtual clocks: rate held, burst never exceeded."""

from __future__ import annotations

import anyio
import pytest
from trio.testing import MockClock

from aiodirac._engine._ratelimit import RateLimiter


def run_on_mock_clock(fn, *args):  # type: ignore[no-untyped-def]
    return anyio.run(
        fn, *args, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)}
    )


def max_in_window(stamps: list[float], window: float) -> int:
    """The most acquisitions in any closed window of ``window`` seconds."""
    best = 0
    j = 0
    for i in range(len(stamps)):
        while stamps[i] - stamps[j] > window + 1e-9:
            j += 1
        best = max(best, i - j + 1)
    return best


async def hammer(limiter: RateLimiter, tasks: int, duration: float) -> list[float]:
    stamps: list[float] = []
    start = anyio.current_time()

    async def worker() -> None:
        while True:
            async with limiter:
                now = anyio.current_time()
                if now - start >= duration:
                    return
                stamps.append(now - start)

    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker)
    return stamps


@pytest.mark.parametrize(("rate", "burst"), [(20.0, 10), (7.5, 1), (100.0, 25), (0.5, 3)])
def test_holds_rate_within_5_percent_over_20_s_and_never_exceeds_burst(
    rate: float, burst: int
) -> None:
    limiter = RateLimiter(rate, burst)
    stamps = run_on_mock_clock(hammer, limiter, 50, 20.0)
    expected = burst + rate * 20
    assert abs(len(stamps) - expected) <= 0.05 * rate * 20 + 1
    # Never more than the burst at one instant, nor more than burst + rate*t in any window t.
    assert max_in_window(stamps, 0.0) <= burst
    for window in (0.1, 0.5, 1.0, 3.0, 10.0):
        assert max_in_window(stamps, window) <= burst + rate * window + 1e-6
    # After the initial burst the steady state is exactly the rate.
    steady = [t for t in stamps if t >= 5.0]
    assert abs(len(steady) - rate * 15) <= max(0.05 * rate * 15, 1)


def test_burst_refills_only_up_to_its_size() -> None:
    async def main() -> list[float]:
        limiter = RateLimiter(10, burst=4)
        await anyio.sleep(100)  # a long quiet period must not bank more than 4 tokens
        return await hammer(limiter, 10, 1.0)

    stamps = run_on_mock_clock(main)
    assert stamps[:4] == [0.0, 0.0, 0.0, 0.0]
    assert stamps[4] > 0
    assert len(stamps) == 4 + 10  # 1 s at 10/s after the burst, the last one at t=1.0 excluded


def test_waiters_are_served_first_come_first_served() -> None:
    async def main() -> list[int]:
        limiter = RateLimiter(5, burst=1)
        order: list[int] = []

        async def waiter(i: int) -> None:
            await limiter.acquire()
            order.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(waiter, i)
                await anyio.sleep(0.001)  # arrive in a known order
        return order

    assert run_on_mock_clock(main) == list(range(20))


def test_cancelled_waiter_takes_no_token() -> None:
    async def main() -> tuple[float, str]:
        limiter = RateLimiter(1, burst=1)
        await limiter.acquire()  # bucket now empty
        with anyio.move_on_after(0.5):
            await limiter.acquire()
        # The cancelled waiter took nothing: the next token comes 1 s after the first one.
        await limiter.acquire()
        return anyio.current_time(), repr(limiter)

    now, text = run_on_mock_clock(main)
    assert now == pytest.approx(1.0)
    assert "waiting: 0" in text


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_injected_clock_on_asyncio(anyio_backend: str) -> None:
    now = 0.0
    slept: list[float] = []

    def clock() -> float:
        return now

    async def sleep(seconds: float) -> None:
        nonlocal now
        slept.append(seconds)
        now += seconds

    limiter = RateLimiter(4, burst=2, clock=clock, sleep=sleep)
    for _ in range(6):
        await limiter.acquire()
    assert now == pytest.approx(1.0)  # 2 free, then 4 more at 4/s
    assert limiter.acquired == 6
    assert limiter.has_capacity() is False
    now += 10
    assert limiter.level == pytest.approx(2.0)
    assert "rate: 4/s, burst: 2" in repr(limiter)


def test_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(1, burst=0)
