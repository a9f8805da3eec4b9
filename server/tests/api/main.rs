//! Integration tests: the real application on a random port, a fresh Postgres database per test, a private
//! Redis namespace per test, and (where processes matter) the real `vortex` binary.

mod accounts_hardening;
mod auth;
mod backtests_api;
mod backtests_web;
mod backup;
mod config;
mod engine_hardening;
mod helpers;
mod hostile;
mod http;
mod jobs;
mod jobs_hardening;
mod market;
mod nginx;
mod notify_api;
mod notify_email;
mod notify_inapp;
mod notify_live;
mod notify_prefs;
mod notify_unsubscribe;
mod notify_web;
mod notify_webhooks;
mod policy_accounts;
mod policy_backtests;
mod problem_json;
mod processes;
mod research_cli;
mod smtp;
mod surfaces;
mod upload;
mod web_hardening;
mod webhook_sink;
