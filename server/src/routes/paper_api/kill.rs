//! Kill switches in the REST API: the trader's own (their account, one of their runs) and the
//! administrators' (the platform, any user). The actions in `backend::paper::actions` decide who may.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use backend::paper::{actions as act, kill};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiJson, ApiPath},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// A kill switch.
#[derive(Debug, Serialize, ToSchema)]
pub struct KillSwitchDto {
    pub id: Uuid,
    /// `platform`, `user` or `run`.
    pub scope: String,
    /// The user (scopes `user` and `run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// The run (scope `run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paper_run_id: Option<Uuid>,
    /// `reduce_only` (exits only), `halt` (no new orders; protective stops keep working) or `flatten` (sell
    /// open positions at the next open, then no new orders).
    pub mode: String,
    pub reason: String,
    /// Thrown by an administrator or the operator: only administrators release it.
    pub thrown_by_admin: bool,
    pub thrown_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
    pub release_reason: Option<String>,
}

impl From<kill::KillSwitch> for KillSwitchDto {
    fn from(k: kill::KillSwitch) -> Self {
        Self {
            id: k.switch_id,
            scope: k.scope,
            user_id: k.user_id,
            paper_run_id: k.paper_run_id,
            mode: k.mode,
            reason: k.reason,
            thrown_by_admin: k.thrown_by_admin,
            thrown_at: k.thrown_at,
            released_at: k.released_at,
            release_reason: k.release_reason,
        }
    }
}

/// Active kill switches.
#[derive(Debug, Serialize, ToSchema)]
pub struct KillSwitchList {
    pub switches: Vec<KillSwitchDto>,
}

/// A switch a trader throws: over all their runs (`user`) or one of them (`run`, with `paper_run_id`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrowSwitch {
    /// `user` (all your runs) or `run` (one run, `paper_run_id`); `platform` is for administrators.
    #[schema(pattern = "^(platform|user|run)$")]
    pub scope: String,
    pub paper_run_id: Option<Uuid>,
    /// `reduce_only`, `halt` or `flatten`.
    #[schema(pattern = "^(reduce_only|halt|flatten)$")]
    pub mode: String,
    /// Why (1–500 characters, not only spaces, no control characters but tab and line breaks), shown to
    /// whoever it affects and kept in the audit log.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub reason: String,
}

/// A switch an administrator throws: over the platform or a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminThrowSwitch {
    /// `platform`, `user` (with `user_id`) or `run` (with `paper_run_id`).
    #[schema(pattern = "^(platform|user|run)$")]
    pub scope: String,
    pub user_id: Option<Uuid>,
    pub paper_run_id: Option<Uuid>,
    #[schema(pattern = "^(reduce_only|halt|flatten)$")]
    pub mode: String,
    /// As for a trader's switch.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub reason: String,
}

/// Why a switch is released (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSwitch {
    #[schema(
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub reason: Option<String>,
}

fn scope(
    kind: &str,
    user: Option<Uuid>,
    run: Option<Uuid>,
    me: Option<Uuid>,
) -> Result<kill::Scope, backend::Error> {
    match (kind.trim(), user.or(me), run) {
        ("platform", _, _) => Ok(kill::Scope::Platform),
        ("user", Some(u), _) => Ok(kill::Scope::User(u)),
        ("run", _, Some(r)) => Ok(kill::Scope::Run(r)),
        ("user", None, _) => Err(backend::Error::invalid(
            "user_id",
            "give the user the switch is for",
        )),
        ("run", _, None) => Err(backend::Error::invalid(
            "paper_run_id",
            "give the run the switch is for",
        )),
        (other, _, _) => Err(backend::Error::invalid(
            "scope",
            format!("`{other}` is not a scope; use platform, user or run"),
        )),
    }
}

/// `GET /api/v1/kill-switches`: the active switches that affect you (the platform's, yours, your runs').
#[utoipa::path(
    get,
    path = "/api/v1/kill-switches",
    tag = "paper",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active switches", body = KillSwitchList),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn list_kill_switches(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<KillSwitchList>> {
    let list = act::switches(&actor, &state.ctx, false).await?;
    Ok(Json(KillSwitchList {
        switches: list.into_iter().map(Into::into).collect(),
    }))
}

/// `POST /api/v1/kill-switches`: throws a switch over all your runs or one of them (replacing an active one
/// of the same scope). It applies from the next candle of every affected run.
#[utoipa::path(
    post,
    path = "/api/v1/kill-switches",
    tag = "paper",
    security(("bearer" = [])),
    request_body = ThrowSwitch,
    responses(
        (status = 201, description = "Thrown", body = KillSwitchDto),
        (status = 400, description = "`invalid_input` with `field` (`scope`, `mode`, `reason`, `paper_run_id`), malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token, viewer, or `platform` for a non-administrator", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: an administrator's switch holds this account or run; only an administrator replaces or releases it", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
    )
)]
pub async fn throw_kill_switch(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<ThrowSwitch>,
) -> ApiResult<Response> {
    let s = scope(&body.scope, None, body.paper_run_id, actor.user_id())?;
    let k = act::throw_switch(&actor, &state.ctx, s, &body.mode, &body.reason).await?;
    Ok((StatusCode::CREATED, Json(KillSwitchDto::from(k))).into_response())
}

/// `POST /api/v1/kill-switches/{id}/release`: releases an active switch (yours; one an administrator threw
/// needs an administrator).
#[utoipa::path(
    post,
    path = "/api/v1/kill-switches/{id}/release",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Switch id")),
    request_body(content = Option<ReleaseSwitch>, description = "Optional"),
    responses(
        (status = 200, description = "Released", body = KillSwitchDto),
        (status = 400, description = "`invalid_input` (`reason`), a malformed id or body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token, viewer, or a switch only administrators release", body = ErrorBody),
        (status = 404, description = "No such active switch you can see", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
    )
)]
pub async fn release_kill_switch(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    body: Option<ApiJson<ReleaseSwitch>>,
) -> ApiResult<Json<KillSwitchDto>> {
    let reason = body.and_then(|ApiJson(b)| b.reason);
    let k = act::release_switch(&actor, &state.ctx, id, reason.as_deref()).await?;
    Ok(Json(k.into()))
}

/// `GET /api/v1/admin/kill-switches`: every active switch.
#[utoipa::path(
    get,
    path = "/api/v1/admin/kill-switches",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active switches", body = KillSwitchList),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
    )
)]
pub async fn admin_list_kill_switches(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<KillSwitchList>> {
    let list = act::switches(&actor, &state.ctx, true).await?;
    Ok(Json(KillSwitchList {
        switches: list.into_iter().map(Into::into).collect(),
    }))
}

/// `POST /api/v1/admin/kill-switches`: throws a switch over the platform, a user or a run.
#[utoipa::path(
    post,
    path = "/api/v1/admin/kill-switches",
    tag = "admin",
    security(("bearer" = [])),
    request_body = AdminThrowSwitch,
    responses(
        (status = 201, description = "Thrown", body = KillSwitchDto),
        (status = 400, description = "`invalid_input` with `field` (`scope`, `mode`, `reason`, `user_id`, `paper_run_id`), malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an administrator, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such user or run", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
    )
)]
pub async fn admin_throw_kill_switch(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<AdminThrowSwitch>,
) -> ApiResult<Response> {
    let s = scope(&body.scope, body.user_id, body.paper_run_id, None)?;
    let k = act::throw_switch_as_admin(&actor, &state.ctx, s, &body.mode, &body.reason).await?;
    Ok((StatusCode::CREATED, Json(KillSwitchDto::from(k))).into_response())
}
