//! The versioned REST API under `/api/v1`, authenticated by API tokens only (`Authorization: Bearer vxt_…`).
//! Errors are JSON `{ "error": code, "message": … }`. Also the JSON extractors every API handler uses, so
//! malformed input is always answered in that format.

use axum::{
    Json, Router,
    extract::{
        FromRequest, FromRequestParts, Path, Query, Request, State,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, request::Parts},
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
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::{AnyWebActor, ApiActor},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(get_me).patch(update_me))
        .route("/api/v1/me/audit", get(my_audit))
        .route("/api/v1/admin/audit", get(all_audit))
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

/// JSON body extractor whose rejections are the API's JSON errors (415 wrong type, 400 malformed or unknown
/// fields), naming what is wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType(
                "send the body as application/json".into(),
            )),
            // The body limit (BODY_LIMIT_BYTES) was hit while reading a body of undeclared length.
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(e.body_text()))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// Path parameters whose rejections (e.g. an id that is not a UUID) are the API's JSON 400.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(e @ PathRejection::FailedToDeserializePathParams(_)) => {
                Err(ApiError::BadRequest(e.body_text()))
            }
            Err(e) => Err(ApiError::Internal(anyhow::anyhow!("path parameters: {e}"))),
        }
    }
}

/// A query string whose rejections (wrong types, bad UUIDs) are the API's JSON 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| ApiError::BadRequest(e.body_text()))
    }
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

/// What `PATCH /api/v1/me` accepts: nothing else (role, email, plan…) can be assigned (AC3).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    display_name: Option<String>,
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

/// `GET /api/v1/admin/audit`: everyone's events (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    tag = "admin",
    security(("bearer" = [])),
    params(Limit),
    responses(
        (status = 200, description = "Everyone's security events, newest first", body = AuditEvents),
        (status = 401, description = "No or invalid token", body = crate::routes::openapi::ErrorBody),
        (status = 403, description = "Not an admin", body = crate::routes::openapi::ErrorBody),
    )
)]
pub async fn all_audit(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<Limit>,
) -> ApiResult<Json<AuditEvents>> {
    let rows = events::all(&state.ctx, &actor, q.limit.unwrap_or(100)).await?;
    Ok(Json(rows.into()))
}
