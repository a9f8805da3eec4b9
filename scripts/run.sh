#!/usr/bin/env bash
# Sets up and starts Vortex on this machine: builds, creates and migrates the database, serves on
# http://127.0.0.1:3000 with the background workers in-process, after loading the demo candles (data/market).
# Ctrl-C stops it.
#   scripts/run.sh [debug|release]
# Uses the local Postgres and Redis (starts them if installed and stopped). Override with DATABASE_URL,
# REDIS_URL, BIND_ADDR, or a .env file (see backend.env.example).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
MODE="${1:-debug}"
cd "$ROOT"
ensure_services
bash scripts/build.sh "$MODE"
BIN="$CARGO_TARGET_DIR/$([ "$MODE" = release ] && echo release || echo debug)/vortex"
if [ -z "${DATABASE_URL:-}" ]; then
  ensure_database vortex
  export DATABASE_URL="postgres://${PGUSER:-postgres}@127.0.0.1:5432/vortex"
fi
export SITE_ROOT="$SITE_DIR"
"$BIN" check-config
"$BIN" migrate
# Demo data: the real candles in data/market (idempotent: a second run writes nothing).
log "loading the demo candles from data/market"
LOG_LEVEL="${LOG_LEVEL:-warn}" "$BIN" run-etl --source csv:data/market --exchange demo
log "Vortex is starting on http://${BIND_ADDR:-127.0.0.1:3000}"
exec "$BIN" serve
