"""The HTTP core of the DiracX backend: authenticated requests, paging, status updates.

Every DiracX request goes through :meth:`DiracXHTTP._api`: it adds the bearer token (DiracX
URLs only: presigned S3 URLs are fetched without it), retries once after a 401 with a new token,
and maps failures to aiodirac's exceptions in one place (:mod:`._errors`). A request marked
``repeatable`` (safe to send again: searches, status changes to a target status, sandbox
registration...) reports a 500 as transient, so that the engine's retry policy repeats it: a
server with several workers and a real database answers 500 for races and deadlocks of the
moment. Retrying is the engine's job, never this module's. ``PATCH
/api/jobs/status`` answers are read back job by job, because DiracX answers 200 when its state
machine refused a change; and since DiracX refuses a whole request when one job is not the
caller's, such requests are split into the caller's jobs and the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from aiodirac._exceptions import BackendError, JobNotFoundError, PermissionDeniedError
from aiodirac._job._status import JobStatus
from aiodirac.backends._protocol import Capabilities

from ._auth import TokenManager
from ._errors import describe_jobs, network_error, raise_for_response
from ._shapes import job_rows, json_object, json_of, outcomes, read_capped

__all__ = [
    "MAX_PER_PAGE",
    "SOURCE",
    "DiracXHTTP",
    "batches",
    "content_range_total",
    "detail_dict",
    "now_utc",
    "parse_time",
    "to_status",
]

logger = logging.getLogger("aiodirac.diracx")

SOURCE = "aiodirac"
#: DiracX's largest search page (and so the most IDs one ``in`` filter is sent with).
MAX_PER_PAGE = 10_000


def now_utc() -> datetime:
    """The current time, timezone-aware (DiracX refuses naive status timestamps).

    Usage: ``now_utc().isoformat()``
    """
    return datetime.now(UTC)


def parse_time(value: object) -> datetime | None:
    """A DiracX timestamp as an aware UTC datetime; ``None`` when absent or unreadable.

    Usage: ``parse_time("2026-11-25T16:31:13.572990Z")``
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # DiracX stores UTC without a zone in SQLite
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


#: Status strings to members: a dict lookup is several times cheaper than ``JobStatus(value)``,
#: and a status poll of 100,000 jobs does one per job.
_STATUSES: dict[object, JobStatus] = {status.value: status for status in JobStatus}


def to_status(value: object) -> JobStatus | None:
    """The :class:`JobStatus` of a DiracX status string; ``None`` for an unknown one.

    Usage: ``to_status("Done")`` -> ``JobStatus.DONE``
    """
    return _STATUSES.get(value)


def batches(items: Sequence[int], size: int) -> Iterable[list[int]]:
    """Consecutive slices of at most ``size`` items.

    Usage: ``for batch in batches(ids, 1000): ...``
    """
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def detail_dict(response: httpx.Response) -> dict[str, Any] | None:
    """FastAPI's ``detail`` when it is an object (DiracX puts per-job results there).

    Usage: ``detail_dict(response) or {}``
    """
    try:
        body = response.json()
    except ValueError:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, dict) else None


def content_range_total(value: str | None) -> int | None:
    """The total of a ``Content-Range: jobs 0-99/160`` header (``None`` if absent).

    Usage: ``content_range_total("jobs 0-99/160")`` -> ``160``
    """
    if not value or "/" not in value:
        return None
    try:
        return int(value.rsplit("/", 1)[1])
    except ValueError:
        return None


class DiracXHTTP:
    """Request plumbing shared by :class:`DiracXBackend` and the test pilot (not public API).

    Usage: subclassed by ``DiracXBackend``; not used directly.
    """

    capabilities: Capabilities
    _url: str
    _client: httpx.AsyncClient
    _tokens: TokenManager
    _closed: bool
    _requests: int
    _username: str | None

    async def _api(
        self,
        method: str,
        path: str,
        *,
        action: str,
        job_ids: Sequence[int] = (),
        jobs_phrase: str | None = None,
        json: object = None,
        params: Mapping[str, str | int] | None = None,
        ok: Callable[[httpx.Response], bool] | None = None,
        repeatable: bool = False,
    ) -> httpx.Response:
        """One authenticated DiracX request; retried once after a 401 with a new token.

        ``repeatable``: sending it again is safe, so a 500 is a :class:`TransientError`.
        """
        if self._closed:
            raise BackendError("this DiracXBackend is closed")
        assert path.startswith("/api/"), path
        url = self._url + path
        for attempt in (1, 2):
            bearer = await self._tokens.get(self._client)
            request = self._client.build_request(
                method, url, json=json, params=params, headers={"Authorization": f"Bearer {bearer}"}
            )
            try:
                self._requests += 1
                response = await read_capped(await self._client.send(request, stream=True), action)
            except httpx.HTTPError as exc:
                raise network_error(exc, action=action, job_ids=job_ids, url=url) from exc
            if (
                response.status_code == 401
                and attempt == 1
                and await self._tokens.invalidate(bearer)
            ):
                logger.debug("DiracX answered 401 to %s; retrying with a new token", action)
                continue
            if ok is not None and ok(response):
                return response
            raise_for_response(
                response,
                action=action,
                job_ids=job_ids,
                jobs_phrase=jobs_phrase,
                repeatable=repeatable,
            )
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _whoami(self) -> str:
        if self._username is None:
            response = await self._api(
                "GET", "/api/auth/userinfo", action="read the user info", repeatable=True
            )
            info = json_object(response, "read the user info", preferred_username=str)
            self._username = str(info["preferred_username"])
        return self._username

    # ------------------------------------------------------------------ submission

    async def _set_status(
        self,
        updates: Mapping[int, Mapping[datetime, Mapping[str, str]]],
        *,
        action: str,
        force: bool = False,
    ) -> dict[int, tuple[JobStatus | None, str]]:
        """PATCH /api/jobs/status; what DiracX says each job now is: (status, reason if failed)."""
        stamps: dict[datetime, str] = {}
        body = {
            str(job_id): {
                stamps.get(when) or stamps.setdefault(when, when.isoformat()): change
                for when, change in changes.items()
            }
            for job_id, changes in updates.items()
        }
        ids = list(updates)
        response = await self._api(
            "PATCH",
            "/api/jobs/status",
            action=action,
            job_ids=ids,
            json=body,
            params={"force": "true"} if force else None,
            # 404 means "no job could be updated": its detail still lists the failures
            ok=lambda r: r.status_code == 404 and isinstance(detail_dict(r), dict),
            # each job is moved to a given status: sending it twice ends in the same state
            repeatable=True,
        )
        answer: object = (
            (detail_dict(response) or {})
            if response.status_code == 404
            else json_of(response, action)
        )
        success, failed = outcomes(response, action, answer)
        result: dict[int, tuple[JobStatus | None, str]] = {}
        for job_id, info in success.items():
            status = to_status(info.get("Status")) if isinstance(info, dict) else None
            result[job_id] = (status, "")
        for job_id, info in failed.items():
            result[job_id] = (None, str(info))
        return result

    async def _owned_split(self, job_ids: Sequence[int]) -> tuple[list[int], dict[int, str]]:
        """Split IDs into the caller's own jobs and the others (unknown, or someone else's)."""
        me = await self._whoami()
        rows = await self._search(
            job_ids, ["JobID", "Owner"], action="look up job owners", strict=False
        )
        owners = {int(row["JobID"]): str(row.get("Owner")) for row in rows}
        mine: list[int] = []
        others: dict[int, str] = {}
        for job_id in job_ids:
            owner = owners.get(job_id)
            if owner is None:
                others[job_id] = "unknown job"
            elif owner != me:
                others[job_id] = "belongs to another user"
            else:
                mine.append(job_id)
        return mine, others

    async def _apply(
        self,
        job_ids: Sequence[int],
        build: Callable[[int], Mapping[datetime, Mapping[str, str]]],
        *,
        action: str,
    ) -> tuple[dict[int, tuple[JobStatus | None, str]], dict[int, str]]:
        """Apply per-job updates in batches; jobs DiracX would not let us touch are set apart."""
        outcome: dict[int, tuple[JobStatus | None, str]] = {}
        forbidden: dict[int, str] = {}
        unique = list(dict.fromkeys(job_ids))
        for batch in batches(unique, self.capabilities.max_ids_per_update):
            try:
                outcome.update(await self._set_status({i: build(i) for i in batch}, action=action))
            except PermissionDeniedError:
                # DiracX refuses the whole request when one job is not ours: find which
                mine, others = await self._owned_split(batch)
                forbidden.update(others)
                if mine:
                    outcome.update(
                        await self._set_status({i: build(i) for i in mine}, action=action)
                    )
        return outcome, forbidden

    @staticmethod
    def _raise_forbidden(forbidden: Mapping[int, str], action: str) -> None:
        if not forbidden:
            return
        unknown = tuple(j for j, why in forbidden.items() if why == "unknown job")
        if unknown:
            raise JobNotFoundError(
                f"cannot {action} {describe_jobs(unknown)}: no such job on this DiracX server",
                job_ids=unknown,
                status_code=403,
            )
        others = tuple(forbidden)
        raise PermissionDeniedError(
            f"cannot {action} {describe_jobs(others)}: they belong to another user",
            job_ids=others,
            status_code=403,
        )

    async def _search(
        self,
        job_ids: Sequence[int] | None,
        parameters: list[str],
        *,
        action: str,
        extra: Sequence[Mapping[str, object]] = (),
        strict: bool = True,
    ) -> list[dict[str, Any]]:
        """Every row of a search, following 206 paging; ``in`` filters of at most 10,000 IDs."""
        rows: list[dict[str, Any]] = []
        groups: list[list[int] | None] = (
            list(batches(list(dict.fromkeys(job_ids)), MAX_PER_PAGE))
            if job_ids is not None
            else [None]
        )
        for group in groups:
            search: list[Mapping[str, object]] = list(extra)
            if group is not None:
                search.append({"parameter": "JobID", "operator": "in", "values": group})
            body = {
                "parameters": parameters,
                "search": search,
                "sort": [{"parameter": "JobID", "direction": "asc"}],
            }
            page = 1
            while True:
                response = await self._api(
                    "POST",
                    "/api/jobs/search",
                    action=action,
                    job_ids=group if strict and group else (),
                    json=body,
                    params={"page": page, "per_page": MAX_PER_PAGE},
                    ok=lambda r: r.status_code == 416,
                    repeatable=True,
                )
                if response.status_code == 416:
                    break
                chunk = job_rows(response, action)
                rows.extend(chunk)
                if response.status_code != 206 or not chunk:
                    break
                total = content_range_total(response.headers.get("Content-Range"))
                if total is not None and page * MAX_PER_PAGE >= total:
                    break
                page += 1
        return rows

    async def _job_request(self, path: str, job_id: int, action: str) -> httpx.Response:
        """A request about one job; a 403 is told apart into unknown job vs someone else's."""
        try:
            return await self._api("GET", path, action=action, job_ids=[job_id], repeatable=True)
        except PermissionDeniedError:
            _, others = await self._owned_split([job_id])
            if others.get(job_id) == "unknown job":
                raise JobNotFoundError(
                    f"cannot {action}: job {job_id} does not exist on this DiracX server",
                    job_ids=(job_id,),
                    status_code=403,
                ) from None
            raise
