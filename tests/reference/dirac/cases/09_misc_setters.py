# Processor ranges, RAM, execution environment, config args, owner, extra JDL params,
# comma-separated destination string, 'ANY' platform.
from DIRAC.Interfaces.API.Job import Job

j = Job(stdout="my.out", stderr="my.err")
j.setName("misc")
j.setExecutable("/bin/env")
j.setNumberOfProcessors(minNumberOfProcessors=2, maxNumberOfProcessors=8)
j.setRAMRequirements(ramRequired=2000, maxRAM=4000)
j.setExecutionEnv({"MYVAR": 3, "PATHLIKE": "/a b/c;d", "QUOTE": 'x"y'})
j.setConfigArgs("/LocalSite/Site=Foo")
j.setOwner("someuser")
j.setOwnerGroup("somevo_user")
j.setDestination("LCG.CERN.cern, LCG.RAL.uk")
j.setPlatform("ANY")
j._addJDLParameter("MyExtra", "extra-value")
j._addJDLParameter("MyList", "v1;v2")
