//! Account data for the pages (reads only; all changes go through the HTML form handlers in `server`). Each
//! function takes its actor from [`crate::api::actor`] and calls the `backend::account` action, which decides.

use leptos::{prelude::*, server_fn::codec::GetUrl};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The signed-in user as the header shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Viewer {
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub email_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub public_id: String,
    pub device: String,
    pub ip: String,
    pub created: String,
    pub last_seen: String,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub prefix: String,
    pub expires: String,
    pub last_used: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub event: String,
    pub ip: String,
    pub device: String,
    pub at: String,
}

/// Two-factor sign-in as the account page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoFactorView {
    pub enabled: bool,
    pub enabled_at: String,
    pub recovery_codes_left: i64,
    /// A pending enrolment: the base32 secret and the `otpauth://` URI.
    pub pending_secret: Option<String>,
    pub pending_uri: Option<String>,
    /// An administrator who must turn it on before anything else.
    pub required: bool,
    /// Just-made recovery codes: shown once.
    pub new_codes: Option<Vec<String>>,
}

/// Everything the account page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    pub viewer: Viewer,
    pub time_zone: String,
    pub sessions: Vec<SessionView>,
    pub tokens: Vec<TokenView>,
    pub events: Vec<EventView>,
    /// A just-created API token's secret: shown once.
    pub new_token: Option<String>,
    pub two_factor: TwoFactorView,
}

/// The signed-in user, if any.
#[server(endpoint = "viewer", input = GetUrl)]
pub async fn get_viewer() -> Result<Option<Viewer>, AppError> {
    let actor = crate::api::actor().await?;
    Ok(backend::account::profile::me(&actor).ok().map(ssr::viewer))
}

/// The account page's data; anonymous visitors are sent to the sign-in page.
#[server(endpoint = "account", input = GetUrl)]
pub async fn get_account() -> Result<AccountView, AppError> {
    ssr::account().await
}

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use backend::{
        Ctx,
        account::{events, profile, sessions, tokens, two_factor},
        auth::{AuthUser, api_token, session},
    };
    use chrono::{DateTime, Utc};
    use leptos::prelude::*;

    use super::*;

    /// The user of the current request's session cookie.
    pub async fn current_user() -> Result<Option<AuthUser>, AppError> {
        let ctx = expect_context::<Ctx>();
        let Some(parts) = use_context::<http::request::Parts>() else {
            return Ok(None);
        };
        let Some(token) = session::read_cookie(&parts.headers, session::cookie_name(&ctx.settings))
        else {
            return Ok(None);
        };
        let lookup = || async {
            session::authenticate(&ctx.db, &ctx.keys, &ctx.settings, token)
                .await
                .map_err(|e| AppError::from(backend::Error::Db(e)))
        };
        // Once per request (the middleware shares the memo with every clone of the request's parts).
        match parts.extensions.get::<backend::web::SessionMemo>() {
            Some(memo) => memo.0.get_or_try_init(lookup).await.cloned(),
            None => lookup().await,
        }
    }

    pub fn viewer(u: &AuthUser) -> Viewer {
        Viewer {
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role.as_str().to_owned(),
            email_verified: u.email_verified,
        }
    }

    fn when(t: DateTime<Utc>, tz: &str) -> String {
        backend::auth::users::format_time(t, tz)
    }

    fn device(ua: &str) -> String {
        let short: String = ua.chars().take(60).collect();
        if short.is_empty() {
            "unknown device".into()
        } else {
            short
        }
    }

    pub async fn account() -> Result<AccountView, AppError> {
        let actor = crate::api::actor().await?;
        let user = profile::me(&actor)?;
        let ctx = expect_context::<Ctx>();
        let tz = user.time_zone.clone();
        let sessions = sessions::list(&ctx, &actor).await?;
        let tokens = tokens::list(&ctx, &actor).await?;
        let events = events::mine(&ctx, &actor, 50).await?;
        let tf = two_factor::status(&ctx, &actor).await?;
        // Just-made recovery codes travel in a short-lived cookie: show them once and delete the cookie.
        let new_codes = use_context::<http::request::Parts>().and_then(|parts| {
            session::read_cookie(&parts.headers, two_factor::codes_cookie_name(&ctx.settings))
                .and_then(two_factor::codes_from_cookie)
        });
        if new_codes.is_some()
            && let Some(resp) = use_context::<leptos_axum::ResponseOptions>()
            && let Ok(h) =
                http::HeaderValue::from_str(&two_factor::codes_cookie(&ctx.settings, &[], 0))
        {
            resp.append_header(http::header::SET_COOKIE, h);
        }
        // A freshly created token travels in a short-lived cookie; show it once and delete the cookie.
        let mut new_token = None;
        let flash = use_context::<http::request::Parts>().and_then(|parts| {
            session::read_cookie(&parts.headers, api_token::flash_cookie_name(&ctx.settings))
                .map(str::to_owned)
        });
        if let Some(v) = flash {
            if v.starts_with(api_token::PREFIX) && v.len() == api_token::PREFIX.len() + 64 {
                new_token = Some(v);
            }
            if let Some(resp) = use_context::<leptos_axum::ResponseOptions>()
                && let Ok(h) =
                    http::HeaderValue::from_str(&api_token::flash_cookie(&ctx.settings, "", 0))
            {
                resp.append_header(http::header::SET_COOKIE, h);
            }
        }
        Ok(AccountView {
            viewer: viewer(user),
            time_zone: tz.clone(),
            sessions: sessions
                .into_iter()
                .map(|s| SessionView {
                    public_id: s.public_id,
                    device: device(&s.user_agent),
                    ip: s.ip,
                    created: when(s.created_at, &tz),
                    last_seen: when(s.last_seen_at, &tz),
                    current: s.current,
                })
                .collect(),
            tokens: tokens
                .into_iter()
                .map(|t| TokenView {
                    id: t.api_token_id.to_string(),
                    name: t.name,
                    scope: t.scope.as_str().replace('_', "-"),
                    prefix: t.token_prefix,
                    expires: t
                        .expires_at
                        .map_or_else(|| "never".into(), |d| when(d, &tz)),
                    last_used: t
                        .last_used_at
                        .map_or_else(|| "never".into(), |d| when(d, &tz)),
                    created: when(t.created_at, &tz),
                })
                .collect(),
            events: events
                .into_iter()
                .map(|e| EventView {
                    event: e.event.replace('_', " "),
                    ip: e.ip,
                    device: device(&e.user_agent),
                    at: when(e.created_at, &tz),
                })
                .collect(),
            new_token,
            two_factor: TwoFactorView {
                enabled: tf.enabled,
                enabled_at: tf.enabled_at.map_or_else(String::new, |t| when(t, &tz)),
                recovery_codes_left: tf.recovery_codes_left,
                pending_secret: tf.pending.as_ref().map(|p| p.secret.clone()),
                pending_uri: tf.pending.map(|p| p.uri),
                required: tf.required,
                new_codes,
            },
        })
    }
}
