"""Write tests/reference/dirac/ from the real DIRAC package (run by scripts/dirac_reference.sh).

Runs with the python of a venv holding DIRAC 9.1.22 (never imported by aiodirac or its tests).
For each ``cases/NAME.py`` (a script using DIRAC's Job API that leaves its job in ``j``), run in a
scratch folder holding the files the cases name, with ``PYTHONHASHSEED=0``, it writes:

- ``NAME.jdl`` (``j._toJDL()``), ``NAME.jdl.second_call`` (a second call, when it differs),
  ``NAME.xml`` (the workflow, ``j.workflow.toXML()``);
- in ``NAME.calls.json``: ``calls``, each setter call with its return value, and ``toJDL``,
  ``toJDL_second_call_identical``, ``dirac_version``;
- in ``NAME.parsed.json``: how DIRAC's parsers read the JDL back (``ClassAdLight``,
  ``loadJDLAsCFG``) and how the server expands a parametric one (``getParameterVectorLength``,
  ``generateParametricJobs``);

and in ``status_model.md`` the transition matrix, from ``JobsStateMachine``. The other keys of
the JSON files and the other files (``NAME.submit.jdl``, ``NAME.wire.jdl``, what
``Dirac().submitJob`` sends, which needs a DIRAC server to capture) are kept as they are.

Usage: ``python _dirac_reference.py REFERENCE_DIR [--check]`` (``--check``: write nothing, list
what differs, exit 1 if anything does).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

#: The files DIRAC's reference scripts run beside (tests/job/_jobref.py: CASE_FILES).
CASE_FILES = ("input1.txt", "input2.dat", "a.cfg", "b.cfg", "myscript.sh", "libdir/mylib.py")
#: The Job methods whose calls are recorded.
SKIPPED = {"workflow", "stepCount", "addToInputSandbox", "addToOutputSandbox", "addToInputData"}


def plain(value: Any) -> Any:
    """A setter's return value as JSON (a workflow step by its name, type and short description)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "getName") and hasattr(value, "getType"):
        return {
            "name": value.getName(),
            "type": value.getType(),
            "descr_short": value.getDescrShort(),
        }
    return repr(value)


def without_call_stack(result: Any) -> Any:
    """An S_ERROR's CallStack names this machine's paths: only its length is kept."""
    if isinstance(result, dict) and isinstance(result.get("CallStack"), list):
        return {**result, "CallStack": f"<{len(result['CallStack'])} frames omitted>"}
    return result


def recording(job_class: type, calls: list[dict[str, Any]]) -> None:
    """Record every public setter call of ``job_class`` made by the case script."""
    for name in dir(job_class):
        if not name.startswith("set") or name in SKIPPED:
            continue
        method = getattr(job_class, name)

        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, __name: str = name, __method: Any = method, **kw: Any):
            outer = not getattr(self, "_recording", False)
            given = {
                "method": __name,
                "args": plain(args),
                "kwargs": plain(kw),
            }  # DIRAC edits lists
            self._recording = True
            try:
                result = __method(self, *args, **kw)
            finally:
                if outer:
                    self._recording = False
            if outer:
                calls.append({**given, "result": without_call_stack(plain(result))})
            return result

        setattr(job_class, name, wrapper)


def run_case(script: Path, scratch: Path) -> tuple[Any, list[dict[str, Any]]]:
    from DIRAC.Interfaces.API.Job import Job

    calls: list[dict[str, Any]] = []
    originals = {n: getattr(Job, n) for n in dir(Job) if n.startswith("set")}
    recording(Job, calls)
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        namespace: dict[str, Any] = {"__name__": "__main__"}
        exec(compile(script.read_text(), script.name, "exec"), namespace)  # noqa: S102
    finally:
        os.chdir(cwd)
        for name, method in originals.items():
            setattr(Job, name, method)
    return namespace["j"], calls


def read_classad(text: str) -> dict[str, Any]:
    from DIRAC.Core.Utilities.ClassAd.ClassAdLight import ClassAd

    ad = ClassAd(text)
    attributes = {}
    for name in ad.getAttributes():
        attributes[name] = {
            "raw": ad.get_expression(name),
            "isList": bool(ad.isAttributeList(name)),
            "getAttributeString": ad.getAttributeString(name),
            "getAttributeInt": ad.getAttributeInt(name),
            "getListFromExpression": ad.getListFromExpression(name),
        }
    return {
        "isOK": bool(ad.isOK()),
        "attribute_order": list(ad.getAttributes()),
        "attributes": attributes,
        "asJDL_roundtrip": ad.asJDL(),
    }


def parsed(jdl: str) -> dict[str, Any]:
    from DIRAC.Core.Utilities.JDL import loadJDLAsCFG
    from DIRAC.WorkloadManagementSystem.Utilities.ParametricJob import (
        generateParametricJobs,
        getParameterVectorLength,
    )

    text = f"[{jdl}]"
    found: dict[str, Any] = {"ClassAdLight": read_classad(text)}
    cfg = loadJDLAsCFG(text)
    if cfg["OK"]:
        value, end = cfg["Value"]
        found["loadJDLAsCFG"] = {
            "OK": True,
            "end_pos": end,
            "value": {key: value[key] for key in value.listOptions()},
        }
    else:
        found["loadJDLAsCFG"] = plain(cfg)
    from DIRAC.Core.Utilities.ClassAd.ClassAdLight import ClassAd

    found["getParameterVectorLength"] = plain(getParameterVectorLength(ClassAd(text)))
    if found["getParameterVectorLength"].get("Value"):
        found["generateParametricJobs"] = plain(generateParametricJobs(ClassAd(text)))
    return found


def status_matrix(columns: list[str]) -> list[str]:
    """The matrix rows, ``JobsStateMachine(row).getNextState(column)``, in the table's order.

    Raises:
        SystemExit: the table does not name exactly DIRAC's statuses.
    """
    from DIRAC.WorkloadManagementSystem.Client import JobStatus

    if sorted(columns) != sorted(JobStatus.JOB_STATES):
        raise SystemExit(f"status_model.md's columns {columns} are not {JobStatus.JOB_STATES}")
    rows = []
    for current in columns:
        cells = []
        for target in columns:
            answer = JobStatus.JobsStateMachine(current).getNextState(target)["Value"]
            cells.append("✓" if answer == target else answer)
        rows.append(f"| **{current}** | " + " | ".join(cells) + " |")
    return rows


def update_json(path: Path, values: dict[str, Any], check: bool, differences: list[str]) -> None:
    old = json.loads(path.read_text()) if path.exists() else {}
    new = {**old, **values}
    if new != old:
        changed = sorted(k for k in values if old.get(k) != values[k])
        differences.append(f"{path.name}: {', '.join(changed)}")
        if not check:
            path.write_text(json.dumps(new, indent=2, ensure_ascii=False) + "\n")


def update_text(path: Path, text: str, check: bool, differences: list[str]) -> None:
    if not path.exists() or path.read_text() != text:
        differences.append(path.name)
        if not check:
            path.write_text(text)


def main(argv: list[str]) -> int:
    import DIRAC

    reference = Path(argv[0]).resolve()
    check = "--check" in argv[1:]
    cases = reference / "cases"
    differences: list[str] = []
    for script in sorted(cases.glob("*.py")):
        name = script.stem
        with tempfile.TemporaryDirectory() as folder:
            scratch = Path(folder)
            for file in CASE_FILES:
                (scratch / file).parent.mkdir(parents=True, exist_ok=True)
                (scratch / file).write_text(f"{file}\n")
            job, calls = run_case(script, scratch)
            os.chdir(scratch)
            try:
                jdl = job._toJDL()
                again = job._toJDL()
                xml = job.workflow.toXML()
            finally:
                os.chdir(reference)
        update_text(cases / f"{name}.jdl", jdl, check, differences)
        if again != jdl:  # DIRAC adds to some attributes on each call
            update_text(cases / f"{name}.jdl.second_call", again, check, differences)
        update_text(cases / f"{name}.xml", xml, check, differences)
        update_json(
            cases / f"{name}.calls.json",
            {
                "dirac_version": DIRAC.version,
                "calls": calls,
                "toJDL": "NAME.jdl",
                "toJDL_second_call_identical": again == jdl,
            },
            check,
            differences,
        )
        update_json(cases / f"{name}.parsed.json", parsed(jdl), check, differences)
    model = reference / "status_model.md"
    lines = model.read_text().splitlines(keepends=True)
    header = next(line for i, line in enumerate(lines) if _in_matrix(lines, i) and "|" in line)
    columns = [c.strip() for c in header.strip().strip("|").split("|")][1:]
    rows = iter(status_matrix(columns))
    text = "".join(
        next(rows) + "\n"
        if line.startswith("| **") and "|---" not in line and _in_matrix(lines, i)
        else line
        for i, line in enumerate(lines)
    )
    update_text(model, text, check, differences)
    for difference in differences:
        print(("differs: " if check else "written: ") + difference)
    print(f"DIRAC {DIRAC.version}: {len(differences)} file(s) {'differ' if check else 'updated'}")
    return 1 if check and differences else 0


def _in_matrix(lines: list[str], index: int) -> bool:
    """Whether line ``index`` is a row of the transition matrix table."""
    for line in reversed(lines[:index]):
        if line.startswith("## "):
            return line.startswith("## Effective transition matrix")
    return False


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
