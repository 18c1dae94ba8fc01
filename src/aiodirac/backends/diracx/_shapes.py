"""What DiracX's answers must look like, checked where they enter aiodirac.

Answers are read with a size cap (:func:`read_capped`). A server (or anything pretending to be
one) that answers 200 with JSON of another shape gets a
:class:`aiodirac.BackendError` naming the request and what was expected, instead of an
``AttributeError`` deep inside the engine. Every answer the backend reads goes through one of
these functions.

Usage::

    rows = job_rows(response, "read job statuses")
    answer = json_object(response, "sandbox download", url=str)
"""

from __future__ import annotations

from typing import Any

import httpx

from aiodirac._exceptions import BackendError

__all__ = [
    "MAX_ANSWER_BYTES",
    "job_rows",
    "json_list",
    "json_object",
    "json_of",
    "outcomes",
    "read_capped",
    "text",
    "wrong_shape",
]

#: The most bytes read of one DiracX answer (a full search page of every attribute is ~10 MB).
MAX_ANSWER_BYTES = 64 << 20


def _endpoint(response: httpx.Response) -> str:
    try:
        request = response.request
    except RuntimeError:  # a response built without a request (tests)
        return "?"
    return f"{request.method} {request.url.path}"


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    name = names.get(type(value)) or (
        "null" if value is None else "a number" if isinstance(value, int | float) else "a value"
    )
    shown = repr(value)
    return f"{name} ({shown[:60]}{'...' if len(shown) > 60 else ''})"


def wrong_shape(response: httpx.Response, action: str, expected: str, got: object) -> BackendError:
    """The error for an answer of the wrong shape.

    Usage: ``raise wrong_shape(response, "submit", "a list of jobs", body)``
    """
    return BackendError(
        f"DiracX answered {action} ({_endpoint(response)}) with JSON of an unexpected shape: "
        f"expected {expected}, got {_kind(got)}; check that the URL is a DiracX server this "
        "aiodirac supports",
        status_code=response.status_code,
    )


def json_of(response: httpx.Response, action: str) -> Any:
    """The JSON body, or :class:`BackendError` when it is not JSON.

    Usage: ``body = json_of(response, "summary")``
    """
    try:
        return response.json()
    except ValueError as exc:
        raise BackendError(
            f"DiracX answered {action} ({_endpoint(response)}) with something that is not JSON "
            f"(HTTP {response.status_code}, {response.headers.get('content-type') or 'no type'})",
            status_code=response.status_code,
        ) from exc


def json_list(response: httpx.Response, action: str, expected: str = "a list") -> list[Any]:
    """A JSON list body.

    Usage: ``pfns = json_list(response, "list the output sandbox", "a list of PFNs")``
    """
    body = json_of(response, action)
    if not isinstance(body, list):
        raise wrong_shape(response, action, expected, body)
    return body


def json_object(
    response: httpx.Response, action: str, **required: type | tuple[type, ...]
) -> dict[str, Any]:
    """A JSON object body holding each ``required`` key with a value of that type.

    Usage: ``json_object(response, "userinfo", preferred_username=str)``
    """
    body = json_of(response, action)
    if not isinstance(body, dict):
        raise wrong_shape(response, action, _expected_object(required), body)
    for key, kind in required.items():
        if not isinstance(body.get(key), kind):
            raise wrong_shape(response, action, _expected_object(required), body)
    return body


def _expected_object(required: dict[str, type | tuple[type, ...]]) -> str:
    if not required:
        return "an object"
    return "an object with " + ", ".join(required)


def _job_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def job_rows(response: httpx.Response, action: str) -> list[dict[str, Any]]:
    """A list of objects, each with a positive integer ``JobID`` (made an ``int``).

    Usage: ``for row in job_rows(response, "read job statuses"): row["JobID"]``
    """
    expected = "a list of objects with a JobID"
    rows = json_list(response, action, expected)
    for row in rows:
        if not isinstance(row, dict):
            raise wrong_shape(response, action, expected, row)
        job_id = _job_id(row.get("JobID"))
        if job_id is None:
            raise wrong_shape(response, action, expected, row)
        row["JobID"] = job_id
    return rows


def outcomes(
    response: httpx.Response, action: str, answer: object
) -> tuple[dict[int, Any], dict[int, Any]]:
    """The ``success`` and ``failed`` maps of a status-change answer, keyed by job ID.

    Usage: ``success, failed = outcomes(response, "kill", body)``
    """
    expected = "an object with success and failed maps of job IDs"
    if not isinstance(answer, dict) or not ("success" in answer or "failed" in answer):
        raise wrong_shape(response, action, expected, answer)
    maps: list[dict[int, Any]] = []
    for key in ("success", "failed"):
        part = answer.get(key) or {}
        if not isinstance(part, dict):
            raise wrong_shape(response, action, expected, answer)
        by_id: dict[int, Any] = {}
        for raw, info in part.items():
            job_id = _job_id(raw)
            if job_id is None:
                raise wrong_shape(response, action, expected, answer)
            by_id[job_id] = info
        maps.append(by_id)
    return maps[0], maps[1]


def text(value: object, default: str = "") -> str:
    """A status field as text: a string as it is, nothing as ``default``, anything else as its
    JSON-ish text (a server may put anything there; it is shown, never interpreted).

    Usage: ``text(row.get("MinorStatus"))``
    """
    if isinstance(value, str):
        return value or default
    if value is None:
        return default
    return str(value)


async def read_capped(response: httpx.Response, action: str) -> httpx.Response:
    """``response`` (sent with ``stream=True``) read whole and decoded, at most
    :data:`MAX_ANSWER_BYTES`: a server that sends without end is cut off there with
    :class:`BackendError` instead of filling the memory. Closes ``response``.

    Usage: ``response = await read_capped(await client.send(request, stream=True), "submit")``
    """
    body: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise BackendError(
                    f"DiracX answered {action} ({response.request.method} "
                    f"{response.request.url.path}) with more than {MAX_ANSWER_BYTES} bytes: "
                    "refused (no DiracX answer is that large); check the server's URL",
                    status_code=response.status_code,
                )
            body.append(chunk)
    finally:
        await response.aclose()
    # The body is decoded already: the new response must not decode it again.
    skip = {b"content-encoding", b"content-length", b"transfer-encoding"}
    headers = [(k, v) for k, v in response.headers.raw if k.lower() not in skip]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(body),
        request=response.request,
        extensions=response.extensions,
    )
