#!/usr/bin/env bash
# The strict S3 of `make test`: LocalStack's S3 alone, without Docker, checking pre-signed URLs as
# S3 does (signature, expiry, the signed Content-Length; a body whose SHA-256 is not its signed
# x-amz-checksum-sha256 is refused with BadDigest), where moto checks none of it.
#   scripts/strict_s3.sh setup          install LocalStack into .venv-localstack (idempotent; needs
#                                       Python 3.13, which LocalStack requires)
#   scripts/strict_s3.sh start PORT     start it on 127.0.0.1:PORT and create the bucket
#   scripts/strict_s3.sh stop  PORT     stop it and delete everything it stored
# Its state (objects, logs, caches) lives in .local/strict-s3-PORT/, removed at stop.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv-localstack
requirements=scripts/requirements-strict-s3.txt
port=${2:-4632}
state=$root/.local/strict-s3-$port
pidfile=$root/.local/strict-s3-$port.pid
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_DEFAULT_REGION=${AWS_REGION:-us-east-1}

is_313() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; }

python313() {
  local p
  for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3 \
    "$(command -v python3.13 || true)" /usr/local/bin/python3.13 /usr/bin/python3.13; do
    if [ -n "$p" ] && [ -x "$p" ] && is_313 "$p"; then echo "$p"; return; fi
  done
  echo "strict S3: LocalStack needs Python 3.13 and none was found (looked in" \
    "\$PYENV_ROOT/versions/3.13*, python3.13 on PATH, /usr/local/bin, /usr/bin)" >&2
  return 1
}

setup() {
  mkdir -p "$root/.local"
  local stamp=$root/.local/requirements-strict-s3.installed
  if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then return; fi
  if ! [ -x "$venv/bin/python" ] || ! is_313 "$venv/bin/python"; then
    rm -rf "$venv"
    "$(python313)" -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
}

start() {
  setup
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "strict S3 already running on 127.0.0.1:$port"
  else
    rm -rf "$state" && mkdir -p "$state/objects"
    # S3 only (its DynamoDB needs a Java download; moto serves the rest). Signatures checked.
    # Everything it writes stays under $state: FILESYSTEM_ROOT, plux's cache (XDG_CACHE_HOME) and
    # the objects (scripts/strict_s3_server.py, which also keeps it on loopback).
    SERVICES=s3 GATEWAY_LISTEN=127.0.0.1:$port S3_SKIP_SIGNATURE_VALIDATION=0 \
      OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT=$state DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 \
      DISABLE_EVENTS=1 EAGER_SERVICE_LOADING=1 LOCALSTACK_TELEMETRY_DISABLED=1 \
      XDG_CACHE_HOME=$state/cache STRICT_S3_OBJECTS=$state/objects \
      "$venv/bin/python" scripts/strict_s3_server.py >"$root/.local/strict-s3-$port.log" 2>&1 &
    echo $! >"$pidfile"
    local ready=
    for _ in $(seq 1 150); do
      if curl -sf -m 1 "http://127.0.0.1:$port/_localstack/health" 2>/dev/null | grep -q '"s3": "\(running\|available\)"'; then
        ready=1; break
      fi
      kill -0 "$(cat "$pidfile")" 2>/dev/null || break
      sleep 0.2
    done
    if [ -z "$ready" ]; then
      echo "strict S3 did not start on 127.0.0.1:$port:" >&2
      tail -n 30 "$root/.local/strict-s3-$port.log" >&2
      stop
      exit 1
    fi
  fi
  # The bucket as scripts/bootstrap.py makes it on moto: versioned, with CORS for the page.
  "$venv/bin/python" scripts/bootstrap.py "http://127.0.0.1:$port" "${BUCKET_NAME:-verified-uploads}" --s3-only
}

stop() {
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    # It takes a few seconds to shut down; its storage goes only once it has.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  fi
  rm -rf "$state"
}

case "${1:-}" in
  setup) setup ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 {setup|start|stop} [PORT]" >&2; exit 2 ;;
esac
