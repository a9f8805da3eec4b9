//! "Why here?": the decision trace of a run at a time, re-run from the exact strategy version.

use axum::{Json, extract::State};
use backend::{
    backtest::{Error as BacktestError, actions::runs as act},
    market::parse_time,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::dto::{NamedValue, named};
use crate::{
    error::{ApiError, ApiResult},
    extract::{ApiActor, ApiPath, ApiQuery},
    routes::contract,
    routes::openapi::ErrorBody,
    state::AppState,
};

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::from(BacktestError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceQuery {
    /// The bar to explain: epoch ms (the open time of a bar or any time inside it), or RFC 3339. Required.
    #[serde(default, deserialize_with = "contract::de_trace_time")]
    #[param(inline, value_type = contract::TraceTimeParam, required = true)]
    time: Option<String>,
    /// Explain the bars in `[time, time + span)` (ms; a candle of a resampled chart). Default 0: one bar.
    #[serde(
        default,
        deserialize_with = "contract::de_range::<_, 0, 31_536_000_000_000>"
    )]
    #[param(minimum = 0, maximum = 31_536_000_000_000_i64)]
    span: Option<i64>,
}

/// A rule and whether it held on the bar.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleState {
    pub rule: String,
    pub fired: bool,
}

/// One bar of the decision trace.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceBar {
    pub index: usize,
    /// Open time, epoch ms UTC.
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub in_position: bool,
    pub entry_rules: Vec<RuleState>,
    pub exit_rules: Vec<RuleState>,
    /// Values of the strategy's series on this bar (`null` while warming up).
    pub values: Vec<NamedValue>,
    /// What happened, in words (signals, fills, why nothing happened).
    pub actions: Vec<String>,
}

/// "Why here?": the bars around a time with rules, values and actions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Trace {
    pub bars: Vec<TraceBar>,
    /// A caveat, e.g. that the stored candles changed since the run.
    pub note: Option<String>,
}

fn rules(list: Vec<(String, bool)>) -> Vec<RuleState> {
    list.into_iter()
        .map(|(rule, fired)| RuleState { rule, fired })
        .collect()
}

/// `GET /api/v1/backtests/{id}/trace?time=<ms>[&span=<ms>]`: the decision trace at a time (re-runs the exact
/// strategy version on the run's candles).
#[utoipa::path(
    get,
    path = "/api/v1/backtests/{id}/trace",
    tag = "backtests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id"), TraceQuery),
    responses(
        (status = 200, description = "The trace", body = Trace),
        (status = 400, description = "`invalid_input` with `field` `time` (missing, malformed or outside the run) or `span`", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
    )
)]
pub async fn trace_backtest(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<TraceQuery>,
) -> ApiResult<Json<Trace>> {
    let text = q.time.as_deref().map(str::trim).unwrap_or("");
    if text.is_empty() {
        return Err(invalid("time", "give the bar's time in epoch milliseconds"));
    }
    let time = parse_time(text).map_err(|e| invalid("time", e))?;
    let t = act::trace(&actor, &state.ctx, id, time, q.span.unwrap_or(0)).await?;
    Ok(Json(Trace {
        bars: t
            .bars
            .into_iter()
            .map(|b| TraceBar {
                index: b.index,
                time: b.time,
                open: b.open,
                high: b.high,
                low: b.low,
                close: b.close,
                in_position: b.in_position,
                entry_rules: rules(b.entry_rules),
                exit_rules: rules(b.exit_rules),
                values: named(b.values),
                actions: b.actions,
            })
            .collect(),
        note: t.note,
    }))
}
