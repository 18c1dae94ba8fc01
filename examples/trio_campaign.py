"""The same campaign as ``campaign_10k.py``, run under trio instead of asyncio.

aiodirac is written against anyio, so nothing in the library changes: only the event loop does.

    python examples/trio_campaign.py --jobs 1000

(``pip install trio``; ``AIODIRAC_EXAMPLE_JOBS`` sets the default size, as for campaign_10k.py.)
"""

from __future__ import annotations

import sys
from functools import partial

import trio
from campaign_10k import parse_args, run_campaign  # the example beside this one


def main() -> int:
    args = parse_args()
    journal = args.journal.with_name("trio_" + args.journal.name)
    return trio.run(partial(run_campaign, args.jobs, journal.absolute(), args.dest))


if __name__ == "__main__":
    sys.exit(main())
