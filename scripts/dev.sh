#!/usr/bin/env bash
# `make dev`: the emulator on 127.0.0.1:PORT (S3 + DynamoDB + SQS + EventBridge: bucket, table,
# verifier queue, event bus and its rules) and the API on LISTEN_ADDR (127.0.0.1:3000), which also
# does the functions' work: verifier queue, sweep, and webhooks when WEBHOOK_URL and WEBHOOK_SECRET
# are set. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-4566}
. scripts/env.sh
local_aws_env "$port"
trap 'scripts/stack.sh stop "$port"' EXIT
scripts/stack.sh start "$port"
# The same build as `make test` (every binary, the same features): nothing is compiled twice.
cargo build --locked --workspace --bins
echo "Verdict events: bus $EVENT_BUS_NAME -> $AWS_ENDPOINT_URL/123456789012/$BUCKET_NAME-events (SQS)${WEBHOOK_URL:+; webhooks to $WEBHOOK_URL}"
echo "API and upload page: http://${LISTEN_ADDR:-127.0.0.1:3000}/  (Uppy example: /uppy.html; emulator: $AWS_ENDPOINT_URL)  Ctrl-C stops both"
./target/debug/api
