//! The strategy catalogue: its published entries for everyone (`/api/v1/templates`), the admin routes that
//! author it (`/api/v1/admin/catalogue…`: list, create, read with versions, edit, publish, hide, feature; each
//! one call of `backend::backtest::catalogue`, which refuses non-admins and audits), and checking a source
//! without saving it (`/api/v1/strategies/validate`).

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use backend::backtest::{Error as BacktestError, actions::strategies as act, catalogue};
use uuid::Uuid;

use super::dto::{
    CatalogueDetailOut, CatalogueEntryOut, CatalogueEntryPatch, CatalogueList, NewCatalogueEntry,
    Templates, ValidateStrategy, Validation, params,
};
use crate::{
    error::{ApiError, ApiResult},
    extract::{ApiActor, ApiJson, ApiPath},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// `GET /api/v1/templates`: the published catalogue strategies (featured first), each with its declared
/// parameters and the version a new strategy copies.
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
pub async fn list_templates(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<Templates>> {
    let entries = catalogue::published(&actor, &state.ctx).await?;
    Ok(Json(Templates {
        templates: entries.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/admin/catalogue`: every catalogue entry, published and hidden (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/catalogue",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every entry, published ones first", body = CatalogueList),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list_catalogue(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<CatalogueList>> {
    let entries = catalogue::list(&actor, &state.ctx).await?;
    Ok(Json(CatalogueList {
        entries: entries.into_iter().map(Into::into).collect(),
    }))
}

/// `POST /api/v1/admin/catalogue`: a new catalogue entry, version 1 (admins only, read-write token); audited
/// as `catalogue_created`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/catalogue",
    tag = "admin",
    security(("bearer" = [])),
    request_body = NewCatalogueEntry,
    responses(
        (status = 201, description = "Created (Location: the entry)", body = CatalogueEntryOut),
        (status = 400, description = "`invalid_input` naming the field (a slug in use, a NUL or oversized source), or a malformed body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the catalogue has as many entries as an instance may keep", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 422, description = "`invalid_strategy`: the source does not compile (diagnostics with line and column)", body = ErrorBody),
    )
)]
pub async fn create_catalogue_entry(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<NewCatalogueEntry>,
) -> ApiResult<Response> {
    let entry = catalogue::create(&actor, &state.ctx, &body.into()).await?;
    let location = format!("/api/v1/admin/catalogue/{}", entry.id);
    let mut resp = (StatusCode::CREATED, Json(CatalogueEntryOut::from(entry))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET /api/v1/admin/catalogue/{id}`: one entry with its versions (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/catalogue/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Catalogue entry id")),
    responses(
        (status = 200, description = "The entry, its versions and how many strategies were created from it", body = CatalogueDetailOut),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such entry", body = ErrorBody),
    )
)]
pub async fn get_catalogue_entry(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CatalogueDetailOut>> {
    Ok(Json(catalogue::get(&actor, &state.ctx, id).await?.into()))
}

/// `PATCH /api/v1/admin/catalogue/{id}`: changes an entry (a changed source is a new version), publishes,
/// hides or features it (admins only, read-write token); audited as `catalogue_updated`. Strategies already
/// created from it keep their own copy.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/catalogue/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Catalogue entry id")),
    request_body = CatalogueEntryPatch,
    responses(
        (status = 200, description = "The entry as changed", body = CatalogueEntryOut),
        (status = 400, description = "`invalid_input` naming the field, or a malformed body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the entry has as many versions as one may keep", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 422, description = "`invalid_strategy`: the source does not compile (nothing is changed)", body = ErrorBody),
    )
)]
pub async fn update_catalogue_entry(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CatalogueEntryPatch>,
) -> ApiResult<Json<CatalogueEntryOut>> {
    let entry = catalogue::update(&actor, &state.ctx, id, &body.into()).await?;
    Ok(Json(entry.into()))
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
