#!/usr/bin/env bash
# dynalite: DynamoDB's protocol in memory (npm package `dynalite`, version pinned in
# scripts/dynalite/package-lock.json), with the sessions table as scripts/create_table.py defines it
# (the definition scripts/bootstrap.py creates in moto). For DynamoDB conformance checks: unlike
# moto it serializes the writes to each item.
#   scripts/dynalite.sh setup          install it into .local/dynalite (npm ci; idempotent)
#   scripts/dynalite.sh start [PORT]   start it on 127.0.0.1:PORT (default 4569), create the table
#   scripts/dynalite.sh stop  [PORT]   stop it
# TABLE_NAME names the table (default verified-uploads). dynalite has no UpdateTimeToLive: the table
# is created without TTL (a warning says so) and nothing in it expires.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv
state=$root/.local
dir=$state/dynalite
port=${2:-${DYNALITE_PORT:-4569}}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_DEFAULT_REGION=${AWS_REGION:-us-east-1}

setup() {
  local stamp=$dir/package-lock.installed
  if [ -f "$dir/node_modules/dynalite/cli.js" ] && cmp -s scripts/dynalite/package-lock.json "$stamp" &&
    cmp -s scripts/dynalite/package.json "$dir/package.json"; then
    return
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "dynalite.sh: needs Node.js >= 20 and npm" >&2
    exit 1
  fi
  if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "dynalite.sh: dynalite 4 needs Node.js >= 20, this is $(node --version)" >&2
    exit 1
  fi
  mkdir -p "$dir"
  rm -f "$stamp"
  cp scripts/dynalite/package.json scripts/dynalite/package-lock.json "$dir/"
  # Tarballs from the npm registry only, checked against the lock's integrity hashes, and no
  # install scripts: the one there is classic-level's (level's on-disk store, which dynalite loads
  # even when in memory), whose node-gyp-build would compile from source when no prebuilt binary
  # fits. Its npm tarball carries prebuilt N-API binaries (linux-x64 glibc and musl, arm, arm64,
  # darwin, win32); checked to load below.
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  if ! (cd "$dir" && node -e "require('classic-level')") 2>"$state/dynalite-setup.log"; then
    cat "$state/dynalite-setup.log" >&2
    echo "dynalite.sh: classic-level's prebuilt binary does not load here; build it from source with" >&2
    echo "  (cd .local/dynalite && npm rebuild classic-level --build-from-source)" >&2
    echo "(needs gcc, g++, make, python3 and Node's headers: npm's nodedir, else node-gyp downloads them from nodejs.org)" >&2
    exit 1
  fi
  rm -f "$state/dynalite-setup.log"
  cp scripts/dynalite/package-lock.json "$stamp"
}

answers() { # any HTTP answer on 127.0.0.1:$port (dynalite answers GET / with 200)
  python3 - "$port" <<'PY' 2>/dev/null
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=1)
except urllib.error.HTTPError:
    pass
PY
}

start() {
  setup
  scripts/stack.sh setup # .venv's boto3, for the table
  local pidfile=$state/dynalite-$port.pid log=$state/dynalite-$port.log
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "dynalite already running on 127.0.0.1:$port"
  else
    if answers; then
      echo "dynalite.sh: 127.0.0.1:$port is taken by something else" >&2
      exit 1
    fi
    # In memory (no --path); tables and indexes ACTIVE at once rather than after 500 ms.
    node "$dir/node_modules/dynalite/cli.js" --host 127.0.0.1 --port "$port" \
      --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
      if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        cat "$log" >&2
        rm -f "$pidfile"
        echo "dynalite.sh: dynalite exited (log above: $log)" >&2
        exit 1
      fi
      answers && break
      sleep 0.1
    done
    if ! answers; then
      echo "dynalite.sh: dynalite not answering on 127.0.0.1:$port after 10 s ($log)" >&2
      exit 1
    fi
  fi
  "$venv/bin/python" scripts/create_table.py "http://127.0.0.1:$port" "${TABLE_NAME:-verified-uploads}" \
    --ttl-optional
}

stop() {
  local pidfile=$state/dynalite-$port.pid pid
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    # Gone before returning, so the port is free for the next start.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"
  fi
}

case "${1:-}" in
  setup) setup ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 {setup|start|stop} [PORT]" >&2; exit 2 ;;
esac
