"""Parametric expansion and chunking: from a job template to concrete jobs and submit chunks.

DIRAC expands a parametric JDL on the server (``generateParametricJobs``): ``%n`` becomes the job's
index zero-padded to the width of the last index, every ``%(name)s`` becomes the job's value of
sequence ``name``, the ``Parameters*`` attributes are replaced by ``Parameter = "1"``,
``Parameter.<name> = "<value>"`` and ``ParameterNumber = <n>``. :func:`expand` does the same on the
client, from a :class:`JobTemplate`, without writing or parsing any text, so that 10,000 concrete
jobs take a fraction of a second.

A :class:`~aiodirac.SubmitChunk` is one parametric JDL of at most ``max_jobs`` jobs. To keep the
global ``%n`` of a slice, every ``%n`` of the template is written ``%(aiodiracIndex)s`` and the
chunk carries ``Parameters.aiodiracIndex = {"100", "101", ...}``; DiracX 0.7.0 expands it into
exactly the jobs of the slice. A chunk is parametric even for one job, because only parametric
submissions land unconfirmed in ``Submitting`` (the two-phase protocol needs that).

Global indices (``ConcreteJob.index``) run over the concatenation of the jobs given to
:func:`chunk_jobs`: a plain job takes one index, a parametric job one per concrete job. ``%n`` is
always that index, zero-padded to the width of the job's last index (for one parametric job on its
own this is exactly DIRAC's rule; a plain job's ``%n`` is its index, unpadded).

Usage::

    for chunk in chunk_jobs([job_a, job_b, job_c], max_jobs=20):
        ids = await backend.submit(chunk)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiodirac._exceptions import JobDescriptionError, ParametricError, UnsafeValueError

from ._jdl import check_item, check_value
from ._spec import ConcreteJob, JDLValue, Step, SubmitChunk

__all__ = [
    "INDEX_PARAMETER",
    "JobTemplate",
    "Templated",
    "check_parameter_value",
    "chunk_jobs",
    "expand",
    "placeholders",
]

#: The parameter sequence that carries the global index ``%n`` through a chunk.
INDEX_PARAMETER = "aiodiracIndex"
_VARY_PREFIX = "aiodiracVary"

_PLACEHOLDER = re.compile(r"%n|%\(([^()]*)\)s")
_VALUE_UNSAFE = re.compile(r"['%{}\]]")


def placeholders(text: str) -> set[str]:
    """The sequence names referenced by ``%(name)s`` in ``text`` (``%n`` is not included).

    Usage: ``placeholders("run %(seed)s of %n")`` -> ``{"seed"}``
    """
    return {m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1) is not None}


def check_parameter_value(name: str, value: str) -> None:
    """Check that a parameter-sequence value reaches every concrete job unchanged.

    A value travels as an item of ``Parameters.<name>`` (list-item rules: no whitespace, no
    ``"`` ``;`` ``[`` ``]`` ``,`` ``{`` ``}``, not empty) and is then pasted into other values, so
    it may not hold ``%`` (DIRAC substitutes placeholders in several passes, so a ``%`` could
    join what follows into a new one), braces or ``]`` (list syntax), nor a ``'`` (it may land
    inside ``-p arguments='...'``, which the worker node's shell reads).

    Raises:
        UnsafeValueError: naming the character and the sequence.

    Usage: ``check_parameter_value("seed", "11")``
    """
    attribute = f"Parameters.{name}"
    check_item(attribute, value)
    match = _VALUE_UNSAFE.search(value)
    if match is not None:
        character = match.group()
        raise UnsafeValueError(
            f"{attribute}: the value {value!r} holds {character!r} at position {match.start()}, "
            "which cannot reach the concrete jobs unchanged: DIRAC pastes parameter values into "
            "other values, reads braces as lists, and the worker node's shell reads quotes; "
            "remove it",
            attribute=attribute,
            value=value,
            character=character,
        )


class Templated(Protocol):
    """What :func:`chunk_jobs` needs of a job: its template (:class:`~aiodirac.Job` has it)."""

    def template(self) -> JobTemplate:
        """The job's attributes, steps, sandbox and parameter sequences, ready to expand."""
        ...


@dataclass(frozen=True, slots=True)
class JobTemplate:
    """Everything the job layer needs to expand and chunk one :class:`~aiodirac._job._job.Job`.

    Attributes:
        attributes: the JDL attributes without the ``Parameters*`` ones, sorted as DIRAC writes
            them, placeholders kept, ``InputSandbox`` as the user gave it.
        submit_sandbox: the ``InputSandbox`` to send: local entries as absolute paths, then
            remote ones, ``jobDescription.xml`` included (``None`` when there is no sandbox).
        local_sandbox: absolute paths of the local sandbox entries.
        sequences: parameter sequences, by name, as strings.
        n_jobs: number of concrete jobs (1 for a plain job).
        steps: the steps as written in the XML (parametric arguments blank).
        parametric_arguments: the ``-p arguments='...'`` template, or ``""``.
        workflow_xml: the ``jobDescription.xml`` text.

    Usage: ``expand(job.template())``
    """

    attributes: Mapping[str, JDLValue]
    submit_sandbox: tuple[str, ...] | None
    local_sandbox: tuple[str, ...]
    sequences: Mapping[str, tuple[str, ...]]
    n_jobs: int
    steps: tuple[Step, ...]
    parametric_arguments: str
    workflow_xml: str
    parametric: bool = field(default=False)


# ---------------------------------------------------------------------------------------------
# Compilation of a template into str.format strings: one C-level format call per value and job.


def _compile(text: str, slots: Mapping[str, int]) -> str | None:
    """A ``str.format`` string for ``text``, or None when it holds no placeholder."""
    if "%" not in text or _PLACEHOLDER.search(text) is None:
        return None
    parts: list[str] = []
    last = 0
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1)
        key = "%n" if name is None else name
        if match.start() > 0 and text[match.start() - 1] == "%":
            raise ParametricError(
                f"{text!r}: a '%' right before {match.group()} would join the substituted "
                "value into another placeholder for DIRAC's expansion; remove that '%'",
                attribute=name or "%n",
                value=text,
            )
        if key not in slots:
            raise ParametricError(
                f"{text!r} refers to %({name})s, but the job has no parameter sequence {name!r} "
                f"(sequences: {sorted(k for k in slots if k != '%n') or 'none'})",
                attribute=name or "",
                value=text,
            ).with_hints(
                python="add it with setParameterSequence or remove the placeholder",
                cli=f"add it with --param {name}=VALUES or remove the placeholder",
            )
        parts.append(text[last : match.start()].replace("{", "{{").replace("}", "}}"))
        parts.append("{" + str(slots[key]) + "}")
        last = match.end()
    parts.append(text[last:].replace("{", "{{").replace("}", "}}"))
    return "".join(parts)


_CONST, _TEXT, _LIST = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Compiled:
    plan: tuple[tuple[str, int, object], ...]
    slots: Mapping[str, int]


def _compile_attributes(attrs: Mapping[str, JDLValue], slots: Mapping[str, int]) -> _Compiled:
    plan: list[tuple[str, int, object]] = []
    for name, value in attrs.items():
        if isinstance(value, str):
            fmt = _compile(value, slots)
            plan.append((name, _CONST, value) if fmt is None else (name, _TEXT, fmt))
        elif isinstance(value, tuple):
            formats = [_compile(item, slots) for item in value]
            if all(f is None for f in formats):
                plan.append((name, _CONST, value))
            else:
                items = tuple(
                    (False, item) if f is None else (True, f)
                    for item, f in zip(value, formats, strict=True)
                )
                plan.append((name, _LIST, items))
        else:
            plan.append((name, _CONST, value))
    return _Compiled(tuple(plan), slots)


def _width(last_index: int) -> int:
    return len(str(last_index))


def _steps_factory(
    template: JobTemplate, slots: Mapping[str, int]
) -> tuple[tuple[Step, ...], str | None]:
    """The constant steps, or the format string of the shared ``-p arguments`` value."""
    if not template.parametric_arguments:
        return template.steps, None
    return template.steps, _compile(template.parametric_arguments, slots) or (
        template.parametric_arguments.replace("{", "{{").replace("}", "}}")
    )


def expand(template: JobTemplate, offset: int = 0) -> list[ConcreteJob]:
    """All concrete jobs of a template, as DIRAC's server-side expansion gives them.

    Args:
        template: the job's template.
        offset: global index of the job's first concrete job (see the module docstring).

    Raises:
        ParametricError: a placeholder that names no sequence.

    Usage: ``jobs = expand(job.template())``
    """
    expander = _Expander(template, chunk_index=False)
    return list(expander.jobs(offset, 0, template.n_jobs, _width_of(template, offset)))


def _row_function(
    compiled: _Compiled, names: Sequence[str], *, expanded: bool, chunk_index: bool
) -> Callable[[Sequence[str], int], dict[str, JDLValue]]:
    """A function building one concrete job's attributes, generated once per template.

    Values enter the generated code only through its namespace (never its source text), so
    the code is fixed whatever the job holds; it is ~3x faster than interpreting the plan.
    """
    entries: dict[str, str] = {}
    namespace: dict[str, object] = {}
    for i, (name, kind, payload) in enumerate(compiled.plan):
        namespace[f"K{i}"] = name
        if kind == _CONST:
            namespace[f"C{i}"] = payload
            entries[name] = f"K{i}: C{i}"
        elif kind == _TEXT:
            namespace[f"F{i}"] = payload.format  # type: ignore[attr-defined]
            entries[name] = f"K{i}: F{i}(*v)"
        else:
            items = []
            pairs: tuple[tuple[bool, str], ...] = payload  # type: ignore[assignment]
            for j, (templated, item) in enumerate(pairs):
                namespace[f"I{i}_{j}"] = item.format if templated else item
                items.append(f"I{i}_{j}(*v)" if templated else f"I{i}_{j}")
            entries[name] = f"K{i}: ({', '.join(items)},)"
    if expanded:
        namespace["P"] = "Parameter"
        entries["Parameter"] = 'P: "1"'
        for j, name in enumerate(names):
            key = f"Parameter.{name}"
            namespace[f"S{j}"] = key
            entries[key] = f"S{j}: v[{j + 1}]"
        if chunk_index:
            namespace["X"] = f"Parameter.{INDEX_PARAMETER}"
            entries[f"Parameter.{INDEX_PARAMETER}"] = "X: v[0]"
        namespace["N"] = "ParameterNumber"
        entries["ParameterNumber"] = "N: number"
    body = ", ".join(entries[key] for key in sorted(entries))
    source = f"def row(v, number):\n    return {{{body}}}\n"
    exec(compile(source, "<aiodirac concrete job>", "exec"), namespace)  # noqa: S102
    return namespace["row"]  # type: ignore[return-value]


class _Expander:
    """A template compiled once, producing the concrete jobs of any range of its indices."""

    __slots__ = ("_blank", "_names", "_row", "_sequences", "_shared", "_steps", "chunk_index")

    def __init__(self, template: JobTemplate, *, chunk_index: bool) -> None:
        names = list(template.sequences)
        slots = {"%n": 0, **{name: i + 1 for i, name in enumerate(names)}}
        attrs: Mapping[str, JDLValue] = template.attributes
        if chunk_index and template.submit_sandbox is not None:
            attrs = {**attrs, "InputSandbox": template.submit_sandbox}
        compiled = _compile_attributes(attrs, slots)
        self._steps, self._shared = _steps_factory(template, slots)
        self._blank = [i for i, step in enumerate(self._steps) if not step.arguments.strip()]
        self._names = names
        self._sequences = [template.sequences[name] for name in names]
        self._row = _row_function(
            compiled, names, expanded=template.parametric or chunk_index, chunk_index=chunk_index
        )
        self.chunk_index = chunk_index

    def jobs(self, offset: int, start: int, stop: int, width: int) -> Iterator[ConcreteJob]:
        """Concrete jobs ``start``..``stop - 1`` (job-local), global index ``offset + n``."""
        steps, shared_fmt, blank, row, names = (
            self._steps,
            self._shared,
            self._blank,
            self._row,
            self._names,
        )
        first_number = start if self.chunk_index else 0
        job_steps = steps
        padded = [str(offset + n).zfill(width) for n in range(start, stop)]
        # One tuple per job: (n, padded index, value of each sequence...), built by zip in C.
        rows = zip(range(start, stop), padded, *[seq[start:stop] for seq in self._sequences])  # noqa: B905
        for n, *values in rows:
            index = offset + n
            if shared_fmt is not None:
                # dirac-jobexec strips a -p value; Script gives it to every blank-argument step.
                shared = shared_fmt.format(*values).strip()
                job_steps = steps
                if shared and blank:
                    replaced = list(steps)
                    for i in blank:
                        step = steps[i]
                        replaced[i] = Step(step.number, step.executable, shared, step.log_file)
                    job_steps = tuple(replaced)
            yield ConcreteJob(
                index,
                row(values, n - first_number),
                job_steps,
                dict(zip(names, values[1:])),  # noqa: B905
            )


def _width_of(template: JobTemplate, offset: int) -> int:
    return _width(offset + template.n_jobs - 1) if template.parametric else 0


def _index_template(attrs: Mapping[str, JDLValue]) -> dict[str, JDLValue]:
    """The attributes with every ``%n`` carried by the index sequence instead."""
    token = f"%({INDEX_PARAMETER})s"
    out: dict[str, JDLValue] = {}
    for name, value in attrs.items():
        if isinstance(value, str):
            out[name] = value.replace("%n", token)
        elif isinstance(value, tuple):
            out[name] = tuple(item.replace("%n", token) for item in value)
        else:
            out[name] = value
    return out


def _chunk_base(template: JobTemplate) -> dict[str, JDLValue]:
    """The attributes every chunk of ``template`` shares (``%n`` carried by the index)."""
    attrs: dict[str, JDLValue] = dict(template.attributes)
    if template.submit_sandbox is not None:
        attrs["InputSandbox"] = template.submit_sandbox
    return _index_template(attrs)


def _chunk(
    template: JobTemplate,
    offset: int,
    start: int,
    stop: int,
    *,
    base: Mapping[str, JDLValue] | None = None,
    expander: _Expander | None = None,
) -> SubmitChunk:
    width = _width_of(template, offset)
    attrs: dict[str, JDLValue] = dict(_chunk_base(template) if base is None else base)
    attrs["Parameters"] = stop - start
    for name, seq in template.sequences.items():
        attrs[f"Parameters.{name}"] = seq[start:stop]
    attrs[f"Parameters.{INDEX_PARAMETER}"] = tuple(
        str(offset + n).zfill(width) for n in range(start, stop)
    )
    attrs = {key: attrs[key] for key in sorted(attrs)}
    if expander is None:
        expander = _Expander(template, chunk_index=True)
    jobs = tuple(expander.jobs(offset, start, stop, width))
    return SubmitChunk(attrs, template.workflow_xml, jobs, template.local_sandbox)


def chunks_of(
    template: JobTemplate, max_jobs: int = 20, start: int = 0, offset: int = 0
) -> Iterator[SubmitChunk]:
    """The submit chunks of one job, from its concrete job ``start`` on.

    Raises:
        ValueError: ``max_jobs`` < 1 or ``start`` outside the job.
        ParametricError: a placeholder that names no sequence.

    Usage: ``list(chunks_of(job.template(), 20))``
    """
    if not isinstance(max_jobs, int) or max_jobs < 1:
        raise JobDescriptionError(
            f"max_jobs must be a positive int, got {max_jobs!r}",
            attribute="max_jobs",
            value=max_jobs,
        )
    if not isinstance(start, int) or not 0 <= start <= template.n_jobs:
        raise JobDescriptionError(
            f"start must be between 0 and {template.n_jobs}, got {start!r}",
            attribute="start",
            value=start,
        )
    # Compile once up front: a bad placeholder fails here, not in the middle of a submission.
    expander = _Expander(template, chunk_index=True)
    base = _chunk_base(template)
    return (
        _chunk(
            template,
            offset,
            first,
            min(first + max_jobs, template.n_jobs),
            base=base,
            expander=expander,
        )
        for first in range(start, template.n_jobs, max_jobs)
    )


# ---------------------------------------------------------------------------------------------
# Factoring a list of different plain jobs into shared chunks.


def _factorable(value: JDLValue, index: int) -> str | None:
    """The per-job parameter value for a differing attribute, or None if it cannot be one."""
    if not isinstance(value, str):
        return None
    concrete = value.replace("%n", str(index))
    try:
        check_parameter_value("x", concrete)
        check_value("x", concrete)
    except JobDescriptionError:
        return None
    return concrete


@dataclass(slots=True)
class _Group:
    first: JobTemplate
    offsets: list[int]
    members: list[JobTemplate]
    varying: list[str]


def _compatible(group: _Group, candidate: JobTemplate, offset: int, max_jobs: int) -> bool:
    first = group.first
    if (
        len(group.members) >= max_jobs
        or candidate.parametric
        or candidate.steps != first.steps
        or candidate.parametric_arguments != first.parametric_arguments
        or candidate.submit_sandbox != first.submit_sandbox
        or candidate.attributes.keys() != first.attributes.keys()
        or "%(" in candidate.parametric_arguments
    ):
        return False
    varying = set(group.varying)
    for name, value in candidate.attributes.items():
        if name not in varying and value != first.attributes[name]:
            varying.add(name)
    for name in varying - set(group.varying):
        for member, member_offset in zip(group.members, group.offsets, strict=True):
            if _factorable(member.attributes[name], member_offset) is None:
                return False
    return all(_factorable(candidate.attributes[name], offset) is not None for name in varying)


def _group_chunk(group: _Group) -> SubmitChunk:
    if len(group.members) == 1:
        return _chunk(group.first, group.offsets[0], 0, 1)
    varying = sorted(set(group.varying))
    names = {attr: f"{_VARY_PREFIX}{i}" for i, attr in enumerate(varying)}
    attrs: dict[str, JDLValue] = {
        key: (f"%({names[key]})s" if key in names else value)
        for key, value in group.first.attributes.items()
    }
    sequences = {
        names[attr]: tuple(
            str(_factorable(m.attributes[attr], off))
            for m, off in zip(group.members, group.offsets, strict=True)
        )
        for attr in varying
    }
    merged = JobTemplate(
        attributes=attrs,
        submit_sandbox=group.first.submit_sandbox,
        local_sandbox=group.first.local_sandbox,
        sequences=sequences,
        n_jobs=len(group.members),
        steps=group.first.steps,
        parametric_arguments=group.first.parametric_arguments,
        workflow_xml=group.first.workflow_xml,
        parametric=False,
    )
    chunk = _chunk(merged, group.offsets[0], 0, len(group.members))
    # The concrete jobs are those of the separate jobs: the factoring sequences are bookkeeping.
    jobs = tuple(ConcreteJob(job.index, job.attributes, job.steps, {}) for job in chunk.jobs)
    return SubmitChunk(chunk.attributes, chunk.workflow_xml, jobs, chunk.local_sandbox)


def chunk_jobs(jobs: Iterable[Templated], max_jobs: int = 20) -> Iterator[SubmitChunk]:
    """Submit chunks for a list of different jobs, sharing chunks where DIRAC can carry it.

    Consecutive plain jobs with the same steps, sandbox and attribute names, whose differing
    attributes are strings that a parameter sequence can carry, go into one chunk (at most
    ``max_jobs``) where each differing attribute becomes ``%(aiodiracVary<k>)s``. Parametric jobs
    and jobs that cannot share are chunked on their own. Global indices run across the whole
    iterable (see the module docstring).

    Raises:
        JobDescriptionError: ``max_jobs`` < 1, or an item that is not a Job.
        ParametricError: a job whose placeholders name no sequence.

    Usage: ``for chunk in chunk_jobs(jobs): ...``
    """
    if not isinstance(max_jobs, int) or max_jobs < 1:
        raise JobDescriptionError(
            f"max_jobs must be a positive int, got {max_jobs!r}",
            attribute="max_jobs",
            value=max_jobs,
        )
    offset = 0
    group: _Group | None = None
    for job in jobs:
        template_of = getattr(job, "template", None)
        if template_of is None:
            raise JobDescriptionError(
                f"chunk_jobs takes Job objects, got {type(job).__name__}", value=job
            )
        template: JobTemplate = template_of()
        if template.parametric:
            if group is not None:
                yield _group_chunk(group)
                group = None
            yield from chunks_of(template, max_jobs, 0, offset)
        else:
            # Fail early on unknown placeholders, before the job hides inside a group.
            _compile_attributes(template.attributes, {"%n": 0})
            if group is not None and _compatible(group, template, offset, max_jobs):
                for name, value in template.attributes.items():
                    if value != group.first.attributes[name] and name not in group.varying:
                        group.varying.append(name)
                group.members.append(template)
                group.offsets.append(offset)
            else:
                if group is not None:
                    yield _group_chunk(group)
                group = _Group(template, [offset], [template], [])
        offset += template.n_jobs
    if group is not None:
        yield _group_chunk(group)
