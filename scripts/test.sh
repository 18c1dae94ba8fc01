#!/usr/bin/env bash
# Install everything aiodirac's tests need on a fresh machine, then run the whole suite:
# lint (ruff), formatting, types (mypy --strict on src/), the docs build, and every test,
# including the integration tests against a real DiracX server shaped like production (MariaDB,
# several workers, nginx terminating TLS: scripts/diracx_prod.sh installs it, with apt-get for
# mariadb-server and nginx-light when they are missing, and the test session starts it once).
# AIODIRAC_DIRACX_SERVER=testapp runs them against DiracX's one-process test app instead.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k local   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n== %s ==\n' "$*"; }

step "installing aiodirac and its test tools into .venv"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -e '.[test,cli,docs,examples]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import aiodirac, pytest, respx, hypothesis, matplotlib" \
    || { echo "installation failed" >&2; exit 1; }

step "Chromium for the report's browser tests (Debian packages, once)"
# tests/report/test_report_browser.py opens the HTML report in a real headless Chromium.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "${AIODIRAC_SKIP_BROWSER:-0}" = 1 ]; then
        echo "no Chromium; AIODIRAC_SKIP_BROWSER=1: the browser tests will be skipped"
    else
        apt=""
        if [ "$(id -u)" = 0 ]; then apt="apt-get"; elif sudo -n true 2>/dev/null; then apt="sudo -n apt-get"; fi
        if [ -z "$apt" ] || ! command -v apt-get >/dev/null 2>&1; then
            echo "Chromium is missing and cannot be installed here (needs apt-get as root)." >&2
            echo "Install it (apt-get install chromium chromium-driver fonts-dejavu-core)," >&2
            echo "or set AIODIRAC_SKIP_BROWSER=1 to skip the report's browser tests." >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        $apt update -q
        # DejaVu Sans is the font the report's charts name (matplotlib's SVG text).
        $apt install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core
    fi
fi
command -v chromium >/dev/null 2>&1 && chromium --version 2>/dev/null || true

step "installing DiracX (own venv, once) and the server's MariaDB and nginx"
if [ "${AIODIRAC_DIRACX_SERVER:-prod}" = testapp ]; then
  bash scripts/diracx.sh install
else
  bash scripts/diracx_prod.sh install
fi

step "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

step "mypy --strict src/"
.venv/bin/mypy

step "docs (mkdocs build --strict)"
.venv/bin/mkdocs build --strict --quiet --site-dir "$(mktemp -d)"

step "pytest"
.venv/bin/python -m pytest "$@"
