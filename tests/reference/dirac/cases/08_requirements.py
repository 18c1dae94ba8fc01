# Scheduling/requirement setters. Sites and platforms must exist in the CS:
# the oracle uses the minimal offline dirac.cfg (diracroot/etc/dirac.cfg).
from DIRAC.Interfaces.API.Job import Job

j = Job()
j.setName("requirements")
j.setExecutable("/bin/echo", arguments="%(args)s")
j.setParameterSequence("args", ["x", "y"])
j.setCPUTime(3600)
j.setNumberOfProcessors(4)
j.setTag(["GPU", "MultiProcessor"])
j.setDestination(["LCG.CERN.cern", "LCG.CNAF.it"])
j.setBannedSites(["LCG.GRIDKA.de", "LCG.RAL.uk"])
j.setPlatform("Linux_x86_64_glibc-2.17")
j.setPriority(5)
j.setJobGroup("my_group")
j.setLogLevel("debug")
j.setType("Test")
