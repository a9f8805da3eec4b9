#!/usr/bin/env bash
# Builds the `vortex` binary and the site it serves (wasm bundle, JS glue, CSS, public files) into target/site.
#   scripts/build.sh [debug|release]
# Download-free: wasm-bindgen-cli comes from crates.io; wasm-opt (release only, optional) from npm's binaryen,
# never Debian's (its output breaks hydration).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
MODE="${1:-debug}"
cd "$ROOT"
ensure_wasm_target
ensure_wasm_bindgen

case "$MODE" in
  debug)   WASM_PROFILE=dev;          WASM_DIR=debug;        SERVER_FLAGS=() ;;
  release) WASM_PROFILE=wasm-release; WASM_DIR=wasm-release; SERVER_FLAGS=(--release) ;;
  *) die "usage: scripts/build.sh [debug|release]" ;;
esac

log "building the wasm bundle ($MODE)"
cargo build -p frontend --target wasm32-unknown-unknown --profile "$WASM_PROFILE"
log "building the server ($MODE)"
cargo build -p server "${SERVER_FLAGS[@]}"

log "assembling $SITE_DIR"
rm -rf "$SITE_DIR.tmp" && mkdir -p "$SITE_DIR.tmp/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$SITE_DIR.tmp/pkg" --out-name vortex \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$WASM_DIR/frontend.wasm"
if [ "$MODE" = release ]; then
  WASM_OPT="${WASM_OPT:-$ROOT/node_modules/.bin/wasm-opt}"
  if [ -x "$WASM_OPT" ]; then
    log "optimising wasm with $("$WASM_OPT" --version)"
    "$WASM_OPT" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
      "$SITE_DIR.tmp/pkg/vortex_bg.wasm" -o "$SITE_DIR.tmp/pkg/vortex_bg.wasm"
  else
    log "wasm-opt not found (npm install binaryen@132 for a smaller bundle); shipping unoptimised wasm"
  fi
fi
cp style/main.css "$SITE_DIR.tmp/pkg/vortex.css"
cp -r public/. "$SITE_DIR.tmp/"
rm -rf "$SITE_DIR" && mv "$SITE_DIR.tmp" "$SITE_DIR"
BIN_DIR=debug; [ "$MODE" = release ] && BIN_DIR=release
log "done: $CARGO_TARGET_DIR/$BIN_DIR/vortex and $SITE_DIR"
ls -l "$SITE_DIR/pkg" >&2
