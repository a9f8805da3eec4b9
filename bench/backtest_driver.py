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
_, _, form = req('GET', '/backtests/new')
instrument = re.search(rb'name="instrument_id" value="(\d+)"', form).group(1).decode()
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

# Runs with about 2,000 trades (SMA crossover with periods chosen for it) and with many more (the macd run).
sma = new_strategy('sma_cross')
sma_run, _, _, sma_trades = run(sma, [('param.fast', '30'), ('param.slow', '120')])
macd_run, _, _, macd_trades = run(macd)


def page_times(run_id, trades):
    print(f"\nresults of a run with {trades} trades: server time (access log), median of 20 requests each:")
    paths = [f'/backtests/{run_id}', f'/backtests/{run_id}/chart.json', f'/backtests/{run_id}/trades.csv']
    for path in paths:
        for _ in range(20):
            st, _, _ = req('GET', path)
            assert st == 200, (path, st)
    # the last page of trades sorted by P&L (an OFFSET deep into the table)
    last = (trades + 49) // 50
    for _ in range(20):
        st, _, _ = req('GET', f'/backtests/{run_id}?sort=pnl&dir=desc&page={last}')
        assert st == 200
    time.sleep(0.5)
    lat = {}
    for line in open(log_path):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        p = e.get('path') or e.get('span', {}).get('path')
        if p and 'latency_ms' in e and run_id in p and not p.endswith('status.json'):
            lat.setdefault(p, []).append(float(e['latency_ms']))
    for p, v in lat.items():
        label = p.replace(run_id, '{id}') + ('  (first and last page)' if p.endswith(run_id) else '')
        print(f"  {label:50} median {statistics.median(v):6.1f} ms  max {max(v):6.1f} ms  (n={len(v)})")


page_times(sma_run, sma_trades)
page_times(macd_run, macd_trades)
