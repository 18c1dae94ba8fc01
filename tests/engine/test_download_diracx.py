"""The downloader against a real DiracX server (moto as its S3 store): real presigned URLs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from _archives import make_archive

from aiodirac import SandboxNotAvailableError
from aiodirac._engine.download._downloader import DownloadConfig, Downloader
from diracx_server import current_server

pytestmark = pytest.mark.diracx


@pytest.fixture(scope="session")
def dx(request: pytest.FixtureRequest) -> Any:
    """The session's DiracX server (tests/diracx_server.py), registered on first use."""
    manager = request.config.pluginmanager
    if not manager.has_plugin("diracx_server"):
        manager.import_plugin("diracx_server")
    return request.getfixturevalue("diracx_server")


@pytest.fixture
def api(dx: Any) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=dx.url,
        headers={"Authorization": f"Bearer {dx.token()}"},
        timeout=60,
        verify=dx.ssl,
    ) as client:
        yield client


def _submit(api: httpx.Client, n: int) -> list[int]:
    jdl = 'Executable = "/bin/echo"; JobName = "dl-test"; OutputSandbox = {"std.out"};'
    r = api.post("/api/jobs/jdl", json=[jdl] * n)
    r.raise_for_status()
    return [int(j["JobID"]) for j in r.json()]


def _move(api: httpx.Client, ids: list[int], *statuses: str) -> None:
    t = datetime.now(UTC)
    body = {
        str(j): {
            (t + timedelta(milliseconds=i + 1)).isoformat(): {"Status": s, "Source": "test"}
            for i, s in enumerate(statuses)
        }
        for j in ids
    }
    api.patch("/api/jobs/status", json=body).raise_for_status()


def _attach(api: httpx.Client, job_id: int, blob: bytes) -> None:
    info = {
        "checksum_algorithm": "sha256",
        "checksum": hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
        "format": "tar.bz2",
    }
    answer = api.post("/api/jobs/sandbox", json=info).raise_for_status().json()
    if answer["url"]:
        httpx.post(  # a presigned URL: no DiracX token
            answer["url"],
            data=answer["fields"],
            files={"file": ("file", blob)},
            timeout=60,
            verify=current_server().ssl,
        ).raise_for_status()
    api.patch(f"/api/jobs/{job_id}/sandbox/output", json=answer["pfn"]).raise_for_status()


async def test_real_output_sandboxes_into_job_folders(
    dx: Any, api: httpx.Client, tmp_path: Path
) -> None:
    done, running = _submit(api, 2)
    _move(api, [done, running], "Checking", "Waiting", "Matched", "Running")
    files = {"std.out": f"job {done} says hello\n".encode(), "Script1_echo.log": b"log\n"}
    blob = make_archive(files, "tar.bz2")
    _attach(api, done, blob)
    _move(api, [done], "Done")
    credentials = dx.write_credentials(tmp_path / "credentials.json")
    async with (
        dx.backend(credentials) as backend,
        Downloader(backend, DownloadConfig(max_concurrency=4, verify=dx.verify)) as dl,
    ):
        ok, pending = await dl.download([done, running], tmp_path / "out")
        [kept] = await dl.download([done], tmp_path / "kept", unpack=False)
    assert ok.ok, ok.error
    assert ok.path == tmp_path / "out" / str(done)
    assert {f.name: f.size for f in ok.files} == {n: len(d) for n, d in files.items()}
    for name, data in files.items():
        assert (tmp_path / "out" / str(done) / name).read_bytes() == data
    # The checksum came from DiracX's content-addressed PFN and was checked.
    assert ok.sha256 == hashlib.sha256(blob).hexdigest()
    assert not pending.ok
    assert isinstance(pending.exception, SandboxNotAvailableError)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [str(done)]
    assert kept.path is not None
    assert kept.path.read_bytes() == blob
