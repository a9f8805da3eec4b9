use super::*;
use crate::candles::{Candles, Timeframe};
use crate::strategy::compile;

/// Bars (open, high, low, close), one per day.
fn candles(bars: &[(f64, f64, f64, f64)]) -> Candles {
    let mut c = Candles::new(Timeframe::D1);
    for (i, &(o, h, l, cl)) in bars.iter().enumerate() {
        c.push(i as i64 * 86_400_000, o, h, l, cl, 1.0);
    }
    c
}

fn flat(prices: &[f64]) -> Candles {
    candles(&prices.iter().map(|&p| (p, p, p, p)).collect::<Vec<_>>())
}

#[test]
fn fills_at_next_open_with_documented_formula() {
    // Entry signal at bar 1's close (close > 10), exit signal at bar 3's close (close < 10).
    let c = candles(&[
        (10.0, 10.0, 10.0, 10.0),
        (10.0, 12.0, 10.0, 11.0),
        (12.0, 13.0, 11.0, 12.0),
        (11.0, 11.0, 9.0, 9.0),
        (8.0, 8.0, 8.0, 8.0),
    ]);
    let s = compile(
        "entry long when close > 10\nexit long when close < 10\n",
        &[],
    )
    .unwrap();
    let r = run(&c, &s, &BacktestConfig::default()).unwrap();
    assert_eq!(r.trades.len(), 1);
    let t = &r.trades[0];
    assert_eq!((t.entry_index, t.exit_index, t.bars_held), (2, 4, 2));
    assert_eq!((t.entry_price, t.exit_price), (12.0, 8.0));
    let units = 10_000.0 / (12.0 * 1.001);
    assert_eq!(t.units, units);
    let final_cash = units * 8.0 * 0.999;
    assert_eq!(r.metrics.final_equity.value, Some(final_cash));
    assert_eq!(t.exit_reason, ExitReason::Signal);
    assert_eq!(&*t.entry_rule, "entry long when close > 10");
    assert_eq!(t.entry_values, vec![]);
    assert_eq!(r.equity.len(), 5);
    assert_eq!(r.equity[2], units * 12.0);
    // CAGR of a 5-day run is n/a with a reason.
    assert!(r.metrics.cagr.value.is_none());
    assert!(
        r.metrics
            .cagr
            .na_reason
            .as_deref()
            .unwrap()
            .contains("5.0 days")
    );
    assert!(r.metrics.sharpe.value.is_none());
}

#[test]
fn no_signal_acted_on_at_last_bar_and_end_of_data_close() {
    let c = flat(&[10.0, 11.0, 12.0, 13.0]);
    let s = compile("entry long when close > 10.5\n", &[]).unwrap();
    let r = run(&c, &s, &BacktestConfig::default()).unwrap();
    assert_eq!(r.trades.len(), 1);
    let t = &r.trades[0];
    assert_eq!((t.entry_index, t.exit_index), (2, 3));
    assert_eq!(t.exit_reason, ExitReason::EndOfData);
    assert_eq!(t.exit_price, 13.0);
    let s = compile("entry long when close > 12.5\n", &[]).unwrap();
    assert!(
        run(&c, &s, &BacktestConfig::default())
            .unwrap()
            .trades
            .is_empty()
    );
}

#[test]
fn stops_gap_and_pessimistic_order() {
    let src = "risk {\n stop_loss = 10%\n take_profit = 10%\n}\nentry long when close > 0\n";
    let s = compile(src, &[]).unwrap();
    let cfg = BacktestConfig {
        fee: 0.0,
        ..Default::default()
    };
    // Entry at bar 1 open = 100; bar 1 range covers both 90 and 110: the stop fills first.
    let c = candles(&[
        (100.0, 100.0, 100.0, 100.0),
        (100.0, 115.0, 85.0, 100.0),
        (100.0, 100.0, 100.0, 100.0),
    ]);
    let t = &run(&c, &s, &cfg).unwrap().trades[0];
    assert_eq!(
        (t.exit_reason, t.exit_price, t.exit_index),
        (ExitReason::StopLoss, 90.0, 1)
    );
    // A gap through the stop fills at the open.
    let c = candles(&[
        (100.0, 100.0, 100.0, 100.0),
        (100.0, 101.0, 99.0, 100.0),
        (80.0, 81.0, 79.0, 80.0),
        (80.0, 80.0, 80.0, 80.0),
    ]);
    let t = &run(&c, &s, &cfg).unwrap().trades[0];
    assert_eq!((t.exit_reason, t.exit_price), (ExitReason::StopLoss, 80.0));
    // Target only.
    let c = candles(&[
        (100.0, 100.0, 100.0, 100.0),
        (100.0, 112.0, 99.0, 100.0),
        (100.0, 100.0, 100.0, 100.0),
    ]);
    let t = &run(&c, &s, &cfg).unwrap().trades[0];
    assert_eq!(
        (t.exit_reason, t.exit_price),
        (ExitReason::TakeProfit, 110.00000000000001)
    );
}

#[test]
fn trailing_stop_and_max_bars() {
    let s = compile(
        "risk { trailing_stop = 10% }\nentry long when close > 0\n",
        &[],
    )
    .unwrap();
    let cfg = BacktestConfig {
        fee: 0.0,
        ..Default::default()
    };
    let c = candles(&[
        (100.0, 100.0, 100.0, 100.0),
        (100.0, 120.0, 100.0, 120.0),
        (120.0, 120.0, 105.0, 106.0),
        (106.0, 106.0, 106.0, 106.0),
    ]);
    let t = &run(&c, &s, &cfg).unwrap().trades[0];
    assert_eq!(t.exit_reason, ExitReason::TrailingStop);
    assert_eq!(t.exit_price, 120.0 * 0.9);
    let s = compile("risk { max_bars = 2 }\nentry long when close > 0\n", &[]).unwrap();
    let c = flat(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    let r = run(&c, &s, &cfg).unwrap();
    assert_eq!(r.trades[0].exit_reason, ExitReason::MaxBars);
    assert_eq!((r.trades[0].entry_index, r.trades[0].exit_index), (1, 3));
}

#[test]
fn options_slippage_same_close_quantity_step_and_size() {
    let c = flat(&[10.0, 20.0, 30.0, 40.0]);
    let s = compile("entry long when close > 15\n", &[]).unwrap();
    let cfg = BacktestConfig {
        fee: 0.0,
        slippage_bps: 100.0,
        fill: Fill::SameClose,
        quantity_step: Some(1.0),
        ..Default::default()
    };
    let r = run(&c, &s, &cfg).unwrap();
    let t = &r.trades[0];
    assert_eq!(t.entry_index, 1);
    assert_eq!(t.entry_price, 20.0 * 1.01);
    assert_eq!(t.units, (10_000.0 / 20.2f64).floor());
    assert_eq!(t.exit_price, 40.0 * 0.99);
    let cfg = BacktestConfig {
        position_size: Some(PositionSize::FixedQuote(100.0)),
        fee: 0.0,
        ..Default::default()
    };
    let r = run(&c, &s, &cfg).unwrap();
    assert_eq!(r.trades[0].units, 100.0 / 30.0);
    assert!(r.provenance.position_size.contains("100 quote"));
}

#[test]
fn progress_and_cancellation() {
    let c = flat(&vec![1.0; 1000]);
    let s = compile("entry long when close > 0\n", &[]).unwrap();
    let mut calls = Vec::new();
    run_with(&c, &s, &BacktestConfig::default(), &mut |d, t| {
        calls.push((d, t));
        true
    })
    .unwrap();
    assert_eq!(calls.first(), Some(&(0, 1000)));
    assert_eq!(calls.last(), Some(&(1000, 1000)));
    let e = run_with(&c, &s, &BacktestConfig::default(), &mut |_, _| false).unwrap_err();
    assert_eq!(e, BacktestError::Cancelled);
    assert!(matches!(
        run(&Candles::new(Timeframe::M1), &s, &BacktestConfig::default()),
        Err(BacktestError::NoCandles)
    ));
    let bad = BacktestConfig {
        fee: -1.0,
        ..Default::default()
    };
    assert!(matches!(run(&c, &s, &bad), Err(BacktestError::Config(_))));
}

#[test]
fn trace_explains_decisions() {
    let c = flat(&[10.0, 11.0, 12.0, 9.0, 8.0]);
    let s = compile(
        "let m = sma(close, 2)\nentry long when close > m\nexit long when close < m\n",
        &[],
    )
    .unwrap();
    let tr = trace(&c, &s, &BacktestConfig::default(), 0..5).unwrap();
    assert_eq!(tr.len(), 5);
    assert!(tr[0].values[0].1.is_nan());
    assert!(tr[1].entry_rules[0].1);
    assert!(
        tr[1]
            .actions
            .iter()
            .any(|a| a.contains("buy at the next bar's open")),
        "{:?}",
        tr[1].actions
    );
    assert!(tr[2].actions.iter().any(|a| a.starts_with("bought")));
    assert!(
        tr[2]
            .actions
            .iter()
            .any(|a| a.contains("already in a position"))
    );
    assert!(
        tr[3]
            .actions
            .iter()
            .any(|a| a.contains("sell at the next bar's open"))
    );
    let json = serde_json::to_string(&run(&c, &s, &BacktestConfig::default()).unwrap()).unwrap();
    assert!(
        json.contains("\"final_equity\"")
            && json.contains("\"provenance\"")
            && json.contains("\"trades\"")
    );
}

fn wavy(n: usize) -> Candles {
    let mut c = Candles::new(Timeframe::M1);
    for i in 0..n {
        let x = 100.0 + 10.0 * ((i as f64) / 7.0).sin() + ((i * 7919) % 13) as f64 * 0.1;
        c.push(
            i as i64 * 60_000,
            x,
            x + 1.0,
            x - 1.0,
            x + 0.2,
            1.0 + (i % 5) as f64,
        );
    }
    c
}

/// Many clauses, each an indicator kept as a rule input (the ≈340-clause case of issue 11, smaller).
fn many_clauses(k: usize) -> String {
    let clauses: Vec<String> = (0..k)
        .map(|i| format!("sma(close, {}) > 0", i + 2))
        .collect();
    let mut src = String::new();
    for chunk in clauses.chunks(20) {
        src.push_str(&format!("entry long when {}\n", chunk.join(" and ")));
    }
    src.push_str(
        "exit long when crosses_below(ema(close, 5), sma(close, 20)) or macd(close).hist < 0\n",
    );
    src
}

#[test]
fn the_memory_estimate_counts_the_columns_evaluate_keeps() {
    let c = wavy(500);
    let mut sources: Vec<String> = crate::catalogue::templates()
        .iter()
        .map(|t| t.source.to_string())
        .collect();
    sources.push(many_clauses(60));
    sources.push(
        "let up = bollinger(close, 20, 2).upper\nlet b = close > open\nentry long when close > up and hl2 > 0 and close[3] > open and b\nexit long when close < bollinger(close, 20, 2).lower\nexit long when close < bollinger(close, 20, 2).lower\n"
            .into(),
    );
    for src in &sources {
        let s = compile(src, &[]).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        let plan = s.column_plan();
        let ev = s.evaluate(&c);
        assert_eq!(plan.kept_numeric, ev.columns.len(), "{src}");
        assert_eq!(plan.rule_columns, ev.entry.len() + ev.exit.len(), "{src}");
        let kept: u64 = ev.columns.len() as u64 * 8 + (ev.entry.len() + ev.exit.len()) as u64;
        assert_eq!(plan.kept_bytes_per_bar, kept, "{src}");
        assert!(plan.peak_bytes_per_bar >= kept, "{src}: {plan:?}");
        let est = estimate_memory(&s, c.len(), false);
        assert_eq!(est.candles, c.len() as u64 * memory::CANDLE_BYTES);
        assert!(est.columns >= kept * c.len() as u64, "{src}");
        // A trace holds the equity curve and the position per bar on top of the kept columns.
        let tr = estimate_memory(&s, c.len(), true);
        assert!(
            tr.columns >= est.columns && tr.columns >= (kept + 9) * c.len() as u64,
            "{src}"
        );
    }
    // Sixty kept indicator columns: the estimate grows with the clauses and the bars.
    let s = compile(&many_clauses(60), &[]).unwrap();
    let small = estimate_memory(&s, 1000, false);
    let big = estimate_memory(&s, 400_000, false);
    assert!(small.plan.kept_numeric >= 60);
    assert_eq!(big.total(), small.total() * 400);
    assert!(big.total() > 400_000 * 60 * 8);
}

#[test]
fn trades_store_at_most_max_trade_values_each_and_the_run_stops_at_max_trades() {
    // Twelve series in the entry rule: the trade keeps the first MAX_TRADE_VALUES.
    let mut src = String::new();
    for i in 0..12 {
        src.push_str(&format!("let s{i} = close + {i}\n"));
    }
    let cond: Vec<String> = (0..12).map(|i| format!("s{i} > 0")).collect();
    src.push_str(&format!(
        "entry long when {}\nexit long when true\n",
        cond.join(" and ")
    ));
    let s = compile(&src, &[]).unwrap();
    let c = wavy(200);
    let r = run(&c, &s, &BacktestConfig::default()).unwrap();
    assert!(r.trades.len() > 10);
    for t in &r.trades {
        assert_eq!(t.entry_values.len(), MAX_TRADE_VALUES);
        assert_eq!(t.entry_values[0].0.as_ref(), "s0");
    }
    assert_eq!(s.column_plan().values_per_trade, MAX_TRADE_VALUES);
    // A budget for ten trades stops the run at the eleventh with a message saying what to shorten.
    let e = run_limited(
        &c,
        &s,
        &BacktestConfig::default(),
        RunLimits { max_trades: 10 },
        &mut |_, _| true,
    )
    .unwrap_err();
    assert_eq!(e, BacktestError::TooManyTrades(10));
    assert!(e.to_string().contains("shorten the range"), "{e}");
    let e = trace_limited(
        &c,
        &s,
        &BacktestConfig::default(),
        0..1,
        RunLimits { max_trades: 10 },
    )
    .unwrap_err();
    assert_eq!(e, BacktestError::TooManyTrades(10));
    // The limits derived from an estimate leave room for the trades within the budget.
    let est = estimate_memory(&s, c.len(), false);
    let limits = est.limits(est.total() + 100 * 2 * est.per_trade);
    assert_eq!(limits.max_trades, 100);
    assert_eq!(est.limits(0).max_trades, 1);
}
