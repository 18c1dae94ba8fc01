"""``Campaign``: a parametric job submitted, followed, fetched and retried, resumable.

Made by :meth:`AsyncDirac.campaign <aiodirac.AsyncDirac.campaign>`. Running it does, side by
side, what a grid user does by hand: submit every job exactly once, follow them, download each
Done job's outputs into ``<dest>/<job id>/`` while the others still run, and retry the failed
ones by the :class:`~aiodirac.FailurePolicy`. Everything is journaled: killed at any moment
(Ctrl-C, ``kill -9``, a reboot), the same campaign started again with the same journal goes on
where it stopped, with nothing submitted, retried or downloaded twice and nothing forgotten.

Usage::

    async with AsyncDirac() as dirac:
        campaign = dirac.campaign(job, journal="scan.db", dest="out/")
        async with campaign:
            async for event in campaign:
                print(event)
        print(campaign.progress.outcome)
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Self

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from aiodirac._engine.track._tracker import TrackConfig
from aiodirac._exceptions import InvalidArgumentError
from aiodirac._journal import Journal
from aiodirac._report import write_report

from ._events import CampaignEnded, CampaignEvent, CampaignProgress
from ._policy import FailurePolicy
from ._report_data import read_report_data
from ._runner import Runner
from ._state import CampaignState

if TYPE_CHECKING:
    from aiodirac._client import AsyncDirac
    from aiodirac._job._job import Job

__all__ = ["Campaign", "CampaignCallback"]

logger = logging.getLogger("aiodirac.campaign")

#: A callback receives every event, in stream order; it may be sync or async.
CampaignCallback = Callable[[CampaignEvent], object]


class Campaign:
    """One campaign of one (parametric) job, resumable from its journal.

    Create it with :meth:`AsyncDirac.campaign <aiodirac.AsyncDirac.campaign>`; the arguments
    are checked at once, so that a policy that makes no sense is refused before anything is
    submitted. Run it with ``async with campaign:`` (it runs in the background while the block
    is open; iterate over it for its events, ``await campaign.wait()`` for its end) or with
    ``await campaign.run()``. A campaign runs once per object; to resume, make a new one with
    the same job and journal.

    Args:
        dirac: the open client.
        job: the job (parametric or not); its concrete jobs are the campaign's jobs.
        journal: the campaign's journal file (created if missing; one campaign per file).
        dest: where outputs go (``<dest>/<job id>/``); ``None`` fetches nothing.
        policy: the :class:`FailurePolicy` (default: 3 attempts, reschedule, 60 s apart,
            brake at 25% failed).
        name: the campaign's name (default: the journal file's stem).
        callbacks: called with every event, in order (sync or async); one that raises is
            logged and the campaign goes on.
        track_config: status polling (default: the client's).

    Raises:
        InvalidArgumentError: ``job`` is not a Job, ``policy`` is not a FailurePolicy, or the
            journal path is empty.

    Usage::

        campaign = dirac.campaign(job, journal="scan.db", dest="out/")
        progress = await campaign.run()
    """

    def __init__(
        self,
        dirac: AsyncDirac,
        job: Job,
        *,
        journal: str | os.PathLike[str],
        dest: str | os.PathLike[str] | None = None,
        policy: FailurePolicy | None = None,
        name: str | None = None,
        callbacks: Sequence[CampaignCallback] = (),
        track_config: TrackConfig | None = None,
    ) -> None:
        from aiodirac._job._job import Job

        if not isinstance(job, Job):
            raise InvalidArgumentError(
                f"a campaign runs one Job (parametric or not), not {type(job).__name__}"
            )
        if policy is None:
            policy = FailurePolicy()
        elif not isinstance(policy, FailurePolicy):
            raise InvalidArgumentError(
                f"policy must be a FailurePolicy, not {type(policy).__name__}"
            )
        if not os.fspath(journal):
            raise InvalidArgumentError("a campaign needs a journal file name")
        self.dirac = dirac
        self.job = job
        self.journal_path = Path(journal)
        self.dest = Path(dest) if dest is not None else None
        self.policy = policy
        self.total = len(job)
        stem = re.sub(r"[^A-Za-z0-9._-]", "-", self.journal_path.stem).lstrip("._-")
        self.name = name or stem[:64] or "aiodirac"
        self.track_config = track_config or dirac._track_config
        self.journal: Journal | None = None
        self._callbacks = tuple(callbacks)
        self._runner: Runner | None = None
        self._stack: AsyncExitStack | None = None
        self._outbox: list[CampaignEvent] = []
        self._wake = anyio.Event()
        self._closing = False
        self._send: MemoryObjectSendStream[list[CampaignEvent]] | None = None
        self._receive: MemoryObjectReceiveStream[list[CampaignEvent]] | None = None
        self._pending: deque[CampaignEvent] = deque()
        self._error: BaseException | None = None
        self._error_raised = False
        self._started = False
        self._ended = False

    def __repr__(self) -> str:
        return f"<Campaign {self.name} [{self.progress}]>"

    # -- state ----------------------------------------------------------------------------

    @property
    def progress(self) -> CampaignProgress:
        """Where the campaign stands now (counts per status, downloads, retries, outcome)."""
        runner = self._runner
        state = runner.state if runner is not None else CampaignState(self.total)
        return state.progress(self.name, downloads=self.dest is not None, ended=self._ended)

    @property
    def job_ids(self) -> list[int]:
        """The current job ID of every submitted job, in campaign index order.

        A resubmitted job shows its replacement; a job not submitted yet is absent.
        """
        runner = self._runner
        return [] if runner is None else [j for j in runner.state.job_id if j]

    # -- running --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._started:
            raise RuntimeError(
                "a Campaign runs once: make a new one (same job and journal) to resume it"
            )
        self._started = True
        self._send, self._receive = anyio.create_memory_object_stream[list[CampaignEvent]](16)
        stack = AsyncExitStack()
        stack.callback(self._receive.close)
        try:
            self.journal = await stack.enter_async_context(await Journal.open(self.journal_path))
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            self._runner = Runner(self)
            tg.start_soon(self._run)
            tg.start_soon(self._deliver)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def _run(self) -> None:
        runner = self._runner
        assert runner is not None
        try:
            await runner.run()
            self._ended = True
            self._emit(CampaignEnded(self.progress))
        except Exception as exc:  # noqa: BLE001 - raised to the consumer from the stream
            logger.debug("campaign %s stopped by %r", self.name, exc)
            self._error = exc
        finally:
            self._closing = True
            self._wake.set()

    def _emit(self, event: CampaignEvent) -> None:
        self._outbox.append(event)
        if len(self._outbox) == 1:
            self._wake.set()

    async def _deliver(self) -> None:
        """Hand events to the callbacks, then to the stream, in batches and in order."""
        send = self._send
        assert send is not None
        try:
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                batch, self._outbox = self._outbox, []
                if batch:
                    for event in batch:
                        for callback in self._callbacks:
                            await _call(callback, event)
                    # Nobody listening to the stream is fine: callbacks still get everything.
                    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                        await send.send(batch)
                if self._closing and not self._outbox:
                    return
        finally:
            send.close()

    def __aiter__(self) -> Campaign:
        return self

    async def __anext__(self) -> CampaignEvent:
        pending = self._pending
        if not pending:
            if self._receive is None:
                raise RuntimeError("run the campaign first: 'async with campaign:'")
            try:
                pending.extend(await self._receive.receive())
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._raise_error()
                raise StopAsyncIteration from None
        return pending.popleft()

    def _raise_error(self) -> None:
        if self._error is not None and not self._error_raised:
            self._error_raised = True
            raise self._error

    async def wait(self) -> CampaignProgress:
        """Consume the events to the end; return the final progress.

        Raises:
            BackendError, JournalError, SubmissionError: what stopped the campaign.

        Usage: ``progress = await campaign.wait()``
        """
        async for _ in self:
            pass
        return self.progress

    async def run(self) -> CampaignProgress:
        """Run the campaign to its end (callbacks see every event); return the final progress.

        Usage: ``print((await campaign.run()).outcome)``
        """
        async with self:
            return await self.wait()

    async def write_report(self, path: str | os.PathLike[str]) -> Path:
        """Write the campaign's HTML report with charts, from its journal, to ``path``.

        Works while it runs (the report shows it so far) and after; the journal is read and the
        page drawn in a worker thread. See :func:`aiodirac.write_report`.

        Args:
            path: the HTML file to write (replaced whole if it exists).

        Returns:
            The path written.

        Raises:
            JournalError: the journal holds no campaign yet (the campaign never started).
            ConfigurationError: matplotlib is not installed (``pip install 'aiodirac[report]'``).
            InvalidArgumentError: ``path``'s folder does not exist.

        Usage: ``await campaign.write_report("report.html")``
        """
        data = await anyio.to_thread.run_sync(read_report_data, self.journal_path)
        return await anyio.to_thread.run_sync(write_report, data, path)


async def _call(callback: CampaignCallback, event: CampaignEvent) -> None:
    try:
        result = callback(event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("campaign callback %r failed on %r; the campaign goes on", callback, event)
