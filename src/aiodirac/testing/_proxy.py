"""A fault-injecting HTTP/1.1 proxy for tests and benchmarks: loopback only, bounded, seeded.

:class:`FaultProxy` sits between a client and a real server on ``127.0.0.1`` and, per request, at
seeded rates (:class:`ProxyFaults`): adds latency; resets the client's connection *after* the
request was forwarded and the server answered (the client cannot know whether it was processed);
answers ``503`` or ``429`` with ``Retry-After`` itself (the server never sees the request); stalls
(forwards the request, then sends nothing back, past any client timeout); delivers late (holds
the request past the client's timeout, then forwards it: the server acts on a request whose
client already gave up, as a loaded server does). A switch refuses all
connections (the service is down) until it is turned off again.

It parses only request framing (headers, ``Content-Length`` or chunked bodies), so it works with
any HTTP/1.1 client that does not pipeline (httpx does not). It listens on loopback only (plain
HTTP), forwards to a loopback server only (plain HTTP, or HTTPS verified with ``verify``), serves at most ``max_connections`` connections at once and stops after
``max_duration`` seconds.

Usage::

    async with FaultProxy("http://127.0.0.1:8000", ProxyFaults(reset=0.1, seed=1)) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url) as client:
            ...
        await proxy.outage(30)   # connections refused for 30 s
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import random
import socket
import ssl
import struct
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from aiodirac._resource import TaskGroupResource
from aiodirac.backends._http._tls import ssl_verify

__all__ = ["FaultProxy", "ProxyFaults"]

logger = logging.getLogger("aiodirac.testing.proxy")

_MAX_HEAD = 64 * 1024
_MAX_BODY = 256 * 1024 * 1024
_Mode = Literal["forward", "reset", "stall", "late"]


@dataclass(frozen=True, slots=True)
class ProxyFaults:
    """What a :class:`FaultProxy` does to requests, at what rates (fractions of requests).

    Attributes:
        latency: seconds added before each request is forwarded (a round trip's worth).
        reset: forward, wait for the server's answer, then reset the client's connection.
        unavailable: answer ``503`` with ``Retry-After`` without forwarding.
        too_many: answer ``429`` with ``Retry-After`` without forwarding.
        retry_after: the ``Retry-After`` value, in seconds (sent rounded up to an integer).
        stall: forward, then answer nothing for ``stall_time`` seconds (then close).
        stall_time: how long a stall lasts; make it longer than the client's timeout.
        late: hold the request for ``late_time`` seconds, answering nothing, then forward it
            and drop the server's answer (the server acts after the client gave up).
        late_time: how long a late request is held; make it longer than the client's timeout.
        paths: only requests whose path starts with one of these get faults (all when None);
            latency applies to every request.
        seed: seed of the random draws (one per request, in arrival order).

    Usage: ``ProxyFaults(latency=0.1, reset=0.1, unavailable=0.05, stall=0.05, seed=7)``
    """

    latency: float = 0.0
    reset: float = 0.0
    unavailable: float = 0.0
    too_many: float = 0.0
    retry_after: float = 1.0
    stall: float = 0.0
    stall_time: float = 60.0
    late: float = 0.0
    late_time: float = 5.0
    paths: tuple[str, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        rates = (self.reset, self.unavailable, self.too_many, self.stall, self.late)
        if min(rates) < 0 or sum(rates) > 1:
            raise ValueError("ProxyFaults: rates must be >= 0 and add up to at most 1")
        if min(self.latency, self.stall_time, self.late_time, self.retry_after) < 0:
            raise ValueError(
                "ProxyFaults: latency, stall_time, late_time and retry_after must be >= 0"
            )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Closed(Exception):
    """The client closed its side, or sent something that is not HTTP/1.1."""


class _Reader:
    """Buffered reads of HTTP request framing from a byte stream."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _more(self) -> None:
        try:
            data = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise _Closed from None
        self.buffer += data

    async def until(self, marker: bytes, limit: int) -> bytes:
        while True:
            at = self.buffer.find(marker)
            if at >= 0:
                end = at + len(marker)
                data = bytes(self.buffer[:end])
                del self.buffer[:end]
                return data
            if len(self.buffer) > limit:
                raise _Closed
            await self._more()

    async def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            await self._more()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def request(self) -> tuple[bytes, str]:
        """One whole request (head and body, as received) and its path."""
        head = await self.until(b"\r\n\r\n", _MAX_HEAD)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _Closed
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            pieces = []
            while True:
                size_line = await self.until(b"\r\n", _MAX_HEAD)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size > _MAX_BODY:
                    raise _Closed
                if size == 0:
                    trailer = b""
                    while True:
                        trailer_line = await self.until(b"\r\n", _MAX_HEAD)
                        trailer += trailer_line
                        if trailer_line == b"\r\n":
                            break
                    pieces.append(size_line + trailer)
                    break
                pieces.append(size_line + await self.exactly(size + 2))
            body = b"".join(pieces)
        else:
            length = int(headers.get("content-length", "0") or 0)
            if length < 0 or length > _MAX_BODY:
                raise _Closed
            body = await self.exactly(length)
        return head + body, parts[1]


class FaultProxy(TaskGroupResource):
    """A TCP proxy that injects HTTP faults. Use as an async context manager.

    Args:
        upstream: the real server, ``http://127.0.0.1:<port>`` (loopback only).
        faults: what to inject (default: nothing; change it later with :meth:`set_faults`).
        port: the port to listen on (default: a free one).
        max_connections: client connections served at once; more are reset at once.
        max_duration: seconds after which the proxy stops serving and closes everything.

    Attributes:
        stats: counts of ``connections``, ``requests``, ``forwarded``, ``reset``,
            ``unavailable``, ``too_many``, ``stalled``, ``late``, ``refused``.

    Raises:
        ValueError: an upstream that is not a loopback ``http://`` address.

    Usage::

        async with FaultProxy(diracx_url, ProxyFaults(latency=0.1)) as proxy:
            backend = DiracXBackend(proxy.url, ...)
    """

    def __init__(
        self,
        upstream: str,
        faults: ProxyFaults | None = None,
        *,
        port: int = 0,
        max_connections: int = 256,
        max_duration: float = 3600.0,
        verify: bool | str = True,
    ) -> None:
        parts = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
        if (
            parts.scheme not in ("http", "https")
            or parts.hostname is None
            or not _loopback(parts.hostname)
        ):
            raise ValueError(f"FaultProxy forwards to a loopback server only, not {upstream!r}")
        self._up_host = parts.hostname
        self._up_port = parts.port or (443 if parts.scheme == "https" else 80)
        # HTTPS upstream: the proxy verifies the server's certificate (a CA bundle path or True)
        self._up_tls = ssl_verify(verify) if parts.scheme == "https" else None
        self.faults = faults or ProxyFaults()
        self._rng = random.Random(self.faults.seed)
        self._port = port
        self._max_connections = max_connections
        self._max_duration = max_duration
        self.stats: Counter[str] = Counter()
        self._clients: set[anyio.abc.SocketStream] = set()
        self._listener: anyio.abc.SocketListener | None = None
        self._serving: anyio.abc.TaskGroup | None = None
        self._refusing = False

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: where clients connect."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return self._port

    @property
    def refusing(self) -> bool:
        """True while connections are refused (see :meth:`refuse_connections`)."""
        return self._refusing

    def __repr__(self) -> str:
        return (
            f"<FaultProxy [{self.url} -> {'https' if self._up_tls is not None else 'http'}://"
            f"{self._up_host}:{self._up_port}, "
            f"{len(self._clients)} connections, {'down' if self._refusing else 'up'}]>"
        )

    def set_faults(self, faults: ProxyFaults) -> None:
        """Change the injected faults (and reseed).

        Usage: ``proxy.set_faults(ProxyFaults())`` to heal the network.
        """
        self.faults = faults
        self._rng = random.Random(faults.seed)

    # -- lifecycle ------------------------------------------------------------------------------

    async def _started(self) -> None:
        await self.tg.start(self._run)

    async def _closing(self) -> None:
        await self._close_listener()

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # The serving tasks live in their own scope, so that max_duration ends them and never
        # the caller's code inside ``async with``.
        with anyio.move_on_after(self._max_duration):
            async with anyio.create_task_group() as tg:
                self._serving = tg
                await self._listen()
                task_status.started()
                await anyio.sleep_forever()
        with anyio.CancelScope(shield=True):
            await self._close_listener()
        logger.info("FaultProxy %s stopped after its max_duration", self.url)

    async def _listen(self) -> None:
        assert self._serving is not None
        multi = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self._port)
        # One address, so one listener; its accept() lets us stop and start at will.
        (listener,) = multi.listeners
        assert isinstance(listener, anyio.abc.SocketListener)
        self._listener = listener
        self._port = listener.extra(SocketAttribute.local_port)
        self._serving.start_soon(self._accept, listener)

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.aclose()

    async def _accept(self, listener: anyio.abc.SocketListener) -> None:
        assert self._serving is not None
        while True:
            try:
                client = await listener.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                return
            self.stats["connections"] += 1
            if len(self._clients) >= self._max_connections:
                self.stats["refused"] += 1
                await self._reset(client)
                continue
            self._serving.start_soon(self._serve, client)

    async def refuse_connections(self, refuse: bool = True) -> None:
        """Stop (``True``) or resume (``False``) accepting connections on the same port.

        Going down also resets every open connection, as a service that dies would.

        Usage: ``await proxy.refuse_connections(); ...; await proxy.refuse_connections(False)``
        """
        if refuse == self._refusing:
            return
        # ``refusing`` changes once the change took effect: a client that sees the proxy down
        # is refused, one that sees it up again connects.
        if refuse:
            await self._close_listener()
            self._refusing = True
            for client in list(self._clients):
                await self._reset(client)
        else:
            await self._listen()
            # Said only once the listener is back: a client that saw ``refusing`` turn false
            # connects (it was said before the listener existed: a test found the gap).
            self._refusing = False

    async def outage(self, seconds: float) -> None:
        """Refuse connections for ``seconds``, then accept them again.

        Usage: ``tg.start_soon(proxy.outage, 30)``
        """
        await self.refuse_connections(True)
        try:
            await anyio.sleep(seconds)
        finally:
            with anyio.CancelScope(shield=True):
                await self.refuse_connections(False)

    @asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        """Connections are refused inside the block.

        Usage: ``async with proxy.down(): await anyio.sleep(30)``
        """
        await self.refuse_connections(True)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await self.refuse_connections(False)

    # -- one connection -------------------------------------------------------------------------

    @staticmethod
    async def _reset(stream: anyio.abc.SocketStream) -> None:
        """Close with a TCP RST (SO_LINGER 0), as a crashed peer or middlebox would."""
        try:
            raw = stream.extra(SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (OSError, anyio.TypedAttributeLookupError):
            pass
        await stream.aclose()

    def _draw(self, path: str) -> str:
        faults = self.faults
        if faults.paths is not None and not path.startswith(faults.paths):
            return "forward"
        draw = self._rng.random()
        for name, rate in (
            ("reset", faults.reset),
            ("unavailable", faults.unavailable),
            ("too_many", faults.too_many),
            ("stall", faults.stall),
            ("late", faults.late),
        ):
            if draw < rate:
                return name
            draw -= rate
        return "forward"

    async def _serve(self, client: anyio.abc.SocketStream) -> None:
        self._clients.add(client)
        try:
            try:
                upstream = await self._connect_upstream()
            except OSError:
                await self._reset(client)
                return
            async with upstream, client, anyio.create_task_group() as tg:
                state: dict[str, _Mode] = {"mode": "forward"}
                tg.start_soon(self._responses, upstream, client, state, tg.cancel_scope)
                await self._requests(client, upstream, state, tg.cancel_scope)
                tg.cancel_scope.cancel()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        finally:
            self._clients.discard(client)
            # closed here too when cancelled (the proxy closing) before the block above
            with anyio.CancelScope(shield=True):
                await client.aclose()

    async def _connect_upstream(self) -> anyio.abc.ByteStream:
        if self._up_tls is None:
            return await anyio.connect_tcp(self._up_host, self._up_port)
        context = self._up_tls
        if not isinstance(context, ssl.SSLContext):
            context = ssl.create_default_context()
            if self._up_tls is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return await anyio.connect_tcp(
            self._up_host, self._up_port, ssl_context=context, tls_standard_compatible=False
        )

    async def _requests(
        self,
        client: anyio.abc.SocketStream,
        upstream: anyio.abc.ByteStream,
        state: dict[str, _Mode],
        scope: anyio.CancelScope,
    ) -> None:
        reader = _Reader(client)
        while True:
            try:
                request, path = await reader.request()
            except _Closed:
                return
            self.stats["requests"] += 1
            fault = self._draw(path)
            if self.faults.latency:
                await anyio.sleep(self.faults.latency)
            if fault in ("unavailable", "too_many"):
                self.stats[fault] += 1
                code = (
                    "503 Service Unavailable" if fault == "unavailable" else "429 Too Many Requests"
                )
                body = b'{"detail":"injected by aiodirac FaultProxy"}'
                await client.send(
                    f"HTTP/1.1 {code}\r\nRetry-After: {math.ceil(self.faults.retry_after)}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                continue
            if fault == "stall":
                self.stats["stalled"] += 1
                state["mode"] = "stall"
                await upstream.send(request)
                self.stats["forwarded"] += 1
                with anyio.move_on_after(self.faults.stall_time):
                    # Hold the connection open, answering nothing, until the client gives up.
                    with contextlib.suppress(_Closed):
                        await reader.until(b"\x00never", _MAX_BODY)
                return
            if fault == "late":
                self.stats["late"] += 1
                state["mode"] = "late"
                await anyio.sleep(self.faults.late_time)  # the client gives up meanwhile
                await upstream.send(request)
                self.stats["forwarded"] += 1
                # Until the server answers (then the answer is dropped, the connection closed).
                await anyio.sleep_forever()
            state["mode"] = "reset" if fault == "reset" else "forward"
            await upstream.send(request)
            self.stats["forwarded"] += 1

    async def _responses(
        self,
        upstream: anyio.abc.ByteStream,
        client: anyio.abc.SocketStream,
        state: dict[str, _Mode],
        scope: anyio.CancelScope,
    ) -> None:
        try:
            async for data in upstream:
                mode = state["mode"]
                if mode == "stall":
                    continue
                if mode == "late":
                    break
                if mode == "reset":
                    # The server has answered: the request was processed, the client never knows.
                    self.stats["reset"] += 1
                    await self._reset(client)
                    break
                await client.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        scope.cancel()
