#!/usr/bin/env bash
# Install everything aiodirac's tests need on a fresh machine, then run the whole suite:
# lint (ruff), formatting, types (mypy --strict on src/), the docs build, and every test,
# including the integration tests against a real DiracX server (installed in its own venv by
# scripts/diracx.sh and started by the test session itself).
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
.venv/bin/python -c "import aiodirac, pytest, respx, hypothesis" \
    || { echo "installation failed" >&2; exit 1; }

step "installing DiracX (own venv, once)"
bash scripts/diracx.sh install

step "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

step "mypy --strict src/"
.venv/bin/mypy

step "docs (mkdocs build --strict)"
.venv/bin/mkdocs build --strict --quiet --site-dir "$(mktemp -d)"

step "pytest"
.venv/bin/python -m pytest "$@"
