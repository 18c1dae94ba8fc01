# Parametric job: one parameter sequence, used in the arguments.
from DIRAC.Interfaces.API.Job import Job

j = Job()
j.setName("param-%n")
j.setExecutable("/bin/echo", arguments="value=%(args)s")
j.setParameterSequence("args", ["alpha", "beta", "gamma"])
