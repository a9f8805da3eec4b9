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
        risk::RiskInput,
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
        risk: risk_input(fields)?,
    })
}

/// The risk limit fields of a form (`risk_mode`, `max_drawdown_pct`, `daily_loss`, `daily_loss_pct`,
/// `max_consecutive_losses`, `max_position_value`, `max_orders_per_day`, `stale_feed_secs`): empty = unchanged
/// (at start: the default), 0 = off.
fn risk_input(fields: &[(String, String)]) -> Result<RiskInput, Error> {
    let get = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let number = |k: &str| -> Result<Option<f64>, Error> {
        get(k)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| Error::invalid(k, format!("`{v}` is not a number")))
            })
            .transpose()
    };
    let whole = |k: &str| -> Result<Option<i64>, Error> {
        get(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| Error::invalid(k, format!("`{v}` is not a whole number")))
            })
            .transpose()
    };
    let small = |k: &str| -> Result<Option<i32>, Error> {
        whole(k)?
            .map(|v| i32::try_from(v).map_err(|_| Error::invalid(k, format!("`{v}` is too large"))))
            .transpose()
    };
    Ok(RiskInput {
        mode: get("risk_mode"),
        max_drawdown_pct: number("max_drawdown_pct")?,
        daily_loss: number("daily_loss")?,
        daily_loss_pct: number("daily_loss_pct")?,
        max_consecutive_losses: small("max_consecutive_losses")?,
        max_position_value: number("max_position_value")?,
        max_orders_per_day: small("max_orders_per_day")?,
        stale_feed_secs: whole("stale_feed_secs")?,
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
        "risk_mode",
        "max_drawdown_pct",
        "daily_loss",
        "daily_loss_pct",
        "max_consecutive_losses",
        "max_position_value",
        "max_orders_per_day",
        "stale_feed_secs",
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

/// Back to the run page with the error of one of its forms (field and message in the short-lived form-error
/// cookie, shown next to that form).
fn back_to_run(state: &AppState, id: Uuid, field: &str, message: &str) -> Response {
    let mut resp = to(&Flash::PaperFormInvalid.redirect_to(&format!("/paper/{id}")));
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

/// After a change on the run page: the flash, and the form-error cookie cleared.
fn done_on_run(state: &AppState, id: Uuid, flash: Flash) -> Response {
    let mut resp = to(&flash.redirect_to(&format!("/paper/{id}")));
    let clear =
        backend::auth::session::clear_cookie(&state.ctx.settings, backend::web::FORM_ERROR_COOKIE);
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// A run (or switch) id from the path; anything else is "not found".
fn run_id(id: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(id).map_err(|_| Error::NotFound)
}

/// The run page's risk limits form (fields as [`risk_input`]: empty = unchanged, 0 = off).
pub(super) async fn risk(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> HtmlResult {
    let id = run_id(&id).map_err(page)?;
    if fields.len() > MAX_FIELDS {
        return Ok(back_to_run(
            &state,
            id,
            "risk",
            "the form sent too many fields",
        ));
    }
    let outcome = match risk_input(&fields) {
        Ok(input) => act::set_risk_limits(&actor, &state.ctx, Owner::Me, id, &input).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(done_on_run(&state, id, Flash::PaperRiskChanged)),
        Err(Error::Invalid { field, message }) => Ok(back_to_run(&state, id, &field, &message)),
        Err(Error::Conflict(_)) => Ok(to(&Flash::PaperNotNow.redirect_to(&format!("/paper/{id}")))),
        Err(e) => Err(page(e)),
    }
}

/// Releasing the run's risk locks (an optional `reason`).
#[derive(serde::Deserialize)]
pub(super) struct ReasonForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    mode: String,
}

pub(super) async fn risk_release(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> HtmlResult {
    let id = run_id(&id).map_err(page)?;
    let reason = Some(form.reason.as_str()).filter(|r| !r.trim().is_empty());
    match act::release_risk_locks(&actor, &state.ctx, Owner::Me, id, None, reason).await {
        Ok(_) => Ok(done_on_run(&state, id, Flash::PaperRiskReleased)),
        Err(Error::Invalid { field, message }) => Ok(back_to_run(&state, id, &field, &message)),
        Err(Error::Conflict(_)) => Ok(to(&Flash::PaperNotNow.redirect_to(&format!("/paper/{id}")))),
        Err(e) => Err(page(e)),
    }
}

/// Throwing the run's own kill switch (`mode`, `reason`).
pub(super) async fn kill(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> HtmlResult {
    let id = run_id(&id).map_err(page)?;
    match act::throw_switch(
        &actor,
        &state.ctx,
        backend::paper::kill::Scope::Run(id),
        &form.mode,
        &form.reason,
    )
    .await
    {
        Ok(_) => Ok(done_on_run(&state, id, Flash::PaperSwitchThrown)),
        Err(Error::Invalid { field, message }) => {
            Ok(back_to_run(&state, id, &format!("kill_{field}"), &message))
        }
        Err(e) => Err(page(e)),
    }
}

/// Releasing a kill switch over the run (one an administrator threw needs an administrator).
pub(super) async fn kill_release(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path((id, switch)): Path<(String, String)>,
    Form(form): Form<ReasonForm>,
) -> HtmlResult {
    let id = run_id(&id).map_err(page)?;
    let switch = run_id(&switch).map_err(page)?;
    let reason = Some(form.reason.as_str()).filter(|r| !r.trim().is_empty());
    match act::release_switch(&actor, &state.ctx, switch, reason).await {
        Ok(_) => Ok(done_on_run(&state, id, Flash::PaperSwitchReleased)),
        Err(Error::Invalid { field, message }) => {
            Ok(back_to_run(&state, id, &format!("kill_{field}"), &message))
        }
        Err(Error::Forbidden(m)) => Err(HtmlError::page(
            StatusCode::FORBIDDEN,
            "Only an administrator can release this switch",
            &m,
        )),
        Err(e) => Err(page(e)),
    }
}
