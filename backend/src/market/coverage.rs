//! Coverage and data quality per series: first and last candle, count, missing ranges (gaps) and the last
//! update (the same gap definition as the engine's `Candles::gaps`: a step larger than the timeframe is a gap
//! of the candles in between).
//!
//! Read from `market_coverage` and `market_gap`, which the candle writer keeps up to date in the transaction
//! that writes the candles (see `store::upsert_candles`): a page view costs a few index lookups whatever the
//! number of candles. [`scan`] recomputes the same answer from the candles themselves (one window scan per
//! series), for checks and tests only.

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
    let rows = sqlx::query!(
        r#"select i.instrument_id, i.exchange, i.symbol, i.base, i.quote, s.timeframe, s.tracked,
                  c.first as "first?", c.last as "last?", coalesce(c.n, 0) as "count!", s.last_update_at
           from market_series s
           join instrument i using (instrument_id)
           left join lateral (
               select first_open as first, last_open as last, candles as n
               from market_coverage where instrument_id = s.instrument_id and timeframe = s.timeframe) c on true
           where $1::int is null or s.instrument_id = $1
           order by i.exchange, i.symbol, s.timeframe"#,
        instrument_id,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let timeframe = Timeframe::parse(&r.timeframe).ok()?;
            Some(SeriesSummary {
                instrument_id: r.instrument_id,
                exchange: r.exchange,
                symbol: r.symbol,
                base: r.base,
                quote: r.quote,
                timeframe,
                tracked: r.tracked,
                first: r.first.map(to_millis),
                last: r.last.map(to_millis),
                count: r.count,
                last_update: r.last_update_at,
            })
        })
        .collect())
}

/// Coverage of every known series (or of one instrument), with at most `max_gaps` gaps listed per series:
/// read from the maintained coverage tables (no candle is read).
///
/// # Errors
/// Database errors.
pub async fn coverage(
    pool: &PgPool,
    instrument_id: Option<i32>,
    max_gaps: i64,
) -> sqlx::Result<Vec<SeriesCoverage>> {
    let totals = sqlx::query!(
        r#"select instrument_id, timeframe, gap_count, missing from market_coverage
           where $1::int is null or instrument_id = $1"#,
        instrument_id,
    )
    .fetch_all(pool)
    .await?;
    let totals: std::collections::HashMap<(i32, String), (i64, i64)> = totals
        .into_iter()
        .map(|r| ((r.instrument_id, r.timeframe), (r.gap_count, r.missing)))
        .collect();
    let mut listed: std::collections::HashMap<(i32, String), Vec<Gap>> =
        std::collections::HashMap::new();
    if max_gaps > 0 {
        // `cross join lateral` over not-null columns: every listed value is present.
        let rows = sqlx::query!(
            r#"select s.instrument_id, s.timeframe, g.prev_open as "prev_open!", g.next_open as "next_open!",
                      g.missing as "missing!"
               from market_series s
               cross join lateral (
                   select prev_open, next_open, missing from market_gap
                   where instrument_id = s.instrument_id and timeframe = s.timeframe
                   order by prev_open limit $2) g
               where $1::int is null or s.instrument_id = $1
               order by s.instrument_id, s.timeframe, g.prev_open"#,
            instrument_id,
            max_gaps,
        )
        .fetch_all(pool)
        .await?;
        for r in rows {
            let Ok(timeframe) = Timeframe::parse(&r.timeframe) else {
                continue;
            };
            let step = timeframe.millis();
            listed
                .entry((r.instrument_id, r.timeframe))
                .or_default()
                .push(Gap {
                    from: to_millis(r.prev_open) + step,
                    to: to_millis(r.next_open) - step,
                    missing: usize::try_from(r.missing).unwrap_or(0),
                });
        }
    }
    let all = series(pool, instrument_id).await?;
    Ok(all
        .into_iter()
        .map(|s| {
            let key = (s.instrument_id, s.timeframe.as_str().to_owned());
            let (gap_count, missing) = totals.get(&key).copied().unwrap_or((0, 0));
            let gaps = listed.remove(&key).unwrap_or_default();
            with_gaps(s, gaps, gap_count, missing)
        })
        .collect())
}

fn with_gaps(s: SeriesSummary, gaps: Vec<Gap>, gap_count: i64, missing: i64) -> SeriesCoverage {
    let expected = match (s.first, s.last) {
        (Some(f), Some(l)) => (l - f) / s.timeframe.millis() + 1,
        _ => 0,
    };
    SeriesCoverage {
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
    }
}

/// The same answer as [`coverage`], recomputed from the candles (a full scan of every series: for checks and
/// tests, never for pages).
///
/// # Errors
/// Database errors.
pub async fn scan(
    pool: &PgPool,
    instrument_id: Option<i32>,
    max_gaps: i64,
) -> sqlx::Result<Vec<SeriesCoverage>> {
    let mut all = series(pool, instrument_id).await?;
    for s in &mut all {
        let r = sqlx::query!(
            r#"select min(open_time) as first, max(open_time) as last, count(*) as "count!"
               from candle where instrument_id = $1 and timeframe = $2"#,
            s.instrument_id,
            s.timeframe.as_str(),
        )
        .fetch_one(pool)
        .await?;
        s.first = r.first.map(to_millis);
        s.last = r.last.map(to_millis);
        s.count = r.count;
    }
    let mut out = Vec::with_capacity(all.len());
    for s in all {
        let (gaps, gap_count, missing) = gaps(pool, s.instrument_id, s.timeframe, max_gaps).await?;
        out.push(with_gaps(s, gaps, gap_count, missing));
    }
    Ok(out)
}

/// The gaps of one series, scanned from its candles: up to `max_gaps` of them, plus the total number of gaps
/// and of missing candles (see [`scan`]).
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
    // `prev is not null` filters the one null `lag`; the window totals of a non-empty set are never null.
    let rows = sqlx::query!(
        r#"with steps as (
               select lag(open_time) over (order by open_time) as prev, open_time
               from candle where instrument_id = $1 and timeframe = $2),
           g as (
               select prev, open_time,
                      (extract(epoch from open_time - prev) * 1000)::bigint / $3 - 1 as missing
               from steps
               where prev is not null and open_time - prev > make_interval(secs => $3 / 1000.0))
           select prev as "prev!", open_time as "next!", missing as "missing!", count(*) over () as "total!",
                  sum(missing) over ()::bigint as "missing_total!"
           from g order by prev limit $4"#,
        instrument_id,
        timeframe.as_str(),
        step,
        max_gaps.max(1),
    )
    .fetch_all(pool)
    .await?;
    let total = rows.first().map_or(0, |r| r.total);
    let missing = rows.first().map_or(0, |r| r.missing_total);
    let gaps = rows
        .into_iter()
        .take(usize::try_from(max_gaps).unwrap_or(0))
        .map(|r| Gap {
            from: to_millis(r.prev) + step,
            to: to_millis(r.next) - step,
            missing: usize::try_from(r.missing).unwrap_or(0),
        })
        .collect();
    Ok((gaps, total, missing))
}
