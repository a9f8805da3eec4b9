//! The platform settings for admin tokens (docs/admin.md#overview): read and change the sign-up policy, the
//! sign-up domain lists, the maintenance banner and mandatory two-factor sign-in for admins, and create
//! invitation links — the same actions as the console's overview page.

use axum::{Json, extract::State, http::StatusCode};
use backend::admin::settings::{self, PlatformSettings, SettingsChange};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiJson},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// The platform settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsOut {
    /// `open`, `invite` or `closed`.
    pub signup_policy: String,
    /// Shown at the top of every page when not empty.
    pub banner: String,
    pub admin_two_factor_required: bool,
    /// With entries, only addresses at these domains (or subdomains) sign up.
    pub signup_allowed_domains: Vec<String>,
    /// Addresses at these domains (or subdomains) never sign up.
    pub signup_denied_domains: Vec<String>,
}

impl From<PlatformSettings> for SettingsOut {
    fn from(s: PlatformSettings) -> Self {
        Self {
            signup_policy: s.signup_policy,
            banner: s.banner,
            admin_two_factor_required: s.admin_two_factor_required,
            signup_allowed_domains: s.signup_allowed_domains,
            signup_denied_domains: s.signup_denied_domains,
        }
    }
}

/// A change: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsIn {
    #[schema(pattern = "^(open|invite|closed)$")]
    pub signup_policy: Option<String>,
    /// At most 500 characters, one line (empty: no banner).
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub banner: Option<String>,
    pub admin_two_factor_required: Option<bool>,
    /// Domain names such as `example.com` (at most 200; an entry that is not a domain name is refused, named).
    #[schema(max_items = 200)]
    pub signup_allowed_domains: Option<Vec<String>>,
    #[schema(max_items = 200)]
    pub signup_denied_domains: Option<Vec<String>>,
}

/// A new invitation link.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteOut {
    /// The sign-up link with its single-use token (shown once; works for 14 days).
    pub url: String,
}

/// `GET /api/v1/admin/settings`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/settings",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The platform settings", body = SettingsOut),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn get_settings(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<SettingsOut>> {
    actor.admin()?;
    Ok(Json(settings::current(&state.ctx).await?.into()))
}

/// `PATCH /api/v1/admin/settings`: changes the given settings (audited as `platform_settings_changed`).
#[utoipa::path(
    patch,
    path = "/api/v1/admin/settings",
    tag = "admin",
    security(("bearer" = [])),
    request_body = SettingsIn,
    responses(
        (status = 200, description = "The settings after the change", body = SettingsOut),
        (status = 400, description = "`invalid_input` naming the field (a domain that is not a domain name, more than 200, a bad banner or policy) or a malformed body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
    )
)]
pub async fn update_settings(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<SettingsIn>,
) -> ApiResult<Json<SettingsOut>> {
    let change = SettingsChange {
        signup_policy: body.signup_policy.as_deref(),
        banner: body.banner.as_deref(),
        admin_two_factor_required: body.admin_two_factor_required,
        signup_allowed_domains: body.signup_allowed_domains,
        signup_denied_domains: body.signup_denied_domains,
    };
    Ok(Json(
        settings::update(&actor, &state.ctx, &change).await?.into(),
    ))
}

/// `POST /api/v1/admin/invites`: a single-use sign-up link for 14 days (audited as `invite_created`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/invites",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The link, shown once", body = InviteOut),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
    )
)]
pub async fn create_invite(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<(StatusCode, Json<InviteOut>)> {
    let url = settings::create_invite(&actor, &state.ctx).await?;
    Ok((StatusCode::CREATED, Json(InviteOut { url })))
}
