//! The admin notifications page's data (`/admin/notifications?email=…`): one user, found by email address,
//! with the undeliverable mark of their address and their recent deliveries. One read action,
//! `backend::notify::admin::user_notifications`, decides who may see it (admins); the page's changes (send a
//! test, clear the mark) are HTML form posts handled in `server::routes::notifications`.

use leptos::{prelude::*, server_fn::codec::GetUrl};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One delivery as the admin page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    /// `backtest.finished`, `notification.batch` or an account mail's template.
    pub event_type: String,
    pub category: String,
    /// `email`, or `webhook <id>`.
    pub channel: String,
    pub status: String,
    pub reason: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// The user the admin looked up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminUserView {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub disabled: bool,
    pub email_verified: bool,
    /// Why the address is marked undeliverable (`None`: it is not).
    pub undeliverable: Option<String>,
    pub deliveries: Vec<DeliveryRow>,
    /// More deliveries than the page shows (the CLI and the REST API page through them).
    pub more: bool,
}

/// Everything the admin page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminNotificationsView {
    /// The address asked for (trimmed; empty: only the search form).
    pub email: String,
    /// `None` when nothing was asked for or no account has the address.
    pub user: Option<AdminUserView>,
    /// The refused field and its message after a form post.
    pub form_error: Option<(String, String)>,
}

/// A user's notification deliveries for an admin; refused (403) for everyone else.
#[server(endpoint = "admin_notifications", input = GetUrl)]
pub async fn get_admin_notifications(email: String) -> Result<AdminNotificationsView, AppError> {
    ssr::view(email).await
}

#[cfg(feature = "ssr")]
mod ssr {
    use backend::{
        Ctx,
        auth::users::format_time,
        notify::{admin, log},
    };
    use leptos::prelude::*;

    use super::*;
    use crate::api::{actor, notifications::ssr::take_cookie};

    /// Rows the page shows (the newest).
    const ROWS: i64 = 100;

    pub async fn view(email: String) -> Result<AdminNotificationsView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let found = admin::user_notifications(
            &ctx,
            &actor,
            &email,
            log::Query {
                limit: Some(ROWS),
                ..log::Query::default()
            },
        )
        .await?;
        let tz = actor
            .auth_user()
            .map_or_else(|| "UTC".to_owned(), |u| u.time_zone.clone());
        let user = found.map(|u| AdminUserView {
            user_id: u.user_id.to_string(),
            email: u.email,
            display_name: u.display_name,
            disabled: u.disabled,
            email_verified: u.email_verified,
            undeliverable: u.undeliverable.map(|m| {
                let code = m.smtp_code.map(|c| format!(" ({c})")).unwrap_or_default();
                let detail = m
                    .smtp_message
                    .map(|t| format!(": {}", t.chars().take(300).collect::<String>()))
                    .unwrap_or_default();
                format!(
                    "{}{code} since {}{detail}",
                    if m.reason == "manual" {
                        "marked by an operator"
                    } else {
                        "refused by the mail server"
                    },
                    format_time(m.since, &tz)
                )
            }),
            more: u.deliveries.next_before.is_some(),
            deliveries: u
                .deliveries
                .items
                .into_iter()
                .map(|d| DeliveryRow {
                    id: d.id.to_string(),
                    event_type: d.event_type.unwrap_or_default(),
                    category: d.category,
                    channel: d
                        .webhook_id
                        .map_or_else(|| d.channel.clone(), |w| format!("{} {w}", d.channel)),
                    status: d.status,
                    reason: d.reason,
                    attempts: d.attempts,
                    last_error: d.last_error,
                    created_at: format_time(d.created_at, &tz),
                    sent_at: d.sent_at.map(|t| format_time(t, &tz)),
                })
                .collect(),
        });
        let form_error = take_cookie(backend::web::FORM_ERROR_COOKIE)
            .and_then(|json| serde_json::from_str::<(String, String)>(&json).ok());
        Ok(AdminNotificationsView {
            email: email.trim().chars().take(admin::MAX_EMAIL_LEN).collect(),
            user,
            form_error,
        })
    }
}
