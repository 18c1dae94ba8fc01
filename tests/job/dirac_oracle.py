"""Run DIRAC's own JDL code (DIRACCommon 9.1, as DiracX 0.7.0 uses it) on JDL texts.

Executed with the DiracX venv's python by the tests (never imported by aiodirac): reads a JSON
list of requests on stdin, writes a JSON list of answers on stdout. Each request is
``{"op": ..., "jdl": ...}``:

- ``classad``: ``ClassAd`` parse; per attribute the raw expression, ``getAttributeString``,
  ``getListFromExpression`` and ``isAttributeList``.
- ``cfg``: ``loadJDLAsCFG``; the CFG options as strings.
- ``expand``: ``generateParametricJobs``; the concrete JDL texts.
- ``server``: what DiracX 0.7.0's ``submit_jdl_jobs``/``create_jdl_jobs`` store for each job:
  parametric expansion, ``checkAndAddOwner`` (``loadJDLAsCFG`` + ``dumpCFGAsJDL``), ``%j``
  replaced by a fake job ID, ``ClassAd`` again; per job and attribute the value a reader gets
  (``getListFromExpression`` for lists, ``getAttributeString`` otherwise), and the stored JDL.
"""

import json
import sys

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd
from DIRACCommon.Core.Utilities.JDL import loadJDLAsCFG
from DIRACCommon.WorkloadManagementSystem.DB.JobDBUtils import checkAndAddOwner
from DIRACCommon.WorkloadManagementSystem.Utilities.ParametricJob import (
    generateParametricJobs,
    getParameterVectorLength,
)

MANIFEST_CONFIG = {
    "defaultForGroup": {"CPUTime": 86400, "Priority": 1},
    "minForGroup": {"CPUTime": 0, "Priority": 0},
    "maxForGroup": {"CPUTime": 10**9, "Priority": 10},
    "allowedJobTypesForGroup": ["User", "Test"],
    "maxInputData": 10000,
}


def bracketed(jdl):
    jdl = jdl.strip()
    return jdl if jdl.startswith("[") and jdl.endswith("]") else f"[{jdl}]"


def read_classad(ad):
    out = {}
    for name in ad.getAttributes():
        out[name] = {
            "raw": ad.get_expression(name),
            "string": ad.getAttributeString(name),
            "list": ad.getListFromExpression(name),
            "isList": bool(ad.isAttributeList(name)),
        }
    return out


def cfg_dict(cfg):
    return {key: cfg[key] for key in cfg.listOptions()}


def server(jdl):
    jdl = bracketed(jdl)
    ad = ClassAd(jdl)
    length = getParameterVectorLength(ad)
    if not length["OK"]:
        return {"OK": False, "Message": str(length["Message"])}
    if length["Value"]:
        result = generateParametricJobs(ad)
        if not result["OK"]:
            return {"OK": False, "Message": str(result["Message"])}
        texts = result["Value"]
    else:
        texts = [jdl]
    jobs = []
    for job_id, text in enumerate(texts, start=1000):
        manifest = checkAndAddOwner(text, "owner", "group", job_manifest_config=MANIFEST_CONFIG)
        if not manifest["OK"]:
            return {"OK": False, "Message": str(manifest["Message"])}
        dumped = manifest["Value"].dumpAsJDL().replace("%j", str(job_id))
        stored = ClassAd(dumped)
        if not stored.isOK():
            return {"OK": False, "Message": "ClassAd rejected the manifest"}
        values = {}
        for name in stored.getAttributes():
            if stored.isAttributeList(name):
                values[name] = stored.getListFromExpression(name)
            else:
                values[name] = stored.getAttributeString(name)
        jobs.append({"expanded": text, "values": values, "stored": stored.asJDL()})
    return {"OK": True, "jobs": jobs}


def answer(request):
    op, jdl = request["op"], request["jdl"]
    try:
        if op == "classad":
            return {"OK": True, "value": read_classad(ClassAd(bracketed(jdl)))}
        if op == "cfg":
            result = loadJDLAsCFG(bracketed(jdl))
            if not result["OK"]:
                return {"OK": False, "Message": str(result["Message"])}
            return {"OK": True, "value": cfg_dict(result["Value"][0])}
        if op == "expand":
            result = generateParametricJobs(ClassAd(bracketed(jdl)))
            if not result["OK"]:
                return {"OK": False, "Message": str(result["Message"])}
            return {"OK": True, "value": result["Value"]}
        if op == "server":
            return server(jdl)
    except Exception as exc:  # noqa: BLE001 - the tests want DIRAC's failure, whatever it is
        return {"OK": False, "Message": f"{type(exc).__name__}: {exc}"}
    return {"OK": False, "Message": f"unknown op {op}"}


if __name__ == "__main__":
    json.dump([answer(r) for r in json.load(sys.stdin)], sys.stdout)
