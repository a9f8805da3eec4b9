//! Coverage and data quality per series: first and last candle, count, missing ranges (gaps) and the last
//! update. Gaps are computed in Postgres with one window scan of the primary-key index per series (the same
//! definition as the engine's `Candles::gaps`: a step larger than the timeframe is a gap of the candles in
//! between).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{Gap, Timeframe, to_millis};

/// One series' coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesCoverage {
    pub instrument_id: i32,
    pub exchange: String,
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub timeframe: Timeframe,
    pub tracked: bool,
    /// Open time of the first and last candle (epoch ms); `None` when the series has no candles.
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub count: i64,
    /// Candles between first and last inclusive if none were missing.
    pub expected: i64,
    /// Missing candles in all.
    pub missing: i64,
    /// The gaps, oldest first, at most the requested number (see `gap_count` for all).
    pub gaps: Vec<Gap>,
    pub gap_count: i64,
    pub last_update: Option<DateTime<Utc>>,
}

/// One stored series without its gaps: what lists of instruments and forms need (cheap: no window scan).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSummary {
    pub instrument_id: i32,
    pub exchange: String,
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub timeframe: Timeframe,
    pub tracked: bool,
    /// Open time of the first and last candle (epoch ms); `None` when the series has no candles.
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub count: i64,
    pub last_update: Option<DateTime<Utc>>,
}

/// Every known series (or those of one instrument) with first/last candle and count, ordered by exchange,
/// symbol and timeframe.
///
/// # Errors
/// Database errors.
pub async fn series(pool: &PgPool, instrument_id: Option<i32>) -> sqlx::Result<Vec<SeriesSummary>> {
    #[allow(clippy::type_complexity)]
    let rows = sqlx::query_as::<
        _,
        (i32, String, String, String, String, String, bool, Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64, Option<DateTime<Utc>>),
    >(
        r#"select i.instrument_id, i.exchange, i.symbol, i.base, i.quote, s.timeframe, s.tracked,
                  c.first, c.last, coalesce(c.n, 0), s.last_update_at
           from market_series s
           join instrument i using (instrument_id)
           left join lateral (
               select min(open_time) as first, max(open_time) as last, count(*) as n
               from candle where instrument_id = s.instrument_id and timeframe = s.timeframe) c on true
           where $1::int is null or s.instrument_id = $1
           order by i.exchange, i.symbol, s.timeframe"#,
    )
    .bind(instrument_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let timeframe = Timeframe::parse(&r.5).ok()?;
            Some(SeriesSummary {
                instrument_id: r.0,
                exchange: r.1,
                symbol: r.2,
                base: r.3,
                quote: r.4,
                timeframe,
                tracked: r.6,
                first: r.7.map(to_millis),
                last: r.8.map(to_millis),
                count: r.9,
                last_update: r.10,
            })
        })
        .collect())
}

/// Coverage of every known series (or of one instrument), with at most `max_gaps` gaps listed per series.
///
/// # Errors
/// Database errors.
pub async fn coverage(
    pool: &PgPool,
    instrument_id: Option<i32>,
    max_gaps: i64,
) -> sqlx::Result<Vec<SeriesCoverage>> {
    let all = series(pool, instrument_id).await?;
    let mut out = Vec::with_capacity(all.len());
    for s in all {
        let (gaps, gap_count, missing) = gaps(pool, s.instrument_id, s.timeframe, max_gaps).await?;
        let expected = match (s.first, s.last) {
            (Some(f), Some(l)) => (l - f) / s.timeframe.millis() + 1,
            _ => 0,
        };
        out.push(SeriesCoverage {
            instrument_id: s.instrument_id,
            exchange: s.exchange,
            symbol: s.symbol,
            base: s.base,
            quote: s.quote,
            timeframe: s.timeframe,
            tracked: s.tracked,
            first: s.first,
            last: s.last,
            count: s.count,
            expected,
            missing,
            gaps,
            gap_count,
            last_update: s.last_update,
        });
    }
    Ok(out)
}

/// The gaps of one series: up to `max_gaps` of them, plus the total number of gaps and of missing candles.
///
/// # Errors
/// Database errors.
pub async fn gaps(
    pool: &PgPool,
    instrument_id: i32,
    timeframe: Timeframe,
    max_gaps: i64,
) -> sqlx::Result<(Vec<Gap>, i64, i64)> {
    let step = timeframe.millis();
    // Weekly candles are 7 days apart; every timeframe is a fixed number of milliseconds.
    let rows = sqlx::query_as::<_, (DateTime<Utc>, DateTime<Utc>, i64, i64, i64)>(
        r#"with steps as (
               select lag(open_time) over (order by open_time) as prev, open_time
               from candle where instrument_id = $1 and timeframe = $2),
           g as (
               select prev, open_time,
                      (extract(epoch from open_time - prev) * 1000)::bigint / $3 - 1 as missing
               from steps
               where prev is not null and open_time - prev > make_interval(secs => $3 / 1000.0))
           select prev, open_time, missing, count(*) over (), sum(missing) over ()::bigint
           from g order by prev limit $4"#,
    )
    .bind(instrument_id)
    .bind(timeframe.as_str())
    .bind(step)
    .bind(max_gaps.max(1))
    .fetch_all(pool)
    .await?;
    let total = rows.first().map_or(0, |r| r.3);
    let missing = rows.first().map_or(0, |r| r.4);
    let gaps = rows
        .into_iter()
        .take(usize::try_from(max_gaps).unwrap_or(0))
        .map(|(prev, next, n, _, _)| Gap {
            from: to_millis(prev) + step,
            to: to_millis(next) - step,
            missing: usize::try_from(n).unwrap_or(0),
        })
        .collect();
    Ok((gaps, total, missing))
}
