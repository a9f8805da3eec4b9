//! `market_data_lag_seconds{instrument, timeframe}`: how far a series' newest stored candle is behind the
//! newest candle the exchange has closed (0 when up to date). The ETL records the newest stored candle after
//! each chunk and each scheduled update ([`record`]); the gauge is recomputed from the clock by the metrics
//! upkeep and on every scrape ([`refresh`]), so it keeps growing while the ETL stalls. Each process reports the
//! series it has seen; the alert takes the minimum over processes (the freshest knowledge).

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

use engine::candles::Timeframe;

type Newest = HashMap<(String, Timeframe), i64>;

fn newest() -> &'static Mutex<Newest> {
    static NEWEST: OnceLock<Mutex<Newest>> = OnceLock::new();
    NEWEST.get_or_init(Mutex::default)
}

/// Records the open time (epoch ms) of the newest stored candle of `symbol`/`timeframe` and updates the gauge.
pub fn record(symbol: &str, timeframe: Timeframe, newest_open_ms: i64) {
    if let Ok(mut map) = newest().lock() {
        map.insert((symbol.to_owned(), timeframe), newest_open_ms);
    }
    refresh();
}

/// The lag in seconds at `now_ms` of a series whose newest stored candle opened at `newest_open_ms`.
pub fn lag_seconds(timeframe: Timeframe, newest_open_ms: i64, now_ms: i64) -> f64 {
    // The newest closed candle opened one period before the current (still open) one.
    let newest_closed_open = timeframe.floor(now_ms) - timeframe.millis();
    ((newest_closed_open - newest_open_ms).max(0) as f64) / 1000.0
}

/// Sets the gauge of every recorded series from the current time.
pub fn refresh() {
    let now = chrono::Utc::now().timestamp_millis();
    let Ok(map) = newest().lock() else {
        return;
    };
    for ((symbol, timeframe), open) in map.iter() {
        metrics::gauge!(
            "market_data_lag_seconds",
            "instrument" => symbol.clone(),
            "timeframe" => timeframe.as_str(),
        )
        .set(lag_seconds(*timeframe, *open, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_up_to_date_series_has_no_lag_and_a_stalled_one_grows() {
        let h = 3_600_000;
        let now = 10 * h + 5 * 60_000; // 10:05
        // The 09:00 candle closed at 10:00: up to date.
        assert_eq!(lag_seconds(Timeframe::H1, 9 * h, now), 0.0);
        // Newest stored candle opened 07:00: the 08:00 and 09:00 candles are missing.
        assert_eq!(lag_seconds(Timeframe::H1, 7 * h, now), 7200.0);
    }
}
