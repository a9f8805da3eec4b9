//! `POST /auth/verify-email` and `POST /account/verification`.

use app::flash::Flash;
use axum::{Form, extract::State, response::Response};
use backend::account::verify::{self, Resent};
use serde::Deserialize;

use super::{back, to};
use crate::{
    error::HtmlResult,
    extract::{AnyWebActor, WebActor},
    state::AppState,
};

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
}

/// The emailed link opens a page with a confirm button (GET never changes state); this is its post.
pub async fn verify_email(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Form(f): Form<TokenForm>,
) -> HtmlResult<Response> {
    verify::verify_email(&state.ctx, &actor, &f.token)
        .await
        .map_err(back("/verify-email", ""))?;
    let page = if actor.auth_user().is_some() {
        "/account"
    } else {
        "/signin"
    };
    Ok(to(page, Flash::Verified, ""))
}

/// Sends a new verification link.
pub async fn resend_verification(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
) -> HtmlResult<Response> {
    let flash = match verify::resend_verification(&state.ctx, &actor)
        .await
        .map_err(back("/account", ""))?
    {
        Resent::Sent => Flash::VerificationSent,
        Resent::AlreadyVerified => Flash::Verified,
    };
    Ok(to("/account", flash, ""))
}
