# The seed's monitoring script (DIRAC's "Status-API.py"), imports changed to aiodirac.
import sys

from aiodirac import Dirac, Job  # noqa: F401  (the seed imports Job too)

dirac = Dirac()
jobid = sys.argv[1]
print(dirac.status(jobid))
