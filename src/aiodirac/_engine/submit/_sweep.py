"""The sweep: phase three of the two-phase protocol, after a run whose replies were lost.

A submit request whose reply was lost may have created jobs nobody recorded; they sit
unconfirmed (``Submitting``), where nothing runs. Once the server has surely finished such
requests (:meth:`Sweeper.settle`), the sweep finds the campaign's unconfirmed jobs that no journal
or run holds and discards them (``Killed``, with a MinorStatus saying why). It touches only jobs
it can prove are the campaign's: its JobGroups, its time window, never an ID the journal holds;
in a JobGroup the campaign does not own, never a job younger than ``sweep_grace``.

Usage: ``sweeper = Sweeper(backend, journal, config, run.request, batch=1000)``
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import anyio

from aiodirac._exceptions import InvalidTransitionError, JobNotFoundError
from aiodirac._journal import CampaignInfo
from aiodirac.backends._protocol import Backend

from ._model import SubmitConfig, SubmitJournal

__all__ = ["Requester", "Sweeper"]

T = TypeVar("T")

logger = logging.getLogger("aiodirac.submit")

# DIRAC's MinorStatus column holds 128 characters.
_MAX_MINOR = 128


class Requester(Protocol):
    """One backend call through the run's request gate (in flight, paced, retried)."""

    async def __call__(self, fn: Callable[[], Awaitable[T]]) -> T: ...


class Sweeper:
    """Settles and sweeps a campaign's unconfirmed leftovers (see the module docstring).

    Args:
        backend: where the leftovers are.
        journal: the campaign journal (its recorded IDs are never swept; sweeps are recorded).
        config: ``sweep_settle``, ``sweep_grace`` and ``clock_skew``.
        request: how a backend call is made.
        batch: job IDs per discard request.

    Attributes:
        swept: jobs discarded so far.
        unswept: young jobs of a shared JobGroup left alone.
    """

    def __init__(
        self,
        backend: Backend,
        journal: SubmitJournal | None,
        config: SubmitConfig,
        request: Requester,
        *,
        batch: int,
    ) -> None:
        self.backend = backend
        self.journal = journal
        self.config = config
        self.request = request
        self.batch = batch
        self.swept = 0
        self.unswept = 0

    async def settle(self, unsettled: datetime | None) -> None:
        """Wait until the server has surely finished the requests whose replies were lost.

        A server goes on with a request its client gave up on (DiracX does): the jobs it
        creates may appear after the client's timeout or cancellation, and a sweep that ran
        before would miss them.
        """
        if unsettled is None:
            return
        settle = self.config.sweep_settle
        if settle is None:
            settle = self.backend.capabilities.settle_time
        wait = (unsettled + timedelta(seconds=settle) - datetime.now(UTC)).total_seconds()
        if wait > 0:
            logger.info(
                "sweep: waiting %.1f s for the server to finish requests whose replies were lost",
                wait,
            )
            await anyio.sleep(wait)

    async def sweep(
        self, campaign: CampaignInfo, groups: Mapping[str, bool], known_ids: Iterable[int]
    ) -> None:
        """Discard this campaign's unconfirmed jobs that no journal or run holds: in each of
        its JobGroups (``groups``: whether the campaign owns it), since it began."""
        known = set(known_ids)
        if self.journal is not None:
            known |= await self.journal.recorded_ids()
        since = campaign.created - timedelta(seconds=self.config.clock_skew)
        now = datetime.now(UTC)
        reason = f"Swept by aiodirac: unconfirmed duplicate, campaign {campaign.name}"
        reason = reason[:_MAX_MINOR]
        for group, owned in sorted(groups.items()):
            found = await self.request(
                functools.partial(self.backend.find_unconfirmed, job_group=group, since=since)
            )
            leftovers: list[int] = []
            for job in found:
                if job.job_id in known:
                    continue
                young = job.submitted is not None and (now - job.submitted).total_seconds() < (
                    self.config.sweep_grace
                )
                if not owned and young:
                    self.unswept += 1
                    continue
                leftovers.append(job.job_id)
            for start in range(0, len(leftovers), self.batch):
                batch = leftovers[start : start + self.batch]
                await self.discard(batch, reason)

    async def discard(self, batch: list[int], reason: str) -> None:
        try:
            await self.request(lambda: self.backend.discard(batch, reason))
            done = batch
        except (InvalidTransitionError, JobNotFoundError) as exc:
            # Someone confirmed or removed some meanwhile: discard the rest one by one.
            logger.info("sweep: %s; discarding the others one by one", exc)
            done = []
            for job_id in batch:
                try:
                    await self.request(functools.partial(self.backend.discard, [job_id], reason))
                    done.append(job_id)
                except (InvalidTransitionError, JobNotFoundError):
                    continue
        self.swept += len(done)
        logger.info("sweep: discarded %d unconfirmed leftovers: %s", len(done), done)
        if self.journal is not None and done:
            with anyio.CancelScope(shield=True):
                await self.journal.record_swept(done, reason)
