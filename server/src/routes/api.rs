//! The versioned REST API under `/api/v1`, authenticated by API tokens only (`Authorization: Bearer vxt_…`).
//! Errors are JSON `{ "error": code, "message": … }`.

use axum::{
    Json, Router,
    extract::{FromRequest, Query, Request, State, rejection::JsonRejection},
    routing::get,
};
use backend::auth::{Scope, audit, users};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{
    error::{ApiError, ApiResult},
    extract::{ApiAdmin, ApiUser, ApiWriter, MaybeUser},
    startup::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(get_me).patch(update_me))
        .route("/api/v1/me/audit", get(my_audit))
        .route("/api/v1/admin/audit", get(all_audit))
        .route("/api/session", get(current_session))
}

/// `GET /api/session`: the browser session's user (cookie only), or 401. For scripts in the page and probes.
async fn current_session(MaybeUser(user): MaybeUser) -> ApiResult<Json<Value>> {
    match user {
        Some(u) => Ok(Json(me_json(&u))),
        None => Err(ApiError::Unauthorized),
    }
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
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

fn me_json(u: &backend::auth::AuthUser) -> Value {
    let scope = match &u.credential {
        backend::auth::Credential::ApiToken { scope, .. } => scope.as_str(),
        backend::auth::Credential::Session(_) => Scope::ReadWrite.as_str(),
    };
    json!({
        "user_id": u.user_id,
        "email": u.email,
        "display_name": u.display_name,
        "role": u.role,
        "email_verified": u.email_verified,
        "time_zone": u.time_zone,
        "token_scope": scope,
    })
}

/// `GET /api/v1/me`: the token's user.
async fn get_me(ApiUser(user): ApiUser) -> Json<Value> {
    Json(me_json(&user))
}

/// What `PATCH /api/v1/me` accepts: nothing else (role, email, plan…) can be assigned (AC3).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateMe {
    display_name: Option<String>,
    time_zone: Option<String>,
}

/// `PATCH /api/v1/me` (read-write tokens).
async fn update_me(
    State(state): State<AppState>,
    ApiWriter(user): ApiWriter,
    ApiJson(body): ApiJson<UpdateMe>,
) -> ApiResult<Json<Value>> {
    let name = match body.display_name {
        Some(n) => users::parse_display_name(&n)
            .map_err(|m| ApiError::BadRequest(format!("display_name: {m}")))?,
        None => user.display_name.clone(),
    };
    let tz = match body.time_zone {
        Some(t) => users::parse_time_zone(&t)
            .map_err(|m| ApiError::BadRequest(format!("time_zone: {m}")))?,
        None => user.time_zone.clone(),
    };
    users::update_profile(&state.ctx.db, user.user_id, &name, &tz).await?;
    let mut updated = user;
    updated.display_name = name;
    updated.time_zone = tz;
    Ok(Json(me_json(&updated)))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<i64>,
}

/// `GET /api/v1/me/audit`: the caller's own security events.
async fn my_audit(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Value>> {
    let rows = audit::list(&state.ctx.db, Some(user.user_id), q.limit.unwrap_or(100)).await?;
    Ok(Json(json!({ "events": rows })))
}

/// `GET /api/v1/admin/audit`: everyone's events (admins only).
async fn all_audit(
    State(state): State<AppState>,
    ApiAdmin(_): ApiAdmin,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Value>> {
    let rows = audit::list(&state.ctx.db, None, q.limit.unwrap_or(100)).await?;
    Ok(Json(json!({ "events": rows })))
}
