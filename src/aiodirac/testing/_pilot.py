"""A test pilot that plays the grid for a DiracX development server.

Nothing moves jobs on a DiracX server without a grid behind it. :class:`DiracXTestPilot` does what
a DIRAC pilot and job wrapper would: it picks up the owner's waiting jobs, moves them
Checking -> Waiting -> Matched -> Running, runs them on this machine with aiodirac's local
executor (the same steps, logs, ``std.out`` and CPU limit as a worker node), uploads the output
sandbox **with the owner's identity** (DiracX only hands out download URLs for sandboxes in the
caller's own namespace) and attaches it to the job, then sets ``Done`` or ``Failed``.

DiracX 0.7.0 has no endpoint that returns a job's JDL, so the pilot reads it from the server's
JobDB (``DIRACX_DB_URL_JOBDB`` in the server's env file): a SQLite file on the one-process test
app (opened read-only), a MariaDB/MySQL database on a production-shaped server (read with PyMySQL,
``pip install pymysql``). For tests that only need statuses to move, :meth:`DiracXTestPilot.set_status`
drives many jobs along given sequences in one request per batch.

For development servers only: never point it at a production DiracX.

Usage::

    pilot = DiracXTestPilot.from_env_file("/tmp/dx/env.sh", workdir=tmp_path / "grid")
    async with pilot:
        runs = await pilot.run_waiting()
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import io
import logging
import os
import shlex
import shutil
import sqlite3
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import anyio
import anyio.to_thread
import httpx

from aiodirac._exceptions import (
    ConfigurationError,
    InvalidRequestError,
    InvalidTransitionError,
    SandboxError,
)
from aiodirac._job._jdl import parse_jdl
from aiodirac._job._spec import ConcreteJob, JDLValue
from aiodirac._job._status import JobStatus, MinorStatus
from aiodirac._job._workflow import steps_for
from aiodirac._resource import AsyncResource
from aiodirac.backends.diracx import DiracXBackend, SandboxArchive
from aiodirac.backends.diracx._errors import describe_jobs, raise_for_response
from aiodirac.backends.local._executor import run_job
from aiodirac.backends.local._sandbox import pack_output_sandbox

__all__ = ["DiracXTestPilot", "PilotRun", "StatusStep", "read_env_file"]

logger = logging.getLogger("aiodirac.testing.pilot")

#: A status to set, alone or with its MinorStatus (and ApplicationStatus).
StatusStep = JobStatus | str | tuple[str, str] | tuple[str, str, str]

_WAITING = (JobStatus.RECEIVED, JobStatus.CHECKING, JobStatus.WAITING)
_SOURCE = "aiodirac-test-pilot"
_TO_RUNNING: tuple[StatusStep, ...] = (
    (JobStatus.CHECKING, "JobPath"),
    (JobStatus.WAITING, "Pilot Agent Submission"),
    (JobStatus.MATCHED, "Assigned"),
    (JobStatus.RUNNING, MinorStatus.JOB_INITIALIZATION),
)


@dataclass(frozen=True, slots=True)
class PilotRun:
    """What the pilot did with one job.

    Attributes:
        job_id: the job.
        status: the final status it set (Done, Failed...).
        minor_status: its MinorStatus.
        application_status: the payload's ApplicationStatus.
        output_pfn: the output sandbox attached, if any.
        workdir: where the job ran.

    Usage: ``[run.status for run in await pilot.run_waiting()]``
    """

    job_id: int
    status: JobStatus
    minor_status: str
    application_status: str
    output_pfn: str | None
    workdir: Path


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``export KEY=value`` lines of ``scripts/diracx.sh``'s ``env.sh``, as a dict.

    Usage: ``url = read_env_file(state / "env.sh")["DIRACX_URL"]``
    """
    values: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("export "):
            key, _, raw = line[len("export ") :].partition("=")
            parts = shlex.split(raw)
            values[key] = parts[0] if parts else ""
    return values


def _extract_jdl(stored: str | bytes) -> str:
    # DIRAC stores JDLs zlib-compressed and base64-encoded (JobDBUtils.compressJDL)
    text = stored.decode() if isinstance(stored, bytes) else stored
    if text.lstrip().startswith("["):
        return text
    return zlib.decompress(base64.b64decode(text)).decode()


def _read_jdls(jobdb: str | os.PathLike[str], job_ids: Sequence[int]) -> dict[int, str]:
    """The stored JDLs of jobs, read from the server's JobDB: a SQLite file (or ``sqlite``
    URL) or a ``mysql`` URL (``mysql+aiomysql://user:password@host:port/JobDB``)."""
    target = os.fspath(jobdb)
    if target.startswith("mysql"):
        rows = _mysql_rows(target, job_ids)
    else:
        rows = _sqlite_rows(target.split(":///", 1)[1] if "://" in target else target, job_ids)
    return {int(job_id): _extract_jdl(stored) for job_id, stored in rows}


_JDL_QUERY = "SELECT JobID, JDL FROM JobJDLs WHERE JobID IN ({marks})"


def _sqlite_rows(path: str, job_ids: Sequence[int]) -> list[tuple[Any, Any]]:
    rows: list[tuple[Any, Any]] = []
    uri = f"file:{path}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as connection:
        for start in range(0, len(job_ids), 500):
            batch = list(job_ids[start : start + 500])
            query = _JDL_QUERY.format(marks=",".join("?" * len(batch)))
            rows.extend(connection.execute(query, batch).fetchall())
    return rows


def mysql_connect(url: str) -> Any:
    """A PyMySQL connection to a DiracX database URL (``mysql+aiomysql://user:pw@host:port/DB``).

    Raises:
        ConfigurationError: PyMySQL is not installed.

    Usage: ``with contextlib.closing(mysql_connect(url)) as connection: ...``
    """
    try:
        pymysql = importlib.import_module("pymysql")
    except ImportError as exc:
        raise ConfigurationError(
            "reading a MariaDB/MySQL database of DiracX needs PyMySQL: pip install pymysql"
        ) from exc
    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/"),
        connect_timeout=30,
    )


def _mysql_rows(url: str, job_ids: Sequence[int]) -> list[tuple[Any, Any]]:
    connection = mysql_connect(url)
    rows: list[tuple[Any, Any]] = []
    with contextlib.closing(connection), contextlib.closing(connection.cursor()) as cursor:
        for start in range(0, len(job_ids), 500):
            batch = list(job_ids[start : start + 500])
            cursor.execute(_JDL_QUERY.format(marks=",".join(["%s"] * len(batch))), batch)
            rows.extend(cursor.fetchall())
    return rows


def _safe_extract(data: bytes, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    if data[:4] == b"\x28\xb5\x2f\xfd":  # zstd: Python 3.11's tarfile cannot read it
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
        with tarfile.open(fileobj=reader, mode="r|") as stream:
            stream.extractall(workdir, filter="data")
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        tar.extractall(workdir, filter="data")


def _step_body(step: StatusStep) -> dict[str, str]:
    if isinstance(step, tuple):
        body = {"Status": str(step[0]), "MinorStatus": step[1]}
        if len(step) == 3:
            body["ApplicationStatus"] = step[2]
    else:
        body = {"Status": str(step)}
    body["Source"] = _SOURCE
    return body


class DiracXTestPilot(AsyncResource):
    """Plays the grid for a DiracX development server (see the module docstring).

    Args:
        url: the DiracX server.
        jobdb: the server's JobDB, to read job JDLs: its SQLite file, or its ``mysql`` URL
            (``DIRACX_DB_URL_JOBDB``).
        workdir: where jobs run (``<workdir>/<job id>/``).
        token / credentials_path: the job owner's identity, as for :class:`DiracXBackend`.
        verify: TLS verification (``True``, ``False`` or a CA bundle path), as for
            :class:`DiracXBackend`.
        site: the Site the jobs are reported on.
        timeout: HTTP timeout in seconds.

    Usage::

        async with DiracXTestPilot(url, jobdb=db, workdir=tmp, token=tok) as pilot:
            await pilot.run_jobs(ids)
    """

    def __init__(
        self,
        url: str,
        *,
        jobdb: str | os.PathLike[str],
        workdir: str | os.PathLike[str],
        token: str | None = None,
        credentials_path: str | os.PathLike[str] | None = None,
        verify: bool | str = True,
        site: str = "DIRAC.aiodirac-test.local",
        timeout: float = 60.0,
    ) -> None:
        self._backend = DiracXBackend(
            url, token=token, credentials_path=credentials_path, timeout=timeout, verify=verify
        )
        self._jobdb = jobdb
        self._workdir = Path(workdir)
        self._site = site
        self._clock = datetime.now(UTC)

    @classmethod
    def from_env_file(
        cls, env_file: str | os.PathLike[str], *, workdir: str | os.PathLike[str], **kwargs: Any
    ) -> Self:
        """A pilot for the server described by ``scripts/diracx.sh``'s ``env.sh``.

        Uses the env file's ``DIRACX_URL``, ``DIRACX_DB_URL_JOBDB``, ``DIRACX_CA_PATH`` (when
        set) and, unless a token is given, ``DIRACX_CREDENTIALS_PATH``.

        Raises:
            ConfigurationError: the file lacks one of these or the JobDB is neither SQLite nor
                MySQL.

        Usage: ``DiracXTestPilot.from_env_file(state / "env.sh", workdir=tmp_path)``
        """
        values = read_env_file(env_file)
        try:
            url = values["DIRACX_URL"]
            db_url = values["DIRACX_DB_URL_JOBDB"]
        except KeyError as exc:
            raise ConfigurationError(f"{env_file} does not define {exc.args[0]}") from exc
        if not (db_url.startswith("sqlite") and ":///" in db_url) and not db_url.startswith(
            "mysql"
        ):
            raise ConfigurationError(
                f"the test pilot reads a SQLite or MySQL JobDB; {env_file} names "
                f"{db_url.split(':', 1)[0]}"
            )
        if "token" not in kwargs and "credentials_path" not in kwargs:
            kwargs["credentials_path"] = values.get("DIRACX_CREDENTIALS_PATH")
        if values.get("DIRACX_CA_PATH"):
            kwargs.setdefault("verify", values["DIRACX_CA_PATH"])
        return cls(url, jobdb=db_url, workdir=workdir, **kwargs)

    @property
    def backend(self) -> DiracXBackend:
        """The owner's DiracX backend the pilot talks through."""
        return self._backend

    def __repr__(self) -> str:
        return f"<DiracXTestPilot url={self._backend.url!r} workdir={str(self._workdir)!r}>"

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._backend.aclose()

    # ------------------------------------------------------------------ statuses
    def _timestamps(self, count: int) -> list[datetime]:
        # strictly increasing across calls: DiracX applies updates in time order
        now = max(datetime.now(UTC), self._clock + timedelta(milliseconds=1))
        stamps = [now + timedelta(milliseconds=i) for i in range(count)]
        self._clock = stamps[-1] if stamps else self._clock
        return stamps

    async def set_status(
        self,
        sequences: Mapping[int, Sequence[StatusStep]],
        *,
        check: bool = True,
        batch_size: int = 1000,
    ) -> dict[int, JobStatus | None]:
        """Move each job through its sequence of statuses, many jobs per request.

        Each step is a status, or ``(status, minor)`` / ``(status, minor, application)``;
        DiracX applies a job's steps in order and refuses illegal moves silently.

        Args:
            sequences: job ID -> the statuses to go through, in order.
            check: raise when a job did not end on its sequence's last status.
            batch_size: jobs per request.

        Returns:
            What DiracX says each job's status now is.

        Raises:
            InvalidTransitionError: (with ``check``) some jobs did not reach their last status.

        Usage: ``await pilot.set_status({7: ["Checking", "Waiting"], 8: ["Killed"]})``
        """
        result: dict[int, JobStatus | None] = {}
        items = [(job_id, seq) for job_id, seq in sequences.items() if seq]
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            updates: dict[int, dict[datetime, dict[str, str]]] = {}
            longest = max(len(seq) for _, seq in batch)
            stamps = self._timestamps(longest)
            for job_id, seq in batch:
                updates[job_id] = {stamps[i]: _step_body(step) for i, step in enumerate(seq)}
            outcome = await self._backend._set_status(updates, action="move job statuses")
            for job_id, _ in batch:
                result[job_id] = outcome.get(job_id, (None, ""))[0]
        if check:
            bad = [
                job_id
                for job_id, seq in items
                if str(result.get(job_id)) != str(_step_body(seq[-1])["Status"])
            ]
            if bad:
                wanted = _step_body(sequences[bad[0]][-1])["Status"]
                raise InvalidTransitionError(
                    f"DiracX did not move {describe_jobs(bad)} to {wanted} "
                    f"(job {bad[0]} is {result.get(bad[0])})",
                    job_ids=tuple(bad),
                    current=str(result.get(bad[0]) or ""),
                    requested=wanted,
                )
        return result

    # ------------------------------------------------------------------ running jobs
    async def waiting_jobs(self) -> list[int]:
        """IDs of the owner's jobs waiting to run (Received, Checking, Waiting), oldest first.

        Usage: ``ids = await pilot.waiting_jobs()``
        """
        me = await self._backend._whoami()
        rows = await self._backend._search(
            None,
            ["JobID"],
            action="look for waiting jobs",
            extra=[
                {"parameter": "Status", "operator": "in", "values": [str(s) for s in _WAITING]},
                {"parameter": "Owner", "operator": "eq", "value": me},
            ],
        )
        return [int(row["JobID"]) for row in rows]

    async def run_waiting(self, *, limit: int | None = None) -> list[PilotRun]:
        """Run every waiting job of the owner (at most ``limit``).

        Usage: ``runs = await pilot.run_waiting()``
        """
        ids = await self.waiting_jobs()
        return await self.run_jobs(ids[:limit] if limit is not None else ids)

    async def run_jobs(self, job_ids: Sequence[int], *, concurrency: int = 1) -> list[PilotRun]:
        """Run these jobs as a grid would, ``concurrency`` at a time; their runs, in order.

        Jobs not waiting (already running, final, unconfirmed) are skipped.

        Usage: ``runs = await pilot.run_jobs(ids)``
        """
        if not job_ids:
            return []
        states = await self._backend.status(job_ids)
        todo = [j for j in job_ids if j in states and states[j].status in _WAITING]
        if not todo:
            return []
        jdls = await anyio.to_thread.run_sync(_read_jdls, self._jobdb, todo)
        start: dict[int, list[StatusStep]] = {}
        for job_id in todo:
            current = states[job_id].status
            path = list(_TO_RUNNING)
            if current in (JobStatus.CHECKING, JobStatus.WAITING):
                path = path[1:] if current is JobStatus.CHECKING else path[2:]
            start[job_id] = path
        # a job killed meanwhile does not reach Running: it is skipped, as a grid would
        reached = await self.set_status(start, check=False)
        todo = [j for j in todo if reached.get(j) is JobStatus.RUNNING]
        if not todo:
            return []
        # a matched job has a site, as on the grid
        await self._backend._api(
            "PATCH",
            "/api/jobs/metadata",
            action="set the jobs' site",
            job_ids=todo,
            json={str(job_id): {"Site": self._site} for job_id in todo},
        )
        runs: dict[int, PilotRun] = {}
        limiter = anyio.CapacityLimiter(concurrency)

        async def one(job_id: int) -> None:
            async with limiter:
                runs[job_id] = await self._run_one(job_id, jdls.get(job_id))

        async with anyio.create_task_group() as group:
            for job_id in todo:
                group.start_soon(one, job_id)
        return [runs[j] for j in todo]

    async def _run_one(self, job_id: int, jdl: str | None) -> PilotRun:
        workdir = self._workdir / str(job_id)
        # a rescheduled job starts afresh, as on a new worker node
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(workdir, ignore_errors=True))
        if jdl is None:
            return await self._finish(
                job_id, workdir, JobStatus.FAILED, "JDL not found in the JobDB", "Unknown", None
            )
        attributes: dict[str, JDLValue] = dict(parse_jdl(jdl))
        entries = [str(e) for e in _strings(attributes.get("InputSandbox"))]
        try:
            for entry in (e for e in entries if e.startswith("SB:")):
                data = await self._download(entry)
                await anyio.to_thread.run_sync(_safe_extract, data, workdir)
        except (SandboxError, httpx.HTTPError, tarfile.TarError, OSError) as exc:
            return await self._finish(
                job_id,
                workdir,
                JobStatus.FAILED,
                MinorStatus.FAILED_DOWNLOADING_INPUT_SANDBOX,
                f"input sandbox: {exc}",
                None,
            )
        # what was in the SB: archive is now in the working folder; the rest stages as usual
        local_entries = tuple(e for e in entries if not e.startswith("SB:"))
        if local_entries:
            attributes["InputSandbox"] = local_entries
        else:
            attributes.pop("InputSandbox", None)
        workflow = workdir / "jobDescription.xml"
        xml = workflow.read_text(encoding="utf-8") if workflow.is_file() else ""
        job = ConcreteJob(
            index=_int(attributes.get("ParameterNumber")),
            attributes=attributes,
            steps=steps_for(attributes, xml) if xml else (),
        )
        await self.set_status({job_id: [(JobStatus.RUNNING, MinorStatus.APPLICATION)]})
        outcome = await anyio.to_thread.run_sync(
            lambda: run_job(job, workdir, None, job_id=job_id, site=self._site)
        )
        output = workdir.parent / f"{job_id}.output"
        archive = await anyio.to_thread.run_sync(lambda: pack_output_sandbox(job, workdir, output))
        pfn: str | None = None
        if archive is not None:
            await self.set_status(
                {job_id: [(JobStatus.RUNNING, MinorStatus.UPLOADING_OUTPUT_SANDBOX)]},
                check=False,
            )
            pfn = await self._attach_output(job_id, archive)
        return await self._finish(
            job_id,
            workdir,
            outcome.status,
            outcome.minor_status,
            outcome.application_status,
            pfn,
        )

    async def _finish(
        self,
        job_id: int,
        workdir: Path,
        status: JobStatus,
        minor: str,
        application: str,
        pfn: str | None,
    ) -> PilotRun:
        steps: list[StatusStep] = []
        if status is JobStatus.FAILED or status is JobStatus.DONE:
            steps.append((JobStatus.COMPLETING, minor, application))
        steps.append((status, minor, application))
        reached = await self.set_status({job_id: steps}, check=False)
        final = reached.get(job_id) or status
        return PilotRun(job_id, final, minor, application, pfn, workdir)

    async def _download(self, pfn: str) -> bytes:
        backend = self._backend
        response = await backend._api(
            "GET", "/api/jobs/sandbox", action="get an input sandbox URL", params={"pfn": pfn}
        )
        url = str(response.json()["url"])
        # a presigned URL: fetched without the DiracX token
        got = await backend.http_client.get(url)
        raise_for_response(got, action="download an input sandbox")
        return got.content

    async def _attach_output(self, job_id: int, archive: Path) -> str:
        data = await anyio.to_thread.run_sync(archive.read_bytes)
        sandbox = SandboxArchive(data, hashlib.sha256(data).hexdigest(), "tar.bz2")
        pfn = await self._backend.upload_sandbox(sandbox)
        try:
            await self._backend._api(
                "PATCH",
                f"/api/jobs/{job_id}/sandbox/output",
                action=f"attach the output sandbox of job {job_id}",
                job_ids=[job_id],
                json=pfn,
            )
        except InvalidRequestError as exc:
            # a re-run that produced the same bytes: that very sandbox is attached already
            if "already assigned" not in str(exc):
                raise
        return pfn


def _strings(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, tuple | list):
        return tuple(str(v) for v in value)
    return (str(value),)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
