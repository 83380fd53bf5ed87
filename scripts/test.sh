#!/usr/bin/env bash
# `make test`: format and lint checks, then every test against a fresh emulator on PORT, and the
# strict S3 suite against LocalStack's S3 on STRICT_S3_PORT (default PORT + 1), and the DynamoDB
# conformance and race tests against dynalite on DYNALITE_PORT (default PORT + 2).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-4599}
strict_port=${STRICT_S3_PORT:-$((port + 1))}
dynalite_port=${DYNALITE_PORT:-$((port + 2))}
. scripts/env.sh

echo "== fmt"; cargo fmt --all -- --check
echo "== clippy"; cargo clippy --locked --workspace --all-targets -- -D warnings
# The binaries the integration and browser tests run (and `make dev` runs): one build, the same
# features as the tests' (tests/Cargo.toml holds what the tests use as normal dependencies).
echo "== build"; cargo build --locked --workspace --bins

# The local stack creates what the settings name: a custom EVENT_BUS_NAME gets its bus, its rules
# and their queues, and an event put on it reaches both (before: the webhook rule went to the
# bucket-named bus only, so webhooks never arrived).
echo "== local stack wiring (EVENT_BUS_NAME=vu-custom-bus on 127.0.0.1:$((port + 3)))"
(
  export EVENT_BUS_NAME=vu-custom-bus
  local_aws_env "$((port + 3))"
  scripts/stack.sh stop "$((port + 3))"
  scripts/stack.sh start "$((port + 3))" >/dev/null
  rc=0
  .venv/bin/python scripts/check_bootstrap.py || rc=$?
  scripts/stack.sh stop "$((port + 3))"
  exit "$rc"
)

# A fresh emulator per run, so no state leaks between runs.
scripts/stack.sh stop "$port"
scripts/strict_s3.sh stop "$strict_port"
scripts/dynalite.sh stop "$dynalite_port"
local_aws_env "$port"
trap 'scripts/stack.sh stop "$port"; scripts/strict_s3.sh stop "$strict_port"; scripts/dynalite.sh stop "$dynalite_port"' EXIT
scripts/stack.sh start "$port"
echo "== tests"
mkdir -p .local
# Examples hold no tests (clippy above compiles them); doc tests: none. The DynamoDB conformance
# and race tests and the strict S3 suite run next, each on its own emulator.
cargo test --locked --workspace --lib --bins --tests -- --skip strict_s3:: --skip conformance:: --skip races:: 2>&1 | tee .local/test-output.log

# The in-memory store and the DynamoDB adapter, change by change and in races, and the quota and
# lease races (40 callers at once), against dynalite: DynamoDB's protocol, serializing the writes
# to each item as DynamoDB does (moto does not).
echo "== DynamoDB conformance and races (dynalite on 127.0.0.1:$dynalite_port)"
scripts/dynalite.sh start "$dynalite_port"
export DYNALITE_ENDPOINT=http://127.0.0.1:$dynalite_port
cargo test --locked -p vu-tests --test it -- --show-output conformance:: races:: 2>&1 | tee .local/conformance-output.log
cat .local/conformance-output.log >>.local/test-output.log
# The tests skip (passing) without DYNALITE_ENDPOINT: a run that compared nothing showed nothing.
grep '^conformance: .* compared' .local/conformance-output.log >/dev/null ||
  { echo "conformance: nothing compared (did the test skip?)" >&2; exit 1; }
# One figure line per race: reservations, creates, sharded creates, completes fresh and after a
# dead holder, segment results of a fan-out; and the figures of one owner holding 10,000 open
# sessions.
races=$(grep -c '^races: [0-9]* concurrent' .local/conformance-output.log || true)
[ "$races" -eq 6 ] || { echo "races: $races of 6 figure lines (did a test skip?)" >&2; exit 1; }
grep '^quota: [0-9]* open sessions' .local/conformance-output.log >/dev/null ||
  { echo "quota: no figure line (did the test skip?)" >&2; exit 1; }
scripts/dynalite.sh stop "$dynalite_port"
unset DYNALITE_ENDPOINT

# What S3 itself refuses: the API's URLs and forms against LocalStack's S3, which checks
# signatures, lengths and checksums (moto checks none); DynamoDB stays on moto.
echo "== strict S3 (LocalStack's S3 on 127.0.0.1:$strict_port)"
strict_started=$(date +%s.%N)
scripts/strict_s3.sh start "$strict_port"
export STRICT_S3_ENDPOINT=http://127.0.0.1:$strict_port
cargo test --locked -p vu-tests --test it strict_s3:: -- --show-output 2>&1 | tee .local/strict-s3-output.log
cat .local/strict-s3-output.log >>.local/test-output.log
python3 - "$strict_started" <<'PY'
import re, sys, time
text = open(".local/strict-s3-output.log").read()
passed = sum(int(n) for n in re.findall(r"test result: \w+\. (\d+) passed", text))
refusals = sum(int(n) for n in re.findall(r"^strict_s3::\w+: (\d+) refusals asserted", text, re.M))
print(f"strict S3: {passed} tests passed, {refusals} refusals asserted by status and S3 error code, "
      f"{time.time() - float(sys.argv[1]):.0f} s with LocalStack's start")
# Each test skips (passing) without STRICT_S3_ENDPOINT: a run that asserted nothing showed nothing.
sys.exit("strict S3: no refusal asserted (did the suite skip?)" if refusals == 0 else 0)
PY

# The upload page and stock Uppy in headless Chromium, against the API binary and the same emulator
# (and one test against a second API whose S3 is the strict one).
echo "== browser tests"
# `cargo build --workspace --bins` built target/debug/api above.
api_bin=${CARGO_TARGET_DIR:-./target}/debug/api
API_BIN=$api_bin scripts/browser.sh test "$port" 2>&1 | tee -a .local/test-output.log
scripts/strict_s3.sh stop "$strict_port"
unset STRICT_S3_ENDPOINT
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
# node:test's TAP summary (browser/tests.mjs): `# pass N`, `# fail N`, `# cancelled N` (a test
# that timed out counts as failed).
tap = {k: sum(int(n) for n in re.findall(rf"^# {k} (\d+)$", text, re.M))
       for k in ("tests", "pass", "fail", "cancelled", "skipped")}
passed = sum(int(p) for p, _ in runs) + tap["pass"]
failed = sum(int(f) for _, f in runs) + tap["fail"] + tap["cancelled"]
print(f"browser: {tap['pass']} passed, {tap['fail'] + tap['cancelled']} failed, {tap['skipped']} skipped of {tap['tests']}"
      if tap["tests"] else "browser: no node:test summary (did the run stop early?)")
print(next((l for l in open(".local/fuzz.log") if l.startswith("fuzzing:")), "fuzzing: no figures").strip())
print(f"tests: {passed} passed, {failed} failed")
PY
