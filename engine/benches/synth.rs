//! Deterministic large candle series built from the committed real candles: the 5m files are
//! concatenated again and again, each copy's prices re-based so that its first open equals the
//! previous copy's last close (no jumps), timestamps re-spaced every 5 minutes.

use engine::candles::{Candles, Timeframe};

const FILES: &[&str] = &[
    "ADA-BTC-5m.csv",
    "DASH-BTC-5m.csv",
    "ETC-BTC-5m.csv",
    "ETH-BTC-5m.csv",
    "LTC-BTC-5m.csv",
    "NXT-BTC-5m.csv",
    "TRX-BTC-5m.csv",
    "XLM-BTC-5m.csv",
    "XMR-BTC-5m.csv",
    "ZEC-BTC-5m.csv",
];

/// The real candles, in a fixed order.
pub fn sources() -> Vec<Candles> {
    FILES
        .iter()
        .map(|f| {
            let path = format!("{}/../data/market/{f}", env!("CARGO_MANIFEST_DIR"));
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            engine::csv::read_candles(file, Some(Timeframe::M5))
                .expect("fixture")
                .0
        })
        .collect()
}

/// `n` candles built from `sources` (deterministic).
pub fn build(sources: &[Candles], n: usize) -> Candles {
    let mut out = Candles::with_capacity(Timeframe::M5, n);
    let mut scale = 1.0 / sources[0].open[0];
    let mut k = 0;
    while out.len() < n {
        let s = &sources[k % sources.len()];
        if let Some(&last) = out.close.last() {
            scale = last / s.open[0];
        }
        for i in 0..s.len() {
            if out.len() == n {
                break;
            }
            let t = out.len() as i64 * 300_000;
            out.push(
                t,
                s.open[i] * scale,
                s.high[i] * scale,
                s.low[i] * scale,
                s.close[i] * scale,
                s.volume[i],
            );
        }
        k += 1;
    }
    out
}
