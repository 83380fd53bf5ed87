#!/usr/bin/env bash
# Checks template.yaml as CI does: cfn-lint, sam validate --lint, and sam build (every function,
# release, arm64, through cargo-lambda and Zig from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$PWD/.venv
stamp=.local/requirements-deploy.installed
mkdir -p .local
if ! cmp -s scripts/requirements-deploy.txt "$stamp"; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-deploy.txt
  cp scripts/requirements-deploy.txt "$stamp"
fi
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
export PATH=$venv/bin:$PATH SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
echo "== cfn-lint"; cfn-lint template.yaml
echo "== sam validate --lint"; sam validate --lint
echo "== template rules"; python scripts/template_rules.py
echo "== template alarms"; python scripts/template_alarms.py
if [ "${SKIP_SAM_BUILD:-}" != 1 ]; then
  echo "== sam build"; sam build
  ls -l .aws-sam/build/{Api,Verifier,Webhook}Function/bootstrap
fi
