//! Browser routes of notifications (docs/design/notifications.md §5, §7): the live stream of in-app
//! notifications ([`events`]). The REST API is `routes::notifications_api`.

pub mod events;

use axum::{Router, routing::get};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(events::PATH, get(events::notifications_stream))
}
