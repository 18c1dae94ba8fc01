"""The request gate: one policy for every request a client sends to its backend."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from aiodirac import AsyncDirac, ConfigurationError, Job, Limits, RequestGate, RetryPolicy
from aiodirac._config import default_limits, load_settings
from aiodirac._engine._retry import retry_test_mode
from aiodirac._exceptions import NetworkError, ServiceUnavailableError
from aiodirac.testing import Faults, MemoryBackend

QUICK = RetryPolicy(deadline=30, initial=0.01, max_backoff=0.01)


def _jobs(n: int) -> Job:
    job = Job()
    job.setExecutable("/bin/echo", arguments="%(n)s")
    job.setParameterSequence("n", [str(i) for i in range(n)])
    return job


async def test_every_kind_of_request_shares_the_in_flight_cap() -> None:
    backend = MemoryBackend()
    async with AsyncDirac(backend, limits=Limits(max_in_flight=2, rate=1000, burst=100)) as d:
        ids = await d.submit(_jobs(40))
        backend.set_faults(Faults(latency=0.02))
        before = backend.max_concurrency["*"]
        assert before <= 2
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(d.status, ids)
                tg.start_soon(d.summary, ids)
                tg.start_soon(d.attributes, ids[:5])
                tg.start_soon(d.kill, ids[n : n + 1])
        assert backend.max_concurrency["*"] == 2  # reached, never passed


async def test_safe_requests_are_retried_through_the_gate() -> None:
    backend = MemoryBackend()
    gate_limits = Limits(rate=1000, burst=100, retry=QUICK)
    async with AsyncDirac(backend, limits=gate_limits) as d:
        ids = await d.submit(_jobs(4))
        # Each of these fails once (503 or a cut connection) before it is answered.
        backend.set_faults(
            Faults(
                unavailable=0.5,
                retry_after=None,
                seed=3,
                methods=frozenset({"summary", "kill", "status"}),
            )
        )
        with retry_test_mode():
            assert sum((await d.summary(ids)).values()) == 4
            assert sorted(await d.kill(ids)) == ids
            assert set(await d.status(ids)) == set(ids)
        assert backend.calls["summary"] + backend.calls["kill"] + backend.calls["status"] > 3


async def test_a_reschedule_is_sent_once() -> None:
    backend = MemoryBackend()
    async with AsyncDirac(backend, limits=Limits(rate=1000, burst=100, retry=QUICK)) as d:
        ids = await d.submit(_jobs(1))
        backend.set_faults(Faults(transient=1.0, methods=frozenset({"reschedule"})))
        calls = backend.calls["reschedule"]
        with pytest.raises(NetworkError):
            await d.reschedule(ids)
        # A lost answer to a reschedule that was applied, repeated, would run the job twice.
        assert backend.calls["reschedule"] == calls + 1


async def test_the_gate_paces_attempts_and_counts_them() -> None:
    gate = RequestGate(Limits(rate=1000, burst=100, retry=QUICK))
    answers: list[Exception | str] = [ServiceUnavailableError("busy"), "ok"]

    async def flaky() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with retry_test_mode():
        assert await gate.call(flaky) == "ok"
    assert gate.requests == 2
    assert gate.in_flight == 0
    assert "2 requests" in repr(gate)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": 1.5}, "max_in_flight"),
        ({"rate": 0}, "rate"),
        ({"rate": "fast"}, "rate"),
        ({"burst": 0}, "burst"),
        ({"retry": 3}, "retry"),
    ],
)
def test_bad_limits_are_configuration_errors(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        Limits(**kwargs)  # type: ignore[arg-type]


def test_limits_come_from_the_settings_file_then_the_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[limits]\nrate = 5\nburst = 3\nmax_in_flight = 2\n")
    monkeypatch.setenv("AIODIRAC_CONFIG", str(config))
    settings = load_settings()
    assert default_limits(settings) == Limits(rate=5, burst=3, max_in_flight=2)
    assert default_limits(settings, rate=7, max_in_flight=4) == Limits(
        rate=7, burst=3, max_in_flight=4
    )
    assert AsyncDirac(MemoryBackend())._gate.limits.rate == 5
    config.write_text("[limits]\nmax_in_flight = 0\n")
    with pytest.raises(ConfigurationError, match=r"limits\.max_in_flight"):
        load_settings()
    config.write_text("[limits]\nmax_inflight = 4\n")  # a typo is not silently ignored
    with pytest.raises(ConfigurationError, match="max_inflight"):
        load_settings()
