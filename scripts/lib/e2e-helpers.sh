# Shell helpers shared by the end-to-end scripts (openclaw-adapter/scripts/e2e.sh, scripts/npm-e2e.sh).
# Sourced, not run. The sourcing script sets PASSED=0 and FAILED=0 (counted by ok/fail/die); `check`,
# `free_port` and `port_closed` run "$NODE" when it is set, else the `node` on PATH. Log lines are
# prefixed with the sourcing script's name (e2e, npm-e2e).

E2E_NAME="$(basename "$0" .sh)"

# Running and not a zombie (a reaped-later child must not count as alive).
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
stop_pid() { # <pid> [signal]: signal a process we started (TERM by default), KILL it after 10 s
  local pid="$1"
  alive "$pid" || return 0
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

log() { echo "$E2E_NAME: $*" >&2; }
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1${2:+ -- $2}"; }
die() { # a failure later phases cannot do without: report it and stop
  FAILED=$((FAILED + 1))
  echo "FAIL $*"
  phase_end
  echo "$PASSED passed, $FAILED failed"
  exit 1
}

now() { echo "${EPOCHREALTIME:-$(date +%s)}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; } # <start from `now`>: seconds, 1 decimal
PHASE=""
PHASE_T0=""
phase_end() {
  [ -n "$PHASE" ] && printf '%s: phase %-9s %6.1f s\n' "$E2E_NAME" "$PHASE" "$(since "$PHASE_T0")" >&2
  PHASE=""
}
phase() { phase_end; PHASE="$1"; PHASE_T0="$(now)"; echo "== $1" >&2; }

# check <json-file> <js expression over `d`> <description>
check() {
  if "${NODE:-node}" -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));process.exit((0,eval)("(d)=>("+process.argv[2]+")")(d)?0:1)' "$1" "$2" 2>/dev/null; then
    ok "$3"
  else
    fail "$3" "$(head -c 1500 "$1" 2>/dev/null)"
  fi
}
free_port() { "${NODE:-node}" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port_closed() { "${NODE:-node}" -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1");s.on("connect",()=>process.exit(1));s.on("error",()=>process.exit(0))' "$1"; }
