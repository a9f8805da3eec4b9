//! The request and response types of the strategy API: strategies, versions, templates, declared parameters and
//! compile diagnostics, with their conversions from the backend's types.

use backend::backtest::{Problem, catalogue, strategies};
use chrono::{DateTime, Utc};
use engine::strategy::{ParamInfo, ParamValue};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::routes::contract;

/// A parameter value: an integer, a number or a boolean, as declared.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum ParamValueOut {
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl utoipa::PartialSchema for ParamValueOut {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        contract::param_value_schema()
    }
}

impl ToSchema for ParamValueOut {}

impl From<ParamValue> for ParamValueOut {
    fn from(v: ParamValue) -> Self {
        match v {
            ParamValue::Int(i) => Self::Int(i),
            ParamValue::Float(f) => Self::Float(f),
            ParamValue::Bool(b) => Self::Bool(b),
        }
    }
}

/// A declared parameter (`param fast: int = 12 in 2..200`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Param {
    pub name: String,
    /// `int`, `float` or `bool`.
    pub kind: String,
    pub default: ParamValueOut,
    /// Inclusive range, when declared.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl From<&ParamInfo> for Param {
    fn from(p: &ParamInfo) -> Self {
        Self {
            name: p.name.clone(),
            kind: p.kind.clone(),
            default: p.default.into(),
            min: p.min,
            max: p.max,
        }
    }
}

pub(super) fn params(list: &[ParamInfo]) -> Vec<Param> {
    list.iter().map(Param::from).collect()
}

/// A problem in a strategy's source: 1-based line and column, and how many characters it spans (line 0 = not
/// tied to a position).
#[derive(Debug, Serialize, ToSchema)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    pub len: usize,
    pub message: String,
}

impl From<Problem> for Diagnostic {
    fn from(p: Problem) -> Self {
        Self {
            line: p.line,
            column: p.column,
            len: p.len,
            message: p.message,
        }
    }
}

/// A published catalogue strategy.
#[derive(Debug, Serialize, ToSchema)]
pub struct Template {
    /// The slug: pass it as `template` when creating a strategy.
    pub name: String,
    /// The display name.
    pub title: String,
    pub description: String,
    /// Featured entries come first.
    pub featured: bool,
    /// The catalogue version a strategy created now copies.
    pub version: i32,
    pub source: String,
    pub params: Vec<Param>,
}

impl From<catalogue::Entry> for Template {
    fn from(e: catalogue::Entry) -> Self {
        Self {
            params: params(&e.params),
            name: e.slug,
            title: e.name,
            description: e.description,
            featured: e.featured,
            version: e.version,
            source: e.source,
        }
    }
}

/// A catalogue entry as admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueEntryOut {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// Traders see and create from published entries only.
    pub published: bool,
    pub featured: bool,
    /// Seeded from a built-in template.
    pub builtin: bool,
    /// The newest version.
    pub version: i32,
    pub source: String,
    pub params: Vec<Param>,
    pub updated_at: DateTime<Utc>,
}

impl From<catalogue::Entry> for CatalogueEntryOut {
    fn from(e: catalogue::Entry) -> Self {
        Self {
            params: params(&e.params),
            id: e.id,
            slug: e.slug,
            name: e.name,
            description: e.description,
            published: e.published,
            featured: e.featured,
            builtin: e.builtin,
            version: e.version,
            source: e.source,
            updated_at: e.updated_at,
        }
    }
}

/// Every catalogue entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueList {
    pub entries: Vec<CatalogueEntryOut>,
}

/// One saved version of a catalogue entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueVersionOut {
    pub version: i32,
    pub note: String,
    /// The email address of the admin who saved it (absent: seeded, or the account is gone).
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A catalogue entry with its versions (newest first) and how many strategies were created from it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueDetailOut {
    pub entry: CatalogueEntryOut,
    pub versions: Vec<CatalogueVersionOut>,
    pub strategies: i64,
}

impl From<catalogue::EntryDetail> for CatalogueDetailOut {
    fn from(d: catalogue::EntryDetail) -> Self {
        Self {
            entry: d.entry.into(),
            versions: d
                .versions
                .into_iter()
                .map(|v| CatalogueVersionOut {
                    version: v.version,
                    note: v.note,
                    created_by: v.created_by,
                    created_at: v.created_at,
                })
                .collect(),
            strategies: d.strategies,
        }
    }
}

/// A new catalogue entry (hidden unless `published`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slug": "donchian", "name": "Donchian breakout", "source": "param n: int = 20 in 2..200\nentry long when close > highest(high, n)[1]\nexit long when close < lowest(low, n)[1]\n", "published": true}))]
pub struct NewCatalogueEntry {
    /// Fixed once created: strategies name it.
    #[serde(deserialize_with = "contract::de_slug")]
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,47}$", max_length = 48)]
    pub slug: String,
    #[serde(deserialize_with = "contract::de_required_name")]
    #[schema(
        min_length = 1,
        max_length = 80,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    #[serde(default, deserialize_with = "contract::de_description")]
    #[schema(value_type = String, max_length = 2000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
    /// Strategy source, checked like any strategy (422 `invalid_strategy` with diagnostics when it does not
    /// compile; 400 above 65536 bytes).
    #[schema(pattern = r"^[^\x00]*$")]
    pub source: String,
    /// What this version is (shown in the version list).
    #[serde(default, deserialize_with = "contract::de_note")]
    #[schema(value_type = String, max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub note: Option<String>,
    #[serde(default)]
    pub published: Option<bool>,
    #[serde(default)]
    pub featured: Option<bool>,
}

impl From<NewCatalogueEntry> for catalogue::EntryInput {
    fn from(n: NewCatalogueEntry) -> Self {
        Self {
            slug: Some(n.slug),
            name: Some(n.name),
            description: n.description,
            source: Some(n.source),
            note: n.note,
            published: n.published,
            featured: n.featured,
        }
    }
}

/// Changes to a catalogue entry (absent = unchanged). A changed `source` is a new version; publishing,
/// hiding and featuring are flags.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"published": false}))]
pub struct CatalogueEntryPatch {
    #[serde(default, deserialize_with = "contract::de_name")]
    #[schema(value_type = String, min_length = 1, max_length = 80, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "contract::de_description")]
    #[schema(value_type = String, max_length = 2000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "contract::de_source")]
    #[schema(value_type = String, pattern = r"^[^\x00]*$")]
    pub source: Option<String>,
    #[serde(default, deserialize_with = "contract::de_note")]
    #[schema(value_type = String, max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub note: Option<String>,
    #[serde(default)]
    pub published: Option<bool>,
    #[serde(default)]
    pub featured: Option<bool>,
}

impl From<CatalogueEntryPatch> for catalogue::EntryInput {
    fn from(n: CatalogueEntryPatch) -> Self {
        Self {
            slug: None,
            name: n.name,
            description: n.description,
            source: n.source,
            note: n.note,
            published: n.published,
            featured: n.featured,
        }
    }
}

/// The catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct Templates {
    pub templates: Vec<Template>,
}

/// Where to find a strategy.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategyLinks {
    #[serde(rename = "self")]
    pub self_: String,
    /// `POST` here with `strategy_id` to run it.
    pub backtests: String,
}

/// A strategy in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategySummary {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// The catalogue template it was created from.
    pub template: Option<String>,
    pub latest_version: i32,
    pub archived: bool,
    /// Whether an edit that did not compile is kept as a draft.
    pub has_draft: bool,
    /// Backtest runs of this strategy.
    pub runs: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub links: StrategyLinks,
}

impl From<strategies::StrategySummary> for StrategySummary {
    fn from(s: strategies::StrategySummary) -> Self {
        Self {
            links: StrategyLinks {
                self_: format!("/api/v1/strategies/{}", s.strategy_id),
                backtests: format!("/api/v1/backtests?strategy_id={}", s.strategy_id),
            },
            id: s.strategy_id,
            name: s.name,
            description: s.description,
            template: s.template,
            latest_version: s.latest_version,
            archived: s.archived,
            has_draft: s.has_draft,
            runs: s.runs,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The user's strategies.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategyList {
    pub strategies: Vec<StrategySummary>,
}

/// One saved, immutable version.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategyVersion {
    pub strategy_id: Uuid,
    pub version: i32,
    pub source: String,
    /// SHA-256 of the source.
    pub source_hash: String,
    pub params: Vec<Param>,
    pub created_at: DateTime<Utc>,
}

impl From<strategies::Version> for StrategyVersion {
    fn from(v: strategies::Version) -> Self {
        Self {
            params: params(&v.params),
            strategy_id: v.strategy_id,
            version: v.version,
            source: v.source,
            source_hash: v.source_hash,
            created_at: v.created_at,
        }
    }
}

/// A version in the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionRef {
    pub version: i32,
    pub created_at: DateTime<Utc>,
}

/// A strategy with its newest version, its draft and its history.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategyDetail {
    #[serde(flatten)]
    pub summary: StrategySummary,
    pub latest: StrategyVersion,
    /// An edit that did not compile, kept so it is not lost (never run).
    pub draft_source: Option<String>,
    /// The draft slot's revision (bumped by every write of the draft); send it back with a save.
    pub draft_rev: i32,
    /// Newest first.
    pub versions: Vec<VersionRef>,
    /// Present when the strategy is read-only over the owner's plan: they are over the plan's `strategies`
    /// past the grace period and this is one of the newest beyond the limit. It can be read, exported,
    /// archived and deleted; edits, backtests and paper runs are refused with `plan_read_only`
    /// (docs/plans.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<PlanReadOnly>,
}

/// Why a strategy is read-only.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanReadOnly {
    /// The limit the owner is over (`strategies`), their usage and the limit's value.
    #[schema(example = "strategies")]
    pub limit: String,
    pub usage: i64,
    pub allowed: i64,
    /// The plan's name.
    pub plan: String,
    /// When it became read-only (the grace period's end).
    pub since: DateTime<Utc>,
}

impl From<strategies::StrategyDetail> for StrategyDetail {
    fn from(d: strategies::StrategyDetail) -> Self {
        Self {
            read_only: d.read_only.map(|o| PlanReadOnly {
                limit: o.limit.key().to_owned(),
                usage: o.usage,
                allowed: o.allowed,
                plan: o.plan,
                since: o.enforced_at.unwrap_or(o.grace_ends_at),
            }),
            summary: d.summary.into(),
            latest: d.latest.into(),
            draft_source: d.draft_source,
            draft_rev: d.draft_rev,
            versions: d
                .versions
                .into_iter()
                .map(|(version, created_at)| VersionRef {
                    version,
                    created_at,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteStrategyQuery {
    /// Delete for good (with its versions, backtests and finished paper runs) instead of archiving (default
    /// false).
    #[serde(default)]
    #[param(required = false)]
    pub(super) permanent: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListStrategiesQuery {
    /// Include archived strategies (default false).
    #[serde(default)]
    #[param(required = false)]
    pub(super) archived: bool,
}

/// A new strategy: from `source`, else from a catalogue `template`, else a small starter strategy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStrategy {
    /// Defaults to the template's name or "Untitled strategy" (1–80 characters).
    #[serde(default, deserialize_with = "contract::de_name")]
    #[schema(value_type = String, min_length = 1, max_length = 80, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub name: Option<String>,
    /// Up to 2000 characters.
    #[serde(default, deserialize_with = "contract::de_description")]
    #[schema(value_type = String, max_length = 2000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
    /// A template name from `GET /api/v1/templates`, e.g. `macd`; ignored when `source` is given.
    #[serde(default, deserialize_with = "contract::de_template")]
    #[schema(schema_with = contract::template_schema)]
    pub template: Option<String>,
    /// Strategy source in the strategy language (no NUL character).
    #[serde(default, deserialize_with = "contract::de_source")]
    #[schema(value_type = String, pattern = r"^[^\x00]*$")]
    pub source: Option<String>,
}

/// An edit. Changed source that compiles becomes a new version; source that does not compile is kept as the
/// draft and answered with 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStrategy {
    #[serde(default, deserialize_with = "contract::de_name")]
    #[schema(value_type = String, min_length = 1, max_length = 80, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "contract::de_description")]
    #[schema(value_type = String, max_length = 2000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "contract::de_source")]
    #[schema(value_type = String, pattern = r"^[^\x00]*$")]
    pub source: Option<String>,
    /// The version this edit started from; if a newer one was saved meanwhile, the save is refused (409).
    pub base_version: Option<i32>,
    /// The `draft_rev` this edit started from. With it, source that is refused is kept as the draft only
    /// while the draft is still at this revision (otherwise 409 and nothing is stored); without it the last
    /// write wins.
    pub draft_rev: Option<i32>,
}

/// What a save did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Saved {
    /// The newest version after the save.
    pub version: i32,
    /// Whether the save added a version (false when the source is unchanged or only name/description changed).
    pub new_version: bool,
}

/// Source to check.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateStrategy {
    pub source: String,
}

/// Whether a source compiles: its declared parameters, or every problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct Validation {
    pub ok: bool,
    /// Empty when `ok`.
    pub diagnostics: Vec<Diagnostic>,
    /// Empty when not `ok`.
    pub params: Vec<Param>,
}
