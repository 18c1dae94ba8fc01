#!/usr/bin/env bash
# aiodirac's own DiracX 0.7.0 development server: install, start, stop, status.
#
#   scripts/diracx.sh install   create the DiracX venv (pinned, apart from the project's venv), once
#   scripts/diracx.sh start     install if needed, wipe $DX_STATE, start S3 (moto) + DiracX, wait until usable
#   scripts/diracx.sh stop      stop both servers, by the PIDs recorded in $DX_STATE/*.pid
#   scripts/diracx.sh status    say whether they run; exit 0 only when both do
#   scripts/diracx.sh env       print the path of the env file that `start` wrote
#
# Settings (environment):
#   DX_HOME      ${TMPDIR:-/tmp}/aiodirac-diracx   parent of the default venv and state folder
#   DX_VENV      $DX_HOME/venv                     the DiracX venv, reused across runs
#   DX_STATE     $DX_HOME/state                    databases, keys, config repo, logs, env.sh (wiped by start)
#   DX_PORT      8000                              DiracX on 127.0.0.1
#   DX_S3_PORT   8333                              moto (S3 sandbox store) on 127.0.0.1
#   DX_LEGACY_SECRET  random per start             shared secret of GET /api/auth/legacy-exchange
#   DX_TOKEN_MINUTES  1440                         access-token lifetime
#   DX_PYTHON    python3                           interpreter used to create the venv (3.11+)
#
# Users of the generated configuration (VO diracAdmin):
#   localuser, otheruser : group admin (NormalUser)
#   adminuser            : groups jobadmin (NormalUser, JobAdministrator) and pilot (GenericPilot)
#
# After start, `source "$DX_STATE/env.sh"` gives DIRACX_URL, DIRACX_CREDENTIALS_PATH (localuser's tokens,
# in the format DiracX's own client reads), DX_LEGACY_SECRET, DX_STATE and the server's DIRACX_DB_URL_*.
set -euo pipefail

DIRACX_VERSION=0.7.0
DX_HOME=${DX_HOME:-${TMPDIR:-/tmp}/aiodirac-diracx}
DX_VENV=${DX_VENV:-$DX_HOME/venv}
DX_STATE=${DX_STATE:-$DX_HOME/state}
DX_PORT=${DX_PORT:-8000}
DX_S3_PORT=${DX_S3_PORT:-8333}
DX_TOKEN_MINUTES=${DX_TOKEN_MINUTES:-1440}
DX_PYTHON=${DX_PYTHON:-python3}
HOST=127.0.0.1
BASE="http://$HOST:$DX_PORT"
PY="$DX_VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[diracx.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

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
  [ -x "$DX_VENV/bin/uvicorn" ] && [ -x "$DX_VENV/bin/moto_server" ] && "$PY" - "$DIRACX_VERSION" 2>/dev/null <<'EOF'
import sys
from importlib.metadata import version
import diracx.testing.routers, diracx.routers, diracx.client, diracx.api, moto  # noqa: F401
sys.exit(0 if version("diracx-routers") == sys.argv[1] == version("diracx-client") else 1)
EOF
}

install() {
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

stop() {
  local name pid i
  for name in uvicorn moto; do
    [ -f "$DX_STATE/$name.pid" ] || continue
    pid=$(cat "$DX_STATE/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping $name (pid $pid)"
      kill "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop in 10 s, SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$DX_STATE/$name.pid"
  done
}

status() {
  local name rc=0
  for name in moto uvicorn; do
    if alive "$name"; then
      echo "$name: running (pid $(cat "$DX_STATE/$name.pid"))"
    else
      echo "$name: not running"; rc=1
    fi
  done
  return $rc
}

port_free() {
  "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

http_ok() { "$PY" - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

wait_http() {  # wait_http LABEL PIDNAME URL SECONDS
  local label=$1 pidname=$2 url=$3 secs=$4 deadline=$((SECONDS + $4))
  while [ $SECONDS -lt $deadline ]; do
    if ! alive "$pidname"; then
      log "$label died during start-up:"; tail -30 "$DX_STATE/logs/$pidname.log" >&2; return 1
    fi
    http_ok "$url" && return 0
    sleep 0.2
  done
  log "$label not ready after ${secs}s:"; tail -30 "$DX_STATE/logs/$pidname.log" >&2; return 1
}

start() {
  install
  stop
  local t0=$SECONDS secret
  port_free "$DX_PORT" || { log "port $DX_PORT is already in use"; exit 1; }
  port_free "$DX_S3_PORT" || { log "port $DX_S3_PORT is already in use"; exit 1; }
  case "$DX_STATE" in /|"") log "refusing DX_STATE='$DX_STATE'"; exit 1 ;; esac
  rm -rf "$DX_STATE"
  mkdir -p "$DX_STATE"/{db,logs,keystore}
  chmod 700 "$DX_STATE"
  secret=${DX_LEGACY_SECRET:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')}

  # token signing keys (Ed25519 JWKS)
  "$PY" -m diracx.logic rotate-jwk --jwks-path "$DX_STATE/keystore/jwks.json" >/dev/null 2>&1 \
    || { log "could not create the token signing keys"; exit 1; }

  # configuration: a local git repository read by the server
  "$PY" - "$DX_STATE/cs" > "$DX_STATE/logs/cs.log" 2>&1 <<'EOF' \
    || { log "could not write the configuration:"; tail -20 "$DX_STATE/logs/cs.log" >&2; exit 1; }
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
EOF

  # the environment of the server and of its clients
  (
    umask 077
    {
      echo "# written by aiodirac scripts/diracx.sh start"
      echo "export DIRACX_CONFIG_BACKEND_URL='git+file://$DX_STATE/cs'"
      "$PY" -m diracx.db generate-local-urls "$DX_STATE/db"
      echo "export DIRACX_SERVICE_AUTH_TOKEN_KEYSTORE='file://$DX_STATE/keystore/jwks.json'"
      echo "export DIRACX_SERVICE_AUTH_STATE_KEY='$("$PY" -c 'import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())')'"
      echo "export DIRACX_SERVICE_AUTH_TOKEN_ISSUER='$BASE'"
      echo "export DIRACX_SERVICE_AUTH_ALLOWED_REDIRECTS='[\"$BASE/api/docs/oauth2-redirect\"]'"
      echo "export DIRACX_SERVICE_AUTH_ACCESS_TOKEN_EXPIRE_MINUTES=$DX_TOKEN_MINUTES"
      echo "export DIRACX_SERVICE_AUTH_REFRESH_TOKEN_EXPIRE_MINUTES=$((DX_TOKEN_MINUTES * 2))"
      echo "export DIRACX_SANDBOX_STORE_BUCKET_NAME=sandboxes"
      echo "export DIRACX_SANDBOX_STORE_AUTO_CREATE_BUCKET=true"
      echo "export DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS='{\"endpoint_url\": \"http://$HOST:$DX_S3_PORT\", \"aws_access_key_id\": \"testing\", \"aws_secret_access_key\": \"testing\"}'"
      echo "export DIRACX_LEGACY_EXCHANGE_HASHED_API_KEY='$(printf %s "$secret" | "$PY" -c 'import hashlib,sys;print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')'"
      echo "# client side"
      echo "export DIRACX_URL='$BASE'"
      echo "export DIRACX_CREDENTIALS_PATH='$DX_STATE/credentials.json'"
      echo "export DX_LEGACY_SECRET='$secret'"
      echo "export DX_STATE='$DX_STATE'"
      echo "export DX_VENV='$DX_VENV'"
      echo "export DX_S3_URL='http://$HOST:$DX_S3_PORT'"
    } > "$DX_STATE/env.sh"
  )

  # moto (S3). setsid: the servers outlive the calling shell (a CI step); stop uses the PID files.
  setsid nohup "$DX_VENV/bin/moto_server" -H "$HOST" -p "$DX_S3_PORT" \
    > "$DX_STATE/logs/moto.log" 2>&1 < /dev/null &
  echo $! > "$DX_STATE/moto.pid"
  wait_http "moto (S3)" moto "http://$HOST:$DX_S3_PORT/" 30 || { stop; exit 1; }

  # DiracX creates its SQLite schemas and the bucket at start-up
  ( set -a; . "$DX_STATE/env.sh"; set +a
    exec setsid nohup "$DX_VENV/bin/uvicorn" --factory diracx.testing.routers:create_app \
      --host "$HOST" --port "$DX_PORT" > "$DX_STATE/logs/uvicorn.log" 2>&1 < /dev/null ) &
  echo $! > "$DX_STATE/uvicorn.pid"
  wait_http "DiracX" uvicorn "$BASE/api/health/ready" 90 || { stop; exit 1; }

  # the configuration is loaded once the legacy exchange answers; then write localuser's credentials
  local deadline=$((SECONDS + 40)) ok=0
  while [ $SECONDS -lt $deadline ]; do
    if ( set -a; . "$DX_STATE/env.sh"; set +a; "$PY" - ) >> "$DX_STATE/logs/credentials.log" 2>&1 <<'EOF'
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
)
r.raise_for_status()
write_credentials(TokenResponse(**r.json()), location=Path(os.environ["DIRACX_CREDENTIALS_PATH"]))
EOF
    then ok=1; break; fi
    sleep 0.3
  done
  if [ $ok != 1 ]; then
    log "DiracX never issued a token:"; tail -30 "$DX_STATE/logs/uvicorn.log" >&2; stop; exit 1
  fi
  log "DiracX $DIRACX_VERSION at $BASE, S3 at http://$HOST:$DX_S3_PORT, up in $((SECONDS - t0)) s" \
      "(uvicorn pid $(cat "$DX_STATE/uvicorn.pid"), moto pid $(cat "$DX_STATE/moto.pid"))"
  log "source $DX_STATE/env.sh    logs: $DX_STATE/logs/    stop: $0 stop"
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "$DX_STATE/env.sh" ;;
  *) echo "usage: $0 [install|start|stop|status|env]" >&2; exit 2 ;;
esac
