//! The browser side of paper trading (session cookie; CSRF checked by the middleware on every POST): the
//! start form and the pause / resume / stop forms ([`forms`], Post/Redirect/Get), and the run page's live
//! stream ([`events`], server-sent events fed by the process's `LISTEN paper_run` hub in [`live`]). Every
//! handler parses its input, calls the action in `backend::paper::actions` and maps the outcome.

mod events;
mod forms;
pub mod live;

use axum::{
    Router,
    routing::{get, post},
};

use crate::state::AppState;

pub use events::PATH_PREFIX as EVENTS_PATH_PREFIX;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/paper/create", post(forms::create))
        .route("/paper/{id}/pause", post(forms::pause))
        .route("/paper/{id}/resume", post(forms::resume))
        .route("/paper/{id}/stop", post(forms::stop))
        .route("/paper/{id}/risk", post(forms::risk))
        .route("/paper/{id}/risk/release", post(forms::risk_release))
        .route("/paper/{id}/signals", post(forms::signals))
        .route("/paper/{id}/kill", post(forms::kill))
        .route(
            "/paper/{id}/kill/{switch}/release",
            post(forms::kill_release),
        )
        .route("/api/events/paper/{id}", get(events::stream))
}
