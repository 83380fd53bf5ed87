#!/usr/bin/env bash
# The upload page's third-party scripts and the browser tests.
#   scripts/browser.sh deps                 npm packages (browser/), vendored into web/vendor
#   scripts/browser.sh chromium             the same, and Debian's Chromium if missing
#   scripts/browser.sh test EMULATOR_PORT [NAME]
#                                           Debian's Chromium (installed if missing), the API on
#                                           127.0.0.1:$BROWSER_API_PORT, then browser/tests.mjs on
#                                           node:test, TAP out (only tests whose name contains NAME,
#                                           if given); with STRICT_S3_ENDPOINT (scripts/strict_s3.sh),
#                                           a second API whose S3 is that one, on
#                                           $BROWSER_STRICT_API_PORT
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
  local strict_port=${BROWSER_STRICT_API_PORT:-$((port + 1))}
  need_chromium
  . scripts/env.sh
  local_aws_env "$emulator"
  # `make test` hands over the binary its `cargo test` built (API_BIN), so nothing builds twice.
  local api=${API_BIN:-}
  if [ -z "$api" ]; then
    cargo build --locked --quiet --workspace --bins
    api=./target/debug/api
  fi
  local p
  for p in "$port" ${STRICT_S3_ENDPOINT:+"$strict_port"}; do
    if curl -s -m 2 -o /dev/null "http://127.0.0.1:$p/healthz"; then
      echo "127.0.0.1:$p is taken (a leftover API?); set BROWSER_API_PORT / BROWSER_STRICT_API_PORT" >&2
      exit 1
    fi
  done
  # Parts of 5 MiB (S3's minimum) keep multi-part test files small; a 64 MiB limit, a refusal.
  # `make test`'s Rust tests left many sessions open as `anonymous` in the same table.
  LISTEN_ADDR=127.0.0.1:$port DEFAULT_PART_SIZE=5242880 MAX_OBJECT_BYTES=67108864 WEB_DIR=web \
    MAX_OPEN_SESSIONS_PER_OWNER=2000 \
    "$api" >.local/browser-api.log 2>&1 &
  api_pid=$!
  trap 'kill "${api_pid:-}" "${strict_pid:-}" 2>/dev/null || true' EXIT
  wait_for "$port" "$api_pid" .local/browser-api.log
  local strict_url=
  if [ -n "${STRICT_S3_ENDPOINT:-}" ]; then
    # S3 is the strict one (the SDK's own variable), DynamoDB stays on the emulator. It consumes
    # no queue: the other API's verifier queue is not its to read.
    # Its URLs expire after 60 s (the least URL_EXPIRY_SECONDS allows): a test lets one expire.
    AWS_ENDPOINT_URL_S3=$STRICT_S3_ENDPOINT LISTEN_ADDR=127.0.0.1:$strict_port URL_EXPIRY_SECONDS=60 \
      DEFAULT_PART_SIZE=5242880 MAX_OBJECT_BYTES=67108864 WEB_DIR=web MAX_OPEN_SESSIONS_PER_OWNER=2000 \
      env -u VERIFIER_QUEUE_URL "$api" >.local/browser-strict-api.log 2>&1 &
    strict_pid=$!
    wait_for "$strict_port" "$strict_pid" .local/browser-strict-api.log
    strict_url=http://127.0.0.1:$strict_port
  fi
  # Node's own runner, TAP: it closes with `# tests N`, `# pass N`, `# fail N`, `# cancelled N` (timed
  # out) and `# skipped N` (what `make test` counts) and exits non-zero when a test failed. NAME, a
  # part of a test's name, becomes a pattern matching it literally (on Node 20 the other tests show
  # as skipped). --test-force-exit: nothing a failed test left open (a server, a browser) keeps the
  # process alive once the tests are done.
  local pattern=
  [ -z "$filter" ] || pattern=$(printf '%s' "$filter" | sed 's/[][\\.*^$?+(){}|/]/\\&/g')
  API_URL=http://127.0.0.1:$port STRICT_API_URL=$strict_url node --test-reporter=tap --test-force-exit \
    ${pattern:+"--test-name-pattern=$pattern"} browser/tests.mjs
}

wait_for() { # PORT PID LOG: the API answering on PORT, or its log and a failure
  for _ in $(seq 100); do
    curl -sf -m 2 "http://127.0.0.1:$1/healthz" >/dev/null && return
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
    sleep 0.1
  done
  echo "the API on 127.0.0.1:$1 did not answer" >&2; cat "$3" >&2; exit 1
}

case ${1:-} in
  deps) deps ;;
  chromium) need_chromium ;;
  test) run_tests "${2:-4599}" "${3:-}" ;;
  *) echo "usage: $0 deps | chromium | test EMULATOR_PORT [NAME]" >&2; exit 2 ;;
esac
