"""The event-streaming web service example, run with uvicorn, driven over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from example_support import EXAMPLES, stop_local_agent

from child_processes import child

pytest.importorskip("starlette", reason="the service example needs the 'examples' extra")
pytest.importorskip("uvicorn", reason="the service example needs the 'examples' extra")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, str(EXAMPLES / "service.py"), "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    try:
        with child(command, cwd=tmp_path, env=dict(os.environ), **output) as process:
            deadline = time.monotonic() + 30
            while True:  # until it answers (polled: nothing tells when it listens)
                try:
                    httpx.get(f"{url}/jobs/1", timeout=1)
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        said = process.stdout.read() if process.stdout else ""
                        pytest.fail(f"the service did not start: {said}")
                    time.sleep(0.1)
            yield url
            process.terminate()
            process.communicate(timeout=30)
    finally:
        stop_local_agent()


def _sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            yield name, json.loads(line[len("data: ") :])


def test_submit_then_stream_events_until_final(service: str) -> None:
    with httpx.Client(base_url=service, timeout=60) as client:
        created = client.post("/jobs", json={"arguments": "hello %(n)s", "values": [1, 2, 3]})
        assert created.status_code == 201, created.text
        ids = created.json()["job_ids"]
        assert len(ids) == 3

        finals: dict[int, str] = {}
        seen: list[str] = []
        span = f"{min(ids)}-{max(ids)}"
        with client.stream("GET", f"/jobs/{span}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for name, data in _sse(response.iter_lines()):
                seen.append(name)
                if name == "job" and data["final"]:
                    finals[data["job_id"]] = data["status"]
                if name == "end":
                    assert data["counts"] == {"Done": 3}
                    break
        assert finals == dict.fromkeys(ids, "Done")
        assert seen[-1] == "end"

        states = client.get(f"/jobs/{span}").json()["jobs"]
        assert {s["job_id"]: s["status"] for s in states} == dict.fromkeys(ids, "Done")


def test_bad_requests_are_400(service: str) -> None:
    with httpx.Client(base_url=service, timeout=30) as client:
        assert client.get("/jobs/abc").status_code == 400
        assert client.get("/jobs/5-1/events").status_code == 400
        refused = client.post("/jobs", json={"arguments": "x", "values": []})
        assert refused.status_code == 400
        assert "empty" in refused.json()["error"]


def test_a_campaign_streams_its_events_to_every_client(service: str, tmp_path: Path) -> None:
    # a real process that fails the first time it runs for n=2
    script = tmp_path / "flaky.sh"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$2" = 2 ] || { echo "n=$2"; exit 0; }\n'
        '[ -e "$1/2" ] && { echo "n=2 again"; exit 0; }\n'
        'touch "$1/2"; exit 1\n'
    )
    script.chmod(0o755)
    body = {
        "name": "flaky",
        "executable": str(script),
        "arguments": f"{tmp_path} %(n)s",
        "values": [1, 2, 3],
        "retry_delay": 0,
        "max_failed": 1,
    }
    with httpx.Client(base_url=service, timeout=120) as client:
        started = client.post("/campaigns", json=body)
        assert started.status_code == 202, started.text
        assert client.post("/campaigns", json=body).status_code == 409

        def events() -> list[tuple[str, dict[str, Any]]]:
            with client.stream("GET", "/campaigns/flaky/events") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                return list(_sse(response.iter_lines()))

        first = events()
        names = [name for name, _ in first]
        assert names[-1] == "end"
        end = first[-1][1]
        assert end["outcome"] == "complete"
        assert end["counts"] == {"Done": 3}
        assert end["retries"] == 1
        assert end["downloaded"] == 3
        (retry,) = [data for name, data in first if name == "retry"]
        assert retry["index"] == 1
        assert retry["attempt"] == 2
        assert retry["method"] == "reschedule"
        assert names.count("download") == 3
        # a client that comes later sees the same stream from its start
        assert events() == first
        assert client.get("/campaigns/flaky").json()["outcome"] == "complete"
        assert client.get("/campaigns/nope").status_code == 404
    outputs = sorted((tmp_path / "campaigns" / "flaky").glob("*/std.out"))
    assert sorted(p.read_text().strip() for p in outputs) == ["n=1", "n=2 again", "n=3"]


def test_a_bad_campaign_is_400(service: str) -> None:
    with httpx.Client(base_url=service, timeout=30) as client:
        assert client.post("/campaigns", json={"name": "../x"}).status_code == 400
        bad = client.post("/campaigns", json={"name": "ok", "attempts": 0})
        assert bad.status_code == 400
        assert "max_attempts" in bad.json()["error"]
