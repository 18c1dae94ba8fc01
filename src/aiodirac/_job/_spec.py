"""Value types that carry a job description from the job layer to the backends.

Pure data, no I/O. A :class:`SubmitChunk` is the unit of submission: one JDL (parametric, at most
the backend's per-request limit of jobs) plus the concrete jobs the server will create from it, in
order, so that a backend which runs jobs itself (the local one) needs no JDL expansion of its own
and a backend that talks to a server (DiracX) knows which jobs each returned ID stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ConcreteJob", "JDLValue", "Step", "SubmitChunk"]

#: A JDL attribute value as aiodirac models it: a string, an integer, or a list of strings.
JDLValue = str | int | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One workflow step, as ``dirac-jobexec`` runs it on a worker node.

    Attributes:
        number: 1-based position of the step in the job (``ScriptStep<number>``).
        executable: the command to run (a path or a name found on ``PATH``).
        arguments: its argument string (split like a shell would, no shell features).
        log_file: the file that receives the step's output (``Script1_echo.log``).

    Usage: ``Step(1, "/bin/echo", "hello", "Script1_echo.log")``
    """

    number: int
    executable: str
    arguments: str = ""
    log_file: str = ""


@dataclass(frozen=True, slots=True)
class ConcreteJob:
    """One job exactly as it will exist on the server: placeholders substituted.

    Attributes:
        index: the job's global parametric index (``%n``); 0 for a plain job.
        attributes: the concrete JDL attributes, as DIRAC's server-side expansion gives them.
        steps: the workflow steps with parameters substituted.
        parameters: the parameter values of this job, by parameter name.

    Usage: ``job.attributes["JobName"]``; ``[s.executable for s in job.steps]``
    """

    index: int
    attributes: Mapping[str, JDLValue]
    steps: tuple[Step, ...]
    parameters: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The job's JobName (DIRAC's default is ``Name``)."""
        value = self.attributes.get("JobName", "Name")
        return value if isinstance(value, str) else str(value)

    def strings(self, attribute: str) -> tuple[str, ...]:
        """An attribute as a tuple of strings (a scalar becomes a 1-tuple, absent -> empty).

        Usage: ``job.strings("OutputSandbox")``
        """
        value = self.attributes.get(attribute)
        if value is None:
            return ()
        if isinstance(value, tuple):
            return value
        return (str(value),)


@dataclass(frozen=True, slots=True)
class SubmitChunk:
    """One submission request's worth of jobs.

    Attributes:
        attributes: the JDL to send, as attributes; parametric (it holds ``Parameters``) so that
            the server creates its jobs unconfirmed (``Submitting``), even for a single job.
            Its ``InputSandbox`` names local files by their absolute path, plus
            ``jobDescription.xml``; a backend replaces the local entries by what it uploaded.
        workflow_xml: the ``jobDescription.xml`` that DIRAC's worker nodes run.
        jobs: the concrete jobs the server will create from ``attributes``, in creation order.
        local_sandbox: absolute paths of the local files and folders in the input sandbox.

    Usage: ``for chunk in job.chunks(20): ids = await backend.submit(chunk)``
    """

    attributes: Mapping[str, JDLValue]
    workflow_xml: str
    jobs: tuple[ConcreteJob, ...]
    local_sandbox: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.jobs)

    @property
    def indices(self) -> tuple[int, ...]:
        """The global indices of the chunk's jobs."""
        return tuple(job.index for job in self.jobs)
