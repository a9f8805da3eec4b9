//! The in-app centre's and the settings page's form posts (no JavaScript needed): open a notification, mark
//! all read, save the preferences (grid, per-event overrides, quiet hours, digest), and manage webhooks. Each
//! calls one `backend::notify` action and answers with Post/Redirect/Get. A refused input goes back to the settings page with its field and message in the short-lived form-error
//! cookie (as the run form does); a generic webhook's new secret travels once in its own short-lived
//! HttpOnly cookie, which the settings page shows and deletes.

use app::{api::notifications::WEBHOOK_SECRET_COOKIE, flash::Flash};
use axum::{
    Form,
    extract::{Path, State},
    http::{HeaderValue, header},
    response::Response,
};
use backend::{
    Error,
    notify::{Mode, email, inapp, prefs, webhook},
};
use serde::Deserialize;
use serde_json::json;

use super::{page, parse_id, to};
use crate::{error::HtmlResult, extract::WebActor, state::AppState};

const SETTINGS: &str = "/notifications/settings";

/// Back to the settings page's webhooks section with a flash code.
fn to_webhooks(flash: Flash) -> Response {
    to(&format!("{}#webhooks", flash.redirect_to(SETTINGS)))
}

/// `POST /notifications/{id}/open`: marks it read and goes where it leads.
pub(super) async fn open(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    let url = inapp::open(&state.ctx, &actor, id).await.map_err(page)?;
    // A path on this site only (never `//host` or a backslash trick), whatever the row holds.
    let safe = url.starts_with('/')
        && !url.starts_with("//")
        && url
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.~?=&%:+".contains(c));
    Ok(to(if safe { &url } else { "/notifications" }))
}

#[derive(Debug, Deserialize)]
pub(super) struct ReadAllForm {
    /// The newest `seq` the list showed: what arrived later stays unread.
    #[serde(default)]
    up_to: String,
    /// `unread` to go back to the unread filter.
    #[serde(default)]
    filter: String,
}

/// `POST /notifications/read-all`.
pub(super) async fn read_all(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(form): Form<ReadAllForm>,
) -> HtmlResult {
    let up_to = match form.up_to.trim() {
        "" => None,
        v => Some(v.parse::<i64>().map_err(|_| Error::Invalid {
            field: "up_to".into(),
            message: format!(
                "`{}` is not a position in the list",
                v.chars().take(20).collect::<String>()
            ),
        })?),
    };
    inapp::mark_all_read(&state.ctx, &actor, up_to)
        .await
        .map_err(page)?;
    let back = if form.filter == "unread" {
        "/notifications?filter=unread"
    } else {
        "/notifications"
    };
    Ok(to(&Flash::AllRead.redirect_to(back)))
}

/// Back to the settings page (at `anchor`) with the refused field and its message (short-lived cookie) and a
/// flash code.
fn back_with_error(
    state: &AppState,
    flash: Flash,
    anchor: &str,
    field: &str,
    message: &str,
) -> Response {
    let mut resp = to(&format!("{}{anchor}", flash.redirect_to(SETTINGS)));
    let field: String = field.chars().take(40).collect();
    let message: String = message.chars().take(400).collect();
    let value = backend::web::encode_flash(&json!([field, message]).to_string());
    let cookie = backend::auth::session::cookie(
        &state.ctx.settings,
        backend::web::FORM_ERROR_COOKIE,
        &value,
        std::time::Duration::from_secs(120),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// A webhook action's refusal: input and state problems back on the page, the rest as an error page.
fn webhook_refusal(state: &AppState, e: Error) -> Response {
    match e {
        Error::Invalid { field, message } => {
            back_with_error(state, Flash::WebhookInvalid, "", &field, &message)
        }
        e @ (Error::Limit(_) | Error::Conflict(_) | Error::EmailUnconfirmed) => {
            back_with_error(state, Flash::WebhookInvalid, "", e.code(), &e.message())
        }
        e => page(e).0,
    }
}

/// The new generic secret, once, in a short-lived HttpOnly cookie the settings page reads and deletes.
fn with_secret(state: &AppState, mut resp: Response, secret: &str) -> Response {
    let cookie = backend::auth::session::cookie(
        &state.ctx.settings,
        WEBHOOK_SECRET_COOKIE,
        &backend::web::encode_flash(secret),
        std::time::Duration::from_secs(120),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /notifications/webhooks`: name, kind, url and the ticked categories.
pub(super) async fn webhook_create(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(fields): Form<Vec<(String, String)>>,
) -> HtmlResult {
    let get = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let categories: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "categories")
        .take(32)
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    let new = webhook::NewWebhook {
        name: get("name"),
        kind: get("kind"),
        url: get("url"),
        categories,
    };
    match webhook::create(&state.ctx, &actor, new).await {
        Ok(created) => {
            let resp = to_webhooks(Flash::WebhookCreated);
            Ok(match created.secret {
                Some(s) => with_secret(&state, resp, &s),
                None => resp,
            })
        }
        Err(e) => Ok(webhook_refusal(&state, e)),
    }
}

/// `POST /notifications/webhooks/{id}/test`: one signed request now.
pub(super) async fn webhook_test(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    match webhook::test(&state.ctx, &actor, id).await {
        Ok(outcome) if outcome.ok => Ok(to_webhooks(Flash::WebhookTestOk)),
        Ok(outcome) => {
            let detail = match (outcome.http_status, outcome.error) {
                (Some(s), _) => format!("the receiver answered HTTP {s}"),
                (None, Some(e)) => e,
                (None, None) => "the receiver did not answer".to_owned(),
            };
            Ok(back_with_error(
                &state,
                Flash::WebhookTestFailed,
                "",
                "webhook",
                &detail,
            ))
        }
        Err(e) => Ok(webhook_refusal(&state, e)),
    }
}

/// `POST /notifications/webhooks/{id}/enable`: after it was disabled (the URL is vetted again).
pub(super) async fn webhook_enable(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    match webhook::enable(&state.ctx, &actor, id).await {
        Ok(()) => Ok(to_webhooks(Flash::WebhookEnabled)),
        Err(e) => Ok(webhook_refusal(&state, e)),
    }
}

/// `POST /notifications/webhooks/{id}/rotate`: a new signing secret (generic only), shown once.
pub(super) async fn webhook_rotate(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    match webhook::rotate_secret(&state.ctx, &actor, id).await {
        Ok(secret) => Ok(with_secret(
            &state,
            to_webhooks(Flash::WebhookRotated),
            &secret,
        )),
        Err(e) => Ok(webhook_refusal(&state, e)),
    }
}

/// `POST /notifications/webhooks/{id}/delete`.
pub(super) async fn webhook_delete(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    webhook::delete(&state.ctx, &actor, id)
        .await
        .map_err(page)?;
    Ok(to_webhooks(Flash::WebhookDeleted))
}

/// Builds the preferences document from the settings form: the grid's `pref.<category>.<channel>` selects
/// (`default` = no rule), the per-event overrides (`override.<i>.event|channel|mode`, `remove` = no rule;
/// `override.new.*` adds one), the rules the form does not show (`keep`, JSON as the page rendered them), quiet
/// hours and the digest. Validation (categories, event types, channels, locks, times) is the action's.
/// Returns the document and, for each of its rules, the form field it came from ([`form_field`]).
fn preferences(fields: &[(String, String)]) -> Result<(prefs::Preferences, Vec<String>), Error> {
    let get = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let keep = get("keep");
    let mut rules: Vec<prefs::RuleDoc> = if keep.is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(&keep).map_err(|_| Error::Invalid {
            field: "keep".into(),
            message: "the form's kept rules are not valid; reload the page and try again".into(),
        })?
    };
    let mut origins = vec!["keep".to_owned(); rules.len()];
    for (k, v) in fields {
        let Some(cell) = k.strip_prefix("pref.") else {
            continue;
        };
        if rules.len() > prefs::MAX_RULES {
            break; // the action refuses it with its own message
        }
        let Some((category, channel)) = cell.split_once('.') else {
            return Err(Error::invalid(
                "pref",
                format!("`{}` is not a grid cell", clip(k)),
            ));
        };
        let v = v.trim();
        if v == "default" {
            continue;
        }
        let mode = Mode::parse(v).ok_or_else(|| {
            Error::invalid(
                &format!("{category}.{channel}"),
                format!("`{}` is not off, immediate or digest", clip(v)),
            )
        })?;
        rules.push(prefs::RuleDoc {
            category: category.to_owned(),
            event_type: "*".to_owned(),
            channel: channel.to_owned(),
            mode,
            paper_run_id: None,
            source: prefs::RuleSource::User,
        });
        origins.push(format!("pref.{category}.{channel}"));
    }
    for (row, o) in overrides(fields)? {
        if rules.len() > prefs::MAX_RULES {
            break;
        }
        let field = format!("override.{row}");
        if o.event.is_empty() || o.mode == "remove" {
            continue; // the unused "add" row, or a removed override
        }
        let mode = Mode::parse(o.mode).ok_or_else(|| {
            Error::invalid(
                &format!("{field}.mode"),
                format!("`{}` is not off, immediate, digest or remove", clip(o.mode)),
            )
        })?;
        rules.push(prefs::RuleDoc {
            category: "*".to_owned(),
            event_type: o.event.to_owned(),
            channel: o.channel.to_owned(),
            mode,
            paper_run_id: None,
            source: prefs::RuleSource::User,
        });
        origins.push(field);
    }
    let doc = prefs::Preferences {
        rules,
        quiet_hours: prefs::QuietHours {
            enabled: get("quiet_enabled") == "on",
            start: get("quiet_start"),
            end: get("quiet_end"),
            action: prefs::QuietAction::parse(&get("quiet_action")).ok_or_else(|| {
                Error::invalid(
                    "quiet_hours.action",
                    "choose what happens after quiet hours",
                )
            })?,
        },
        digest: prefs::DigestDoc {
            frequency: backend::notify::schedule::Frequency::parse(&get("digest_frequency"))
                .ok_or_else(|| Error::invalid("digest.frequency", "off, daily or weekly"))?,
            weekday: get("digest_weekday").parse().map_err(|_| {
                Error::invalid("digest.weekday", "a weekday from 1 (Monday) to 7 (Sunday)")
            })?,
            time: get("digest_time"),
        },
        time_zone: String::new(),
    };
    Ok((doc, origins))
}

/// One override row of the form.
#[derive(Debug, Default)]
struct OverrideFields<'a> {
    event: &'a str,
    channel: &'a str,
    mode: &'a str,
}

/// The override rows of the form (`override.<i>.<part>`), the listed ones in order and then `new`.
fn overrides(fields: &[(String, String)]) -> Result<Vec<(String, OverrideFields<'_>)>, Error> {
    let mut rows: std::collections::BTreeMap<(bool, u16), OverrideFields<'_>> =
        std::collections::BTreeMap::new();
    for (k, v) in fields {
        let Some(rest) = k.strip_prefix("override.") else {
            continue;
        };
        let bad = || {
            Error::invalid(
                "override",
                format!("`{}` is not a field of an override", clip(k)),
            )
        };
        let (row, part) = rest.split_once('.').ok_or_else(bad)?;
        let key = match row {
            "new" => (true, 0),
            n => (false, n.parse::<u16>().map_err(|_| bad())?),
        };
        if !rows.contains_key(&key) && rows.len() > prefs::MAX_RULES {
            return Err(Error::invalid(
                "override",
                format!("at most {} overrides", prefs::MAX_RULES),
            ));
        }
        let o = rows.entry(key).or_default();
        let v = v.trim();
        match part {
            "event" => o.event = v,
            "channel" => o.channel = v,
            "mode" => o.mode = v,
            _ => return Err(bad()),
        }
    }
    Ok(rows
        .into_iter()
        .map(|((new, i), o)| (if new { "new".to_owned() } else { i.to_string() }, o))
        .collect())
}

/// The form field a refusal of the action names: `rules[<i>].<part>` becomes the field of the rule's origin
/// (`pref.<category>.<channel>` for a grid cell, `override.<i>.<part>` for an override), so the page shows the
/// message where the choice was made. Other fields stay as they are.
fn form_field(field: &str, origins: &[String]) -> String {
    let Some((i, part)) = field.strip_prefix("rules[").and_then(|r| r.split_once(']')) else {
        return field.to_owned();
    };
    let Some(origin) = i.parse::<usize>().ok().and_then(|i| origins.get(i)) else {
        return field.to_owned();
    };
    if origin.starts_with("pref.") {
        origin.clone()
    } else if origin.starts_with("override.") {
        let part = match part.trim_start_matches('.') {
            "" => "",
            "event_type" | "category" => ".event",
            "channel" => ".channel",
            _ => ".mode",
        };
        format!("{origin}{part}")
    } else {
        field.to_owned()
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// `POST /notifications/settings`: the preference grid, quiet hours and digest, saved as one document.
pub(super) async fn save_prefs(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(fields): Form<Vec<(String, String)>>,
) -> HtmlResult {
    let (outcome, origins) = match preferences(&fields) {
        Ok((doc, origins)) => (prefs::put(&state.ctx, &actor, doc).await.map(drop), origins),
        Err(e) => (Err(e), Vec::new()),
    };
    match outcome {
        Ok(()) => Ok(to(&Flash::PrefsSaved.redirect_to(SETTINGS))),
        Err(Error::Invalid { field, message }) => {
            let field = form_field(&field, &origins);
            // A refused override: straight to its row.
            let anchor = if field.starts_with("override.") {
                "#overrides"
            } else {
                ""
            };
            Ok(back_with_error(
                &state,
                Flash::PrefsInvalid,
                anchor,
                &field,
                &message,
            ))
        }
        Err(e) => Err(page(e)),
    }
}

/// `POST /notifications/email/retry`: clears the undeliverable mark of the user's address (a few times a day)
/// and sends a test notification to check it.
pub(super) async fn email_retry(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
) -> HtmlResult {
    email::clear_undeliverable(&state.ctx, &actor)
        .await
        .map_err(page)?;
    Ok(to(&format!(
        "{}#email",
        Flash::EmailRetried.redirect_to(SETTINGS)
    )))
}
