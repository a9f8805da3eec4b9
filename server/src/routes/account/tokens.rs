//! `POST /account/tokens` and `POST /account/tokens/{id}/revoke`.

use app::flash::Flash;
use axum::{
    Form,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
};
use backend::{
    Error,
    account::tokens::{self, NewToken},
    auth::api_token,
};
use serde::Deserialize;

use super::{back, to};
use crate::{
    error::{HtmlError, HtmlResult},
    extract::WebActor,
    state::AppState,
};

#[derive(Deserialize)]
pub struct CreateTokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires_in_days: String,
    #[serde(default)]
    current_password: String,
}

/// The secret is shown once, on the next page view (a short-lived HttpOnly cookie carries it there; the page
/// clears it).
pub async fn create_token(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(f): Form<CreateTokenForm>,
) -> HtmlResult<Response> {
    let input = NewToken {
        name: f.name,
        scope: f.scope,
        expires_in_days: f.expires_in_days,
        current_password: f.current_password,
    };
    let (_, secret) = tokens::create(&state.ctx, &actor, input)
        .await
        .map_err(back("/account", "#tokens"))?;
    let cookie = api_token::flash_cookie(&state.ctx.settings, &secret, 120);
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie)]),
        Redirect::to(&format!(
            "{}#tokens",
            Flash::TokenCreated.redirect_to("/account")
        )),
    )
        .into_response())
}

/// Only the owner's tokens are found (others: 404).
pub async fn revoke_token(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(token_id): Path<String>,
) -> HtmlResult<Response> {
    tokens::revoke(&state.ctx, &actor, &token_id)
        .await
        .map_err(|e| match e {
            Error::NotFound => HtmlError::page(
                StatusCode::NOT_FOUND,
                "Not found",
                "That token does not exist.",
            ),
            e => e.into(),
        })?;
    Ok(to("/account", Flash::TokenRevoked, "#tokens"))
}
