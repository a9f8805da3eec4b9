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

/// One ETL run. The operational details (where the data came from, which may be a server path; the error
/// text; the job chunk counts) are filled for admins only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDto {
    pub run_id: String,
    pub series: String,
    pub mode: String,
    pub status: String,
    pub candles_fetched: i64,
    pub candles_expected: i64,
    pub updated_at: String,
    /// Admins only.
    pub source: Option<String>,
    /// Admins only.
    pub error: Option<String>,
    /// `(done, total)` chunk jobs; admins only.
    pub chunks: Option<(i32, i32)>,
}

/// What the Market data page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketOverview {
    pub series: Vec<SeriesDto>,
    pub runs: Vec<RunDto>,
    /// Details of the viewer's last CSV upload (from the upload's flash cookie), shown under the fixed
    /// message its code names.
    pub upload_detail: Option<String>,
}

/// The fixed message of an upload refusal code (`/market?upload_error=<code>`); unknown codes show nothing.
pub fn upload_error_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "empty" => "Choose a non-empty CSV file.",
        "not_utf8" => "The file is not UTF-8 text (expected a CSV file).",
        "pair" => "The pair is not valid: write it as BASE/QUOTE, e.g. ETH/BTC.",
        "exchange" => {
            "The exchange name is not valid: up to 32 lower-case letters, digits, dots, dashes or underscores."
        }
        "timeframe" => {
            "The timeframe is not valid: use 1m, 5m, 15m, 30m, 1h, 4h, 1d or 1w, or leave it empty."
        }
        "csv" => "The file has a bad row; nothing was stored.",
        "invalid" => "The file could not be imported; nothing was stored.",
        "failed" => "The candles could not be stored. Please try again.",
        _ => return None,
    })
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
        crate::error::note_render_failure();
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
    // Operator details (source, error, chunks) are for admins: the actor decides.
    let admin = crate::api::actor().await?.admin().is_ok();
    let upload_detail = use_context::<http::request::Parts>().and_then(|p| {
        let raw = backend::web::read_cookie(&p.headers, backend::web::UPLOAD_RESULT_COOKIE)?;
        backend::web::decode_flash(raw)
    });
    Ok(MarketOverview {
        upload_detail,
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
                status: r.status,
                candles_fetched: r.candles_fetched,
                candles_expected: r.candles_expected,
                updated_at: r.updated_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                source: admin.then_some(r.source),
                error: if admin { r.error } else { None },
                chunks: admin.then_some((r.chunks_done, r.chunks_total)),
            })
            .collect(),
    })
}
