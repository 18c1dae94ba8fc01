"""A campaign in a process of its own, which the kill tests SIGKILL at a chosen moment.

    python campaign_child.py '<json settings>'

Settings: ``backend`` ("local", or "diracx" with ``url``, ``credentials`` and ``verify``),
``journal``, ``dest``, ``report`` (an HTML file written once the campaign ended), ``jobs``,
``script`` and ``marks`` (the flaky payload and its marker folder), ``method``, and ``stop``:
the moment to stop at, ``"<call>:<before|after>:<n>"`` (before the n-th call of a backend
method, or after its n-th successful one; resubmissions counted apart as ``resubmit``),
``"downloaded:<n>"`` (after the n-th download) or ``"report"`` (while writing the report). At
that moment the process prints ``AT <moment>`` and blocks reading its stdin: frozen exactly
there until the test kills it. Every download made is appended to ``<dest>.fetched`` the
moment the downloader reports it (after it is in place and journaled).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

from aiodirac import AsyncDirac, DownloadResult, FailurePolicy, Job, TrackConfig
from aiodirac._campaign._records import STRIDE
from aiodirac._campaign._runner import Runner
from aiodirac.backends.diracx import DiracXBackend
from aiodirac.backends.local import LocalBackend

SETTINGS: dict[str, Any] = json.loads(sys.argv[1])
STOP: str = SETTINGS.get("stop") or ""
calls: Counter[str] = Counter()


def freeze(moment: str) -> None:
    """Tell the test where we are, then block the whole process until it kills us."""
    sys.stdout.write(f"AT {moment}\n")
    sys.stdout.flush()
    sys.stdin.readline()
    os._exit(3)  # the test closed stdin instead of killing: leave no doubt


def at(name: str, when: str) -> None:
    """Count this point (calls that raised never reach "after"); freeze if it is the one."""
    key = f"{name}:{when}"
    calls[key] += 1
    if f"{key}:{calls[key]}" == STOP:
        freeze(STOP)


class Hooks:
    """Backend methods that stop at the chosen moment (mixed into a real backend)."""

    async def submit(self, chunk: Any) -> list[int]:
        name = "resubmit" if chunk.indices[0] >= STRIDE else "submit"
        at(name, "before")
        ids: list[int] = await super().submit(chunk)  # type: ignore[misc]
        at(name, "after")
        return ids

    async def confirm(self, job_ids: Any) -> None:
        at("confirm", "before")
        await super().confirm(job_ids)  # type: ignore[misc]
        at("confirm", "after")

    async def status(self, job_ids: Any) -> Any:
        at("status", "before")
        return await super().status(job_ids)  # type: ignore[misc]

    async def reschedule(self, job_ids: Any) -> Any:
        at("reschedule", "before")
        result = await super().reschedule(job_ids)  # type: ignore[misc]
        at("reschedule", "after")
        return result

    async def output_sandbox(self, job_id: int) -> Any:
        at("output_sandbox", "before")
        return await super().output_sandbox(job_id)  # type: ignore[misc]


def make_backend() -> Any:
    if SETTINGS["backend"] == "local":
        hooked = type("HookedLocal", (Hooks, LocalBackend), {})
        return hooked(os.environ["AIODIRAC_HOME"])
    hooked = type("HookedDiracX", (Hooks, DiracXBackend), {})
    return hooked(
        SETTINGS["url"], credentials_path=SETTINGS["credentials"], verify=SETTINGS["verify"]
    )


def make_job() -> Job:
    job = Job()
    job.setName("kill-%n")
    job.setExecutable(SETTINGS["script"], arguments=f"{SETTINGS['marks']} %(n)s")
    job.setParameterSequence("n", [str(n) for n in range(SETTINGS["jobs"])])
    return job


FETCHED = Path(SETTINGS["dest"] + ".fetched")
_on_download = Runner._on_download


def on_download(self: Runner, result: DownloadResult) -> None:
    """Log each download made (not skipped) the moment the downloader reports it."""
    if result.ok and not result.skipped:
        with FETCHED.open("a") as log:
            log.write(f"{result.job_id}\n")
        calls["downloaded"] += 1
    _on_download(self, result)
    if f"downloaded:{calls['downloaded']}" == STOP:
        freeze(STOP)


Runner._on_download = on_download  # type: ignore[method-assign]


async def main() -> int:
    policy = FailurePolicy(
        max_attempts=3, delay=0, max_failed_fraction=1.0, method=SETTINGS["method"]
    )
    track = TrackConfig(min_interval=0.2, max_interval=1.0)
    verify = SETTINGS.get("verify", True)  # the CA of the DiracX server and its S3 URLs
    async with AsyncDirac(make_backend(), track_config=track, verify=verify) as dirac:
        campaign = dirac.campaign(
            make_job(),
            journal=SETTINGS["journal"],
            dest=SETTINGS["dest"],
            policy=policy,
        )
        progress = await campaign.run()
    from aiodirac import read_report_data, write_report

    data = await anyio.to_thread.run_sync(read_report_data, SETTINGS["journal"])
    if STOP == "report":
        freeze(STOP)
    write_report(data, SETTINGS["report"])
    print(f"END {progress.outcome}", flush=True)
    return 0 if progress.complete else 1


if __name__ == "__main__":
    raise SystemExit(anyio.run(main))
