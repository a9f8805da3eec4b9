//! Downloads of a finished run (links the browser follows; refusals are HTML pages): the trades CSV, the
//! whole result as JSON and the self-contained HTML report.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use backend::{Error, backtest::actions::exports};

use super::parse_id;
use crate::{
    error::{HtmlError, HtmlResult},
    extract::WebActor,
    state::AppState,
};

fn download(content_type: &'static str, filename: &str, body: impl Into<Body>) -> Response {
    let mut resp = (StatusCode::OK, body.into()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// An export refusal as a page, in the words of a download.
fn refused(e: Error) -> HtmlError {
    let retry = e.retry_after();
    let (status, title, message) = match &e {
        Error::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many downloads",
            "You have started many downloads in the last minute. Wait a moment and try again."
                .to_owned(),
        ),
        Error::Unavailable { message, .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            format!("Downloads are busy: {message}."),
        ),
        _ => return e.into(),
    };
    let mut page = HtmlError::page(status, title, &message);
    if let Some(v) = retry.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        page.0.headers_mut().insert(header::RETRY_AFTER, v);
    }
    page
}

pub(super) async fn trades_csv(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    let body = exports::trades_csv(&actor, &state.ctx, &state.limits.exports, id)
        .await
        .map_err(refused)?;
    Ok(download(
        "text/csv; charset=utf-8",
        &format!("backtest-{id}-trades.csv"),
        Body::from_stream(body),
    ))
}

pub(super) async fn result_json(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    let body = exports::result_json(&actor, &state.ctx, &state.limits.exports, id)
        .await
        .map_err(refused)?;
    Ok(download(
        "application/json",
        &format!("backtest-{id}.json"),
        Body::from_stream(body),
    ))
}

pub(super) async fn report_html(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    let html = exports::report_html(&actor, &state.ctx, &state.limits.exports, id)
        .await
        .map_err(refused)?;
    Ok(download(
        "text/html; charset=utf-8",
        &format!("backtest-{id}-report.html"),
        html,
    ))
}
