#!/usr/bin/env bash
# aiodirac's DiracX 0.7.0 shaped like a production installation, on one machine:
#   * MariaDB (Debian's mariadb-server) for every SQL DB (driver mysql+aiomysql): a private instance
#     with its own data folder, socket and free port; the system service is never started
#   * the schemas created once, before the server starts (what `python -m diracx.db init-sql` does;
#     production runs it as a separate init job)
#   * uvicorn --workers N (default 2) running the stock factory diracx.routers:create_app
#   * moto as S3, the bucket created beforehand
#   * nginx (Debian's nginx-light) in front, terminating TLS with a test CA made at start: the API
#     and the presigned S3 URLs are both HTTPS, and clients verify the certificates (DIRACX_CA_PATH)
# The one deviation: no OpenSearch. JobParametersDB (DiracX's only OpenSearch DB) is diracx-testing's
# SQL stand-in (diracx.testing.mock_osdb) on a SQLite file; its upsert is SQLite-only.
#
#   scripts/diracx_prod.sh install   apt-get mariadb-server + nginx-light when missing (root), the DiracX venv
#   scripts/diracx_prod.sh start     install if needed, wipe $DX_STATE, start everything, wait until usable
#   scripts/diracx_prod.sh stop      stop every process, by the PIDs recorded in $DX_STATE/*.pid
#   scripts/diracx_prod.sh status    say what runs (and the worker PIDs); exit 0 only when all do
#   scripts/diracx_prod.sh env       print the path of the env file that `start` wrote
#   scripts/diracx_prod.sh db-stop   stop MariaDB only (fault tests); db-start starts it again, same data
#
# Settings (environment):
#   DX_HOME      ${TMPDIR:-/tmp}/aiodirac-diracx   parent of the venv (shared with scripts/diracx.sh)
#   DX_VENV      $DX_HOME/venv                     the DiracX venv, reused across runs
#   DX_STATE     $DX_HOME/prod-state               MariaDB data, keys, CA, config repo, logs, env.sh (wiped by start)
#   DX_PORT      8443                              DiracX over HTTPS (nginx) on 127.0.0.1
#   DX_S3_PORT   8444                              S3 (moto) over HTTPS (nginx) on 127.0.0.1
#   DX_WORKERS   2                                 uvicorn worker processes
#   DX_LEGACY_SECRET  random per start             shared secret of GET /api/auth/legacy-exchange
#   DX_TOKEN_MINUTES  1440                         access-token lifetime
#   DX_PYTHON    python3                           interpreter used to create the venv (3.11+)
# A busy DX_PORT / DX_S3_PORT is replaced by a free port (env.sh has the ones used). uvicorn, moto and
# MariaDB listen on free loopback ports behind the front.
#
# Users of the generated configuration (VO diracAdmin): as scripts/diracx.sh.
# After start, `source "$DX_STATE/env.sh"` gives DIRACX_URL (https://...), DIRACX_CA_PATH (the test CA),
# DIRACX_CREDENTIALS_PATH (localuser's tokens), DX_LEGACY_SECRET, DX_STATE, DX_S3_URL, DX_DB_PORT,
# DX_DB_SOCKET and the server's DIRACX_DB_URL_*. PID files: $DX_STATE/{mariadb,moto,uvicorn,nginx}.pid;
# `status` lists the current worker PIDs (uvicorn replaces a worker that dies).
set -euo pipefail

DX_HOME=${DX_HOME:-${TMPDIR:-/tmp}/aiodirac-diracx}
DX_VENV=${DX_VENV:-$DX_HOME/venv}
DX_STATE=${DX_STATE:-$DX_HOME/prod-state}
DX_PORT=${DX_PORT:-8443}
DX_S3_PORT=${DX_S3_PORT:-8444}
DX_WORKERS=${DX_WORKERS:-2}
DX_TOKEN_MINUTES=${DX_TOKEN_MINUTES:-1440}
DX_PYTHON=${DX_PYTHON:-python3}
LOG_TAG=diracx_prod.sh
# Debian installs mariadbd and nginx in /usr/sbin, which a user's PATH may lack
PATH="$PATH:/usr/sbin:/sbin"
# shellcheck source=scripts/diracx_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/diracx_common.sh"

# ------------------------------------------------------------------ system packages
missing_system() {  # the Debian packages to install, one per line
  { command -v mariadbd && command -v mariadb-install-db && command -v mariadb-admin; } >/dev/null 2>&1 \
    || echo mariadb-server
  command -v nginx >/dev/null 2>&1 || echo nginx-light
}

install_system() {
  local missing t0=$SECONDS made_policy=0 pkgs=()
  missing=$(missing_system)
  [ -n "$missing" ] || return 0
  read -r -a pkgs <<< "$(echo "$missing" | tr '\n' ' ')"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "missing: ${pkgs[*]} (the server needs MariaDB and nginx); installing them needs root and apt:"
    log "  sudo apt-get install --no-install-recommends ${pkgs[*]}"
    log "(only the programs are used: no system service is started)"
    exit 1
  fi
  # Debian starts a service when its package is installed: policy-rc.d (exit 101) forbids that
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  log "apt-get install ${pkgs[*]} (no service started)"
  local rc=0
  { apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends "${pkgs[@]}" >/dev/null; } || rc=$?
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || { log "apt-get install ${pkgs[*]} failed"; exit 1; }
  log "${pkgs[*]} installed in $((SECONDS - t0)) s"
}

install() {
  install_system
  install_venv
}

NGINX=nginx

# ------------------------------------------------------------------ processes
settings() {  # the values start wrote (ports, socket) for db-start and status
  [ -f "$DX_STATE/env.sh" ] || { log "no $DX_STATE/env.sh: run start first"; exit 1; }
  set -a; . "$DX_STATE/env.sh"; set +a
}

start_mariadb() {
  setsid nohup mariadbd --no-defaults --datadir="$DX_STATE/mysql" --user="$(id -un)" \
    --socket="$DX_DB_SOCKET" --port="$DX_DB_PORT" --bind-address=$HOST --skip-name-resolve \
    --pid-file="$DX_STATE/mysql/mariadbd.pid" --max-connections=1000 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
    >> "$DX_STATE/logs/mariadb.log" 2>&1 < /dev/null &
  echo $! > "$DX_STATE/mariadb.pid"
  wait_for MariaDB mariadb 60 mariadb-admin --no-defaults --socket="$DX_DB_SOCKET" -uroot ping
}

workers() {  # the uvicorn worker processes: children of the master that run the app (not the
  # resource tracker multiprocessing also starts)
  local child
  alive uvicorn || return 0
  for child in $(ps -o pid= --ppid "$(cat "$DX_STATE/uvicorn.pid")"); do
    grep -q spawn_main "/proc/$child/cmdline" 2>/dev/null && echo "$child"
  done
  return 0
}

stop() {
  local left pid
  left=$(workers | tr '\n' ' ')
  stop_pid nginx 10
  stop_pid uvicorn 15
  # the master stops its workers; one that outlived it is stopped by its own PID
  for pid in $left; do
    if kill -0 "$pid" 2>/dev/null; then log "stopping left-over worker $pid"; kill -9 "$pid" 2>/dev/null || true; fi
  done
  stop_pid moto 10
  stop_pid mariadb 60
}

status() {
  local name rc=0
  for name in mariadb moto uvicorn nginx; do
    if alive "$name"; then echo "$name: running (pid $(cat "$DX_STATE/$name.pid"))"; else echo "$name: not running"; rc=1; fi
  done
  alive uvicorn && echo "uvicorn workers: $(workers | tr '\n' ' ')"
  return $rc
}

# ------------------------------------------------------------------ start
make_tls() {  # a test CA and a certificate for 127.0.0.1 / localhost signed by it
  mkdir -p "$DX_STATE/tls"
  "$PY" - "$DX_STATE/tls" <<'PYEOF'
import datetime, ipaddress, sys
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

folder = Path(sys.argv[1])
now = datetime.datetime.now(datetime.UTC)
def name(cn): return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aiodirac test CA"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (x509.CertificateBuilder().subject_name(name("aiodirac test CA")).issuer_name(name("aiodirac test CA"))
      .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
      .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
      .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                   key_encipherment=False, data_encipherment=False, key_agreement=False,
                                   encipher_only=False, decipher_only=False), critical=True)
      .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
      .sign(ca_key, hashes.SHA256()))
key = ec.generate_private_key(ec.SECP256R1())
cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256()))
pem = serialization.Encoding.PEM
(folder / "ca.pem").write_bytes(ca.public_bytes(pem))
(folder / "server.pem").write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
(folder / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
(folder / "server.key").chmod(0o600)
PYEOF
}

write_nginx_conf() {  # write_nginx_conf UVICORN_PORT MOTO_PORT
  local t="$DX_STATE/nginx"
  mkdir -p "$t"/{body,proxy,fastcgi,uwsgi,scgi}
  cat > "$t/nginx.conf" <<EOF
# written by aiodirac scripts/diracx_prod.sh start
worker_processes 1;
user $(id -un) $(id -gn);
daemon off;
pid $t/nginx.pid;
error_log $DX_STATE/logs/nginx.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $t/body;
  proxy_temp_path $t/proxy;
  fastcgi_temp_path $t/fastcgi;
  uwsgi_temp_path $t/uwsgi;
  scgi_temp_path $t/scgi;
  client_max_body_size 200m;
  keepalive_requests 100000;
  ssl_certificate $DX_STATE/tls/server.pem;
  ssl_certificate_key $DX_STATE/tls/server.key;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:SSL:10m;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host \$http_host;
  proxy_set_header X-Forwarded-For \$remote_addr;
  proxy_set_header X-Forwarded-Proto https;
  proxy_read_timeout 300s;
  proxy_send_timeout 300s;
  proxy_request_buffering off;
  proxy_buffering off;
  # a request is sent to the application once: nginx never resends one on its own
  proxy_next_upstream off;
  # uvicorn keeps idle connections 75 s (--timeout-keep-alive), longer than nginx (60 s): nginx
  # never sends a request on a connection the worker is closing
  upstream diracx { server $HOST:$1; keepalive 64; keepalive_timeout 60s; }
  upstream s3 { server $HOST:$2; keepalive 32; keepalive_timeout 60s; }
  server {
    listen $HOST:$DX_PORT ssl;
    location / { proxy_pass http://diracx; }
  }
  server {
    listen $HOST:$DX_S3_PORT ssl;
    location / { proxy_pass http://s3; }
  }
}
EOF
}

start() {
  install
  stop
  local t0=$SECONDS secret dbpw names n base uport mport
  if ! port_free "$DX_PORT"; then n=$(free_port); log "port $DX_PORT is busy: DiracX gets $n"; DX_PORT=$n; fi
  if ! port_free "$DX_S3_PORT"; then n=$(free_port); log "port $DX_S3_PORT is busy: S3 gets $n"; DX_S3_PORT=$n; fi
  make_state || exit 1
  make_tls || { log "could not make the test CA"; exit 1; }
  base="https://$HOST:$DX_PORT"
  secret=${DX_LEGACY_SECRET:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')}
  dbpw=$("$PY" -c 'import secrets; print(secrets.token_hex(12))')
  uport=$(free_port); mport=$(free_port)
  DX_DB_PORT=$(free_port); DX_DB_SOCKET="$DX_STATE/mysql.sock"

  # 1. MariaDB: a private instance (own data folder, socket, port), not the system service
  mariadb-install-db --no-defaults --datadir="$DX_STATE/mysql" --user="$(id -un)" \
    --auth-root-authentication-method=socket --skip-test-db > "$DX_STATE/logs/mariadb-install.log" 2>&1 \
    || { log "mariadb-install-db failed:"; tail -20 "$DX_STATE/logs/mariadb-install.log" >&2; exit 1; }
  start_mariadb || { stop; exit 1; }
  # one database per DiracX SQL DB, one user with rights on them
  names=$("$PY" -c 'from diracx.core.extensions import DiracEntryPoint as E, select_from_extension as s
print(" ".join(sorted({ep.name for ep in s(group=E.SQL_DB)})))')
  {
    echo "CREATE USER 'diracx'@'$HOST' IDENTIFIED BY '$dbpw';"
    for n in $names; do echo "CREATE DATABASE \`$n\`; GRANT ALL PRIVILEGES ON \`$n\`.* TO 'diracx'@'$HOST';"; done
  } | mariadb --no-defaults --socket="$DX_DB_SOCKET" -uroot || { log "could not create the databases"; stop; exit 1; }

  # 2. the environment of the server and of its clients
  (
    umask 077
    {
      echo "# written by aiodirac scripts/diracx_prod.sh start"
      server_env "$base" "$secret"
      for n in $names; do
        echo "export DIRACX_DB_URL_${n^^}='mysql+aiomysql://diracx:$dbpw@$HOST:$DX_DB_PORT/$n'"
      done
      echo "export DIRACX_OS_DB_JOBPARAMETERSDB='{\"sqlalchemy_dsn\": \"sqlite+aiosqlite:///$DX_STATE/db/jobparametersdb.db\"}'"
      echo "export DIRACX_SANDBOX_STORE_AUTO_CREATE_BUCKET=false"
      echo "export DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS='{\"endpoint_url\": \"https://$HOST:$DX_S3_PORT\", \"aws_access_key_id\": \"testing\", \"aws_secret_access_key\": \"testing\"}'"
      echo "# client side"
      echo "export DIRACX_URL='$base'"
      echo "export DIRACX_CA_PATH='$DX_STATE/tls/ca.pem'"
      echo "export DIRACX_CREDENTIALS_PATH='$DX_STATE/credentials.json'"
      echo "export DX_LEGACY_SECRET='$secret'"
      echo "export DX_STATE='$DX_STATE'"
      echo "export DX_VENV='$DX_VENV'"
      echo "export DX_S3_URL='https://$HOST:$DX_S3_PORT'"
      echo "export DX_WORKERS=$DX_WORKERS"
      echo "export DX_DB_PORT=$DX_DB_PORT"
      echo "export DX_DB_SOCKET='$DX_DB_SOCKET'"
      echo "export DX_UVICORN_URL='http://$HOST:$uport'"
    } > "$DX_STATE/env.sh"
  )

  # 3. the schemas, once (MariaDB + the stand-in's SQLite table)
  write_app
  ( set -a; . "$DX_STATE/env.sh"; set +a; cd "$DX_STATE"; "$PY" dxprod_app.py ) > "$DX_STATE/logs/init-db.log" 2>&1 \
    || { log "schema creation failed:"; tail -30 "$DX_STATE/logs/init-db.log" >&2; stop; exit 1; }

  # 4. S3 (moto) and its bucket; nginx in front of S3 and DiracX
  setsid nohup "$DX_VENV/bin/moto_server" -H $HOST -p "$mport" > "$DX_STATE/logs/moto.log" 2>&1 < /dev/null &
  echo $! > "$DX_STATE/moto.pid"
  wait_for "moto (S3)" moto 30 http_ok "http://$HOST:$mport/" || { stop; exit 1; }
  "$PY" -c "import boto3; boto3.client('s3', endpoint_url='http://$HOST:$mport', aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1').create_bucket(Bucket='sandboxes')" \
    || { log "could not create the S3 bucket"; stop; exit 1; }
  write_nginx_conf "$uport" "$mport"
  "$NGINX" -t -q -e "$DX_STATE/logs/nginx.log" -c "$DX_STATE/nginx/nginx.conf" 2>> "$DX_STATE/logs/nginx.log" \
    || { log "nginx refused its configuration:"; tail -20 "$DX_STATE/logs/nginx.log" >&2; stop; exit 1; }
  setsid nohup "$NGINX" -e "$DX_STATE/logs/nginx.log" -c "$DX_STATE/nginx/nginx.conf" \
    >> "$DX_STATE/logs/nginx.log" 2>&1 < /dev/null &
  echo $! > "$DX_STATE/nginx.pid"
  wait_for "nginx (S3 over HTTPS)" nginx 30 http_ok "https://$HOST:$DX_S3_PORT/" "$DX_STATE/tls/ca.pem" || { stop; exit 1; }

  # 5. DiracX: N uvicorn workers behind nginx; the server's S3 client trusts the test CA
  ( set -a; . "$DX_STATE/env.sh"; set +a
    export SSL_CERT_FILE="$DX_STATE/tls/ca.pem"
    exec setsid nohup "$DX_VENV/bin/uvicorn" --factory dxprod_app:create_app --app-dir "$DX_STATE" \
      --workers "$DX_WORKERS" --host $HOST --port "$uport" --timeout-keep-alive 75 \
      --proxy-headers --forwarded-allow-ips $HOST --no-access-log \
      > "$DX_STATE/logs/uvicorn.log" 2>&1 < /dev/null ) &
  echo $! > "$DX_STATE/uvicorn.pid"
  wait_for DiracX uvicorn 120 http_ok "$base/api/health/ready" "$DX_STATE/tls/ca.pem" || { stop; exit 1; }
  local deadline=$((SECONDS + 60))
  while [ "$(grep -c 'Application startup complete' "$DX_STATE/logs/uvicorn.log" || true)" -lt "$DX_WORKERS" ]; do
    [ $SECONDS -lt $deadline ] || { log "not all $DX_WORKERS workers started:"; tail -30 "$DX_STATE/logs/uvicorn.log" >&2; stop; exit 1; }
    sleep 0.2
  done
  write_credentials || { stop; exit 1; }
  # each worker loads the configuration on its own (503 until then): 10 ready answers in a row,
  # each on a new connection straight to uvicorn, which the kernel hands to either worker
  local streak=0
  deadline=$((SECONDS + 60))
  while [ $streak -lt 10 ]; do
    [ $SECONDS -lt $deadline ] || { log "DiracX workers never all ready"; tail -30 "$DX_STATE/logs/uvicorn.log" >&2; stop; exit 1; }
    if http_ok "http://$HOST:$uport/api/health/ready"; then streak=$((streak + 1)); else streak=0; sleep 0.2; fi
  done
  log "DiracX $DIRACX_VERSION at $base ($DX_WORKERS workers: $(workers | tr '\n' ' ')), S3 at https://$HOST:$DX_S3_PORT," \
      "MariaDB on $HOST:$DX_DB_PORT; up in $((SECONDS - t0)) s"
  log "source $DX_STATE/env.sh    CA: $DX_STATE/tls/ca.pem    logs: $DX_STATE/logs/    stop: $0 stop"
}

write_app() {  # the uvicorn factory: the stock one, with the OpenSearch DB swapped for the SQL stand-in
  cat > "$DX_STATE/dxprod_app.py" <<'PYEOF'
"""diracx.routers.create_app (the production factory), with JobParametersDB (OpenSearch) replaced
by diracx-testing's SQL-backed stand-in. Unlike diracx.testing.routers.create_app it does NOT create
schemas at each worker's start-up: `python dxprod_app.py` does that once, before the workers."""
from functools import partial


def _patch_osdb():
    from diracx.db.os.utils import BaseOSDB
    from diracx.testing.mock_osdb import fake_available_osdb_implementations

    if not getattr(BaseOSDB, "_aiodirac_patched", False):
        BaseOSDB.available_implementations = partial(
            fake_available_osdb_implementations,
            real_available_implementations=BaseOSDB.available_implementations,
        )
        BaseOSDB._aiodirac_patched = True


def create_app():
    _patch_osdb()
    from diracx.routers import create_app as stock_create_app

    return stock_create_app()


if __name__ == "__main__":  # the schemas of every SQL DB (MariaDB) and the stand-in's table
    import asyncio
    import logging

    logging.basicConfig(level=logging.INFO)
    _patch_osdb()
    from diracx.db.__main__ import init_os, init_sql

    async def main():
        await init_sql()
        await init_os()

    asyncio.run(main())
PYEOF
}

db_stop() {
  settings
  stop_pid mariadb 60
}

db_start() {
  settings
  alive mariadb && return 0
  start_mariadb
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "$DX_STATE/env.sh" ;;
  db-stop) db_stop ;;
  db-start) db_start ;;
  *) echo "usage: $0 [install|start|stop|status|env|db-stop|db-start]" >&2; exit 2 ;;
esac
