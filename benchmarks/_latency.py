"""Network latency for the benchmarks: a TCP pipe on loopback that delays what the client sends.

Every byte from the client reaches the server ``LATENCY`` seconds after it was sent (order kept,
no throughput limit); answers come back at once. So each request/answer round trip takes
``LATENCY`` longer, and so does each round trip of a TLS handshake, as over a real network. It
works below TLS and HTTP (the client's HTTPS goes through unchanged, certificate checks included).

Run as its own process, so that its CPU is not the client's::

    python benchmarks/_latency.py 127.0.0.1:8443 0.1    # prints its port; stops when stdin closes

or from a benchmark: ``with latency_pipe(url, 0.1) as slow_url: ...``
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.abc


async def _delayed(
    source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream, latency: float
) -> None:
    send, receive = anyio.create_memory_object_stream[tuple[float, bytes]](10_000)

    async def deliver() -> None:
        async with receive:
            async for due, data in receive:
                wait = due - anyio.current_time()
                if wait > 0:
                    await anyio.sleep(wait)
                try:
                    await sink.send(data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return  # the server left

    async with anyio.create_task_group() as tg:
        tg.start_soon(deliver)
        async with send:
            while True:
                try:
                    data = await source.receive(1 << 20)
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    break
                await send.send((anyio.current_time() + latency, data))
    await sink.aclose()  # the client left: so does the server's side (ends _direct)


async def _direct(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
    try:
        while True:
            await sink.send(await source.receive(1 << 20))
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


async def _serve(host: str, port: int, latency: float) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)

    async def handle(client: anyio.abc.SocketStream) -> None:
        try:
            server = await anyio.connect_tcp(host, port)
        except OSError:
            await client.aclose()
            return
        async with client, server, anyio.create_task_group() as tg:
            tg.start_soon(_delayed, client, server, latency)
            await _direct(server, client)
            tg.cancel_scope.cancel()

    print(listener.extra(anyio.abc.SocketAttribute.local_port), flush=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        await anyio.to_thread.run_sync(sys.stdin.read)  # until the benchmark closes our stdin
        tg.cancel_scope.cancel()


@contextmanager
def latency_pipe(url: str, latency: float) -> Iterator[str]:
    """``url`` (http or https, loopback) seen through ``latency`` seconds of network."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proc = subprocess.Popen(
        [sys.executable, __file__, f"{host}:{port}", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        local = int(proc.stdout.readline())
        yield urlunsplit(parts._replace(netloc=f"{host}:{local}"))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    target, delay = sys.argv[1], float(sys.argv[2])
    target_host, _, target_port = target.rpartition(":")
    anyio.run(_serve, target_host, int(target_port), delay)
