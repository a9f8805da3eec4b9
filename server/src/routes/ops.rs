//! Operator endpoints under `/ops`, authenticated with `Authorization: Bearer $OPS_TOKEN` (disabled, i.e. 404,
//! when `OPS_TOKEN` is unset). For scripts and runbooks: trigger housekeeping, inspect and re-drive jobs.

use axum::{
    Extension, Json, Router,
    extract::{FromRequestParts, Path, Query, State},
    http::{StatusCode, header, request::Parts},
    routing::{get, post},
};
use backend::{Actor, Surface, admin::jobs, web::RequestId};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ops/jobs", get(list_jobs))
        .route("/ops/jobs/housekeeping", post(enqueue_housekeeping))
        .route("/ops/jobs/{job_id}", get(get_job))
        .route("/ops/jobs/{job_id}/retry", post(retry_job))
}

/// Proof that the request carries the operator token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.ctx.settings.ops_token.is_none() {
            return Err(ApiError::NotFound);
        }
        if has_ops_token(&state.ctx.settings, &parts.headers) {
            Ok(Operator)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// Whether the request carries `Authorization: Bearer $OPS_TOKEN` (false when no token is configured).
pub fn has_ops_token(settings: &backend::settings::Settings, headers: &header::HeaderMap) -> bool {
    let Some(expected) = &settings.ops_token else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(given.as_bytes(), expected.expose_secret().as_bytes())
}

/// Compares without leaking the position of the first difference through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
}

/// The operator acts as the system (audited without a user).
fn operator() -> Actor {
    Actor::system(Surface::Api)
}

/// `GET /ops/jobs?status=failed&limit=50`: most recent jobs.
async fn list_jobs(
    _: Operator,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50).clamp(1, jobs::MAX_LIST);
    let jobs = jobs::list(&operator(), &state.ctx, q.status.as_deref(), limit).await?;
    Ok(Json(json!({ "jobs": jobs })))
}

/// `POST /ops/jobs/housekeeping`: enqueue a housekeeping run now.
async fn enqueue_housekeeping(
    _: Operator,
    State(state): State<AppState>,
    request_id: Option<Extension<RequestId>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut actor = operator();
    actor.request_id = request_id.map(|Extension(r)| r.0);
    let id = jobs::housekeeping(&actor, &state.ctx).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job_id": id, "status": "queued" })),
    ))
}

/// `GET /ops/jobs/{id}`.
async fn get_job(
    _: Operator,
    State(state): State<AppState>,
    Path(job_id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    let job = jobs::get(&operator(), &state.ctx, job_id).await?;
    Ok(Json(json!(job)))
}

/// `POST /ops/jobs/{id}/retry`: re-drive a failed or cancelled job with a fresh attempt budget (the same action
/// as the admin jobs page).
async fn retry_job(
    _: Operator,
    State(state): State<AppState>,
    Path(job_id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    jobs::retry(&operator(), &state.ctx, job_id).await?;
    Ok(Json(json!({ "job_id": job_id, "status": "queued" })))
}
