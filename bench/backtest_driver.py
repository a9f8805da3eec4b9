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
_, cold, t, _ = run(macd)  # warm-up (connections, page cache, and the candle block cache's first build)
print(f"first run (candle blocks built from the rows): total {cold:.3f} s, load {t['load_ms']} ms, store {t['store_ms']} ms")
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
    """Server time from the access log (to the response head) and the client's time to the last byte (the
    whole streamed body, on this machine), median of 20 requests each."""
    print(f"\nresults of a run with {trades} trades, median of 20 requests each:")
    last = (trades + 49) // 50
    paths = [f'/backtests/{run_id}', f'/backtests/{run_id}?sort=pnl&dir=desc&page={last}',
             f'/backtests/{run_id}/chart.json', f'/backtests/{run_id}/trades.csv', f'/backtests/{run_id}/result.json']
    total = {}
    for path in paths:
        for _ in range(20):
            t0 = time.perf_counter()
            st, _, body = req('GET', path)
            total.setdefault(path, []).append((time.perf_counter() - t0) * 1000)
            assert st == 200, (path, st)
    time.sleep(0.5)
    head = {}
    for line in open(log_path):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        p = e.get('path') or e.get('span', {}).get('path')
        if p and 'latency_ms' in e and run_id in p and not p.endswith('status.json'):
            head.setdefault(p, []).append(float(e['latency_ms']))
    print(f"  {'request':58} {'to last byte':>12} {'max':>7} {'server head':>12}")
    for path in paths:
        v = total[path]
        h = head.get(path.split('?')[0], [])
        label = path.replace(run_id, '{id}')
        hs = f"{statistics.median(h):9.1f} ms" if h else ''
        print(f"  {label:58} {statistics.median(v):9.1f} ms {max(v):5.0f} ms {hs:>12}")


page_times(sma_run, sma_trades)
page_times(macd_run, macd_trades)
