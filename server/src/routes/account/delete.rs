//! `POST /account/delete`: deleting one's own account (password and the address typed again).

use app::flash::Flash;
use axum::{
    Form,
    extract::State,
    http::{StatusCode, header},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
};
use backend::{
    Error,
    account::delete::{self, DeleteAccount},
    auth::session,
};
use serde::Deserialize;

use super::back;
use crate::{
    error::{HtmlError, HtmlResult},
    extract::WebActor,
    state::AppState,
};

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    confirm_email: String,
}

/// Deletes the account and signs the browser out; a refusal says why in place or on its own page.
pub async fn delete_account(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(f): Form<DeleteForm>,
) -> HtmlResult<Response> {
    let input = DeleteAccount {
        current_password: f.current_password,
        confirm_email: f.confirm_email,
    };
    match delete::delete_account(&state.ctx, &actor, input).await {
        Ok(()) => {
            let s = &state.ctx.settings;
            Ok((
                AppendHeaders([(
                    header::SET_COOKIE,
                    session::clear_cookie(s, session::cookie_name(s)),
                )]),
                Redirect::to(&Flash::AccountDeleted.redirect_to("/signin")),
            )
                .into_response())
        }
        Err(Error::Invalid { field, .. }) if field == "confirm_email" => Ok(Redirect::to(
            &format!("{}#delete", Flash::ConfirmEmail.redirect_to("/account")),
        )
        .into_response()),
        Err(Error::Conflict(message)) => Err(HtmlError::page(
            StatusCode::CONFLICT,
            "Account not deleted",
            &message,
        )),
        Err(e) => Err(back("/account", "#delete")(e)),
    }
}
