#!/usr/bin/env bash
# Ctrl-C of every long-running command, many times in a row (not run in CI: about 15 s a round).
#
# Runs tests/cli/test_cli_ctrl_c.py with AIODIRAC_CTRL_C_ROUNDS rounds (default 50): each round
# interrupts watch, campaign run, campaign resume, output and a 20,000-job submit with SIGINT
# once they are under way, and checks one line, exit 130, no traceback, no process left.
# Prints the passes per command and the slowest exits after SIGINT.
#
#   bash scripts/sigint_loop.sh                # 50 rounds
#   bash scripts/sigint_loop.sh 5              # 5 rounds
#   bash scripts/sigint_loop.sh 50 -k output   # further arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-50}
shift || true
[ -x .venv/bin/python ] || { echo "run bash scripts/test.sh once first (it makes .venv)" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
set +e
AIODIRAC_CTRL_C_ROUNDS=$ROUNDS AIODIRAC_CTRL_C_TIMES=$log .venv/bin/python -m pytest -q \
    -p no:randomly -p no:cacheprovider -o addopts="" tests/cli/test_cli_ctrl_c.py -rf "$@" | tail -n 25
status=${PIPESTATUS[0]}
set -e
echo
echo "== $ROUNDS rounds in $(( $(date +%s) - start )) s (load: $(cut -d' ' -f1-3 /proc/loadavg)) =="
.venv/bin/python - "$log" "$ROUNDS" <<'PY'
import collections, sys
rounds = int(sys.argv[2])
times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, took = line.split()
    times[name].append(float(took))
for name in sorted(times):
    t = sorted(times[name])
    print(f"{name:16} {len(t):3} passed of {rounds}   exit after SIGINT: "
          f"median {t[len(t) // 2] * 1000:.0f} ms, max {t[-1] * 1000:.0f} ms, "
          f"over 1 s: {sum(x > 1 for x in t)}")
PY
exit "$status"
