# The str (single value) forms of the list setters.
from DIRAC.Interfaces.API.Job import Job

j = Job()
j.setName("single")
j.setExecutable("/bin/true")
j.setInputSandbox("input1.txt")
j.setOutputSandbox("only.txt")
j.setInputData("/myvo/data/single.dst")
j.setOutputData("single_out.root", outputSE="CERN-USER")
j.setBannedSites("LCG.GRIDKA.de")
j.setTag("WholeNode")
