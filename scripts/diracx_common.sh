# Shared by scripts/diracx.sh (the one-process test app) and scripts/diracx_prod.sh (DiracX as
# production runs it): the pinned DiracX venv, the generated configuration and users, the token
# of localuser, and the small process helpers. Sourced, never run.
#
# The caller sets: DX_HOME, DX_VENV, DX_STATE, DX_PYTHON, LOG_TAG (and `set -euo pipefail`).

DIRACX_VERSION=0.7.0
HOST=127.0.0.1
PY="$DX_VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; }

# Every package of the venv pinned (the set DiracX 0.7.0 was verified with), so that a CI run
# months from now installs the same server.
constraints() {
  cat <<'EOF'
aiohappyeyeballs==2.7.1
aiohttp==3.14.5
aiomysql==0.3.2
aiosignal==1.4.0
aiosqlite==0.22.1
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
asgiref==3.13.0
attrs==26.1.0
azure-core==1.41.0
blinker==1.9.0
boto3==1.44.8
botocore==1.44.8
cachetools==8.0.2
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
click==8.5.1
croniter==7.0.0
cryptography==50.0.2
diraccfg==1.0.1
DIRACCommon==9.1.22
diracx-api==0.7.0
diracx-cli==0.7.0
diracx-client==0.7.0
diracx-core==0.7.0
diracx-db==0.7.0
diracx-logic==0.7.0
diracx-routers==0.7.0
diracx-tasks==0.7.0
diracx-testing==0.7.0
dnspython==2.9.2
email-validator==2.4.0
fastapi==0.141.1
Flask==3.1.3
flask-cors==6.0.5
frozenlist==1.8.0
gitdb==4.0.12
GitPython==3.2.1
greenlet==3.5.6
h11==0.16.0
httpcore==1.0.9
httpcore2==2.16.2
httpx==0.28.1
httpx2==2.16.2
idna==3.20
isodate==0.7.2
itsdangerous==2.2.0
Jinja2==3.1.6
jmespath==1.1.0
joserfc==1.8.0
MarkupSafe==3.0.4
moto==5.2.5
multidict==7.2.1
orjson==3.13.0
packaging==26.4
propcache==0.5.4
py-partiql-parser==0.6.3
pycparser==3.12
pydantic==2.14.4
pydantic-settings==2.16.3
pydantic_core==2.50.5
PyJWT==2.15.1
python-dateutil==2.9.0.post0
python-dotenv==1.2.4
python-multipart==0.0.34
PyYAML==6.0.4
requests==2.34.2
responses==0.26.3
s3transfer==0.19.3
six==1.17.0
smmap==5.0.3
SQLAlchemy==2.1.9
starlette==1.10.0
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
uuid_utils==1.2.0
uvicorn==0.54.0
Werkzeug==3.1.9
xmltodict==1.0.4
yarl==1.25.1
zstandard==0.25.0
EOF
}

installed() {
  [ -x "$DX_VENV/bin/uvicorn" ] && [ -x "$DX_VENV/bin/moto_server" ] && "$PY" - "$DIRACX_VERSION" 2>/dev/null <<'PYEOF'
import sys
from importlib.metadata import version
import aiomysql, diracx.testing.mock_osdb, diracx.testing.routers, diracx.routers, diracx.client, diracx.api, moto  # noqa: F401
sys.exit(0 if version("diracx-routers") == sys.argv[1] == version("diracx-client") else 1)
PYEOF
}

install_venv() {
  installed && return 0
  log "installing DiracX $DIRACX_VERSION + moto into $DX_VENV (1-2 min, ~320 MB)"
  local t0=$SECONDS cons
  [ -x "$PY" ] || "$DX_PYTHON" -m venv "$DX_VENV"
  cons=$(mktemp "${TMPDIR:-/tmp}/diracx-constraints.XXXXXX")
  constraints > "$cons"
  # pip's own cache stays inside DX_HOME so that nothing lands in the user's home
  # (pip's "Location ... is ignored" warnings about unreachable extra indexes are noise)
  if ! PIP_CACHE_DIR="$DX_HOME/.pip-cache" "$DX_VENV/bin/pip" install -q -c "$cons" \
      "diracx-routers==$DIRACX_VERSION" "diracx-testing==$DIRACX_VERSION" \
      "diracx-cli==$DIRACX_VERSION" "moto[s3]" flask flask-cors 2> >(grep -v "^WARNING: Location" >&2); then
    rm -f "$cons"; log "pip install failed"; exit 1
  fi
  rm -f "$cons"
  "$PY" -c "import diracx.testing.routers, diracx.routers, diracx.client, diracx.api, moto" \
    || { log "install incomplete: DiracX does not import"; exit 1; }
  installed || { log "install incomplete: the venv does not hold DiracX $DIRACX_VERSION"; exit 1; }
  log "installed in $((SECONDS - t0)) s"
}

alive() { [ -f "$DX_STATE/$1.pid" ] && kill -0 "$(cat "$DX_STATE/$1.pid")" 2>/dev/null; }

stop_pid() {  # stop_pid NAME SECONDS: SIGTERM the PID in $DX_STATE/NAME.pid, SIGKILL after SECONDS
  local name=$1 secs=$2 pid i
  [ -f "$DX_STATE/$name.pid" ] || return 0
  pid=$(cat "$DX_STATE/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 $((secs * 5))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in $secs s, SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$DX_STATE/$name.pid"
}

port_free() {
  "$PY" - "$1" <<'PYEOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no conflict
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PYEOF
}

free_port() {  # a port nobody listens on, for the servers behind the front
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

http_ok() {  # http_ok URL [CA]: exit 0 on a 200 answer
  "$PY" - "$@" <<'PYEOF'
import ssl, sys, urllib.request
context = ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv) > 2 else None
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2, context=context) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PYEOF
}

wait_for() {  # wait_for LABEL PIDNAME SECONDS CMD...: until CMD succeeds, while PIDNAME lives
  local label=$1 pidname=$2 secs=$3 deadline=$((SECONDS + $3))
  shift 3
  while [ $SECONDS -lt $deadline ]; do
    if ! alive "$pidname"; then
      log "$label died during start-up:"; tail -30 "$DX_STATE/logs/$pidname.log" >&2; return 1
    fi
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  log "$label not ready after ${secs}s:"; tail -30 "$DX_STATE/logs/$pidname.log" >&2; return 1
}

make_state() {  # wipe and recreate $DX_STATE, with the token signing keys and the configuration
  case "$DX_STATE" in /|"") log "refusing DX_STATE='$DX_STATE'"; exit 1 ;; esac
  rm -rf "$DX_STATE"
  mkdir -p "$DX_STATE"/{db,logs,keystore}
  chmod 700 "$DX_STATE"
  # token signing keys (Ed25519 JWKS)
  "$PY" -m diracx.logic rotate-jwk --jwks-path "$DX_STATE/keystore/jwks.json" >/dev/null 2>&1 \
    || { log "could not create the token signing keys"; return 1; }
  # configuration: a local git repository read by the server
  "$PY" - "$DX_STATE/cs" > "$DX_STATE/logs/cs.log" 2>&1 <<'PYEOF' \
    || { log "could not write the configuration:"; tail -20 "$DX_STATE/logs/cs.log" >&2; return 1; }
import sys
from diracx.cli.internal.config import add_group, add_user, add_vo, generate_cs
repo = f"git+file://{sys.argv[1]}"
generate_cs(repo)
add_vo(repo, vo="diracAdmin", default_group="admin", idp_url="https://idp.invalid", idp_client_id="local-idp")
add_group(repo, vo="diracAdmin", group="jobadmin", properties=["NormalUser", "JobAdministrator"])
add_group(repo, vo="diracAdmin", group="pilot", properties=["GenericPilot"])
add_user(repo, vo="diracAdmin", groups=["admin"], sub="75212b23-14c2-47be-9374-eb0113b0575e", preferred_username="localuser")
add_user(repo, vo="diracAdmin", groups=["admin"], sub="00000000-0000-4000-8000-000000000003", preferred_username="otheruser")
add_user(repo, vo="diracAdmin", groups=["jobadmin", "pilot"], sub="00000000-0000-4000-8000-000000000002", preferred_username="adminuser")
PYEOF
}

server_env() {  # server_env BASE SECRET: the server settings every DiracX here shares (env.sh lines)
  local base=$1 secret=$2
  echo "export DIRACX_CONFIG_BACKEND_URL='git+file://$DX_STATE/cs'"
  echo "export DIRACX_SERVICE_AUTH_TOKEN_KEYSTORE='file://$DX_STATE/keystore/jwks.json'"
  echo "export DIRACX_SERVICE_AUTH_STATE_KEY='$("$PY" -c 'import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())')'"
  echo "export DIRACX_SERVICE_AUTH_TOKEN_ISSUER='$base'"
  echo "export DIRACX_SERVICE_AUTH_ALLOWED_REDIRECTS='[\"$base/api/docs/oauth2-redirect\"]'"
  echo "export DIRACX_SERVICE_AUTH_ACCESS_TOKEN_EXPIRE_MINUTES=$DX_TOKEN_MINUTES"
  echo "export DIRACX_SERVICE_AUTH_REFRESH_TOKEN_EXPIRE_MINUTES=$((DX_TOKEN_MINUTES * 2))"
  echo "export DIRACX_SANDBOX_STORE_BUCKET_NAME=sandboxes"
  echo "export DIRACX_LEGACY_EXCHANGE_HASHED_API_KEY='$(printf %s "$secret" | "$PY" -c 'import hashlib,sys;print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')'"
}

write_credentials() {  # localuser's token through the legacy exchange, once the server answers it
  local deadline=$((SECONDS + 40))
  while [ $SECONDS -lt $deadline ]; do
    if ( set -a; . "$DX_STATE/env.sh"; set +a; "$PY" - ) >> "$DX_STATE/logs/credentials.log" 2>&1 <<'PYEOF'
import base64, os
from pathlib import Path
import httpx
from diracx.core.models import TokenResponse
from diracx.core.utils import write_credentials
secret = base64.urlsafe_b64encode(os.environ["DX_LEGACY_SECRET"].encode()).decode()
r = httpx.get(
    os.environ["DIRACX_URL"] + "/api/auth/legacy-exchange",
    params={"preferred_username": "localuser", "scope": "vo:diracAdmin group:admin"},
    headers={"Authorization": "Bearer diracx:legacy:" + secret},
    timeout=10,
    verify=os.environ.get("DIRACX_CA_PATH") or True,
)
r.raise_for_status()
write_credentials(TokenResponse(**r.json()), location=Path(os.environ["DIRACX_CREDENTIALS_PATH"]))
PYEOF
    then return 0; fi
    sleep 0.3
  done
  log "DiracX never issued a token:"; tail -30 "$DX_STATE/logs/uvicorn.log" >&2
  return 1
}
