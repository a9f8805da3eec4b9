#!/usr/bin/env bash
# Market-data speed (issue 5): import of N candles (default 1 M) through `vortex run-etl --source csv:` vs
# `psql \copy` of the same file into an identically keyed table, and loading the series back into engine columns
# vs `COPY … TO STDOUT (FORMAT binary)` of the same rows. Uses a throw-away database; prints one line per measurement.
#   bench/market.sh [ROWS]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ROWS="${1:-1000000}"
DB="vortex_bench_market_$$"
CSV="$(mktemp -d)/BENCH-BTC-5m.csv"
cleanup() { psql_admin -c "drop database if exists \"$DB\" with (force)" >/dev/null 2>&1 || true; rm -f "$CSV"; }
trap cleanup EXIT
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$HOME/.cache/vortex/target-release}"
cargo build --release -p server >&2
cargo build --release -p backend --example market_load >&2
BIN="$CARGO_TARGET_DIR/release/vortex"
python3 bench/make_market_csv.py "$ROWS" "$CSV"
ensure_database "$DB"
export DATABASE_URL="postgres://${PGUSER:-postgres}@127.0.0.1:5432/$DB" LOG_LEVEL=warn APP_ENV=test
"$BIN" migrate
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U "${PGUSER:-postgres}" -d "$DB" "$@"; }
secs() { python3 -c "import time; print(time.time())"; }

psql_db -c "create table bench_copy (instrument_id integer not null default 1, timeframe text not null default '5m',
  open_time timestamptz not null, open float8 not null, high float8 not null, low float8 not null,
  close float8 not null, volume float8 not null, primary key (instrument_id, timeframe, open_time))"
t0=$(secs); psql_db -c "\\copy bench_copy (open_time, open, high, low, close, volume) from '$CSV' csv header"; t1=$(secs)
t2=$(secs); "$BIN" run-etl --source "csv:$CSV" >/dev/null; t3=$(secs)
python3 - "$ROWS" "$t0" "$t1" "$t2" "$t3" <<'PY'
import sys
rows, t0, t1, t2, t3 = int(sys.argv[1]), *map(float, sys.argv[2:])
c, v = t1 - t0, t3 - t2
print(f"import {rows} candles: psql \\copy {c:.2f} s ({rows/c:,.0f} rows/s); vortex run-etl {v:.2f} s ({rows/v:,.0f} rows/s); ratio {v/c:.2f}x")
PY
ID=$(psql_db -tAc "select instrument_id from instrument where symbol = 'BENCHBTC'")
# loading back: binary COPY (the floor), load_candles, and the row protocol, interleaved (see the example's doc)
"$CARGO_TARGET_DIR/release/examples/market_load" "$ID" 5m
