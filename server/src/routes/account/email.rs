//! `POST /account/email` (ask to change the address) and `POST /auth/confirm-email-change` (the link's button).

use app::flash::Flash;
use axum::{Form, extract::State, response::Response};
use backend::{Error, account::email_change};
use serde::Deserialize;

use super::{back, to};
use crate::{
    error::HtmlResult,
    extract::{AnyWebActor, WebActor},
    state::AppState,
};

#[derive(Deserialize)]
pub struct ChangeEmailForm {
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    current_password: String,
}

/// Mails a confirmation link to the new address; nothing changes until it is used.
pub async fn request(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(f): Form<ChangeEmailForm>,
) -> HtmlResult<Response> {
    match email_change::request(&state.ctx, &actor, &f.new_email, f.current_password).await {
        Ok(()) => Ok(to("/account", Flash::EmailChangeSent, "#email")),
        Err(Error::Invalid { field, .. }) if field == "new_email" => {
            Ok(to("/account", Flash::NewEmail, "#email"))
        }
        Err(e) => Err(back("/account", "#email")(e)),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    token: String,
}

/// Uses the confirmation link: the address changes (the old one is told).
pub async fn confirm(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Form(f): Form<ConfirmForm>,
) -> HtmlResult<Response> {
    match email_change::confirm(&state.ctx, &actor, &f.token).await {
        Ok(()) => Ok(to("/account", Flash::EmailChanged, "")),
        Err(Error::Invalid { field, .. }) if field == "new_email" => {
            Ok(to("/account", Flash::NewEmail, "#email"))
        }
        Err(e) => Err(back("/confirm-email-change", "")(e)),
    }
}
