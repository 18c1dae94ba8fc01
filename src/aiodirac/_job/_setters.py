"""DIRAC's ``Job`` setters: each checks its arguments at once and records the job's description.

:class:`JobSetters` holds the state DIRAC's ``Job`` keeps (workflow parameters, steps, parameter
sequences, sandbox additions) and the setters that fill it, with DIRAC 9.1's names, argument names
and defaults. :class:`aiodirac._job._job.Job` adds construction and rendering on top. A setter raises
:class:`~aiodirac.JobDescriptionError` (or its subclasses) naming the argument, the value and what
is accepted; on success it returns DIRAC's ``S_OK`` value.

The only I/O is DIRAC's own rule, kept on purpose: ``setExecutable`` checks once whether the
executable exists on this machine (then it is shipped in the input sandbox and its log is named
after it). Sandbox paths are made absolute when set (``os.path.abspath``, no disk access).

Usage::

    job = Job()
    job.setExecutable("/bin/echo", arguments="hello")
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiodirac._exceptions import JobDescriptionError, ParametricError, UnsafeValueError
from aiodirac._result import S_OK, DiracResult

from ._jdl import check_item, check_name, check_value
from ._parametric import check_parameter_value
from ._spec import JDLValue, Step
from ._workflow import check_xml_value

if TYPE_CHECKING:
    from ._parametric import JobTemplate

__all__ = ["LOG_LEVELS", "JobSetters", "Param", "bad_argument", "unique"]

#: DIRAC's gLogger level names (``setLogLevel`` accepts them in any case).
LOG_LEVELS = frozenset(
    {"ALWAYS", "NOTICE", "INFO", "VERBOSE", "DEBUG", "WARN", "ERROR", "FATAL", "EXCEPT"}
)

_PARAMETRIC_ARGS = re.compile(r"%\(.*\)s|%n")
_SEQUENCE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Words pasted unquoted into the worker node's shell command line (Arguments attribute).
_SHELL_WORD = re.compile(r"[A-Za-z0-9_./:=@+%,-]+\Z")
_REMOTE = ("LFN:", "SB:")
_WORKFLOW_PARAMETERS = frozenset({"arguments", "ParametricInputData", "ParametricInputSandbox"})
_RESERVED_SEQUENCES = frozenset({"Executable", "Arguments"})


@dataclass(slots=True)
class Param:
    type: str
    value: JDLValue
    description: str


def bad_argument(argument: str, value: object, accepted: str) -> JobDescriptionError:
    return JobDescriptionError(
        f"{argument}={value!r} is not accepted: expected {accepted}",
        attribute=argument,
        value=value,
        expected=accepted,
    )


def _string_list(argument: str, value: object, *, allow_str: bool = True) -> tuple[str, ...]:
    """DIRAC's 'single string or list of strings' arguments, as a non-empty tuple."""
    if isinstance(value, str) and allow_str:
        items: Sequence[object] = [value]
    elif isinstance(value, list | tuple) and value:
        items = value
    else:
        raise bad_argument(argument, value, "a string or a non-empty list of strings")
    for item in items:
        if not isinstance(item, str):
            raise bad_argument(argument, value, "a string or a non-empty list of strings")
    return tuple(items)  # type: ignore[arg-type]


def unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _shell_word(attribute: str, value: str) -> None:
    if not _SHELL_WORD.match(value):
        bad = next((c for c in value if not _SHELL_WORD.match(c)), "")
        raise UnsafeValueError(
            f"{attribute}: the value {value!r} holds {bad!r}; it is pasted unquoted into the "
            "worker node's shell command line, so only letters, digits and _ . / : = @ + % , - "
            "are accepted",
            attribute=attribute,
            value=value,
            character=bad,
        )


class JobSetters:
    """The state of a DIRAC job description and DIRAC's setters that fill it.

    Not used on its own: :class:`aiodirac._job._job.Job` initialises the state.

    Usage: ``class Job(JobSetters): ...``
    """

    errorDict: dict[str, list[str]]
    _stdout: str
    _stderr: str
    _params: dict[str, Param]
    _steps: list[Step]
    _parametric_args: str
    _parametric_step: int
    _add_to_isb: list[str]
    _add_to_osb: list[str]
    _sequences: dict[str, tuple[str, ...]]
    _wf_arguments: dict[str, str]
    _absolute: dict[str, str]
    _workflow_name: str
    _cache: JobTemplate | None

    # -----------------------------------------------------------------------------------------
    # internals

    def _set(self, name: str, ptype: str, value: JDLValue, description: str) -> None:
        self._cache = None
        self._params[name] = Param(ptype, value, description)

    def _jdl_strings(self, attribute: str, items: tuple[str, ...]) -> JDLValue:
        for item in items:
            check_item(attribute, item)
            check_xml_value(attribute, item)
        return items[0] if len(items) == 1 else items

    def _scalar(self, attribute: str, argument: str, value: object) -> str:
        if not isinstance(value, str):
            raise bad_argument(argument, value, "a string")
        check_value(attribute, value)
        check_xml_value(attribute, value)
        return value

    # -----------------------------------------------------------------------------------------
    # DIRAC setters

    def setExecutable(
        self,
        executable: str,
        arguments: str = "",
        logFile: str = "",
        modulesList: list[str] | None = None,
        parameters: list[tuple[str, str, str, str]] | None = None,
        paramValues: list[tuple[str, str]] | None = None,
        includeInSandbox: bool = True,
    ) -> DiracResult:
        """Add a step that runs ``executable`` with ``arguments`` (each call adds one step).

        As in DIRAC: if ``executable`` is a path that exists on this machine (and
        ``includeInSandbox``), it is added to the input sandbox and the step's log defaults to
        ``Script<N>_<basename>.log``, else ``Script<N>_CodeOutput.log``; the log is added to the
        output sandbox. Arguments holding ``%(name)s`` or ``%n`` are parametric: they travel in
        the JDL as ``-p arguments='...'`` and the server substitutes them per job.

        Args:
            executable: a path or a command name; may hold arguments after a space, as in DIRAC.
            arguments: the argument string (split like a shell would on the worker node).
            logFile: the step's log file name.
            modulesList: DIRAC's workflow modules; only ``None`` or ``["Script"]``.
            parameters: DIRAC extension hook; not supported (must be ``None``).
            paramValues: DIRAC extension hook; not supported (must be ``None``).
            includeInSandbox: ship a local executable in the input sandbox.

        Returns:
            ``S_OK({"name": "RunScriptStep<N>", "type": "ScriptStep<N>", "descr_short": ""})``.

        Raises:
            JobDescriptionError: a non-string, empty executable, unbalanced quotes.
            UnsafeValueError: a character the XML or JDL cannot carry.
            ParametricError: a second step with parametric arguments, or a step without
                arguments next to one with parametric arguments (DIRAC's worker node would pass
                the parametric arguments to it too).

        Usage: ``job.setExecutable("/bin/echo", arguments="hello %(n)s", logFile="echo.log")``
        """
        for argument, value in (
            ("executable", executable),
            ("arguments", arguments),
            ("logFile", logFile),
        ):
            if not isinstance(value, str):
                raise bad_argument(argument, value, "a string")
        if modulesList not in (None, ["Script"]):
            raise bad_argument("modulesList", modulesList, "None or ['Script']")
        if parameters is not None or paramValues is not None:
            raise bad_argument(
                "parameters" if parameters is not None else "paramValues",
                parameters if parameters is not None else paramValues,
                "None (DIRAC's workflow-extension hooks are not supported)",
            )
        if not executable.strip():
            raise bad_argument("executable", executable, "a non-empty command")
        check_xml_value("executable", executable)
        check_xml_value("arguments", arguments)
        import shlex  # lazy: only setters and readers of Arguments need it

        try:
            shlex.split(f"{executable} {arguments}")
        except ValueError as exc:
            raise JobDescriptionError(
                f"executable={executable!r} arguments={arguments!r}: the worker node splits them "
                f"like a shell and cannot ({exc}); balance the quotes",
                attribute="arguments",
                value=arguments,
            ) from exc
        number = len(self._steps) + 1
        parametric = bool(arguments) and _PARAMETRIC_ARGS.search(arguments) is not None
        if parametric:
            if self._parametric_args:
                raise ParametricError(
                    f"arguments={arguments!r}: step {self._parametric_step} already has parametric "
                    "arguments, and DIRAC's workflow carries parametric arguments for one step "
                    "only (it would silently keep the last); put the placeholders in one step",
                    attribute="arguments",
                    value=arguments,
                )
            check_value("Arguments", arguments)
            if "'" in arguments:
                raise UnsafeValueError(
                    f"arguments={arguments!r}: parametric arguments travel as -p arguments='...' "
                    "through the worker node's shell, so they cannot hold \"'\"",
                    attribute="arguments",
                    value=arguments,
                    character="'",
                )
            if arguments.strip().startswith("{"):
                raise UnsafeValueError(
                    f"arguments={arguments!r}: dirac-jobexec reads a -p value starting with '{{' "
                    "as a list; do not start parametric arguments with '{'",
                    attribute="arguments",
                    value=arguments,
                    character="{",
                )
            blank = [s.number for s in self._steps if not s.arguments.strip()]
            if blank:
                raise self._blank_step_error(blank[0], number)
        elif not arguments.strip() and self._parametric_args:
            raise self._blank_step_error(number, self._parametric_step)
        local = includeInSandbox and os.path.exists(executable)
        log_name = f"{os.path.basename(executable)}.log" if local else "CodeOutput.log"
        log_name = logFile or f"Script{number}_{log_name}"
        check_item("logFile", log_name)
        check_xml_value("logFile", log_name)
        if local:
            check_item("InputSandbox", executable)
            self._absolute[executable] = os.path.abspath(executable)
            self._add_to_isb.append(executable)
        self._cache = None
        self._add_to_osb.append(log_name)
        self._steps.append(Step(number, executable, "" if parametric else arguments, log_name))
        if parametric:
            self._parametric_args = arguments
            self._parametric_step = number
        return S_OK(
            {"name": f"RunScriptStep{number}", "type": f"ScriptStep{number}", "descr_short": ""}
        )

    @staticmethod
    def _blank_step_error(blank: int, parametric: int) -> ParametricError:
        return ParametricError(
            f"step {blank} has no arguments while step {parametric} has parametric arguments: "
            "DIRAC's worker node (dirac-jobexec) gives the parametric arguments to every step "
            f"without arguments, so step {blank} would not run as written; give step {blank} "
            "explicit arguments",
            attribute="arguments",
            value="",
        )

    def setName(self, jobName: str) -> DiracResult:
        """Set the job name (``JobName``); ``%n`` and ``%(name)s`` are substituted per job.

        Raises:
            JobDescriptionError: not a string.
            UnsafeValueError: a character DIRAC's JDL cannot carry (``"`` ``;`` ``[`` ``,`` ...).

        Usage: ``job.setName("scan-%n")``
        """
        value = self._scalar("JobName", "jobName", jobName)
        if not value:
            raise bad_argument(
                "jobName", jobName, "a non-empty name (DIRAC would drop an empty one)"
            )
        self._workflow_name = value
        self._set("JobName", "JDL", value, "User specified name")
        return S_OK()

    def setCPUTime(self, timeInSecs: int | str) -> DiracResult:
        """Set the requested CPU time in seconds (``CPUTime``).

        Raises:
            JobDescriptionError: not a non-negative int or numeric string.

        Usage: ``job.setCPUTime(3600)``
        """
        if isinstance(timeInSecs, bool) or not isinstance(timeInSecs, int | str):
            raise bad_argument(
                "timeInSecs", timeInSecs, "a number of seconds (int or numeric string)"
            )
        try:
            seconds = int(timeInSecs)
        except ValueError:
            raise bad_argument(
                "timeInSecs", timeInSecs, "a number of seconds (int or numeric string)"
            ) from None
        if seconds < 0:
            raise bad_argument("timeInSecs", timeInSecs, "a number of seconds >= 0")
        self._set("CPUTime", "JDL", seconds, "CPU time in secs")
        return S_OK()

    def setInputSandbox(self, files: str | Sequence[str]) -> DiracResult:
        """Set the input sandbox: local files or folders (sent at submission), ``LFN:`` entries.

        Local entries are kept as given in the JDL and made absolute (against the current
        folder, now) for submission; nothing is read, tarred or globbed here.

        Raises:
            JobDescriptionError: not a string or a non-empty list of strings.
            UnsafeValueError: an entry a JDL list cannot carry (whitespace, ``,`` ``"`` ...).

        Usage: ``job.setInputSandbox(["input.txt", "LFN:/vo/user/u/big.tgz"])``
        """
        items = _string_list("files", files)
        for item in items:
            check_item("InputSandbox", item)
            check_xml_value("InputSandbox", item)
            if os.path.basename(item) == "jobDescription.xml":
                raise bad_argument(
                    "files", item, "files other than jobDescription.xml (the job writes it)"
                )
            if not item.startswith(_REMOTE):
                self._absolute[item] = os.path.abspath(item)
        self._set("InputSandbox", "JDL", unique(items), "Input sandbox file list")
        return S_OK()

    def setOutputSandbox(self, files: str | Sequence[str]) -> DiracResult:
        """Set the output sandbox file names or patterns (``OutputSandbox``).

        Step logs, ``StdError`` and ``StdOutput`` are appended when rendering, as in DIRAC.

        Raises:
            JobDescriptionError, UnsafeValueError: as for :meth:`setInputSandbox`.

        Usage: ``job.setOutputSandbox(["*.root", "summary.txt"])``
        """
        items = _string_list("files", files)
        self._set(
            "OutputSandbox",
            "JDL",
            self._jdl_strings("OutputSandbox", items),
            "Output sandbox file list",
        )
        return S_OK()

    def setInputData(self, lfns: str | Sequence[str]) -> DiracResult:
        """Set the input data LFNs (``InputData``).

        As in DIRAC, a list gets every entry prefixed with ``LFN:`` (an existing prefix is not
        doubled) and a single string is kept as given.

        Raises:
            JobDescriptionError, UnsafeValueError: as for :meth:`setInputSandbox`.

        Usage: ``job.setInputData(["/vo/data/f1.dst", "/vo/data/f2.dst"])``
        """
        if isinstance(lfns, str):
            value = self._jdl_strings("InputData", (lfns,))
            self._set("InputData", "JDL", value, "Input data specified by LFN")
        else:
            items = _string_list("lfns", lfns, allow_str=False)
            prefixed = tuple("LFN:" + item.replace("LFN:", "") for item in items)
            self._set(
                "InputData",
                "JDL",
                self._jdl_strings("InputData", prefixed),
                "List of input data specified by LFNs",
            )
        return S_OK()

    def setOutputData(
        self,
        lfns: str | Sequence[str],
        outputSE: str | Sequence[str] | None = None,
        outputPath: str = "",
    ) -> DiracResult:
        """Set output data to upload (``OutputData``), its storage elements and path.

        As in DIRAC: storage element names are stripped, leading ``/`` of the path removed.

        Raises:
            JobDescriptionError, UnsafeValueError: bad types or characters.

        Usage: ``job.setOutputData(["out.root"], outputSE="CERN-USER", outputPath="run1")``
        """
        items = _string_list("lfns", lfns)
        output_se: tuple[str, ...] = ()
        if outputSE is not None and outputSE != [] and outputSE != "":
            output_se = tuple(se.strip() for se in _string_list("outputSE", outputSE))
        if not isinstance(outputPath, str):
            raise bad_argument("outputPath", outputPath, "a string")
        path = outputPath.lstrip("/")
        if outputPath and not path:
            raise bad_argument("outputPath", outputPath, "a path relative to the user's home")
        data = self._jdl_strings("OutputData", items)
        se = self._jdl_strings("OutputSE", output_se) if output_se else None
        if path:
            check_value("OutputPath", path)
            check_xml_value("OutputPath", path)
        self._set("OutputData", "JDL", data, "List of output data files")
        if se is not None:
            self._set("OutputSE", "JDL", se, "User specified Output SE")
        if path:
            self._set("OutputPath", "JDL", path, "User specified Output Path")
        return S_OK()

    def setParameterSequence(
        self,
        name: str,
        parameterList: Sequence[str | int | float],
        addToWorkflow: bool | str = False,
    ) -> DiracResult:
        """Define a parameter sequence: one concrete job per value, ``%(name)s`` substituted.

        As in DIRAC, ``<name> = %(name)s`` is added to the JDL (or replaces a JDL attribute of
        that name; for ``InputSandbox`` the value is appended), and ``addToWorkflow`` adds
        ``-p <name or addToWorkflow>=%(name)s`` to the job's command line. Redefining a sequence
        replaces it.

        Raises:
            JobDescriptionError: a bad name, an empty list, a value that is not str/int/float.
            ParametricError: a length different from the other sequences.
            UnsafeValueError: a value that cannot reach every job unchanged (whitespace, ``,``
                ``"`` ``'`` ``;`` ``[`` ``]`` ``{`` ``}``, placeholders).

        Usage: ``job.setParameterSequence("seed", [11, 22, 33], addToWorkflow=True)``
        """
        if not isinstance(name, str) or not _SEQUENCE_NAME.match(name):
            raise bad_argument("name", name, "an identifier: letters, digits and '_'")
        if (
            name.startswith(("Parameter", "aiodirac"))
            or name in _RESERVED_SEQUENCES
            or name in _WORKFLOW_PARAMETERS
        ):
            raise bad_argument(
                "name",
                name,
                "a name that is not Executable, Arguments, a workflow parameter, nor starts with "
                "'Parameter' or 'aiodirac' (DIRAC or aiodirac use those)",
            )
        if isinstance(parameterList, str) or not isinstance(parameterList, Sequence | range):
            raise bad_argument("parameterList", parameterList, "a list of values")
        if len(parameterList) == 0:
            raise ParametricError(
                f"parameterList for {name!r} is empty: a parametric job needs at least one value",
                attribute="parameterList",
                value=parameterList,
            )
        values: list[str] = []
        for value in parameterList:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise bad_argument("parameterList", value, "str, int or float values")
            text = str(value)
            check_parameter_value(name, text)
            check_xml_value(f"Parameters.{name}", text)
            values.append(text)
        others = {n: len(v) for n, v in self._sequences.items() if n != name}
        if others and len(values) not in others.values():
            raise ParametricError(
                f"parameterList for {name!r} has {len(values)} values but the other sequences "
                f"have {next(iter(others.values()))} ({', '.join(others)}): "
                "all sequences of a job must have the same length",
                attribute="parameterList",
                value=parameterList,
            )
        wf_name = ""
        if addToWorkflow:
            wf_name = addToWorkflow if isinstance(addToWorkflow, str) else name
            if not _SEQUENCE_NAME.match(wf_name) or wf_name == "arguments":
                raise bad_argument(
                    "addToWorkflow", addToWorkflow, "True/False or a workflow parameter identifier"
                )
            for text in values:
                _shell_word(f"Parameters.{name}", text)
                if "=" in text:
                    raise UnsafeValueError(
                        f"Parameters.{name}: {text!r} holds '=', which dirac-jobexec cannot read "
                        "in a -p name=value option",
                        attribute=f"Parameters.{name}",
                        value=text,
                        character="=",
                    )
        if name == "InputSandbox":
            local = [v for v in values if not v.startswith(_REMOTE)]
            if local:
                raise bad_argument(
                    "parameterList",
                    local[0],
                    "LFN: or SB: entries for a parametric InputSandbox (per-job local files "
                    "are not supported: put them in setInputSandbox)",
                )
        self._cache = None
        self._sequences[name] = tuple(values)
        self._wf_arguments.pop(name, None)
        if wf_name:
            self._wf_arguments[name] = wf_name
        return S_OK()

    def setDestination(self, destination: str | Sequence[str]) -> DiracResult:
        """Set the sites the job may run at (``Site``); ``ANY`` or empty means anywhere.

        As in DIRAC a string is split on commas (spaces removed). Unlike DIRAC, the order is
        kept and sites are not checked against the configuration (there is none here).

        Raises:
            JobDescriptionError, UnsafeValueError: bad types or characters.

        Usage: ``job.setDestination(["LCG.CERN.cern", "LCG.CNAF.it"])``
        """
        if isinstance(destination, str):
            items: tuple[str, ...] = tuple(destination.replace(" ", "").split(","))
        else:
            items = _string_list("destination", destination, allow_str=False)
        sites = unique([s for s in items if s.lower() not in ("any", "")])
        if sites:
            description = (
                "User specified destination site"
                if isinstance(destination, str)
                else "List of sites selected by user"
            )
            self._set("Site", "JDL", self._jdl_strings("Site", sites), description)
        return S_OK()

    def setBannedSites(self, sites: str | Sequence[str]) -> DiracResult:
        """Set sites the job must not run at (``BannedSites``).

        Usage: ``job.setBannedSites(["LCG.GRIDKA.de"])``
        """
        items = _string_list("sites", sites)
        self._set(
            "BannedSites",
            "JDL",
            self._jdl_strings("BannedSites", items),
            "List of sites excluded by user",
        )
        return S_OK()

    def setPlatform(self, platform: str) -> DiracResult:
        """Set the target platform (``Platform``); ``ANY`` (any case) sets nothing, as in DIRAC.

        Not checked against the configuration's OS compatibility list (there is none here).

        Usage: ``job.setPlatform("Linux_x86_64_glibc-2.17")``
        """
        value = self._scalar("Platform", "platform", platform)
        if not value:
            raise bad_argument("platform", platform, "a platform name or 'ANY'")
        if value.lower() != "any":
            check_item("Platform", value)
            self._set("Platform", "JDL", value, "Platform ( Operating System )")
        return S_OK()

    def setTag(self, tags: str | Sequence[str]) -> DiracResult:
        """Set the job's required tags (``Tags``).

        Usage: ``job.setTag(["GPU", "MultiProcessor"])``
        """
        items = _string_list("tags", tags)
        self._set("Tags", "JDL", self._jdl_strings("Tags", items), "User specified job tags")
        return S_OK()

    def setNumberOfProcessors(
        self,
        numberOfProcessors: int | None = None,
        minNumberOfProcessors: int | None = None,
        maxNumberOfProcessors: int | None = None,
    ) -> DiracResult:
        """Set the number of processors, exactly or as a range (DIRAC's rules).

        Raises:
            JobDescriptionError: a value that is not a positive int.

        Usage: ``job.setNumberOfProcessors(minNumberOfProcessors=2, maxNumberOfProcessors=8)``
        """
        for argument, value in (
            ("numberOfProcessors", numberOfProcessors),
            ("minNumberOfProcessors", minNumberOfProcessors),
            ("maxNumberOfProcessors", maxNumberOfProcessors),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise bad_argument(argument, value, "None or an int >= 1")
        exact = "Exact number of processors requested"
        most = "Max Number of processors the job applications may use"
        if numberOfProcessors:
            n_proc = max(numberOfProcessors, minNumberOfProcessors or 0)
            if n_proc > 1:
                self._set("NumberOfProcessors", "JDL", n_proc, exact)
                self._set("MaxNumberOfProcessors", "JDL", n_proc, most)
            return S_OK()
        low, high = minNumberOfProcessors, maxNumberOfProcessors
        if high and not low:
            low = 1
        if low and high and low >= high:
            low = high
        if low and high and low == high and low > 1:
            self._set("NumberOfProcessors", "JDL", low, exact)
            self._set("MaxNumberOfProcessors", "JDL", low, most)
            return S_OK()
        if low:
            self._set(
                "MinNumberOfProcessors",
                "JDL",
                low,
                "Min Number of processors the job applications may use",
            )
        if high:
            self._set("MaxNumberOfProcessors", "JDL", high, most)
        return S_OK()

    def setRAMRequirements(self, ramRequired: int = 0, maxRAM: int = 0) -> DiracResult:
        """Set the RAM needed (``MinRAM``) and the most the job may use (``MaxRAM``), in MB.

        DIRAC returns None on success; this returns ``S_OK()`` like the other setters.

        Raises:
            JobDescriptionError: not ints >= 0, or ``maxRAM`` below ``ramRequired``.

        Usage: ``job.setRAMRequirements(ramRequired=2000, maxRAM=4000)``
        """
        for argument, value in (("ramRequired", ramRequired), ("maxRAM", maxRAM)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise bad_argument(argument, value, "an int >= 0 (MB)")
        if maxRAM and ramRequired > maxRAM:
            raise bad_argument("maxRAM", maxRAM, f"0 or at least ramRequired ({ramRequired})")
        if ramRequired:
            self._set("MinRAM", "JDL", ramRequired, "MBs of RAM requested")
        if maxRAM:
            self._set("MaxRAM", "JDL", maxRAM, "Max MBs of RAM to be used")
        return S_OK()

    def setPriority(self, priority: int) -> DiracResult:
        """Set the job's priority among the owner's jobs (``Priority``, default 1).

        Raises:
            JobDescriptionError: not an int.

        Usage: ``job.setPriority(5)``
        """
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise bad_argument("priority", priority, "an int")
        self._set("Priority", "JDL", priority, "User Job Priority")
        return S_OK()

    def setJobGroup(self, jobGroup: str) -> DiracResult:
        """Set the job group (``JobGroup``); an empty string sets none, as in DIRAC.

        Usage: ``job.setJobGroup("calibration")``
        """
        value = self._scalar("JobGroup", "jobGroup", jobGroup)
        self._set("JobGroup", "JDL", value, "User specified job group")
        return S_OK()

    def setLogLevel(self, logLevel: str) -> DiracResult:
        """Set DIRAC's log level on the worker node (``LogLevel`` and ``-o LogLevel=``).

        Raises:
            JobDescriptionError: not one of DIRAC's level names (any case).

        Usage: ``job.setLogLevel("debug")``
        """
        if not isinstance(logLevel, str) or logLevel.upper() not in LOG_LEVELS:
            raise bad_argument(
                "logLevel", logLevel, f"one of {', '.join(sorted(LOG_LEVELS))} (any case)"
            )
        self._set("LogLevel", "JDL", logLevel, "User specified logging level")
        return S_OK()

    def setType(self, jobType: str) -> DiracResult:
        """Set the job type (``JobType``, default ``User``).

        Usage: ``job.setType("User")``
        """
        value = self._scalar("JobType", "jobType", jobType)
        if not value:
            raise bad_argument("jobType", jobType, "a non-empty job type")
        self._set("JobType", "JDL", value, "User specified type")
        return S_OK()

    def setExecutionEnv(self, environmentDict: Mapping[str, object]) -> DiracResult:
        """Set environment variables for the job (``ExecutionEnvironment``).

        Values are URL-quoted as in DIRAC (``KEY=quote(str(value))``).

        Raises:
            JobDescriptionError: not a mapping, or a key that is not a variable name.

        Usage: ``job.setExecutionEnv({"MYVAR": 3})``
        """
        from urllib.parse import quote

        if not isinstance(environmentDict, Mapping):
            raise bad_argument(
                "environmentDict", environmentDict, "a dict of variable names to values"
            )
        entries = []
        for key, value in environmentDict.items():
            if not isinstance(key, str) or not _SEQUENCE_NAME.match(key):
                raise bad_argument(
                    "environmentDict", key, "variable names of letters, digits and '_'"
                )
            entries.append(f"{key}={quote(str(value))}")
        if entries:
            self._set(
                "ExecutionEnvironment",
                "JDL",
                self._jdl_strings("ExecutionEnvironment", tuple(entries)),
                "Env vars specified by user",
            )
        return S_OK()

    def setConfigArgs(self, cfgString: str) -> DiracResult:
        """Pass configuration settings to the job (``JobConfigArgs`` and ``--cfg`` on the command line).

        Raises:
            UnsafeValueError: a character other than letters, digits and ``_ . / : = @ + % , -``
                (the value is pasted unquoted into the worker node's shell command).

        Usage: ``job.setConfigArgs("/LocalSite/Site=Foo")``
        """
        value = self._scalar("JobConfigArgs", "cfgString", cfgString)
        if value:
            _shell_word("JobConfigArgs", value)
        self._set("JobConfigArgs", "JDL", value, "User specified cfg settings")
        return S_OK()

    def setOwner(self, ownerProvided: str) -> DiracResult:
        """Set the expected owner (``Owner``); the server checks it against the token.

        Usage: ``job.setOwner("alice")``
        """
        value = self._scalar("Owner", "ownerProvided", ownerProvided)
        self._set("Owner", "JDL", value, "User specified ID")
        return S_OK()

    def setOwnerGroup(self, ownerGroup: str) -> DiracResult:
        """Set the expected owner group (``OwnerGroup``).

        Usage: ``job.setOwnerGroup("dirac_user")``
        """
        value = self._scalar("OwnerGroup", "ownerGroup", ownerGroup)
        self._set("OwnerGroup", "JDL", value, "User specified owner group.")
        return S_OK()

    def _addJDLParameter(self, name: str, value: str | int) -> DiracResult:
        """Add an arbitrary JDL attribute; as in DIRAC a string holding ``;`` becomes a list.

        Raises:
            JobDescriptionError, UnsafeValueError: a bad name or value.

        Usage: ``job._addJDLParameter("MyExtra", "value")``
        """
        check_name(name)
        if name.startswith("Parameter") or name in ("Executable", "Arguments"):
            raise bad_argument("name", name, "an attribute the job does not compute itself")
        stored: JDLValue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise bad_argument("value", value, "a string or an int")
        if isinstance(value, str) and ";" in value:
            stored = self._jdl_strings(name, tuple(value.split(";")))
        elif isinstance(value, str):
            stored = self._scalar(name, "value", value)
        else:
            stored = value
        self._set(name, "JDL", stored, "Optional JDL parameter added")
        return S_OK()
