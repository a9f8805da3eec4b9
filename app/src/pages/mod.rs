//! One module per page.

pub mod account;
pub mod admin;
pub mod admin_notifications;
pub mod auth;
pub mod backtests;
pub mod error;
pub mod home;
pub mod market;
pub mod not_found;
pub mod notification_settings;
pub mod notifications;
pub mod paper;
pub mod plan;
pub mod status;
pub mod strategies;
pub mod unsubscribe;
