//! Sign-up approval for admin tokens (docs/admin.md#pending-sign-ups): the pending requests, approving and
//! rejecting one, marking the administrators notified of new requests; and an administrator's reset of a
//! user's two-factor sign-in. Each handler parses, calls one backend action (`backend::admin::signups`,
//! `backend::account::two_factor::admin_reset`: admins only, read-write tokens for changes, audited there) and
//! maps the result.

use axum::{Json, extract::State, http::StatusCode};
use backend::admin::{signups, users};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::dto::UserDetailOut;
use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiJson, ApiPath},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// A sign-up waiting for approval.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingSignupOut {
    /// The pending account.
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    /// The address's domain.
    pub domain: String,
    /// Why the applicant wants an account.
    pub reason: String,
    /// The applicant confirmed their address.
    pub email_verified: bool,
    pub requested_at: DateTime<Utc>,
}

/// The pending sign-ups, oldest first (at most 500).
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingSignupsOut {
    pub signups: Vec<PendingSignupOut>,
}

/// `POST /api/v1/admin/signups/{id}/reject`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "This instance is for the research team only"}))]
pub struct RejectIn {
    /// Mailed to the applicant; at least one visible character, one line.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub reason: String,
}

/// `PUT /api/v1/admin/users/{id}/signup-approver`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"approver": true}))]
pub struct ApproverIn {
    /// Notify this administrator of new sign-up requests.
    pub approver: bool,
}

/// `GET /api/v1/admin/signups`: the sign-ups waiting for approval, oldest first (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/signups",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The pending sign-ups", body = PendingSignupsOut),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list_signups(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<PendingSignupsOut>> {
    let list = signups::list(&actor, &state.ctx).await?;
    Ok(Json(PendingSignupsOut {
        signups: list
            .into_iter()
            .map(|p| PendingSignupOut {
                user_id: p.user_id,
                email: p.email,
                display_name: p.display_name,
                domain: p.domain,
                reason: p.reason,
                email_verified: p.email_verified,
                requested_at: p.requested_at,
            })
            .collect(),
    }))
}

/// `POST /api/v1/admin/signups/{id}/approve`: approves a pending sign-up; the applicant is mailed and can sign
/// in. Audited as `signup_approved`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/signups/{id}/approve",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The pending account's user id")),
    responses(
        (status = 204, description = "Approved"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such pending sign-up (already decided, or never made)", body = ErrorBody),
        (status = 409, description = "`conflict`: the applicant has not confirmed the address yet", body = ErrorBody),
    )
)]
pub async fn approve_signup(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    signups::approve(&actor, &state.ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/admin/signups/{id}/reject`: rejects a pending sign-up with a reason mailed to the applicant;
/// the account is deleted and the address may apply again after 30 days. Audited as `signup_rejected`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/signups/{id}/reject",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The pending account's user id")),
    request_body = RejectIn,
    responses(
        (status = 204, description = "Rejected; the account is deleted"),
        (status = 400, description = "`invalid_input` (`reason`), a malformed id or body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such pending sign-up (already decided, or never made)", body = ErrorBody),
    )
)]
pub async fn reject_signup(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RejectIn>,
) -> ApiResult<StatusCode> {
    signups::reject(&actor, &state.ctx, id, &body.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/admin/users/{id}/signup-approver`: marks or unmarks an administrator as notified of new
/// sign-up requests (while none is marked, every active administrator is). Audited as
/// `signup_approver_changed`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/signup-approver",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = ApproverIn,
    responses(
        (status = 200, description = "The user after the change", body = UserDetailOut),
        (status = 400, description = "A malformed id or body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`conflict`: the user is not an administrator", body = ErrorBody),
    )
)]
pub async fn set_signup_approver(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ApproverIn>,
) -> ApiResult<Json<UserDetailOut>> {
    signups::set_approver(&actor, &state.ctx, id, body.approver).await?;
    Ok(Json(UserDetailOut::from(
        users::get(&actor, &state.ctx, id).await?,
    )))
}

/// `POST /api/v1/admin/users/{id}/two-factor/reset`: turns off the user's two-factor sign-in (lost phone and
/// recovery codes); their pending sign-ins end and they are told by email. Audited as
/// `two_factor_reset_by_admin`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/two-factor/reset",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 204, description = "Two-factor sign-in is off"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token; your own account; an administrator's account with an API token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`conflict`: the user has no two-factor sign-in", body = ErrorBody),
    )
)]
pub async fn reset_user_two_factor(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    backend::account::two_factor::admin_reset(&state.ctx, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
