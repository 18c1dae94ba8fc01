"""Turn ``aiodirac submit`` arguments into jobs: a JDL file, a Python file, or a command.

- ``job.jdl``: DIRAC's JDL, parsed by the library's own parser.
- ``job.py``: a Python file that defines a ``Job`` in a variable named ``job`` or ``j`` (or a list
  of them in ``jobs``); it is run as a script would be.
- anything else: a command, ``/bin/echo hello %(n)s``, with ``--param n=1..10`` sequences.

Usage: ``jobs = build_jobs(["/bin/echo", "hi"], JobOptions(params=("n=1..3",)))``
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import UsageProblem

if TYPE_CHECKING:
    from aiodirac._job._job import Job

__all__ = ["JobOptions", "build_jobs", "parse_param"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SPAN = re.compile(r"^(-?\d+)\.\.(-?\d+)$")
_PLACEHOLDER = re.compile(r"%\(\w+\)s|%n")
#: A sequence longer than this is a typo, not a campaign (the submitter streams real ones).
MAX_SEQUENCE = 10_000_000


@dataclass(frozen=True, slots=True)
class JobOptions:
    """The job-shaping options of ``submit`` and ``campaign run``.

    Usage: ``JobOptions(name="scan-%n", params=("n=1..100",))``
    """

    name: str | None = None
    cpu_time: int | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    params: tuple[str, ...] = ()


def parse_param(text: str) -> tuple[str, list[int] | list[str]]:
    """One ``--param`` value: ``name=a,b,c`` or ``name=1..1000`` (inclusive).

    Comma lists of plain integers become integers; anything else stays text.

    Raises:
        UsageProblem: not of the form ``name=values``.

    Usage: ``parse_param("n=1..3")`` -> ``("n", [1, 2, 3])``
    """
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.match(name):
        raise UsageProblem(f"--param {text!r}: expected name=a,b,c or name=1..100")
    span = _SPAN.match(values.strip())
    if span:
        first, last = int(span[1]), int(span[2])
        if last < first:
            raise UsageProblem(f"--param {text!r}: the range {first}..{last} is empty")
        if last - first >= MAX_SEQUENCE:
            raise UsageProblem(f"--param {text!r}: more than {MAX_SEQUENCE:,} values")
        return name, list(range(first, last + 1))
    items = [item.strip() for item in values.split(",")]
    if not values.strip() or any(not item for item in items):
        raise UsageProblem(f"--param {text!r}: empty value in the list")
    if all(re.fullmatch(r"-?(0|[1-9]\d*)", item) for item in items):
        return name, [int(item) for item in items]
    return name, items


def _quote(arg: str) -> str:
    # Placeholders are substituted before the worker's shell sees the line: keep them bare.
    bare = _PLACEHOLDER.sub("x", arg)
    if bare and shlex.quote(bare) == bare:
        return arg
    if bare != arg:
        # Parametric arguments travel inside -p arguments='...': they cannot carry quotes.
        raise UsageProblem(
            f"the argument {arg!r} holds a parameter and a space or shell character: with "
            "--param, give each word as its own argument (the worker node splits them anyway)"
        )
    return shlex.quote(arg)


def _load_jdl(path: Path) -> list[Job]:
    from ._jdlfile import job_from_jdl

    return [job_from_jdl(_read(path), str(path))]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"cannot read {path}: {exc}") from exc


def _load_python(path: Path) -> list[Job]:
    import runpy

    from aiodirac import DiracError, Job

    try:
        namespace = runpy.run_path(str(path), run_name="__aiodirac_job__")
    except SystemExit as exc:
        raise UsageProblem(f"{path} exited ({exc.code}) instead of defining a job") from exc
    except DiracError:
        raise
    except Exception as exc:
        # The user's own code failed: say where, keep the traceback for --debug.
        raise UsageProblem(f"{path} failed: {type(exc).__name__}: {exc}") from exc
    found = next((namespace[key] for key in ("job", "j", "jobs") if key in namespace), None)
    if isinstance(found, Job):
        return [found]
    if isinstance(found, list | tuple) and found and all(isinstance(x, Job) for x in found):
        return list(found)
    raise UsageProblem(
        f"{path} must define a Job in a variable named 'job' or 'j' (or a list named 'jobs')"
    )


def _from_command(command: Sequence[str]) -> list[Job]:
    from aiodirac import Job

    job = Job()
    executable, *arguments = command
    job.setExecutable(executable, arguments=" ".join(_quote(a) for a in arguments))
    return [job]


def build_jobs(spec: Sequence[str], options: JobOptions) -> list[Job]:
    """The jobs ``spec`` describes, with the options applied to each.

    Raises:
        UsageProblem: nothing to run, an unreadable file, a bad ``--param``.
        JobDescriptionError: a value the job cannot carry (from the Job's setters).

    Usage: ``build_jobs(["job.jdl"], JobOptions())``
    """
    if not spec:
        raise UsageProblem("nothing to submit: give a JDL file, a Python file, or a command")
    first = Path(spec[0])
    if len(spec) == 1 and first.suffix.lower() == ".jdl":
        if not first.is_file():
            raise UsageProblem(f"no such JDL file: {first}")
        jobs = _load_jdl(first)
    elif len(spec) == 1 and first.suffix == ".py":
        if not first.is_file():
            raise UsageProblem(f"no such Python file: {first}")
        jobs = _load_python(first)
    else:
        jobs = _from_command(spec)
    sequences = [parse_param(p) for p in options.params]
    names = [name for name, _ in sequences]
    if len(set(names)) != len(names):
        raise UsageProblem("each --param name may be given once")
    if len({len(values) for _, values in sequences}) > 1:
        counts = ", ".join(f"--param {name} has {len(values)}" for name, values in sequences)
        raise UsageProblem(
            f"{counts} values: several --param are zipped (one job per position), so each "
            "needs the same number of values"
        )
    for job in jobs:
        if options.name is not None:
            job.setName(options.name)
        if options.cpu_time is not None:
            job.setCPUTime(options.cpu_time)
        if options.inputs:
            job.setInputSandbox(list(options.inputs))
        if options.outputs:
            job.setOutputSandbox(list(options.outputs))
        for name, values in sequences:
            job.setParameterSequence(name, values)
    return jobs
