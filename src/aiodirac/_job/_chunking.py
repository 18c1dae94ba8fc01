"""Turning what users submit (a Job, Jobs, an async stream of Jobs) into submission chunks.

Lazily: a generator of a million jobs is read a chunk at a time, never held in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
)
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.abc

from ._parametric import chunk_jobs
from ._spec import SubmitChunk

__all__ = ["Chunkable", "Submittable", "chunk_digest"]


@runtime_checkable
class Chunkable(Protocol):
    """A job description that splits itself into chunks (aiodirac's ``Job``)."""

    def chunks(self, max_jobs: int, start: int = 0) -> Iterable[SubmitChunk]: ...

    def __len__(self) -> int: ...


#: What :meth:`Submitter.submit` accepts.
Submittable = SubmitChunk | Chunkable | Iterable[Any] | AsyncIterable[Any]


def chunk_digest(chunk: SubmitChunk) -> str:
    """SHA-256 of a chunk's JDL attributes, workflow and job indices (its identity on resume).

    Usage: ``chunk_digest(chunk)``
    """
    payload = {
        "attributes": sorted(
            (k, list(v) if isinstance(v, tuple) else v) for k, v in chunk.attributes.items()
        ),
        "workflow": chunk.workflow_xml,
        "indices": list(chunk.indices),
        "sandbox": list(chunk.local_sandbox),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _with_group(chunk: SubmitChunk, group: str) -> SubmitChunk:
    """The chunk with ``JobGroup = group`` on the JDL and on every concrete job."""
    attributes = {**chunk.attributes, "JobGroup": group}
    jobs = tuple(
        replace(job, attributes={**job.attributes, "JobGroup": group}) for job in chunk.jobs
    )
    return replace(chunk, attributes=attributes, jobs=jobs)


async def _chunks_of(jobs: Submittable, max_jobs: int) -> AsyncIterator[SubmitChunk]:
    """The thin adapter from what users pass to the chunks the engine sends.

    A ``SubmitChunk`` is sent as is; a ``Job`` (parametric or not) splits itself with
    ``job.chunks(max_jobs)``; many jobs, from an iterable or an async iterable, are read lazily
    and packed by the job layer's ``chunk_jobs`` (several plain jobs per request, global
    indices running across all of them). An iterable of ``SubmitChunk`` s is sent as it comes.
    """
    if isinstance(jobs, SubmitChunk):
        yield jobs
        return
    if isinstance(jobs, Chunkable):
        for chunk in jobs.chunks(max_jobs):
            yield chunk
            await anyio.lowlevel.checkpoint()
        return
    if isinstance(jobs, AsyncIterable):
        async for chunk in _from_async(jobs, max_jobs):
            yield chunk
        return
    iterator = iter(jobs)
    first = next(iterator, None)
    if first is None:
        return
    everything = itertools.chain([first], iterator)
    chunks: Iterable[SubmitChunk] = (
        _only_chunks(everything)
        if isinstance(first, SubmitChunk)
        else chunk_jobs(everything, max_jobs)
    )
    for n, chunk in enumerate(chunks):
        yield chunk
        if n % 16 == 0:
            await anyio.lowlevel.checkpoint()


def _only_chunks(items: Iterable[Any]) -> Iterator[SubmitChunk]:
    for item in items:
        if not isinstance(item, SubmitChunk):
            raise TypeError("cannot mix SubmitChunks and Jobs in one submission")
        yield item


async def _from_async(jobs: AsyncIterable[Any], max_jobs: int) -> AsyncIterator[SubmitChunk]:
    """``chunk_jobs`` driven from an async iterable, holding only a few jobs at a time.

    ``chunk_jobs`` is a lazy generator that reads at most ``max_jobs + 1`` jobs before it gives
    a chunk (a group of plain jobs ends at the first job that does not fit). So before each
    step, the buffer is filled to ``max_jobs + 2`` jobs from the async source (or to its end).
    """
    source = aiter(jobs)
    buffer: deque[Any] = deque()
    exhausted = False

    def feed() -> Iterator[Any]:
        while True:
            if buffer:
                yield buffer.popleft()
            elif exhausted:
                return
            else:  # pragma: no cover - chunk_jobs reads at most max_jobs + 1 ahead
                raise RuntimeError("the job packer read further ahead than aiodirac buffered")

    async def fill() -> None:
        nonlocal exhausted
        while not exhausted and len(buffer) < max_jobs + 2:
            try:
                buffer.append(await anext(source))
            except StopAsyncIteration:
                exhausted = True

    try:
        first = await anext(source)
    except StopAsyncIteration:
        return
    if isinstance(first, SubmitChunk):
        # Chunks built by hand: one at a time, nothing read ahead.
        yield first
        async for item in source:
            if not isinstance(item, SubmitChunk):
                raise TypeError("cannot mix SubmitChunks and Jobs in one submission")
            yield item
        return
    buffer.append(first)
    packer = chunk_jobs(feed(), max_jobs)
    while True:
        await fill()
        chunk = next(packer, None)
        if chunk is None:
            return
        yield chunk
