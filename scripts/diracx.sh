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

DX_HOME=${DX_HOME:-${TMPDIR:-/tmp}/aiodirac-diracx}
DX_VENV=${DX_VENV:-$DX_HOME/venv}
DX_STATE=${DX_STATE:-$DX_HOME/state}
DX_PORT=${DX_PORT:-8000}
DX_S3_PORT=${DX_S3_PORT:-8333}
DX_TOKEN_MINUTES=${DX_TOKEN_MINUTES:-1440}
DX_PYTHON=${DX_PYTHON:-python3}
LOG_TAG=diracx.sh
# shellcheck source=scripts/diracx_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/diracx_common.sh"
BASE="http://$HOST:$DX_PORT"

stop() {
  stop_pid uvicorn 10
  stop_pid moto 10
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

start() {
  install_venv
  stop
  local t0=$SECONDS secret
  port_free "$DX_PORT" || { log "port $DX_PORT is already in use"; exit 1; }
  port_free "$DX_S3_PORT" || { log "port $DX_S3_PORT is already in use"; exit 1; }
  make_state || exit 1
  secret=${DX_LEGACY_SECRET:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')}

  # the environment of the server and of its clients
  (
    umask 077
    {
      echo "# written by aiodirac scripts/diracx.sh start"
      server_env "$BASE" "$secret"
      "$PY" -m diracx.db generate-local-urls "$DX_STATE/db"
      echo "export DIRACX_SANDBOX_STORE_AUTO_CREATE_BUCKET=true"
      echo "export DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS='{\"endpoint_url\": \"http://$HOST:$DX_S3_PORT\", \"aws_access_key_id\": \"testing\", \"aws_secret_access_key\": \"testing\"}'"
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
  wait_for "moto (S3)" moto 30 http_ok "http://$HOST:$DX_S3_PORT/" || { stop; exit 1; }

  # DiracX creates its SQLite schemas and the bucket at start-up
  ( set -a; . "$DX_STATE/env.sh"; set +a
    exec setsid nohup "$DX_VENV/bin/uvicorn" --factory diracx.testing.routers:create_app \
      --host "$HOST" --port "$DX_PORT" > "$DX_STATE/logs/uvicorn.log" 2>&1 < /dev/null ) &
  echo $! > "$DX_STATE/uvicorn.pid"
  wait_for DiracX uvicorn 90 http_ok "$BASE/api/health/ready" || { stop; exit 1; }

  # the configuration is loaded once the legacy exchange answers; then write localuser's credentials
  write_credentials || { stop; exit 1; }
  log "DiracX $DIRACX_VERSION at $BASE, S3 at http://$HOST:$DX_S3_PORT, up in $((SECONDS - t0)) s" \
      "(uvicorn pid $(cat "$DX_STATE/uvicorn.pid"), moto pid $(cat "$DX_STATE/moto.pid"))"
  log "source $DX_STATE/env.sh    logs: $DX_STATE/logs/    stop: $0 stop"
}

case "${1:-start}" in
  install) install_venv ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "$DX_STATE/env.sh" ;;
  *) echo "usage: $0 [install|start|stop|status|env]" >&2; exit 2 ;;
esac
