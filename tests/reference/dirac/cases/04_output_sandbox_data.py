# setOutputSandbox with patterns, setOutputData with SE and path, setInputData with LFNs.
from DIRAC.Interfaces.API.Job import Job

j = Job()
j.setName("outputs")
j.setExecutable("/bin/echo", arguments="produce", logFile="produce.log")
j.setOutputSandbox(["*.log", "result_*.root", "summary.txt"])
j.setOutputData(
    ["out1.root", "out2.root", "LFN:/myvo/user/u/username/out3.root"],
    outputSE=["CERN-USER", " RAL-USER "],
    outputPath="//myproject/run1",
)
j.setInputData(["/myvo/data/2024/f1.dst", "LFN:/myvo/data/2024/f2.dst", "/myvo/data/2024/f3.dst"])
