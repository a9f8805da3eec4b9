//! Property tests: equity finite, cash never negative (long-only), trades never overlap,
//! streaming = batch, evaluation and parsing never panic.

use engine::backtest::{BacktestConfig, Fill, run};
use engine::candles::{Candles, Timeframe};
use engine::indicators::{self, Indicator, batch};
use engine::strategy::compile;
use proptest::prelude::*;

/// Valid random candles: a positive random walk with consistent high/low.
fn arb_candles(max_len: usize) -> impl Strategy<Value = Candles> {
    (2..max_len, 1e-6f64..1e4, any::<u64>()).prop_flat_map(|(n, start, _)| {
        (
            Just(start),
            prop::collection::vec((-0.05f64..0.05, 0.0f64..0.03, 0.0f64..0.03, 0.0f64..1e6), n),
        )
            .prop_map(|(start, steps)| {
                let mut c = Candles::new(Timeframe::M5);
                let mut price = start;
                for (i, (r, up, down, vol)) in steps.into_iter().enumerate() {
                    let open = price;
                    let close = (price * (1.0 + r)).max(1e-12);
                    let high = open.max(close) * (1.0 + up);
                    let low = open.min(close) * (1.0 - down);
                    c.push(i as i64 * 300_000, open, high, low.max(1e-13), close, vol);
                    price = close;
                }
                c
            })
    })
}

const STRATEGIES: &[&str] = &[
    "let f = sma(close, 3)\nlet s = sma(close, 7)\nentry long when crosses_above(f, s)\nexit long when crosses_below(f, s)\n",
    "risk {\n stop_loss = 2%\n take_profit = 3%\n trailing_stop = 1.5%\n max_bars = 5\n size = 50%\n}\nentry long when rsi(close, 5) < 40\nexit long when rsi(close, 5) > 60\n",
    "risk { size = 250 quote }\nentry long when close > close[1]\nexit long when close < close[2]\n",
    "entry long when true\n",
];

fn check_result(
    c: &Candles,
    r: &engine::backtest::BacktestResult,
    cfg: &BacktestConfig,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(r.equity.len(), c.len());
    for e in &r.equity {
        prop_assert!(e.is_finite(), "equity not finite: {}", e);
        prop_assert!(*e >= 0.0, "equity negative: {}", e);
    }
    let mut prev_exit: Option<usize> = None;
    for t in &r.trades {
        prop_assert!(t.entry_index <= t.exit_index);
        if let Some(p) = prev_exit {
            // One position at a time: the next entry fills at or after the previous exit.
            prop_assert!(
                t.entry_index >= p,
                "overlap: entry {} before exit {}",
                t.entry_index,
                p
            );
        }
        prev_exit = Some(t.exit_index);
        prop_assert!(t.units > 0.0 && t.units.is_finite());
        prop_assert!(t.fees >= 0.0);
    }
    // Cash never negative: replay the cash ledger from the trades.
    let mut cash = cfg.initial_cash;
    for t in &r.trades {
        cash -= t.units * t.entry_price * (1.0 + cfg.fee);
        prop_assert!(cash >= -1e-9 * cfg.initial_cash, "cash negative: {}", cash);
        cash = cash.max(0.0);
        cash += t.units * t.exit_price * (1.0 - cfg.fee);
    }
    let fe = r.metrics.final_equity.value.unwrap();
    prop_assert!(
        (fe - cash).abs() <= 1e-9 * cfg.initial_cash.max(fe),
        "ledger {} vs final {}",
        cash,
        fe
    );
    for (_, m) in r.metrics.iter() {
        if let Some(v) = m.value {
            prop_assert!(v.is_finite());
        } else {
            prop_assert!(m.na_reason.is_some());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn backtests_keep_invariants(c in arb_candles(400), which in 0..STRATEGIES.len(), same_close in any::<bool>(), fee in 0.0f64..0.01, slip in 0.0f64..50.0, step in prop::option::of(prop_oneof![Just(0.001f64), Just(1.0f64)])) {
        prop_assert!(c.validate().is_ok());
        let s = compile(STRATEGIES[which], &[]).unwrap();
        let cfg = BacktestConfig {
            fee,
            slippage_bps: slip,
            fill: if same_close { Fill::SameClose } else { Fill::NextOpen },
            quantity_step: step,
            ..Default::default()
        };
        let r = run(&c, &s, &cfg).unwrap();
        check_result(&c, &r, &cfg)?;
    }

    #[test]
    fn streaming_equals_batch(xs in prop::collection::vec(prop_oneof![9 => 1e-3f64..1e3, 1 => Just(f64::NAN)], 0..300), n in 1usize..40) {
        let b = batch::ema(&xs, n).unwrap();
        let mut s = indicators::Ema::new(n).unwrap();
        for (i, &x) in xs.iter().enumerate() {
            prop_assert_eq!(s.update(x).to_bits(), b[i].to_bits());
        }
        let b = batch::kama(&xs, n).unwrap();
        let mut s = indicators::Kama::new(n).unwrap();
        for (i, &x) in xs.iter().enumerate() {
            prop_assert_eq!(s.update(x).to_bits(), b[i].to_bits());
        }
        if n >= 2 {
            let b = batch::rsi(&xs, n).unwrap();
            let mut s = indicators::Rsi::new(n).unwrap();
            for (i, &x) in xs.iter().enumerate() {
                let v = s.update(x);
                prop_assert_eq!(v.to_bits(), b[i].to_bits());
                prop_assert!(v.is_nan() || (0.0..=100.0).contains(&v));
            }
        }
    }

    #[test]
    fn bar_indicators_streaming_equals_batch(c in arb_candles(200), n in 2usize..30) {
        let b = batch::adx(&c, n).unwrap();
        let mut s = indicators::Adx::new(n).unwrap();
        for (i, bar) in indicators::bars(&c).enumerate() {
            let v = s.update(bar);
            prop_assert_eq!(v.adx.to_bits(), b[i].adx.to_bits());
        }
        let b = batch::sar(&c, 0.02, 0.2).unwrap();
        let mut s = indicators::Sar::new(0.02, 0.2).unwrap();
        for (i, bar) in indicators::bars(&c).enumerate() {
            prop_assert_eq!(s.update(bar).to_bits(), b[i].to_bits());
        }
    }

    #[test]
    fn compile_and_eval_never_panic(src in "[a-z_ ()<>=.,0-9%\\[\\]{}\n+*/-]{0,120}", c in arb_candles(40)) {
        if let Ok(s) = compile(&src, &[]) {
            let _ = s.evaluate(&c);
        }
        let _ = engine::strategy::eval_series(&src, &c);
    }

    #[test]
    fn csv_reader_never_panics(text in "\\PC{0,300}") {
        let _ = engine::csv::parse_candles(&text, None);
        let with_header = format!("timestamp,open,high,low,close,volume\n{text}");
        let _ = engine::csv::parse_candles(&with_header, None);
    }

    #[test]
    fn resample_preserves_extremes_and_volume(c in arb_candles(300)) {
        let r = c.resample(Timeframe::H1).unwrap();
        prop_assert!(r.validate().is_ok());
        let hi = c.high.iter().cloned().fold(f64::MIN, f64::max);
        let rh = r.high.iter().cloned().fold(f64::MIN, f64::max);
        prop_assert_eq!(hi, rh);
        let v: f64 = c.volume.iter().sum();
        let rv: f64 = r.volume.iter().sum();
        prop_assert!((v - rv).abs() <= 1e-9 * v.max(1.0));
    }
}
