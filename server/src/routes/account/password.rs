//! `POST /account/password`.

use app::flash::Flash;
use axum::{
    Form,
    extract::State,
    response::{AppendHeaders, IntoResponse, Redirect, Response},
};
use backend::account::password::{self, ChangePassword};
use serde::Deserialize;

use super::{back, session_cookies};
use crate::{error::HtmlResult, extract::WebActor, state::AppState};

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    sign_out_others: Option<String>,
}

/// Needs the current password; rotates this session; optionally ends the others.
pub async fn change_password(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(f): Form<PasswordForm>,
) -> HtmlResult<Response> {
    let input = ChangePassword {
        current_password: f.current_password,
        new_password: f.new_password,
        sign_out_others: f.sign_out_others.is_some(),
    };
    let new = password::change_password(&state.ctx, &actor, input)
        .await
        .map_err(back("/account", "#password"))?;
    Ok((
        AppendHeaders(session_cookies(&state, &new.token)),
        Redirect::to(&Flash::Password.redirect_to("/account")),
    )
        .into_response())
}
