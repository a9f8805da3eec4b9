//! The `vortex` web server: HTTP routes, middleware and start-up. The binary in `main.rs` only parses the
//! command line and calls into here, so tests can start the same application on port 0.

pub mod commands;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod mock_exchange;
mod nonce;
pub mod page_cache;
pub mod routes;
pub mod signed_in_cache;
pub mod startup;
pub mod state;

pub use startup::Application;

/// The research commands' helpers under their former path (`server::cli::parse_time`, …).
pub use commands::run_strategy as cli;
