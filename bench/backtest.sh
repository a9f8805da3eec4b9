#!/usr/bin/env bash
# Backtest speed through the whole product (issue 6): a real `vortex serve` with in-process workers, a
# signed-in browser session (curl-like HTTP client), one year of 1-minute candles (525,600; the real demo
# candles re-based and laid end to end, bench/make_market_csv.py).
#   1. click-to-result: POST /backtests/create (the form) → status.json says done, split into queue wait,
#      data load, engine and storing (the run's own timing), for the macd template; repeated RUNS times.
#   2. results page server time for a run with ≥ 2,000 trades: GET /backtests/{id} (server-rendered page),
#      chart.json and trades.csv, median of 20 requests each (server latency from the access log).
#   3. the peak RSS of the `vortex serve` process (web and in-process workers) after all of it (VmHWM).
# Uses a throw-away database and Redis namespace; prints a summary. Release build (separate target dir).
#   bench/backtest.sh [RUNS]   (default 5)
# VORTEX_BIN=path runs a given binary instead of building one (to compare builds in one session).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
RUNS="${1:-5}"
if [ -n "${VORTEX_BIN:-}" ]; then
  BIN="$VORTEX_BIN"
else
  export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$HOME/.cache/vortex/target-release}"
  nice -n 5 cargo build --release -p server >&2
  BIN="$CARGO_TARGET_DIR/release/vortex"
fi
[ -f "$SITE_DIR/pkg/vortex_bg.wasm" ] || bash scripts/build.sh debug >&2
DB="vortex_bench_bt_$$"
DIR="$(mktemp -d)"
CSV="$DIR/BENCH-USDT-1m.csv"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
LOG="$DIR/serve.log"
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  psql_admin -c "drop database if exists \"$DB\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
python3 bench/make_market_csv.py 525600 "$CSV" 1
ensure_database "$DB"
export APP_ENV=test DATABASE_URL="postgres://${PGUSER:-postgres}@127.0.0.1:5432/$DB" LOG_LEVEL=info LOG_FORMAT=json \
  REDIS_NAMESPACE="vortex-bench-$$" BIND_ADDR="127.0.0.1:$PORT" SITE_ROOT="$SITE_DIR" PUBLIC_URL="http://127.0.0.1:$PORT" \
  BACKTEST_MAX_CONCURRENT=100 API_RATE_LIMIT_PER_MINUTE=100000 EXPORT_RATE_LIMIT_PER_MINUTE=100000 MAIL_TRANSPORT=log
"$BIN" migrate >/dev/null
LOG_LEVEL=warn "$BIN" run-etl --source "csv:$CSV" >/dev/null
echo 'bench passphrase for vortex 42' | "$BIN" create-admin --email bench@example.com >/dev/null 2>&1
"$BIN" serve >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/backtest_driver.py "http://127.0.0.1:$PORT" "$RUNS" "$LOG"
echo "peak RSS of vortex serve (web + workers): $(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$PID/status")"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
