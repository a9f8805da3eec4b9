//! Unit tests: naive whole-window references, hostile inputs, reset cycles, edge periods.

use super::*;

fn naive_sma(x: &[f64], n: usize) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            if i + 1 < n {
                f64::NAN
            } else {
                x[i + 1 - n..=i].iter().sum::<f64>() / n as f64
            }
        })
        .collect()
}

fn close_to(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

fn series(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 100.0 + (i as f64 * 0.37).sin() * 5.0 + i as f64 * 0.01)
        .collect()
}

#[test]
fn sma_matches_naive_for_edge_periods() {
    let x = series(300);
    for n in [1, 2, 3, 10, 299, 300] {
        let got = batch::sma(&x, n).unwrap();
        let want = naive_sma(&x, n);
        assert!(
            got.iter().zip(&want).all(|(a, b)| close_to(*a, *b)),
            "period {n}"
        );
    }
    assert!(batch::sma(&x, 301).unwrap().iter().all(|v| v.is_nan()));
    assert!(Sma::new(0).is_err());
    assert!(Sma::new(MAX_PERIOD + 1).is_err());
}

#[test]
fn wma_and_highest_match_naive() {
    let x = series(200);
    let n = 7;
    let got = batch::wma(&x, n).unwrap();
    let hi = batch::highest(&x, n).unwrap();
    for i in n - 1..x.len() {
        let w = &x[i + 1 - n..=i];
        let num: f64 = w.iter().enumerate().map(|(k, v)| v * (k + 1) as f64).sum();
        assert!(close_to(got[i], num / 28.0));
        assert_eq!(hi[i], w.iter().cloned().fold(f64::MIN, f64::max));
    }
}

#[test]
fn non_finite_inputs_are_skipped_not_poisonous() {
    let mut s = Sma::new(3).unwrap();
    assert!(s.update(1.0).is_nan());
    assert!(s.update(f64::NAN).is_nan());
    assert!(s.update(2.0).is_nan());
    assert_eq!(s.update(3.0), 2.0);
    assert!(s.update(f64::INFINITY).is_nan());
    assert_eq!(s.value(), 2.0);
    assert_eq!(s.update(4.0), 3.0);
    // EMA and RSI recover too.
    let mut e = Ema::new(2).unwrap();
    e.update(1.0);
    e.update(f64::NAN);
    assert_eq!(e.update(3.0), 2.0);
    let mut r = Rsi::new(2).unwrap();
    for x in [1.0, f64::NAN, 2.0, f64::NEG_INFINITY, 3.0] {
        r.update(x);
    }
    assert_eq!(r.value(), 100.0);
    let mut a = Adx::new(3).unwrap();
    let bad = Bar {
        open: 1.0,
        high: f64::NAN,
        low: 1.0,
        close: 1.0,
        volume: 1.0,
    };
    assert!(a.update(bad).adx.is_nan());
}

#[test]
fn reset_returns_to_fresh_state() {
    let x = series(120);
    let c = {
        let mut c = crate::candles::Candles::new(crate::candles::Timeframe::M1);
        for (i, v) in x.iter().enumerate() {
            c.push(
                i as i64 * 60_000,
                *v,
                v + 1.0,
                v - 1.0,
                v + 0.5,
                10.0 + i as f64,
            );
        }
        c
    };
    macro_rules! cycle {
        ($ind:expr, $inputs:expr) => {{
            let mut ind = $ind;
            let first: Vec<_> = $inputs.map(|i| format!("{:?}", ind.update(i))).collect();
            ind.reset();
            let second: Vec<_> = $inputs.map(|i| format!("{:?}", ind.update(i))).collect();
            assert_eq!(first, second);
            assert!(ind.is_ready());
        }};
    }
    cycle!(Kama::new(10).unwrap(), x.iter().copied());
    cycle!(Macd::new(12, 26, 9).unwrap(), x.iter().copied());
    cycle!(Hma::new(16).unwrap(), x.iter().copied());
    cycle!(Tema::new(5).unwrap(), x.iter().copied());
    cycle!(StochRsi::new(14, 5, 3).unwrap(), x.iter().copied());
    cycle!(Adx::new(14).unwrap(), bars(&c));
    cycle!(Sar::new(0.02, 0.2).unwrap(), bars(&c));
    cycle!(Ichimoku::new(9, 26, 52).unwrap(), bars(&c));
    cycle!(Mfi::new(14).unwrap(), bars(&c));
    cycle!(Keltner::new(20, 2.0, 10).unwrap(), bars(&c));
}

#[test]
fn lookback_matches_first_value() {
    let x = series(400);
    fn first_value(v: &[f64]) -> usize {
        v.iter().position(|x| !x.is_nan()).unwrap()
    }
    assert_eq!(
        first_value(&batch::dema(&x, 10).unwrap()),
        Dema::new(10).unwrap().lookback()
    );
    assert_eq!(
        first_value(&batch::tema(&x, 10).unwrap()),
        Tema::new(10).unwrap().lookback()
    );
    assert_eq!(
        first_value(&batch::hma(&x, 20).unwrap()),
        Hma::new(20).unwrap().lookback()
    );
    assert_eq!(first_value(&batch::kama(&x, 30).unwrap()), 30);
    let m = batch::macd(&x, 12, 26, 9).unwrap();
    assert_eq!(m.iter().position(|o| !o.signal.is_nan()).unwrap(), 33);
}

#[test]
fn fast_batch_paths_are_bit_identical_to_streaming() {
    let x = series(500);
    for n in [1, 2, 5, 30] {
        let fast = batch::sma(&x, n).unwrap();
        let slow = run(Sma::new(n).unwrap(), x.iter().copied());
        assert!(
            fast.iter()
                .zip(&slow)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        let fast = batch::ema(&x, n).unwrap();
        let slow = run(Ema::new(n).unwrap(), x.iter().copied());
        assert!(
            fast.iter()
                .zip(&slow)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
    }
}
