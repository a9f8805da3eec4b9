//! Two-factor sign-in forms: the sign-in's second step (`POST /auth/two-factor`) and the account page's
//! enrolment, confirmation, recovery codes and turning it off (`POST /account/two-factor/…`).

use std::time::Duration;

use app::flash::Flash;
use axum::{
    Form,
    extract::State,
    http::{HeaderMap, header},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
};
use backend::{
    Error,
    account::two_factor::{self, Proof},
    auth::{redirect, session},
};
use serde::Deserialize;

use super::{attempt_error, back, session_cookies, to};
use crate::{
    error::{HtmlError, HtmlResult},
    extract::{AnyWebActor, WebActor},
    state::AppState,
};

const ANCHOR: &str = "#two-factor";

/// The account page with `flash` for a refusal of these forms (a wrong code, a state that changed).
fn refused(e: Error) -> HtmlError {
    match e {
        Error::Invalid { ref field, .. } if field == "code" => {
            HtmlError(to("/account", Flash::TwoFactorCode, ANCHOR))
        }
        Error::Conflict(_) => HtmlError(to("/account", Flash::TwoFactorState, ANCHOR)),
        e => back("/account", ANCHOR)(e),
    }
}

/// The sign-in's second step, with the pending sign-in's cookie and where to go after.
pub(super) fn second_step(
    state: &AppState,
    challenge: &two_factor::Challenge,
    next: &str,
) -> Response {
    let s = &state.ctx.settings;
    let cookie = session::cookie(
        s,
        two_factor::challenge_cookie_name(s),
        &challenge.token,
        Duration::from_secs(two_factor::CHALLENGE_SECS.unsigned_abs()),
    );
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    (
        AppendHeaders([(header::SET_COOKIE, cookie)]),
        Redirect::to(&format!("/signin/two-factor?{query}")),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

/// `POST /auth/two-factor`: the code (or a recovery code) of a pending sign-in.
pub async fn sign_in_code(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> HtmlResult<Response> {
    let s = &state.ctx.settings;
    let challenge = session::read_cookie(&headers, two_factor::challenge_cookie_name(s))
        .unwrap_or_default()
        .to_owned();
    let signed_in = match two_factor::sign_in_code(&state.ctx, &actor, &challenge, &f.code).await {
        Ok(s) => s,
        Err(Error::Invalid { field, .. }) if field == "code" => {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &f.next)
                .finish();
            return Ok(to(
                &format!("/signin/two-factor?{query}"),
                Flash::TwoFactorCode,
                "",
            ));
        }
        Err(Error::Invalid { field, .. }) if field == "challenge" => {
            return Ok(to("/signin", Flash::TwoFactorExpired, ""));
        }
        Err(e @ Error::Forbidden(_)) => return Err(e.into()),
        Err(e) => return Err(attempt_error(e)),
    };
    let [a, b] = session_cookies(&state, &signed_in.session.token);
    let clear = (
        header::SET_COOKIE,
        session::clear_cookie(s, two_factor::challenge_cookie_name(s)),
    );
    Ok((
        AppendHeaders([a, b, clear]),
        Redirect::to(&redirect::after_signin(&s.public_url, &f.next)),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    current_password: String,
}

/// `POST /account/two-factor/start`: a new secret, shown on the account page until confirmed.
pub async fn start(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(f): Form<StartForm>,
) -> HtmlResult<Response> {
    two_factor::begin(&state.ctx, &actor, f.current_password)
        .await
        .map_err(refused)?;
    Ok(to("/account", Flash::TwoFactorStarted, ANCHOR))
}

/// A redirect to the account page showing `flash`, with the new recovery codes in their one-view cookie.
fn with_codes(state: &AppState, codes: &[String], flash: Flash) -> Response {
    let cookie = two_factor::codes_cookie(&state.ctx.settings, codes, 120);
    (
        AppendHeaders([(header::SET_COOKIE, cookie)]),
        to("/account", flash, ANCHOR),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
}

/// `POST /account/two-factor/confirm`: the first code turns it on; the recovery codes are shown once.
pub async fn confirm(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(f): Form<ConfirmForm>,
) -> HtmlResult<Response> {
    let codes = two_factor::confirm(&state.ctx, &actor, &f.code)
        .await
        .map_err(refused)?;
    Ok(with_codes(&state, &codes, Flash::TwoFactorEnabled))
}

#[derive(Deserialize)]
pub struct ProofForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    current_password: String,
}

impl From<ProofForm> for Proof {
    fn from(f: ProofForm) -> Self {
        Proof {
            code: f.code,
            password: f.current_password,
        }
    }
}

/// `POST /account/two-factor/disable` (with a code, a recovery code or the password).
pub async fn disable(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(f): Form<ProofForm>,
) -> HtmlResult<Response> {
    two_factor::disable(&state.ctx, &actor, f.into())
        .await
        .map_err(refused)?;
    Ok(to("/account", Flash::TwoFactorDisabled, ANCHOR))
}

/// `POST /account/two-factor/recovery-codes` (with a code, a recovery code or the password).
pub async fn recovery_codes(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(f): Form<ProofForm>,
) -> HtmlResult<Response> {
    let codes = two_factor::regenerate_codes(&state.ctx, &actor, f.into())
        .await
        .map_err(refused)?;
    Ok(with_codes(&state, &codes, Flash::TwoFactorCodes))
}
