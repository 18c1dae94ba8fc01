"""How a tracker polls: :class:`TrackConfig`, apart from the tracker so that a client can hold
its settings without loading the tracking machinery (memory streams, events).

Usage: ``TrackConfig(min_interval=5, max_interval=120)``
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from aiodirac._engine._retry import RetryPolicy
from aiodirac._exceptions import ConfigurationError

__all__ = ["TrackConfig"]

# Polling a campaign must outlive any outage: retry forever, from 2 s up to a minute apart.
_DEFAULT_RETRY = RetryPolicy(deadline=math.inf, initial=2.0, max_backoff=60.0)


@dataclass(frozen=True, slots=True)
class TrackConfig:
    """How a tracker polls. Every field has a default suited to DiracX.

    Attributes:
        min_interval: seconds between cycles while jobs change.
        max_interval: longest wait between cycles when nothing changes.
        growth: factor applied to the interval after each cycle without change (>= 1).
        buffer_size: events the stream holds before polling waits for the consumer.
        retry: backoff after failed cycles (:class:`aiodirac.RetryPolicy`: full jitter,
            ``Retry-After`` honoured). Its ``max_attempts`` and ``deadline`` (from the first
            failure) decide when tracking gives up and the stream raises the last error; the
            default (2 s up to 60 s, no deadline) never gives up while the stream is open.
            Beware ``RetryPolicy()``'s own 120 s deadline: pass ``deadline=math.inf`` to ride
            out any outage.
        page_size: job IDs per status request; ``None`` uses the backend's largest page.

    Raises:
        ConfigurationError: a value out of range.

    Usage: ``TrackConfig(min_interval=5, max_interval=120)``
    """

    min_interval: float = 2.0
    max_interval: float = 60.0
    growth: float = 1.5
    buffer_size: int = 1024
    retry: RetryPolicy = field(default_factory=lambda: _DEFAULT_RETRY)
    page_size: int | None = None

    def __post_init__(self) -> None:
        checks = (
            ("min_interval", self.min_interval >= 0),
            ("max_interval", self.max_interval >= self.min_interval),
            ("growth", self.growth >= 1),
            ("buffer_size", self.buffer_size >= 0),
            ("page_size", self.page_size is None or self.page_size >= 1),
        )
        for name, ok in checks:
            value = getattr(self, name)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise ConfigurationError(f"TrackConfig.{name}={value!r} is out of range")

    def backoff(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` consecutive failed cycles.

        ``uniform(0, retry.backoff(failures))``, never less than a server's ``retry_after``.

        Usage: ``TrackConfig().backoff(3)`` -> between 0 and 8.0
        """
        delay = random.uniform(0.0, self.retry.backoff(failures))
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return delay

    def gives_up(self, failures: int, outage: float) -> bool:
        """Whether tracking stops after ``failures`` failed cycles over ``outage`` seconds.

        Usage: ``TrackConfig().gives_up(1000, 86400)`` -> ``False``
        """
        retry = self.retry
        if retry.max_attempts is not None and failures >= retry.max_attempts:
            return True
        return outage > retry.deadline
