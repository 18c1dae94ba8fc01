#!/usr/bin/env bash
# Make docs/guide/img/report.png: the top of the HTML report of a synthetic campaign of 10,000
# jobs (aiodirac.testing.synthetic_report_data, 5% retried), as headless Chromium shows it.
#
#   bash scripts/report_screenshot.sh [HEIGHT]     # pixels of the page to keep (default 1900)
set -euo pipefail
cd "$(dirname "$0")/.."
height=${1:-1900}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python - "$work/report.html" <<'PY'
import sys
from aiodirac import write_report
from aiodirac.testing import synthetic_report_data
write_report(synthetic_report_data(10_000, retried=0.05), sys.argv[1])
PY
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --hide-scrollbars --window-size="1100,$height" \
    --screenshot="$PWD/docs/guide/img/report.png" "file://$work/report.html" 2>/dev/null
echo "docs/guide/img/report.png: $(stat -c %s docs/guide/img/report.png) bytes"
