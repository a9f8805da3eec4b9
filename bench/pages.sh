#!/usr/bin/env bash
# Server-rendered page throughput against nginx serving the same HTML as static files (issue 16, goal 5).
# A real `vortex serve` (release build, in-process workers, LOG_LEVEL=info as in production) on a throw-away
# database with a signed-in trader who has 50 finished backtests; nginx on this machine serves the HTML that
# vortex answered for each page, saved to files. `wrk` runs each page against both, one after the other, with
# one keep-alive connection and with 32, and prints req/s, p50 and p99 and the ratio vortex / nginx.
# `/backtests` is answered from the signed-in page cache after its first render (server/src/signed_in_cache.rs);
# the row `/backtests*` asks for a URL never asked before on every request (`?r=<thread>-<n>`, which the page
# ignores), so each one is rendered: the cost of a miss.
#   bench/pages.sh [SECONDS]   (default 10 per measurement)
# PAGES="/backtests" measures only the pages named (of /, /signin, /backtests, /backtests*); REPEAT=n measures
# each page and connection count n times in a row (p99 varies from run to run: see bench/RESULTS.md). At the
# end it prints the signed-in page cache's counters (hits, misses, requests that waited for another's render).
# VORTEX_BIN=path runs a given binary instead of building one (to compare builds in one session).
# PERF_DIR=dir also records a CPU profile of vortex (`perf record`, call graphs) during each 32-connection
# measurement into dir/<page>.data (the figures of such a run are not comparable: perf takes CPU too).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
SECS="${1:-10}"
command -v wrk >/dev/null || die "wrk is needed (Debian: apt-get install wrk)"
[ -x /usr/sbin/nginx ] || die "nginx is needed (Debian: apt-get install nginx)"
ensure_services
if [ -z "${VORTEX_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$HOME/.cache/vortex/target-release}"
  nice -n 5 cargo build --release -p server >&2
  VORTEX_BIN="$CARGO_TARGET_DIR/release/vortex"
fi
[ -f "$SITE_DIR/pkg/vortex_bg.wasm" ] || bash scripts/build.sh debug >&2
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DB="vortex_bench_pages_$$"
DIR="$(mktemp -d)"
PORT="$(free_port)"
NGINX_PORT="$(free_port)"
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null || true
  psql_admin -c "drop database if exists \"$DB\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
ensure_database "$DB"
export APP_ENV=test DATABASE_URL="postgres://${PGUSER:-postgres}@127.0.0.1:5432/$DB" LOG_LEVEL=info LOG_FORMAT=json \
  REDIS_NAMESPACE="vortex-bench-pages-$$" BIND_ADDR="127.0.0.1:$PORT" SITE_ROOT="$SITE_DIR" \
  PUBLIC_URL="http://127.0.0.1:$PORT" BACKTEST_MAX_CONCURRENT=100 API_RATE_LIMIT_PER_MINUTE=100000 MAIL_TRANSPORT=log
"$VORTEX_BIN" migrate >/dev/null
LOG_LEVEL=warn "$VORTEX_BIN" run-etl --source "csv:data/market/ETH-BTC-5m.csv" >/dev/null
echo 'bench passphrase for vortex 42' | "$VORTEX_BIN" create-admin --email bench@example.com >/dev/null 2>&1
"$VORTEX_BIN" serve >"$DIR/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
mkdir -p "$DIR/html"
chmod 755 "$DIR" "$DIR/html"  # nginx workers read the saved pages
# Signs in, makes 50 finished backtests, saves each page's HTML and the session cookie.
python3 - "http://127.0.0.1:$PORT" "$DIR" <<'PY'
import http.cookiejar, json, re, sys, time, urllib.parse, urllib.request
base, out = sys.argv[1], sys.argv[2]
jar = http.cookiejar.CookieJar()
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
def req(method, path, data=None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    r = urllib.request.Request(base + path, data=body, method=method)
    if body is not None: r.add_header('content-type', 'application/x-www-form-urlencoded')
    try:
        resp = op.open(r, timeout=60); return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e: return e.code, e.headers, e.read()
def csrf(path):
    return re.search(rb'name="csrf-token" content="([^"]+)"', req('GET', path)[2]).group(1).decode()
# the public pages as a visitor sees them (before signing in)
for path, name in (('/', 'index.html'), ('/signin', 'signin.html')):
    st, _, html = req('GET', path); assert st == 200, (path, st)
    open(f'{out}/html/{name}', 'wb').write(html)
st, h, _ = req('POST', '/auth/signin', {'csrf': csrf('/signin'), 'email': 'bench@example.com',
                                        'password': 'bench passphrase for vortex 42'})
assert st == 303, st
st, h, _ = req('POST', '/strategies/create', {'csrf': csrf('/strategies'), 'template': 'sma_cross', 'name': 'bench'})
assert st == 303, st
strategy = re.search(r'/strategies/([0-9a-f-]{36})', h['location']).group(1)
form = req('GET', '/backtests/new')[2]
instrument = re.search(rb'name="instrument_id" value="(\d+)"', form).group(1).decode()
ids = []
for i in range(50):
    st, h, body = req('POST', '/backtests/create', [
        ('csrf', csrf('/backtests/new')), ('strategy_id', strategy), ('instrument_id', instrument),
        ('timeframe', '5m'), ('from', '2017-01-01'), ('to', '2030-01-01'), ('initial_cash', str(10000 + i)),
        ('fee_pct', '0.1'), ('slippage_bps', '0'), ('fill', 'next_open')])
    assert st == 303, (st, body[:300])
    ids.append(h['location'].rsplit('/', 1)[1])
for run in ids:
    while json.loads(req('GET', f'/backtests/{run}/status.json')[2])['status'] in ('queued', 'running'):
        time.sleep(0.05)
st, _, html = req('GET', '/backtests'); assert st == 200, st
assert html.count(b'/backtests/') >= 50, 'the list shows the 50 runs'
open(f'{out}/html/backtests.html', 'wb').write(html)
open(f'{out}/cookie', 'w').write('; '.join(f'{c.name}={c.value}' for c in jar))
PY
cat >"$DIR/nginx.conf" <<EOF
worker_processes auto;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/html;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $DIR/html;
  }
}
EOF
/usr/sbin/nginx -c "$DIR/nginx.conf" -p "$DIR"
COOKIE="$(cat "$DIR/cookie")"
# wrk's summary → "req/s p50_ms p99_ms"
measure() {
  local conns=$1 url=$2 threads=$(( $1 < 2 ? 1 : 2 ))
  shift 2
  wrk -t"$threads" -c"$conns" -d"${SECS}s" --latency "$@" "$url" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    /Non-2xx/ { bad = $NF }
    END { if (bad) { print "non-2xx responses: " bad > "/dev/stderr"; exit 1 } printf "%.0f %.2f %.2f\n", rps, p50, p99 }'
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-11s %5s %12s %9s %9s %12s %9s %9s %7s\n' page conns vortex_rps p50_ms p99_ms nginx_rps p50_ms p99_ms ratio
cat >"$DIR/unique.lua" <<'LUA'
-- Every request asks for a URL not asked before (per thread id and counter).
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
local n = 0
function request() n = n + 1; return wrk.format(nil, wrk.path .. "?r=" .. tid .. "-" .. n) end
LUA
for page in /:index.html /signin:signin.html /backtests:backtests.html '/backtests*:backtests.html'; do
  label="${page%%:*}" file="${page#*:}"
  if [ -n "${PAGES:-}" ] && [[ " $PAGES " != *" $label "* ]]; then continue; fi
  path="${label%\*}" perf_name="${file%.html}"
  hdr=()
  case "$label" in
    /backtests) hdr=(-H "Cookie: $COOKIE") ;;
    '/backtests*') hdr=(-H "Cookie: $COOKIE" -s "$DIR/unique.lua") perf_name=backtests-rendered ;;
  esac
  for conns in $(for c in 1 32; do for _ in $(seq "${REPEAT:-1}"); do echo "$c"; done; done); do
    if [ -n "${PERF_DIR:-}" ] && [ "$conns" = 32 ]; then
      mkdir -p "$PERF_DIR"
      perf record -q -g -F 999 -p "$PID" -o "$PERF_DIR/$perf_name.data" -- sleep "$SECS" >/dev/null 2>&1 &
      PERF_PID=$!
    fi
    read -r v_rps v_p50 v_p99 < <(measure "$conns" "http://127.0.0.1:$PORT$path" "${hdr[@]}")
    if [ -n "${PERF_PID:-}" ]; then wait "$PERF_PID" || true; PERF_PID=; fi
    read -r n_rps n_p50 n_p99 < <(measure "$conns" "http://127.0.0.1:$NGINX_PORT/$file")
    ratio=$(python3 -c "print(f'{$v_rps / $n_rps:.3f}')")
    printf '%-11s %5s %12s %9s %9s %12s %9s %9s %7s\n' "$label" "$conns" "$v_rps" "$v_p50" "$v_p99" "$n_rps" "$n_p50" "$n_p99" "$ratio"
  done
done
curl -sf "http://127.0.0.1:$PORT/metrics" | grep '^signed_in_page_cache_total' | sort || true
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
