//! The versioned REST API under `/api/v1`, authenticated by API tokens only (`Authorization: Bearer vxt_…`).
//! Errors are RFC 9457 problems (see `crate::error`); input is read with the extractors of `crate::extract`.

use axum::{
    Json, Router,
    extract::State,
    routing::{any, get},
};
use backend::{
    account::{
        events,
        profile::{self, ProfileUpdate},
    },
    auth::{Scope, audit},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::{AnyWebActor, ApiActor, ApiJson, ApiQuery},
    routes::contract,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(get_me).patch(update_me))
        .route("/api/v1/me/audit", get(my_audit))
        .route("/api/v1/me/export", get(my_export))
        .route("/api/session", get(current_session))
        // Unknown API paths answer in the API's format, not with the HTML 404 page.
        .route("/api/v1/{*rest}", any(unknown_path))
}

async fn unknown_path() -> ApiError {
    ApiError::NotFound
}

/// `GET /api/session`: the browser session's user (cookie only), or 401. For scripts in the page and probes.
async fn current_session(AnyWebActor(actor): AnyWebActor) -> ApiResult<Json<Me>> {
    Ok(Json(Me::from(profile::me(&actor)?)))
}

/// The authenticated user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    /// `admin`, `trader` or `viewer`.
    #[schema(value_type = String, example = "trader")]
    pub role: backend::auth::Role,
    pub email_verified: bool,
    /// IANA time zone, e.g. `Europe/Zurich`.
    pub time_zone: String,
    /// `read` or `read_write` (a browser session counts as `read_write`).
    pub token_scope: &'static str,
}

impl From<&backend::auth::AuthUser> for Me {
    fn from(u: &backend::auth::AuthUser) -> Self {
        let scope = match &u.credential {
            backend::auth::Credential::ApiToken { scope, .. } => scope.as_str(),
            backend::auth::Credential::Session(_) => Scope::ReadWrite.as_str(),
        };
        Self {
            user_id: u.user_id,
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            email_verified: u.email_verified,
            time_zone: u.time_zone.clone(),
            token_scope: scope,
        }
    }
}

/// `GET /api/v1/me`: the token's user.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's user", body = Me),
        (status = 401, description = "No or invalid token", body = crate::routes::openapi::ErrorBody),
        (status = 429, description = "Rate limit reached (see Retry-After)", body = crate::routes::openapi::ErrorBody),
    )
)]
pub async fn get_me(ApiActor(actor): ApiActor) -> ApiResult<Json<Me>> {
    Ok(Json(Me::from(profile::me(&actor)?)))
}

/// `GET /api/v1/me/export`: "download my data" (docs/account.md) — the caller's own profile, strategies with
/// every version, backtest runs with results and trades, paper runs with trades and fills, and notification
/// preferences, as one JSON document (`format: vortex-export/1`; bounded, see `truncated`; no secrets). One
/// export per user per 2 minutes (shared with the account page); too big an export is refused (409).
#[utoipa::path(
    get,
    path = "/api/v1/me/export",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's data (vortex-export/1)", body = Object),
        (status = 401, description = "No or invalid token", body = crate::routes::openapi::ErrorBody),
        (status = 409, description = "Too much data for one export: the message says the limit and what to delete", body = crate::routes::openapi::ErrorBody),
        (status = 429, description = "One export per 2 minutes, or the API rate limit (see Retry-After)", body = crate::routes::openapi::ErrorBody),
        (status = 503, description = "Exports cannot be counted right now (Redis); retry", body = crate::routes::openapi::ErrorBody),
    )
)]
pub async fn my_export(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        backend::account::export::export(&state.ctx, &actor).await?,
    ))
}

/// What `PATCH /api/v1/me` accepts: nothing else (role, email, plan…) can be assigned (AC3).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// At most 80 characters, no control characters.
    #[serde(default, deserialize_with = "contract::de_plain_text::<_, 80>")]
    #[schema(value_type = String, max_length = 80, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    display_name: Option<String>,
    /// An IANA time zone name, e.g. `Europe/Zurich`.
    #[serde(default, deserialize_with = "contract::de_time_zone")]
    #[schema(schema_with = contract::time_zone_schema)]
    time_zone: Option<String>,
}

/// `PATCH /api/v1/me` (read-write tokens).
#[utoipa::path(
    patch,
    path = "/api/v1/me",
    tag = "account",
    security(("bearer" = [])),
    request_body = UpdateMe,
    responses(
        (status = 200, description = "The updated user", body = Me),
        (status = 400, description = "Invalid name or time zone, malformed JSON or unknown field", body = crate::routes::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = crate::routes::openapi::ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = crate::routes::openapi::ErrorBody),
        (status = 415, description = "Body is not application/json", body = crate::routes::openapi::ErrorBody),
    )
)]
pub async fn update_me(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<UpdateMe>,
) -> ApiResult<Json<Me>> {
    let input = ProfileUpdate {
        display_name: body.display_name,
        time_zone: body.time_zone,
    };
    let updated = profile::update(&state.ctx, &actor, input).await?;
    Ok(Json(Me::from(&updated)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Limit {
    /// At most this many events, newest first (1–1000, default 100).
    #[serde(default, deserialize_with = "contract::de_range::<_, 1, 1000>")]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// One security event of the audit trail.
#[derive(Serialize, ToSchema)]
pub struct AuditEvent {
    pub audit_event_id: i64,
    pub user_id: Option<Uuid>,
    /// Who acted, when not the user (an admin).
    pub actor_id: Option<Uuid>,
    /// e.g. `signin`, `password_changed`, `api_token_created`.
    pub event: String,
    pub ip: String,
    pub user_agent: String,
    pub detail: Value,
    pub created_at: DateTime<Utc>,
}

/// A list of security events, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditEvents {
    pub events: Vec<AuditEvent>,
}

impl From<Vec<audit::AuditRow>> for AuditEvents {
    fn from(rows: Vec<audit::AuditRow>) -> Self {
        Self {
            events: rows
                .into_iter()
                .map(|r| AuditEvent {
                    audit_event_id: r.audit_event_id,
                    user_id: r.user_id,
                    actor_id: r.actor_id,
                    event: r.event,
                    ip: r.ip,
                    user_agent: r.user_agent,
                    detail: r.detail,
                    created_at: r.created_at,
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/me/audit`: the caller's own security events.
#[utoipa::path(
    get,
    path = "/api/v1/me/audit",
    tag = "account",
    security(("bearer" = [])),
    params(Limit),
    responses(
        (status = 200, description = "The caller's security events, newest first", body = AuditEvents),
        (status = 401, description = "No or invalid token", body = crate::routes::openapi::ErrorBody),
    )
)]
pub async fn my_audit(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<Limit>,
) -> ApiResult<Json<AuditEvents>> {
    let rows = events::mine(&state.ctx, &actor, q.limit.unwrap_or(100)).await?;
    Ok(Json(rows.into()))
}
