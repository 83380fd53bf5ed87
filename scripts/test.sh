#!/usr/bin/env bash
# `make test`: format and lint checks, then every test against a fresh emulator on PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-4599}
. scripts/env.sh

echo "== fmt"; cargo fmt --all -- --check
echo "== clippy"; cargo clippy --locked --all-targets -- -D warnings

# A fresh emulator per run, so no state leaks between runs.
scripts/stack.sh stop "$port"
local_aws_env "$port"
trap 'scripts/stack.sh stop "$port"' EXIT
scripts/stack.sh start "$port"
echo "== tests"
mkdir -p .local
# Examples hold no tests (clippy above compiles them); doc tests: none.
cargo test --locked --lib --bins --tests 2>&1 | tee .local/test-output.log
# The upload page and stock Uppy in headless Chromium, against the API binary and the same emulator.
echo "== browser tests"
# `cargo test` built target/debug/api for the integration tests (with the same features).
api_bin=${CARGO_TARGET_DIR:-./target}/debug/api
API_BIN=$api_bin scripts/browser.sh test "$port" 2>&1 | tee -a .local/test-output.log
# Schemathesis against the same binary and emulator: every route, seeded, the figures printed.
echo "== fuzzing (schemathesis)"
API_BIN=$api_bin scripts/fuzz.sh "$port" 2>&1 | tee .local/fuzz.log
scripts/stack.sh stop "$port"
trap - EXIT

# Last, because it compiles release arm64 binaries: template checks and `sam build`.
scripts/template-check.sh

# One closing line over every test binary.
python3 - <<'PY'
import re
text = open(".local/test-output.log").read()
runs = re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed", text)
print(f"tests: {sum(int(p) for p, _ in runs)} passed, {sum(int(f) for _, f in runs)} failed")
print(next((l for l in open(".local/fuzz.log") if l.startswith("fuzzing:")), "fuzzing: no figures").strip())
PY
