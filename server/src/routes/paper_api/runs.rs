//! The paper-run handlers: parse, call one action, map.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use backend::paper::{
    Error as PaperError,
    actions::{self as act, Owner},
    control::Command,
    query::RunFilter,
};
use uuid::Uuid;

use super::dto::{
    CandleList, ControlledRun, EquityCurve, EquityQuery, FillList, ListPaperRunsQuery, PageQuery,
    PaperLinks, PaperRunDetail, PaperRunList, PaperTradeList, ParityDto, ReleaseRiskLocks,
    RiskLimitsChanged, RiskLimitsInput, RiskLockList, StartPaperRun, StartedPaperRuns, StartedRun,
    StopPaperRun, TradesQuery,
};
use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiJson, ApiPath, ApiQuery},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// Backend field names are the web form's; the API names its JSON fields.
fn api_field(e: PaperError) -> PaperError {
    match e {
        PaperError::Invalid { field, message } => {
            let field = match field.as_str() {
                "instrument" => "instrument_ids".to_owned(),
                "strategy" => "strategy_id".to_owned(),
                "risk_mode" => "risk.mode".to_owned(),
                "max_drawdown_pct"
                | "daily_loss"
                | "daily_loss_pct"
                | "max_consecutive_losses"
                | "max_position_value"
                | "max_orders_per_day"
                | "stale_feed_secs" => format!("risk.{field}"),
                _ => field,
            };
            PaperError::Invalid { field, message }
        }
        other => other,
    }
}

/// `POST /api/v1/paper-runs`: starts one run per instrument.
#[utoipa::path(
    post,
    path = "/api/v1/paper-runs",
    tag = "paper",
    security(("bearer" = [])),
    request_body = StartPaperRun,
    responses(
        (status = 201, description = "Started", body = StartedPaperRuns),
        (status = 400, description = "`invalid_input` with `field` (`fee` when missing, `instrument_ids` without a live feed, `timeframe`, `strategy_id` for an archived strategy, `params`, `version`, `warmup_bars`, `initial_cash`, `slippage_bps`, `fill`, `risk.<limit>`), malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token, viewer, or an account whose email address is not confirmed; `plan_limit` (with `limit`, `usage`, `allowed`): the plan's `active_paper_runs` is reached; `plan_read_only`: the strategy is read-only over the plan's `strategies` after the grace period", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 422, description = "`invalid_strategy`: a parameter value is outside its declared type or range", body = ErrorBody),
    )
)]
pub async fn start_paper_run(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<StartPaperRun>,
) -> ApiResult<Response> {
    let started = act::start(&actor, &state.ctx, Owner::Me, &body.into())
        .await
        .map_err(api_field)?;
    let body = StartedPaperRuns {
        batch_id: started.batch_id,
        runs: started
            .run_ids
            .into_iter()
            .map(|id| StartedRun {
                id,
                status: "active".into(),
                links: PaperLinks::of(id),
            })
            .collect(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/paper-runs`: the caller's runs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/paper-runs",
    tag = "paper",
    security(("bearer" = [])),
    params(ListPaperRunsQuery),
    responses(
        (status = 200, description = "The caller's runs", body = PaperRunList),
        (status = 400, description = "`invalid_input` with `field`, or a malformed query", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn list_paper_runs(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<ListPaperRunsQuery>,
) -> ApiResult<Json<PaperRunList>> {
    let filter = RunFilter {
        status: q.status,
        strategy_id: q.strategy_id,
        instrument_id: q.instrument_id,
        batch_id: q.batch_id,
        limit: q.limit,
    };
    let runs = act::list(&actor, &state.ctx, Owner::Me, &filter).await?;
    Ok(Json(PaperRunList {
        runs: runs.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/paper-runs/{id}`: one run with its position, pending order, settings and gaps.
#[utoipa::path(
    get,
    path = "/api/v1/paper-runs/{id}",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id")),
    responses(
        (status = 200, description = "The run", body = PaperRunDetail),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
    )
)]
pub async fn get_paper_run(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<PaperRunDetail>> {
    Ok(Json(
        act::get(&actor, &state.ctx, Owner::Me, id).await?.into(),
    ))
}

/// `GET /api/v1/paper-runs/{id}/fills`: fills, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/paper-runs/{id}/fills",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id"), PageQuery),
    responses(
        (status = 200, description = "A page of fills", body = FillList),
        (status = 400, description = "`invalid_input` (`limit`), a malformed query or id", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
    )
)]
pub async fn list_paper_fills(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<FillList>> {
    let fills = act::fills(&actor, &state.ctx, id, q.before, q.limit.unwrap_or(100)).await?;
    Ok(Json(FillList {
        fills: fills.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/paper-runs/{id}/trades`: closed round trips, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/paper-runs/{id}/trades",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id"), TradesQuery),
    responses(
        (status = 200, description = "Closed trades", body = PaperTradeList),
        (status = 400, description = "`invalid_input` (`limit`), a malformed query or id", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
    )
)]
pub async fn list_paper_trades(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<TradesQuery>,
) -> ApiResult<Json<PaperTradeList>> {
    let trades = act::trades(&actor, &state.ctx, id, q.limit.unwrap_or(100)).await?;
    Ok(Json(PaperTradeList {
        trades: trades.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/paper-runs/{id}/candles`: processed candles with the decision at each close, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/paper-runs/{id}/candles",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id"), PageQuery),
    responses(
        (status = 200, description = "A page of processed candles", body = CandleList),
        (status = 400, description = "`invalid_input` (`limit`), a malformed query or id", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
    )
)]
pub async fn list_paper_candles(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<CandleList>> {
    let candles = act::candles(&actor, &state.ctx, id, q.before, q.limit.unwrap_or(100)).await?;
    Ok(Json(CandleList {
        candles: candles.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/paper-runs/{id}/equity`: the equity curve.
#[utoipa::path(
    get,
    path = "/api/v1/paper-runs/{id}/equity",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id"), EquityQuery),
    responses(
        (status = 200, description = "The equity curve", body = EquityCurve),
        (status = 400, description = "`invalid_input` (`points`), a malformed query or id", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
    )
)]
pub async fn paper_equity(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<EquityQuery>,
) -> ApiResult<Json<EquityCurve>> {
    let points = act::equity(&actor, &state.ctx, id, q.points.unwrap_or(1000)).await?;
    let (time, equity) = points.into_iter().unzip();
    Ok(Json(EquityCurve { time, equity }))
}

/// `GET /api/v1/paper-runs/{id}/parity`: the parity report.
#[utoipa::path(
    get,
    path = "/api/v1/paper-runs/{id}/parity",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id")),
    responses(
        (status = 200, description = "The report", body = ParityDto),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: the run has processed no candle yet, or the backtest of its window failed; `limit_reached`: the window is too long", body = ErrorBody),
        (status = 422, description = "`invalid_strategy`: the run's strategy version no longer compiles", body = ErrorBody),
        (status = 429, description = "`rate_limited`: at most 10 reports per minute", body = ErrorBody),
        (status = 503, description = "Request limits cannot be checked (Redis down)", body = ErrorBody),
    )
)]
pub async fn paper_parity(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ParityDto>> {
    Ok(Json(
        act::parity(&actor, &state.ctx, Owner::Me, id).await?.into(),
    ))
}

async fn control(
    state: &AppState,
    actor: &backend::Actor,
    id: Uuid,
    c: Command,
) -> ApiResult<Json<ControlledRun>> {
    let done = act::control(actor, &state.ctx, Owner::Me, id, c).await?;
    Ok(Json(ControlledRun {
        id,
        status: done.status.as_str().into(),
    }))
}

/// `POST /api/v1/paper-runs/{id}/pause`: no new orders from the next candle (protective stops keep working).
#[utoipa::path(
    post,
    path = "/api/v1/paper-runs/{id}/pause",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id")),
    responses(
        (status = 200, description = "Paused", body = ControlledRun),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: the run is not active", body = ErrorBody),
    )
)]
pub async fn pause_paper_run(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ControlledRun>> {
    control(&state, &actor, id, Command::Pause).await
}

/// `POST /api/v1/paper-runs/{id}/resume`: trades again from the next candle.
#[utoipa::path(
    post,
    path = "/api/v1/paper-runs/{id}/resume",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id")),
    responses(
        (status = 200, description = "Resumed", body = ControlledRun),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: the run is not paused", body = ErrorBody),
    )
)]
pub async fn resume_paper_run(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ControlledRun>> {
    control(&state, &actor, id, Command::Resume).await
}

/// `POST /api/v1/paper-runs/{id}/stop`: stops now, or with `{"flatten": true}` sells the position at the next
/// open and then stops.
#[utoipa::path(
    post,
    path = "/api/v1/paper-runs/{id}/stop",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id")),
    request_body(content = Option<StopPaperRun>, description = "Optional; default `{\"flatten\": false}`"),
    responses(
        (status = 200, description = "`stopped`, or `stopping` until the flattening fill", body = ControlledRun),
        (status = 400, description = "The id is not a UUID, or a malformed body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: the run is already stopped or failed", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
    )
)]
pub async fn stop_paper_run(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    body: Option<ApiJson<StopPaperRun>>,
) -> ApiResult<Json<ControlledRun>> {
    let flatten = body.is_some_and(|ApiJson(b)| b.flatten);
    control(&state, &actor, id, Command::Stop { flatten }).await
}

/// `PATCH /api/v1/paper-runs/{id}/risk`: changes the run's risk limits (absent fields unchanged, 0 = off),
/// from its next candle.
#[utoipa::path(
    patch,
    path = "/api/v1/paper-runs/{id}/risk",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id")),
    request_body = RiskLimitsInput,
    responses(
        (status = 200, description = "The run's limits now", body = RiskLimitsChanged),
        (status = 400, description = "`invalid_input` with `field` (`mode` and each limit), the id is not a UUID, malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: the run is stopped or failed", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
    )
)]
pub async fn set_paper_risk_limits(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RiskLimitsInput>,
) -> ApiResult<Json<RiskLimitsChanged>> {
    let limits = act::set_risk_limits(&actor, &state.ctx, Owner::Me, id, &body.into())
        .await
        .map_err(|e| match e {
            PaperError::Invalid { field, message } if field == "risk_mode" => PaperError::Invalid {
                field: "mode".into(),
                message,
            },
            other => other,
        })?;
    Ok(Json(RiskLimitsChanged {
        paper_run_id: id,
        risk_limits: limits.into(),
    }))
}

/// `POST /api/v1/paper-runs/{id}/risk/release`: releases the run's risk locks (all, or `lock_id`); it trades
/// again from its next candle unless another gate applies, and the limits measure again from there.
#[utoipa::path(
    post,
    path = "/api/v1/paper-runs/{id}/risk/release",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id")),
    request_body(content = Option<ReleaseRiskLocks>, description = "Optional; default: release every lock"),
    responses(
        (status = 200, description = "The run's locks now", body = RiskLockList),
        (status = 400, description = "`invalid_input` (`reason`), the id is not a UUID, malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such run of yours, or no such unreleased lock on it", body = ErrorBody),
        (status = 409, description = "`conflict`: the run is stopped or failed, or has no lock to release", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
    )
)]
pub async fn release_paper_risk_locks(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    body: Option<ApiJson<ReleaseRiskLocks>>,
) -> ApiResult<Json<RiskLockList>> {
    let b = body.map(|ApiJson(b)| b).unwrap_or_default();
    let locks = act::release_risk_locks(
        &actor,
        &state.ctx,
        Owner::Me,
        id,
        b.lock_id,
        b.reason.as_deref(),
    )
    .await?;
    Ok(Json(RiskLockList {
        risk_locks: locks.into_iter().map(Into::into).collect(),
    }))
}
