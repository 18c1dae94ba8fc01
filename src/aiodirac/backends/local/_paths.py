"""Where the local backend keeps its state, and the DIRAC-style name of this machine.

Layout of the state folder (``AIODIRAC_HOME``, default ``$XDG_DATA_HOME/aiodirac``)::

    jobs.sqlite          the job store (SQLite, WAL)
    agent.lock           held (flock) by the one running agent
    agent.pid            its process ID, for humans and ``kill``
    agent.log            what the agent prints (its stdout and stderr)
    sandboxes/<chunk>/   input sandboxes, copied at submit time, one folder per chunk
    output/<job>.<attempt>.tar.bz2   output sandboxes (a rescheduled job runs as a new attempt)
    work/<job>.<attempt>/            working folders of running jobs (kept with keep_workdirs)
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_IDLE_TIMEOUT", "StatePaths", "default_home", "local_site_name"]

#: Seconds an agent with nothing to do waits before it exits.
DEFAULT_IDLE_TIMEOUT = 60.0


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """The state folder used when none is given.

    ``$AIODIRAC_HOME`` if set, else ``$XDG_DATA_HOME/aiodirac``, else ``~/.local/share/aiodirac``.

    Usage: ``home = default_home()``
    """
    env = os.environ if environ is None else environ
    explicit = env.get("AIODIRAC_HOME")
    if explicit:
        return Path(explicit).expanduser()
    data = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "aiodirac"


def local_site_name(hostname: str | None = None) -> str:
    """The DIRAC site name of this machine: ``DIRAC.<short host name>.local``.

    DIRAC names sites ``<grid>.<site>.<country>`` (``LCG.CERN.ch``); a standalone DIRAC
    installation calls itself ``DIRAC.<name>.local``, which is what jobs run here report.

    Usage: ``local_site_name("vm.example.org")`` -> ``"DIRAC.vm.local"``
    """
    host = hostname if hostname is not None else socket.gethostname()
    short = re.sub(r"[^A-Za-z0-9-]", "-", host.split(".")[0]) or "localhost"
    return f"DIRAC.{short}.local"


@dataclass(frozen=True, slots=True)
class StatePaths:
    """The files and folders of one state folder.

    Usage: ``paths = StatePaths(Path("/tmp/home")); paths.store``
    """

    home: Path

    @property
    def store(self) -> Path:
        """The SQLite job store."""
        return self.home / "jobs.sqlite"

    @property
    def lock(self) -> Path:
        """The agent's lock file (held with ``flock`` while an agent runs)."""
        return self.home / "agent.lock"

    @property
    def pid(self) -> Path:
        """The running agent's process ID."""
        return self.home / "agent.pid"

    @property
    def log(self) -> Path:
        """The agent's log (its stdout and stderr)."""
        return self.home / "agent.log"

    @property
    def sandboxes(self) -> Path:
        """Input sandboxes, one folder per submitted chunk."""
        return self.home / "sandboxes"

    @property
    def output(self) -> Path:
        """Output sandbox archives, one per job."""
        return self.home / "output"

    @property
    def work(self) -> Path:
        """Working folders of running jobs."""
        return self.home / "work"

    def output_archive(self, job_id: int, attempt: int | None = None) -> Path:
        """The output sandbox archive of a job's run ``attempt`` (``<id>.<attempt>.tar.bz2``)."""
        name = str(job_id) if attempt is None else f"{job_id}.{attempt}"
        return self.output / f"{name}.tar.bz2"

    def workdir(self, job_id: int, attempt: int | None = None) -> Path:
        """The working folder of a job's run ``attempt`` (``work/<id>.<attempt>``)."""
        return self.work / (str(job_id) if attempt is None else f"{job_id}.{attempt}")
