#!/usr/bin/env python3
"""Builds a large, deterministic candle CSV from the real demo candles (data/market/ETH-BTC-5m.csv): copies of
the series laid end to end in time, each copy re-based so its first open equals the previous copy's last close
(no price jumps). Usage: make_market_csv.py ROWS OUT.csv [MINUTES_PER_CANDLE (default 5)]"""
import csv, sys
from datetime import datetime, timezone, timedelta

rows, out = int(sys.argv[1]), sys.argv[2]
src = list(csv.DictReader(open('data/market/ETH-BTC-5m.csv')))
step = timedelta(minutes=int(sys.argv[3]) if len(sys.argv) > 3 else 5)
t = datetime(2010, 1, 1, tzinfo=timezone.utc)
scale, written = 1.0, 0
with open(out, 'w') as f:
    f.write('timestamp,open,high,low,close,volume\n')
    while written < rows:
        first_open = float(src[0]['open'])
        for r in src:
            if written >= rows:
                break
            o, h, l, c = (float(r[k]) * scale for k in ('open', 'high', 'low', 'close'))
            f.write(f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{o:.10g},{h:.10g},{l:.10g},{c:.10g},{r['volume']}\n")
            t += step
            written += 1
        scale *= float(src[-1]['close']) / first_open
