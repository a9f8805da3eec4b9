//! The browser side of strategies and backtests (session cookie; CSRF checked by the middleware on every
//! POST): HTML form handlers that answer with Post/Redirect/Get ([`strategies`], [`runs`]), the JSON the
//! pages' scripts fetch ([`json`]: the editor's live check, status, charts, decision trace, comparison) and
//! the downloads ([`downloads`]). Every handler parses its input, calls the action in
//! `backend::backtest::actions` (which checks permission, limits and state and records the audit entry) and
//! maps the outcome: a redirect with an [`app::flash::Flash`] code, an HTML error page ([`HtmlError`]) or,
//! for page scripts, the REST API's JSON error ([`crate::error::ApiError`]).

mod downloads;
mod json;
mod runs;
mod strategies;

use axum::{
    Router,
    routing::{get, post},
};
use backend::Error;
use uuid::Uuid;

use crate::{
    routes::run_form::{page, to},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/strategies/create", post(strategies::create))
        .route("/strategies/validate", post(json::validate))
        .route("/strategies/{id}/save", post(strategies::save))
        .route("/strategies/{id}/duplicate", post(strategies::duplicate))
        .route("/strategies/{id}/archive", post(strategies::archive))
        .route("/strategies/{id}/restore", post(strategies::restore))
        .route("/strategies/{id}/delete", post(strategies::delete))
        .route(
            "/strategies/{id}/discard-draft",
            post(strategies::discard_draft),
        )
        .route("/backtests/create", post(runs::create))
        .route("/backtests/{id}/cancel", post(runs::cancel))
        .route("/backtests/{id}/status.json", get(json::status))
        .route("/backtests/{id}/chart.json", get(json::chart))
        .route("/backtests/{id}/trace.json", get(json::trace))
        .route("/backtests/compare.json", get(json::compare))
        .route("/backtests/{id}/trades.csv", get(downloads::trades_csv))
        .route("/backtests/{id}/result.json", get(downloads::result_json))
        .route("/backtests/{id}/report.html", get(downloads::report_html))
}

/// An id in a form or download path (a malformed one is "not found", like another user's).
fn parse_id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound)
}
