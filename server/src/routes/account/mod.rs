//! The account flows as HTML form posts (they work without JavaScript): sign-up, sign-in, sign-out, email
//! verification, password reset and change, profile, sessions and API tokens. Each handler parses the form,
//! calls the backend action in `backend::account` (which enforces every rule and records the audit entry) and
//! answers with a redirect (Post/Redirect/Get) carrying an [`Flash`] code that the page shows as a message.
//! CSRF is checked by the middleware before any of these run.

mod billing_forms;
mod delete;
mod email;
mod export;
mod password;
mod profile;
mod reset;
mod sessions;
mod signin;
mod signup;
mod tokens;
mod two_factor;
mod verify;

use std::time::Duration;

use app::flash::Flash;
use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use backend::{
    Error,
    account::password_policy,
    auth::{self, csrf, password::PolicyError, session},
};

use crate::{
    error::{HtmlError, html_error},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(signup::sign_up))
        .route("/auth/signin", post(signin::sign_in))
        .route("/auth/signout", post(signin::sign_out))
        .route("/auth/two-factor", post(two_factor::sign_in_code))
        .route("/account/email", post(email::request))
        .route("/account/export.json", get(export::download))
        .route("/account/delete", post(delete::delete_account))
        .route("/auth/confirm-email-change", post(email::confirm))
        .route("/account/two-factor/start", post(two_factor::start))
        .route("/account/two-factor/confirm", post(two_factor::confirm))
        .route("/account/two-factor/disable", post(two_factor::disable))
        .route(
            "/account/two-factor/recovery-codes",
            post(two_factor::recovery_codes),
        )
        .route("/auth/verify-email", post(verify::verify_email))
        .route("/account/verification", post(verify::resend_verification))
        .route("/auth/forgot-password", post(reset::forgot_password))
        .route("/auth/reset-password", post(reset::reset_password))
        .route("/account/profile", post(profile::update_profile))
        .route("/account/password", post(password::change_password))
        .route(
            "/account/sessions/{public_id}/revoke",
            post(sessions::revoke_session),
        )
        .route("/account/tokens", post(tokens::create_token))
        .route("/account/plan/checkout", post(billing_forms::checkout))
        .route("/account/plan/portal", post(billing_forms::portal))
        .route(
            "/account/tokens/{token_id}/revoke",
            post(tokens::revoke_token),
        )
}

/// A redirect to `page` showing `flash` (then `anchor`, e.g. `#tokens`).
fn to(page: &str, flash: Flash, anchor: &str) -> Response {
    Redirect::to(&format!("{}{anchor}", flash.redirect_to(page))).into_response()
}

fn policy_flash(p: PolicyError) -> Flash {
    match p {
        PolicyError::TooShort => Flash::PasswordShort,
        PolicyError::TooLong => Flash::PasswordLong,
        PolicyError::Common => Flash::PasswordCommon,
        PolicyError::Repetitive => Flash::PasswordRepetitive,
        PolicyError::SameAsEmail => Flash::PasswordEmail,
        PolicyError::ControlCharacters => Flash::PasswordControl,
    }
}

/// The form message for a refusal the page shows in place (a field, a permission, a taken name).
fn flash_for(e: &Error) -> Option<Flash> {
    if let Some(p) = password_policy(e) {
        return Some(policy_flash(p));
    }
    Some(match e {
        Error::Invalid { field, .. } => match field.as_str() {
            "credentials" => Flash::Invalid,
            "email" => Flash::Email,
            "display_name" => Flash::DisplayName,
            "time_zone" => Flash::TimeZone,
            "token" => Flash::InvalidToken,
            "current_password" => Flash::CurrentPassword,
            "name" => Flash::TokenName,
            "scope" => Flash::TokenScope,
            "expires_in_days" => Flash::TokenExpiry,
            "reason" => Flash::SignupReason,
            _ => return None,
        },
        Error::Forbidden(_) => Flash::ReadOnly,
        Error::EmailUnconfirmed => Flash::TokenUnverified,
        Error::Conflict(_) => Flash::TokenExists,
        _ => return None,
    })
}

/// Maps a refusal to a redirect back to `page` (with `anchor`) showing its message, or to an error page.
fn back(page: &str, anchor: &str) -> impl FnOnce(Error) -> HtmlError {
    move |e| match flash_for(&e) {
        Some(f) => HtmlError(to(page, f, anchor)),
        None => attempt_error(e),
    }
}

/// The error pages of the account flows: attempt limits and busy password hashing say what to do next;
/// anything else is the usual error page.
fn attempt_error(e: Error) -> HtmlError {
    let (status, title, message, retry) = match &e {
        Error::RateLimited { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            format!(
                "For your security this is paused. Try again in {} minute(s), or reset your password.",
                retry_after.div_ceil(60)
            ),
            *retry_after,
        ),
        Error::Unavailable {
            message,
            retry_after,
        } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            message.clone(),
            *retry_after,
        ),
        _ => return e.into(),
    };
    let mut r = html_error(status, title, &message);
    if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    HtmlError(r)
}

/// Sets a fresh session cookie and a fresh CSRF cookie (new ids at every sign-in and privilege change).
fn session_cookies(state: &AppState, token: &str) -> [(header::HeaderName, String); 2] {
    let s = &state.ctx.settings;
    let csrf_value = auth::random_secret();
    [
        (
            header::SET_COOKIE,
            session::cookie(s, session::cookie_name(s), token, s.session_absolute),
        ),
        (
            header::SET_COOKIE,
            session::cookie(
                s,
                csrf::cookie_name(s),
                &csrf_value,
                Duration::from_secs(12 * 3600),
            ),
        ),
    ]
}

/// Deletes the session cookie and sends the browser to the sign-in page (signed out).
fn signed_out(state: &AppState) -> Response {
    let s = &state.ctx.settings;
    (
        AppendHeaders([(
            header::SET_COOKIE,
            session::clear_cookie(s, session::cookie_name(s)),
        )]),
        Redirect::to(&Flash::SignedOut.redirect_to("/signin")),
    )
        .into_response()
}
