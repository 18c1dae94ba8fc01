"""DIRAC's local mode (``Dirac().submitJob(job, mode="local")``) without its defects.

DIRAC runs only the first job of a parametric job, leaves ``std.out``/``std.err`` empty and never
copies the output sandbox back (``reference/dirac/localmode.md``). Here every concrete job runs,
in the foreground, each in its own ``Local_<random>_JobDir`` folder of the current folder (as
DIRAC names it), with its input sandbox staged, its steps run by :func:`run_job`, real
``std.out``/``std.err``, and its outputs left in that folder. Nothing is printed here: the
caller shows what the jobs printed (``Dirac.submitJob(mode="local")`` echoes it, as DIRAC's local
mode shows the payload's output).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiodirac._job._job import Job
from aiodirac._job._status import JobStatus

from ._executor import JobOutcome, run_job
from ._paths import local_site_name
from ._sandbox import store_input_sandbox

__all__ = ["ForegroundOutcome", "run_in_foreground"]


@dataclass(frozen=True, slots=True)
class ForegroundOutcome:
    """One job run in the foreground.

    Attributes:
        index: the job's parametric index (``%n``; 0 for a plain job).
        workdir: its ``Local_<random>_JobDir`` folder, where its outputs stay.
        exit_status: what ``dirac-jobexec`` would exit with: the first failing step's status,
            1 when the job failed otherwise, 0 on success.
        outcome: the full outcome (status, minor status, ApplicationStatus, per-step results).

    Usage: ``[o.exit_status for o in run_in_foreground(job, Path.cwd())]``
    """

    index: int
    workdir: Path
    exit_status: int
    outcome: JobOutcome


def _exit_status(outcome: JobOutcome) -> int:
    for code in outcome.exit_codes:
        if code != 0:
            return code
    return 0 if outcome.status is JobStatus.DONE else 1


def run_in_foreground(job: Job, cwd: Path) -> list[ForegroundOutcome]:
    """Run every concrete job of ``job`` here and now, one after the other.

    Raises:
        InvalidRequestError: a grid (``LFN:``) input or a missing input file (nothing runs).
        JobDescriptionError: the job cannot be expanded.

    Usage: ``outcomes = run_in_foreground(job, Path.cwd())``
    """
    outcomes: list[ForegroundOutcome] = []
    site = local_site_name()
    with tempfile.TemporaryDirectory(prefix=".DIRAC_", dir=cwd) as scratch:
        for number, chunk in enumerate(job.chunks(max(1, len(job)))):
            inputs = Path(scratch) / f"isb{number}"
            store_input_sandbox(chunk, inputs, cwd=cwd)
            for concrete in chunk.jobs:
                workdir = Path(tempfile.mkdtemp(suffix="_JobDir", prefix="Local_", dir=cwd))
                outcome = run_job(concrete, workdir, inputs, site=site)
                outcomes.append(
                    ForegroundOutcome(concrete.index, workdir, _exit_status(outcome), outcome)
                )
    return outcomes
