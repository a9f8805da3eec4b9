//! A trader's strategies: list, create, get, save (a new version when the source changed), archive, delete,
//! restore, duplicate, and read one saved version.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use backend::backtest::{actions::strategies as act, strategies};
use serde::Serialize;
use uuid::Uuid;

use super::dto::{
    CreateStrategy, DeleteStrategyQuery, ListStrategiesQuery, Saved, StrategyDetail, StrategyList,
    StrategyVersion, UpdateStrategy,
};
use crate::{
    error::{ApiError, ApiResult},
    extract::{ApiActor, ApiJson, ApiPath, ApiQuery},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// `GET /api/v1/strategies[?archived=true]`: the caller's strategies, most recently changed first.
#[utoipa::path(
    get,
    path = "/api/v1/strategies",
    tag = "strategies",
    security(("bearer" = [])),
    params(ListStrategiesQuery),
    responses(
        (status = 200, description = "The caller's strategies", body = StrategyList),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn list_strategies(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<ListStrategiesQuery>,
) -> ApiResult<Json<StrategyList>> {
    let list = act::list(&actor, &state.ctx, q.archived).await?;
    Ok(Json(StrategyList {
        strategies: list.into_iter().map(Into::into).collect(),
    }))
}

fn created(location: &str, body: impl Serialize) -> Response {
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `POST /api/v1/strategies`: creates a strategy with version 1.
#[utoipa::path(
    post,
    path = "/api/v1/strategies",
    tag = "strategies",
    security(("bearer" = [])),
    request_body = CreateStrategy,
    responses(
        (status = 201, description = "Created (Location: the strategy)", body = StrategyDetail),
        (status = 400, description = "`invalid_input` with `field` (name, description, unknown template), malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer; `plan_limit`: the plan's `strategies` limit is reached", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the account has as many versions as it may keep (`STRATEGY_VERSION_QUOTA`)", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 422, description = "`invalid_strategy`: the source does not compile; `problems` lists each", body = ErrorBody),
    )
)]
pub async fn create_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<CreateStrategy>,
) -> ApiResult<Response> {
    let new = strategies::NewStrategy {
        name: body.name,
        description: body.description,
        template: body.template,
        source: body.source,
    };
    let id = act::create(&actor, &state.ctx, new).await?;
    let detail = StrategyDetail::from(act::get(&actor, &state.ctx, id).await?);
    Ok(created(&detail.summary.links.self_.clone(), detail))
}

/// `GET /api/v1/strategies/{id}`: one strategy with its newest version. A deleted strategy is 404 like any
/// deleted resource; it is listed by `GET /api/v1/strategies?archived=true` and comes back with `POST …/restore`.
#[utoipa::path(
    get,
    path = "/api/v1/strategies/{id}",
    tag = "strategies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Strategy id")),
    responses(
        (status = 200, description = "The strategy", body = StrategyDetail),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such strategy of yours, or a deleted one", body = ErrorBody),
    )
)]
pub async fn get_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<StrategyDetail>> {
    let detail = act::get(&actor, &state.ctx, id).await?;
    if detail.summary.archived {
        return Err(ApiError::NotFound);
    }
    Ok(Json(detail.into()))
}

/// `PUT /api/v1/strategies/{id}`: saves name, description and/or source.
#[utoipa::path(
    put,
    path = "/api/v1/strategies/{id}",
    tag = "strategies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Strategy id")),
    request_body = UpdateStrategy,
    responses(
        (status = 200, description = "Saved", body = Saved),
        (status = 400, description = "`invalid_input` with `field`, malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer; `plan_read_only` (with `limit`, `usage`, `allowed`): the strategy is read-only over the plan's `strategies` after the grace period (the edit's source is kept as the draft)", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: `base_version` is stale, or the strategy is archived; `limit_reached`: the account has as many versions as it may keep", body = ErrorBody),
        (status = 422, description = "`invalid_strategy`: the source does not compile (kept as the draft)", body = ErrorBody),
    )
)]
pub async fn update_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateStrategy>,
) -> ApiResult<Json<Saved>> {
    let edit = strategies::SaveStrategy {
        name: body.name,
        description: body.description,
        source: body.source,
        base_version: body.base_version,
        draft_rev: body.draft_rev,
    };
    let saved = act::save(&actor, &state.ctx, id, edit).await?;
    Ok(Json(Saved {
        version: saved.version,
        new_version: saved.new_version,
    }))
}

/// `DELETE /api/v1/strategies/{id}`: archives the strategy (hidden from the list, cannot be run; its runs stay;
/// it still counts against the plan's `strategies`). With `?permanent=true` deletes it for good instead, with
/// its versions, its backtests and its finished paper runs: refused (409) while a paper run of it is active,
/// paused or stopping or a backtest of it is queued or running. Both are allowed while the strategy is
/// read-only over the plan; deleting is how to get back within the `strategies` limit.
#[utoipa::path(
    delete,
    path = "/api/v1/strategies/{id}",
    tag = "strategies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Strategy id"), DeleteStrategyQuery),
    responses(
        (status = 204, description = "Archived, or deleted for good with `permanent=true`"),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
        (status = 409, description = "`permanent=true`: a paper run of it is live or a backtest of it queued or running", body = ErrorBody),
    )
)]
pub async fn archive_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<DeleteStrategyQuery>,
) -> ApiResult<StatusCode> {
    if q.permanent {
        act::delete(&actor, &state.ctx, id).await?;
    } else {
        act::set_archived(&actor, &state.ctx, id, true).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/strategies/{id}/restore`: un-archives the strategy.
#[utoipa::path(
    post,
    path = "/api/v1/strategies/{id}/restore",
    tag = "strategies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Strategy id")),
    responses(
        (status = 204, description = "Restored"),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
    )
)]
pub async fn restore_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    act::set_archived(&actor, &state.ctx, id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/strategies/{id}/duplicate`: copies the newest version into a new strategy "<name> (copy)".
#[utoipa::path(
    post,
    path = "/api/v1/strategies/{id}/duplicate",
    tag = "strategies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Strategy id")),
    responses(
        (status = 201, description = "The copy (Location: the copy)", body = StrategyDetail),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer; `plan_limit`: the plan's `strategies` limit is reached", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the account has as many versions as it may keep (`STRATEGY_VERSION_QUOTA`)", body = ErrorBody),
    )
)]
pub async fn duplicate_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let copy = act::duplicate(&actor, &state.ctx, id).await?;
    let detail = StrategyDetail::from(act::get(&actor, &state.ctx, copy).await?);
    Ok(created(&detail.summary.links.self_.clone(), detail))
}

/// `GET /api/v1/strategies/{id}/versions/{version}`: one saved version.
#[utoipa::path(
    get,
    path = "/api/v1/strategies/{id}/versions/{version}",
    tag = "strategies",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Strategy id"),
        ("version" = i32, Path, description = "Version number (1, 2, …)"),
    ),
    responses(
        (status = 200, description = "The version", body = StrategyVersion),
        (status = 400, description = "Malformed id or version", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such strategy of yours (or a deleted one), or no such version", body = ErrorBody),
    )
)]
pub async fn get_strategy_version(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath((id, version)): ApiPath<(Uuid, i32)>,
) -> ApiResult<Json<StrategyVersion>> {
    if act::get(&actor, &state.ctx, id).await?.summary.archived {
        return Err(ApiError::NotFound);
    }
    Ok(Json(
        act::version(&actor, &state.ctx, id, Some(version))
            .await?
            .into(),
    ))
}
