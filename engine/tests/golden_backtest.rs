//! The SMA(10/30) crossover reproduces vectorbt trade for trade on real candles.
//!
//! Golden files: `tests/golden/backtest/*.json`, produced once by
//! `scripts/golden/gen_backtest.py` (vectorbt configured to the engine's default semantics).

use engine::backtest::{BacktestConfig, ExitReason, run};
use engine::catalogue::template;
use engine::strategy::compile;
use serde_json::Value;

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

#[test]
fn sma_cross_matches_vectorbt_trade_for_trade() {
    let dir = format!("{}/tests/golden/backtest", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    let strategy = compile(template("sma_cross").unwrap().source, &[]).unwrap();
    for path in files {
        let g: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let file = g["file"].as_str().unwrap();
        let csv = format!("{}/../data/market/{file}", env!("CARGO_MANIFEST_DIR"));
        let (candles, _) =
            engine::csv::read_candles(std::fs::File::open(&csv).unwrap(), None).unwrap();
        let r = run(&candles, &strategy, &BacktestConfig::default()).unwrap();
        let want = g["trades"].as_array().unwrap();
        assert_eq!(r.trades.len(), want.len(), "{file}: trade count");
        for (k, (t, w)) in r.trades.iter().zip(want).enumerate() {
            let ctx = format!("{file} trade {k}");
            assert_eq!(
                t.entry_index as u64,
                w["entry_index"].as_u64().unwrap(),
                "{ctx}: entry bar"
            );
            assert_eq!(
                t.exit_index as u64,
                w["exit_index"].as_u64().unwrap(),
                "{ctx}: exit bar"
            );
            assert!(
                rel(t.entry_price, w["entry_price"].as_f64().unwrap()) <= 1e-12,
                "{ctx}: entry price"
            );
            assert!(
                rel(t.exit_price, w["exit_price"].as_f64().unwrap()) <= 1e-12,
                "{ctx}: exit price"
            );
            assert!(
                rel(t.units, w["units"].as_f64().unwrap()) <= 1e-9,
                "{ctx}: units {} vs {}",
                t.units,
                w["units"]
            );
            assert!(
                rel(t.pnl, w["pnl"].as_f64().unwrap()) <= 1e-6,
                "{ctx}: pnl {} vs {}",
                t.pnl,
                w["pnl"]
            );
            if k + 1 < want.len() {
                assert_eq!(t.exit_reason, ExitReason::Signal, "{ctx}");
            }
        }
        let fe = r.metrics.final_equity.value.unwrap();
        let want_fe = g["final_equity"].as_f64().unwrap();
        assert!(
            rel(fe, want_fe) <= 1e-9,
            "{file}: final equity {fe} vs {want_fe}"
        );
    }
}
