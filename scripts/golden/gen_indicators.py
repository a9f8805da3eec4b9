#!/usr/bin/env python3
"""Regenerate the engine's indicator golden files from TA-Lib.

    pip install ta-lib numpy pandas        # (if the `ta-lib` wheel fails: `TA-Lib`)
    python3 scripts/golden/gen_indicators.py

Reads real candles from data/market/ (committed copies of the shared fixtures) and writes
engine/tests/golden/indicators/<file>.csv: one column per indicator output, full float
precision (repr), empty cell = no value (warm-up). The Rust test
engine/tests/golden_indicators.rs compares the engine to these to 1e-9 relative after warm-up,
so the tests need no Python.

Indicators that TA-Lib lacks (rolling VWAP, Keltner, Ichimoku, Bollinger %B/bandwidth) are
computed here from their documented definitions (docs/indicators.md), built on TA-Lib
outputs where the definition uses them (Keltner = TA-Lib EMA and ATR) and with exact
(math.fsum) window sums otherwise.
"""
import math
import os
import sys

import numpy as np
import pandas as pd
import talib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "data", "market")
OUT = os.path.join(ROOT, "engine", "tests", "golden", "indicators")

# (file, rows kept). Rows are the first N of the file: enough to cover every warm-up and a
# few thousand bars of real behaviour while keeping the committed files small.
FILES = [
    ("ETH-BTC-5m.csv", 2000),   # ordinary prices (~0.1)
    ("TRX-BTC-5m.csv", 2000),   # tiny prices (~5e-6): exercises TA-Lib's epsilon rules
    ("UNITTEST-BTC-1m.csv", 2000),  # many flat 1m candles (open = high = low = close)
]


def rolling_vwap(h, l, c, v, n):
    tp = (h + l + c) / 3.0
    out = np.full(len(c), np.nan)
    for i in range(n - 1, len(c)):
        w = slice(i - n + 1, i + 1)
        vol = math.fsum(v[w])
        if vol > 0:
            out[i] = math.fsum(tp[w] * v[w]) / vol
        else:
            out[i] = math.fsum(tp[w]) / n
    return out


def ichimoku(h, l, tenkan=9, kijun=26, senkou_b=52):
    hs, ls = pd.Series(h), pd.Series(l)
    mid = lambda n: ((hs.rolling(n).max() + ls.rolling(n).min()) / 2.0)
    t, k, b = mid(tenkan), mid(kijun), mid(senkou_b)
    a = ((t + k) / 2.0).shift(kijun)
    return t.values, k.values, a.values, b.shift(kijun).values


def columns(df):
    o, h, l, c, v = (df[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close", "volume"))
    cols = {}
    for n in (10, 30):
        cols[f"sma_{n}"] = talib.SMA(c, n)
        cols[f"ema_{n}"] = talib.EMA(c, n)
    cols["wma_14"] = talib.WMA(c, 14)
    cols["dema_10"] = talib.DEMA(c, 10)
    cols["tema_10"] = talib.TEMA(c, 10)
    for n in (9, 15, 20):
        cols[f"hma_{n}"] = talib.HMA(c, n)
    for n in (10, 30):
        cols[f"kama_{n}"] = talib.KAMA(c, n)
    for n in (7, 14):
        cols[f"rsi_{n}"] = talib.RSI(c, n)
    for f, s, g in ((12, 26, 9), (5, 35, 5)):
        m, sig, hist = talib.MACD(c, f, s, g)
        cols[f"macd_{f}_{s}_{g}.macd"] = m
        cols[f"macd_{f}_{s}_{g}.signal"] = sig
        cols[f"macd_{f}_{s}_{g}.hist"] = hist
    up, mid, lo = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    cols["bollinger_20_2.upper"] = up
    cols["bollinger_20_2.middle"] = mid
    cols["bollinger_20_2.lower"] = lo
    width = up - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["bollinger_20_2.percent_b"] = np.where(width != 0, (c - lo) / width, np.nan)
        cols["bollinger_20_2.bandwidth"] = np.where(mid != 0, width / mid, np.nan)
    cols["atr_14"] = talib.ATR(h, l, c, 14)
    cols["true_range"] = talib.TRANGE(h, l, c)
    cols["adx_14.adx"] = talib.ADX(h, l, c, 14)
    cols["adx_14.plus_di"] = talib.PLUS_DI(h, l, c, 14)
    cols["adx_14.minus_di"] = talib.MINUS_DI(h, l, c, 14)
    for k in (5, 14):
        sk, sd = talib.STOCH(h, l, c, k, 3, 0, 3, 0)
        cols[f"stoch_{k}_3_3.k"] = sk
        cols[f"stoch_{k}_3_3.d"] = sd
    fk, fd = talib.STOCHRSI(c, 14, 5, 3, 0)
    cols["stochrsi_14_5_3.k"] = fk
    cols["stochrsi_14_5_3.d"] = fd
    for n in (14, 20):
        cols[f"cci_{n}"] = talib.CCI(h, l, c, n)
    cols["willr_14"] = talib.WILLR(h, l, c, 14)
    cols["roc_10"] = talib.ROC(c, 10)
    cols["mom_10"] = talib.MOM(c, 10)
    cols["obv"] = talib.OBV(c, v)
    cols["vwap_20"] = rolling_vwap(h, l, c, v, 20)
    cols["mfi_14"] = talib.MFI(h, l, c, v, 14)
    down, upp = talib.AROON(h, l, 14)
    cols["aroon_14.up"] = upp
    cols["aroon_14.down"] = down
    cols["sar_0.02_0.2"] = talib.SAR(h, l, 0.02, 0.2)
    du, dm, dl = talib.DONCHIAN(h, l, 20)
    cols["donchian_20.upper"] = du
    cols["donchian_20.middle"] = dm
    cols["donchian_20.lower"] = dl
    kmid = talib.EMA(c, 20)
    katr = talib.ATR(h, l, c, 10)
    cols["keltner_20_2_10.upper"] = kmid + 2.0 * katr
    cols["keltner_20_2_10.middle"] = kmid + 0.0 * katr
    cols["keltner_20_2_10.lower"] = kmid - 2.0 * katr
    cols["stddev_20_1"] = talib.STDDEV(c, 20, 1.0)
    cols["stddev_5_2"] = talib.STDDEV(c, 5, 2.0)
    cols["highest_20"] = talib.MAX(h, 20)
    cols["lowest_20"] = talib.MIN(l, 20)
    cols["cmf_20"] = talib.CMF(h, l, c, v, 20)
    t, k, a, b = ichimoku(h, l)
    cols["ichimoku_9_26_52.tenkan"] = t
    cols["ichimoku_9_26_52.kijun"] = k
    cols["ichimoku_9_26_52.senkou_a"] = a
    cols["ichimoku_9_26_52.senkou_b"] = b
    # Composition: an indicator of an indicator (leading NaNs are skipped, as in the engine).
    cols["sma_rsi_14_5"] = talib.SMA(talib.RSI(c, 14), 5)
    return cols


def fmt(x):
    return "" if (x is None or not np.isfinite(x)) else repr(float(x))


def main():
    os.makedirs(OUT, exist_ok=True)
    print("talib", talib.__version__, getattr(talib, "__ta_version__", b"?").decode(), file=sys.stderr)
    for name, rows in FILES:
        df = pd.read_csv(os.path.join(DATA, name)).head(rows)
        cols = columns(df)
        path = os.path.join(OUT, name)
        with open(path, "w") as f:
            f.write("# generated by scripts/golden/gen_indicators.py from data/market/%s (first %d rows); TA-Lib %s\n"
                    % (name, rows, getattr(talib, "__ta_version__", b"?").decode().split(" ")[0]))
            f.write(",".join(cols.keys()) + "\n")
            for i in range(len(df)):
                f.write(",".join(fmt(col[i]) for col in cols.values()) + "\n")
        print("wrote", path, len(cols), "columns", file=sys.stderr)


if __name__ == "__main__":
    main()
