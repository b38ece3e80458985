#!/usr/bin/env bash
# Builds the pinned BitRouter daemon into a cache outside the clone and reuses it when present.
# Prints the binary's path on stdout (last line); progress goes to stderr.
set -euo pipefail

VERSION="${BITROUTER_VERSION:-0.11.0}"
CACHE="${BITROUTER_MCP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bitrouter-mcp}"
ROOT="$CACHE/bitrouter-$VERSION"
BIN="$ROOT/bin/bitrouter"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "bitrouter $VERSION"; then
  echo "$BIN"
  exit 0
fi

echo "building bitrouter $VERSION into $ROOT (about 5 minutes on 2 cores)..." >&2
mkdir -p "$CACHE"
# Build into a temporary root and move it into place, so an interrupted build never looks installed.
TMP="$(mktemp -d "$CACHE/.build-XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
cargo install bitrouter --version "$VERSION" --locked --no-default-features --features sqlite \
  --root "$TMP" >&2
rm -rf "$ROOT"
mv "$TMP" "$ROOT"
trap - EXIT
"$BIN" --version >&2
echo "$BIN"
