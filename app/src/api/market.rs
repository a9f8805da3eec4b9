//! Market data for the Market data page: coverage per series and recent ETL runs. Public (prices are not user
//! data). The chart's candles come from `GET /api/v1/market/candles` (JSON, fetched by the chart script).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A run of missing candles (open times of the first and last missing candle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapDto {
    pub from_ms: i64,
    pub to_ms: i64,
    pub from: String,
    pub to: String,
    pub missing: i64,
}

/// One series' coverage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesDto {
    pub instrument_id: i32,
    pub exchange: String,
    pub pair: String,
    pub timeframe: String,
    pub tracked: bool,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub count: i64,
    pub expected: i64,
    pub missing: i64,
    pub gap_count: i64,
    /// The first [`MAX_GAPS`] gaps.
    pub gaps: Vec<GapDto>,
    pub last_update: Option<String>,
}

impl SeriesDto {
    /// The key the page's series selector uses: `instrument_id:timeframe`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.instrument_id, self.timeframe)
    }

    pub fn label(&self) -> String {
        format!("{} {} · {}", self.pair, self.timeframe, self.exchange)
    }
}

/// One ETL run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDto {
    pub run_id: String,
    pub series: String,
    pub mode: String,
    pub source: String,
    pub status: String,
    pub chunks_done: i32,
    pub chunks_total: i32,
    pub candles_fetched: i64,
    pub candles_expected: i64,
    pub error: Option<String>,
    pub updated_at: String,
}

/// What the Market data page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketOverview {
    pub series: Vec<SeriesDto>,
    pub runs: Vec<RunDto>,
}

/// Gaps listed per series (the counts cover all of them).
pub const MAX_GAPS: i64 = 1000;

/// Coverage of every series and the 10 most recent ETL runs.
#[server(endpoint = "market_overview", input = leptos::server_fn::codec::GetUrl)]
pub async fn get_market_overview() -> Result<MarketOverview, AppError> {
    use backend::market::{coverage, iso, store};
    let ctx = expect_context::<backend::Ctx>();
    let fail = |e| {
        let unavailable = backend::db::is_unavailable(&e);
        tracing::error!(error = %e, "market overview");
        if unavailable {
            AppError::Unavailable {
                message: "the database is not answering".into(),
            }
        } else {
            AppError::Internal
        }
    };
    let series = coverage::coverage(&ctx.db, None, MAX_GAPS)
        .await
        .map_err(fail)?;
    let runs = store::recent_runs(&ctx.db, 10).await.map_err(fail)?;
    Ok(MarketOverview {
        series: series
            .into_iter()
            .map(|s| SeriesDto {
                instrument_id: s.instrument_id,
                exchange: s.exchange,
                pair: format!("{}/{}", s.base, s.quote),
                timeframe: s.timeframe.as_str().to_owned(),
                tracked: s.tracked,
                first_ms: s.first,
                last_ms: s.last,
                first: s.first.map(iso),
                last: s.last.map(iso),
                count: s.count,
                expected: s.expected,
                missing: s.missing,
                gap_count: s.gap_count,
                gaps: s
                    .gaps
                    .iter()
                    .map(|g| GapDto {
                        from_ms: g.from,
                        to_ms: g.to,
                        from: iso(g.from),
                        to: iso(g.to),
                        missing: i64::try_from(g.missing).unwrap_or(i64::MAX),
                    })
                    .collect(),
                last_update: s
                    .last_update
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
            })
            .collect(),
        runs: runs
            .into_iter()
            .map(|r| RunDto {
                run_id: r.market_etl_run_id.to_string(),
                series: format!("{}/{} {} · {}", r.base, r.quote, r.timeframe, r.exchange),
                mode: r.mode,
                source: r.source,
                status: r.status,
                chunks_done: r.chunks_done,
                chunks_total: r.chunks_total,
                candles_fetched: r.candles_fetched,
                candles_expected: r.candles_expected,
                error: r.error,
                updated_at: r.updated_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            })
            .collect(),
    })
}
