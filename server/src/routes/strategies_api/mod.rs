//! `/api/v1/templates` and `/api/v1/strategies…`: the strategy catalogue and a trader's strategies (each save
//! of changed source an immutable version). Reads need a token, writes a read-write token of a non-viewer: the
//! actions in `backend::backtest::actions::strategies` decide (and audit), each handler parses, calls and
//! maps. Everything is scoped to the token's user:
//! another user's strategy answers 404 exactly like one that does not exist.
//!
//! * [`dto`]: the request and response types (strategies, versions, templates, parameters, diagnostics).
//! * [`strategies`]: list, create, get, save, archive, restore and duplicate strategies, and read a version.
//! * [`catalogue`]: the strategy catalogue (published entries; the admin routes that author it), and checking a
//!   source without saving it.

pub mod catalogue;
pub mod dto;
pub mod strategies;

use axum::{
    Router,
    routing::{get, post},
};

use self::{
    catalogue::{
        create_catalogue_entry, get_catalogue_entry, list_catalogue, list_templates,
        update_catalogue_entry, validate_strategy,
    },
    strategies::{
        archive_strategy, create_strategy, duplicate_strategy, get_strategy, get_strategy_version,
        list_strategies, restore_strategy, update_strategy,
    },
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/templates", get(list_templates))
        .route(
            "/api/v1/admin/catalogue",
            get(list_catalogue).post(create_catalogue_entry),
        )
        .route(
            "/api/v1/admin/catalogue/{id}",
            get(get_catalogue_entry).patch(update_catalogue_entry),
        )
        .route(
            "/api/v1/strategies",
            get(list_strategies).post(create_strategy),
        )
        .route("/api/v1/strategies/validate", post(validate_strategy))
        .route(
            "/api/v1/strategies/{id}",
            get(get_strategy)
                .put(update_strategy)
                .delete(archive_strategy),
        )
        .route("/api/v1/strategies/{id}/restore", post(restore_strategy))
        .route(
            "/api/v1/strategies/{id}/duplicate",
            post(duplicate_strategy),
        )
        .route(
            "/api/v1/strategies/{id}/versions/{version}",
            get(get_strategy_version),
        )
}
