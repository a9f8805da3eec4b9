//! `POST /account/profile`.

use app::flash::Flash;
use axum::{Form, extract::State, response::Response};
use backend::account::profile::{self, ProfileUpdate};
use serde::Deserialize;

use super::{back, to};
use crate::{error::HtmlResult, extract::WebActor, state::AppState};

#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    time_zone: String,
}

/// Display name and time zone only (nothing else is assignable here).
pub async fn update_profile(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(f): Form<ProfileForm>,
) -> HtmlResult<Response> {
    let input = ProfileUpdate {
        display_name: Some(f.display_name),
        time_zone: Some(f.time_zone),
    };
    profile::update(&state.ctx, &actor, input)
        .await
        .map_err(back("/account", ""))?;
    Ok(to("/account", Flash::Profile, ""))
}
