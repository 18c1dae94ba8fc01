# The seed's output script (DIRAC's "Output-API.py"), imports changed to aiodirac.
# Creates ./<jobid>/ with the job's output files.
import sys

from aiodirac import Dirac, Job  # noqa: F401  (the seed imports Job too)

dirac = Dirac()
jobid = sys.argv[1]
print(dirac.getOutputSandbox(jobid))
