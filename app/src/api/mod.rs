//! `#[server]` functions: the UI's reads and writes. Each calls into `backend` under the `ssr` feature.

pub mod account;
pub mod admin;
pub mod backtest;
pub mod market;
pub mod notifications;
pub mod notifications_admin;
pub mod paper;
pub mod plans;
pub mod status;

/// The [`backend::Actor`] of the current server function call: the session cookie's user (or nobody), with
/// the request's client address, user agent and request id. Every server function passes it to the backend
/// action it calls; no server function checks a permission itself.
#[cfg(feature = "ssr")]
pub async fn actor() -> Result<backend::Actor, crate::error::AppError> {
    use backend::{
        Actor, Surface,
        auth::RequestMeta,
        web::{ClientIp, RequestId},
    };
    use leptos::prelude::use_context;
    let parts = use_context::<http::request::Parts>();
    let meta = parts.as_ref().map_or_else(RequestMeta::default, |p| {
        let ip = p
            .extensions
            .get::<ClientIp>()
            .map(|c| c.0.to_string())
            .unwrap_or_default();
        let ua = p
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        RequestMeta::new(ip, ua)
    });
    let request_id = parts
        .as_ref()
        .and_then(|p| p.extensions.get::<RequestId>().map(|r| r.0.clone()));
    Ok(match account::ssr::current_user().await? {
        Some(user) => Actor::user(user, Surface::ServerFn, meta, request_id),
        None => Actor::anonymous(Surface::ServerFn, meta, request_id),
    })
}
