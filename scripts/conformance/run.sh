#!/usr/bin/env bash
# MCP conformance checks for bitrouter-mcp: the MCP Inspector CLI (stdio and streamable HTTP, legacy
# and modern protocol eras) and the official conformance suite's server scenarios (streamable HTTP,
# every spec version it knows, plus extensions). See README.md next to this file.
#
# Env:
#   BITROUTER_MCP_BIN           server binary (default: <repo>/target/debug/bitrouter-mcp); copied
#                               to a scratch dir first, so a rebuild during the run does not matter
#   CONFORMANCE_NODE_VERSION    Node.js from npm's node-<os>-<arch> package (default below)
#   BITROUTER_MCP_CACHE         cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/bitrouter-mcp);
#                               tools live in <root>/conformance, keyed by versions
#   CONFORMANCE_OUT             keep logs and results in this directory (default: a scratch dir
#                               that is removed at exit)
#   CONFORMANCE_SPEC_VERSIONS   spec versions to run the suite at (default below)
#   CONFORMANCE_STRICT=1        also fail when an expected failure now passes
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

NODE_VERSION="${CONFORMANCE_NODE_VERSION:-24.21.0}"
SPEC_VERSIONS="${CONFORMANCE_SPEC_VERSIONS:-2025-03-26 2025-06-18 2025-11-25 2026-07-28}"
SERVER_BIN_SRC="${BITROUTER_MCP_BIN:-$REPO/target/debug/bitrouter-mcp}"
CACHE_ROOT="${BITROUTER_MCP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bitrouter-mcp}/conformance"
# Per-scenario timeout of the suite (ms) and an upper bound for each suite process (s).
SCENARIO_TIMEOUT_MS=20000
SUITE_PROCESS_TIMEOUT_S=300

T0=$SECONDS
phase_start=$SECONDS
TIMINGS=()
phase() { # phase NAME: closes the previous phase's timing
  local now=$SECONDS
  if [ -n "${CURRENT_PHASE:-}" ]; then TIMINGS+=("$(printf '%-28s %4ss' "$CURRENT_PHASE" $((now - phase_start)))"); fi
  CURRENT_PHASE="$1"; phase_start=$now
  [ -n "$1" ] && echo "== $1" >&2
  return 0
}
die() { echo "conformance: $*" >&2; exit 2; }
# Node exits 130/143 on SIGINT/SIGTERM instead of dying of the signal, so bash does not stop by
# itself when Ctrl-C or a CI cancel reaches the whole process group: stop on such exit codes.
interrupted() { if [ "$1" -ge 128 ]; then echo "conformance: interrupted (exit $1)" >&2; exit "$1"; fi; }

# --- scratch, cleanup -------------------------------------------------------------------------
SCRATCH="$(mktemp -d -t bitrouter-mcp-conformance.XXXXXX)"
OUT="${CONFORMANCE_OUT:-$SCRATCH/out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# A reused CONFORMANCE_OUT must not mix in results of an earlier run (only our own names go).
rm -rf "$OUT/suite" "$OUT/inspector" "$OUT/inspector.json" "$OUT/suite-results.json" "$OUT/server-died" \
  "$OUT/timings.txt" "$OUT/server-http.log"
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$SCRATCH"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The server must not pick up settings of the caller's environment (an auth token would make every
# HTTP check fail with 401; config/data dir come from flags).
unset BITROUTER_MCP_AUTH_TOKEN BITROUTER_MCP_CONFIG BITROUTER_MCP_DATA_DIR BITROUTER_MCP_LOG || true

# --- 1. tools: Node >= 22.19 from npm, Inspector and conformance suite from the lockfile ---------
phase "install tools (cached)"
case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) die "unsupported OS $(uname -s)" ;; esac
case "$(uname -m)" in x86_64 | amd64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) die "unsupported CPU $(uname -m)" ;; esac
NODE_PKG="node-$os-$arch"

install_into() { # install_into DIR CMD...: runs CMD in a temp dir, moves it to DIR when it succeeds
  local dir="$1"; shift
  [ -f "$dir/.complete" ] && return 0
  command -v npm >/dev/null || die "npm is needed once to install the conformance tools"
  mkdir -p "$CACHE_ROOT"
  local tmp; tmp="$(mktemp -d "$CACHE_ROOT/.install-XXXXXX")"
  echo "installing $(basename "$dir") into $CACHE_ROOT ..." >&2
  if ! (cd "$tmp" && "$@" >"$tmp/.install.log" 2>&1); then
    cat "$tmp/.install.log" >&2; rm -rf "$tmp"; die "install of $(basename "$dir") failed"
  fi
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

NODE_DIR="$CACHE_ROOT/node-$NODE_VERSION-$os-$arch"
install_into "$NODE_DIR" sh -c "echo '{\"private\":true}' > package.json && npm install --ignore-scripts --no-audit --no-fund --engine-strict=false $NODE_PKG@$NODE_VERSION"
NODE="$NODE_DIR/node_modules/$NODE_PKG/bin/node"
[ -x "$NODE" ] || die "no node binary at $NODE"

sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi; }
lock_hash="$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256 | cut -c1-12)"
versions="$("$NODE" -e 'const d=require(process.argv[1]).dependencies;console.log(Object.entries(d).map(([k,v])=>k.split("/").pop()+"-"+v).join("_"))' "$HERE/package.json")"
TOOLS_DIR="$CACHE_ROOT/tools-${versions}-$lock_hash"
install_into "$TOOLS_DIR" sh -c "cp '$HERE/package.json' '$HERE/package-lock.json' . && npm ci --ignore-scripts --no-audit --no-fund --engine-strict=false"
INSPECTOR_JS="$TOOLS_DIR/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"
SUITE_JS="$TOOLS_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
[ -f "$INSPECTOR_JS" ] && [ -f "$SUITE_JS" ] || die "tools missing under $TOOLS_DIR (remove it to reinstall)"
echo "node $("$NODE" --version), inspector $("$NODE" "$INSPECTOR_JS" --cli --version 2>/dev/null | tail -1), conformance $("$NODE" "$SUITE_JS" --version)" >&2

# --- 2. the server --------------------------------------------------------------------------------
phase "start server"
[ -x "$SERVER_BIN_SRC" ] || die "no server binary at $SERVER_BIN_SRC (build it, or set BITROUTER_MCP_BIN)"
BIN="$SCRATCH/bitrouter-mcp"
cp "$SERVER_BIN_SRC" "$BIN"
free_port() { "$NODE" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
HTTP_PORT="$(free_port)"
DAEMON_PORT="$(free_port)"
while [ "$DAEMON_PORT" = "$HTTP_PORT" ]; do DAEMON_PORT="$(free_port)"; done
CFG="$SCRATCH/config.json"
printf '{"autoStart": false, "port": %s}\n' "$DAEMON_PORT" >"$CFG"
mkdir -p "$SCRATCH/data-http"
HTTP_URL="http://127.0.0.1:$HTTP_PORT/mcp"

"$BIN" serve --http "127.0.0.1:$HTTP_PORT" --data-dir "$SCRATCH/data-http" --config "$CFG" \
  </dev/null >"$OUT/server-http.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server-http.log" >&2; die "the server exited at startup"; }
  (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null || { cat "$OUT/server-http.log" >&2; die "the server did not listen on 127.0.0.1:$HTTP_PORT"; }
echo "server pid $SERVER_PID at $HTTP_URL" >&2

# --- 3. Inspector CLI -------------------------------------------------------------------------
phase "inspector (stdio + http)"
mkdir -p "$SCRATCH/inspector/home"
# Inspector state (catalog, client config, ~/.mcp-inspector) stays in the scratch dir.
export MCP_CATALOG_PATH="$SCRATCH/inspector/mcp.json" MCP_CLIENT_CONFIG_PATH="$SCRATCH/inspector/client.json"
INSPECT_NODE="$NODE" INSPECT_JS="$INSPECTOR_JS" INSPECT_HTTP_URL="$HTTP_URL" INSPECT_OUT="$OUT" \
  INSPECT_BIN="$BIN" INSPECT_CFG="$CFG" INSPECT_STDIO_DATA="$SCRATCH/data-stdio" INSPECT_HOME="$SCRATCH/inspector/home" \
  "$NODE" "$HERE/inspector.mjs" || interrupted $? # verdicts are in $OUT/inspector.json, judged by report.mjs

# --- 4. conformance suite, server scenarios over streamable HTTP ------------------------------
phase "conformance suite (http)"
run_suite() { # run_suite LABEL ARGS...: one suite process, results in $OUT/suite/LABEL
  local label="$1"; shift
  mkdir -p "$OUT/suite/$label"
  local rc=0
  timeout "$SUITE_PROCESS_TIMEOUT_S" "$NODE" "$SUITE_JS" server --url "$HTTP_URL" --timeout "$SCENARIO_TIMEOUT_MS" \
    -o "$OUT/suite/$label" "$@" >>"$OUT/suite/$label/stdout.log" 2>&1 || rc=$?
  [ "$rc" = 124 ] || interrupted "$rc"
  echo "$rc" >>"$OUT/suite/$label/exit-code"
  # The suite exits 1 when a scenario fails; report.mjs judges those. Anything else is a crash.
  if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
    echo "suite process ($*) ended with exit $rc$([ "$rc" = 124 ] && echo ", killed after ${SUITE_PROCESS_TIMEOUT_S}s")" |
      tee -a "$OUT/suite/$label/crashes" >&2
  fi
  return 0
}
for v in $SPEC_VERSIONS; do
  t=$SECONDS
  run_suite "$v" --suite all --spec-version "$v"
  printf '  spec %-12s %3ss\n' "$v" $((SECONDS - t)) >&2
done
# Extension scenarios (tasks, skills, ...) belong to no spec version's run; they run one at a time
# at the version the suite infers for each.
t=$SECONDS
extensions="$("$NODE" "$SUITE_JS" list --server | sed -n 's/^ *- \([^ ]*\) \[extension\]$/\1/p')"
for s in $extensions; do run_suite extensions --scenario "$s"; done
printf '  %-17s %3ss (%s scenarios)\n' extensions $((SECONDS - t)) "$(echo "$extensions" | wc -w)" >&2
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "conformance: the HTTP server died during the run; its log:" >&2
  tail -50 "$OUT/server-http.log" >&2
  echo "server-died" >"$OUT/server-died"
fi

# --- 5. verdict -------------------------------------------------------------------------------
phase ""
TIMINGS+=("$(printf '%-28s %4ss' total $((SECONDS - T0)))")
printf '%s\n' "${TIMINGS[@]}" >"$OUT/timings.txt"
[ -n "${CONFORMANCE_OUT:-}" ] || echo "(set CONFORMANCE_OUT=<dir> to keep logs and per-check results)" >&2
rc=0
REPORT_OUT="$OUT" REPORT_EXPECTED="$HERE/expected-failures.txt" REPORT_STRICT="${CONFORMANCE_STRICT:-0}" \
  "$NODE" "$HERE/report.mjs" || rc=$?
exit "$rc"
