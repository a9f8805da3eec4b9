//! The browser side of notifications (docs/design/notifications.md §5, §7): the live stream of in-app
//! notifications ([`events`]), the one-click unsubscribe of subscription mail and its confirmation page's form
//! ([`unsubscribe`]), the HTML form posts of the in-app centre and the settings page ([`forms`]) and of the
//! admin notifications page ([`admin_forms`]). The REST API is `routes::notifications_api`. Every handler
//! parses its input, calls ONE action of `backend::notify` (which checks permission and state and writes the
//! audit entry) and maps the outcome: Post/Redirect/Get with an [`app::flash::Flash`] code, or an HTML error
//! page ([`HtmlError`]).

mod admin_forms;
pub mod events;
mod forms;
mod unsubscribe;

use axum::{
    Router,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use backend::Error;
use uuid::Uuid;

use crate::{error::HtmlError, state::AppState};

/// The `List-Unsubscribe` URL of subscription mail (RFC 8058). Exempt from the CSRF check by this exact path
/// (see `crate::middleware`); its token is the authority.
pub const ONE_CLICK_PATH: &str = "/unsubscribe/one-click";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(events::PATH, get(events::notifications_stream))
        .route(
            ONE_CLICK_PATH,
            post(unsubscribe::one_click).get(unsubscribe::to_page),
        )
        .route("/unsubscribe", post(unsubscribe::confirm))
        .route("/admin/notifications/test", post(admin_forms::send_test))
        .route(
            "/admin/notifications/clear-undeliverable",
            post(admin_forms::clear_undeliverable),
        )
        .route("/notifications/read-all", post(forms::read_all))
        .route("/notifications/settings", post(forms::save_prefs))
        .route("/notifications/email/retry", post(forms::email_retry))
        .route("/notifications/{id}/open", post(forms::open))
        .route("/notifications/webhooks", post(forms::webhook_create))
        .route(
            "/notifications/webhooks/{id}/test",
            post(forms::webhook_test),
        )
        .route(
            "/notifications/webhooks/{id}/enable",
            post(forms::webhook_enable),
        )
        .route(
            "/notifications/webhooks/{id}/rotate",
            post(forms::webhook_rotate),
        )
        .route(
            "/notifications/webhooks/{id}/delete",
            post(forms::webhook_delete),
        )
}

/// A Post/Redirect/Get answer (303).
fn to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A refusal as an HTML page; a refused write of a read-only account says so in its title.
fn page(e: Error) -> HtmlError {
    match e {
        Error::Forbidden(m) => HtmlError::page(StatusCode::FORBIDDEN, "Read-only account", &m),
        other => other.into(),
    }
}

/// An id in a form path (a malformed one is "not found", like another user's).
fn parse_id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound)
}
