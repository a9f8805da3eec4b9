//! Bit-for-bit results (issue 16): every catalogue template, plus a strategy that uses every risk rule, on every
//! real candle file in `data/market`, under four configurations, gives exactly the result recorded in
//! `tests/golden/bits.json` — every trade (bars, times, prices, units, fees, P&L, rules and their values), the
//! per-bar equity, the metrics, the skipped entries and the candle fingerprint. The file records a SHA-256 of
//! the result serialised with `serde_json` (whose number output round-trips every `f64` exactly) and, to read
//! a difference at a glance, the trade count and final equity.
//!
//! The golden file was written by the engine before the performance work of issue 16; a performance change
//! must leave it as it is. After a deliberate change of results, regenerate it with
//! `GOLDEN_BITS_WRITE=1 cargo test -p engine --test golden_bits` and say why in the commit.

use std::collections::BTreeMap;

use engine::backtest::{BacktestConfig, Fill, run};
use engine::catalogue::templates;
use engine::strategy::{PositionSize, compile};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A strategy that exercises stops, targets, the trailing stop, sizing and the bar limit.
const RISKY: &str = "\
let fast = ema(close, 8)
let slow = sma(close, 21)
entry long when crosses_above(fast, slow) and rsi(close, 14) < 70
exit long when crosses_below(fast, slow)
risk {
  stop_loss = 2%
  take_profit = 4%
  trailing_stop = 1.5%
  size = 60%
  max_bars = 96
}
";

fn configs() -> Vec<(&'static str, BacktestConfig)> {
    let base = BacktestConfig::default();
    vec![
        ("default", base.clone()),
        (
            "same_close_slippage",
            BacktestConfig {
                fill: Fill::SameClose,
                slippage_bps: 7.5,
                fee: 0.002,
                ..base.clone()
            },
        ),
        (
            "half_equity_step",
            BacktestConfig {
                position_size: Some(PositionSize::PercentOfEquity(0.5)),
                quantity_step: Some(0.001),
                initial_cash: 2_500.0,
                ..base.clone()
            },
        ),
        (
            "fixed_quote",
            BacktestConfig {
                position_size: Some(PositionSize::FixedQuote(1_000.0)),
                ..base
            },
        ),
    ]
}

fn digest(r: &engine::backtest::BacktestResult) -> String {
    let mut provenance = serde_json::to_value(&r.provenance).expect("provenance");
    // The engine's version is not part of the result.
    if let Some(p) = provenance.as_object_mut() {
        p.remove("engine_version");
    }
    let doc = json!({
        "trades": r.trades,
        "equity": r.equity.iter().map(|e| e.to_bits()).collect::<Vec<_>>(),
        "metrics": r.metrics,
        "skipped_entries": r.skipped_entries,
        "provenance": provenance,
    });
    let text = serde_json::to_string(&doc).expect("serialises");
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

#[test]
fn every_template_on_every_real_file_gives_the_recorded_bits() {
    let dir = format!("{}/../data/market", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("data/market")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the real candle files");
    let mut strategies: Vec<(&str, &str)> =
        templates().iter().map(|t| (t.name, t.source)).collect();
    strategies.push(("risky", RISKY));
    let mut got = BTreeMap::new();
    for path in &files {
        let file = path.file_name().and_then(|f| f.to_str()).expect("name");
        let (candles, _) =
            engine::csv::read_candles(std::fs::File::open(path).expect("open"), None).expect("csv");
        for (name, source) in &strategies {
            let strategy = compile(source, &[]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            for (label, config) in configs() {
                let r = run(&candles, &strategy, &config).expect("runs");
                got.insert(
                    format!("{name}/{file}/{label}"),
                    json!({
                        "trades": r.trades.len(),
                        "final_equity": r.metrics.final_equity.value,
                        "sha256": digest(&r),
                    }),
                );
            }
        }
    }
    let path = format!("{}/tests/golden/bits.json", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("GOLDEN_BITS_WRITE").is_some() {
        let text = serde_json::to_string_pretty(&got).expect("serialises");
        std::fs::write(&path, text + "\n").expect("write golden");
        return;
    }
    let want: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file")).expect("json");
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "the same cases"
    );
    let differ: Vec<String> = want
        .iter()
        .filter(|(k, w)| got.get(*k) != Some(w))
        .map(|(k, w)| format!("{k}: recorded {w}, now {}", got[k]))
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} results changed:\n{}",
        differ.len(),
        want.len(),
        differ.join("\n")
    );
}
