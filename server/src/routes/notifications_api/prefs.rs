//! `GET /api/v1/notifications/catalogue` and `GET`/`PUT /api/v1/notifications/preferences`: what can be
//! configured, and the caller's rules, quiet hours and digest schedule. The actions are
//! `backend::notify::prefs::{catalogue, get, put}` (reads: any token; `put`: a read-write token, viewers
//! included); the types here mirror the backend's documents for the OpenAPI description and are converted
//! field by field, so the two cannot drift apart silently.

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use backend::notify::{
    Category, Channel, Mode,
    prefs::{self, RuleSource},
    schedule::Frequency,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiJson},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// A local time, `HH:MM` (00:00–23:59).
pub const HHMM_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";

/// How a channel delivers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModeDto {
    Off,
    Immediate,
    Digest,
}

impl From<Mode> for ModeDto {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Off => Self::Off,
            Mode::Immediate => Self::Immediate,
            Mode::Digest => Self::Digest,
        }
    }
}

impl From<ModeDto> for Mode {
    fn from(m: ModeDto) -> Self {
        match m {
            ModeDto::Off => Self::Off,
            ModeDto::Immediate => Self::Immediate,
            ModeDto::Digest => Self::Digest,
        }
    }
}

/// Where a rule came from: `user` (yours); `unsubscribe` (an email's unsubscribe link: a veto on that
/// category's email until you set it again) and `admin` may only be sent back unchanged.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum SourceDto {
    #[default]
    User,
    Unsubscribe,
    Admin,
}

impl From<RuleSource> for SourceDto {
    fn from(s: RuleSource) -> Self {
        match s {
            RuleSource::User => Self::User,
            RuleSource::Unsubscribe => Self::Unsubscribe,
            RuleSource::Admin => Self::Admin,
        }
    }
}

impl From<SourceDto> for RuleSource {
    fn from(s: SourceDto) -> Self {
        match s {
            SourceDto::User => Self::User,
            SourceDto::Unsubscribe => Self::Unsubscribe,
            SourceDto::Admin => Self::Admin,
        }
    }
}

/// What happens to email and webhook messages during quiet hours.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuietActionDto {
    /// Held, and sent as one message when the quiet hours end.
    Defer,
    /// Put in the next digest.
    Digest,
}

/// How often the digest goes out.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FrequencyDto {
    Off,
    Daily,
    Weekly,
}

fn wildcard() -> String {
    "*".to_owned()
}

fn enum_schema(values: Vec<String>, description: &str) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(values))
        .default(Some(serde_json::json!("*")))
        .description(Some(description))
        .build()
}

fn rule_category_schema() -> utoipa::openapi::Object {
    let mut v = vec!["*".to_owned()];
    v.extend(Category::ALL.iter().map(|c| c.as_str().to_owned()));
    enum_schema(v, "A category, or `*` for every category.")
}

fn rule_event_type_schema() -> utoipa::openapi::Object {
    let mut v = vec!["*".to_owned()];
    v.extend(prefs::catalogue().types.into_iter().map(|t| t.name));
    enum_schema(
        v,
        "An event type of the catalogue, or `*` (a type needs its category, not `*`).",
    )
}

fn rule_channel_schema() -> utoipa::openapi::Object {
    let mut v = vec!["*".to_owned()];
    v.extend(Channel::ALL.iter().map(|c| c.as_str().to_owned()));
    enum_schema(v, "`inapp`, `email`, `webhook`, or `*`.")
}

/// One rule: the most specific matching rule wins (run, event type, category, channel).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleDto {
    #[serde(default = "wildcard")]
    #[schema(schema_with = rule_category_schema)]
    pub category: String,
    #[serde(default = "wildcard")]
    #[schema(schema_with = rule_event_type_schema)]
    pub event_type: String,
    #[serde(default = "wildcard")]
    #[schema(schema_with = rule_channel_schema)]
    pub channel: String,
    pub mode: ModeDto,
    /// A paper run the rule is limited to (null: every run).
    #[serde(default)]
    pub paper_run_id: Option<Uuid>,
    #[serde(default)]
    pub source: SourceDto,
}

/// Quiet hours in the profile's time zone; the window may wrap midnight. Critical events are never held.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursDto {
    pub enabled: bool,
    /// Local `HH:MM`.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    /// Local `HH:MM` (another time than `start` when enabled).
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end: String,
    pub action: QuietActionDto,
}

/// The digest schedule in the profile's time zone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestDto {
    pub frequency: FrequencyDto,
    /// ISO weekday of a weekly digest: Monday = 1 … Sunday = 7.
    #[schema(minimum = 1, maximum = 7)]
    pub weekday: u8,
    /// Local `HH:MM`.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub time: String,
}

/// The caller's notification preferences. `PUT` replaces the rules (send back the `unsubscribe` and `admin`
/// rules unchanged to keep them; setting a category's email again lifts its unsubscribe veto).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesDto {
    #[schema(max_items = 200)]
    pub rules: Vec<RuleDto>,
    pub quiet_hours: QuietHoursDto,
    pub digest: DigestDto,
    /// The profile's time zone the local times are read in (read-only; change it with `PATCH /api/v1/me`).
    #[serde(default)]
    pub time_zone: String,
}

impl From<prefs::Preferences> for PreferencesDto {
    fn from(p: prefs::Preferences) -> Self {
        Self {
            rules: p
                .rules
                .into_iter()
                .map(|r| RuleDto {
                    category: r.category,
                    event_type: r.event_type,
                    channel: r.channel,
                    mode: r.mode.into(),
                    paper_run_id: r.paper_run_id,
                    source: r.source.into(),
                })
                .collect(),
            quiet_hours: QuietHoursDto {
                enabled: p.quiet_hours.enabled,
                start: p.quiet_hours.start,
                end: p.quiet_hours.end,
                action: match p.quiet_hours.action {
                    prefs::QuietAction::Defer => QuietActionDto::Defer,
                    prefs::QuietAction::Digest => QuietActionDto::Digest,
                },
            },
            digest: DigestDto {
                frequency: match p.digest.frequency {
                    Frequency::Off => FrequencyDto::Off,
                    Frequency::Daily => FrequencyDto::Daily,
                    Frequency::Weekly => FrequencyDto::Weekly,
                },
                weekday: p.digest.weekday,
                time: p.digest.time,
            },
            time_zone: p.time_zone,
        }
    }
}

impl From<PreferencesDto> for prefs::Preferences {
    fn from(p: PreferencesDto) -> Self {
        Self {
            rules: p
                .rules
                .into_iter()
                .map(|r| prefs::RuleDoc {
                    category: r.category,
                    event_type: r.event_type,
                    channel: r.channel,
                    mode: r.mode.into(),
                    paper_run_id: r.paper_run_id,
                    source: r.source.into(),
                })
                .collect(),
            quiet_hours: prefs::QuietHours {
                enabled: p.quiet_hours.enabled,
                start: p.quiet_hours.start,
                end: p.quiet_hours.end,
                action: match p.quiet_hours.action {
                    QuietActionDto::Defer => prefs::QuietAction::Defer,
                    QuietActionDto::Digest => prefs::QuietAction::Digest,
                },
            },
            digest: prefs::DigestDoc {
                frequency: match p.digest.frequency {
                    FrequencyDto::Off => Frequency::Off,
                    FrequencyDto::Daily => Frequency::Daily,
                    FrequencyDto::Weekly => Frequency::Weekly,
                },
                weekday: p.digest.weekday,
                time: p.digest.time,
            },
            time_zone: p.time_zone,
        }
    }
}

/// A category of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryOut {
    pub name: String,
    pub label: String,
    /// Channels always on for every type of this category (security: email).
    pub locked: Vec<String>,
}

/// A channel and the modes a rule may set for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelOut {
    pub name: String,
    pub label: String,
    pub modes: Vec<ModeDto>,
}

/// An event type: its defaults per channel and its locks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TypeOut {
    /// e.g. `backtest.finished`.
    pub name: String,
    pub label: String,
    pub category: String,
    /// Bypasses digests, quiet hours, coalescing and the hourly cap; cannot be turned off for in-app and email.
    pub critical: bool,
    /// Bursts are combined into one message.
    pub coalescible: bool,
    /// The default mode of `inapp`, `email` and `webhook`.
    pub defaults: BTreeMap<String, ModeDto>,
    /// Channels that are always immediate for this type.
    pub locked: Vec<String>,
}

/// What can be configured: categories, channels, event types with defaults and locks.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueOut {
    pub categories: Vec<CategoryOut>,
    pub channels: Vec<ChannelOut>,
    pub types: Vec<TypeOut>,
    /// At most this many rules per user.
    pub max_rules: usize,
}

fn names(list: &[Channel]) -> Vec<String> {
    list.iter().map(|c| c.as_str().to_owned()).collect()
}

impl From<prefs::Catalogue> for CatalogueOut {
    fn from(c: prefs::Catalogue) -> Self {
        Self {
            categories: c
                .categories
                .into_iter()
                .map(|e| CategoryOut {
                    name: e.name.as_str().to_owned(),
                    label: e.label,
                    locked: names(&e.locked),
                })
                .collect(),
            channels: c
                .channels
                .into_iter()
                .map(|e| ChannelOut {
                    name: e.name.as_str().to_owned(),
                    label: e.label,
                    modes: e.modes.into_iter().map(Into::into).collect(),
                })
                .collect(),
            types: c
                .types
                .into_iter()
                .map(|t| TypeOut {
                    name: t.name,
                    label: t.label,
                    category: t.category.as_str().to_owned(),
                    critical: t.critical,
                    coalescible: t.coalescible,
                    defaults: t.defaults.into_iter().map(|(k, v)| (k, v.into())).collect(),
                    locked: names(&t.locked),
                })
                .collect(),
            max_rules: c.max_rules,
        }
    }
}

/// `GET /api/v1/notifications/catalogue`: event types, categories, channels, defaults and locks.
#[utoipa::path(
    get,
    path = "/api/v1/notifications/catalogue",
    tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The catalogue", body = CatalogueOut),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn get_catalogue(ApiActor(_actor): ApiActor) -> ApiResult<Json<CatalogueOut>> {
    // The same for everyone: a valid token is all it takes.
    Ok(Json(prefs::catalogue().into()))
}

/// `GET /api/v1/notifications/preferences`: the caller's rules, quiet hours and digest schedule.
#[utoipa::path(
    get,
    path = "/api/v1/notifications/preferences",
    tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's preferences", body = PreferencesDto),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn get_preferences(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<PreferencesDto>> {
    Ok(Json(prefs::get(&state.ctx, &actor).await?.into()))
}

/// `PUT /api/v1/notifications/preferences`: replaces the caller's preferences; answers them as stored.
#[utoipa::path(
    put,
    path = "/api/v1/notifications/preferences",
    tag = "notifications",
    security(("bearer" = [])),
    request_body = PreferencesDto,
    responses(
        (status = 200, description = "The preferences as stored", body = PreferencesDto),
        (status = 400, description = "`invalid_input` naming the field (`rules[3].mode`: security email cannot be turned off; `digest.weekday`, `quiet_hours.end`, …), malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token (viewers may change their own preferences)", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
    )
)]
pub async fn put_preferences(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<PreferencesDto>,
) -> ApiResult<Json<PreferencesDto>> {
    Ok(Json(
        prefs::put(&state.ctx, &actor, body.into()).await?.into(),
    ))
}
