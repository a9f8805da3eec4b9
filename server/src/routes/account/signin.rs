//! `POST /auth/signin` and `POST /auth/signout`.

use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{AppendHeaders, IntoResponse, Redirect, Response},
};
use backend::{Error, account::signin, auth::redirect};
use serde::Deserialize;

use super::{back, session_cookies, signed_out};
use crate::{
    error::{HtmlError, HtmlResult},
    extract::AnyWebActor,
    state::AppState,
};

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Unknown account and wrong password take the same time and give the same answer.
pub async fn sign_in(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Form(f): Form<SignInForm>,
) -> HtmlResult<Response> {
    let signed_in = match signin::sign_in(&state.ctx, &actor, &f.email, f.password).await {
        Ok(signin::SignInStep::Done(s)) => s,
        // Two-factor sign-in: the code comes next.
        Ok(signin::SignInStep::Code(challenge)) => {
            return Ok(super::two_factor::second_step(&state, &challenge, &f.next));
        }
        // A suspended account, or one awaiting sign-up approval (right password): as the action words it.
        Err(Error::Forbidden(message)) => {
            let title = if message == backend::admin::signups::PENDING_MESSAGE {
                "Awaiting approval"
            } else {
                "Account suspended"
            };
            return Err(HtmlError::page(StatusCode::FORBIDDEN, title, &message));
        }
        Err(e) => return Err(back("/signin", "")(e)),
    };
    Ok((
        AppendHeaders(session_cookies(&state, &signed_in.session.token)),
        Redirect::to(&redirect::after_signin(
            &state.ctx.settings.public_url,
            &f.next,
        )),
    )
        .into_response())
}

/// Ends this session at once.
pub async fn sign_out(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
) -> HtmlResult<Response> {
    signin::sign_out(&state.ctx, &actor).await?;
    Ok(signed_out(&state))
}
