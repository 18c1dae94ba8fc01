# Executable with arguments and explicit log file names; a local script
# (myscript.sh exists in the working directory) and a non-local one.
from DIRAC.Interfaces.API.Job import Job

j = Job()
j.setName("exe-args-log")
j.setExecutable("myscript.sh", arguments="-n 5 --verbose input1.txt", logFile="myscript.log")
j.setExecutable("/usr/bin/env", arguments='python3 -c "print(42)"', logFile="python.log")
j.setExecutable("echo", arguments="no log file given")
j.setExecutable("myscript.sh", arguments="again", includeInSandbox=False)
