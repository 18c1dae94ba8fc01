"""Translate DiracX HTTP answers and httpx failures into aiodirac's exception tree, in one place.

Every request the DiracX backend makes goes through :func:`raise_for_response` (an answer that is
not a success) or :func:`network_error` (no usable answer). Messages carry the server's own
``detail`` and the jobs concerned, and never a token or a presigned URL's signature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import httpx

from aiodirac._exceptions import (
    AuthenticationError,
    BackendError,
    ConfigurationError,
    InvalidRequestError,
    JobNotFoundError,
    NetworkError,
    PermissionDeniedError,
    ServiceUnavailableError,
    certificate_refused,
    reason_of,
)
from aiodirac.backends._http._headers import parse_retry_after
from aiodirac.backends._http._tls import CA_HINTS, untrusted_certificate

__all__ = [
    "CA_HINTS",
    "LOGIN_HINTS",
    "describe_jobs",
    "network_error",
    "parse_retry_after",
    "raise_for_response",
    "redact_url",
    "server_detail",
]

#: What to do when DiracX has no valid token for us, said for each interface.
LOGIN_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "python": "run `dirac login` (or refresh DIRACX_CREDENTIALS_PATH), or pass a valid "
        "token (AsyncDirac(token=...))",
        "cli": "run `dirac login` (or point DIRACX_CREDENTIALS_PATH at a valid credentials "
        "file), or use --backend local to run the jobs on this machine",
    }
)
_TRANSIENT = frozenset({429, 502, 503, 504})
#: what a request that is safe to repeat may also meet and be repeated after: a server error of
#: the moment (a database deadlock or race, a worker restarting: DiracX answers 500)
_TRANSIENT_IF_REPEATABLE = frozenset({500})
_MAX_DETAIL = 500


def redact_url(url: httpx.URL | str) -> str:
    """The URL without its query string (a presigned URL's query is a credential).

    Usage: ``redact_url(response.url)``
    """
    parsed = httpx.URL(str(url))
    return str(parsed.copy_with(query=None, fragment=None))


def describe_jobs(job_ids: Sequence[int], *, limit: int = 6) -> str:
    """A short phrase naming jobs: ``job 7``, ``jobs 7, 8, 9`` or ``jobs 7, 8, ... 120 (40 jobs)``.

    Usage: ``f"could not kill {describe_jobs(ids)}"``
    """
    ids = list(job_ids)
    if not ids:
        return "no job"
    if len(ids) == 1:
        return f"job {ids[0]}"
    if len(ids) <= limit:
        return "jobs " + ", ".join(str(i) for i in ids)
    head = ", ".join(str(i) for i in ids[: limit - 1])
    return f"jobs {head}, ... {ids[-1]} ({len(ids)} jobs)"


def server_detail(response: httpx.Response) -> str:
    """The server's explanation: FastAPI's ``detail`` (text, validation list or object), else text.

    Usage: ``server_detail(response)`` -> ``"JDL syntax error"``
    """
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()
        return text[:_MAX_DETAIL] if text else response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail[:_MAX_DETAIL]
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                where = ".".join(str(p) for p in item.get("loc", ()))
                parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)[:_MAX_DETAIL]
    return json.dumps(detail, default=str)[:_MAX_DETAIL]


def raise_for_response(
    response: httpx.Response,
    *,
    action: str,
    job_ids: Sequence[int] = (),
    jobs_phrase: str | None = None,
    repeatable: bool = False,
) -> None:
    """Raise the aiodirac exception for a DiracX answer that is not a 2xx; return otherwise.

    Args:
        response: the answer.
        action: what was attempted, for the message (``"submit"``, ``"kill"``, ...).
        job_ids: the jobs concerned, carried by the exception.
        jobs_phrase: how to name them in the message (defaults to their IDs).
        repeatable: the request is safe to send again (idempotent, or protected by the
            two-phase submission): a 500 is then transient too, and retried by the engine.

    Raises:
        AuthenticationError: 401.
        PermissionDeniedError: 403.
        JobNotFoundError: 404.
        InvalidRequestError: 400, 413, 416, 422 and other 4xx.
        ServiceUnavailableError: 429, 502, 503, 504 (with ``retry_after``), and 500 when
            ``repeatable``.
        BackendError: any other status (500 to a request that is not repeatable, ...).

    Usage: ``raise_for_response(response, action="kill", job_ids=ids)``
    """
    code = response.status_code
    if 200 <= code < 300:
        return
    ids = tuple(job_ids)
    who = jobs_phrase or (describe_jobs(ids) if ids else "")
    where = f" ({who})" if who else ""
    detail = server_detail(response)
    base = f"DiracX refused to {action}{where}: HTTP {code}: {detail}"
    if code == 401:
        raise AuthenticationError(
            f"DiracX did not accept the token to {action}{where}: {detail}",
            status_code=code,
            job_ids=ids,
        ).with_hints(**LOGIN_HINTS)
    if code == 403:
        raise PermissionDeniedError(
            f"{base}. The jobs must exist and belong to you (or use a JobAdministrator identity)",
            status_code=code,
            job_ids=ids,
        )
    if code == 404:
        raise JobNotFoundError(base, status_code=code, job_ids=ids)
    if code in _TRANSIENT or (repeatable and code in _TRANSIENT_IF_REPEATABLE):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        hint = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        raise ServiceUnavailableError(
            f"DiracX is unavailable to {action}{where}: HTTP {code}: {detail}{hint}",
            status_code=code,
            job_ids=ids,
            retry_after=retry_after,
        )
    if 400 <= code < 500:
        raise InvalidRequestError(base, status_code=code, job_ids=ids)
    raise BackendError(
        f"DiracX failed to {action}{where}: HTTP {code} from {redact_url(response.url)}: {detail}",
        status_code=code,
        job_ids=ids,
    )


def network_error(
    exc: httpx.HTTPError, *, action: str, job_ids: Sequence[int] = (), url: str = ""
) -> NetworkError | ConfigurationError:
    """The :class:`NetworkError` for a transport failure or timeout (raise it ``from exc``).

    A TLS certificate that does not verify is a :class:`ConfigurationError` instead: retrying
    cannot help, the CA bundle has to change (:data:`CA_HINTS` says how).

    Usage: ``raise network_error(exc, action="submit", url=base) from exc``
    """
    ids = tuple(job_ids)
    where = f" ({describe_jobs(ids)})" if ids else ""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    target = f" at {redact_url(url)}" if url else ""
    reason = reason_of(exc)
    if certificate_refused(exc):
        return untrusted_certificate(exc, f"request to {action}{target}")
    return NetworkError(
        f"request to {action}{where} {kind}{target}: {reason}; the outcome is unknown, "
        "retrying may help",
        job_ids=ids,
    )
