//! The JSON the pages' scripts fetch (errors in the REST API's shape; 401 instead of a redirect when nobody
//! is signed in): the editor's live check, a run's status, chart data, decision trace and the comparison's
//! equity curves.

use axum::{
    Json,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use backend::{
    Error,
    backtest::actions::{runs as act, strategies},
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{error::ApiError, extract::AnyWebActor, state::AppState};

type JsonResult = Result<Response, ApiError>;

/// An id in a script's path (a malformed one is "not found", like another user's).
fn json_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound)
}

#[derive(Deserialize)]
pub(super) struct ValidateBody {
    source: String,
}

/// `POST /strategies/validate` (JSON, `x-csrf-token`): the editor's live check.
pub(super) async fn validate(
    AnyWebActor(actor): AnyWebActor,
    Json(body): Json<ValidateBody>,
) -> JsonResult {
    Ok(match strategies::validate(&actor, &body.source) {
        Ok(params) => Json(json!({ "ok": true, "diagnostics": [], "params": params })),
        Err(Error::Strategy(p)) => Json(json!({ "ok": false, "diagnostics": p, "params": [] })),
        Err(e) => return Err(e.into()),
    }
    .into_response())
}

pub(super) async fn status(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Path(id): Path<String>,
) -> JsonResult {
    let id = json_id(&id)?;
    Ok(Json(act::status(&actor, &state.ctx, id).await?).into_response())
}

pub(super) async fn chart(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Path(id): Path<String>,
) -> JsonResult {
    let id = json_id(&id)?;
    Ok(Json(act::chart(&actor, &state.ctx, id).await?).into_response())
}

#[derive(Deserialize)]
pub(super) struct TraceQuery {
    time: i64,
    #[serde(default)]
    span: i64,
}

pub(super) async fn trace(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Path(id): Path<String>,
    q: Result<Query<TraceQuery>, axum::extract::rejection::QueryRejection>,
) -> JsonResult {
    // Who asks is checked before the query is looked at (anonymous: 401 whatever the query).
    actor.reader()?;
    let id = json_id(&id)?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest(format!("time: {}", e.body_text())))?;
    Ok(Json(act::trace(&actor, &state.ctx, id, q.time, q.span).await?).into_response())
}

pub(super) async fn compare(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Query(q): Query<Vec<(String, String)>>,
) -> JsonResult {
    actor.reader()?;
    let ids = q
        .iter()
        .filter(|(k, _)| k == "ids")
        .take(act::COMPARE_MAX)
        .map(|(_, v)| json_id(v))
        .collect::<Result<Vec<_>, _>>()?;
    let runs: Vec<_> = act::compare(&actor, &state.ctx, &ids)
        .await?
        .into_iter()
        .filter_map(|(run, result)| {
            result.map(|r| {
                json!({
                    "id": run.summary.backtest_run_id,
                    "label": run.summary.label(),
                    "time": r.equity.time,
                    "equity": r.equity.equity,
                })
            })
        })
        .collect();
    Ok(Json(json!({ "runs": runs })).into_response())
}
