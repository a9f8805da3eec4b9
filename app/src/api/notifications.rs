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

/// One select of the preference grid (category × channel). Its field is `pref.<category>.<channel>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefCell {
    pub channel: String,
    /// `default`, `off`, `immediate` or `digest`.
    pub value: String,
    /// (value, label) of each choice.
    pub options: Vec<(String, String)>,
    /// Why the select cannot be changed (locked on, or set by an administrator).
    pub locked: Option<String>,
    /// A remark under the select (an unsubscribe link turned it off).
    pub note: Option<String>,
}

/// One category's row of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefRow {
    pub category: String,
    pub label: String,
    pub cells: Vec<PrefCell>,
    /// A remark for the whole row (critical events always arrive).
    pub note: Option<String>,
}

/// One per-event override (an event type on one channel, for every run). Its fields are
/// `override.<i>.event`, `override.<i>.channel` and `override.<i>.mode` (`remove` drops it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideRow {
    pub event_type: String,
    /// The event type's name for people, with its category.
    pub label: String,
    pub channel: String,
    /// `off`, `immediate` or `digest`.
    pub mode: String,
}

/// The preferences form: the grid, the per-event overrides, quiet hours and the digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefsView {
    /// (name, label) of the channels, the grid's columns.
    pub channels: Vec<(String, String)>,
    pub rows: Vec<PrefRow>,
    /// The user's per-event overrides.
    pub overrides: Vec<OverrideRow>,
    /// (name, label) of the event types an override may name (the catalogue's, grouped by category).
    pub event_types: Vec<(String, String)>,
    /// The stored rules neither the grid nor the overrides show (per run, administrators', wildcards), sent
    /// back unchanged as JSON so that saving the form keeps them.
    pub keep: String,
    pub quiet_enabled: bool,
    pub quiet_start: String,
    pub quiet_end: String,
    pub quiet_action: String,
    pub digest_frequency: String,
    pub digest_weekday: u8,
    pub digest_time: String,
}

/// Everything the settings page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsView {
    pub prefs: PrefsView,
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
pub(crate) mod ssr {
    use backend::{
        Ctx, Error,
        auth::{Role, users::format_time},
        notify::{Category, Mode, email, inapp, prefs, unsubscribe, webhook},
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
        // One query for both (every page asks).
        let inapp::HeaderSummary {
            unread,
            undeliverable,
        } = inapp::header_summary(&ctx, &actor).await?;
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
    pub(crate) fn take_cookie(name: &str) -> Option<String> {
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
        let undeliverable = email::address_undeliverable(&ctx, &actor).await?;
        let stored = prefs::get(&ctx, &actor).await?;
        let prefs = prefs_view(stored, user.role == Role::Admin);
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
            prefs,
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

    fn mode_label(m: Mode) -> &'static str {
        match m {
            Mode::Off => "Off",
            Mode::Immediate => "Immediately",
            Mode::Digest => "In the digest",
        }
    }

    /// The grid of category × channel selects from the catalogue and the stored preferences.
    fn prefs_view(p: prefs::Preferences, admin: bool) -> PrefsView {
        use prefs::RuleSource;
        let cat = prefs::catalogue();
        let shown: Vec<_> = cat
            .categories
            .iter()
            .filter(|c| admin || c.name != Category::Admin)
            .filter(|c| cat.types.iter().any(|t| t.category == c.name))
            .collect();
        // A grid cell's rule: a category, every event, one channel, every run.
        let cell_rule = |category: &str, channel: &str| {
            p.rules.iter().find(|r| {
                r.category == category
                    && r.event_type == "*"
                    && r.channel == channel
                    && r.paper_run_id.is_none()
            })
        };
        let in_grid = |r: &prefs::RuleDoc| {
            r.event_type == "*"
                && r.paper_run_id.is_none()
                && r.channel != "*"
                && r.source != RuleSource::Admin
                && shown.iter().any(|c| c.name.as_str() == r.category)
        };
        let rows = shown
            .iter()
            .map(|c| {
                let types: Vec<_> = cat.types.iter().filter(|t| t.category == c.name).collect();
                let cells = cat
                    .channels
                    .iter()
                    .map(|ch| {
                        let chan = ch.name.as_str();
                        let defaults: Vec<Mode> =
                            types.iter().filter_map(|t| t.defaults.get(chan).copied()).collect();
                        let default_label = match defaults.first() {
                            Some(&d) if defaults.iter().all(|&m| m == d) => {
                                format!("Default ({})", mode_label(d).to_lowercase())
                            }
                            _ => "Default (depends on the event)".to_owned(),
                        };
                        let mut options = vec![("default".to_owned(), default_label)];
                        options.extend(
                            ch.modes
                                .iter()
                                .map(|m| (m.as_str().to_owned(), mode_label(*m).to_owned())),
                        );
                        if c.locked.contains(&ch.name) {
                            return PrefCell {
                                channel: chan.to_owned(),
                                value: "immediate".to_owned(),
                                options: vec![("immediate".to_owned(), "Immediately".to_owned())],
                                locked: Some(format!(
                                    "{} messages are always sent by {}.",
                                    c.label,
                                    ch.label.to_lowercase()
                                )),
                                note: None,
                            };
                        }
                        let rule = cell_rule(c.name.as_str(), chan);
                        let (value, locked, note) = match rule {
                            Some(r) if r.source == RuleSource::Admin => (
                                r.mode.as_str().to_owned(),
                                Some("Set by an administrator.".to_owned()),
                                None,
                            ),
                            Some(r) if r.source == RuleSource::Unsubscribe => (
                                "off".to_owned(),
                                None,
                                Some("Turned off by an unsubscribe link in an email.".to_owned()),
                            ),
                            Some(r) => (r.mode.as_str().to_owned(), None, None),
                            None => ("default".to_owned(), None, None),
                        };
                        PrefCell {
                            channel: chan.to_owned(),
                            value,
                            options,
                            locked,
                            note,
                        }
                    })
                    .collect();
                PrefRow {
                    category: c.name.as_str().to_owned(),
                    label: c.label.clone(),
                    cells,
                    note: types.iter().any(|t| t.critical).then(|| {
                        "Critical events of this category always arrive in-app and by email, at once."
                            .to_owned()
                    }),
                }
            })
            .collect();
        // An override: the user's own rule for one event type on one channel, for every run.
        let is_override = |r: &prefs::RuleDoc| {
            r.event_type != "*"
                && r.paper_run_id.is_none()
                && r.channel != "*"
                && r.source == RuleSource::User
        };
        let type_label = |name: &str| {
            cat.types.iter().find(|t| t.name == name).map_or_else(
                || name.to_owned(),
                |t| format!("{} · {}", category_label(t.category.as_str()), t.label),
            )
        };
        let overrides = p
            .rules
            .iter()
            .filter(|r| is_override(r))
            .map(|r| OverrideRow {
                event_type: r.event_type.clone(),
                label: type_label(&r.event_type),
                channel: r.channel.clone(),
                mode: r.mode.as_str().to_owned(),
            })
            .collect();
        let event_types = cat
            .types
            .iter()
            .filter(|t| shown.iter().any(|c| c.name == t.category))
            .map(|t| (t.name.clone(), type_label(&t.name)))
            .collect();
        let keep: Vec<&prefs::RuleDoc> = p
            .rules
            .iter()
            .filter(|r| !in_grid(r) && !is_override(r))
            .collect();
        PrefsView {
            channels: cat
                .channels
                .iter()
                .map(|c| (c.name.as_str().to_owned(), c.label.clone()))
                .collect(),
            rows,
            overrides,
            event_types,
            keep: serde_json::to_string(&keep).unwrap_or_else(|_| "[]".to_owned()),
            quiet_enabled: p.quiet_hours.enabled,
            quiet_start: p.quiet_hours.start,
            quiet_end: p.quiet_hours.end,
            quiet_action: p.quiet_hours.action.as_str().to_owned(),
            digest_frequency: p.digest.frequency.as_str().to_owned(),
            digest_weekday: p.digest.weekday,
            digest_time: p.digest.time,
        }
    }

    pub async fn preview(t: String) -> Result<Option<UnsubscribeView>, AppError> {
        if t.is_empty() || t.len() > 200 {
            return Ok(None);
        }
        let ctx = expect_context::<Ctx>();
        match unsubscribe::preview(&ctx, &t).await {
            Ok(p) => Ok(Some(UnsubscribeView {
                category: p
                    .categories
                    .iter()
                    .map(|c| category_label(c.as_str()))
                    .collect::<Vec<_>>()
                    .join(" and "),
                masked_email: p.masked_email,
            })),
            Err(Error::Invalid { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
