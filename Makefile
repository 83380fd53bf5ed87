# Two commands on a fresh machine: `make dev` runs the service locally, `make test` passes the tests.
.PHONY: dev test lint unit setup stack-start stack-stop template bench browser-test fuzz openapi

# Emulator ports: dev and test stacks can run side by side.
DEV_PORT ?= 4566
TEST_PORT ?= 4599

setup:
	scripts/stack.sh setup
	scripts/browser.sh deps
	rustup component add rustfmt clippy >/dev/null 2>&1 || true

dev: setup
	scripts/dev.sh $(DEV_PORT)

test: setup
	scripts/test.sh $(TEST_PORT)

bench: setup
	scripts/bench.sh

template:
	scripts/template-check.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

# Unit tests of every crate: no emulator needed.
unit:
	cargo test --locked --workspace --lib

# Browser tests only, against a running `make stack-start` emulator; T=<part of a test name>.
browser-test: setup
	scripts/browser.sh test $(DEV_PORT) "$(T)"

# Schemathesis only, against a running `make stack-start` emulator (builds the api binary).
fuzz: setup
	scripts/fuzz.sh $(DEV_PORT)

# Rewrites docs/openapi.json from the code (the test that compares them then passes).
openapi:
	UPDATE_OPENAPI=1 cargo test --locked -p vu-functions --lib openapi::tests::the_committed_document_is_the_generated_one

stack-start:
	scripts/stack.sh start $(DEV_PORT)

stack-stop:
	scripts/stack.sh stop $(DEV_PORT)
