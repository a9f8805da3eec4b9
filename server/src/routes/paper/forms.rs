//! Paper-run form posts: start runs (one per chosen instrument) and pause, resume or stop one.

use app::flash::Flash;
use axum::{
    Form,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use backend::{
    Error,
    paper::{
        NewPaperRun, Status,
        actions::{self as act, Owner},
        control::Command,
    },
};
use serde_json::json;
use uuid::Uuid;

use crate::{
    error::{HtmlError, HtmlResult},
    extract::WebActor,
    state::AppState,
};

/// Most form fields read (the start form has a dozen plus the strategy's parameters and instruments).
const MAX_FIELDS: usize = 200;

fn to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A refusal as an HTML page; a refused write of a read-only account says so in its title.
fn page(e: Error) -> HtmlError {
    match e {
        Error::Forbidden(m) => HtmlError::page(StatusCode::FORBIDDEN, "Read-only account", &m),
        other => other.into(),
    }
}

/// Builds the start request from the form's fields (`param.<name>` for parameters, repeated
/// `instrument_id`, the fee in percent; an empty fee is no fee, which the action refuses).
fn new_run(fields: &[(String, String)]) -> Result<NewPaperRun, Error> {
    if fields.len() > MAX_FIELDS {
        return Err(Error::invalid(
            "params",
            format!("the form sent more than {MAX_FIELDS} fields"),
        ));
    }
    let get = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let number = |k: &str, field: &str| -> Result<f64, Error> {
        let v = get(k);
        v.parse::<f64>()
            .map_err(|_| Error::invalid(field, format!("`{v}` is not a number")))
    };
    let strategy_id = Uuid::parse_str(&get("strategy_id")).map_err(|_| Error::NotFound)?;
    let version = match get("version").as_str() {
        "" => None,
        v => Some(
            v.parse::<i32>()
                .map_err(|_| Error::invalid("version", format!("`{v}` is not a version number")))?,
        ),
    };
    // A checkbox sends a hidden "false" and, when ticked, "true": the last value wins.
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in fields {
        if let Some(name) = k.strip_prefix("param.") {
            match params.iter_mut().find(|(n, _)| n == name) {
                Some(p) => p.1 = v.trim().to_owned(),
                None => {
                    if params.len() >= engine::strategy::limits::MAX_PARAMS {
                        return Err(Error::invalid(
                            "params",
                            format!(
                                "the form sent more than {} parameters; a strategy declares at most that many",
                                engine::strategy::limits::MAX_PARAMS
                            ),
                        ));
                    }
                    params.push((name.to_owned(), v.trim().to_owned()));
                }
            }
        }
    }
    let mut instrument_ids = Vec::new();
    for (_, v) in fields.iter().filter(|(k, _)| k == "instrument_id") {
        instrument_ids.push(
            v.trim()
                .parse::<i32>()
                .map_err(|_| Error::invalid("instrument", format!("`{v}` is not an instrument")))?,
        );
    }
    let fee = match get("fee_pct").as_str() {
        "" => None,
        _ => Some(number("fee_pct", "fee")? / 100.0),
    };
    let warmup_bars =
        match get("warmup_bars").as_str() {
            "" => None,
            v => Some(v.parse::<i64>().map_err(|_| {
                Error::invalid("warmup_bars", format!("`{v}` is not a whole number"))
            })?),
        };
    Ok(NewPaperRun {
        strategy_id,
        version,
        params,
        instrument_ids,
        timeframe: get("timeframe"),
        initial_cash: number("initial_cash", "initial_cash")?,
        fee,
        slippage_bps: number("slippage_bps", "slippage_bps")?,
        fill: Some(get("fill"))
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "next_open".into()),
        warmup_bars,
    })
}

/// Back to the form with the values as typed (query string) and the error (short-lived cookie).
fn back_to_form(
    state: &AppState,
    fields: &[(String, String)],
    field: &str,
    message: &str,
) -> Response {
    const KNOWN: &[&str] = &[
        "strategy_id",
        "version",
        "instrument_id",
        "timeframe",
        "initial_cash",
        "fee_pct",
        "slippage_bps",
        "fill",
        "warmup_bars",
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
    let mut resp = to(&format!("/paper/new?{}", q.finish()));
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

pub(super) async fn create(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(fields): Form<Vec<(String, String)>>,
) -> HtmlResult {
    let outcome = match new_run(&fields) {
        Ok(new) => act::start(&actor, &state.ctx, Owner::Me, &new).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(started) => {
            let mut resp = if started.run_ids.len() == 1 {
                to(&format!("/paper/{}", started.run_ids[0]))
            } else {
                to(&format!("/paper?batch={}", started.batch_id))
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
        Err(Error::EmailUnconfirmed) => Ok(back_to_form(
            &state,
            &fields,
            "email",
            "Confirm your email address (see your account page) before starting paper runs.",
        )),
        Err(Error::Invalid { field, message }) => {
            Ok(back_to_form(&state, &fields, &field, &message))
        }
        Err(e @ (Error::Strategy(_) | Error::Limit(_) | Error::Conflict(_))) => {
            Ok(back_to_form(&state, &fields, e.code(), &e.message()))
        }
        // No such strategy in this account (or someone else's, which looks the same).
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
        Err(e) => Err(page(e)),
    }
}

async fn control(
    state: &AppState,
    actor: &backend::Actor,
    id: &str,
    command: Command,
) -> HtmlResult {
    let id = Uuid::parse_str(id).map_err(|_| page(Error::NotFound))?;
    let back = format!("/paper/{id}");
    match act::control(actor, &state.ctx, Owner::Me, id, command).await {
        Ok(done) => {
            let flash = match done.status {
                Status::Paused => Flash::PaperPaused,
                Status::Active => Flash::PaperResumed,
                Status::Stopping => Flash::PaperStopping,
                Status::Stopped | Status::Failed => Flash::PaperStopped,
            };
            Ok(to(&flash.redirect_to(&back)))
        }
        Err(Error::Conflict(_)) => Ok(to(&Flash::PaperNotNow.redirect_to(&back))),
        Err(e) => Err(page(e)),
    }
}

pub(super) async fn pause(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    control(&state, &actor, &id, Command::Pause).await
}

pub(super) async fn resume(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    control(&state, &actor, &id, Command::Resume).await
}

/// The stop form: `flatten=1` sells the position at the next open first, anything else stops now.
#[derive(serde::Deserialize)]
pub(super) struct StopForm {
    #[serde(default)]
    flatten: String,
}

pub(super) async fn stop(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
    Form(form): Form<StopForm>,
) -> HtmlResult {
    let flatten = matches!(form.flatten.trim(), "1" | "true" | "on");
    control(&state, &actor, &id, Command::Stop { flatten }).await
}
