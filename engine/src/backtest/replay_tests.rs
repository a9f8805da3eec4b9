//! Replay (paper trading) against the backtest: prefix consistency, parity, and each gate's semantics.

use super::*;
use crate::candles::{Candles, Timeframe};
use crate::catalogue::templates;
use crate::strategy::compile;

fn candles(bars: &[(f64, f64, f64, f64)]) -> Candles {
    let mut c = Candles::new(Timeframe::D1);
    for (i, &(o, h, l, cl)) in bars.iter().enumerate() {
        c.push(i as i64 * 86_400_000, o, h, l, cl, 1.0);
    }
    c
}

/// A deterministic wavy series long enough for every template to trade.
fn wave(n: usize) -> Candles {
    let mut c = Candles::new(Timeframe::H1);
    let mut prev: f64 = 100.0;
    for i in 0..n {
        let x = i as f64;
        let close = 100.0 + 10.0 * (x / 17.0).sin() + 4.0 * (x / 5.0).cos() + (x / 300.0);
        let open = prev;
        let high = open.max(close) + 0.7;
        let low = open.min(close) - 0.7;
        c.push(i as i64 * 3_600_000, open, high, low, close, 10.0 + x % 7.0);
        prev = close;
    }
    c
}

fn open_gates(n: usize) -> Vec<Gate> {
    vec![Gate::Open; n]
}

#[test]
fn open_gates_backtest_is_bit_for_bit_the_plain_backtest() {
    let c = wave(600);
    for t in templates() {
        let s = compile(t.source, &[]).unwrap();
        let cfg = BacktestConfig::default();
        let plain = run(&c, &s, &cfg).unwrap();
        let gated = run_gated(&c, &s, &cfg, &open_gates(c.len()), RunLimits::default()).unwrap();
        assert_eq!(plain, gated, "{}", t.name);
    }
}

#[test]
fn replay_of_every_prefix_extends_the_previous_one() {
    // What paper trading relies on: the state after candle k+1 is the state after k plus that candle's
    // effects; nothing earlier changes.
    let c = wave(400);
    for t in templates() {
        let s = compile(t.source, &[]).unwrap();
        let cfg = BacktestConfig::default();
        let mut prev: Option<Replay> = None;
        for k in 1..=c.len() {
            let r = replay(
                &c.slice(0..k),
                &s,
                &cfg,
                &open_gates(k),
                RunLimits::default(),
                0,
            )
            .unwrap();
            if let Some(p) = &prev {
                assert_eq!(&r.equity[..k - 1], &p.equity[..], "{} at {k}", t.name);
                assert_eq!(
                    &r.trades[..p.trades.len()],
                    &p.trades[..],
                    "{} at {k}",
                    t.name
                );
                assert!(r.trades.len() <= p.trades.len() + 1);
            }
            prev = Some(r);
        }
        // The last replay and the full backtest agree on every closed trade; the backtest also closes the
        // open position at the end of data.
        let last = prev.unwrap();
        let full = run(&c, &s, &cfg).unwrap();
        assert_eq!(
            &full.trades[..last.trades.len()],
            &last.trades[..],
            "{}",
            t.name
        );
        assert_eq!(
            full.trades.len(),
            last.trades.len() + usize::from(last.position.is_some()),
            "{}",
            t.name
        );
        assert!(
            full.trades.len() > 2,
            "{}: the series should make it trade",
            t.name
        );
    }
}

#[test]
fn warmup_bars_decide_nothing_and_match_a_backtest_started_late() {
    let c = wave(500);
    let s = compile(templates()[0].source, &[]).unwrap();
    let cfg = BacktestConfig::default();
    let mut gates = open_gates(c.len());
    gates[..200].fill(Gate::Warmup);
    let r = run_gated(&c, &s, &cfg, &gates, RunLimits::default()).unwrap();
    assert!(r.trades.iter().all(|t| t.entry_index > 200));
    assert!(r.equity[..200].iter().all(|&e| e == cfg.initial_cash));
    let p = replay(&c, &s, &cfg, &gates, RunLimits::default(), 0).unwrap();
    assert_eq!(&r.trades[..p.trades.len()], &p.trades[..]);
}

/// Entry when close > 10 (bar 1), exit when close < 10.
fn ladder() -> (Candles, crate::strategy::CompiledStrategy) {
    let c = candles(&[
        (10.0, 10.0, 10.0, 10.0),
        (10.0, 12.0, 10.0, 11.0),
        (12.0, 13.0, 11.0, 12.0),
        (12.0, 14.0, 11.5, 13.0),
        (13.0, 13.5, 12.5, 13.0),
        (11.0, 11.0, 9.0, 9.0),
        (8.0, 8.0, 8.0, 8.0),
    ]);
    let s = compile(
        "entry long when close > 10\nexit long when close < 10\n",
        &[],
    )
    .unwrap();
    (c, s)
}

fn gated(gates: &[(usize, Gate)]) -> Replay {
    let (c, s) = ladder();
    let mut g = open_gates(c.len());
    for &(i, x) in gates {
        g[i] = x;
    }
    replay(
        &c,
        &s,
        &BacktestConfig::default(),
        &g,
        RunLimits::default(),
        0,
    )
    .unwrap()
}

#[test]
fn open_replay_keeps_the_position_and_the_last_decision() {
    let (c, s) = ladder();
    let r = replay(
        &c.slice(0..4),
        &s,
        &BacktestConfig::default(),
        &open_gates(4),
        RunLimits::default(),
        3,
    )
    .unwrap();
    assert!(r.trades.is_empty());
    let p = r.position.as_ref().unwrap();
    assert_eq!((p.entry_index, p.entry_price), (2, 12.0));
    assert!(r.pending.is_none());
    let d = r.decisions.last().unwrap();
    assert_eq!(r.decisions.len(), 1);
    assert_eq!(d.index, 3);
    assert!(d.in_position);
    // At bar 0..1: the entry at bar 1's close is pending.
    let r = replay(
        &c.slice(0..2),
        &s,
        &BacktestConfig::default(),
        &open_gates(2),
        RunLimits::default(),
        1,
    )
    .unwrap();
    let pend = r.pending.clone().unwrap();
    assert!(pend.entry);
    assert_eq!(pend.decided_index, 1);
    assert_eq!(r.signals, vec![pend]);
    assert!(
        r.decisions[0]
            .actions
            .iter()
            .any(|a| a.contains("buy at the next bar's open")),
    );
}

#[test]
fn reduce_only_refuses_entries_and_cancels_a_pending_one() {
    // Entry decided at bar 1; bar 2 is reduce-only: the pending entry is cancelled, later signals refused.
    let r = gated(&[
        (2, Gate::ReduceOnly),
        (3, Gate::ReduceOnly),
        (4, Gate::ReduceOnly),
    ]);
    assert_eq!(r.refused[0].kind, RefusalKind::PendingEntryCancelled);
    assert_eq!(r.refused[0].index, 2);
    assert!(
        r.refused
            .iter()
            .any(|x| x.kind == RefusalKind::EntrySignal && x.index == 3)
    );
    // Bar 5 is open again but close < 10: no entry; no trade at all.
    assert!(r.trades.is_empty() && r.position.is_none());
}

#[test]
fn no_entry_refuses_new_entries_but_lets_a_pending_one_fill() {
    // Entry decided at bar 1 (open); bar 2 is no_entry: the pending entry still fills at bar 2's open.
    let r = gated(&[(2, Gate::NoEntry), (3, Gate::NoEntry), (4, Gate::NoEntry)]);
    assert!(
        !r.refused
            .iter()
            .any(|x| x.kind == RefusalKind::PendingEntryCancelled)
    );
    let entered = r
        .position
        .as_ref()
        .map(|p| p.entry_index)
        .or_else(|| r.trades.first().map(|t| t.entry_index));
    assert_eq!(entered, Some(2));
    // A bar that is no_entry for the whole strategy refuses the entry decided at it.
    let r = gated(&[(1, Gate::NoEntry)]);
    assert!(
        r.refused
            .iter()
            .any(|x| x.kind == RefusalKind::EntrySignal && x.index == 1)
    );
}

#[test]
fn halt_refuses_signal_exits_but_stops_keep_working() {
    // In position from bar 2; halt from bar 4: the exit signal at bar 5 is refused, the position stays.
    let r = gated(&[(4, Gate::Halt), (5, Gate::Halt), (6, Gate::Halt)]);
    assert!(r.trades.is_empty());
    assert!(r.position.is_some());
    assert!(
        r.refused
            .iter()
            .any(|x| x.kind == RefusalKind::ExitSignal && x.index == 5)
    );
    // With a stop loss, the stop still fills under halt.
    let (c, _) = ladder();
    let s = compile(
        "risk {\n stop_loss = 20%\n}\nentry long when close > 10\nexit long when close < 5\n",
        &[],
    )
    .unwrap();
    let mut g = open_gates(c.len());
    g[3..].fill(Gate::Halt);
    let r = replay(
        &c,
        &s,
        &BacktestConfig::default(),
        &g,
        RunLimits::default(),
        0,
    )
    .unwrap();
    assert_eq!(r.trades.len(), 1);
    assert_eq!(r.trades[0].exit_reason, ExitReason::StopLoss);
}

#[test]
fn flatten_closes_at_the_next_open_then_holds_flat() {
    let r = gated(&[
        (3, Gate::Flatten),
        (4, Gate::Flatten),
        (5, Gate::Flatten),
        (6, Gate::Flatten),
    ]);
    assert_eq!(r.trades.len(), 1);
    let t = &r.trades[0];
    assert_eq!(t.exit_reason, ExitReason::Flatten);
    assert_eq!((t.entry_index, t.exit_index, t.exit_price), (2, 4, 13.0));
    assert!(r.position.is_none() && r.pending.is_none());
}

#[test]
fn one_replay_gives_every_bar_what_the_replay_ending_there_gives() {
    // What a paper step over many new candles relies on: one replay up to the last one yields, for each bar k,
    // the same decision trace and the same order decided at k as the replay that ends at k.
    let c = wave(300);
    for t in templates() {
        let s = compile(t.source, &[]).unwrap();
        let cfg = BacktestConfig::default();
        let mut gates = open_gates(c.len());
        gates[..50].fill(Gate::Warmup);
        gates[200..220].fill(Gate::Halt);
        let full = replay(&c, &s, &cfg, &gates, RunLimits::default(), 50).unwrap();
        for k in 50..c.len() {
            let p = replay(
                &c.slice(0..k + 1),
                &s,
                &cfg,
                &gates[..=k],
                RunLimits::default(),
                k,
            )
            .unwrap();
            assert_eq!(full.decisions[k - 50], p.decisions[0], "{} at {k}", t.name);
            let decided: Vec<_> = full
                .signals
                .iter()
                .filter(|x| x.decided_index == k)
                .collect();
            assert_eq!(
                decided.first().copied(),
                p.pending.as_ref(),
                "{} at {k}",
                t.name
            );
            assert_eq!(full.equity[k].to_bits(), p.equity[k].to_bits());
        }
    }
}
