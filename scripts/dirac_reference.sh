#!/usr/bin/env bash
# Write tests/reference/dirac/ (what the job-layer tests check against) from the real DIRAC
# package: DIRAC 9.1.22's client API is installed in its own venv (not the project's: its
# dependencies are heavy and pinned), then scripts/_dirac_reference.py runs every reference case
# with it (see that file for what is regenerated and what is kept).
#
#   bash scripts/dirac_reference.sh           # rewrite the files (then review git diff)
#   bash scripts/dirac_reference.sh --check   # write nothing; exit 1 if a file differs
#
# The venv goes to $DIRAC_VENV (default ${TMPDIR:-/tmp}/aiodirac-dirac/venv). Installing takes a
# few minutes. A plain 'pip install dirac' fails without swig (M2Crypto is built from source) and
# gfal2's C headers; gfal2 is not needed for the Job API, so DIRAC is installed without its
# dependencies and then the ones the Job API imports.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DIRAC_VENV:-${TMPDIR:-/tmp}/aiodirac-dirac/venv}
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! "$VENV/bin/python" -c "import DIRAC.Interfaces.API.Job" 2>/dev/null; then
    echo "installing DIRAC 9.1.22 into $VENV" >&2
    if ! command -v swig >/dev/null; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && apt-get install -y -qq swig libssl-dev
        else
            sudo apt-get update -qq && sudo apt-get install -y -qq swig libssl-dev
        fi
    fi
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --no-deps dirac==9.1.22 diraccommon==9.1.22 diraccfg
    "$VENV/bin/pip" install -q typing_extensions importlib_metadata importlib_resources \
        cachetools diracx M2Crypto pyasn1 pyasn1-modules psutil pyparsing
    "$VENV/bin/python" -c "import DIRAC.Interfaces.API.Job" \
        || { echo "DIRAC's Job API does not import from $VENV" >&2; exit 1; }
fi

# DIRAC reads its configuration from $DIRAC_ROOT_PATH/etc/dirac.cfg; PYTHONHASHSEED=0 because
# DIRAC keeps some setters' values in sets.
# DIRAC logs its warnings on stdout ("Job description XML file not found" for every case): they
# are filtered out.
set +o pipefail
DIRAC_ROOT_PATH="$PWD/tests/reference/dirac/diracroot" PYTHONHASHSEED=0 PATH="$VENV/bin:$PATH" \
    "$VENV/bin/python" scripts/_dirac_reference.py tests/reference/dirac "$@" \
    | grep -v -e ' WARN: ' -e ' ERROR: ' -e '^$'
exit "${PIPESTATUS[0]}"
