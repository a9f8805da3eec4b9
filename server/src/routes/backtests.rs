//! The browser side of strategies and backtests (session cookie; CSRF checked by the middleware on every
//! POST): HTML form handlers that answer with Post/Redirect/Get, the editor's live validation, the JSON the
//! pages' scripts fetch (status, charts, decision trace, comparison) and the downloads (trades CSV, result
//! JSON, self-contained HTML report). Every handler acts for the signed-in user only; another user's ids are
//! "not found".

// Helpers return the ready error `Response` (a redirect or an error page) as their `Err`, like the handlers.
#![allow(clippy::result_large_err)]

use axum::{
    Form, Json, Router,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use backend::{
    auth::{
        AuthUser,
        audit::{self, Entry},
    },
    backtest::{Error, report, runs, strategies},
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    error::ApiError,
    extract::{MaybeUser, Meta, SignedIn, html_error},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/strategies/create", post(create_strategy))
        .route("/strategies/validate", post(validate))
        .route("/strategies/{id}/save", post(save_strategy))
        .route("/strategies/{id}/duplicate", post(duplicate))
        .route("/strategies/{id}/archive", post(archive))
        .route("/strategies/{id}/restore", post(restore))
        .route("/strategies/{id}/discard-draft", post(discard_draft))
        .route("/backtests/create", post(create_runs))
        .route("/backtests/{id}/cancel", post(cancel))
        .route("/backtests/{id}/status.json", get(status_json))
        .route("/backtests/{id}/chart.json", get(chart_json))
        .route("/backtests/{id}/trace.json", get(trace_json))
        .route("/backtests/compare.json", get(compare_json))
        .route("/backtests/{id}/trades.csv", get(trades_csv))
        .route("/backtests/{id}/result.json", get(result_json))
        .route("/backtests/{id}/report.html", get(report_html))
}

type Result<T = Response, E = Response> = std::result::Result<T, E>;

fn to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// Errors of form posts: a page for "not found" and internal trouble; validation outcomes are redirects.
fn page_error(e: Error) -> Response {
    match e {
        Error::NotFound => html_error(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such strategy or backtest in your account.",
        ),
        Error::Db(e) if backend::db::is_unavailable(&e) => {
            let mut r = html_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Please try again in a moment.",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
        other => {
            tracing::error!(error = %other, "strategy/backtest form failed");
            html_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The error has been logged. Please try again.",
            )
        }
    }
}

/// JSON errors for the pages' scripts: the REST API's problems.
fn json_error(e: Error) -> Response {
    ApiError::from(e).into_response()
}

fn writer(user: &AuthUser) -> Result<()> {
    if user.can_write() {
        Ok(())
    } else {
        Err(html_error(
            StatusCode::FORBIDDEN,
            "Read-only account",
            "Your account can look at strategies and runs but not change them.",
        ))
    }
}

fn parse_id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| page_error(Error::NotFound))
}

/// Records a strategy/backtest action in the audit trail (a failure to record is logged, never fatal).
pub(crate) async fn record_action(
    state: &AppState,
    meta: &backend::auth::RequestMeta,
    user: &AuthUser,
    event: &str,
    detail: serde_json::Value,
) {
    if let Err(e) = audit::record_now(
        &state.ctx.db,
        meta,
        Entry {
            user_id: Some(user.user_id),
            actor_id: Some(user.user_id),
            event,
            detail,
            ..Entry::default()
        },
    )
    .await
    {
        tracing::warn!(error = %e, event, "audit entry not recorded");
    }
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    template: String,
    #[serde(default)]
    name: String,
}

async fn create_strategy(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Meta(meta): Meta,
    Form(f): Form<CreateForm>,
) -> Result {
    writer(&user)?;
    let new = strategies::NewStrategy {
        name: Some(f.name),
        description: None,
        template: Some(f.template).filter(|t| !t.trim().is_empty()),
        source: None,
    };
    let quota = strategies::Quota::from_settings(&state.ctx.settings);
    match strategies::create_within(&state.ctx.db, user.user_id, new, quota).await {
        Ok(id) => {
            record_action(
                &state,
                &meta,
                &user,
                "strategy_created",
                json!({ "strategy_id": id }),
            )
            .await;
            Ok(to(&format!("/strategies/{id}?ok=strategy_created")))
        }
        Err(Error::Invalid { field, .. }) => Ok(to(&format!("/strategies?error=strategy_{field}"))),
        Err(Error::Limit(_)) => Ok(to("/strategies?error=strategy_quota")),
        Err(e) => Err(page_error(e)),
    }
}

#[derive(Deserialize)]
struct ValidateBody {
    source: String,
}

/// `POST /strategies/validate` (JSON, `x-csrf-token`): the editor's live check.
async fn validate(MaybeUser(user): MaybeUser, Json(body): Json<ValidateBody>) -> Response {
    if user.is_none() {
        return ApiError::Unauthorized.into_response();
    }
    match strategies::validate(&body.source) {
        Ok(params) => {
            Json(json!({ "ok": true, "diagnostics": [], "params": params })).into_response()
        }
        Err(Error::Strategy(p)) => {
            Json(json!({ "ok": false, "diagnostics": p, "params": [] })).into_response()
        }
        Err(e) => json_error(e),
    }
}

#[derive(Deserialize)]
struct SaveForm {
    name: Option<String>,
    description: Option<String>,
    source: Option<String>,
    base_version: Option<i32>,
    draft_rev: Option<i32>,
}

async fn save_strategy(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Form(f): Form<SaveForm>,
) -> Result {
    writer(&user)?;
    let id = parse_id(&id)?;
    let back = format!("/strategies/{id}");
    let edit = strategies::SaveStrategy {
        name: f.name,
        description: f.description,
        source: f.source.map(|s| s.replace("\r\n", "\n")),
        base_version: f.base_version,
        draft_rev: f.draft_rev,
    };
    let quota = strategies::Quota::from_settings(&state.ctx.settings);
    match strategies::save(&state.ctx.db, user.user_id, id, edit, quota).await {
        Ok(saved) if saved.new_version => {
            record_action(
                &state,
                &meta,
                &user,
                "strategy_saved",
                json!({ "strategy_id": id, "version": saved.version }),
            )
            .await;
            Ok(to(&format!("{back}?ok=strategy_saved")))
        }
        Ok(_) => Ok(to(&format!("{back}?ok=strategy_unchanged"))),
        Err(Error::Strategy(_)) => Ok(to(&format!("{back}?error=strategy_invalid"))),
        Err(Error::Conflict(message)) => {
            // The strategy is archived, someone saved a newer version meanwhile, or another tab changed the
            // draft: say which.
            let archived = strategies::get(&state.ctx.db, user.user_id, id)
                .await
                .is_ok_and(|d| d.summary.archived);
            let code = if archived {
                "strategy_is_archived"
            } else if message == strategies::STALE_DRAFT {
                "strategy_draft_stale"
            } else {
                "strategy_stale"
            };
            Ok(to(&format!("{back}?error={code}")))
        }
        Err(Error::Limit(_)) => Ok(to(&format!("{back}?error=strategy_quota"))),
        Err(Error::Invalid { field, .. }) => Ok(to(&format!("{back}?error=strategy_{field}"))),
        Err(e) => Err(page_error(e)),
    }
}

async fn duplicate(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result {
    writer(&user)?;
    let id = parse_id(&id)?;
    let quota = strategies::Quota::from_settings(&state.ctx.settings);
    let new = match strategies::duplicate(&state.ctx.db, user.user_id, id, quota).await {
        Ok(new) => new,
        Err(Error::Limit(_)) => return Ok(to(&format!("/strategies/{id}?error=strategy_quota"))),
        Err(e) => return Err(page_error(e)),
    };
    record_action(
        &state,
        &meta,
        &user,
        "strategy_created",
        json!({ "strategy_id": new, "duplicate_of": id }),
    )
    .await;
    Ok(to(&format!("/strategies/{new}?ok=strategy_duplicated")))
}

async fn set_archived(
    state: &AppState,
    user: &AuthUser,
    meta: &backend::auth::RequestMeta,
    id: &str,
    archived: bool,
) -> Result {
    writer(user)?;
    let id = parse_id(id)?;
    strategies::set_archived(&state.ctx.db, user.user_id, id, archived)
        .await
        .map_err(page_error)?;
    let event = if archived {
        "strategy_archived"
    } else {
        "strategy_restored"
    };
    record_action(state, meta, user, event, json!({ "strategy_id": id })).await;
    Ok(to(&format!("/strategies?ok={event}")))
}

async fn archive(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result {
    set_archived(&state, &user, &meta, &id, true).await
}

async fn restore(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result {
    set_archived(&state, &user, &meta, &id, false).await
}

async fn discard_draft(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result {
    writer(&user)?;
    let id = parse_id(&id)?;
    strategies::discard_draft(&state.ctx.db, user.user_id, id)
        .await
        .map_err(page_error)?;
    Ok(to(&format!("/strategies/{id}?ok=draft_discarded")))
}

/// Builds the engine's request from the run form's fields (`param.<name>` for parameters, repeated
/// `instrument_id`, the fee in percent).
fn new_run(fields: &[(String, String)]) -> std::result::Result<runs::NewRun, Error> {
    let get = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let number = |k: &str, field: &str| -> std::result::Result<f64, Error> {
        let v = get(k);
        v.parse::<f64>().map_err(|_| Error::Invalid {
            field: field.into(),
            message: format!("`{v}` is not a number"),
        })
    };
    let strategy_id = Uuid::parse_str(&get("strategy_id")).map_err(|_| Error::NotFound)?;
    let version = match get("version").as_str() {
        "" => None,
        v => Some(v.parse::<i32>().map_err(|_| Error::Invalid {
            field: "version".into(),
            message: format!("`{v}` is not a version number"),
        })?),
    };
    // One pass, one map lookup per field: a form with a hundred thousand `param.*` fields costs a hundred
    // thousand lookups, not their square. A checkbox sends a hidden "false" and, when ticked, "true": the
    // last value wins, in the position of the name's first field.
    let mut params: Vec<(String, String)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (k, v) in fields {
        if let Some(name) = k.strip_prefix("param.") {
            match index.get(name) {
                Some(&i) => params[i].1 = v.trim().to_owned(),
                None => {
                    if params.len() >= engine::strategy::limits::MAX_PARAMS {
                        return Err(Error::Invalid {
                            field: "params".into(),
                            message: format!(
                                "the form sent more than {} parameters; a strategy declares at most that many",
                                engine::strategy::limits::MAX_PARAMS
                            ),
                        });
                    }
                    index.insert(name, params.len());
                    params.push((name.to_owned(), v.trim().to_owned()));
                }
            }
        }
    }
    let mut instrument_ids = Vec::new();
    for (k, v) in fields.iter().filter(|(k, _)| k == "instrument_id") {
        let _ = k;
        instrument_ids.push(v.trim().parse::<i32>().map_err(|_| Error::Invalid {
            field: "instrument".into(),
            message: format!("`{v}` is not an instrument"),
        })?);
    }
    Ok(runs::NewRun {
        strategy_id,
        version,
        params,
        instrument_ids,
        timeframe: get("timeframe"),
        from: get("from"),
        to: get("to"),
        initial_cash: number("initial_cash", "initial_cash")?,
        fee: number("fee_pct", "fee")? / 100.0,
        slippage_bps: number("slippage_bps", "slippage_bps")?,
        fill: Some(get("fill"))
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "next_open".into()),
    })
}

/// Back to the form with the values as typed (query string) and the error (short-lived cookie).
fn back_to_form(
    state: &AppState,
    fields: &[(String, String)],
    field: &str,
    message: &str,
) -> Response {
    // Only the form's own fields go back, clipped, so the redirect stays small whatever was posted.
    const KNOWN: &[&str] = &[
        "strategy_id",
        "version",
        "instrument_id",
        "timeframe",
        "from",
        "to",
        "initial_cash",
        "fee_pct",
        "slippage_bps",
        "fill",
    ];
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields
        .iter()
        .filter(|(k, _)| KNOWN.contains(&k.as_str()) || (k.starts_with("param.") && k.len() <= 80))
        .take(80)
    {
        let key = if k == "strategy_id" {
            "strategy"
        } else {
            k.as_str()
        };
        let v: String = v.chars().take(100).collect();
        q.append_pair(key, &v);
    }
    q.append_pair("failed", "1");
    let mut resp = to(&format!("/backtests/new?{}", q.finish()));
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

async fn create_runs(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Meta(meta): Meta,
    headers: axum::http::HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result {
    writer(&user)?;
    if !user.email_verified {
        return Ok(back_to_form(
            &state,
            &fields,
            "email",
            "Confirm your email address (see your account page) before running backtests.",
        ));
    }
    let outcome = match new_run(&fields) {
        Ok(new) => {
            let request_id = headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            runs::create(&state.ctx, user.user_id, &new, request_id).await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(created) => {
            record_action(
                &state,
                &meta,
                &user,
                "backtest_started",
                json!({ "batch_id": created.batch_id, "runs": created.run_ids }),
            )
            .await;
            let mut resp = if created.run_ids.len() == 1 {
                to(&format!("/backtests/{}", created.run_ids[0]))
            } else {
                to(&format!("/backtests?batch={}", created.batch_id))
            };
            let clear = backend::auth::session::clear_cookie(
                &state.ctx.settings,
                backend::web::FORM_ERROR_COOKIE,
            );
            if let Ok(v) = HeaderValue::from_str(&clear) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(resp)
        }
        Err(Error::Invalid { field, message }) => {
            Ok(back_to_form(&state, &fields, &field, &message))
        }
        Err(e @ (Error::Strategy(_) | Error::Limit(_) | Error::Conflict(_))) => {
            Ok(back_to_form(&state, &fields, e.code(), &e.message()))
        }
        // No such strategy in this account (or someone else's, which looks the same): back to the form without
        // it, so the form opens on one of the user's own strategies and shows why.
        Err(Error::NotFound) => {
            let kept: Vec<(String, String)> = fields
                .iter()
                .filter(|(k, _)| k != "strategy_id" && k != "version")
                .cloned()
                .collect();
            Ok(back_to_form(
                &state,
                &kept,
                "strategy",
                "there is no such strategy in your account; choose one of yours",
            ))
        }
        Err(e) => Err(page_error(e)),
    }
}

async fn cancel(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result {
    writer(&user)?;
    let id = parse_id(&id)?;
    match runs::cancel(&state.ctx.db, user.user_id, id).await {
        Ok(_) => {
            record_action(
                &state,
                &meta,
                &user,
                "backtest_cancelled",
                json!({ "backtest_run_id": id }),
            )
            .await;
            Ok(to(&format!("/backtests/{id}?ok=cancel_requested")))
        }
        Err(Error::Conflict(_)) => Ok(to(&format!("/backtests/{id}?error=already_finished"))),
        Err(e) => Err(page_error(e)),
    }
}

/// The per-user limit on decision traces (each re-runs the engine in the web process). Fails closed: when
/// Redis cannot count the request it is refused with 503.
pub(crate) async fn trace_rate_limited(
    state: &AppState,
    user: &AuthUser,
) -> std::result::Result<(), ApiError> {
    let ctx = &state.ctx;
    backend::redis::rate_limit_strict(
        &ctx.redis,
        &ctx.settings.redis_namespace,
        &format!("trace:{}", user.user_id),
        runs::TRACE_RATE_PER_MINUTE,
    )
    .await
    .map_err(ApiError::from)
}

/// The signed-in user for the JSON endpoints (401 JSON instead of a redirect).
fn json_user(user: Option<AuthUser>) -> Result<AuthUser> {
    user.ok_or_else(|| ApiError::Unauthorized.into_response())
}

fn json_id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound.into_response())
}

async fn status_json(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
) -> Result {
    let user = json_user(user)?;
    let id = json_id(&id)?;
    let st = runs::status(&state.ctx.db, user.user_id, id)
        .await
        .map_err(json_error)?;
    Ok(Json(st).into_response())
}

async fn chart_json(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
) -> Result {
    let user = json_user(user)?;
    let id = json_id(&id)?;
    let chart = runs::chart(&state.ctx.db, user.user_id, id)
        .await
        .map_err(json_error)?;
    Ok(Json(chart).into_response())
}

#[derive(Deserialize)]
struct TraceQuery {
    time: i64,
    #[serde(default)]
    span: i64,
}

async fn trace_json(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
    q: std::result::Result<Query<TraceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result {
    let user = json_user(user)?;
    let id = json_id(&id)?;
    let Query(q) =
        q.map_err(|e| ApiError::BadRequest(format!("time: {}", e.body_text())).into_response())?;
    trace_rate_limited(&state, &user)
        .await
        .map_err(IntoResponse::into_response)?;
    let trace = runs::trace(&state.ctx, user.user_id, id, q.time, q.span)
        .await
        .map_err(json_error)?;
    Ok(Json(trace).into_response())
}

async fn compare_json(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Query(q): Query<Vec<(String, String)>>,
) -> Result {
    let user = json_user(user)?;
    let mut out = Vec::new();
    for (_, v) in q.iter().filter(|(k, _)| k == "ids").take(10) {
        let id = json_id(v)?;
        let d = runs::get(&state.ctx.db, user.user_id, id)
            .await
            .map_err(json_error)?;
        if d.summary.status != "done" {
            continue;
        }
        let r = runs::result(&state.ctx.db, user.user_id, id)
            .await
            .map_err(json_error)?;
        out.push(json!({
            "id": id,
            "label": d.summary.label(),
            "time": r.equity.time,
            "equity": r.equity.equity,
        }));
    }
    Ok(Json(json!({ "runs": out })).into_response())
}

fn download(
    content_type: &'static str,
    filename: &str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let mut resp = (StatusCode::OK, body.into()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// Lets one export start: the user's per-minute export limit (failing closed when Redis cannot count) and a
/// per-process slot, held until the download ends (the permit travels with the body's stream).
pub(crate) async fn admit_export(
    state: &AppState,
    user: &AuthUser,
) -> std::result::Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    let ctx = &state.ctx;
    backend::redis::rate_limit_strict(
        &ctx.redis,
        &ctx.settings.redis_namespace,
        &format!("export:{}", user.user_id),
        ctx.settings.backtest.export_rate_per_minute,
    )
    .await?;
    state
        .limits
        .exports
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            metrics::counter!("exports_refused_total", "reason" => "busy").increment(1);
            ApiError::Unavailable(
                "too many exports are being prepared right now; try again in a moment".into(),
            )
        })
}

/// An export refusal as a page (the downloads are links followed by the browser).
fn export_refused(e: ApiError) -> Response {
    let (status, retry, title, message) = match e {
        ApiError::RateLimited(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            wait,
            "Too many downloads",
            "You have started many downloads in the last minute. Wait a moment and try again."
                .to_owned(),
        ),
        ApiError::Unavailable(m) => (
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            "Temporarily unavailable",
            format!("Downloads are busy: {m}."),
        ),
        other => return other.into_response(),
    };
    let mut r = html_error(status, title, &message);
    if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

async fn trades_csv(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result {
    let id = parse_id(&id)?;
    let permit = admit_export(&state, &user).await.map_err(export_refused)?;
    let body = backend::backtest::export::trades_csv(&state.ctx.db, user.user_id, id, permit)
        .await
        .map_err(page_error)?;
    Ok(download(
        "text/csv; charset=utf-8",
        &format!("backtest-{id}-trades.csv"),
        axum::body::Body::from_stream(body),
    ))
}

async fn result_json(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result {
    let id = parse_id(&id)?;
    let permit = admit_export(&state, &user).await.map_err(export_refused)?;
    let body = backend::backtest::export::result_json(&state.ctx.db, user.user_id, id, permit)
        .await
        .map_err(page_error)?;
    Ok(download(
        "application/json",
        &format!("backtest-{id}.json"),
        axum::body::Body::from_stream(body),
    ))
}

async fn report_html(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result {
    let id = parse_id(&id)?;
    let _permit = admit_export(&state, &user).await.map_err(export_refused)?;
    let html = report::html(&state.ctx.db, user.user_id, id)
        .await
        .map_err(page_error)?;
    Ok(download(
        "text/html; charset=utf-8",
        &format!("backtest-{id}-report.html"),
        html,
    ))
}
