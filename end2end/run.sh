#!/usr/bin/env bash
# Starts a fresh Vortex (own database, own Redis namespace, free port) from the debug build and runs the
# Playwright browser test against it. Expects `scripts/build.sh debug` to have run (VORTEX_BIN: another binary).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
BIN="${VORTEX_BIN:-$CARGO_TARGET_DIR/debug/vortex}"
[ -x "$BIN" ] || die "build first: scripts/build.sh debug"
[ -f "$SITE_DIR/pkg/vortex_bg.wasm" ] || die "site not built: scripts/build.sh debug"
command -v chromium >/dev/null || die "chromium is not installed (apt-get install chromium)"

DB="vortex_e2e_$$"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
SMTP_PORT="$(free_port)"
STRIPE_PORT="$(free_port)"
LOG="$(mktemp)"
ensure_database "$DB"
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  psql_admin -c "drop database if exists \"$DB\" with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

export APP_ENV=test DATABASE_URL="postgres://${PGUSER:-postgres}@127.0.0.1:5432/$DB" \
  REDIS_NAMESPACE="vortex-e2e-$$" BIND_ADDR="127.0.0.1:$PORT" SITE_ROOT="$SITE_DIR" LOG_FORMAT=json \
  PUBLIC_URL="http://127.0.0.1:$PORT" SMTP_URL="smtp://127.0.0.1:$SMTP_PORT"
# A finished backtest's email waits out its coalescing window (a sweep of runs becomes one message), released
# by the notifications tick: one second each here, so the browser test sees the mail promptly.
export NOTIFY_COALESCE_SECS=1 NOTIFY_TICK_SECS=1
# Paper trading: the demo data is the live feed (tracked, on the configured exchange); there is no market
# source to ask for the time (the start falls back to the local clock), and the paper tick looks for new
# candles every second, so a candle the browser test stores reaches its run at once.
export MARKET_DATA_EXCHANGE=demo MARKET_DATA_URL="http://127.0.0.1:9" PAPER_TICK_SECS=1
# Payments: the browser test's own stand-in for Stripe (end2end/mock_stripe.mjs) on STRIPE_PORT, started by the
# test before it buys a plan; the key and signing secret are test values known to both sides.
export PAYMENT_PROVIDER=stripe STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT" STRIPE_API_KEY=sk_test_e2e_mock_key \
  STRIPE_WEBHOOK_SECRET=whsec_e2e_mock_signing_secret
"$BIN" migrate
LOG_LEVEL=warn "$BIN" run-etl --source csv:data/market/ADA-BTC-5m.csv >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U "${PGUSER:-postgres}" -d "$DB" -c "update market_series set tracked = true"
"$BIN" serve >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { cat "$LOG"; die "vortex did not start"; }

cd end2end
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
BASE_URL="http://127.0.0.1:$PORT" SMTP_PORT="$SMTP_PORT" STRIPE_PORT="$STRIPE_PORT" VORTEX_BIN="$BIN" node browser.test.mjs || {
  echo "--- server log: warnings and errors ---"; grep -v '"level":"INFO"' "$LOG" | tail -40; exit 1; }
