//! The in-app centre's and the settings page's form posts (no JavaScript needed): open a notification, mark
//! all read, and manage webhooks. Each calls one `backend::notify` action and answers with Post/Redirect/Get.
//! A refused input goes back to the settings page with its field and message in the short-lived form-error
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

/// Back to the settings page with the refused field and its message (short-lived cookie) and a flash code.
fn back_with_error(state: &AppState, flash: Flash, field: &str, message: &str) -> Response {
    let mut resp = to(&flash.redirect_to(SETTINGS));
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
            back_with_error(state, Flash::WebhookInvalid, &field, &message)
        }
        e @ (Error::Limit(_) | Error::Conflict(_) | Error::EmailUnconfirmed) => {
            back_with_error(state, Flash::WebhookInvalid, e.code(), &e.message())
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
/// (`default` = no rule), the rules the grid does not show (`keep`, JSON as the page rendered them), quiet
/// hours and the digest. Validation (categories, channels, locks, times) is the action's.
fn preferences(fields: &[(String, String)]) -> Result<prefs::Preferences, Error> {
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
    }
    Ok(prefs::Preferences {
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
    })
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
    let outcome = match preferences(&fields) {
        Ok(doc) => prefs::put(&state.ctx, &actor, doc).await.map(drop),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(to(&Flash::PrefsSaved.redirect_to(SETTINGS))),
        Err(Error::Invalid { field, message }) => Ok(back_with_error(
            &state,
            Flash::PrefsInvalid,
            &field,
            &message,
        )),
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
