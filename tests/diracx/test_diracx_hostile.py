"""Hostile names, arguments and sandbox entries against the real server: stored exactly, or refused
by the client before any request (the JDL layer owns the rules; this checks them on DiracX)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import httpx
import pytest
from _dxjobs import make_chunk

from aiodirac import JobDescriptionError
from aiodirac._job._jdl import parse_jdl
from aiodirac.backends.diracx import DiracXBackend
from aiodirac.testing._pilot import _read_jdls
from diracx_server import DiracXServer

pytestmark = pytest.mark.diracx

HOSTILE = [
    "[abc]",  # hangs a DiracX 0.7.0 worker if it ever reaches the server
    "x];Executable=rm;[",
    "semi;colon",
    "comma, inside",
    'quote"inside',
    "new\nline",
    "tab\there",
    "eq=sign",
    "{braces}",
    "apos'trophe",
    "]]>",
    "%(x)s",
    "%s",
    "  spaces  ",
    "unicodé ☃",
    "back\\slash",
    "dollar $HOME `id`",
    "\x00nul",
    "\u2028sep",
]


class _Requests:
    def __init__(self, backend: DiracXBackend) -> None:
        self.count = 0
        backend.http_client.event_hooks["request"].append(self._hook)

    async def _hook(self, request: httpx.Request) -> None:
        self.count += 1


async def _search_names(backend: DiracXBackend, ids: list[int]) -> dict[int, str]:
    rows = await backend._search(ids, ["JobID", "JobName"], action="read names")
    return {int(r["JobID"]): str(r["JobName"]) for r in rows}


@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_job_name(backend: DiracXBackend, value: str) -> None:
    requests = _Requests(backend)
    try:
        chunk = make_chunk([0, 1], name=value)
        ids = await backend.submit(chunk)
    except JobDescriptionError:
        assert requests.count == 0, "a refused value reached the network"
        return
    names = await _search_names(backend, ids)
    assert [names[i] for i in ids] == [job.name for job in chunk.jobs]


@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_arguments(
    backend: DiracXBackend, diracx_server: DiracXServer, value: str
) -> None:
    requests = _Requests(backend)
    try:
        chunk = make_chunk([0], name="hostile-args", extra={"Arguments": value})
        ids = await backend.submit(chunk)
    except JobDescriptionError:
        assert requests.count == 0
        return
    stored = parse_jdl(_read_jdls(diracx_server.jobdb, ids)[ids[0]])
    assert stored["Arguments"] == value


async def test_hostile_sandbox_entries(
    backend: DiracXBackend, diracx_server: DiracXServer, tmp_path: Path
) -> None:
    names = ["a b.txt", "semi;colon", "[abc]", 'q"uote', "comma,x", "ünï", "-dash"]
    for name in names:
        (tmp_path / name).write_text(name)
    ids = await backend.submit(
        make_chunk([0], name="hostile-sb", local_sandbox=[str(tmp_path / n) for n in names])
    )
    stored = parse_jdl(_read_jdls(diracx_server.jobdb, ids)[ids[0]])
    entries = stored["InputSandbox"]
    entries = (entries,) if isinstance(entries, str) else entries
    assert len(entries) == 1
    assert str(entries[0]).startswith("SB:SandboxSE|/S3/")
    # the archive holds every file under its exact name
    response = await backend._api(
        "GET", "/api/jobs/sandbox", action="t", params={"pfn": str(entries[0])}
    )
    data = (await backend.http_client.get(response.json()["url"])).content
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:bz2") as tar:
        members = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert {n: members[n] for n in names} == {n: n for n in names}
    assert "jobDescription.xml" in members

    requests = _Requests(backend)
    for bad in ("LFN:/vo/x,y", "LFN:/vo/a b", 'LFN:/vo/"q', "LFN:/vo/[abc]"):
        with pytest.raises(JobDescriptionError):
            await backend.submit(
                make_chunk(
                    [0], name="hostile-lfn", extra={"InputSandbox": (bad, "jobDescription.xml")}
                )
            )
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a b.txt").write_text("x")
    duplicate = make_chunk(
        [0], name="dup", local_sandbox=[str(tmp_path / "a b.txt"), str(tmp_path / "d" / "a b.txt")]
    )
    with pytest.raises(JobDescriptionError, match="same name"):
        await backend.submit(duplicate)
    assert requests.count == 0, "refused entries reached the network"
