#!/usr/bin/env python3
"""Drives bench/backtest.sh: signs in like a browser, creates strategies through the forms, starts runs and
measures them. Usage: backtest_driver.py BASE_URL RUNS SERVER_LOG"""
import http.cookiejar, json, re, statistics, sys, time, urllib.parse, urllib.request

base, runs, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
jar = http.cookiejar.CookieJar()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)


def req(method, path, data=None, headers=None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    r = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    if body is not None:
        r.add_header('content-type', 'application/x-www-form-urlencoded')
    try:
        resp = opener.open(r, timeout=60)
        return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def csrf(path='/signin'):
    _, _, html = req('GET', path)
    return re.search(rb'name="csrf-token" content="([^"]+)"', html).group(1).decode()


st, h, _ = req('POST', '/auth/signin', {'csrf': csrf(), 'email': 'bench@example.com', 'password': 'bench passphrase for vortex 42'})
assert st == 303 and '/account' in h['location'], (st, h.get('location'))


def new_strategy(template):
    st, h, _ = req('POST', '/strategies/create', {'csrf': csrf('/strategies'), 'template': template, 'name': template})
    assert st == 303, st
    return re.search(r'/strategies/([0-9a-f-]{36})', h['location']).group(1)


_, _, form = req('GET', '/backtests/new')
instrument = re.search(rb'name="instrument_id" value="(\d+)"', form).group(1).decode()


def run(strategy, params=()):
    fields = [('csrf', csrf('/backtests/new')), ('strategy_id', strategy), ('instrument_id', instrument),
              ('timeframe', '1m'), ('from', '2010-01-01'), ('to', '2011-01-01'), ('initial_cash', '10000'),
              ('fee_pct', '0.1'), ('slippage_bps', '0'), ('fill', 'next_open')] + list(params)
    t0 = time.perf_counter()
    st, h, body = req('POST', '/backtests/create', fields)
    assert st == 303 and re.search(r'/backtests/[0-9a-f-]{36}$', h['location']), (st, h.get('location'), body[:300])
    run_id = h['location'].rsplit('/', 1)[1]
    while True:
        _, _, s = req('GET', f'/backtests/{run_id}/status.json')
        s = json.loads(s)
        if s['status'] not in ('queued', 'running'):
            break
        time.sleep(0.01)
    total = time.perf_counter() - t0
    assert s['status'] == 'done', s
    _, _, doc = req('GET', f'/backtests/{run_id}/result.json')
    doc = json.loads(doc)
    return run_id, total, doc['run']['timing'], doc['run']['summary']['trade_count']


macd = new_strategy('macd')
run(macd)  # warm-up (connections, page cache)
rows = []
for _ in range(runs):
    _, total, t, trades = run(macd)
    rows.append((total, t))
print(f"click-to-result, macd on {rows[0][1]['bars']} 1m candles ({trades} trades), {runs} runs:")
print(f"{'total_s':>8} {'queue_ms':>9} {'load_ms':>8} {'engine_ms':>10} {'store_ms':>9}")
for total, t in rows:
    print(f"{total:8.3f} {t['queue_ms']:9} {t['load_ms']:8} {t['engine_ms']:10} {t['store_ms']:9}")
print(f"median total {statistics.median(r[0] for r in rows):.3f} s")

# A run with about 2,000 trades: SMA crossover with periods chosen for it.
sma = new_strategy('sma_cross')
run_id, _, _, trades = run(sma, [('param.fast', '60'), ('param.slow', '240')])
print(f"\nresults page for a run with {trades} trades (median of 20 requests, server latency from the access log):")
for path in (f'/backtests/{run_id}', f'/backtests/{run_id}?sort=pnl&dir=desc&page=20', f'/backtests/{run_id}/chart.json', f'/backtests/{run_id}/trades.csv'):
    for _ in range(20):
        st, _, _ = req('GET', path)
        assert st == 200, (path, st)
time.sleep(0.5)
lat = {}
for line in open(log_path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    f = e.get('fields', e)
    p = f.get('path') or e.get('span', {}).get('path')
    if p and 'latency_ms' in f and run_id in p and f.get('method', 'GET') == 'GET':
        q = f.get('query')
        lat.setdefault(p + ('?' + q if q else ''), []).append(float(f['latency_ms']))
for p, v in lat.items():
    if len(v) >= 10:
        print(f"  {p.replace(run_id, '{id}'):55} median {statistics.median(v):7.1f} ms  max {max(v):7.1f} ms  (n={len(v)})")
