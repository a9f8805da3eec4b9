//! The engine against the hardware (issue 16, goal 4): `versus_loop [candles] [rounds]` runs the `sma_cross`
//! template (SMA 10/30, next-open fills, 0.1 % fee on both legs, all cash) through the full engine
//! (`backtest::run`: strategy evaluation, simulation, trades with their rule context, per-bar equity, metrics,
//! provenance) and through a plain single-pass loop over the same arrays that computes the same trades, the same
//! per-bar equity and the final equity and maximum drawdown. Both run in one process, interleaved round by round
//! so that they see the same load; each round's first results are compared trade for trade (a mismatch aborts).
//! Prints one JSON line: medians and bests of both, and the ratio engine / loop (median throughput). It also
//! times the same loop without the per-bar equity vector (trades and drawdown only, `bare_loop`), the least
//! any backtester must do, and gives the engine's ratio to that too.
//!
//! Used by `bench/engine.sh` (as its last section).
#![allow(clippy::disallowed_methods)] // timing is the point of this binary

use std::time::Instant;

use engine::backtest::{BacktestConfig, run};
use engine::candles::Candles;
use engine::catalogue::template;
use engine::strategy::compile;

#[path = "../benches/synth.rs"]
mod synth;

/// One round trip of the plain loop.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PlainTrade {
    entry_index: usize,
    exit_index: usize,
    entry_price: f64,
    exit_price: f64,
    units: f64,
    pnl: f64,
}

struct PlainResult {
    trades: Vec<PlainTrade>,
    equity: Vec<f64>,
    max_drawdown: f64,
}

/// SMA `fast`/`slow` crossover in one pass: running sums (the same additions in the same order as the engine's
/// SMA, so the same bits), `a[t-1] < b[t-1] and a[t] > b[t]` crossings, next-open fills, fees on both legs,
/// per-bar equity, the open position closed at the last close.
/// With `EQUITY = false` the loop keeps no per-bar equity (trades and drawdown only): the bare minimum.
fn plain_loop<const EQUITY: bool>(
    c: &Candles,
    fast: usize,
    slow: usize,
    fee: f64,
    cash0: f64,
) -> PlainResult {
    let n = c.len();
    let (open, close) = (&c.open[..n], &c.close[..n]);
    let mut equity = Vec::with_capacity(if EQUITY { n } else { 0 });
    let mut trades = Vec::new();
    let (nf, ns) = (fast as f64, slow as f64);
    let (mut sf, mut ss) = (0.0f64, 0.0f64);
    let (mut pf, mut ps) = (f64::NAN, f64::NAN);
    let mut cash = cash0;
    let mut units = 0.0f64;
    let mut entry: Option<(usize, f64, f64)> = None; // (index, price, cost)
    let mut pending: i8 = 0; // 1 = buy at this bar's open, -1 = sell
    let (mut peak, mut max_dd) = (cash0, 0.0f64);
    for t in 0..n {
        // Fill the order signalled at the previous close.
        if pending == 1 {
            let p = open[t];
            units = cash / (p * (1.0 + fee));
            let cost = units * p * (1.0 + fee);
            cash -= cost;
            if cash < 0.0 {
                cash = 0.0; // rounding residue of spending everything, as the engine does
            }
            entry = Some((t, p, cost));
        } else if pending == -1
            && let Some((i, ep, cost)) = entry.take()
        {
            let p = open[t];
            let proceeds = units * p * (1.0 - fee);
            cash += proceeds;
            trades.push(PlainTrade {
                entry_index: i,
                exit_index: t,
                entry_price: ep,
                exit_price: p,
                units,
                pnl: proceeds - cost,
            });
            units = 0.0;
        }
        pending = 0;
        let v = close[t];
        sf += v;
        ss += v;
        let (f, s) = (
            if t + 1 >= fast { sf / nf } else { f64::NAN },
            if t + 1 >= slow { ss / ns } else { f64::NAN },
        );
        if t + 1 >= fast {
            sf -= close[t + 1 - fast];
        }
        if t + 1 >= slow {
            ss -= close[t + 1 - slow];
        }
        if t + 1 < n {
            if entry.is_none() && pf < ps && f > s {
                pending = 1;
            } else if entry.is_some() && pf > ps && f < s {
                pending = -1;
            }
        }
        (pf, ps) = (f, s);
        // An open position is closed at the last close (end of data), before that bar's equity.
        if t + 1 == n
            && let Some((i, ep, cost)) = entry.take()
        {
            let proceeds = units * v * (1.0 - fee);
            cash += proceeds;
            trades.push(PlainTrade {
                entry_index: i,
                exit_index: t,
                entry_price: ep,
                exit_price: v,
                units,
                pnl: proceeds - cost,
            });
            units = 0.0;
        }
        let e = cash + units * v;
        if EQUITY {
            equity.push(e);
        }
        peak = peak.max(e);
        max_dd = max_dd.max((peak - e) / peak);
    }
    PlainResult {
        trades,
        equity,
        max_drawdown: max_dd,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(15);
    let candles = synth::build(&synth::sources(), n);
    let strategy = compile(template("sma_cross").expect("template").source, &[]).expect("compiles");
    let config = BacktestConfig::default();
    let (mut engine_s, mut loop_s, mut bare_s) = (Vec::new(), Vec::new(), Vec::new());
    let mut trades = 0;
    for round in 0..rounds {
        let t = Instant::now();
        let r = run(&candles, &strategy, &config).expect("runs");
        engine_s.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let p = plain_loop::<true>(&candles, 10, 30, config.fee, config.initial_cash);
        loop_s.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let bare = plain_loop::<false>(&candles, 10, 30, config.fee, config.initial_cash);
        bare_s.push(t.elapsed().as_secs_f64());
        assert_eq!(bare.trades, p.trades, "the bare loop's trades");
        if round == 0 {
            // The same trades, the same equity curve: the two compute the same thing.
            assert_eq!(r.trades.len(), p.trades.len(), "trade count");
            for (a, b) in r.trades.iter().zip(&p.trades) {
                assert_eq!(
                    (a.entry_index, a.exit_index, a.entry_price, a.exit_price),
                    (b.entry_index, b.exit_index, b.entry_price, b.exit_price),
                    "trade"
                );
                assert_eq!((a.units, a.pnl), (b.units, b.pnl), "units and P&L");
            }
            assert_eq!(r.equity.len(), p.equity.len(), "equity length");
            if let Some(i) = (0..r.equity.len()).find(|&i| r.equity[i] != p.equity[i]) {
                panic!(
                    "per-bar equity differs first at bar {i}: engine {} loop {}",
                    r.equity[i], p.equity[i]
                );
            }
            let dd = r.metrics.max_drawdown.value.unwrap_or(f64::NAN).abs();
            assert!(
                (dd - p.max_drawdown).abs() < 1e-9,
                "max drawdown {dd} vs {}",
                p.max_drawdown
            );
            trades = r.trades.len();
        }
        std::hint::black_box((&r, &p, &bare));
    }
    let (e_best, l_best) = (
        engine_s.iter().copied().fold(f64::INFINITY, f64::min),
        loop_s.iter().copied().fold(f64::INFINITY, f64::min),
    );
    let (e_med, l_med, b_med) = (
        median(&mut engine_s),
        median(&mut loop_s),
        median(&mut bare_s),
    );
    let rate = |s: f64| n as f64 / s;
    println!(
        "{{\"candles\":{n},\"rounds\":{rounds},\"trades\":{trades},\"engine_median_s\":{e_med:.5},\"engine_best_s\":{e_best:.5},\"loop_median_s\":{l_med:.5},\"loop_best_s\":{l_best:.5},\"engine_candles_per_s\":{:.0},\"loop_candles_per_s\":{:.0},\"ratio\":{:.3},\"bare_loop_median_s\":{b_med:.5},\"bare_loop_candles_per_s\":{:.0},\"ratio_to_bare\":{:.3}}}",
        rate(e_med),
        rate(l_med),
        l_med / e_med,
        rate(b_med),
        b_med / e_med
    );
}
