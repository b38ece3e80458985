# Two commands on a fresh machine:
#   make run   installs the pinned BitRouter daemon if missing, builds and runs the MCP server
#              (streamable HTTP on 127.0.0.1:8788/mcp; `make run ARGS=--stdio` for stdio)
#   make test  installs what the tests need and runs every check and test
.PHONY: run test lint rust-test adapter-test contract conformance e2e bitrouter chromium build bench npm-packages npm-test npm-e2e

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

# npm install --no-save: the plugin's one dependency (the MCP SDK) at the committed lockfile's versions
# (not npm ci: the optional server package is not on the public registry, so the lockfile cannot list it).
adapter-test:
	cd openclaw-adapter && npm install --no-save --prefer-offline --no-audit --no-fund --loglevel=error && node --test

# Regenerates the OpenClaw manifest's configSchema and the adapter's server facts from the Rust config
# model (`cargo test --test contract` fails while they are stale); review the diff.
contract:
	UPDATE_SNAPSHOTS=1 cargo test --locked --test contract

# MCP Inspector CLI + official conformance suite against the debug build (Node from npm, cached).
conformance: rust-test
	BITROUTER_MCP_BIN=target/debug/bitrouter-mcp scripts/conformance/run.sh

# Real OpenClaw 2026.9.6 (Node 26 from npm, cached) -> hook -> real daemon -> fake upstream.
# Its npm-pack phase is off: the plugin now depends on the server package, which only a registry
# has; npm-e2e installs the published shape from a local one.
e2e: rust-test
	E2E_TARBALL=0 BITROUTER_MCP_BIN="$$(pwd)/target/debug/bitrouter-mcp" BITROUTER_BIN="$$(scripts/install-bitrouter.sh)" \
		openclaw-adapter/scripts/e2e.sh

# npm packages (tarballs in target/npm/) from the dist profile, stripped; then installed as published:
# local Verdaccio, fresh HOME, no Rust on PATH; npx and OpenClaw's managed install.
npm-packages: bitrouter
	node scripts/npm-packages.mjs

npm-test:
	node --test npm/tests/launcher.test.js

npm-e2e: npm-packages
	scripts/npm-e2e.sh

test: lint rust-test adapter-test npm-test conformance e2e npm-e2e

# Benchmarks (figures printed, not asserted): MCP latency, daemon lifecycle and failover on the real
# daemon, bitrouter_usage over 100,000 logged requests.
bench: bitrouter
	BITROUTER_BIN="$$(scripts/install-bitrouter.sh)" cargo bench --locked --bench latency --bench breakdown --bench cli --bench throughput --bench lifecycle --bench failover --bench sessions --bench usage
