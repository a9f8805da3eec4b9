//! What the results page's charts draw: candles (resampled to a readable count), the equity curve (thinned
//! keeping its extremes), trade markers; and the decision trace's types.

use engine::candles::{Candles, Timeframe};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::{EquitySeries, RunDetail, get, result, trades};
use crate::backtest::Error;
use crate::market::store;

/// Candles for a chart, thinned to at most this many bars by resampling to a longer timeframe.
pub const CHART_MAX_BARS: usize = 5000;

/// What the results page's charts draw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChartData {
    pub candles: ChartCandles,
    pub equity: EquitySeries,
    pub initial_cash: f64,
    /// The first [`CHART_MAX_TRADES`] trades (markers beyond that are unreadable anyway).
    pub trades: Vec<ChartTrade>,
    /// All trades of the run (more than `trades.len()` when the markers were capped).
    pub trade_count: usize,
}

/// Most trades drawn as chart markers.
pub const CHART_MAX_TRADES: i64 = 20_000;

/// Candles as columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChartCandles {
    pub timeframe: String,
    pub time: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
}

/// A trade for chart markers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChartTrade {
    pub seq: i32,
    pub entry_time: i64,
    pub exit_time: i64,
    pub entry_price: f64,
    pub exit_price: f64,
    pub pnl: f64,
    pub return_pct: f64,
    pub exit_reason: String,
}

/// Resamples candles to the shortest timeframe that keeps at most [`CHART_MAX_BARS`] bars.
pub fn chart_candles(c: &Candles) -> ChartCandles {
    let mut shown = None;
    if c.len() > CHART_MAX_BARS {
        for tf in [
            Timeframe::M5,
            Timeframe::M15,
            Timeframe::M30,
            Timeframe::H1,
            Timeframe::H4,
            Timeframe::D1,
            Timeframe::W1,
        ] {
            if tf.millis() <= c.timeframe.millis() {
                continue;
            }
            // A bar of `tf` holds at most `ratio` candles, so the resampled series has at least len / ratio
            // bars: when that is over the limit, resampling (a pass over every candle) cannot give a fit.
            let ratio = usize::try_from(tf.millis() / c.timeframe.millis().max(1))
                .unwrap_or(1)
                .max(1);
            if c.len().div_ceil(ratio) > CHART_MAX_BARS && tf != Timeframe::W1 {
                continue;
            }
            if let Ok(r) = c.resample(tf)
                && (r.len() <= CHART_MAX_BARS || tf == Timeframe::W1)
            {
                shown = Some(r);
                break;
            }
        }
    }
    let c = shown.as_ref().unwrap_or(c);
    ChartCandles {
        timeframe: c.timeframe.as_str().to_owned(),
        time: c.time.clone(),
        open: c.open.clone(),
        high: c.high.clone(),
        low: c.low.clone(),
        close: c.close.clone(),
    }
}

async fn run_candles(db: &PgPool, run: &RunDetail) -> Result<Candles, Error> {
    let tf = Timeframe::parse(&run.summary.timeframe)
        .map_err(|e| Error::invalid("timeframe", e.to_string()))?;
    Ok(store::load_candles(
        db,
        run.summary.instrument_id,
        tf,
        Some(crate::market::to_millis(run.summary.range_from)),
        Some(crate::market::to_millis(run.summary.range_to)),
        None,
    )
    .await?)
}

/// The data for a finished run's charts.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn chart(db: &PgPool, user: Uuid, id: Uuid) -> Result<ChartData, Error> {
    let run = get(db, user, id).await?;
    let res = result(db, user, id).await?;
    let stored = sqlx::query_scalar!(
        r#"select chart_candles as "chart_candles: sqlx::types::Json<ChartCandles>"
           from backtest_result where backtest_run_id = $1"#,
        id,
    )
    .fetch_one(db)
    .await?;
    let candles = match stored {
        Some(c) => c.0,
        // Results stored before chart candles were kept: resample the stored candles now.
        None => chart_candles(&run_candles(db, &run).await?),
    };
    let (trades, total) = trades(db, user, id, None, None, CHART_MAX_TRADES, 0).await?;
    Ok(ChartData {
        trade_count: usize::try_from(total).unwrap_or(usize::MAX),
        candles,
        equity: res.equity,
        initial_cash: run.config.initial_cash,
        trades: trades
            .iter()
            .map(|t| ChartTrade {
                seq: t.seq,
                entry_time: t.entry_time.timestamp_millis(),
                exit_time: t.exit_time.timestamp_millis(),
                entry_price: t.entry_price,
                exit_price: t.exit_price,
                pnl: t.pnl,
                return_pct: t.return_pct,
                exit_reason: t.exit_reason.clone(),
            })
            .collect(),
    })
}

/// One bar of the decision trace, JSON-friendly (NaN → `None`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceBar {
    pub index: usize,
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub in_position: bool,
    pub entry_rules: Vec<(String, bool)>,
    pub exit_rules: Vec<(String, bool)>,
    pub values: Vec<(String, Option<f64>)>,
    pub actions: Vec<String>,
}

/// The decision trace around a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trace {
    pub bars: Vec<TraceBar>,
    /// Set when the answer needs a caveat (e.g. the stored candles changed since the run).
    pub note: Option<String>,
}

/// Most bars one trace answer lists.
pub const TRACE_MAX_BARS: usize = 20;
/// Most bars one trace request may span (a chart candle of a resampled chart is far less).
pub const TRACE_MAX_SPAN_BARS: usize = 5_000;
/// Trace requests per user per minute (browser and API), on top of the API's general limit.
pub const TRACE_RATE_PER_MINUTE: u64 = 30;

/// "Why here?" is computed by a backtest worker within the memory budget and stored ([`super::trace`]).
pub use crate::backtest::trace::trace;

/// Thins an equity curve to about `points` points: each bucket keeps its lowest and highest point in time
/// order (so peaks and drawdowns stay), plus the final point.
pub fn thin_equity(time: &[i64], equity: &[f64], points: usize) -> EquitySeries {
    let n = equity.len().min(time.len());
    if n <= points.max(2) {
        return EquitySeries {
            time: time[..n].to_vec(),
            equity: equity[..n].to_vec(),
        };
    }
    let buckets = (points / 2).max(1);
    let size = n.div_ceil(buckets);
    let mut out = EquitySeries::default();
    let mut i = 0;
    while i < n {
        let end = (i + size).min(n);
        let (mut lo, mut hi) = (i, i);
        for k in i..end {
            if equity[k] < equity[lo] {
                lo = k;
            }
            if equity[k] > equity[hi] {
                hi = k;
            }
        }
        let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.time.push(time[a]);
        out.equity.push(equity[a]);
        if b != a {
            out.time.push(time[b]);
            out.equity.push(equity[b]);
        }
        i = end;
    }
    if out.time.last() != Some(&time[n - 1]) {
        out.time.push(time[n - 1]);
        out.equity.push(equity[n - 1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_extremes_and_the_end() {
        let time: Vec<i64> = (0..10_000).collect();
        let mut equity: Vec<f64> = (0..10_000).map(|i| 100.0 + (i as f64) * 0.01).collect();
        equity[4321] = 1.0; // a deep drawdown
        equity[7000] = 10_000.0; // a spike
        let t = thin_equity(&time, &equity, 100);
        assert!(t.time.len() <= 102, "{}", t.time.len());
        assert!(t.equity.contains(&1.0));
        assert!(t.equity.contains(&10_000.0));
        assert_eq!(t.time.last(), Some(&9_999));
        assert!(t.time.windows(2).all(|w| w[0] < w[1]));
        let short = thin_equity(&time[..50], &equity[..50], 100);
        assert_eq!(short.time.len(), 50);
    }
}
