"""The official DiracX client submitting JDLs as its users write it (20-job requests, one after
another), for the submission benchmarks. Runs in the DiracX venv (it imports diracx.client):

    <diracx venv>/bin/python benchmarks/_official_submit.py JDLS.json PLACEHOLDER FILE...

``create_sandbox`` uploads the FILEs as the input sandbox; each JDL's PLACEHOLDER is replaced by
its PFN. Prints one JSON line: ``{"wall": s, "cpu": s, "jobs": n}`` (client process only).
"""

import asyncio
import json
import sys
import time
from pathlib import Path

from diracx.api.jobs import create_sandbox
from diracx.client.aio import AsyncDiracClient


async def main() -> None:
    jdls = json.loads(Path(sys.argv[1]).read_text())
    placeholder = sys.argv[2]
    files = [Path(f) for f in sys.argv[3:]]
    async with AsyncDiracClient() as client:
        # connection + token: not part of the campaign
        await client.jobs.search(search=[{"parameter": "JobID", "operator": "eq", "value": 1}])
        cpu0, wall0 = time.process_time(), time.perf_counter()
        pfn = await create_sandbox(files, client=client)
        ids = []
        for start in range(0, len(jdls), 20):
            batch = [j.replace(placeholder, pfn) for j in jdls[start : start + 20]]
            inserted = await client.jobs.submit_jdl_jobs(batch)
            ids += [job.job_id for job in inserted]
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(json.dumps({"wall": wall, "cpu": cpu, "jobs": len(ids)}))


asyncio.run(main())
