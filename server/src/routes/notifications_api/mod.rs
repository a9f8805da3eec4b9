//! `/api/v1/notifications…` and the admin notification tools (docs/design/notifications.md §8): in-app
//! notifications, webhooks and the delivery log, for bearer tokens. The actions of `backend::notify` decide
//! permissions and write the audit entries; each handler parses, calls one and maps the result. Everything is
//! scoped to the token's user: another user's notification, webhook or delivery answers 404.
//!
//! * [`dto`]: the request and response types.
//! * [`api`]: the caller's notifications, webhooks and delivery log.
//! * [`prefs`]: the catalogue and the caller's preferences.
//! * [`admin`]: a user's delivery log and a test notification (admins).

pub mod admin;
pub mod api;
pub mod dto;
pub mod prefs;

use axum::{
    Router,
    routing::{delete, get, post},
};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notifications", get(api::list_notifications))
        .route("/api/v1/notifications/unread-count", get(api::unread_count))
        .route("/api/v1/notifications/{id}/read", post(api::mark_read))
        .route("/api/v1/notifications/read-all", post(api::mark_all_read))
        .route("/api/v1/notifications/catalogue", get(prefs::get_catalogue))
        .route(
            "/api/v1/notifications/preferences",
            get(prefs::get_preferences).put(prefs::put_preferences),
        )
        .route(
            "/api/v1/notifications/webhooks",
            get(api::list_webhooks).post(api::create_webhook),
        )
        .route(
            "/api/v1/notifications/webhooks/{id}",
            delete(api::delete_webhook),
        )
        .route(
            "/api/v1/notifications/webhooks/{id}/test",
            post(api::test_webhook),
        )
        .route(
            "/api/v1/notifications/webhooks/{id}/enable",
            post(api::enable_webhook),
        )
        .route(
            "/api/v1/notifications/webhooks/{id}/rotate-secret",
            post(api::rotate_secret),
        )
        .route(
            "/api/v1/notifications/deliveries",
            get(api::list_deliveries),
        )
        .route(
            "/api/v1/notifications/deliveries/{id}/replay",
            post(api::replay_delivery),
        )
        .route(
            "/api/v1/admin/users/{id}/notification-deliveries",
            get(admin::user_deliveries),
        )
        .route(
            "/api/v1/admin/users/{id}/notifications/test",
            post(admin::send_test),
        )
}
