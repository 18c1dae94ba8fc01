"""The tracker against a real DiracX server, with a test pilot moving job statuses.

2,000 jobs go through random legal transition sequences while the tracker follows them: the
events must reproduce every job's final status exactly, with no final state missed and none
reported twice. Then the service goes away in the middle of tracking (a fault proxy refusing
connections): tracking resumes and completes, and no job is marked Failed because of it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiodirac._engine._gate import Limits, RequestGate
from aiodirac._engine._retry import RetryPolicy
from aiodirac._engine.submit._model import SubmitConfig
from aiodirac._engine.submit._submitter import Submitter
from aiodirac._engine.track._events import JobEvent, PollFailed, PollRecovered, TrackEvent
from aiodirac._engine.track._tracker import TrackConfig, Tracker
from aiodirac._job._job import Job
from aiodirac._job._status import JobStatus
from aiodirac.backends._protocol import Backend
from aiodirac.testing._pilot import DiracXTestPilot
from aiodirac.testing._proxy import FaultProxy

pytestmark = [pytest.mark.diracx, pytest.mark.slow]

# Moves a job owner may ask DiracX for, from Received on. Deleted is left out (DiracX may hide
# deleted jobs), so is Scouting (DiracX 0.7.0 does not know it), and so is every move out of a
# final status: the tracker stops at the first one.
_S = JobStatus
_LEGAL: dict[JobStatus, tuple[JobStatus, ...]] = {
    status: tuple(
        sorted(
            (
                target
                for target in JobStatus
                if target is not status
                and status.can_move_to(target)
                and target not in (_S.DELETED, _S.SUBMITTING, _S.SCOUTING)
            ),
            key=lambda s: s.level,
        )
    )
    for status in JobStatus
    if not status.final
}


def random_walk(rng: random.Random, longest: int = 9) -> list[tuple[str, str]]:
    """A legal sequence of (Status, MinorStatus) from Received to a final status."""
    status = _S.RECEIVED
    steps: list[tuple[str, str]] = []
    while not status.final:
        choices = _LEGAL[status]
        if len(steps) >= longest:
            finals = [s for s in choices if s.final]
            choices = tuple(finals) or choices
        status = rng.choice(choices)
        steps.append((str(status), f"step {len(steps) + 1}"))
    return steps


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Any:
    """The session's DiracX (the ``diracx_server`` plugin of tests/, registered on demand)."""
    manager = request.config.pluginmanager
    if not manager.has_plugin("diracx_server"):
        manager.import_plugin("diracx_server")
    return request.getfixturevalue("diracx_server")


@pytest.fixture
async def pilot(server: Any, tmp_path: Path) -> AsyncIterator[DiracXTestPilot]:
    credentials = server.write_credentials(tmp_path / "credentials.json")
    async with server.pilot(tmp_path / "grid", credentials) as pilot:
        yield pilot


async def submit(backend: Backend, count: int, name: str) -> list[int]:
    """``count`` jobs ``<name>-<n>`` of ``true``, submitted and confirmed by the real Submitter."""
    job = Job(name=f"{name}-%n")
    job.setExecutable("true")
    job.setParameterSequence("n", [str(i) for i in range(count)])
    # One request at a time: the development server's SQLite refuses concurrent writers (500).
    config = SubmitConfig(exclusive_confirm=True, campaign=name)
    config_limits = Limits(max_in_flight=1)
    return await Submitter(backend, config, gate=RequestGate(config_limits)).submit(job)


async def drive(
    pilot: DiracXTestPilot, walks: dict[int, list[tuple[str, str]]], rng: random.Random
) -> None:
    """Apply the walks in rounds: a random part of the jobs takes one or two steps each round."""
    position = dict.fromkeys(walks, 0)
    while position:
        batch = rng.sample(sorted(position), k=max(1, len(position) * 2 // 3))
        sequences: dict[int, Sequence[tuple[str, str]]] = {}
        for job_id in batch:
            at = position[job_id]
            steps = walks[job_id][at : at + rng.randint(1, 2)]
            sequences[job_id] = steps
            if at + len(steps) >= len(walks[job_id]):
                del position[job_id]
            else:
                position[job_id] = at + len(steps)
        await pilot.set_status(sequences)
        await anyio.sleep(0.2)


def check_events(events: Sequence[TrackEvent], truth: dict[int, JobStatus]) -> None:
    """Events reproduce every final status exactly; none missed, none twice, none repeated."""
    by_job: dict[int, list[JobEvent]] = {}
    for event in events:
        if isinstance(event, JobEvent):
            by_job.setdefault(event.job_id, []).append(event)
    assert set(by_job) == set(truth)
    for job_id, changes in by_job.items():
        finals = [e for e in changes if e.final]
        assert len(finals) == 1, (job_id, changes)
        assert changes[-1] is finals[0]
        assert finals[0].status is truth[job_id]
        for before, after in itertools.pairwise(changes):
            assert after.old == before.new
            assert (after.status, after.minor_status) != (before.status, before.minor_status)


async def test_2000_jobs_random_legal_walks_reproduce_every_final_status(
    pilot: DiracXTestPilot,
) -> None:
    backend = pilot.backend
    ids = await submit(backend, 2000, "track-walk")
    rng = random.Random(2026)
    walks = {job_id: random_walk(rng) for job_id in ids}
    tracker = Tracker(backend, TrackConfig(min_interval=0.2, max_interval=1.0, page_size=700))
    events: list[TrackEvent] = []
    with anyio.fail_after(300):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drive, pilot, walks, rng)
            async with tracker.track(ids) as stream:
                async for event in stream:
                    events.append(event)
                summary = stream.summary
    truth = {job_id: JobStatus(walk[-1][0]) for job_id, walk in walks.items()}
    server = await backend.status(ids)
    assert {job_id: state.status for job_id, state in server.items()} == truth
    check_events(events, truth)
    assert summary.final == summary.total == 2000
    # 2,000 IDs in pages of 700: 3 requests a cycle at most, fewer as jobs end.
    assert summary.cycles < summary.requests <= summary.cycles * 3
    assert not [e for e in events if isinstance(e, PollFailed)]
    seen_statuses = {e.status for e in events if isinstance(e, JobEvent)}
    assert {_S.DONE, _S.FAILED, _S.KILLED} <= seen_statuses


async def test_the_service_down_mid_tracking_resumes_with_nothing_lost(
    server: Any, pilot: DiracXTestPilot, tmp_path: Path
) -> None:
    """A real outage of a few seconds (the proxy runs on real sockets: no virtual clock)."""
    ids = await submit(pilot.backend, 300, "track-outage")
    rng = random.Random(7)
    walks = {job_id: random_walk(rng, longest=5) for job_id in ids}
    credentials = server.write_credentials(tmp_path / "proxy-credentials.json")
    config = TrackConfig(
        min_interval=0.2,
        max_interval=1.0,
        retry=RetryPolicy(float("inf"), initial=0.2, max_backoff=1.0),
    )
    events: list[TrackEvent] = []
    async with (
        FaultProxy(server.url, verify=server.verify) as proxy,
        server.backend(credentials, url=proxy.url, timeout=5) as backend,
    ):

        async def outage_while_the_jobs_move() -> None:
            await anyio.sleep(1.0)
            async with proxy.down():
                # The jobs move on, and finish, while the tracker cannot reach the service.
                await drive(pilot, walks, rng)
                await anyio.sleep(4.0)

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(outage_while_the_jobs_move)
                async with Tracker(backend, config).track(ids) as stream:
                    async for event in stream:
                        events.append(event)
                    summary = stream.summary
        assert proxy.stats["refused"] + proxy.stats["connections"] > 0
    truth = {job_id: JobStatus(walk[-1][0]) for job_id, walk in walks.items()}
    check_events(events, truth)
    failed = [e for e in events if isinstance(e, PollFailed)]
    assert len(failed) >= 3
    assert all(e.failed_pages == e.total_pages == 1 for e in failed)
    recovered = [e for e in events if isinstance(e, PollRecovered)]
    assert len(recovered) == 1
    assert recovered[0].outage >= 4.0
    assert summary.final == summary.total == 300
    # Nothing was marked Failed but the jobs whose walk really ended Failed.
    failed_jobs = {e.job_id for e in events if isinstance(e, JobEvent) and e.status is _S.FAILED}
    assert failed_jobs == {j for j, s in truth.items() if s is _S.FAILED}


async def test_cancelling_the_consumer_stops_polling(pilot: DiracXTestPilot) -> None:
    backend = pilot.backend
    ids = await submit(backend, 40, "track-cancel")
    tracker = Tracker(backend, TrackConfig(min_interval=0.1, max_interval=0.1))
    before = len(anyio.get_running_tasks())
    with anyio.move_on_after(1.0) as scope:
        async with tracker.track(ids) as stream:
            async for _ in stream:
                pass
    assert scope.cancelled_caught
    assert stream.summary.cycles >= 3
    cycles = stream.summary.cycles
    await anyio.sleep(0.5)
    assert stream.summary.cycles == cycles
    assert len(anyio.get_running_tasks()) == before
