"""The failure policy: bad values are typed errors before anything is submitted."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiodirac import AsyncDirac, FailurePolicy, InvalidArgumentError, Job, JobStatus, RetryMethod
from aiodirac.testing import SimulatedGrid


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"max_failed_fraction": -0.1}, "between 0 and 1"),
        ({"max_failed_fraction": 1.5}, "between 0 and 1"),
        ({"max_failed_fraction": float("nan")}, "between 0 and 1"),
        ({"delay": -1}, "delay"),
        ({"delay": float("inf")}, "delay"),
        ({"method": "again"}, "'reschedule' or 'resubmit'"),
        ({"failed": frozenset({JobStatus.KILLED})}, "Killed"),
        ({"failed": frozenset()}, "empty"),
    ],
)
def test_bad_policy_is_a_typed_error(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidArgumentError, match=words):
        FailurePolicy(**kwargs)  # type: ignore[arg-type]


def test_defaults_and_brake() -> None:
    policy = FailurePolicy()
    assert policy.max_attempts == 3
    assert policy.retry_method is RetryMethod.RESCHEDULE
    assert policy.is_failure(JobStatus.FAILED)
    assert policy.is_failure(JobStatus.STALLED)
    assert not policy.is_failure(JobStatus.KILLED)
    assert FailurePolicy(method="resubmit").method is RetryMethod.RESUBMIT
    brake = FailurePolicy(max_failed_fraction=0.1)
    assert not brake.brakes(10, 100)
    assert brake.brakes(11, 100)
    assert FailurePolicy(max_failed_fraction=0).brakes(1, 100)


async def test_nothing_is_submitted_with_a_bad_policy_or_job(tmp_path: Path) -> None:
    grid = SimulatedGrid()
    async with AsyncDirac(grid) as dirac:
        with pytest.raises(InvalidArgumentError, match="FailurePolicy"):
            dirac.campaign(Job(), journal=tmp_path / "c.db", policy="often")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="one Job"):
            dirac.campaign([Job()], journal=tmp_path / "c.db")  # type: ignore[arg-type]
    assert grid.calls.total() == 0
    assert not (tmp_path / "c.db").exists()
