"""The ``Job`` class: DIRAC's job description API, validated at once, rendered exactly.

Setter names, argument names and defaults are DIRAC 9.1's (``DIRAC.Interfaces.API.Job``; the
setters live in ``_setters.py``), and so is what they produce: :meth:`Job.to_jdl` gives the JDL and
:meth:`Job.to_workflow_xml` the ``jobDescription.xml`` that DIRAC's own ``Job`` builds for the same
calls. Where DIRAC silently accepts what would corrupt its JDL or misbehave on the worker node,
``Job`` raises at the setter instead (:class:`~aiodirac.JobDescriptionError`,
:class:`~aiodirac.UnsafeValueError`, :class:`~aiodirac.ParametricError`), naming the argument, the
value and what is accepted. Every deliberate difference is listed in ``docs/dirac-differences.md``.

Usage::

    job = Job(name="scan-%n", cpu_time=600)
    job.setExecutable("/bin/echo", arguments="value %(x)s")
    job.setParameterSequence("x", ["a", "b", "c"])
    for chunk in job.chunks(20):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._jdl import check_item, render_jdl
from ._parametric import JobTemplate, chunks_of, expand
from ._setters import LOG_LEVELS, JobSetters, Param, bad_argument, unique
from ._spec import ConcreteJob, JDLValue, Step, SubmitChunk
from ._workflow import WorkflowParameter, check_xml_value, render_workflow

__all__ = ["LOG_LEVELS", "Job"]


class Job(JobSetters):
    """A DIRAC job description with DIRAC's setters, checked at once.

    Args:
        script: DIRAC's workflow-file argument; not supported (a ``jobDescription.xml`` is
            always generated), must be ``None``.
        stdout: the job's standard output file name (``StdOutput``).
        stderr: the job's standard error file name (``StdError``).
        name, cpu_time, job_group, priority, log_level, job_type, platform, tags, destination,
        banned_sites, input_sandbox, output_sandbox, input_data: keyword aliases of the
            matching setters, applied in this order.

    Raises:
        JobDescriptionError: any bad argument (see the setters).

    Usage: ``job = Job(name="scan", cpu_time=600); job.setExecutable("/bin/echo", "hi")``
    """

    def __init__(
        self,
        script: None = None,
        stdout: str = "std.out",
        stderr: str = "std.err",
        *,
        name: str | None = None,
        cpu_time: int | str | None = None,
        job_group: str | None = None,
        priority: int | None = None,
        log_level: str | None = None,
        job_type: str | None = None,
        platform: str | None = None,
        tags: str | Sequence[str] | None = None,
        destination: str | Sequence[str] | None = None,
        banned_sites: str | Sequence[str] | None = None,
        input_sandbox: str | Sequence[str] | None = None,
        output_sandbox: str | Sequence[str] | None = None,
        input_data: str | Sequence[str] | None = None,
    ) -> None:
        if script is not None:
            raise bad_argument(
                "script", script, "None (aiodirac always writes jobDescription.xml itself)"
            )
        for argument, value in (("stdout", stdout), ("stderr", stderr)):
            if not isinstance(value, str) or not value:
                raise bad_argument(argument, value, "a non-empty file name")
            check_item("StdOutput" if argument == "stdout" else "StdError", value)
            check_xml_value(argument, value)
        #: DIRAC's per-setter error record; aiodirac raises instead, so it stays empty.
        self.errorDict: dict[str, list[str]] = {}
        self._stdout = stdout
        self._stderr = stderr
        self._params: dict[str, Param] = {}
        self._steps: list[Step] = []
        self._parametric_args = ""
        self._parametric_step = 0
        self._add_to_isb: list[str] = []
        self._add_to_osb: list[str] = []
        self._sequences: dict[str, tuple[str, ...]] = {}
        self._wf_arguments: dict[str, str] = {}
        self._absolute: dict[str, str] = {}
        self._workflow_name = "notgiven"
        self._cache: JobTemplate | None = None
        self._set("JobType", "JDL", "User", "Job Type")
        self._set("Priority", "JDL", 1, "User Job Priority")
        self._set("JobGroup", "JDL", "", "Name of the JobGroup")
        self._set("JobName", "JDL", "Name", "Name of Job")
        self._set("StdOutput", "JDL", stdout, "Standard output file")
        self._set("StdError", "JDL", stderr, "Standard error file")
        self._set("InputData", "JDL", "", "Default null input data value")
        self._set("LogLevel", "JDL", "INFO", "Job Logging Level")
        self._set("arguments", "string", "", "Arguments to executable Step")
        self._set("ParametricInputData", "string", "", "Default null parametric input data value")
        self._set(
            "ParametricInputSandbox", "string", "", "Default null parametric input sandbox value"
        )
        aliases: tuple[tuple[Any, Any], ...] = (
            (name, self.setName),
            (cpu_time, self.setCPUTime),
            (job_group, self.setJobGroup),
            (priority, self.setPriority),
            (log_level, self.setLogLevel),
            (job_type, self.setType),
            (platform, self.setPlatform),
            (tags, self.setTag),
            (destination, self.setDestination),
            (banned_sites, self.setBannedSites),
            (input_sandbox, self.setInputSandbox),
            (output_sandbox, self.setOutputSandbox),
            (input_data, self.setInputData),
        )
        for value, setter in aliases:
            if value is not None:
                setter(list(value) if isinstance(value, tuple) else value)

    # -----------------------------------------------------------------------------------------
    # properties

    @property
    def name(self) -> str:
        """The job name (``JobName``; DIRAC's default is ``Name``).

        Usage: ``Job(name="scan").name`` -> ``"scan"``
        """
        return str(self._params["JobName"].value)

    @property
    def job_group(self) -> str:
        """The job group (``JobGroup``; empty when unset).

        Usage: ``Job(job_group="calib").job_group`` -> ``"calib"``
        """
        return str(self._params["JobGroup"].value)

    @property
    def n_jobs(self) -> int:
        """The number of concrete jobs: 1 for a plain job, the sequence length otherwise.

        Usage: ``job.n_jobs == len(job)``
        """
        return len(next(iter(self._sequences.values()))) if self._sequences else 1

    @property
    def is_parametric(self) -> bool:
        """Whether the job has parameter sequences.

        Usage: ``if job.is_parametric: ...``
        """
        return bool(self._sequences)

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps as written in the workflow XML (parametric arguments blank).

        Usage: ``[s.executable for s in job.steps]``
        """
        return tuple(self._steps)

    @property
    def parameter_sequences(self) -> Mapping[str, tuple[str, ...]]:
        """The parameter sequences, by name, values as strings.

        Usage: ``job.parameter_sequences["seed"]``
        """
        return dict(self._sequences)

    def __len__(self) -> int:
        return self.n_jobs

    def __repr__(self) -> str:
        return f"<Job {self.name!r} steps={len(self._steps)} jobs={self.n_jobs}>"

    # -----------------------------------------------------------------------------------------
    # rendering

    def _attributes(self) -> tuple[dict[str, JDLValue], dict[str, Param]]:
        """DIRAC's ``_toJDL`` logic: the JDL attributes (sorted) and the parameters used."""
        params = {name: Param(p.type, p.value, p.description) for name, p in self._params.items()}
        arguments = ["jobDescription.xml"]
        log_level = params["LogLevel"].value
        if log_level:
            arguments.append(f"-o LogLevel={log_level}")
        if "JobConfigArgs" in params and params["JobConfigArgs"].value:
            arguments.append(f"--cfg {params['JobConfigArgs'].value}")
        if self._parametric_args:
            arguments.append(f"-p arguments='{self._parametric_args}'")

        def merged(name: str, extra: list[str]) -> None:
            current = params.get(name)
            items: list[str] = []
            if current is not None and current.value not in ("", ()):
                value = current.value
                items = list(value) if isinstance(value, tuple) else [str(value)]
            items = list(unique([*items, *extra]))
            params[name] = Param("JDL", tuple(items), current.description if current else "")

        merged("InputSandbox", [*self._add_to_isb, "jobDescription.xml"])
        merged("OutputSandbox", [*self._add_to_osb, self._stderr, self._stdout])
        for name, values in self._sequences.items():
            placeholder = f"%({name})s"
            if name in params:
                par = params[name]
                if name == "InputSandbox":
                    value = par.value
                    items = list(value) if isinstance(value, tuple) else [str(value)]
                    par.value = (*items, placeholder)
                elif par.type == "JDL":
                    par.value = placeholder
            else:
                params[name] = Param("JDL", placeholder, "")
            params[f"Parameters.{name}"] = Param("JDL", values, "")
            if name in self._wf_arguments:
                arguments.append(f" -p {self._wf_arguments[name]}=%({name})s")
        attrs: dict[str, JDLValue] = {
            "Executable": "dirac-jobexec",
            "Arguments": " ".join(arguments),
        }
        for name, par in params.items():
            if par.type != "JDL" or par.value in ("", ()):
                continue
            value = par.value
            # DIRAC writes a one-entry list as a scalar, except a sequence, which stays a list.
            if isinstance(value, tuple) and len(value) == 1 and not name.startswith("Parameters."):
                value = value[0]
            attrs[name] = value
        if self._sequences:
            attrs["Parameters"] = self.n_jobs
        return {key: attrs[key] for key in sorted(attrs)}, params

    def to_jdl(self) -> str:
        """The job's JDL, as DIRAC's ``Job._toJDL()`` builds it, wrapped in ``[ ]``.

        Repeatable: calling it again gives the same text (DIRAC appends std.out/std.err again).

        Raises:
            UnsafeValueError: never for values that passed the setters.

        Usage: ``print(job.to_jdl())``
        """
        return render_jdl(self._attributes()[0])

    def _toJDL(self, xmlFile: str = "", jobDescriptionObject: object = None) -> str:
        """DIRAC-compatible spelling of :meth:`to_jdl` (no outer brackets, as DIRAC returns it).

        Usage: ``text = job._toJDL()``
        """
        return render_jdl(self._attributes()[0], brackets=False)

    def to_workflow_xml(self) -> str:
        """The job's ``jobDescription.xml``, with placeholders, as DIRAC's ``_toXML()``.

        Usage: ``open("jobDescription.xml", "w").write(job.to_workflow_xml())``
        """
        parameters = []
        for name, par in self._params.items():
            value = par.value
            text = ";".join(value) if isinstance(value, tuple) else str(value)
            parameters.append(WorkflowParameter(name, par.type, text, par.description))
        return render_workflow(self._workflow_name, parameters, self._steps)

    def _toXML(self) -> str:
        """DIRAC-compatible spelling of :meth:`to_workflow_xml`.

        Usage: ``xml = job._toXML()``
        """
        return self.to_workflow_xml()

    def template(self) -> JobTemplate:
        """The job's expansion template (cached until the next setter call).

        Usage: ``expand(job.template())``
        """
        if self._cache is not None:
            return self._cache
        attrs, _ = self._attributes()
        for key in [k for k in attrs if k.startswith("Parameters")]:
            del attrs[key]
        sandbox = attrs.get("InputSandbox")
        items: tuple[str, ...] = (
            sandbox if isinstance(sandbox, tuple) else (() if sandbox is None else (str(sandbox),))
        )
        submit = tuple(self._absolute.get(item, item) for item in items)
        local = tuple(
            self._absolute[item] for item in dict.fromkeys(items) if item in self._absolute
        )
        self._cache = JobTemplate(
            attributes=attrs,
            submit_sandbox=submit or None,
            local_sandbox=local,
            sequences=dict(self._sequences),
            n_jobs=self.n_jobs,
            steps=tuple(self._steps),
            parametric_arguments=self._parametric_args,
            workflow_xml=self.to_workflow_xml(),
            parametric=bool(self._sequences),
        )
        return self._cache

    def expand(self) -> list[ConcreteJob]:
        """All concrete jobs, as DIRAC's server-side ``generateParametricJobs`` gives them.

        Steps are those ``dirac-jobexec`` runs for each job (``-p arguments`` applied).

        Raises:
            ParametricError: a ``%(name)s`` placeholder that names no sequence.

        Usage: ``[j.name for j in job.expand()]``
        """
        return expand(self.template())

    def chunks(self, max_jobs: int = 20, start: int = 0) -> Iterator[SubmitChunk]:
        """Submit chunks of at most ``max_jobs`` jobs, each one parametric JDL.

        Args:
            max_jobs: the most jobs per chunk (DiracX accepts 20 per request).
            start: the index of the first concrete job to include (to resume).

        Raises:
            JobDescriptionError: ``max_jobs`` < 1 or ``start`` out of range.
            ParametricError: a placeholder that names no sequence (before the first chunk).

        Usage: ``for chunk in job.chunks(20): ...``
        """
        return chunks_of(self.template(), max_jobs, start)
