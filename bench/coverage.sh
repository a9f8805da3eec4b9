#!/usr/bin/env bash
# Market coverage at scale (issue 11, item 8): N candles (default 10 M, in 4 series of 1m candles with a gap
# every 10,007 candles) in a throw-away database, then
#   before: the queries every /market view used to run (min/max/count and a window scan of every series),
#   after:  GET /api/v1/market/coverage, /api/market_overview and /market from a real `vortex serve`, which
#           read the coverage kept by the candle writer (market_coverage, market_gap).
# The candles are generated in SQL and the coverage tables filled with the migration's own backfill, so the
# run takes minutes, not the hour a 10 M-row CSV import would. Prints one line per measurement.
#   bench/coverage.sh [CANDLES]
# Uses the debug build of `vortex` (VORTEX_BIN to use another); run `cargo build -p server` first.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
N="${1:-10000000}"
SERIES=4
DB="vortex_bench_coverage_$$"
BIN="${VORTEX_BIN:-$CARGO_TARGET_DIR/debug/vortex}"
[ -x "$BIN" ] || die "no vortex binary at $BIN (cargo build -p server, or set VORTEX_BIN)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  psql_admin -c "drop database if exists \"$DB\" with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
ensure_database "$DB"
export DATABASE_URL="postgres://${PGUSER:-postgres}@127.0.0.1:5432/$DB" LOG_LEVEL=warn APP_ENV=test \
  REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}" REDIS_NAMESPACE="bench-coverage-$$" \
  BIND_ADDR="127.0.0.1:$PORT" PUBLIC_URL="http://127.0.0.1:$PORT" \
  JWT_SECRET="bench-only-secret-bench-only-secret-bench-only" SITE_ROOT="${SITE_ROOT:-target/site}"
"$BIN" migrate >/dev/null
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U "${PGUSER:-postgres}" -d "$DB" "$@"; }
secs() { python3 -c "import time; print(time.time())"; }

log "generating $N candles in $SERIES series"
t0=$(secs)
for s in $(seq 1 $SERIES); do
  psql_db -c "insert into instrument (exchange, symbol, base, quote) values ('bench', 'B${s}USDT', 'B$s', 'USDT')"
  psql_db -c "insert into market_series (instrument_id, timeframe, last_update_at)
              select instrument_id, '1m', now() from instrument where symbol = 'B${s}USDT'"
  psql_db -c "insert into candle (instrument_id, timeframe, open_time, open, high, low, close, volume)
              select i.instrument_id, '1m', timestamptz '2005-01-01' + n * interval '1 minute',
                     100 + n % 97, 101 + n % 97, 99 + n % 97, 100.5 + n % 97, 10
              from instrument i, generate_series(0, $N / $SERIES - 1) n
              where i.symbol = 'B${s}USDT' and n % 10007 <> 5000"
done
psql_db -c "analyze candle"
t1=$(secs)
# The coverage tables as the migration fills them for existing candles.
psql_db -c "truncate market_coverage, market_gap"
sed -n '/^-- Existing candles/,$p' migrations/20261204000040_create_market_coverage.sql | psql_db
t2=$(secs)
python3 - "$N" "$t0" "$t1" "$t2" <<'PY'
import sys
n, t0, t1, t2 = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"setup: {n:,} candles generated in {t1-t0:.0f} s; coverage backfilled (one scan) in {t2-t1:.1f} s")
PY

# Before: what every page view ran (series with min/max/count, then a window scan per series for gaps).
OLD_SERIES="select i.instrument_id, s.timeframe, c.first, c.last, coalesce(c.n, 0)
  from market_series s join instrument i using (instrument_id)
  left join lateral (select min(open_time) as first, max(open_time) as last, count(*) as n
                     from candle where instrument_id = s.instrument_id and timeframe = s.timeframe) c on true"
old_gaps() {
  echo "with steps as (select lag(open_time) over (order by open_time) as prev, open_time
          from candle where instrument_id = $1 and timeframe = '1m'),
       g as (select prev, open_time, (extract(epoch from open_time - prev) * 1000)::bigint / 60000 - 1 as missing
             from steps where prev is not null and open_time - prev > interval '1 minute')
       select prev, open_time, missing, count(*) over (), sum(missing) over ()::bigint from g order by prev limit 1000;"
}
IDS=$(psql_db -tAc "select instrument_id from instrument where exchange = 'bench' order by 1")
t0=$(secs)
psql_db -c "$OLD_SERIES" >/dev/null
for id in $IDS; do psql_db -c "$(old_gaps "$id")" >/dev/null; done
t1=$(secs)
python3 - "$N" "$t0" "$t1" <<'PY'
import sys
n, t0, t1 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"before: one coverage view (full scans) at {n:,} candles: {(t1-t0)*1000:,.0f} ms")
PY

# After: the real server.
"$BIN" serve --no-worker >/dev/null 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 0.2
done
for path in /api/v1/market/coverage /api/market_overview /market; do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT$path"   # warm up
  TIMES=""
  for _ in $(seq 1 20); do
    TIMES="$TIMES $(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT$path")"
  done
  python3 - "$N" "$path" $TIMES <<'PY'
import sys, statistics
n, path, t = int(sys.argv[1]), sys.argv[2], sorted(float(x) * 1000 for x in sys.argv[3:])
print(f"after: GET {path} at {n:,} candles: median {statistics.median(t):.1f} ms, max {t[-1]:.1f} ms (20 requests)")
PY
done
