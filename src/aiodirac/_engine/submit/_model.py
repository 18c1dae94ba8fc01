"""What a submission is configured with and reports: settings, submitted jobs, failures.

Pure values; the engine that uses them is :mod:`aiodirac._engine.submit._submitter`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from aiodirac._exceptions import (
    ConfigurationError,
)

if TYPE_CHECKING:
    from aiodirac._engine._gate import Limits
    from aiodirac._journal import CampaignInfo, CampaignSummary, ChunkRecord

__all__ = ["ChunkFailure", "SubmitConfig", "SubmitJournal", "SubmitReport", "SubmittedJob"]

# DIRAC's JobGroup column holds 32 characters.
_MAX_GROUP = 32
_CAMPAIGN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Job IDs per confirmation request by default (see SubmitConfig.confirm_batch_for).
_CONFIRM_IDS = 500


@dataclass(frozen=True, slots=True)
class SubmitConfig:
    """Campaign identity and how the two-phase protocol runs. The defaults suit a shared
    production service.

    How many requests are in flight, how fast they are sent and how they are retried is not set
    here but in the client's :class:`~aiodirac.Limits`, shared by every request it sends.

    Attributes:
        campaign: the campaign's name (letters, digits, ``.``, ``_``, ``-``); default: the
            journal's, else the journal file's stem, else ``aiodirac``.
        job_group: the JobGroup given to jobs that have none; default: ``<campaign>-<random>``,
            unique to the campaign (so that its sweep is provably safe).
        sweep_grace: seconds an unconfirmed job must have waited before a sweep of a JobGroup
            the campaign does not own may discard it (longer than any request takes).
        clock_skew: seconds the sweep's time window reaches back before the campaign began,
            allowing for a server clock behind ours.
        sweep_settle: seconds the sweep waits after the last submit request whose reply was
            lost (in this run, or in the earlier run a resumed campaign follows): a server
            finishes a request its client gave up on, so what that request creates may appear
            a moment later, and the sweep must see it. Default: the backend's
            ``capabilities.settle_time`` (DiracX: 10 s; the local backend: 0).
        confirm_batch: job IDs per confirmation request (default: see :meth:`confirm_batch_for`).
        confirm_linger: seconds a created chunk may wait for others to share its
            confirmation request (fewer, bigger confirmations: less load on the service; the
            jobs start at most this much, plus one confirmation, later).
        exclusive_confirm: send a confirmation only while none of this run's submissions is
            in flight. A confirmation and job insertions write the same tables; on a service
            whose database locks coarsely (DiracX on SQLite, as in tests) overlapping them can
            stall it for its lock timeout. Off by default: when on, each confirmation first
            waits for the submissions in flight, a pause of the pipeline of about one round trip.

    Usage: ``SubmitConfig(campaign="scan", confirm_linger=0.5)``
    """

    campaign: str | None = None
    job_group: str | None = None
    sweep_grace: float = 300.0
    clock_skew: float = 300.0
    sweep_settle: float | None = None
    confirm_batch: int | None = None
    confirm_linger: float = 1.0
    exclusive_confirm: bool = False

    def __post_init__(self) -> None:
        if self.sweep_grace < 0 or self.clock_skew < 0 or (self.sweep_settle or 0) < 0:
            raise ConfigurationError(
                "SubmitConfig: sweep_grace, clock_skew and sweep_settle must be >= 0"
            )
        if self.campaign is not None and not _CAMPAIGN_NAME.fullmatch(self.campaign):
            raise ConfigurationError(
                f"campaign name {self.campaign!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )
        if self.job_group is not None and not (
            0 < len(self.job_group) <= _MAX_GROUP and _CAMPAIGN_NAME.fullmatch(self.job_group)
        ):
            raise ConfigurationError(
                f"job group {self.job_group!r}: use 1-32 letters, digits, '.', '_' or '-'"
            )
        if self.confirm_batch is not None and self.confirm_batch < 1:
            raise ConfigurationError("SubmitConfig.confirm_batch must be at least 1")
        if self.confirm_linger < 0:
            raise ConfigurationError("SubmitConfig.confirm_linger must be >= 0")

    def confirm_batch_for(self, max_jobs: int, max_ids_per_update: int) -> int:
        """Job IDs per confirmation on a backend with these limits (``confirm_batch`` if set).

        By default as many as the backend takes in one request, up to 500. On DiracX a
        confirmation of N jobs costs the server about 16 ms + 0.49 ms x N + 85 ns x N^2
        (``benchmarks/confirm_cost.py``, MariaDB, 2 workers): the fixed cost of a request, the
        per-job work of DiracX 0.7.0 (DIRAC's state machine and a ``MagicMock`` per job, which
        no client can avoid) and its ``UPDATE .. CASE`` over the N jobs, evaluated for each of
        them. Per job that is lowest near 430 IDs: 1.28 ms at 20, 0.58 at 200, 0.56 at 500,
        0.59 at 1,000. The per-job work runs without a pause, so a bigger batch also holds one
        server worker longer. A batch holds what arrived within ``confirm_linger``, so a slow
        campaign still confirms in time.

        Usage: ``config.confirm_batch_for(20, 1000)`` (500 with the defaults)
        """
        if self.confirm_batch is not None:
            return self.confirm_batch
        return max(max_jobs, min(max_ids_per_update, _CONFIRM_IDS))

    def window_for(self, max_jobs: int, max_ids_per_update: int, limits: Limits) -> int:
        """Chunks the pipeline keeps alive at once (being sent or waiting for confirmation).

        At least ``limits.window``, and room for the requests in flight plus two confirmation
        batches (one being confirmed, the next gathering), so that submissions never wait for a
        confirmation. It bounds memory: 58 chunks of 20 jobs with the defaults on DiracX.

        Usage: ``config.window_for(20, 1000, Limits())`` (58 with the defaults)
        """
        batch = self.confirm_batch_for(max_jobs, max_ids_per_update)
        return max(limits.window, limits.max_in_flight + 2 * -(-batch // max_jobs))


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    """A job that was created and confirmed.

    Attributes:
        job_id: its ID on the backend.
        index: its global index in the submission (``%n``).
        name: its JobName.

    Usage: ``async for s in submitted: print(s.index, s.job_id)``
    """

    job_id: int
    index: int
    name: str


@dataclass(frozen=True, slots=True)
class ChunkFailure:
    """A chunk the backend refused for good.

    Usage: ``for f in report.failures: print(f)``
    """

    indices: tuple[int, ...]
    names: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        first, last = self.indices[0], self.indices[-1]
        span = f"job {first}" if first == last else f"jobs {first}-{last}"
        names = self.names[0] if len(self.names) == 1 else f"{self.names[0]} .. {self.names[-1]}"
        return f"{span} ({names}): {self.message}"


@dataclass(frozen=True, slots=True)
class SubmitReport:
    """What one run of the submitter did.

    Attributes:
        campaign: the campaign's name.
        job_group: the JobGroup given to jobs that had none.
        confirmed: jobs created and confirmed by this run.
        resumed: jobs created by an earlier run and confirmed by this one.
        already: jobs an earlier run had confirmed (skipped).
        resent: requests sent again after a transient failure.
        swept: unconfirmed leftovers discarded by this run's sweep.
        unswept: unconfirmed leftovers younger than ``sweep_grace``, left to the next run.
        failures: chunks refused for good.
        requests: requests sent (all kinds).
        elapsed: seconds the run took.

    Usage: ``print(submitter.report)``
    """

    campaign: str
    job_group: str
    confirmed: int = 0
    resumed: int = 0
    already: int = 0
    resent: int = 0
    swept: int = 0
    unswept: int = 0
    failures: tuple[ChunkFailure, ...] = ()
    requests: int = 0
    elapsed: float = 0.0

    def __str__(self) -> str:
        text = (
            f"campaign {self.campaign}: {self.confirmed} jobs submitted, {self.resumed} resumed, "
            f"{self.already} already done, {self.resent} requests resent, {self.swept} "
            f"leftovers swept, {len(self.failures)} chunks failed, in {self.elapsed:.1f} s"
        )
        if self.unswept:
            text += f" ({self.unswept} recent leftovers will be swept by the next run)"
        return text


class SubmitJournal(Protocol):
    """The part of the campaign journal the submitter uses (:class:`~aiodirac.Journal` is one).

    The two-phase protocol writes each chunk before its request leaves (``chunk_sent``), its IDs
    once known (``chunk_created``) and its confirmation (``chunks_confirmed``); a run started
    again reads them back. Another store can stand in for the SQLite journal by keeping the same
    promises (every write durable before the method returns).

    Usage: ``Submitter(backend, journal=my_journal)``
    """

    @property
    def path(self) -> Path:
        """Where the journal lives (names the campaign when none is given)."""
        ...

    def acquire_submit_lock(self) -> None:
        """Make this the journal's only submitter until :meth:`release_submit_lock`."""

    def release_submit_lock(self) -> None:
        """Let another submitter use the journal."""

    async def campaign(self) -> CampaignInfo | None:
        """The campaign recorded, if any."""

    async def start_campaign(self, name: str, job_group: str, *, owns_group: bool) -> CampaignInfo:
        """Record the campaign (or check it is the recorded one)."""
        ...

    async def summary(self) -> CampaignSummary:
        """Counts of chunks and jobs per state."""
        ...

    async def chunk_groups(self) -> set[str]:
        """Every JobGroup a recorded chunk was sent with."""
        ...

    async def last_unsettled(self) -> datetime | None:
        """When the latest request whose outcome is unknown ended."""

    async def chunk(self, first: int, last: int) -> ChunkRecord | None:
        """The chunk of these global indices, if recorded."""

    async def overlapping_indices(self, first: int, last: int) -> int:
        """How many recorded chunks overlap these indices without being this chunk."""
        ...

    async def chunk_sent(self, first: int, last: int, digest: str, job_group: str) -> ChunkRecord:
        """Record that a chunk's request is about to leave."""
        ...

    async def chunk_created(self, chunk_id: int, jobs: Sequence[tuple[int, int, str]]) -> None:
        """Record the IDs a chunk's jobs got."""

    async def chunks_confirmed(self, chunk_ids: Iterable[int]) -> None:
        """Record that these chunks' jobs were confirmed."""

    async def chunk_failed(self, chunk_id: int, error: str) -> None:
        """Record that a chunk failed (a later run sends it again)."""

    async def recorded_ids(self) -> set[int]:
        """Every job ID the journal holds (the sweep never touches them)."""
        ...

    async def record_swept(self, job_ids: Iterable[int], reason: str) -> None:
        """Record the leftovers a sweep discarded."""
