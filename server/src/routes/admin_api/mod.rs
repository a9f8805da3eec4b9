//! The admin REST API for users (docs/admin.md): list and search, one user's detail, suspend and unsuspend,
//! change role, force sign-out, reset two-factor sign-in; pending sign-ups (approve, reject, approvers); the audit log and its CSV export; the market data kept
//! updated (track a series, update now, backfill); and the jobs view the console shares with
//! `/ops` (retry a failed job, cancel a waiting one). Each handler parses, calls
//! one action of `backend::admin` (which refuses non-admins with 403 and writes the audit entry) and maps the
//! result. Plans, a user's plan, kill switches and notification tools have their own admin routes (`plans_api`,
//! `paper_api`, `notifications_api`).

pub mod audit;
pub mod dto;
pub mod market;
pub mod settings;
pub mod signups;

use axum::{
    Json, Router,
    extract::State,
    routing::{get, post, put},
};
use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use backend::admin::{accounts, jobs, users};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use self::dto::{
    BulkIn, BulkOut, BulkResultOut, JobOut, JobsOut, RoleChange, SuspendIn, SuspendedOut,
    UserDetailOut, UserListQuery, UserPageOut,
};
use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiJson, ApiPath, ApiQuery},
    routes::openapi::ErrorBody,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/users", get(list_users))
        .route(
            "/api/v1/admin/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route(
            "/api/v1/admin/users/{id}/verification",
            post(resend_user_verification),
        )
        .route("/api/v1/admin/users/{id}/export", get(export_user))
        .route("/api/v1/admin/users/bulk", post(bulk_users))
        .route("/api/v1/admin/users/{id}/suspend", post(suspend_user))
        .route("/api/v1/admin/users/{id}/unsuspend", post(unsuspend_user))
        .route("/api/v1/admin/users/{id}/sign-out", post(sign_out_user))
        .route(
            "/api/v1/admin/users/{id}/two-factor/reset",
            post(signups::reset_user_two_factor),
        )
        .route(
            "/api/v1/admin/users/{id}/signup-approver",
            put(signups::set_signup_approver),
        )
        .route("/api/v1/admin/signups", get(signups::list_signups))
        .route(
            "/api/v1/admin/signups/{id}/approve",
            post(signups::approve_signup),
        )
        .route(
            "/api/v1/admin/signups/{id}/reject",
            post(signups::reject_signup),
        )
        .route("/api/v1/admin/jobs", get(list_admin_jobs))
        .route("/api/v1/admin/jobs/{id}/retry", post(retry_admin_job))
        .route("/api/v1/admin/jobs/{id}/cancel", post(cancel_admin_job))
        .route("/api/v1/admin/audit", get(audit::admin_audit))
        .route("/api/v1/admin/audit/export", get(audit::admin_audit_export))
        .route(
            "/api/v1/admin/settings",
            get(settings::get_settings).patch(settings::update_settings),
        )
        .route("/api/v1/admin/invites", post(settings::create_invite))
        .route("/api/v1/admin/market", get(market::admin_market))
        .route("/api/v1/admin/market/series", post(market::track_series))
        .route("/api/v1/admin/market/update", post(market::update_market))
        .route(
            "/api/v1/admin/market/backfill",
            post(market::backfill_market),
        )
}

/// `GET /api/v1/admin/users`: users matching the filters, newest first, one page (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "admin",
    security(("bearer" = [])),
    params(UserListQuery),
    responses(
        (status = 200, description = "One page of users and the number matching", body = UserPageOut),
        (status = 400, description = "`invalid_input` naming the parameter", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<UserListQuery>,
) -> ApiResult<Json<UserPageOut>> {
    let page = users::list(&actor, &state.ctx, &q.into_query()?).await?;
    Ok(Json(UserPageOut::from(page)))
}

/// `GET /api/v1/admin/users/{id}`: a user's profile, suspension, plan and usage, session and token counts and
/// recent audit entries (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserDetailOut),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<UserDetailOut>> {
    let d = users::get(&actor, &state.ctx, id).await?;
    Ok(Json(UserDetailOut::from(d)))
}

/// `PATCH /api/v1/admin/users/{id}`: changes the user's role (their sessions end); audited as `role_changed`.
/// Not your own role, not the last active admin's.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = RoleChange,
    responses(
        (status = 200, description = "The user after the change", body = UserDetailOut),
        (status = 400, description = "A malformed id or body, or an unknown role", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`conflict`: your own account, or the last active admin", body = ErrorBody),
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RoleChange>,
) -> ApiResult<Json<UserDetailOut>> {
    users::set_role(&actor, &state.ctx, id, body.role()?).await?;
    Ok(Json(UserDetailOut::from(
        users::get(&actor, &state.ctx, id).await?,
    )))
}

/// `POST /api/v1/admin/users/{id}/suspend`: suspends the user with a reason (shown to them at sign-in) and an
/// optional end; their sessions end, their API tokens are revoked and their active paper runs are paused;
/// audited as `user_suspended`. Suspending a suspended user replaces the reason and end.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/suspend",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = SuspendIn,
    responses(
        (status = 200, description = "Suspended: what ended", body = SuspendedOut),
        (status = 400, description = "`invalid_input` (`reason`, `until` not in the future or too far), a malformed id or body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`conflict`: your own account, or the last active admin", body = ErrorBody),
    )
)]
pub async fn suspend_user(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SuspendIn>,
) -> ApiResult<Json<SuspendedOut>> {
    let s = users::suspend(&actor, &state.ctx, id, &body.reason, body.until).await?;
    Ok(Json(SuspendedOut::from(s)))
}

/// `POST /api/v1/admin/users/{id}/unsuspend`: lifts the suspension (paused paper runs stay paused until their
/// owner resumes them); audited as `user_unsuspended`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/unsuspend",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user after the change", body = UserDetailOut),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`conflict`: the user is not suspended", body = ErrorBody),
    )
)]
pub async fn unsuspend_user(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<UserDetailOut>> {
    users::unsuspend(&actor, &state.ctx, id).await?;
    Ok(Json(UserDetailOut::from(
        users::get(&actor, &state.ctx, id).await?,
    )))
}

/// `POST /api/v1/admin/users/{id}/sign-out`: ends every browser session of the user (API tokens stay);
/// audited as `sessions_revoked_by_admin`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/sign-out",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "How many sessions ended", body = SuspendedOut),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn sign_out_user(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SuspendedOut>> {
    let ended = users::sign_out_everywhere(&actor, &state.ctx, id).await?;
    Ok(Json(SuspendedOut {
        sessions_ended: ended,
        tokens_revoked: 0,
        paper_runs_paused: 0,
    }))
}

/// `POST /api/v1/admin/users/bulk`: one action (`suspend`, `unsuspend`, `sign_out`) for 1 to 100 users. Each
/// user goes through the single action with its rules and audit entry; a user it refuses (your own account, the
/// last active admin, not suspended, no such user) is reported as `refused` with the reason and the others are
/// still done.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/bulk",
    tag = "admin",
    security(("bearer" = [])),
    request_body = BulkIn,
    responses(
        (status = 200, description = "One result per user, done or refused", body = BulkOut),
        (status = 400, description = "`invalid_input` naming the field: `user_ids` (empty, more than 100, repeated), `action`, `reason` (missing for `suspend`), `until`", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
    )
)]
pub async fn bulk_users(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<BulkIn>,
) -> ApiResult<Json<BulkOut>> {
    let action = body.action();
    let outcomes = users::bulk(&actor, &state.ctx, &body.user_ids, &action).await?;
    let summary = users::bulk_summary(&action, &outcomes);
    let done = outcomes.iter().filter(|o| o.is_done()).count();
    Ok(Json(BulkOut {
        action: body.action,
        done,
        refused: outcomes.len() - done,
        summary,
        results: outcomes
            .into_iter()
            .map(|o| BulkResultOut {
                user_id: o.user_id,
                outcome: o.outcome.to_owned(),
                code: o.code,
                message: o.message,
            })
            .collect(),
    }))
}

/// `GET /api/v1/admin/jobs`: queue depths, running jobs with worker and lease, and the newest failed jobs with
/// their error (admins only; the same view as the console's jobs page).
#[utoipa::path(
    get,
    path = "/api/v1/admin/jobs",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Queues, running and failed jobs", body = JobsOut),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list_admin_jobs(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<JobsOut>> {
    let o = jobs::overview(&actor, &state.ctx, 50).await?;
    Ok(Json(JobsOut::from(o)))
}

/// `POST /api/v1/admin/jobs/{id}/retry`: puts a failed or cancelled job back in its queue with a fresh attempt
/// budget (admins only; audited as `job_retried`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/jobs/{id}/retry",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job, queued again", body = JobOut),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "`conflict`: the job is not failed or cancelled", body = ErrorBody),
    )
)]
pub async fn retry_admin_job(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<JobOut>> {
    jobs::retry(&actor, &state.ctx, id).await?;
    Ok(Json(JobOut::from(jobs::get(&actor, &state.ctx, id).await?)))
}

/// `POST /api/v1/admin/jobs/{id}/cancel`: cancels a job that waits to run (due or scheduled); a running job
/// cannot be cancelled (admins only; audited as `job_cancelled`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/jobs/{id}/cancel",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job, cancelled", body = JobOut),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "`conflict`: the job is not waiting (running or finished)", body = ErrorBody),
    )
)]
pub async fn cancel_admin_job(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<JobOut>> {
    jobs::cancel(&actor, &state.ctx, id).await?;
    Ok(Json(JobOut::from(jobs::get(&actor, &state.ctx, id).await?)))
}

/// The confirmation of a deletion.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteUserQuery {
    /// The account's email address, typed again.
    #[serde(deserialize_with = "crate::routes::contract::de_required_plain_text::<_, 254>")]
    #[param(max_length = 254, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    confirm_email: String,
}

/// `DELETE /api/v1/admin/users/{id}?confirm_email=…`: deletes a trader's or viewer's account, after its data
/// was exported in the last 24 hours (`GET …/export`); audited as `account_deleted` (docs/account.md says what
/// goes and what the audit log keeps).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id"), DeleteUserQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_input` (`confirm_email` is not the account's address), a malformed id or query", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`conflict`: your own or an administrator's account, no export in the last 24 hours, a running subscription or running work", body = ErrorBody),
    )
)]
pub async fn delete_user(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<DeleteUserQuery>,
) -> ApiResult<StatusCode> {
    accounts::delete(&actor, &state.ctx, id, &q.confirm_email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/admin/users/{id}/verification`: mails the user a new link to confirm their address; audited as
/// `verification_requested`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/verification",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 202, description = "The mail is queued"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`conflict`: the address is confirmed already", body = ErrorBody),
        (status = 429, description = "Too many mails to this address or from this client (`Retry-After`)", body = ErrorBody),
    )
)]
pub async fn resend_user_verification(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    accounts::resend_verification(&actor, &state.ctx, id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /api/v1/admin/users/{id}/export`: the user's data (format `vortex-export/1`, as their own "Download my
/// data"); one per account per 2 minutes; audited as `data_exported` about the user.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}/export",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The export document (a download)", content_type = "application/json", body = Object),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`limit_reached`: too big to export in one document", body = ErrorBody),
        (status = 429, description = "An export of this account in the last 2 minutes (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "The limit cannot be counted right now (`Retry-After`)", body = ErrorBody),
    )
)]
pub async fn export_user(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let doc = accounts::export(&actor, &state.ctx, id).await?;
    Ok(users_export_download(id, doc))
}

/// The export document as a download (`vortex-export-{user}.json`), never cached.
pub fn users_export_download(user: Uuid, doc: serde_json::Value) -> Response {
    let name = format!("attachment; filename=\"vortex-export-{user}.json\"");
    (
        [
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Json(doc),
    )
        .into_response()
}
