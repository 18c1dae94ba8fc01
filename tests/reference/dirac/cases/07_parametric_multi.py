# Parametric job: several sequences, numeric values, addToWorkflow, a sequence named
# like a JDL attribute (InputData / InputSandbox), %n in the name.
from DIRAC.Interfaces.API.Job import Job

j = Job()
j.setName("multi_%n")
j.setExecutable("/bin/echo", arguments="%(args)s seed=%(seed)s")
j.setInputSandbox(["input1.txt"])
j.setInputData(["/myvo/data/common.dst"])
j.setParameterSequence("args", ["a", "b", "c", "d"])
j.setParameterSequence("seed", [11, 22, 33, 44], addToWorkflow=True)
j.setParameterSequence("energy", [1.5, 2.5, 3.5, 4.5], addToWorkflow="BeamEnergy")
j.setParameterSequence(
    "InputData",
    ["/myvo/data/p0.dst", "/myvo/data/p1.dst", "/myvo/data/p2.dst", "/myvo/data/p3.dst"],
)
j.setParameterSequence(
    "InputSandbox",
    ["LFN:/myvo/in/0.tgz", "LFN:/myvo/in/1.tgz", "LFN:/myvo/in/2.tgz", "LFN:/myvo/in/3.tgz"],
)
