# Seed example from the DIRAC Job API docstring.
# NOTE: '/bin/hostname' exists on the reference machine, so DIRAC adds it to the
# InputSandbox and names its log 'Script2_hostname.log' (os.path.exists check).
from DIRAC.Interfaces.API.Job import Job

j = Job()
j.setCPUTime(500)
j.setExecutable("/bin/echo hello")
j.setExecutable("/bin/hostname")
j.setExecutable("/bin/echo hello again")
j.setName("API")
