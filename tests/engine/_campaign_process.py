"""One campaign in its own process, as a user runs it: ``AsyncDirac`` with a journal.

    python _campaign_process.py URL JOURNAL NAME N [TIMEOUT]

Submits N jobs ``<NAME>-<n>`` (one parametric Job) to the DiracX at URL (a fault proxy in front
of the server, as a rule), with the credentials of ``DIRACX_CREDENTIALS_PATH`` and the CA of
``DIRACX_CA_PATH``, and the campaign journal JOURNAL. Prints ``ready`` once connected, then one
JSON line: the IDs in job order and the submission report. Exits 1 with the error on stderr.
Used by the multi-worker tests (test_diracx_prod.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import anyio

from aiodirac import AsyncDirac, Job, Limits
from aiodirac._engine._retry import RetryPolicy
from aiodirac._engine.submit._model import SubmitConfig
from aiodirac.backends.diracx import DiracXBackend


async def main(url: str, journal: str, name: str, n: int, timeout: float) -> None:
    job = Job()
    job.setExecutable("/bin/echo", arguments="value %(n)s")
    job.setName(f"{name}-%n")
    job.setParameterSequence("n", [str(i) for i in range(n)])
    config = SubmitConfig(campaign=name)
    limits = Limits(retry=RetryPolicy(initial=0.2, max_backoff=2))
    backend = DiracXBackend(
        url,
        credentials_path=os.environ["DIRACX_CREDENTIALS_PATH"],
        verify=os.environ.get("DIRACX_CA_PATH") or True,
        timeout=timeout,
    )
    async with AsyncDirac(backend, journal=journal, submit_config=config, limits=limits) as dirac:
        print("ready", flush=True)
        async with dirac.submit_stream(job) as submitted:
            ids = {item.index: item.job_id async for item in submitted}
            report = submitted.report
    print(
        json.dumps({"ids": [ids[i] for i in sorted(ids)], "report": dataclasses.asdict(report)}),
        flush=True,
    )


if __name__ == "__main__":
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 10.0
    try:
        anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), timeout)
    except Exception as exc:  # noqa: BLE001 - the parent test reads it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
