"""``python -m aiodirac.cli``: the same as the ``aiodirac`` command."""

from __future__ import annotations

from . import main

raise SystemExit(main())
