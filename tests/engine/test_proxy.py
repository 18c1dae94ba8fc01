"""Tests of aiodirac.testing._proxy.FaultProxy with a real HTTP client and a real TCP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
import pytest

from aiodirac.testing._proxy import FaultProxy, ProxyFaults


class Upstream:
    """A tiny HTTP/1.1 keep-alive server on loopback that counts the requests it processed."""

    def __init__(self) -> None:
        self.processed: list[bytes] = []
        self.port = 0

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        buffer = b""
        async with stream:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        buffer += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                chunked = False
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    if name.strip().lower() == b"transfer-encoding" and b"chunked" in value:
                        chunked = True
                if chunked:
                    while not buffer.endswith(b"0\r\n\r\n"):
                        buffer += await stream.receive()
                    body, buffer = buffer, b""
                else:
                    while len(buffer) < length:
                        buffer += await stream.receive()
                    body, buffer = buffer[:length], buffer[length:]
                self.processed.append(body)
                reply = b"ok:" + body
                try:
                    await stream.send(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(reply), reply)
                    )
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return


@asynccontextmanager
async def serve_upstream() -> AsyncIterator[Upstream]:
    # Started inside each test (not a fixture): a task group must be entered and left by the
    # same task.
    server = Upstream()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        yield server
        tg.cancel_scope.cancel()


async def test_forwards_requests_over_keep_alive() -> None:
    async with serve_upstream() as upstream:
        async with (
            FaultProxy(f"http://127.0.0.1:{upstream.port}") as proxy,
            httpx.AsyncClient(base_url=proxy.url) as client,
        ):
            for i in range(5):
                response = await client.post("/x", content=f"body{i}".encode())
                assert response.text == f"ok:body{i}"

            async def chunks() -> AsyncIterator[bytes]:
                yield b"a" * 10
                yield b"b" * 5

            response = await client.post("/chunked", content=chunks())
            assert response.status_code == 200
            assert proxy.stats["connections"] == 1
            assert proxy.stats["forwarded"] == 6
        assert len(upstream.processed) == 6


async def test_reset_happens_after_the_server_processed_the_request() -> None:
    async with serve_upstream() as upstream:
        faults = ProxyFaults(reset=1.0)
        async with (
            FaultProxy(f"http://127.0.0.1:{upstream.port}", faults) as proxy,
            httpx.AsyncClient(base_url=proxy.url) as client,
        ):
            with pytest.raises(httpx.TransportError):
                await client.post("/jobs", content=b"create")
            assert upstream.processed == [
                b"create"
            ]  # the server did the work; the client never knew
            assert proxy.stats["reset"] == 1


async def test_503_and_429_answered_by_the_proxy() -> None:
    async with serve_upstream() as upstream:
        async with (
            FaultProxy(
                f"http://127.0.0.1:{upstream.port}", ProxyFaults(unavailable=1.0, retry_after=2.5)
            ) as proxy,
            httpx.AsyncClient(base_url=proxy.url) as client,
        ):
            response = await client.get("/a")
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "3"
            proxy.set_faults(ProxyFaults(too_many=1.0))
            response = await client.get("/b")
            assert response.status_code == 429
            proxy.set_faults(ProxyFaults())
            assert (await client.get("/c")).status_code == 200  # same connection still usable
        assert len(upstream.processed) == 1


async def test_stall_forwards_then_never_answers() -> None:
    async with serve_upstream() as upstream:
        faults = ProxyFaults(stall=1.0, stall_time=30)
        async with (
            FaultProxy(f"http://127.0.0.1:{upstream.port}", faults) as proxy,
            httpx.AsyncClient(base_url=proxy.url, timeout=0.3) as client,
        ):
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/jobs", content=b"slow")
            assert upstream.processed == [b"slow"]
            assert proxy.stats["stalled"] == 1


async def test_seeded_rates_and_paths() -> None:
    async with serve_upstream() as upstream:

        async def run() -> list[int]:
            faults = ProxyFaults(unavailable=0.3, too_many=0.2, seed=11, paths=("/api/jobs",))
            codes = []
            async with (
                FaultProxy(f"http://127.0.0.1:{upstream.port}", faults) as proxy,
                httpx.AsyncClient(base_url=proxy.url) as client,
            ):
                for _ in range(60):
                    codes.append((await client.get("/api/jobs/x")).status_code)
                # Other paths are never faulted.
                for _ in range(10):
                    assert (await client.get("/api/auth/token")).status_code == 200
            return codes

        first = await run()
        assert first == await run()
        assert 10 <= first.count(503) <= 30
        assert 5 <= first.count(429) <= 20


async def test_refuse_connections_then_come_back() -> None:
    async with (
        serve_upstream() as upstream,
        FaultProxy(f"http://127.0.0.1:{upstream.port}") as proxy,
    ):
        async with httpx.AsyncClient(base_url=proxy.url) as client:
            assert (await client.get("/")).status_code == 200
            async with proxy.down():
                assert proxy.refusing
                with pytest.raises(httpx.ConnectError):
                    await client.get("/")
            assert (await client.get("/")).status_code == 200
        async with anyio.create_task_group() as tg:
            # long enough for the one request below to fall in it on a loaded machine
            tg.start_soon(proxy.outage, 2.0)
            await until(lambda: proxy.refusing)
            async with httpx.AsyncClient(base_url=proxy.url) as client:
                with pytest.raises(httpx.ConnectError):
                    await client.get("/")
                await until(lambda: not proxy.refusing)  # the outage is over by itself
                assert (await client.get("/")).status_code == 200


async def test_refusing_changes_once_the_change_took_effect() -> None:
    # A client that sees the proxy up again can connect at once (before, ``refusing`` turned
    # False before the port was bound again: 200 of 200 such connections were refused).
    async with FaultProxy("http://127.0.0.1:9") as proxy:
        for _ in range(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(proxy.refuse_connections, True)
                await until(lambda: proxy.refusing)
                with pytest.raises(OSError, match="connect"):
                    await anyio.connect_tcp("127.0.0.1", proxy.port)
            async with anyio.create_task_group() as tg:
                tg.start_soon(proxy.refuse_connections, False)
                with anyio.fail_after(30):
                    while proxy.refusing:  # looked at on every turn of the event loop
                        await anyio.lowlevel.checkpoint()
                stream = await anyio.connect_tcp("127.0.0.1", proxy.port)
                await stream.aclose()


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(30):
        while not condition():
            await anyio.sleep(0.005)


async def test_latency_is_added() -> None:
    async with (
        serve_upstream() as upstream,
        FaultProxy(f"http://127.0.0.1:{upstream.port}", ProxyFaults(latency=0.1)) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        start = anyio.current_time()
        for _ in range(3):
            await client.get("/")
        assert anyio.current_time() - start >= 0.3


async def test_bounded() -> None:
    async with serve_upstream() as upstream:
        with pytest.raises(ValueError, match="loopback"):
            FaultProxy("http://example.org:80")
        with pytest.raises(ValueError, match="add up"):
            ProxyFaults(reset=0.6, stall=0.6)
        async with FaultProxy(
            f"http://127.0.0.1:{upstream.port}", max_connections=1, max_duration=0.5
        ) as proxy:
            async with (
                httpx.AsyncClient(base_url=proxy.url) as first,
                httpx.AsyncClient(base_url=proxy.url) as second,
            ):
                assert (await first.get("/")).status_code == 200
                with pytest.raises(httpx.TransportError):
                    await second.get("/")  # a second connection while the first is open
                await anyio.sleep(0.7)
                with pytest.raises(httpx.TransportError):
                    await first.get("/")  # past max_duration: the proxy is gone
            assert "FaultProxy" in repr(proxy)
