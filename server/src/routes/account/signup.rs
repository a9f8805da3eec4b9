//! `POST /auth/signup`.

use app::flash::Flash;
use axum::{Form, extract::State, http::StatusCode, response::Response};
use backend::{
    Error,
    account::signup::{self, SignUp},
};
use serde::Deserialize;

use super::{back, to};
use crate::{
    error::{HtmlError, HtmlResult},
    extract::AnyWebActor,
    state::AppState,
};

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    /// The invitation token (from `/signup?invite=…`), when sign-up is by invitation.
    #[serde(default)]
    invite: String,
    /// Why the applicant wants an account (asked while sign-up is by approval).
    #[serde(default)]
    reason: String,
}

/// Answers the same whether or not the address already has an account (no enumeration).
pub async fn sign_up(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Form(f): Form<SignUpForm>,
) -> HtmlResult<Response> {
    let input = SignUp {
        email: f.email,
        display_name: f.display_name,
        password: f.password,
        invite: Some(f.invite).filter(|i| !i.trim().is_empty()),
        reason: Some(f.reason),
    };
    match signup::sign_up(&state.ctx, &actor, input).await {
        Ok(signup::SignedUp::CheckEmail) => {}
        Ok(signup::SignedUp::AwaitingApproval) => {
            return Ok(to("/signin", Flash::SignupPending, ""));
        }
        // Closed by an administrator, or by invitation without a valid one: the action's sentence, as a page.
        Err(Error::Forbidden(message)) => {
            return Err(HtmlError::page(
                StatusCode::FORBIDDEN,
                "Sign-up not open",
                &message,
            ));
        }
        Err(e) => return Err(back("/signup", "")(e)),
    }
    Ok(to("/signin", Flash::CheckEmail, ""))
}
