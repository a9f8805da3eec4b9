//! The `vortex` web server: HTTP routes, middleware and start-up. The binary in `main.rs` only parses the
//! command line and calls into here, so tests can start the same application on port 0.

pub mod cli;
pub mod error;
pub mod etl_cli;
pub mod extract;
pub mod middleware;
pub mod mock_exchange;
pub mod routes;
pub mod startup;
pub mod state;

pub use startup::Application;
