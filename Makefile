# Two commands on a fresh machine:
#   make run   installs the pinned BitRouter daemon if missing, builds and runs the MCP server
#              (streamable HTTP on 127.0.0.1:8788/mcp; `make run ARGS=--stdio` for stdio)
#   make test  installs what the tests need and runs every check and test
.PHONY: run test lint rust-test adapter-test bitrouter build bench

ARGS ?= --http 127.0.0.1:8788

bitrouter:
	@scripts/install-bitrouter.sh >/dev/null

build:
	cargo build --release --locked

run: bitrouter build
	target/release/bitrouter-mcp serve $(ARGS)

lint:
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings

rust-test: bitrouter
	BITROUTER_BIN="$$(scripts/install-bitrouter.sh)" cargo test --locked

adapter-test:
	cd openclaw-adapter && node --test

test: lint rust-test adapter-test

# Benchmarks (figures printed, not asserted): daemon spawn -> healthy, kill -9 -> healthy again.
bench: bitrouter
	BITROUTER_BIN="$$(scripts/install-bitrouter.sh)" cargo bench --locked --bench lifecycle
