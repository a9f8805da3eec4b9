//! `POST /auth/forgot-password` and `POST /auth/reset-password`.

use app::flash::Flash;
use axum::{Form, extract::State, response::Response};
use backend::{Error, account::reset};
use serde::Deserialize;

use super::{back, to};
use crate::{error::HtmlResult, extract::AnyWebActor, state::AppState};

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// The same answer whether or not the account exists.
pub async fn forgot_password(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Form(f): Form<ForgotForm>,
) -> HtmlResult<Response> {
    reset::request_reset(&state.ctx, &actor, &f.email)
        .await
        .map_err(back("/forgot-password", ""))?;
    Ok(to("/forgot-password", Flash::Sent, ""))
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// Single use; ends every session and revokes every API token of the account. A password the policy refuses
/// goes back to the form with the link's token, so the user can try another one.
pub async fn reset_password(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Form(f): Form<ResetForm>,
) -> HtmlResult<Response> {
    let token = f.token.trim();
    reset::reset_password(&state.ctx, &actor, token, f.password)
        .await
        .map_err(|e| match &e {
            Error::Invalid { field, .. } if field == "token" => back("/reset-password", "")(e),
            _ => back(&format!("/reset-password?token={token}"), "")(e),
        })?;
    Ok(to("/signin", Flash::PasswordReset, ""))
}
