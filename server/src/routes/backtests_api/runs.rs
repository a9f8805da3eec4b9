//! Submit, list, get and cancel backtest runs.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use backend::backtest::{Error as BacktestError, actions::runs as act, runs};
use uuid::Uuid;

use super::dto::{
    CreateBacktest, CreatedBacktests, ListBacktestsQuery, QueuedRun, RunDetail, RunLinks, RunList,
    RunStatus,
};
use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiJson, ApiPath, ApiQuery},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// Backend field names are the web form's; the API names its JSON fields.
fn api_field(e: BacktestError) -> BacktestError {
    match e {
        BacktestError::Invalid { field, message } => {
            let field = match field.as_str() {
                "instrument" => "instrument_ids".to_owned(),
                "strategy" => "strategy_id".to_owned(),
                _ => field,
            };
            BacktestError::Invalid { field, message }
        }
        other => other,
    }
}

/// `POST /api/v1/backtests`: validates the submission and queues one run per instrument.
#[utoipa::path(
    post,
    path = "/api/v1/backtests",
    tag = "backtests",
    security(("bearer" = [])),
    request_body = CreateBacktest,
    responses(
        (status = 202, description = "Queued", body = CreatedBacktests),
        (status = 400, description = "`invalid_input` with `field` (e.g. `from`, `to`, `range` when no candles are stored there — the message names the stored range —, `instrument_ids`, `timeframe`, `strategy_id` for an archived strategy, `params`, `version`, `fee`), malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token, viewer, or an account whose email address is not confirmed; `plan_limit` (with `limit`, `usage`, `allowed`): a limit of the plan is reached (`concurrent_backtests`, `backtests_per_day`, `candles_per_backtest`, `history_days`); `plan_read_only`: the strategy is read-only over the plan's `strategies` after the grace period", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: the submission collided with another one; retry", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 422, description = "`invalid_strategy`: a parameter value is outside its declared type or range; `problems` lists each", body = ErrorBody),
    )
)]
pub async fn create_backtest(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<CreateBacktest>,
) -> ApiResult<Response> {
    let created = act::submit(&actor, &state.ctx, &body.into())
        .await
        .map_err(api_field)?;
    let body = CreatedBacktests {
        batch_id: created.batch_id,
        runs: created
            .run_ids
            .into_iter()
            .map(|id| QueuedRun {
                id,
                status: runs::RunState::Queued.as_str().into(),
                links: RunLinks::of(id),
            })
            .collect(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `GET /api/v1/backtests`: the caller's runs, newest first by default.
#[utoipa::path(
    get,
    path = "/api/v1/backtests",
    tag = "backtests",
    security(("bearer" = [])),
    params(ListBacktestsQuery),
    responses(
        (status = 200, description = "The caller's runs", body = RunList),
        (status = 400, description = "`invalid_input` with `field` (unknown status, sort or direction), or a malformed query", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn list_backtests(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<ListBacktestsQuery>,
) -> ApiResult<Json<RunList>> {
    let filter = runs::RunFilter {
        strategy_id: q.strategy_id,
        instrument_id: q.instrument_id,
        status: q.status,
        batch_id: q.batch_id,
        sort: q.sort,
        dir: q.dir,
        limit: q.limit,
        offset: q.offset,
    };
    let list = act::list(&actor, &state.ctx, &filter).await?;
    Ok(Json(RunList {
        runs: list.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/backtests/{id}`: a run's status, progress, error, options and timing.
#[utoipa::path(
    get,
    path = "/api/v1/backtests/{id}",
    tag = "backtests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = RunDetail),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
    )
)]
pub async fn get_backtest(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunDetail>> {
    let d = act::get(&actor, &state.ctx, id).await?;
    let status_message = runs::RunStatus::from(&d.summary).message;
    Ok(Json(RunDetail {
        run: d.summary.into(),
        status_message,
        strategy_version_id: d.strategy_version_id,
        params: d.params.into_iter().collect(),
        config: d.config,
        timing: d.timing,
        started_at: d.started_at,
    }))
}

/// `POST /api/v1/backtests/{id}/cancel`: cancels a queued run at once, or asks the worker running it to stop.
#[utoipa::path(
    post,
    path = "/api/v1/backtests/{id}/cancel",
    tag = "backtests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "`cancelled`, or still `running` with `cancel_requested` (it stops within a second)", body = RunStatus),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: the run has already finished", body = ErrorBody),
    )
)]
pub async fn cancel_backtest(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunStatus>> {
    let s = act::cancel(&actor, &state.ctx, id).await?;
    Ok(Json(RunStatus {
        status: s.status.as_str().into(),
        progress: s.progress,
        error: s.error,
        message: s.message,
    }))
}
