#!/usr/bin/env bash
# The upload page's third-party scripts and the browser tests.
#   scripts/browser.sh deps                 npm packages (browser/), vendored into web/vendor
#   scripts/browser.sh chromium             the same, and Debian's Chromium if missing
#   scripts/browser.sh test EMULATOR_PORT [NAME]
#                                           Debian's Chromium (installed if missing), the API on
#                                           127.0.0.1:$BROWSER_API_PORT, then browser/tests.mjs
#                                           (only tests whose name contains NAME, if given)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .local

apt_install() {
  # CI and this project's machines run as root; elsewhere sudo asks.
  local sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

deps() {
  command -v npm >/dev/null || apt_install nodejs npm
  # `npm ci` only when the lockfile changed since the last install.
  local stamp=.local/browser-lock.installed
  if [ ! -d browser/node_modules ] || ! cmp -s browser/package-lock.json "$stamp"; then
    (cd browser && npm ci --no-audit --no-fund --loglevel=error)
    cp browser/package-lock.json "$stamp"
  fi
  node browser/build.mjs
}

need_chromium() {
  deps
  command -v "${CHROMIUM:-chromium}" >/dev/null || apt_install chromium
}

run_tests() {
  local emulator=$1 filter=${2:-} port=${BROWSER_API_PORT:-3099}
  need_chromium
  . scripts/env.sh
  local_aws_env "$emulator"
  # `make test` hands over the binary its `cargo test` built (API_BIN), so nothing builds twice.
  local api=${API_BIN:-}
  if [ -z "$api" ]; then
    cargo build --locked --quiet --bin api
    api=./target/debug/api
  fi
  if curl -s -m 2 -o /dev/null "http://127.0.0.1:$port/healthz"; then
    echo "127.0.0.1:$port is taken (a leftover API?); set BROWSER_API_PORT" >&2
    exit 1
  fi
  # Parts of 5 MiB (S3's minimum) keep multi-part test files small; a 64 MiB limit, a refusal.
  # `make test`'s Rust tests left many sessions open as `anonymous` in the same table.
  LISTEN_ADDR=127.0.0.1:$port DEFAULT_PART_SIZE=5242880 MAX_OBJECT_BYTES=67108864 WEB_DIR=web \
    MAX_OPEN_SESSIONS_PER_OWNER=2000 \
    "$api" >.local/browser-api.log 2>&1 &
  api_pid=$!
  trap 'kill "${api_pid:-}" 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    curl -sf -m 2 "http://127.0.0.1:$port/healthz" >/dev/null && break
    kill -0 "$api_pid" 2>/dev/null || { cat .local/browser-api.log >&2; exit 1; }
    sleep 0.1
  done
  API_URL=http://127.0.0.1:$port node browser/tests.mjs ${filter:+"$filter"}
}

case ${1:-} in
  deps) deps ;;
  chromium) need_chromium ;;
  test) run_tests "${2:-4599}" "${3:-}" ;;
  *) echo "usage: $0 deps | chromium | test EMULATOR_PORT [NAME]" >&2; exit 2 ;;
esac
