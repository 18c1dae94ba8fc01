"""Faults a real server cannot produce on demand (respx), and the pure parts of the backend."""

from __future__ import annotations

import email.utils
import io
import os
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx
from _dxjobs import make_chunk

from aiodirac import (
    AuthenticationError,
    BackendError,
    ConfigurationError,
    InvalidRequestError,
    JobDescriptionError,
    NetworkError,
    ServiceUnavailableError,
    TransientError,
)
from aiodirac.backends.diracx import DiracXBackend
from aiodirac.backends.diracx._errors import parse_retry_after
from aiodirac.backends.diracx._sandbox import build_input_sandbox

URL = "https://diracx.test"
TOKEN = "SECRET-TOKEN-0123456789abcdef"


@pytest.fixture
async def backend() -> AsyncIterator[DiracXBackend]:
    async with DiracXBackend(URL, token=TOKEN, timeout=5) as b:
        yield b


@pytest.mark.parametrize(
    ("code", "header", "expected"),
    [(429, "7", 7.0), (503, "0", 0.0), (502, None, None), (504, "garbage", None)],
)
async def test_transient_statuses_carry_retry_after(
    backend: DiracXBackend, code: int, header: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    with respx.mock(base_url=URL) as mock:
        mock.post("/api/jobs/search").respond(code, json={"detail": "busy"}, headers=headers)
        with pytest.raises(ServiceUnavailableError) as info:
            await backend.status([1, 2])
    assert info.value.status_code == code
    assert info.value.retry_after == expected
    assert info.value.job_ids == (1, 2)
    assert TOKEN not in str(info.value)


async def test_retry_after_as_http_date(backend: DiracXBackend) -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    with respx.mock(base_url=URL) as mock:
        mock.patch("/api/jobs/status").respond(503, headers={"Retry-After": when})
        with pytest.raises(ServiceUnavailableError) as info:
            await backend.confirm([5])
    assert info.value.retry_after is not None
    assert 100 < info.value.retry_after <= 120


class _CutStream(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'[{"JobID": 1, "Status": "Runn'
        raise httpx.ReadError("connection reset by peer")


async def test_reset_mid_response_is_a_network_error(backend: DiracXBackend) -> None:
    with respx.mock(base_url=URL) as mock:
        mock.post("/api/jobs/search").respond(200, stream=_CutStream())
        with pytest.raises(NetworkError) as info:
            await backend.status([1])
    assert isinstance(info.value, TransientError)
    assert isinstance(info.value.__cause__, httpx.ReadError)


async def test_timeout_and_refused_connection(backend: DiracXBackend) -> None:
    with respx.mock(base_url=URL) as mock:
        mock.post("/api/jobs/jdl").mock(side_effect=httpx.ReadTimeout("timed out"))
        mock.post("/api/jobs/sandbox").respond(200, json={"pfn": _pfn(), "url": None})
        with pytest.raises(NetworkError, match=r"timed out.*unknown"):
            await backend.submit(make_chunk([0]))
        mock.post("/api/jobs/summary").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(NetworkError, match="refused"):
            await backend.summary([1])


def _pfn() -> str:
    return "SB:SandboxSE|/S3/sandboxes/vo/g/u/sha256:" + "a" * 64 + ".tar.bz2"


async def test_other_errors_are_typed(backend: DiracXBackend) -> None:
    with respx.mock(base_url=URL) as mock:
        route = mock.post("/api/jobs/search")
        route.respond(422, json={"detail": [{"loc": ["query", "per_page"], "msg": "too big"}]})
        with pytest.raises(InvalidRequestError, match=r"query\.per_page: too big"):
            await backend.status([1])
        route.respond(500, text="Internal Server Error")
        # a search is safe to repeat: a 500 (a deadlock, a race between workers) is transient
        with pytest.raises(ServiceUnavailableError, match="HTTP 500") as info:
            await backend.status([1])
        assert info.value.status_code == 500
        # rescheduling twice is not the same as once: its 500 is not retried
        mock.post("/api/jobs/reschedule").respond(500, text="Internal Server Error")
        mock.patch("/api/jobs/status").respond(
            200, json={"success": {"1": {"Status": "Rescheduled"}}, "failed": {}}
        )
        route.respond(200, json=[{"JobID": 1, "Status": "Failed", "MinorStatus": "x"}])
        with pytest.raises(BackendError, match="HTTP 500") as refused:
            await backend.reschedule([1])
        assert not isinstance(refused.value, TransientError)
        route.respond(401, json={"detail": "Invalid JWT"})
        with pytest.raises(AuthenticationError, match="dirac login") as auth:
            await backend.status([1])
    assert TOKEN not in str(auth.value)
    assert TOKEN not in repr(backend)


async def test_provider_is_asked_again_after_401() -> None:
    tokens = iter(["first-token", "second-token"])
    calls: list[str] = []

    async def provider() -> str:
        return next(tokens)

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer first-token":
            return httpx.Response(401, json={"detail": "expired"})
        return httpx.Response(200, json=[])

    async with DiracXBackend(URL, token_provider=provider) as backend:
        with respx.mock(base_url=URL) as mock:
            mock.post("/api/jobs/search").mock(side_effect=answer)
            assert await backend.status([1]) == {}
    assert calls == ["Bearer first-token", "Bearer second-token"]


def _tree(root: Path) -> list[str]:
    (root / "data" / "deep").mkdir(parents=True)
    (root / "data" / "deep" / "z.txt").write_text("zed")
    (root / "data" / "a.txt").write_text("a")
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o750)
    (root / "link").symlink_to(root / "data" / "a.txt")
    return [str(root / "run.sh"), str(root / "data"), str(root / "link")]


def test_input_sandbox_is_deterministic(tmp_path: Path) -> None:
    first = build_input_sandbox(_tree(tmp_path / "one"), "<Workflow/>")
    paths = _tree(tmp_path / "two")
    for path in paths:
        os.utime(path, (12345, 12345), follow_symlinks=False)
    second = build_input_sandbox(list(reversed(paths)), "<Workflow/>")
    assert first.sha256 == second.sha256
    assert first.data == second.data
    assert build_input_sandbox(paths, "<Workflow>2</Workflow>").sha256 != first.sha256
    with tarfile.open(fileobj=io.BytesIO(first.data), mode="r:bz2") as tar:
        members = {m.name: m for m in tar.getmembers()}
        link = tar.extractfile("link")
        assert link is not None
        assert link.read() == b"a"
    assert sorted(members) == [
        "data",
        "data/a.txt",
        "data/deep",
        "data/deep/z.txt",
        "jobDescription.xml",
        "link",
        "run.sh",
    ]
    assert members["run.sh"].mode == 0o755
    assert members["data/a.txt"].mode == 0o644
    assert members["link"].isfile()
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {
        (0, 0, 0, "", "")
    }


def test_input_sandbox_refusals(tmp_path: Path) -> None:
    (tmp_path / "jobDescription.xml").write_text("x")
    with pytest.raises(JobDescriptionError, match="absolute"):
        build_input_sandbox(["relative.txt"], "")
    with pytest.raises(JobDescriptionError, match="does not exist"):
        build_input_sandbox([str(tmp_path / "missing")], "")
    with pytest.raises(JobDescriptionError, match="replace"):
        build_input_sandbox([str(tmp_path / "jobDescription.xml")], "")


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after(" 3.5 ") == 3.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 60) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_untrusted_certificate_is_a_configuration_error_not_a_retry() -> None:
    import ssl

    from aiodirac.backends.diracx._errors import network_error

    refused = httpx.ConnectError("")  # how httpx reports it under trio: the reason is the cause
    refused.__cause__ = ssl.SSLCertVerificationError("certificate verify failed: self-signed")
    error = network_error(refused, action="submit", url="https://dx.example/api/jobs/jdl")
    assert isinstance(error, ConfigurationError)
    assert "certificate is not trusted" in str(error)
    assert "self-signed" in str(error)
    assert "verify=" in str(error)
    reset = network_error(httpx.ReadError(""), action="submit")
    assert isinstance(reset, NetworkError)
    assert "ReadError" in str(reset)


def test_ca_bundle_path_is_an_ssl_context(tmp_path: Path) -> None:
    import ssl

    from aiodirac.backends._http._tls import ssl_verify

    assert ssl_verify(True) is True
    assert ssl_verify(False) is False
    assert isinstance(ssl_verify(str(tmp_path)), ssl.SSLContext)
    with pytest.raises(ConfigurationError, match="CA certificates"):
        DiracXBackend(URL, token=TOKEN, verify=str(tmp_path / "missing.pem"))


async def test_values_wider_than_diracx_columns_are_refused_before_any_request(
    backend: DiracXBackend,
) -> None:
    # MariaDB refuses them and DiracX 0.7.0 answers "JDL syntax error": say what is wrong
    with respx.mock(base_url=URL) as mock:
        with pytest.raises(JobDescriptionError, match=r"JobGroup .* 33 characters .* at most 32"):
            await backend.submit(make_chunk([0], job_group="g" * 33))
        with pytest.raises(JobDescriptionError, match=r"JobName .* at most 128") as info:
            await backend.submit(make_chunk([0], name="n" * 129))
        assert info.value.attribute == "JobName"
        assert not mock.calls


async def test_a_500_to_sandbox_registration_is_transient(backend: DiracXBackend) -> None:
    # two workers inserting the same new sandbox owner at once: MariaDB error 1062, HTTP 500.
    # Registration is content-addressed and safe to repeat: the gate retries it.
    with respx.mock(base_url=URL) as mock:
        mock.post("/api/jobs/sandbox").respond(500, text="Internal Server Error")
        with pytest.raises(ServiceUnavailableError, match="register a sandbox: HTTP 500"):
            await backend.submit(make_chunk([0]))
        assert [c.request.url.path for c in mock.calls] == ["/api/jobs/sandbox"]


async def test_jdl_syntax_error_while_the_database_is_down_is_transient(
    backend: DiracXBackend,
) -> None:
    # DiracX 0.7.0 answers 400 "JDL syntax error" to any failure while storing jobs, a database
    # outage included: its readiness probe tells the two apart
    with respx.mock(base_url=URL) as mock:
        mock.post("/api/jobs/sandbox").respond(200, json={"pfn": _pfn(), "url": None})
        mock.post("/api/jobs/jdl").respond(400, json={"detail": "JDL syntax error"})
        ready = mock.get("/api/health/ready")
        ready.respond(503, json={"detail": "Cannot connect to AuthDB"})
        with pytest.raises(ServiceUnavailableError, match="database is unavailable"):
            await backend.submit(make_chunk([0]))
        ready.respond(200, json={"status": "ready"})
        with pytest.raises(InvalidRequestError, match="JDL syntax error") as info:
            await backend.submit(make_chunk([0]))
        assert not isinstance(info.value, TransientError)
