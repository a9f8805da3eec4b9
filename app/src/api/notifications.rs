//! Notification data for the header bell, the in-app centre, the settings page and the unsubscribe page
//! (reads only; every change is an HTML form post handled in `server::routes::notifications`). Each function
//! takes its actor from [`crate::api::actor`] and calls one `backend::notify` action, which decides.

use leptos::{prelude::*, server_fn::codec::GetUrl};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The short-lived cookie that carries a generic webhook's new signing secret from the form post to the
/// settings page, which shows it once and deletes it.
pub const WEBHOOK_SECRET_COOKIE: &str = "vortex_webhook_secret";

/// What the header shows for a signed-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub unread: i64,
    /// The user's address is marked undeliverable (the relay refused it permanently).
    pub undeliverable: bool,
}

/// One notification as the centre lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub seq: i64,
    pub category: String,
    pub critical: bool,
    pub title: String,
    pub body: String,
    pub has_url: bool,
    pub read: bool,
    pub at: String,
}

/// A page of the centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListView {
    pub items: Vec<Item>,
    pub next_before: Option<i64>,
    /// The newest `seq` on this page ("mark all read" stops there).
    pub newest: Option<i64>,
    pub unread: i64,
}

/// A webhook as the settings page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub url_hint: String,
    pub categories: Vec<String>,
    /// `active`, or `disabled (<reason>)`.
    pub status: String,
    pub disabled: bool,
    pub last_result: String,
}

/// Everything the settings page shows besides the preference grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsView {
    pub email: String,
    pub email_verified: bool,
    pub undeliverable: bool,
    pub time_zone: String,
    pub webhooks: Vec<WebhookView>,
    /// A generic webhook's new signing secret: shown once.
    pub new_secret: Option<String>,
    /// The refused field and its message after a form post.
    pub form_error: Option<(String, String)>,
    /// Category names (for the webhook form).
    pub categories: Vec<(String, String)>,
}

/// What the unsubscribe page shows for a genuine link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnsubscribeView {
    pub category: String,
    pub masked_email: String,
}

/// A category's name for people.
pub fn category_label(c: &str) -> &'static str {
    match c {
        "backtests" => "Backtests",
        "paper" => "Paper trading",
        "risk" => "Risk",
        "billing" => "Billing",
        "security" => "Security",
        "account" => "Account",
        "admin" => "Administration",
        "system" => "System",
        "digest" => "Digest",
        _ => "Other",
    }
}

/// The header's unread count and undeliverable flag; `None` when nobody is signed in.
#[server(endpoint = "notification_summary", input = GetUrl)]
pub async fn notification_summary() -> Result<Option<Summary>, AppError> {
    ssr::summary().await
}

/// One page of the signed-in user's notifications, newest first.
#[server(endpoint = "notifications", input = GetUrl)]
pub async fn get_notifications(
    unread_only: bool,
    before: Option<i64>,
) -> Result<ListView, AppError> {
    ssr::list(unread_only, before).await
}

/// The settings page's data (email status, time zone, webhooks).
#[server(endpoint = "notification_settings", input = GetUrl)]
pub async fn get_notification_settings() -> Result<SettingsView, AppError> {
    ssr::settings().await
}

/// The category and masked address of an unsubscribe link; `None` for a link that is not valid. Changes
/// nothing.
#[server(endpoint = "unsubscribe_preview", input = GetUrl)]
pub async fn unsubscribe_preview(t: String) -> Result<Option<UnsubscribeView>, AppError> {
    ssr::preview(t).await
}

#[cfg(feature = "ssr")]
mod ssr {
    use backend::{
        Ctx, Error,
        auth::users::format_time,
        notify::{Category, email, inapp, unsubscribe, webhook},
    };
    use leptos::prelude::*;

    use super::*;
    use crate::api::actor;

    pub async fn summary() -> Result<Option<Summary>, AppError> {
        let actor = actor().await?;
        if actor.auth_user().is_none() {
            return Ok(None);
        }
        let ctx = expect_context::<Ctx>();
        let unread = inapp::unread_count(&ctx, &actor).await?;
        let undeliverable = email::undeliverable(&ctx, &actor).await?;
        Ok(Some(Summary {
            unread,
            undeliverable,
        }))
    }

    pub async fn list(unread_only: bool, before: Option<i64>) -> Result<ListView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let tz = actor
            .auth_user()
            .map_or_else(|| "UTC".to_owned(), |u| u.time_zone.clone());
        let page = inapp::list(
            &ctx,
            &actor,
            inapp::ListQuery {
                unread: unread_only,
                before,
                limit: None,
            },
        )
        .await?;
        let unread = inapp::unread_count(&ctx, &actor).await?;
        Ok(ListView {
            newest: page.items.first().map(|n| n.seq),
            next_before: page.next_before,
            items: page
                .items
                .into_iter()
                .map(|n| Item {
                    id: n.id.to_string(),
                    seq: n.seq,
                    category: n.category,
                    critical: n.critical,
                    title: n.title,
                    body: n.body,
                    has_url: n.url.is_some(),
                    read: n.read_at.is_some(),
                    at: format_time(n.created_at, &tz),
                })
                .collect(),
            unread,
        })
    }

    /// Reads a short-lived cookie set by a form handler, and deletes it (shown once).
    fn take_cookie(name: &str) -> Option<String> {
        let ctx = expect_context::<Ctx>();
        let parts = use_context::<http::request::Parts>()?;
        let raw = backend::web::read_cookie(&parts.headers, name)?;
        let value = backend::web::decode_flash(raw);
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>()
            && let Ok(h) = http::HeaderValue::from_str(&backend::auth::session::clear_cookie(
                &ctx.settings,
                name,
            ))
        {
            resp.append_header(http::header::SET_COOKIE, h);
        }
        value
    }

    pub async fn settings() -> Result<SettingsView, AppError> {
        let actor = actor().await?;
        let user = actor.reader().map_err(AppError::from)?.clone();
        let ctx = expect_context::<Ctx>();
        let tz = user.time_zone.clone();
        let undeliverable = email::undeliverable(&ctx, &actor).await?;
        let hooks = webhook::list(&ctx, &actor).await?;
        let when = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| format_time(t, &tz));
        let webhooks = hooks
            .into_iter()
            .map(|w| {
                let last_result = match (when(w.last_success_at), when(w.last_failure_at)) {
                    (None, None) => "nothing sent yet".to_owned(),
                    (Some(ok), None) => format!("delivered {ok}"),
                    (None, Some(bad)) => {
                        format!("failed {bad} ({} in a row)", w.consecutive_failures)
                    }
                    (Some(ok), Some(bad)) => {
                        if w.last_success_at >= w.last_failure_at {
                            format!("delivered {ok}")
                        } else {
                            format!("failed {bad} ({} in a row)", w.consecutive_failures)
                        }
                    }
                };
                WebhookView {
                    id: w.id.to_string(),
                    name: w.name,
                    kind: w.kind,
                    url_hint: w.url_hint,
                    categories: w.categories,
                    status: match (&w.disabled_at, w.disabled_reason.as_deref()) {
                        (None, _) => "active".to_owned(),
                        (Some(_), Some("gone")) => {
                            "disabled: the receiver said it no longer exists".to_owned()
                        }
                        (Some(_), Some("failing")) => "disabled after repeated failures".to_owned(),
                        (Some(_), _) => "disabled".to_owned(),
                    },
                    disabled: w.disabled_at.is_some(),
                    last_result,
                }
            })
            .collect();
        let new_secret = take_cookie(super::WEBHOOK_SECRET_COOKIE)
            .filter(|s| s.starts_with("whsec_") && s.len() <= 100);
        let form_error = take_cookie(backend::web::FORM_ERROR_COOKIE)
            .and_then(|json| serde_json::from_str::<(String, String)>(&json).ok());
        Ok(SettingsView {
            email: user.email.clone(),
            email_verified: user.email_verified,
            undeliverable,
            time_zone: tz,
            webhooks,
            new_secret,
            form_error,
            categories: Category::ALL
                .into_iter()
                .map(|c| (c.as_str().to_owned(), category_label(c.as_str()).to_owned()))
                .collect(),
        })
    }

    pub async fn preview(t: String) -> Result<Option<UnsubscribeView>, AppError> {
        if t.is_empty() || t.len() > 200 {
            return Ok(None);
        }
        let ctx = expect_context::<Ctx>();
        match unsubscribe::preview(&ctx, &t).await {
            Ok(p) => Ok(Some(UnsubscribeView {
                category: category_label(p.category.as_str()).to_owned(),
                masked_email: p.masked_email,
            })),
            Err(Error::Invalid { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
