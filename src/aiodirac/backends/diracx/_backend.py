"""The DiracX backend: DIRAC jobs through DiracX's REST API, on one ``httpx.AsyncClient``.

Endpoints (DiracX 0.7.0, see ``reference/diracx/``):

* submit: ``POST /api/jobs/jdl`` with one parametric JDL (jobs land in ``Submitting``);
  its input sandbox is uploaded first (``POST /api/jobs/sandbox`` then a presigned S3 POST);
* confirm / discard / kill / delete: ``PATCH /api/jobs/status``; DiracX answers 200 even when its
  state machine refused a change, so every answer is read back (``success[id].Status``);
* status, sweep: ``POST /api/jobs/search`` (``in`` filters, 10,000 per page, 206 paging);
* output sandbox: ``GET /api/jobs/{id}/sandbox/output`` then ``GET /api/jobs/sandbox?pfn=``;
* reschedule: ``POST /api/jobs/reschedule``; summary: ``POST /api/jobs/summary``.

The DiracX token is sent to DiracX only: presigned S3 URLs get requests without it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import anyio
import anyio.to_thread
import httpx

from aiodirac._exceptions import (
    BackendError,
    ConfigurationError,
    InvalidRequestError,
    InvalidTransitionError,
    JobDescriptionError,
    JobNotFoundError,
    NotSupportedError,
    SandboxNotAvailableError,
    ServiceUnavailableError,
)
from aiodirac._job._jdl import check_item, render_jdl
from aiodirac._job._monitoring import (
    ATTRIBUTE_NAMES,
    CPUSample,
    JobAttributes,
    JobSelection,
    LoggingRecord,
)
from aiodirac._job._spec import SubmitChunk
from aiodirac._job._status import JobState, JobStatus, MinorStatus
from aiodirac.backends._http._tls import ssl_verify
from aiodirac.backends._http._transport import http_client
from aiodirac.backends._protocol import (
    ActionResult,
    Backend,
    Capabilities,
    OutputSandbox,
    UnconfirmedJob,
)

from ._auth import TokenManager, TokenProvider, default_credentials_path
from ._errors import describe_jobs, network_error, raise_for_response, redact_url
from ._http import (
    MAX_PER_PAGE,
    SOURCE,
    DiracXHTTP,
    batches,
    detail_dict,
    now_utc,
    parse_time,
    to_status,
)
from ._sandbox import WORKFLOW_NAME, SandboxArchive, build_input_sandbox, sandbox_signature
from ._shapes import job_rows, json_list, json_object, json_of, outcomes, text, wrong_shape

__all__ = ["DiracXBackend"]

logger = logging.getLogger("aiodirac.diracx")

_STATUS_FIELDS = ["JobID", "Status", "MinorStatus", "ApplicationStatus", "Site", "LastUpdateTime"]
_PFN_NAME = re.compile(r"/(?P<algo>[a-z0-9]{3,10}):(?P<hex>[0-9a-f]{64})\.(?P<fmt>[a-z0-9.]+)$")
# statuses a confirmed job can have reached; anything else means the confirmation did not happen
# stands for the sandbox PFN while the JDL is checked, before the upload gives the real one
_PFN_SLOT = "SB:SandboxSE|/S3/pending/aiodirac/sandbox/sha256:" + "0" * 64 + ".tar.bz2"
# A sandbox's files are looked at again (names, sizes, mtimes: in a worker thread) at most this
# often: the chunks of a submission share one look instead of a thread hop each.
_SIGNATURE_TTL = 1.0
_SIGNATURES_KEPT = 64
_NOT_CONFIRMED = frozenset({JobStatus.SUBMITTING, JobStatus.KILLED, JobStatus.DELETED})


#: what DiracX 0.7.0 answers to any failure while it stores jobs (see ``submit``)
_SYNTAX_ERROR = "JDL syntax error"

#: the widths of DiracX's JobDB columns (``Jobs`` table) that a job description fills: a longer
#: value is refused by MariaDB/MySQL, and DiracX 0.7.0 reports it as "JDL syntax error"
_COLUMN_WIDTHS = {"JobGroup": 32, "JobType": 32, "JobName": 128}


def _check_widths(chunk: SubmitChunk) -> None:
    """Refuse values longer than DiracX stores, naming the attribute (before any request)."""
    values: list[tuple[str, object]] = [
        (name, chunk.attributes.get(name)) for name in ("JobGroup", "JobType")
    ]
    values.extend(("JobName", job.name) for job in chunk.jobs)
    for name, value in values:
        limit = _COLUMN_WIDTHS[name]
        if isinstance(value, str) and len(value) > limit:
            raise JobDescriptionError(
                f"{name} {value[:40]!r}... is {len(value)} characters long: DiracX stores at "
                f"most {limit}",
                attribute=name,
                value=value,
            )


def _pfn_details(pfn: str) -> tuple[str | None, str]:
    """(sha256 or None, format) from a sandbox PFN ``.../sha256:<hex>.tar.bz2``."""
    match = _PFN_NAME.search(pfn)
    if match is None:
        return None, "tar.bz2"
    checksum = match["hex"] if match["algo"] == "sha256" else None
    return checksum, match["fmt"]


class DiracXBackend(DiracXHTTP, Backend):
    """Run jobs on a DIRAC installation through its DiracX REST API.

    One ``httpx.AsyncClient`` (timeouts always set, TLS verified by default) carries every request.
    Tokens come from ``token``, else ``token_provider``, else ``credentials_path`` (default:
    DiracX's credentials file, as ``dirac login`` writes it).

    Args:
        url: the DiracX server, e.g. ``https://diracx.example.org`` (default ``DIRACX_URL``).
        token: a bearer access token, used as is.
        token_provider: an async callable returning a fresh access token (called again after 401).
        credentials_path: DiracX's credentials file (default ``DIRACX_CREDENTIALS_PATH`` or
            ``~/.cache/diracx/credentials.json``); refreshed and written back when needed.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        timeout: seconds for connect, read, write and pool waits.
        client: an httpx client to use instead of creating one (not closed by :meth:`aclose`).

    Raises:
        ConfigurationError: no URL, a non-http(s) URL, both token and token_provider, or an
            unreadable CA bundle.

    Usage::

        async with DiracXBackend("https://diracx.example.org") as backend:
            ids = await backend.submit(chunk)
            await backend.confirm(ids)
    """

    capabilities = Capabilities(
        max_jobs_per_submit=20,
        max_ids_per_status=MAX_PER_PAGE,
        max_ids_per_update=1000,
        # DiracX finishes a request whose client left (measured: a submit cut by a 10 ms
        # client timeout still creates its jobs); seconds of a loaded server's backlog.
        settle_time=10.0,
    )

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        token_provider: TokenProvider | None = None,
        credentials_path: str | os.PathLike[str] | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        resolved = url or os.environ.get("DIRACX_URL")
        if not resolved:
            raise ConfigurationError("no DiracX server").with_hints(
                python="pass url=... or set DIRACX_URL (as `dirac login` users have)",
                cli="give --url URL or set DIRACX_URL (as `dirac login` users have)",
            )
        parsed = httpx.URL(resolved)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigurationError(f"DiracX URL {resolved!r} is not an http(s) URL")
        self._url = resolved.rstrip("/")
        self._tokens = TokenManager(
            token_url=f"{self._url}/api/auth/token",
            token=token,
            provider=token_provider,
            credentials_path=credentials_path,
        )
        self._verify = verify
        self._owns_client = client is None
        self._client = client or http_client(
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            verify=ssl_verify(verify),
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": "aiodirac"},
        )
        self._closed = False
        self._requests = 0
        self._pfn_by_sha: dict[str, str] = {}
        self._sha_by_signature: dict[tuple[object, ...], str] = {}
        self._signatures: dict[tuple[tuple[str, ...], str], tuple[float, tuple[object, ...]]] = {}
        self._upload_locks: dict[str, anyio.Lock] = {}
        self._sandbox_locks: dict[tuple[object, ...], anyio.Lock] = {}
        self._username: str | None = None

    # ------------------------------------------------------------------ construction, state
    @classmethod
    def from_environment(cls, **kwargs: Any) -> Self:
        """A backend for ``DIRACX_URL`` with the tokens of ``DIRACX_CREDENTIALS_PATH``.

        Raises:
            ConfigurationError: ``DIRACX_URL`` unset, or no credentials file.

        Usage: ``backend = DiracXBackend.from_environment()``
        """
        url = os.environ.get("DIRACX_URL")
        if not url:
            raise ConfigurationError(
                "DIRACX_URL is not set: set it to your DiracX server (e.g. "
                "https://diracx.example.org) or choose the local backend"
            )
        path = default_credentials_path()
        if not path.is_file():
            raise ConfigurationError(
                f"no DiracX credentials at {path}: run `dirac login`, or set "
                "DIRACX_CREDENTIALS_PATH to your credentials file"
            )
        verify: bool | str = kwargs.pop("verify", os.environ.get("DIRACX_CA_PATH") or True)
        return cls(url, credentials_path=path, verify=verify, **kwargs)

    @property
    def url(self) -> str:
        """The DiracX server's base URL."""
        return self._url

    @property
    def verify(self) -> bool | str:
        """The TLS verification this backend was given (``True``, ``False`` or CA certificates);
        :class:`~aiodirac.AsyncDirac` verifies its sandbox downloads with the same CA.

        Usage: ``DiracXBackend(url, verify="/etc/grid-security/certificates").verify``
        """
        return self._verify

    @property
    def description(self) -> str:
        """``DiracX at <url>`` (no credentials)."""
        return f"DiracX at {self._url}"

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<DiracXBackend url={self._url!r} auth={self._tokens.source!r} "
            f"[{state}, requests: {self._requests}, sandboxes cached: {len(self._pfn_by_sha)}]>"
        )

    async def aclose(self) -> None:
        """Close the HTTP client if this backend created it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    # ------------------------------------------------------------------ HTTP core
    async def submit(self, chunk: SubmitChunk) -> list[int]:
        """Upload the chunk's input sandbox (once per content), then create its jobs unconfirmed.

        Returns:
            The new IDs in the order of ``chunk.jobs``; the jobs are ``Submitting``.

        Raises:
            JobDescriptionError: a JobGroup, JobType or JobName longer than DiracX stores.
            InvalidRequestError: DiracX refused the JDL (the message names the chunk's jobs).
            TransientError: outcome unknown (network, timeout, 429/5xx); jobs may exist. Also
                DiracX's "JDL syntax error" while its readiness probe fails (its database is
                down: it reports that so too); nothing was created then.
            BackendError: DiracX created a different number of jobs than the chunk holds
                (their IDs are in ``job_ids``, to be discarded).
        """
        phrase = self._chunk_phrase(chunk)
        # render (and so check) everything before the first request: bad input never leaves
        _check_widths(chunk)
        attributes = dict(chunk.attributes)
        attributes["InputSandbox"] = self._sandbox_entries(chunk, _PFN_SLOT)
        template = render_jdl(attributes)
        pfn = await self._upload_sandbox(chunk.local_sandbox, chunk.workflow_xml)
        check_item("InputSandbox", pfn)
        jdl = template.replace(_PFN_SLOT, pfn)
        try:
            response = await self._api(
                "POST",
                "/api/jobs/jdl",
                action="submit",
                json=[jdl],
                jobs_phrase=phrase,
                # the jobs land unconfirmed: a 500 leaves the outcome unknown, as a lost answer
                # does, and the engine resends the chunk as new (what the failed request made
                # is swept)
                repeatable=True,
            )
        except InvalidRequestError as exc:
            # DiracX 0.7.0 answers 400 "JDL syntax error" to any failure while it inserts the
            # jobs, its database's included (down, restarting): the JDL was checked here, so
            # when the server is not ready either, the refusal is the database's
            if _SYNTAX_ERROR in str(exc) and not await self._ready():
                raise ServiceUnavailableError(
                    f"DiracX could not store {phrase} (it answered 'JDL syntax error' while "
                    "not ready: its database is unavailable); nothing was created, retrying "
                    "may help",
                    status_code=exc.status_code,
                ) from exc
            raise
        ids = [row["JobID"] for row in job_rows(response, f"the submission of {phrase}")]
        if len(ids) != len(chunk.jobs):
            raise BackendError(
                f"DiracX created {len(ids)} jobs for {phrase}, which holds {len(chunk.jobs)}: "
                f"discard {describe_jobs(ids)}",
                job_ids=tuple(ids),
            )
        logger.debug("submitted %s as %s", phrase, describe_jobs(ids))
        return ids

    async def _ready(self) -> bool:
        """Whether DiracX's readiness probe answers 200 (it needs its database)."""
        try:
            response = await self._client.get(f"{self._url}/api/health/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    @staticmethod
    def _chunk_phrase(chunk: SubmitChunk) -> str:
        if not chunk.jobs:
            return "an empty chunk"
        first, last = chunk.jobs[0], chunk.jobs[-1]
        if len(chunk.jobs) == 1:
            return f"job {first.name!r} (index {first.index})"
        return (
            f"jobs {first.name!r}..{last.name!r} (indices {first.index}-{last.index}, "
            f"{len(chunk.jobs)} jobs)"
        )

    @staticmethod
    def _sandbox_entries(chunk: SubmitChunk, pfn: str) -> tuple[str, ...]:
        """The chunk's InputSandbox with its local entries replaced by one ``SB:`` PFN."""
        raw = chunk.attributes.get("InputSandbox", ())
        entries = (raw,) if isinstance(raw, str | int) else tuple(raw)
        local = set(chunk.local_sandbox)
        kept: list[str] = []
        placed = False
        for entry in (str(e) for e in entries):
            if entry in local or entry == WORKFLOW_NAME:
                if not placed:
                    kept.append(pfn)
                    placed = True
                continue
            kept.append(entry)
        if not placed:
            kept.append(pfn)
        return tuple(kept)

    async def _signature(self, paths: Sequence[str], workflow_xml: str) -> tuple[object, ...]:
        """The sandbox's signature, from a look at its files at most ``_SIGNATURE_TTL`` s old."""
        if not paths:  # no local file to stat: the XML alone decides, no worker thread needed
            return sandbox_signature((), workflow_xml)
        key = (tuple(paths), workflow_xml)
        now = time.monotonic()
        seen = self._signatures.get(key)
        if seen is not None and now - seen[0] < _SIGNATURE_TTL:
            return seen[1]
        signature = await anyio.to_thread.run_sync(sandbox_signature, paths, workflow_xml)
        if len(self._signatures) >= _SIGNATURES_KEPT:
            self._signatures = {
                k: v for k, v in self._signatures.items() if now - v[0] < _SIGNATURE_TTL
            }
        self._signatures[key] = (now, signature)
        return signature

    async def _upload_sandbox(self, paths: Sequence[str], workflow_xml: str) -> str:
        signature = await self._signature(paths, workflow_xml)
        known_sha = self._sha_by_signature.get(signature)
        if known_sha is not None and known_sha in self._pfn_by_sha:
            return self._pfn_by_sha[known_sha]
        # One archive per signature: the chunks sent at once wait for the first one's.
        async with self._sandbox_locks.setdefault(signature, anyio.Lock()):
            known_sha = self._sha_by_signature.get(signature)
            if known_sha is not None and known_sha in self._pfn_by_sha:
                return self._pfn_by_sha[known_sha]
            archive = await anyio.to_thread.run_sync(build_input_sandbox, paths, workflow_xml)
            pfn = await self.upload_sandbox(archive)
            self._sha_by_signature[signature] = archive.sha256
            return pfn

    async def upload_sandbox(self, archive: SandboxArchive) -> str:
        """Store an archive in DiracX's sandbox store (no transfer if it holds it); its PFN.

        Usage: ``pfn = await backend.upload_sandbox(archive)``
        """
        async with self._upload_locks.setdefault(archive.sha256, anyio.Lock()):
            pfn = self._pfn_by_sha.get(archive.sha256)
            if pfn is None:
                pfn = await self._upload(archive)
                self._pfn_by_sha[archive.sha256] = pfn
        return pfn

    async def _upload(self, archive: SandboxArchive) -> str:
        response = await self._api(
            "POST",
            "/api/jobs/sandbox",
            action="register a sandbox",
            # content-addressed: registering the same archive again answers the same PFN
            repeatable=True,
            json={
                "checksum_algorithm": "sha256",
                "checksum": archive.sha256,
                "size": archive.size,
                "format": archive.format,
            },
        )
        answer = json_object(
            response,
            "the registration of a sandbox",
            pfn=str,
            url=(str, type(None)),
            fields=(dict, type(None)),
        )
        pfn = str(answer["pfn"])
        url = answer.get("url")
        if url:
            await self._post_presigned(str(url), answer.get("fields") or {}, archive.data)
            logger.debug("uploaded sandbox sha256:%s (%d bytes)", archive.sha256, archive.size)
        else:
            logger.debug("DiracX already holds sandbox sha256:%s", archive.sha256)
        return pfn

    async def _post_presigned(self, url: str, fields: Mapping[str, str], data: bytes) -> None:
        # a presigned S3 POST: no DiracX token on this request
        action = "upload a sandbox"
        try:
            self._requests += 1
            response = await self._client.post(
                url, data=dict(fields), files={"file": ("file", data)}
            )
        except httpx.HTTPError as exc:
            raise network_error(exc, action=action, url=url) from exc
        if not response.is_success:
            # the same bytes to the same content-addressed key: safe to send again
            raise_for_response(response, action=f"{action} to {redact_url(url)}", repeatable=True)

    # ------------------------------------------------------------------ status changes
    async def confirm(self, job_ids: Sequence[int]) -> None:
        """Move unconfirmed jobs to ``Received``, many per request. Confirming twice is harmless.

        Raises:
            InvalidTransitionError: DiracX left some jobs unconfirmed (e.g. already discarded);
                ``job_ids`` lists them.
            JobNotFoundError / PermissionDeniedError: unknown jobs, or someone else's.
        """
        if not job_ids:
            return

        def change(_: int) -> Mapping[datetime, Mapping[str, str]]:
            return {
                now: {
                    "Status": JobStatus.RECEIVED,
                    "MinorStatus": MinorStatus.JOB_ACCEPTED,
                    "Source": SOURCE,
                }
            }

        now = now_utc()
        outcome, forbidden = await self._apply(job_ids, change, action="confirm")
        self._raise_forbidden(forbidden, "confirm")
        refused = {
            job_id: status
            for job_id, (status, _) in outcome.items()
            if status is None or status in _NOT_CONFIRMED
        }
        missing = [j for j in job_ids if j not in outcome and j not in forbidden]
        if refused or missing:
            bad = sorted(set(refused) | set(missing))
            current = next((str(s) for s in refused.values() if s is not None), "")
            raise InvalidTransitionError(
                f"DiracX did not confirm {describe_jobs(bad)} (status now {current or 'unknown'}"
                "): they were discarded or are unknown; submit them again",
                job_ids=tuple(bad),
                current=current,
                requested=str(JobStatus.RECEIVED),
            )

    async def discard(self, job_ids: Sequence[int], reason: str) -> None:
        """Kill the jobs still unconfirmed (``Killed``, MinorStatus ``reason``); never run.

        Jobs already confirmed (or final) are left alone: DiracX would kill a ``Received`` job
        too, so their statuses are read first.

        Raises:
            InvalidTransitionError: DiracX did not kill some unconfirmed jobs.
        """
        if not job_ids:
            return
        states = await self.status(job_ids)
        pending = [j for j in dict.fromkeys(job_ids) if _is_unconfirmed(states.get(j))]
        if len(pending) < len(job_ids):
            logger.debug(
                "discard: %d of %d jobs are no longer unconfirmed; left alone",
                len(job_ids) - len(pending),
                len(job_ids),
            )
        if not pending:
            return
        now = now_utc()

        def change(_: int) -> Mapping[datetime, Mapping[str, str]]:
            return {now: {"Status": JobStatus.KILLED, "MinorStatus": reason, "Source": SOURCE}}

        outcome, forbidden = await self._apply(pending, change, action="discard")
        self._raise_forbidden(forbidden, "discard")
        bad = sorted(
            j
            for j in pending
            if outcome.get(j, (None, ""))[0] not in (JobStatus.KILLED, JobStatus.DELETED)
        )
        if bad:
            current = str(outcome.get(bad[0], (None, ""))[0] or "unknown")
            raise InvalidTransitionError(
                f"DiracX did not kill {describe_jobs(bad)} (status now {current})",
                job_ids=tuple(bad),
                current=current,
                requested=str(JobStatus.KILLED),
            )

    async def kill(self, job_ids: Sequence[int]) -> ActionResult:
        """Kill jobs; returns which DiracX actually killed and why the others were not.

        DIRAC's state machine is applied here first: DiracX 0.7.0 lets a ``Deleted`` job
        come back as ``Killed``, DIRAC does not.
        """
        unique = list(dict.fromkeys(job_ids))
        states = await self.status(unique)
        refused = _refuse_by_state(unique, states, lambda s: s.can_move_to(JobStatus.KILLED))
        now = now_utc()

        def change(_: int) -> Mapping[datetime, Mapping[str, str]]:
            return {
                now: {
                    "Status": JobStatus.KILLED,
                    "MinorStatus": MinorStatus.MARKED_FOR_TERMINATION,
                    "Source": SOURCE,
                }
            }

        todo = [j for j in unique if j not in refused]
        outcome, forbidden = await self._apply(todo, change, action="kill")
        return self._action_result(todo, outcome, {**refused, **forbidden}, {JobStatus.KILLED})

    async def delete(self, job_ids: Sequence[int]) -> ActionResult:
        """Delete jobs (``Deleted``); jobs that cannot go there directly are killed first."""
        if not job_ids:
            return ActionResult()
        states = await self.status(job_ids)
        now = now_utc()

        def change(job_id: int) -> Mapping[datetime, Mapping[str, str]]:
            state = states.get(job_id)
            deleted = {"Status": JobStatus.DELETED, "Source": SOURCE}
            if state is None or state.status.can_move_to(JobStatus.DELETED):
                return {now: deleted}
            killed = {
                "Status": JobStatus.KILLED,
                "MinorStatus": MinorStatus.MARKED_FOR_TERMINATION,
                "Source": SOURCE,
            }
            return {now: killed, now + timedelta(milliseconds=1): deleted}

        outcome, forbidden = await self._apply(job_ids, change, action="delete")
        return self._action_result(job_ids, outcome, forbidden, {JobStatus.DELETED})

    @staticmethod
    def _action_result(
        job_ids: Sequence[int],
        outcome: Mapping[int, tuple[JobStatus | None, str]],
        forbidden: Mapping[int, str],
        wanted: set[JobStatus],
    ) -> ActionResult:
        done: list[int] = []
        refused: dict[int, str] = dict(forbidden)
        for job_id in dict.fromkeys(job_ids):
            if job_id in refused:
                continue
            status, reason = outcome.get(job_id, (None, "no answer from DiracX"))
            if status in wanted:
                done.append(job_id)
            elif status is not None:
                refused[job_id] = str(status)
            else:
                refused[job_id] = reason or "refused by DiracX"
        return ActionResult(done=tuple(done), refused=refused)

    async def reschedule(self, job_ids: Sequence[int]) -> ActionResult:
        """Send jobs back to ``Received`` / ``Job Rescheduled`` (``POST /api/jobs/reschedule``).

        As in DIRAC, a job goes through ``Rescheduled`` first: DiracX 0.7.0 moves it straight to
        ``Received``, which its own state machine refuses for a ``Failed`` job (it answers 200
        and leaves the job ``Failed``). Jobs that DIRAC cannot reschedule (unconfirmed, Done,
        Killed, Deleted...) are refused with their status.
        """
        unique = list(dict.fromkeys(job_ids))
        states = await self.status(unique)
        refused = _refuse_by_state(
            unique,
            states,
            lambda s: s is JobStatus.RESCHEDULED or s.can_move_to(JobStatus.RESCHEDULED),
        )
        todo = [j for j in unique if j not in refused]
        first = [j for j in todo if states[j].status is not JobStatus.RESCHEDULED]
        now = now_utc()

        def change(_: int) -> Mapping[datetime, Mapping[str, str]]:
            return {
                now: {
                    "Status": JobStatus.RESCHEDULED,
                    "MinorStatus": MinorStatus.RESCHEDULED,
                    "Source": SOURCE,
                }
            }

        moved, forbidden = await self._apply(first, change, action="reschedule")
        refused.update(forbidden)
        for job_id, (status, reason) in moved.items():
            if status is not JobStatus.RESCHEDULED:
                refused[job_id] = str(status) if status is not None else reason
        todo = [j for j in todo if j not in refused]
        outcome: dict[int, tuple[JobStatus | None, str]] = {}
        for batch in batches(todo, self.capabilities.max_ids_per_update):
            success, failed = await self._reschedule_batch(batch)
            for job_id, info in success.items():
                status = to_status(info.get("Status")) if isinstance(info, dict) else None
                outcome[job_id] = (status, "")
            for job_id, info in failed.items():
                detail = info.get("detail", info) if isinstance(info, dict) else info
                outcome[job_id] = (None, str(detail))
        wanted = {JobStatus.RECEIVED, JobStatus.WAITING}
        return self._action_result(unique, outcome, refused, wanted)

    async def _reschedule_batch(self, batch: list[int]) -> tuple[dict[int, Any], dict[int, Any]]:
        response = await self._api(
            "POST",
            "/api/jobs/reschedule",
            action="reschedule",
            job_ids=batch,
            json={"job_ids": batch},
            # 400 = none could be rescheduled; its detail holds the per-job failures
            ok=lambda r: r.status_code == 400 and isinstance(detail_dict(r), dict),
        )
        if response.status_code == 400:
            return outcomes(response, "reschedule", detail_dict(response) or {})
        return outcomes(response, "reschedule", json_of(response, "reschedule"))

    # ------------------------------------------------------------------ queries
    async def status(self, job_ids: Sequence[int]) -> dict[int, JobState]:
        """Current state of jobs (one search per 10,000 IDs); unknown IDs are absent."""
        if not job_ids:
            return {}
        seen = now_utc()
        rows = await self._search(job_ids, _STATUS_FIELDS, action="read job statuses")
        states: dict[int, JobState] = {}
        # This loop runs once per job per poll cycle: lookups are bound locally, and the many
        # rows that share a LastUpdateTime (jobs moved together) parse it once.
        times: dict[object, datetime] = {}
        lookup = to_status
        for row in rows:
            get = row.get
            status = lookup(get("Status"))
            if status is None:
                logger.warning(
                    "job %s has status %r, which aiodirac does not know; skipped",
                    get("JobID"),
                    get("Status"),
                )
                continue
            stamp = get("LastUpdateTime")
            when = times.get(stamp)
            if when is None:
                when = times[stamp] = parse_time(stamp) or seen
            job_id = row["JobID"]
            states[job_id] = JobState(
                job_id,
                status,
                text(get("MinorStatus")),
                text(get("ApplicationStatus"), "Unknown"),
                text(get("Site"), "ANY"),
                when,
            )
        return states

    async def find_unconfirmed(
        self,
        *,
        job_group: str | None = None,
        name_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UnconfirmedJob]:
        """The caller's ``Submitting`` jobs matching every filter (exact, whatever the server's
        ``like`` and second-precision time filters let through)."""
        me = await self._whoami()
        extra: list[Mapping[str, object]] = [
            {"parameter": "Status", "operator": "eq", "value": str(JobStatus.SUBMITTING)},
            {"parameter": "Owner", "operator": "eq", "value": me},
        ]
        if job_group is not None:
            extra.append({"parameter": "JobGroup", "operator": "eq", "value": job_group})
        if name_prefix:
            # LIKE has no escape here: '%' and '_' in the prefix only widen the match
            extra.append({"parameter": "JobName", "operator": "like", "value": name_prefix + "%"})
        # the server compares at one-second resolution: widen by a second, filter exactly below
        if since is not None:
            low = since.astimezone(UTC).replace(microsecond=0, tzinfo=None) - timedelta(seconds=1)
            extra.append(
                {"parameter": "SubmissionTime", "operator": "gt", "value": low.isoformat(" ")}
            )
        if until is not None:
            high = until.astimezone(UTC).replace(microsecond=0, tzinfo=None) + timedelta(seconds=1)
            extra.append(
                {"parameter": "SubmissionTime", "operator": "lt", "value": high.isoformat(" ")}
            )
        rows = await self._search(
            None,
            ["JobID", "JobName", "JobGroup", "SubmissionTime", "Status", "Owner"],
            action="look for unconfirmed jobs",
            extra=extra,
        )
        found: list[UnconfirmedJob] = []
        for row in rows:
            name = str(row.get("JobName") or "")
            group = str(row.get("JobGroup") or "")
            submitted = parse_time(row.get("SubmissionTime"))
            if row.get("Status") != JobStatus.SUBMITTING or row.get("Owner") != me:
                continue
            if job_group is not None and group != job_group:
                continue
            if name_prefix and not name.startswith(name_prefix):
                continue
            if since is not None and (submitted is None or submitted < since):
                continue
            if until is not None and (submitted is None or submitted > until):
                continue
            found.append(UnconfirmedJob(int(row["JobID"]), name, group, submitted))
        return found

    async def summary(self, job_ids: Sequence[int]) -> dict[JobStatus, int]:
        """Counts per status among ``job_ids`` (``POST /api/jobs/summary``)."""
        counts: dict[JobStatus, int] = {}
        for batch in batches(list(dict.fromkeys(job_ids)), MAX_PER_PAGE):
            response = await self._api(
                "POST",
                "/api/jobs/summary",
                action="summarise jobs",
                repeatable=True,
                json={
                    "grouping": ["Status"],
                    "search": [{"parameter": "JobID", "operator": "in", "values": batch}],
                },
            )
            expected = "a list of objects with a Status and a count"
            for row in json_list(response, "summarise jobs", expected):
                count = row.get("count") if isinstance(row, dict) else None
                if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                    raise wrong_shape(response, "summarise jobs", expected, row)
                status = to_status(row.get("Status"))
                if status is not None:
                    counts[status] = counts.get(status, 0) + count
        return counts

    async def get_jdl(self, job_id: int) -> str:
        """Not available: DiracX 0.7.0 has no endpoint for a job's JDL.

        Raises:
            NotSupportedError: always.
        """
        raise NotSupportedError(
            f"DiracX 0.7.0 has no endpoint for a job's JDL (job {job_id}); "
            "keep the Job that built it, or use the local backend"
        )

    # ------------------------------------------------------------------ job monitoring
    async def select_jobs(self, selection: JobSelection) -> list[int]:
        """The jobs meeting every condition (``POST /api/jobs/search``), increasing.

        Conditions travel as ``eq``/``in`` filters; ``since`` as ``LastUpdateTime`` a second
        early (the server compares whole seconds) and is then applied exactly here.
        """
        search: list[Mapping[str, object]] = []
        for name, values in (
            ("Status", [str(s) for s in selection.status]),
            ("MinorStatus", selection.minor_status),
            ("ApplicationStatus", selection.application_status),
            ("Site", selection.site),
            ("Owner", selection.owner),
            ("OwnerGroup", selection.owner_group),
            ("JobGroup", selection.job_group),
        ):
            if len(values) == 1:
                search.append({"parameter": name, "operator": "eq", "value": values[0]})
            elif values:
                search.append({"parameter": name, "operator": "in", "values": list(values)})
        if selection.since is not None:
            low = selection.since.astimezone(UTC).replace(microsecond=0, tzinfo=None)
            low -= timedelta(seconds=1)
            search.append(
                {"parameter": "LastUpdateTime", "operator": "gt", "value": low.isoformat(" ")}
            )
        rows = await self._search(
            None, ["JobID", "LastUpdateTime"], action="select jobs", extra=search
        )
        since = selection.since
        return [
            int(row["JobID"])
            for row in rows
            if since is None or (parse_time(row.get("LastUpdateTime")) or since) >= since
        ]

    async def attributes(self, job_ids: Sequence[int]) -> dict[int, JobAttributes]:
        """DIRAC's attributes of jobs, from one search per 10,000 IDs; unknown IDs are absent."""
        if not job_ids:
            return {}
        rows = await self._search(job_ids, list(ATTRIBUTE_NAMES), action="read job attributes")
        found: dict[int, JobAttributes] = {}
        for row in rows:
            attributes = _attributes(row)
            if attributes is not None:
                found[attributes.job_id] = attributes
        return found

    async def logging_info(self, job_id: int) -> list[LoggingRecord]:
        """The job's status history (a search asking for ``LoggingInfo``), oldest first.

        Raises:
            JobNotFoundError: no such job (or one this user may not see).
        """
        rows = await self._search(
            [job_id], ["JobID", "LoggingInfo"], action=f"read the history of job {job_id}"
        )
        if not rows:
            raise JobNotFoundError(f"job {job_id} does not exist", job_ids=(job_id,))
        records: list[LoggingRecord] = []
        for entry in rows[0].get("LoggingInfo") or ():
            record = _logging_record(entry)
            if record is not None:
                records.append(record)
        return records

    async def parameters(self, job_id: int) -> dict[str, str]:
        """Not available: DiracX 0.7.0 stores job parameters but has no endpoint to read them.

        Raises:
            NotSupportedError: always.
        """
        raise NotSupportedError(
            f"DiracX 0.7.0 has no endpoint that returns job parameters (job {job_id}); "
            "use the local backend, or DIRAC's own client on that installation"
        )

    async def input_data(self, job_id: int) -> list[str]:
        """Not available: DiracX 0.7.0 has no endpoint for a job's JDL or input data.

        Raises:
            NotSupportedError: always.
        """
        raise NotSupportedError(
            f"DiracX 0.7.0 has no endpoint that returns a job's input data (job {job_id}); "
            "keep the Job that built it"
        )

    async def cpu_time(self, job_id: int) -> list[CPUSample]:
        """Not available: DiracX 0.7.0 records heartbeats but has no endpoint to read them.

        Raises:
            NotSupportedError: always.
        """
        raise NotSupportedError(
            f"DiracX 0.7.0 has no endpoint that returns heartbeat data, so no CPU time "
            f"(job {job_id})"
        )

    # ------------------------------------------------------------------ sandboxes
    async def output_sandbox(self, job_id: int) -> OutputSandbox:
        """A fresh presigned URL for the job's output sandbox archive.

        Raises:
            SandboxNotAvailableError: the job is not final yet, or has no output sandbox.
            JobNotFoundError: no such job. PermissionDeniedError: someone else's job.
        """
        pfns = await self._sandbox_pfns(job_id, "output")
        if not pfns:
            states = await self.status([job_id])
            state = states.get(job_id)
            if state is None:
                raise JobNotFoundError(f"job {job_id} does not exist", job_ids=(job_id,))
            if not state.final:
                raise SandboxNotAvailableError(
                    f"job {job_id} is {state.status} ({state.minor_status}): its output sandbox "
                    "exists once the job is final; wait for it",
                    job_id=job_id,
                )
            raise SandboxNotAvailableError(
                f"job {job_id} is {state.status} and has no output sandbox on DiracX",
                job_id=job_id,
            )
        # the most recently assigned one (DiracX lists them in insertion order)
        return await self._sandbox_url(job_id, pfns[-1])

    async def input_sandbox(self, job_id: int) -> OutputSandbox:
        """A fresh presigned URL for the input sandbox DiracX has assigned to the job.

        DIRAC assigns a job its input sandbox when its optimizers check the job (JobSanity);
        a DiracX server without them never does, and then there is none to fetch.

        Raises:
            SandboxNotAvailableError: no input sandbox is assigned to the job.
            JobNotFoundError: no such job. PermissionDeniedError: someone else's job.
        """
        pfns = await self._sandbox_pfns(job_id, "input")
        if not pfns:
            if job_id not in await self.status([job_id]):
                raise JobNotFoundError(f"job {job_id} does not exist", job_ids=(job_id,))
            raise SandboxNotAvailableError(
                f"DiracX has no input sandbox assigned to job {job_id}: DIRAC assigns it when "
                "its optimizers check the job, and this server has not (or the job had none)",
                job_id=job_id,
            )
        return await self._sandbox_url(job_id, pfns[0])

    async def _sandbox_pfns(self, job_id: int, kind: str) -> list[str]:
        action = f"list the {kind} sandbox of job {job_id}"
        response = await self._job_request(f"/api/jobs/{job_id}/sandbox/{kind}", job_id, action)
        pfns = json_list(response, action, "a list of sandbox PFNs")
        if not all(isinstance(p, str) for p in pfns):
            raise wrong_shape(response, action, "a list of sandbox PFNs", pfns)
        return [p for p in pfns if p]

    async def _sandbox_url(self, job_id: int, pfn: str) -> OutputSandbox:
        response = await self._api(
            "GET",
            "/api/jobs/sandbox",
            action=f"get a download URL for job {job_id}",
            job_ids=[job_id],
            params={"pfn": pfn},
            repeatable=True,
        )
        answer = json_object(
            response,
            f"the request for job {job_id}'s download URL",
            url=str,
            expires_in=(int, float, type(None)),
        )
        checksum, fmt = _pfn_details(pfn)
        expires = answer.get("expires_in")
        return OutputSandbox(
            job_id=job_id,
            url=str(answer["url"]),
            sha256=checksum,
            format=fmt,
            expires_in=float(expires) if expires is not None else None,
        )

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The shared httpx client, for token-less requests to presigned URLs.

        Usage: ``async with backend.http_client.stream("GET", info.url) as r: ...``
        """
        return self._client


def _refuse_by_state(
    job_ids: Sequence[int],
    states: Mapping[int, JobState],
    allowed: Callable[[JobStatus], bool],
) -> dict[int, str]:
    """Jobs the action cannot apply to: unknown ones, and those whose status forbids it."""
    refused: dict[int, str] = {}
    for job_id in job_ids:
        state = states.get(job_id)
        if state is None:
            refused[job_id] = "unknown job"
        elif not allowed(state.status):
            refused[job_id] = str(state.status)
    return refused


def _int_or(value: object, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def _attributes(row: Mapping[str, Any]) -> JobAttributes | None:
    """A search row with every attribute as :class:`JobAttributes` (``None``: unknown status)."""
    status = to_status(row.get("Status"))
    if status is None:
        logger.warning(
            "job %s has status %r, which aiodirac does not know; skipped",
            row.get("JobID"),
            row.get("Status"),
        )
        return None
    verified = row.get("VerifiedFlag")
    return JobAttributes(
        job_id=int(row["JobID"]),
        status=status,
        minor_status=text(row.get("MinorStatus")),
        application_status=text(row.get("ApplicationStatus")) or "Unknown",
        site=text(row.get("Site")) or "ANY",
        job_name=text(row.get("JobName")),
        job_group=text(row.get("JobGroup")),
        job_type=text(row.get("JobType")),
        owner=text(row.get("Owner")),
        owner_group=text(row.get("OwnerGroup")),
        vo=text(row.get("VO")),
        user_priority=_int_or(row.get("UserPriority"), 0),
        reschedule_counter=_int_or(row.get("RescheduleCounter"), 0),
        submission_time=parse_time(row.get("SubmissionTime")),
        last_update_time=parse_time(row.get("LastUpdateTime")),
        start_exec_time=parse_time(row.get("StartExecTime")),
        end_exec_time=parse_time(row.get("EndExecTime")),
        heart_beat_time=parse_time(row.get("HeartBeatTime")),
        reschedule_time=parse_time(row.get("RescheduleTime")),
        verified=verified is True or str(verified).lower() == "true",
        accounted=str(row.get("AccountedFlag")),
    )


def _logging_record(entry: object) -> LoggingRecord | None:
    """One ``LoggingInfo`` entry (by alias or by field name); ``None`` if it cannot be read."""
    if not isinstance(entry, Mapping):
        return None

    def get(alias: str, name: str) -> object:
        return entry.get(alias, entry.get(name))

    status = to_status(get("Status", "status"))
    when = parse_time(get("StatusTime", "status_time"))
    if status is None or when is None:
        logger.warning("unreadable logging record %r; skipped", entry)
        return None
    return LoggingRecord(
        status,
        text(get("MinorStatus", "minor_status")),
        text(get("ApplicationStatus", "application_status")),
        when,
        text(get("Source", "source")),
    )


def _is_unconfirmed(state: JobState | None) -> bool:
    return state is not None and state.status is JobStatus.SUBMITTING
