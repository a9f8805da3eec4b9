//! The plan page's billing forms (`/account/plan`, docs/billing.md): "Upgrade" starts a checkout and "Manage
//! billing" opens the provider's portal. Each parses the form, calls one `backend::billing` action and answers
//! 303 to the provider's page; a refusal (billing off, a live subscription, a plan not for sale) is an error
//! page saying why. CSRF is checked by the middleware like every form post.

use axum::{
    Form,
    extract::State,
    response::{IntoResponse, Redirect},
};
use backend::billing::actions;
use serde::Deserialize;

use crate::{error::HtmlResult, extract::WebActor, state::AppState};

#[derive(Debug, Deserialize)]
pub(super) struct CheckoutForm {
    #[serde(default)]
    plan: String,
}

/// `POST /account/plan/checkout`.
pub(super) async fn checkout(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(form): Form<CheckoutForm>,
) -> HtmlResult {
    let plan: String = form.plan.chars().take(64).collect();
    let url = actions::checkout(&actor, &state.ctx, &plan).await?;
    Ok(Redirect::to(&url).into_response())
}

/// `POST /account/plan/portal`.
pub(super) async fn portal(State(state): State<AppState>, WebActor(actor): WebActor) -> HtmlResult {
    let url = actions::portal(&actor, &state.ctx).await?;
    Ok(Redirect::to(&url).into_response())
}
