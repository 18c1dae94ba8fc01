"""A hostile HTTP server of our own: loopback only, bounded in time, scripted per request.

:class:`HostileServer` speaks just enough HTTP/1.1 (keep-alive, Content-Length request bodies) to
be any server an attacker could run: it answers each request with whatever :class:`Reply` its
handler returns, including replies no honest server sends: a ``Content-Length`` that lies, a
body that never ends, a stall after the headers, a connection cut mid-body. It runs in its own
event loop thread (so the blocking facade and the command line can talk to it), on a free port of
127.0.0.1, and every connection is cut after ``deadline`` seconds whatever it is doing.

:class:`FakeDiracX` is a handler that plays a DiracX server (the endpoints aiodirac calls) with
its own jobs and sandboxes, any of whose answers a test can replace with a hostile one.

Usage::

    with HostileServer(FakeDiracX(jobs)) as server:
        backend = DiracXBackend(server.url, token=TOKEN)
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import anyio.from_thread
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSListener

TOKEN = "hostile-suite-secret-token-7f3a9c"
"""The bearer token the tests give aiodirac: it must never appear in any output."""

ZEROS = b"\0" * (64 << 10)

_REASONS = {200: "OK", 206: "Partial Content", 401: "Unauthorized", 404: "Not Found"}


@dataclass
class Request:
    """One request as the server read it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    """What to answer, honest or not.

    Attributes:
        status: the HTTP status.
        body: bytes, or an iterable of chunks (possibly endless).
        length: the ``Content-Length`` to announce: ``"auto"`` (the true length of bytes),
            ``None`` (none: the body ends when the connection closes) or any number (a lie).
        headers: more headers (e.g. ``Content-Type``).
        stall: send the headers, then nothing until the client leaves or the deadline.
        cut_after: close the connection after this many body bytes.
    """

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    length: int | str | None = "auto"
    headers: Mapping[str, str] = field(default_factory=dict)
    stall: bool = False
    cut_after: int | None = None

    @classmethod
    def json(cls, document: Any, status: int = 200, **headers: str) -> Reply:
        return cls(
            status,
            json.dumps(document).encode(),
            headers={"Content-Type": "application/json", **headers},
        )


class endless(Iterable[bytes]):
    """``prefix``, then ``chunk`` forever: from the start again for every reply that sends it
    (one :class:`Reply` may answer many requests)."""

    def __init__(self, prefix: bytes = b"", chunk: bytes = ZEROS) -> None:
        self.prefix = prefix
        self.chunk = chunk

    def __iter__(self) -> Iterator[bytes]:
        if self.prefix:
            yield self.prefix
        while True:
            yield self.chunk


Handler = Callable[[Request], Reply]


class HostileServer(AbstractContextManager["HostileServer"]):
    """The server (see the module docstring); ``sent`` counts body bytes written."""

    def __init__(
        self, handler: Handler, *, deadline: float = 30.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.deadline = deadline
        self.requests: list[Request] = []
        self.sent = 0
        self.port = 0
        self._lock = threading.Lock()
        self._portal_cm: Any = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._stop: anyio.Event | None = None
        self._done: Any = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._done, self.port = self._portal.start_task(self._serve)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._portal is not None
        if self._stop is not None:
            self._portal.call(self._stop.set)
        self._done.result(timeout=self.deadline + 10)
        self._portal_cm.__exit__(None, None, None)

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[int]) -> None:
        self._stop = anyio.Event()
        tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = tcp.extra(anyio.abc.SocketAttribute.local_port)
        listener: anyio.abc.Listener[Any] = tcp
        if self.tls is not None:
            listener = TLSListener(tcp, self.tls, standard_compatible=False)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._connection, tg)
            task_status.started(port)
            await self._stop.wait()
            tg.cancel_scope.cancel()

    async def _connection(self, stream: anyio.abc.ByteStream) -> None:
        async with stream:
            with anyio.move_on_after(self.deadline):
                buffered = BufferedByteReceiveStream(stream)
                try:
                    while await self._one(stream, buffered):
                        pass
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                    pass
                except (anyio.DelimiterNotFound, OSError, ssl.SSLError):
                    pass

    async def _one(self, stream: anyio.abc.ByteStream, buffered: BufferedByteReceiveStream) -> bool:
        head = await buffered.receive_until(b"\r\n\r\n", 1 << 16)
        line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = line.split(" ", 2)
        headers = {}
        for h in lines:
            name, _, value = h.partition(":")
            headers[name.strip().lower()] = value.strip()
        size = int(headers.get("content-length", "0") or 0)
        body = await buffered.receive_exactly(size) if size else b""
        parts = urlsplit(target)
        request = Request(method, parts.path, parse_qs(parts.query), headers, body)
        with self._lock:
            self.requests.append(request)
        try:
            reply = self.handler(request)
        except Exception as exc:  # noqa: BLE001 - a broken fake answers as a broken server does
            reply = Reply(500, f"fake server error: {exc!r}".encode())
        return await self._send(stream, reply)

    async def _send(self, stream: anyio.abc.ByteStream, reply: Reply) -> bool:
        keep = reply.length is not None and not reply.stall and reply.cut_after is None
        length = reply.length
        if length == "auto":
            if isinstance(reply.body, bytes):
                length = len(reply.body)
            else:
                length, keep = None, False
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Whatever')}"]
        head += [f"{k}: {v}" for k, v in reply.headers.items()]
        if length is not None:
            head.append(f"Content-Length: {length}")
        head.append("Connection: keep-alive" if keep else "Connection: close")
        await stream.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if reply.stall:
            await anyio.sleep_forever()
        chunks = [reply.body] if isinstance(reply.body, bytes) else reply.body
        budget = reply.cut_after
        for chunk in chunks:
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            if chunk:
                await stream.send(chunk)
                with self._lock:
                    self.sent += len(chunk)
            if budget == 0:
                return False
        return keep


# --------------------------------------------------------------------------- a fake DiracX


@dataclass
class FakeJob:
    """One job of the fake DiracX: what its search rows say, and its output sandbox."""

    job_id: int
    status: str = "Done"
    minor_status: str = "Execution Complete"
    application_status: str = "Unknown"
    site: str = "DIRAC.hostile.org"
    sandbox: bytes | None = None
    sandbox_sha256: str | None = None
    sandbox_format: str = "tar.bz2"

    def row(self) -> dict[str, Any]:
        return {
            "JobID": self.job_id,
            "Status": self.status,
            "MinorStatus": self.minor_status,
            "ApplicationStatus": self.application_status,
            "Site": self.site,
            "LastUpdateTime": "2026-12-04T22:00:00",
            "Owner": "hostile",
            "JobName": f"job-{self.job_id}",
            "JobGroup": "hostile",
        }


class FakeDiracX:
    """A handler playing DiracX 0.7.0's endpoints that aiodirac uses, honestly by default.

    ``override[name]`` replaces one endpoint's answer (a :class:`Reply`, or a function of the
    request returning one); names: ``userinfo``, ``search``, ``summary``, ``status``,
    ``sandbox_listing``, ``sandbox_url``, ``sandbox_register``, ``submit``, ``reschedule``,
    ``sandbox`` (the archive bytes). ``refuse_token`` answers 401 to every API call.
    """

    def __init__(self, jobs: Iterable[FakeJob] = ()) -> None:
        self.jobs = {job.job_id: job for job in jobs}
        self.override: dict[str, Reply | Handler] = {}
        self.refuse_token = False
        self.base = ""

    def __call__(self, request: Request) -> Reply:
        name, reply = self._route(request)
        custom = self.override.get(name)
        if custom is not None:
            return custom(request) if callable(custom) else custom
        return reply()

    def _route(self, request: Request) -> tuple[str, Callable[[], Reply]]:
        path, method = request.path, request.method
        if path.startswith("/sandbox-store/"):
            job_id = int(path.rsplit("/", 1)[1])
            return "sandbox", lambda: self._archive(request, job_id)
        if path.startswith("/api/") and (
            self.refuse_token or request.headers.get("authorization") != f"Bearer {TOKEN}"
        ):
            return "auth", lambda: Reply.json({"detail": "Invalid JWT"}, 401)
        if path == "/api/auth/userinfo":
            return "userinfo", lambda: Reply.json({"preferred_username": "hostile"})
        if path == "/api/jobs/search" and method == "POST":
            return "search", lambda: self._search(request)
        if path == "/api/jobs/summary":
            return "summary", lambda: self._summary(request)
        if path == "/api/jobs/status" and method == "PATCH":
            return "status", lambda: self._patch(request)
        if path == "/api/jobs/reschedule":
            return "reschedule", lambda: Reply.json({"success": {}, "failed": {}})
        if path == "/api/jobs/jdl":
            return "submit", lambda: Reply.json({"detail": "no submissions here"}, 400)
        if path == "/api/jobs/sandbox" and method == "POST":
            return "sandbox_register", lambda: Reply.json({"detail": "no uploads here"}, 400)
        if path == "/api/jobs/sandbox" and method == "GET":
            return "sandbox_url", lambda: self._sandbox_url(request)
        if path.endswith("/sandbox/output"):
            job_id = int(path.split("/")[3])
            return "sandbox_listing", lambda: self._listing(job_id)
        return "unknown", lambda: Reply.json({"detail": "Not Found"}, 404)

    def _wanted(self, request: Request) -> list[int]:
        for term in request.json().get("search", []):
            if term.get("parameter") == "JobID":
                return [int(v) for v in term.get("values", [])]
        return list(self.jobs)

    def _search(self, request: Request) -> Reply:
        rows = [self.jobs[j].row() for j in self._wanted(request) if j in self.jobs]
        return Reply.json(rows)

    def _summary(self, request: Request) -> Reply:
        counts: dict[str, int] = {}
        for j in self._wanted(request):
            if j in self.jobs:
                counts[self.jobs[j].status] = counts.get(self.jobs[j].status, 0) + 1
        return Reply.json([{"Status": s, "count": n} for s, n in counts.items()])

    def _patch(self, request: Request) -> Reply:
        success: dict[str, Any] = {}
        for key, changes in request.json().items():
            job = self.jobs.get(int(key))
            if job is None:
                continue
            for change in changes.values():
                job.status = change.get("Status", job.status)
            success[key] = {"Status": job.status}
        return Reply.json({"success": success, "failed": {}})

    def _listing(self, job_id: int) -> Reply:
        job = self.jobs.get(job_id)
        if job is None or job.sandbox is None:
            return Reply.json([])
        sha = job.sandbox_sha256 or "0" * 64
        return Reply.json([f"SB:SandboxSE|/S3/store/{job_id}/sha256:{sha}.{job.sandbox_format}"])

    def _sandbox_url(self, request: Request) -> Reply:
        job_id = int(request.query["pfn"][0].split("/")[-2])
        return Reply.json({"url": f"{self.base}/sandbox-store/{job_id}", "expires_in": 3600})

    def _archive(self, request: Request, job_id: int) -> Reply:
        job = self.jobs[job_id]
        assert job.sandbox is not None
        return Reply(body=job.sandbox, headers={"Content-Type": "application/octet-stream"})
