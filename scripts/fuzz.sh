#!/usr/bin/env bash
# Schema-driven fuzzing: Schemathesis against the real `api` binary on the local emulator, every
# route of docs/openapi.json (the document the binary serves at /openapi.json), seeded.
#   scripts/fuzz.sh EMULATOR_PORT      (API on 127.0.0.1:$FUZZ_API_PORT, default 3041)
# FUZZ_EXAMPLES (per operation and phase, default 60) and FUZZ_SEED (default 12) tune the run.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .local
emulator=${1:-4599}
port=${FUZZ_API_PORT:-3041}
. scripts/env.sh
local_aws_env "$emulator"
scripts/stack.sh setup
# `make test` hands over the binary its `cargo test` built (API_BIN), so nothing builds twice.
api=${API_BIN:-}
if [ -z "$api" ]; then
  cargo build --locked --quiet --workspace --bins
  api=${CARGO_TARGET_DIR:-target}/debug/api
fi
if curl -s -m 2 -o /dev/null "http://127.0.0.1:$port/healthz"; then
  echo "127.0.0.1:$port is taken (a leftover API?); set FUZZ_API_PORT" >&2
  exit 1
fi
# Fuzzing creates many sessions as `anonymous`: the limit at its maximum, small parts and objects.
LISTEN_ADDR=127.0.0.1:$port DEFAULT_PART_SIZE=5242880 MAX_OBJECT_BYTES=67108864 WEB_DIR=/nonexistent \
  MAX_OPEN_SESSIONS_PER_OWNER=2000 COMPLETION_WAIT_SECONDS=2 \
  "$api" >.local/fuzz-api.log 2>&1 &
api_pid=$!
trap 'kill "$api_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf -m 2 "http://127.0.0.1:$port/healthz" >/dev/null && break
  kill -0 "$api_pid" 2>/dev/null || { cat .local/fuzz-api.log >&2; exit 1; }
  sleep 0.1
done

echo "== openapi: the served document is the committed one, and valid OpenAPI 3.1"
curl -sf "http://127.0.0.1:$port/openapi.json" | .venv/bin/python -c '
import json, sys
served = json.load(sys.stdin)
committed = json.load(open("docs/openapi.json"))
sys.exit("GET /openapi.json differs from docs/openapi.json" if served != committed else 0)'
.venv/bin/openapi-spec-validator docs/openapi.json

echo "== schemathesis"
rm -rf .local/fuzz-report
status=0
.venv/bin/st --no-color run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${FUZZ_EXAMPLES:-60}" --seed "${FUZZ_SEED:-12}" \
  --generation-database none --workers 1 --request-timeout 30 --suppress-health-check all --continue-on-failure \
  --report ndjson --report-dir .local/fuzz-report \
  >.local/fuzz-output.log 2>&1 || status=$?
tail -n 40 .local/fuzz-output.log
.venv/bin/python scripts/fuzz_figures.py "$status"
