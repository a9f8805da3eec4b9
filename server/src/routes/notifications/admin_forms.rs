//! The admin notifications page's form posts (`/admin/notifications`, no JavaScript needed): send a user a
//! test notification, and clear the undeliverable mark of their address. Each parses the form, calls the
//! same `backend::notify` action as the admin REST API and `vortex notify test|clear-undeliverable` (which
//! checks that the actor is an admin and writes the audit entry) and answers with Post/Redirect/Get back to
//! the page, looked up by the same address. A refusal of the action's rules (a disabled account, a bad
//! channel) goes back to the page with its field and message; not an admin is a 403 page, as the REST API
//! answers 403; an unknown user is 404.

use app::{flash::Flash, pages::admin_notifications::PATH};
use axum::{
    Form,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use backend::{
    Error,
    notify::{Channel, admin, email},
};
use serde::Deserialize;
use serde_json::json;

use super::{parse_id, to};
use crate::{
    error::{HtmlError, HtmlResult},
    extract::WebActor,
    state::AppState,
};

#[derive(Debug, Deserialize)]
pub(super) struct UserForm {
    /// The user the page showed.
    #[serde(default)]
    user_id: String,
    /// The address the page was looked up by (only to go back to it).
    #[serde(default)]
    email: String,
    /// `inapp`, `email`, `webhook`, or empty for every channel (the test form only).
    #[serde(default)]
    channel: String,
}

/// The page for `email`, with a flash code.
fn back_to(email: &str, flash: Flash) -> String {
    let email: String = email.trim().chars().take(admin::MAX_EMAIL_LEN).collect();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("email", &email)
        .finish();
    flash.redirect_to(&format!("{PATH}?{query}"))
}

/// Back to the page with the refused field and its message (short-lived cookie).
fn refused(state: &AppState, email: &str, field: &str, message: &str) -> Response {
    let mut resp = to(&back_to(email, Flash::AdminRefused));
    let field: String = field.chars().take(40).collect();
    let message: String = message.chars().take(400).collect();
    let value = backend::web::encode_flash(&json!([field, message]).to_string());
    let cookie = backend::auth::session::cookie(
        &state.ctx.settings,
        backend::web::FORM_ERROR_COOKIE,
        &value,
        std::time::Duration::from_secs(120),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The action's refusal: its rules back on the page; permission, "not found" and the rest as an error page.
fn refusal(state: &AppState, form: &UserForm, e: Error) -> Response {
    match e {
        Error::Invalid { field, message } => refused(state, &form.email, &field, &message),
        e @ (Error::Conflict(_) | Error::RateLimited { .. }) => {
            refused(state, &form.email, e.code(), &e.message())
        }
        Error::Forbidden(m) => {
            HtmlError::page(StatusCode::FORBIDDEN, "Administrators only", &m).into_response()
        }
        e => HtmlError::from(e).into_response(),
    }
}

/// `POST /admin/notifications/test`: a `system.test` notification for the user, on one channel or all.
pub(super) async fn send_test(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(form): Form<UserForm>,
) -> HtmlResult {
    let user_id = parse_id(form.user_id.trim())?;
    let channel = match form.channel.trim() {
        "" => None,
        c => match Channel::parse(c) {
            Some(c) => Some(c),
            None => {
                let message = format!(
                    "`{}` is not a channel (inapp, email or webhook)",
                    c.chars().take(20).collect::<String>()
                );
                return Ok(refused(&state, &form.email, "channel", &message));
            }
        },
    };
    match admin::send_test(&state.ctx, &actor, user_id, channel).await {
        Ok(_) => Ok(to(&back_to(&form.email, Flash::AdminTestSent))),
        Err(e) => Ok(refusal(&state, &form, e)),
    }
}

/// `POST /admin/notifications/clear-undeliverable`: clears the mark of the user's address and sends a test.
pub(super) async fn clear_undeliverable(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(form): Form<UserForm>,
) -> HtmlResult {
    let user_id = parse_id(form.user_id.trim())?;
    match email::clear_undeliverable_for(&state.ctx, &actor, user_id).await {
        Ok(c) if c.cleared => Ok(to(&back_to(&form.email, Flash::AdminCleared))),
        Ok(_) => Ok(to(&back_to(&form.email, Flash::AdminNotMarked))),
        Err(e) => Ok(refusal(&state, &form, e)),
    }
}
