//! The strategy catalogue (`/api/v1/templates`) and checking a source without saving it
//! (`/api/v1/strategies/validate`): the strategy language, no stored strategy involved.

use axum::Json;
use backend::backtest::{Error as BacktestError, actions::strategies as act, strategies};

use super::dto::{Template, Templates, ValidateStrategy, Validation, params};
use crate::{
    error::{ApiError, ApiResult},
    extract::{ApiActor, ApiJson},
    routes::openapi::ErrorBody,
};

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
