//! `GET /api/v1/admin/audit` (a filtered page of the audit log) and `GET /api/v1/admin/audit/export` (all of
//! it that a filter matches, as CSV): both call `backend::admin::audit`, as the console's audit page does.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use backend::admin::audit::{self, FilterInput};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiQuery},
    routes::{contract, openapi::ErrorBody},
    state::AppState,
};

/// Which events: every given filter must match.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditFilterQuery {
    /// Events about this user.
    user_id: Option<Uuid>,
    /// Events where this user acted (an admin acting on someone, or the user themselves).
    actor_id: Option<Uuid>,
    /// One event name, e.g. `signin_failed`, `user_suspended`, `plan_assigned`.
    #[serde(default, deserialize_with = "contract::de_plain_text::<_, 64>")]
    #[param(pattern = "^[a-z0-9_.]{0,64}$")]
    event: Option<String>,
    /// At or after: `YYYY-MM-DD` (the start of that UTC day) or RFC 3339.
    #[serde(default, deserialize_with = "contract::de_opt_date")]
    #[param(schema_with = contract::date_schema)]
    since: Option<String>,
    /// Before: `YYYY-MM-DD` (that whole UTC day is included) or RFC 3339 (excluded). Must be later than `since`.
    #[serde(default, deserialize_with = "contract::de_opt_date")]
    #[param(schema_with = contract::date_schema)]
    until: Option<String>,
}

/// A page of the audit log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditPageQuery {
    /// Events about this user.
    user_id: Option<Uuid>,
    /// Events where this user acted (an admin acting on someone, or the user themselves).
    actor_id: Option<Uuid>,
    /// One event name, e.g. `signin_failed`, `user_suspended`, `plan_assigned`.
    #[serde(default, deserialize_with = "contract::de_plain_text::<_, 64>")]
    #[param(pattern = "^[a-z0-9_.]{0,64}$")]
    event: Option<String>,
    /// At or after: `YYYY-MM-DD` (the start of that UTC day) or RFC 3339.
    #[serde(default, deserialize_with = "contract::de_opt_date")]
    #[param(schema_with = contract::date_schema)]
    since: Option<String>,
    /// Before: `YYYY-MM-DD` (that whole UTC day is included) or RFC 3339 (excluded). Must be later than `since`.
    #[serde(default, deserialize_with = "contract::de_opt_date")]
    #[param(schema_with = contract::date_schema)]
    until: Option<String>,
    /// Events older than this event id: `next_before` of the previous page.
    #[serde(
        default,
        deserialize_with = "contract::de_range::<_, 1, 9_223_372_036_854_775_807>"
    )]
    #[param(minimum = 1)]
    before: Option<i64>,
    /// At most this many events, newest first (1–1000, default 100).
    #[serde(default, deserialize_with = "contract::de_range::<_, 1, 1000>")]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// One event of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAuditEvent {
    pub audit_event_id: i64,
    pub user_id: Option<Uuid>,
    /// The user's address now (absent when the account was deleted).
    pub user_email: Option<String>,
    /// Who acted, when not the user (an admin).
    pub actor_id: Option<Uuid>,
    pub actor_email: Option<String>,
    pub event: String,
    /// The address the event named when it has no account (a failed sign-in for an unknown address).
    pub subject_email: Option<String>,
    pub ip: String,
    pub user_agent: String,
    pub detail: Value,
    pub created_at: DateTime<Utc>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAuditPage {
    pub events: Vec<AdminAuditEvent>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

impl From<audit::Event> for AdminAuditEvent {
    fn from(e: audit::Event) -> Self {
        Self {
            audit_event_id: e.audit_event_id,
            user_id: e.user_id,
            user_email: e.user_email,
            actor_id: e.actor_id,
            actor_email: e.actor_email,
            event: e.event,
            subject_email: e.subject_email,
            ip: e.ip,
            user_agent: e.user_agent,
            detail: e.detail,
            created_at: e.created_at,
        }
    }
}

/// The filter of either query (the same five fields).
async fn filter(
    state: &AppState,
    user_id: Option<Uuid>,
    actor_id: Option<Uuid>,
    event: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
) -> ApiResult<audit::Filter> {
    let user = user_id.map(|u| u.to_string()).unwrap_or_default();
    let actor = actor_id.map(|u| u.to_string()).unwrap_or_default();
    Ok(audit::parse_filter(
        &state.ctx,
        &FilterInput {
            user: &user,
            actor: &actor,
            event: event.unwrap_or_default(),
            since: since.unwrap_or_default(),
            until: until.unwrap_or_default(),
        },
    )
    .await?)
}

/// `GET /api/v1/admin/audit`: the audit log, filtered, newest first, one page (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    tag = "admin",
    security(("bearer" = [])),
    params(AuditPageQuery),
    responses(
        (status = 200, description = "Events matching the filters, newest first", body = AdminAuditPage),
        (status = 400, description = "`invalid_input`: `until` not later than `since`, or a malformed parameter", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn admin_audit(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<AuditPageQuery>,
) -> ApiResult<Json<AdminAuditPage>> {
    actor.admin()?;
    let f = filter(
        &state,
        q.user_id,
        q.actor_id,
        q.event.as_deref(),
        q.since.as_deref(),
        q.until.as_deref(),
    )
    .await?;
    let page = audit::page(&actor, &state.ctx, &f, q.before, q.limit.unwrap_or(100)).await?;
    Ok(Json(AdminAuditPage {
        events: page.events.into_iter().map(Into::into).collect(),
        next_before: page.next_before,
    }))
}

/// `GET /api/v1/admin/audit/export`: every event a filter matches as CSV, newest first (at most 100,000;
/// admins only; the download is itself audited as `audit_exported`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit/export",
    tag = "admin",
    security(("bearer" = [])),
    params(AuditFilterQuery),
    responses(
        (status = 200, description = "`id,time,event,user_id,user_email,actor_id,actor_email,subject_email,ip,user_agent,detail`, one line per event (`detail` as JSON)", content_type = "text/csv", body = String),
        (status = 400, description = "`invalid_input`: `until` not later than `since`, or a malformed parameter", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "`conflict`: the filter matches more than 100,000 events", body = ErrorBody),
    )
)]
pub async fn admin_audit_export(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<AuditFilterQuery>,
) -> ApiResult<Response> {
    actor.admin()?;
    let f = filter(
        &state,
        q.user_id,
        q.actor_id,
        q.event.as_deref(),
        q.since.as_deref(),
        q.until.as_deref(),
    )
    .await?;
    let body = axum::body::Body::from_stream(audit::export(&actor, &state.ctx, &f).await?);
    Ok(csv_download(body))
}

/// A CSV attachment named after today's date.
pub fn csv_download(body: axum::body::Body) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        body,
    )
        .into_response();
    let name = format!(
        "attachment; filename=\"vortex-audit-{}.csv\"",
        Utc::now().format("%Y-%m-%d")
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
