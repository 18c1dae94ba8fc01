"""LocalBackend end to end: the store, the detached agent, statuses, actions and faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
import pytest
from _localjobs import chunk_of, concrete

from aiodirac import (
    InvalidRequestError,
    JobNotFoundError,
    JobState,
    JobStatus,
    LocalBackendError,
    SandboxNotAvailableError,
)
from aiodirac._job._job import Job
from aiodirac.backends.local import LocalBackend, local_site_name

Predicate = Callable[[JobState], bool]


async def wait_for(
    backend: LocalBackend, ids: Sequence[int], predicate: Predicate, timeout: float = 30
) -> dict[int, JobState]:
    with anyio.fail_after(timeout):
        while True:
            states = await backend.status(ids)
            if len(states) == len(ids) and all(predicate(s) for s in states.values()):
                return states
            await anyio.sleep(0.05)


def final(state: JobState) -> bool:
    return state.final


def running(state: JobState) -> bool:
    return state.status is JobStatus.RUNNING


async def run(backend: LocalBackend, *jobs: object, local: tuple[str, ...] = ()) -> list[int]:
    ids = await backend.submit(chunk_of(*jobs, local=local))  # type: ignore[arg-type]
    await backend.confirm(ids)
    return ids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def wait_gone(pid: int, timeout: float = 5) -> None:
    with anyio.fail_after(timeout):
        while _alive(pid):
            await anyio.sleep(0.02)


async def wait_file(path: Path, timeout: float = 10) -> str:
    with anyio.fail_after(timeout):
        while not path.exists() or not path.read_text().strip():
            await anyio.sleep(0.02)
    return path.read_text()


async def test_job_goes_through_diracs_statuses(backend: LocalBackend) -> None:
    (job_id,) = await run(backend, concrete(("/bin/echo", "hi")))
    state = (await wait_for(backend, [job_id], final))[job_id]
    assert state.status is JobStatus.DONE
    assert state.minor_status == "Execution Complete"
    assert state.application_status == "echo successful"
    assert state.site == local_site_name()
    statuses = [h[0] for h in await backend.history(job_id)]
    order = ["Submitting", "Received", "Waiting", "Matched", "Running", "Completing", "Done"]
    assert [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s] == order
    minors = [h[1] for h in await backend.history(job_id)]
    assert "Application Finished Successfully" in minors
    assert "Output Sandbox Uploaded" in minors
    params = await backend.parameters(job_id)
    assert params["StandardOutput"] == "hi"
    assert await backend.peek(job_id) == "hi"


async def test_parametric_job_from_the_job_class(backend: LocalBackend, tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("payload data\n")
    job = Job()
    job.setName("param-%n")
    job.setExecutable("/bin/echo", arguments="value %(v)s")
    job.setExecutable("/bin/cat", arguments="data.txt")
    job.setInputSandbox([str(data)])
    job.setParameterSequence("v", ["a", "b", "c"])
    (chunk,) = job.chunks(backend.capabilities.max_jobs_per_submit)
    ids = await backend.submit(chunk)
    await backend.confirm(ids)
    states = await wait_for(backend, ids, final)
    assert {s.status for s in states.values()} == {JobStatus.DONE}
    for job_id, value in zip(ids, "abc", strict=True):
        info = await backend.output_sandbox(job_id)
        assert info.path is not None
        assert info.format == "tar.bz2"
        with tarfile.open(info.path) as tar:
            names = set(tar.getnames())
            out = tar.extractfile("std.out")
            assert out is not None
            assert out.read().decode() == f"value {value}\npayload data\n"
        assert {"Script1_echo.log", "Script2_cat.log", "std.out", "std.err"} <= names
        assert f"param-{ids.index(job_id)}" in await backend.get_jdl(job_id)


async def test_input_sandbox_is_copied_at_submit_time(
    backend: LocalBackend, tmp_path: Path
) -> None:
    data = tmp_path / "in.txt"
    data.write_text("at submit")
    job = concrete(("/bin/cat", "in.txt"), inputs=(str(data),))
    ids = await backend.submit(chunk_of(job, local=(str(data),)))
    data.write_text("changed later")
    await backend.confirm(ids)
    await wait_for(backend, ids, final)
    assert await backend.peek(ids[0]) == "at submit"


async def test_grid_input_is_refused_and_nothing_stored(backend: LocalBackend, home: Path) -> None:
    job = concrete(("/bin/echo", "x"), InputSandbox=("LFN:/vo/user/x.txt",))
    with pytest.raises(InvalidRequestError, match="LFN"):
        await backend.submit(chunk_of(job))
    with pytest.raises(InvalidRequestError, match="not found"):
        await backend.submit(chunk_of(concrete(("/bin/echo", "x"), inputs=("/no/such/file",))))
    assert await backend.status([1, 2, 3]) == {}
    assert not any((home / "sandboxes").iterdir()) if (home / "sandboxes").exists() else True


async def test_kill_stops_a_running_job_and_its_children(
    backend: LocalBackend, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    job = concrete(("/bin/sh", f"-c 'sleep 300 & echo $$ $! > {pids}; wait'"))
    (job_id,) = await run(backend, job)
    await wait_for(backend, [job_id], running)
    shell, child = (int(p) for p in (await wait_file(pids)).split())
    result = await backend.kill([job_id])
    assert result.done == (job_id,)
    await wait_gone(shell)
    await wait_gone(child)
    await anyio.sleep(0.5)  # the agent must not overwrite the Killed status
    state = (await backend.status([job_id]))[job_id]
    assert state.status is JobStatus.KILLED
    assert state.minor_status == "Marked for termination"
    with pytest.raises(SandboxNotAvailableError):
        await backend.output_sandbox(job_id)
    assert (await backend.kill([job_id])).done == (job_id,)  # DIRAC accepts Killed -> Killed
    assert (await backend.reschedule([job_id])).refused == {job_id: "Killed"}


async def test_delete_stops_a_running_job_and_removes_outputs(
    backend: LocalBackend, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    (slow,) = await run(backend, concrete(("/bin/sh", f"-c 'echo $$ > {pids}; exec sleep 300'")))
    (quick,) = await run(backend, concrete(("/bin/echo", "x")))
    await wait_for(backend, [quick], final)
    archive = (await backend.output_sandbox(quick)).path
    assert archive is not None
    assert os.path.exists(archive)
    await wait_for(backend, [slow], running)
    pid = int(await wait_file(pids))
    result = await backend.delete([slow, quick])
    assert set(result.done) == {slow, quick}
    await wait_gone(pid)
    states = await backend.status([slow, quick])
    assert {s.status for s in states.values()} == {JobStatus.DELETED}
    assert {s.minor_status for s in states.values()} == {"Checking accounting"}
    assert not os.path.exists(archive)
    with pytest.raises(SandboxNotAvailableError, match="deleted"):
        await backend.output_sandbox(quick)


async def test_reschedule_runs_again_until_diracs_maximum(backend: LocalBackend) -> None:
    (job_id,) = await run(backend, concrete(("/bin/sh", "-c 'exit 2'")))
    for runs in range(1, 4):
        with anyio.fail_after(30):
            while True:
                history = await backend.history(job_id)
                state = (await backend.status([job_id]))[job_id]
                if state.final and [h[0] for h in history].count("Matched") == runs:
                    break
                await anyio.sleep(0.05)
        assert state.minor_status == "Application Finished With Errors"
        result = await backend.reschedule([job_id])
        assert result.done == (job_id,)
        assert "Job Rescheduled" in [h[1] for h in await backend.history(job_id)]
    state = (await wait_for(backend, [job_id], final))[job_id]
    with anyio.fail_after(30):
        while [h[0] for h in await backend.history(job_id)].count("Matched") < 4:
            await anyio.sleep(0.05)
    state = (await wait_for(backend, [job_id], final))[job_id]
    assert state.minor_status == "Application Finished With Errors"
    await backend.reschedule([job_id])
    state = (await backend.status([job_id]))[job_id]
    assert state.status is JobStatus.FAILED
    assert state.minor_status == "Maximum of reschedulings reached"


async def test_keep_workdirs(make_backend: Callable[..., LocalBackend], home: Path) -> None:
    backend = make_backend(keep_workdirs=True)
    try:
        (job_id,) = await run(backend, concrete(("/bin/echo", "kept")))
        await wait_for(backend, [job_id], final)
        assert (home / "work" / f"{job_id}.1" / "std.out").read_text() == "kept\n"
    finally:
        await backend.stop_agent()


async def test_one_agent_per_state_folder(
    make_backend: Callable[..., LocalBackend], home: Path
) -> None:
    backends = [make_backend() for _ in range(4)]
    try:
        async with anyio.create_task_group() as group:
            for one in backends:
                group.start_soon(one.start_agent)
        pids = {await one.agent_pid() for one in backends}
        assert len(pids) == 1
        assert None not in pids
        # agents that lost the race exit as soon as they see the lock taken
        with anyio.fail_after(10):
            while len(_agents_of(home)) != 1:
                await anyio.sleep(0.05)
        assert _agents_of(home) == {str(pids.pop())}
        assert not await backends[0].start_agent()
    finally:
        assert await backends[0].stop_agent()
    assert await backends[1].agent_pid() is None


def _agents_of(home: Path) -> set[str]:
    return {p for p in os.listdir("/proc") if p.isdigit() and _is_agent_of(int(p), home)}


def _is_agent_of(pid: int, home: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (
        any(b"aiodirac.backends.local._agent" in part for part in cmdline)
        and str(home).encode() in cmdline
    )


async def test_agent_exits_when_idle(make_backend: Callable[..., LocalBackend]) -> None:
    backend = make_backend(idle_timeout=0.3)
    (job_id,) = await run(backend, concrete(("/bin/echo", "x")))
    await wait_for(backend, [job_id], final)
    with anyio.fail_after(10):
        while await backend.agent_pid() is not None:
            await anyio.sleep(0.05)
    # a new confirmation starts a new agent
    (again,) = await run(backend, concrete(("/bin/echo", "y")))
    assert (await wait_for(backend, [again], final))[again].status is JobStatus.DONE
    await backend.stop_agent()


async def test_sigkilled_agent_is_replaced_and_its_jobs_fail(
    make_backend: Callable[..., LocalBackend], tmp_path: Path
) -> None:
    backend = make_backend()
    pids = tmp_path / "pids"
    (cut,) = await run(backend, concrete(("/bin/sh", f"-c 'echo $$ > {pids}; exec sleep 300'")))
    await wait_for(backend, [cut], running)
    payload = int(await wait_file(pids))
    agent = await backend.agent_pid()
    assert agent is not None
    os.kill(agent, signal.SIGKILL)
    with anyio.fail_after(5):
        while await backend.agent_pid() is not None:
            await anyio.sleep(0.02)
    # another script asks for the status: it finds the agent dead and starts a new one
    other = make_backend()
    state = (await wait_for(other, [cut], final))[cut]
    assert state.status is JobStatus.FAILED
    assert state.minor_status == "Job stalled: pilot not running"
    await wait_gone(payload)
    (fresh,) = await run(other, concrete(("/bin/echo", "after")))
    assert (await wait_for(other, [fresh], final))[fresh].status is JobStatus.DONE
    await other.stop_agent()


async def test_stopping_the_agent_requeues_running_jobs(
    backend: LocalBackend, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    (job_id,) = await run(backend, concrete(("/bin/sh", f"-c 'echo $$ > {pids}; exec sleep 300'")))
    await wait_for(backend, [job_id], running)
    pid = int(await wait_file(pids))
    assert await backend.stop_agent()
    await wait_gone(pid)
    state = (await backend.status([job_id]))[job_id]
    assert state.status is JobStatus.RECEIVED
    assert state.minor_status == "Job Rescheduled"
    await backend.kill([job_id])


async def test_unknown_jobs(backend: LocalBackend) -> None:
    with pytest.raises(JobNotFoundError) as caught:
        await backend.confirm([123456])
    assert caught.value.job_ids == (123456,)
    for call in (backend.output_sandbox, backend.get_jdl, backend.parameters, backend.history):
        with pytest.raises(JobNotFoundError):
            await call(123456)  # type: ignore[operator]
    assert (await backend.delete([123456])).refused == {123456: "unknown job"}


async def test_jobs_outlive_the_submitting_process(home: Path, backend: LocalBackend) -> None:
    script = (
        "import anyio, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from _localjobs import chunk_of, concrete\n"
        "from aiodirac.backends.local import LocalBackend\n"
        "async def main():\n"
        "    b = LocalBackend(sys.argv[1], idle_timeout=10)\n"
        "    ids = await b.submit(chunk_of(concrete(('/bin/sh', \"-c 'sleep 0.5; echo late'\"))))\n"
        "    await b.confirm(ids)\n"
        "    print(ids[0])\n"
        "anyio.run(main)\n"
    )
    here = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", script, str(home), here], capture_output=True, text=True, check=True
    )
    job_id = int(done.stdout)
    state = (await wait_for(backend, [job_id], final))[job_id]
    assert state.status is JobStatus.DONE
    assert await backend.peek(job_id) == "late"
    query = (
        "import anyio, json, sys\n"
        "from aiodirac.backends.local import LocalBackend\n"
        "async def main():\n"
        "    s = await LocalBackend(sys.argv[1]).status([int(sys.argv[2])])\n"
        "    print(json.dumps({k: v.as_dirac() for k, v in s.items()}))\n"
        "anyio.run(main)\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", query, str(home), str(job_id)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(answer.stdout)[str(job_id)]["Status"] == "Done"


async def test_status_of_a_thousand_jobs_is_one_query(backend: LocalBackend) -> None:
    # How fast that query is, is measured by benchmarks/local_backend.py, not here.
    jobs = [concrete(("/bin/true", ""), index=i) for i in range(1000)]
    ids = await backend.submit(chunk_of(*jobs))
    statements: list[str] = []
    backend._db()._db.set_trace_callback(statements.append)
    states = await backend.status(ids)
    backend._db()._db.set_trace_callback(None)
    assert len(states) == 1000
    assert [s for s in statements if s.lstrip().upper().startswith("SELECT")] == [statements[-1]], (
        statements
    )
    assert await backend.summary(ids) == {JobStatus.SUBMITTING: 1000}


async def test_unwritable_state_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    backend = LocalBackend(blocker / "home")
    with pytest.raises(LocalBackendError, match="state folder"):
        await backend.submit(chunk_of(concrete(("/bin/echo", "x"))))
    with pytest.raises(LocalBackendError):
        await backend.status([1])


async def test_damaged_store_is_reported_and_left_alone(home: Path) -> None:
    home.mkdir(parents=True)
    garbage = b"this is not a database" * 100
    (home / "jobs.sqlite").write_bytes(garbage)
    backend = LocalBackend(home)
    with pytest.raises(LocalBackendError, match="damaged"):
        await backend.status([1])
    assert (home / "jobs.sqlite").read_bytes() == garbage


def test_agent_runs_in_the_foreground_as_a_module(home: Path) -> None:
    # it exits after its 0.3 s idle timeout: well before the 30 s timeout of the run
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiodirac.backends.local._agent",
            "--home",
            str(home),
            "--idle-timeout",
            "0.3",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "exits" in done.stderr
    assert (home / "jobs.sqlite").exists()
    assert not (home / "agent.pid").exists()


async def test_listing_an_empty_state_folder_creates_no_store(tmp_path: Path) -> None:
    from aiodirac import LocalBackend

    async with LocalBackend(tmp_path / "state") as backend:
        assert await backend.list_jobs() == []
        report = await backend.clean(older_than=0, dry_run=True)
    assert (report.jobs, report.files_removed) == ((), 0)
    assert not (tmp_path / "state").exists()
