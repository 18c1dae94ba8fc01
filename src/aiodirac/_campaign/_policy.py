"""The failure policy of a campaign: what counts as failed, how often and how a job is retried.

Pure values, checked when they are made, so that a policy that makes no sense is an
:class:`~aiodirac.InvalidArgumentError` before anything is submitted.

Usage::

    FailurePolicy(max_attempts=3, max_failed_fraction=0.2, delay=60, method="reschedule")
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from aiodirac._exceptions import InvalidArgumentError
from aiodirac._job._status import JobStatus

__all__ = ["FailurePolicy", "RetryMethod"]


class RetryMethod(enum.StrEnum):
    """How a failed job is run again.

    ``RESCHEDULE``: DIRAC's reschedule, the same job ID runs again (the server counts it in
    ``RescheduleCounter`` and stops at its ``MaxRescheduling``). ``RESUBMIT``: the same concrete
    job is submitted again as a new job (a new ID, created exactly once by the two-phase
    protocol, linked in the journal to the job it replaces).

    Usage: ``FailurePolicy(method=RetryMethod.RESUBMIT)``
    """

    RESCHEDULE = "reschedule"
    RESUBMIT = "resubmit"


_FAILED = frozenset({JobStatus.FAILED, JobStatus.STALLED})
# Jobs the user killed or deleted are never retried: that was a decision, not a failure.
_NEVER = frozenset({JobStatus.KILLED, JobStatus.DELETED, JobStatus.DONE, JobStatus.COMPLETED})


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """Which jobs a campaign retries, how many times, how and when.

    Attributes:
        max_attempts: the most times one job runs, the first included (DIRAC's
            ``MaxRescheduling`` default gives 3); ``1`` retries nothing.
        max_failed_fraction: the brake (Ganga's ``MaxFracForResubmit``): once more than this
            fraction of the campaign's jobs has failed at least once, nothing more is retried
            and the jobs still failing are given up. ``1.0`` never brakes.
        delay: seconds between a failure being seen and its retry (DIRAC's first
            ``RescheduleDelays`` step is 60 s: a site that just failed a job often fails the
            next one too).
        method: :class:`RetryMethod`; ``reschedule`` by default (see the campaigns guide).
        failed: the statuses that count as a failure (default ``Failed`` and ``Stalled``;
            ``Killed`` and ``Deleted`` are the user's decisions and are refused here).

    Raises:
        InvalidArgumentError: 0 attempts, a fraction outside 0-1, a negative or infinite
            delay, an unknown method, or a failed status that is not a failure.

    Usage: ``FailurePolicy(max_attempts=5, delay=0, method="resubmit")``
    """

    max_attempts: int = 3
    max_failed_fraction: float = 0.25
    delay: float = 60.0
    method: RetryMethod | str = RetryMethod.RESCHEDULE
    failed: frozenset[JobStatus] = field(default=_FAILED)

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidArgumentError(
                f"FailurePolicy.max_attempts must be a whole number of at least 1 (1: never "
                f"retry), not {attempts!r}"
            )
        fraction = self.max_failed_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not 0.0 <= fraction <= 1.0
        ):
            raise InvalidArgumentError(
                f"FailurePolicy.max_failed_fraction must be between 0 and 1 (1: never brake), "
                f"not {fraction!r}"
            )
        delay = self.delay
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or delay < 0
            or not math.isfinite(delay)
        ):
            raise InvalidArgumentError(
                f"FailurePolicy.delay must be a number of seconds >= 0, not {delay!r}"
            )
        try:
            method = RetryMethod(self.method)
        except ValueError:
            raise InvalidArgumentError(
                f"FailurePolicy.method must be 'reschedule' or 'resubmit', not {self.method!r}"
            ) from None
        object.__setattr__(self, "method", method)
        try:
            failed = frozenset(JobStatus(s) for s in self.failed)
        except ValueError as exc:
            raise InvalidArgumentError(f"FailurePolicy.failed: {exc}") from None
        wrong = failed & _NEVER
        if wrong or not failed:
            raise InvalidArgumentError(
                "FailurePolicy.failed names the statuses retried (Failed, Stalled); "
                f"{', '.join(sorted(wrong)) or 'an empty set'} cannot be one"
            )
        object.__setattr__(self, "failed", failed)

    @property
    def retry_method(self) -> RetryMethod:
        """``method`` as a :class:`RetryMethod`."""
        return RetryMethod(self.method)

    def is_failure(self, status: JobStatus) -> bool:
        """Whether a job ending in ``status`` failed (and may be retried).

        Usage: ``policy.is_failure(JobStatus.STALLED)`` -> ``True``
        """
        return status in self.failed

    def brakes(self, failed_jobs: int, total_jobs: int) -> bool:
        """Whether ``failed_jobs`` of ``total_jobs`` is past the brake.

        Usage: ``FailurePolicy(max_failed_fraction=0.1).brakes(11, 100)`` -> ``True``
        """
        return total_jobs > 0 and failed_jobs > self.max_failed_fraction * total_jobs
