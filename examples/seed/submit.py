# The seed's submission script (DIRAC's "testAPI-Submission.py"), imports changed to aiodirac.
# Runs on the embedded local backend unless DIRACX_URL (or AIODIRAC_BACKEND) says otherwise.
from aiodirac import Dirac, Job

dirac = Dirac()
j = Job()

j.setCPUTime(500)
j.setExecutable("/bin/echo hello")
j.setExecutable("/bin/hostname")
j.setExecutable("/bin/echo hello again")
j.setName("API")

jobID = dirac.submitJob(j)
print("Submission Result: ", jobID)
