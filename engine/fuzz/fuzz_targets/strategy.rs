//! Fuzz the strategy language: compile (with an override), evaluate on small candles, and the
//! single-expression path used by `vortex indicator`. Must never panic or hang.
#![no_main]

use engine::candles::{Candles, Timeframe};
use libfuzzer_sys::fuzz_target;

fn candles() -> Candles {
    let mut c = Candles::new(Timeframe::M1);
    for i in 0..64 {
        let x = 100.0 + ((i * 7919) % 31) as f64 - 15.0;
        c.push(i * 60_000, x, x + 2.0, x - 2.0, x + 0.5, (i % 5) as f64);
    }
    c
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let c = candles();
    if let Ok(s) = engine::strategy::compile(src, &[("fast".into(), "5".into())]) {
        let _ = s.evaluate(&c);
        let _ = engine::backtest::run(&c, &s, &engine::backtest::BacktestConfig::default());
    } else if let Err(diags) = engine::strategy::compile(src, &[]) {
        for d in diags {
            let _ = d.render(src);
        }
    }
    let _ = engine::strategy::eval_series(src, &c);
});
