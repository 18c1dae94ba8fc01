"""The ``aiodirac`` command line (installed with ``pip install 'aiodirac[cli]'``).

Only the entry point lives here; the commands are built on first use so that importing this
package, or asking ``aiodirac --help``, loads no backend, engine or HTTP code.

Usage: ``aiodirac --help``; from Python, ``aiodirac.cli.main(["status", "12"])``
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: the process arguments); return the exit code.

    Exit codes: 0 all done, 1 some jobs failed, 2 usage error, 3 service error, 130 interrupted.

    Usage: ``raise SystemExit(main())``
    """
    missing = [name for name in ("typer", "rich") if importlib.util.find_spec(name) is None]
    if missing:  # the library was installed without its [cli] extra
        sys.stderr.write(
            "aiodirac: the command line needs "
            + " and ".join(missing)
            + ": pip install 'aiodirac[cli]'\n"
        )
        return 2
    from ._interrupt import INTERRUPTED_STATUS, CtrlC, handle_ctrl_c

    # The process is ours (no argv given): Ctrl-C from here on is one line and status 130,
    # whatever runs (see _interrupt); called from Python, only the commands' bodies are guarded.
    process = argv is None
    with handle_ctrl_c() if process else contextlib.nullcontext(CtrlC()) as ctrl_c:
        from ._app import build_app

        command = build_app()
        args = list(sys.argv[1:] if argv is None else argv)
        try:
            command.main(args=args, prog_name="aiodirac", standalone_mode=True)
        except SystemExit as exc:
            code = exc.code
            if process and code == INTERRUPTED_STATUS and ctrl_c.interrupted:
                ctrl_c.exit_now()  # the process is ours: no slow teardown after Ctrl-C
            if code is None:
                return 0
            return code if isinstance(code, int) else 1
    return 0
