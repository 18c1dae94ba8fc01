"""A small campaign, run as its own process by the SIGKILL tests of test_submit_diracx.py.

    python _submit_campaign.py URL CREDENTIALS JOURNAL N

The CA of an HTTPS server comes from ``DIRACX_CA_PATH``. Submits N jobs ``kill-<n>`` (one parametric Job) to DiracX with the campaign journal JOURNAL,
printing ``ready`` once the journal is open and one line per confirmed job, then ``done``.
Rate limited on purpose, so that a kill lands in the middle of the work.
"""

from __future__ import annotations

import os
import sys

import anyio

from aiodirac._engine._gate import Limits, RequestGate
from aiodirac._engine._retry import RetryPolicy
from aiodirac._engine.submit._submitter import SubmitConfig, Submitter
from aiodirac._job._job import Job
from aiodirac._journal import Journal
from aiodirac.backends.diracx import DiracXBackend


async def main(url: str, credentials: str, journal_path: str, n: int) -> None:
    job = Job()
    job.setExecutable("/bin/echo", arguments="value %(n)s")
    job.setName("kill-%n")
    job.setParameterSequence("n", [str(i) for i in range(n)])
    config = SubmitConfig(campaign="killtest", confirm_batch=40)
    config_limits = Limits(
        max_in_flight=4, rate=4, burst=2, retry=RetryPolicy(initial=0.2, max_backoff=2)
    )
    async with (
        DiracXBackend(
            url,
            credentials_path=credentials,
            timeout=10,
            verify=os.environ.get("DIRACX_CA_PATH") or True,
        ) as backend,
        await Journal.open(journal_path) as journal,
    ):
        print("ready", flush=True)
        async with Submitter(
            backend, config, gate=RequestGate(config_limits), journal=journal
        ).stream(job) as submitted:
            async for item in submitted:
                print(item.index, item.job_id, flush=True)
        print("done", flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
