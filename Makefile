# Two commands on a fresh machine:
#   make run   installs the pinned BitRouter daemon if missing, builds and runs the MCP server
#              (streamable HTTP on 127.0.0.1:8788/mcp; `make run ARGS=--stdio` for stdio)
#   make test  installs what the tests need and runs every check and test
.PHONY: run test lint rust-test adapter-test conformance e2e bitrouter chromium build bench

ARGS ?= --http 127.0.0.1:8788

bitrouter:
	@scripts/install-bitrouter.sh >/dev/null

# Debian's Chromium for the dashboard's browser test; installed once per machine.
chromium:
	@scripts/install-chromium.sh >/dev/null

build:
	cargo build --release --locked

run: bitrouter build
	target/release/bitrouter-mcp serve $(ARGS)

lint:
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings

rust-test: bitrouter chromium
	BITROUTER_BIN="$$(scripts/install-bitrouter.sh)" cargo test --locked

adapter-test:
	cd openclaw-adapter && node --test

# MCP Inspector CLI + official conformance suite against the debug build (Node from npm, cached).
conformance: rust-test
	BITROUTER_MCP_BIN=target/debug/bitrouter-mcp scripts/conformance/run.sh

# Real OpenClaw 2026.9.6 (Node 26 from npm, cached) -> hook -> real daemon -> fake upstream.
e2e: rust-test
	BITROUTER_MCP_BIN="$$(pwd)/target/debug/bitrouter-mcp" BITROUTER_BIN="$$(scripts/install-bitrouter.sh)" \
		openclaw-adapter/scripts/e2e.sh

test: lint rust-test adapter-test conformance e2e

# Benchmarks (figures printed, not asserted): daemon lifecycle and failover on the real daemon.
bench: bitrouter
	BITROUTER_BIN="$$(scripts/install-bitrouter.sh)" cargo bench --locked --bench mcp --bench lifecycle --bench failover
