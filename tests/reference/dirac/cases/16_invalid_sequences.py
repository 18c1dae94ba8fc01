# Parameter sequences of different lengths and other odd sequences.
from DIRAC.Interfaces.API.Job import Job

j = Job()
j.setName("bad-seq")
j.setExecutable("/bin/echo", arguments="%(a)s %(b)s")
j.setParameterSequence("a", [1, 2, 3])
j.setParameterSequence("b", [1, 2])  # different length -> S_ERROR
j.setParameterSequence("c", ["x", "y", "z"])  # OK
j.setParameterSequence("a", ["p", "q", "r"])  # redefinition, same length -> silently replaces
