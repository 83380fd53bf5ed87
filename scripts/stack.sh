#!/usr/bin/env bash
# The local stack: moto server emulating S3 and DynamoDB on loopback, with the bucket and table.
#   scripts/stack.sh setup          install moto into .venv (idempotent)
#   scripts/stack.sh start [PORT]   start the emulator (default 4566) and create bucket + table,
#                                   queues and bus as the settings name (scripts/bootstrap.py)
#   scripts/stack.sh stop  [PORT]   stop it
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv
state=$root/.local
port=${2:-${EMULATOR_PORT:-4566}}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_DEFAULT_REGION=${AWS_REGION:-us-east-1}

setup() {
  mkdir -p "$state"
  local stamp=$state/requirements.installed
  if [ -x "$venv/bin/moto_server" ] && cmp -s scripts/requirements.txt "$stamp"; then return; fi
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements.txt
  cp scripts/requirements.txt "$stamp"
}

start() {
  setup
  local pidfile=$state/moto-$port.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "emulator already running on 127.0.0.1:$port"
  else
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/moto-$port.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
      if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
        break
      fi
      sleep 0.2
    done
  fi
  "$venv/bin/python" scripts/bootstrap.py "http://127.0.0.1:$port" \
    "${BUCKET_NAME:-verified-uploads}" "${TABLE_NAME:-verified-uploads}"
}

stop() {
  local pidfile=$state/moto-$port.pid
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

case "${1:-}" in
  setup) setup ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 {setup|start|stop} [PORT]" >&2; exit 2 ;;
esac
