//! Vortex's server-side library, shared by the web server, the workers, the CLI and `app`'s server functions:
//! settings, Postgres, Redis, background jobs, mail and telemetry. Nothing here renders HTML.

pub mod account;
pub mod actor;
pub mod admin;
pub mod auth;
pub mod backtest;
pub mod billing;
pub mod clock;
pub mod csv;
pub mod ctx;
pub mod db;
pub mod error;
pub mod error_tracking;
pub mod gates;
pub mod jobs;
pub mod live;
pub mod mail;
pub mod market;
pub mod notify;
pub mod paper;
pub mod pgcopy;
pub mod plans;
pub mod redis;
pub mod risk_limits;
pub mod settings;
pub mod telemetry;
pub mod web;

pub use actor::{Actor, Surface};
pub use ctx::Ctx;
pub use error::{Error, Result};

/// The current time as RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
