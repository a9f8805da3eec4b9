//! `/api/v1/templates` and `/api/v1/strategies…`: the strategy catalogue and a trader's strategies (each save
//! of changed source an immutable version). Reads need a token, writes a read-write token of a non-viewer: the
//! actions in `backend::backtest::actions::strategies` decide (and audit), each handler parses, calls and
//! maps. Everything is scoped to the token's user:
//! another user's strategy answers 404 exactly like one that does not exist.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use backend::backtest::{Error as BacktestError, Problem, actions::strategies as act, strategies};
use chrono::{DateTime, Utc};
use engine::strategy::{ParamInfo, ParamValue};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::{ApiActor, ApiJson, ApiPath, ApiQuery},
    routes::contract,
    routes::openapi::ErrorBody,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/templates", get(list_templates))
        .route(
            "/api/v1/strategies",
            get(list_strategies).post(create_strategy),
        )
        .route("/api/v1/strategies/validate", post(validate_strategy))
        .route(
            "/api/v1/strategies/{id}",
            get(get_strategy)
                .put(update_strategy)
                .delete(archive_strategy),
        )
        .route("/api/v1/strategies/{id}/restore", post(restore_strategy))
        .route(
            "/api/v1/strategies/{id}/duplicate",
            post(duplicate_strategy),
        )
        .route(
            "/api/v1/strategies/{id}/versions/{version}",
            get(get_strategy_version),
        )
}

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

fn params(list: &[ParamInfo]) -> Vec<Param> {
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

/// A catalogue template.
#[derive(Debug, Serialize, ToSchema)]
pub struct Template {
    /// Pass as `template` when creating a strategy.
    pub name: String,
    pub description: String,
    pub source: String,
    pub params: Vec<Param>,
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
}

impl From<strategies::StrategyDetail> for StrategyDetail {
    fn from(d: strategies::StrategyDetail) -> Self {
        Self {
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

/// `GET /api/v1/templates`: the strategy catalogue, with each template's declared parameters.
#[utoipa::path(
    get,
    path = "/api/v1/templates",
    tag = "strategies",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The catalogue", body = Templates),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limit reached (see Retry-After)", body = ErrorBody),
    )
)]
pub async fn list_templates(ApiActor(_): ApiActor) -> Json<Templates> {
    let templates = engine::catalogue::templates()
        .iter()
        .map(|t| Template {
            name: t.name.to_owned(),
            description: t.description.to_owned(),
            source: t.source.to_owned(),
            params: strategies::validate(t.source)
                .map(|p| params(&p))
                .unwrap_or_default(),
        })
        .collect();
    Json(Templates { templates })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListStrategiesQuery {
    /// Include archived strategies (default false).
    #[serde(default)]
    #[param(required = false)]
    archived: bool,
}

/// `GET /api/v1/strategies[?archived=true]`: the caller's strategies, most recently changed first.
#[utoipa::path(
    get,
    path = "/api/v1/strategies",
    tag = "strategies",
    security(("bearer" = [])),
    params(ListStrategiesQuery),
    responses(
        (status = 200, description = "The caller's strategies", body = StrategyList),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn list_strategies(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<ListStrategiesQuery>,
) -> ApiResult<Json<StrategyList>> {
    let list = act::list(&actor, &state.ctx, q.archived).await?;
    Ok(Json(StrategyList {
        strategies: list.into_iter().map(Into::into).collect(),
    }))
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

fn created(location: &str, body: impl Serialize) -> Response {
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `POST /api/v1/strategies`: creates a strategy with version 1.
#[utoipa::path(
    post,
    path = "/api/v1/strategies",
    tag = "strategies",
    security(("bearer" = [])),
    request_body = CreateStrategy,
    responses(
        (status = 201, description = "Created (Location: the strategy)", body = StrategyDetail),
        (status = 400, description = "`invalid_input` with `field` (name, description, unknown template), malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the account has as many strategies or versions as it may keep", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 422, description = "`invalid_strategy`: the source does not compile; `problems` lists each", body = ErrorBody),
    )
)]
pub async fn create_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<CreateStrategy>,
) -> ApiResult<Response> {
    let new = strategies::NewStrategy {
        name: body.name,
        description: body.description,
        template: body.template,
        source: body.source,
    };
    let id = act::create(&actor, &state.ctx, new).await?;
    let detail = StrategyDetail::from(act::get(&actor, &state.ctx, id).await?);
    Ok(created(&detail.summary.links.self_.clone(), detail))
}

/// Whether a deleted (archived) strategy is still to be shown.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArchivedQuery {
    /// Also answer for a deleted (archived) strategy, which can be restored (default false: 404, as for any
    /// deleted resource).
    #[serde(default)]
    #[param(required = false)]
    archived: bool,
}

/// `GET /api/v1/strategies/{id}[?archived=true]`: one strategy with its newest version.
#[utoipa::path(
    get,
    path = "/api/v1/strategies/{id}",
    tag = "strategies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Strategy id"), ArchivedQuery),
    responses(
        (status = 200, description = "The strategy", body = StrategyDetail),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such strategy of yours, or a deleted one without `archived=true`", body = ErrorBody),
    )
)]
pub async fn get_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ArchivedQuery>,
) -> ApiResult<Json<StrategyDetail>> {
    let detail = act::get(&actor, &state.ctx, id).await?;
    if detail.summary.archived && !q.archived {
        return Err(ApiError::NotFound);
    }
    Ok(Json(detail.into()))
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

/// `PUT /api/v1/strategies/{id}`: saves name, description and/or source.
#[utoipa::path(
    put,
    path = "/api/v1/strategies/{id}",
    tag = "strategies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Strategy id")),
    request_body = UpdateStrategy,
    responses(
        (status = 200, description = "Saved", body = Saved),
        (status = 400, description = "`invalid_input` with `field`, malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: `base_version` is stale, or the strategy is archived; `limit_reached`: the account has as many versions as it may keep", body = ErrorBody),
        (status = 422, description = "`invalid_strategy`: the source does not compile (kept as the draft)", body = ErrorBody),
    )
)]
pub async fn update_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateStrategy>,
) -> ApiResult<Json<Saved>> {
    let edit = strategies::SaveStrategy {
        name: body.name,
        description: body.description,
        source: body.source,
        base_version: body.base_version,
        draft_rev: body.draft_rev,
    };
    let saved = act::save(&actor, &state.ctx, id, edit).await?;
    Ok(Json(Saved {
        version: saved.version,
        new_version: saved.new_version,
    }))
}

/// `DELETE /api/v1/strategies/{id}`: archives the strategy (hidden from the list, cannot be run; its runs stay).
#[utoipa::path(
    delete,
    path = "/api/v1/strategies/{id}",
    tag = "strategies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Strategy id")),
    responses(
        (status = 204, description = "Archived"),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
    )
)]
pub async fn archive_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    act::set_archived(&actor, &state.ctx, id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/strategies/{id}/restore`: un-archives the strategy.
#[utoipa::path(
    post,
    path = "/api/v1/strategies/{id}/restore",
    tag = "strategies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Strategy id")),
    responses(
        (status = 204, description = "Restored"),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
    )
)]
pub async fn restore_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    act::set_archived(&actor, &state.ctx, id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/strategies/{id}/duplicate`: copies the newest version into a new strategy "<name> (copy)".
#[utoipa::path(
    post,
    path = "/api/v1/strategies/{id}/duplicate",
    tag = "strategies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Strategy id")),
    responses(
        (status = 201, description = "The copy (Location: the copy)", body = StrategyDetail),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the account has as many strategies or versions as it may keep", body = ErrorBody),
    )
)]
pub async fn duplicate_strategy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let copy = act::duplicate(&actor, &state.ctx, id).await?;
    let detail = StrategyDetail::from(act::get(&actor, &state.ctx, copy).await?);
    Ok(created(&detail.summary.links.self_.clone(), detail))
}

/// `GET /api/v1/strategies/{id}/versions/{version}`: one saved version.
#[utoipa::path(
    get,
    path = "/api/v1/strategies/{id}/versions/{version}",
    tag = "strategies",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Strategy id"),
        ("version" = i32, Path, description = "Version number (1, 2, …)"),
        ArchivedQuery,
    ),
    responses(
        (status = 200, description = "The version", body = StrategyVersion),
        (status = 400, description = "Malformed id or version", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such strategy of yours (or a deleted one without `archived=true`), or no such version", body = ErrorBody),
    )
)]
pub async fn get_strategy_version(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath((id, version)): ApiPath<(Uuid, i32)>,
    ApiQuery(q): ApiQuery<ArchivedQuery>,
) -> ApiResult<Json<StrategyVersion>> {
    if !q.archived && act::get(&actor, &state.ctx, id).await?.summary.archived {
        return Err(ApiError::NotFound);
    }
    Ok(Json(
        act::version(&actor, &state.ctx, id, Some(version))
            .await?
            .into(),
    ))
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

/// `POST /api/v1/strategies/validate`: compiles a source without saving anything (a read: any token may).
#[utoipa::path(
    post,
    path = "/api/v1/strategies/validate",
    tag = "strategies",
    security(("bearer" = [])),
    request_body = ValidateStrategy,
    responses(
        (status = 200, description = "The verdict (`ok: false` with diagnostics when the source does not compile)", body = Validation),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
    )
)]
pub async fn validate_strategy(
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<ValidateStrategy>,
) -> ApiResult<Json<Validation>> {
    Ok(Json(match act::validate(&actor, &body.source) {
        Ok(p) => Validation {
            ok: true,
            diagnostics: Vec::new(),
            params: params(&p),
        },
        Err(BacktestError::Strategy(problems)) => Validation {
            ok: false,
            diagnostics: problems.into_iter().map(Into::into).collect(),
            params: Vec::new(),
        },
        Err(e) => return Err(ApiError::from(e)),
    }))
}
