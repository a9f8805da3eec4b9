//! `POST /auth/signup`.

use app::flash::Flash;
use axum::{Form, extract::State, response::Response};
use backend::account::signup::{self, SignUp};
use serde::Deserialize;

use super::{back, to};
use crate::{error::HtmlResult, extract::AnyWebActor, state::AppState};

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
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
    };
    signup::sign_up(&state.ctx, &actor, input)
        .await
        .map_err(back("/signup", ""))?;
    Ok(to("/signin", Flash::CheckEmail, ""))
}
