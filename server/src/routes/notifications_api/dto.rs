//! The request and response types of the notifications API: in-app notifications, webhooks, the delivery log
//! and the admin tools, with their conversions from the backend's types. Inputs are strict
//! (`deny_unknown_fields`, the `contract::de_*` helpers): an unknown field or a value of the wrong type is 400
//! naming the field.

use backend::notify::{Category, inapp, log, webhook};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::routes::contract;

/// The category names of the catalogue.
pub fn category_names() -> Vec<String> {
    Category::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}

fn category_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(category_names()))
        .description(Some("A notification category."))
        .build()
}

fn categories_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(category_schema())
        .min_items(Some(1))
        .max_items(Some(Category::ALL.len() * 2))
        .description(Some(
            "The categories this destination receives (at least one).",
        ))
        .build()
}

/// `GET /api/v1/notifications` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only unread notifications.
    #[serde(default)]
    pub unread: Option<bool>,
    /// Only notifications older than this `seq` (the previous page's `next_before`).
    #[serde(
        default,
        deserialize_with = "contract::de_range::<_, 0, 9_007_199_254_740_991>"
    )]
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub before: Option<i64>,
    /// Page size (1–100, default 50).
    #[serde(default, deserialize_with = "contract::de_range::<_, 1, 100>")]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// One in-app notification.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationOut {
    pub id: Uuid,
    /// Order (newest highest); page on with `before = next_before`.
    pub seq: i64,
    /// e.g. `backtest.finished`.
    pub event_type: String,
    pub category: String,
    pub critical: bool,
    pub title: String,
    pub body: String,
    /// A path on this site, e.g. `/backtests/<id>`.
    pub url: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<inapp::Notification> for NotificationOut {
    fn from(n: inapp::Notification) -> Self {
        Self {
            id: n.id,
            seq: n.seq,
            event_type: n.event_type,
            category: n.category,
            critical: n.critical,
            title: n.title,
            body: n.body,
            url: n.url,
            read_at: n.read_at,
            created_at: n.created_at,
        }
    }
}

/// A page of notifications, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<NotificationOut>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<i64>,
}

/// The unread count.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread: i64,
}

/// `POST /api/v1/notifications/read-all` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadAll {
    /// Only notifications up to this `seq` (what the list showed); all unread ones when absent.
    #[serde(
        default,
        deserialize_with = "contract::de_range::<_, 0, 9_007_199_254_740_991>"
    )]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub up_to: Option<i64>,
}

/// How many notifications were marked read.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedRead {
    pub marked: u64,
}

/// A webhook destination. The URL is never returned (Slack and Discord URLs are secrets), only its hint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: Uuid,
    pub name: String,
    /// `slack`, `discord` or `generic`.
    pub kind: String,
    /// e.g. `https://hooks.slack.com/…/x9Qe`.
    pub url_hint: String,
    pub categories: Vec<String>,
    /// When it was disabled (null: enabled).
    pub disabled_at: Option<DateTime<Utc>>,
    /// `gone` (410/404), `failing` (too many failures in a row) or `user`.
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<webhook::Webhook> for WebhookOut {
    fn from(w: webhook::Webhook) -> Self {
        Self {
            id: w.id,
            name: w.name,
            kind: w.kind,
            url_hint: w.url_hint,
            categories: w.categories,
            disabled_at: w.disabled_at,
            disabled_reason: w.disabled_reason,
            consecutive_failures: w.consecutive_failures,
            last_success_at: w.last_success_at,
            last_failure_at: w.last_failure_at,
            created_at: w.created_at,
        }
    }
}

/// The caller's webhooks, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookOut>,
}

fn de_kind<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if webhook::Kind::parse(&s).is_some() {
        Ok(s)
    } else {
        Err(contract::rule::<D::Error>(format!(
            "`{s}` is not a webhook kind; use slack, discord or generic"
        )))
    }
}

fn de_categories<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    let rule = |m: String| contract::rule::<D::Error>(m);
    if list.is_empty() {
        return Err(rule("choose at least one category".into()));
    }
    if list.len() > Category::ALL.len() * 2 {
        return Err(rule(format!("at most {} entries", Category::ALL.len() * 2)));
    }
    if let Some(bad) = list.iter().find(|c| Category::parse(c).is_none()) {
        return Err(rule(format!(
            "unknown category `{bad}`; use one of {}",
            category_names().join(", ")
        )));
    }
    Ok(list)
}

fn de_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let rule = |m: &str| contract::rule::<D::Error>(m);
    if s.len() > 2048 {
        return Err(rule("at most 2048 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(rule("must not contain control characters"));
    }
    Ok(s)
}

/// `POST /api/v1/notifications/webhooks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// 1–80 characters, unique among your webhooks (case-insensitive).
    #[serde(deserialize_with = "contract::de_name")]
    #[schema(value_type = String, min_length = 1, max_length = 80, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub name: Option<String>,
    /// `slack`, `discord` or `generic` (signed, Standard Webhooks).
    #[serde(deserialize_with = "de_kind")]
    #[schema(value_type = String, pattern = "^(slack|discord|generic)$")]
    pub kind: String,
    /// The destination: `https://…` (plain `http` only for hosts the operator allows). Private, loopback
    /// and link-local addresses are refused.
    #[serde(deserialize_with = "de_url")]
    #[schema(max_length = 2048, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub url: String,
    #[serde(deserialize_with = "de_categories")]
    #[schema(schema_with = categories_schema)]
    pub categories: Vec<String>,
}

/// A created webhook and, for a generic one, its signing secret (`whsec_…`), shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub webhook: WebhookOut,
    pub secret: Option<String>,
}

/// What a test request got back.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookTestResult {
    /// Whether the destination answered 2xx.
    pub ok: bool,
    /// The HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// Why not, in words (never the URL).
    pub error: Option<String>,
}

/// A new signing secret, shown this once (the old one keeps signing for 24 hours).
#[derive(Debug, Serialize, ToSchema)]
pub struct Secret {
    pub secret: String,
}

fn de_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if log::STATUSES.contains(&s.as_str()) {
        Ok(Some(s))
    } else {
        Err(contract::rule::<D::Error>(format!(
            "`{s}` is not a delivery status; use one of {}",
            log::STATUSES.join(", ")
        )))
    }
}

/// The cursor of the delivery log: `<microseconds>_<uuid>`.
pub const CURSOR_PATTERN: &str =
    "^[0-9]{1,17}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn de_cursor<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    let ok = s.split_once('_').is_some_and(|(m, id)| {
        !m.is_empty()
            && m.len() <= 17
            && m.bytes().all(|b| b.is_ascii_digit())
            && id.len() == 36
            && Uuid::parse_str(id).is_ok()
    });
    if ok {
        Ok(Some(s))
    } else {
        Err(contract::rule::<D::Error>(
            "not a cursor; pass a previous page's `next_before`",
        ))
    }
}

/// `GET …/deliveries` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Only this webhook's deliveries.
    #[serde(default)]
    pub webhook: Option<Uuid>,
    /// Only deliveries with this status.
    #[serde(default, deserialize_with = "de_status")]
    #[param(pattern = "^(pending|queued|sent|failed|suppressed|batched|cancelled)$")]
    pub status: Option<String>,
    /// The previous page's `next_before`.
    #[serde(default, deserialize_with = "de_cursor")]
    #[param(
        pattern = r"^[0-9]{1,17}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub before: Option<String>,
    /// Page size (1–200, default 50).
    #[serde(default, deserialize_with = "contract::de_range::<_, 1, 200>")]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

impl From<DeliveriesQuery> for log::Query {
    fn from(q: DeliveriesQuery) -> Self {
        Self {
            webhook: q.webhook,
            status: q.status,
            before: q.before,
            limit: q.limit,
        }
    }
}

/// One delivery in the log (an email or a webhook message).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: Uuid,
    /// `email` or `webhook`.
    pub channel: String,
    pub webhook_id: Option<Uuid>,
    pub category: String,
    /// The event type, `notification.batch`, or an account mail's template.
    pub event_type: Option<String>,
    /// `pending`, `queued`, `sent`, `failed`, `suppressed`, `batched` or `cancelled`.
    pub status: String,
    /// Why it was not sent: `off`, `unsubscribed`, `undeliverable`, `gone`, `http_4xx`, …
    pub reason: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// The `Message-ID` or `webhook-id` sent.
    pub provider_ref: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// A failed webhook delivery can be replayed.
    pub replayable: bool,
}

impl From<log::Entry> for DeliveryOut {
    fn from(e: log::Entry) -> Self {
        Self {
            id: e.id,
            channel: e.channel,
            webhook_id: e.webhook_id,
            category: e.category,
            event_type: e.event_type,
            status: e.status,
            reason: e.reason,
            attempts: e.attempts,
            last_error: e.last_error,
            provider_ref: e.provider_ref,
            sent_at: e.sent_at,
            created_at: e.created_at,
            replayable: e.replayable,
        }
    }
}

/// A page of the delivery log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryOut>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<String>,
}

impl From<log::Page> for DeliveryPage {
    fn from(p: log::Page) -> Self {
        Self {
            items: p.items.into_iter().map(Into::into).collect(),
            next_before: p.next_before,
        }
    }
}

/// A replayed delivery and the job sending it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub delivery_id: Uuid,
    pub job_id: Uuid,
}

fn de_channel<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if backend::notify::Channel::parse(&s).is_some() {
        Ok(Some(s))
    } else {
        Err(contract::rule::<D::Error>(format!(
            "`{s}` is not a channel; use inapp, email or webhook"
        )))
    }
}

/// `POST /api/v1/admin/users/{id}/notifications/test` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendTest {
    /// Only this channel (`inapp`, `email` or `webhook`); every channel the user's preferences allow when
    /// absent.
    #[serde(default, deserialize_with = "de_channel")]
    #[schema(value_type = Option<String>, pattern = "^(inapp|email|webhook)$")]
    pub channel: Option<String>,
}

/// A test notification on its way (see the user's delivery log).
#[derive(Debug, Serialize, ToSchema)]
pub struct TestSent {
    pub event_id: Uuid,
}
