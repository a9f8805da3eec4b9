//! Fuzz the CSV candle reader (with and without a valid header). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::csv::read_candles(data, None);
    let mut with_header = b"timestamp,open,high,low,close,volume\n".to_vec();
    with_header.extend_from_slice(data);
    if let Ok((c, _)) = engine::csv::read_candles(with_header.as_slice(), None) {
        let _ = c.validate();
        let _ = c.gaps();
        for tf in engine::candles::Timeframe::ALL {
            let _ = c.resample(tf);
        }
    }
});
