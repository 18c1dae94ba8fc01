"""A parametric job whose n=2 fails the first time it runs: one retry in every campaign."""

from __future__ import annotations

from pathlib import Path

from aiodirac import Job


def flaky_job(folder: Path, count: int, name: str) -> Job:
    """``count`` real jobs (``n`` = 1..count) running a script in ``folder``; n=2 fails once."""
    marks = folder / "marks"
    marks.mkdir()
    script = folder / "flaky.sh"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$2" != 2 ] || [ -e "$1/$2" ]; then echo "n=$2"; exit 0; fi\n'
        'touch "$1/$2"; exit 1\n'
    )
    script.chmod(0o755)
    job = Job()
    job.setName(name)
    job.setExecutable(str(script), arguments=f"{marks} %(n)s")
    job.setParameterSequence("n", [str(n) for n in range(1, count + 1)])
    return job
