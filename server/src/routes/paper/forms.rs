//! Paper-run form posts: start runs (one per chosen instrument) and pause, resume or stop one.

use app::flash::Flash;
use axum::{
    Form as AxumForm,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
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
    routes::run_form::{Fields, Form, page, to},
    state::AppState,
};

/// Most form fields read (a dozen settings plus the strategy's parameters and the chosen instruments).
const MAX_FIELDS: usize = 200;

/// The paper-run start form.
const FORM: Form = Form {
    page: "/paper/new",
    runs: "/paper",
    known: &[
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
    ],
    unconfirmed: "Confirm your email address (see your account page) before starting paper runs.",
};

/// Builds the start request from the form's fields (an empty fee is no fee, which the action refuses).
fn new_run(fields: &[(String, String)]) -> Result<NewPaperRun, Error> {
    let f = Fields::at_most(fields, MAX_FIELDS)?;
    let (strategy_id, version) = f.strategy()?;
    let fee = match f.get("fee_pct").as_str() {
        "" => None,
        _ => Some(f.number("fee_pct", "fee")? / 100.0),
    };
    Ok(NewPaperRun {
        strategy_id,
        version,
        params: f.params()?,
        instrument_ids: f.instrument_ids()?,
        timeframe: f.get("timeframe"),
        initial_cash: f.number("initial_cash", "initial_cash")?,
        fee,
        slippage_bps: f.number("slippage_bps", "slippage_bps")?,
        fill: f.fill(),
        warmup_bars: f.optional("warmup_bars", "warmup_bars", "a whole number")?,
        risk: risk_input(&f)?,
    })
}

/// The risk limit fields of a form (`risk_mode`, `max_drawdown_pct`, `daily_loss`, `daily_loss_pct`,
/// `max_consecutive_losses`, `max_position_value`, `max_orders_per_day`, `stale_feed_secs`): empty = unchanged
/// (at start: the default), 0 = off.
fn risk_input(f: &Fields<'_>) -> Result<RiskInput, Error> {
    let number = |k: &str| f.optional::<f64>(k, k, "a number");
    let whole = |k: &str| f.optional::<i32>(k, k, "a whole number below 2,147,483,648");
    Ok(RiskInput {
        mode: Some(f.get("risk_mode")).filter(|m| !m.is_empty()),
        max_drawdown_pct: number("max_drawdown_pct")?,
        daily_loss: number("daily_loss")?,
        daily_loss_pct: number("daily_loss_pct")?,
        max_consecutive_losses: whole("max_consecutive_losses")?,
        max_position_value: number("max_position_value")?,
        max_orders_per_day: whole("max_orders_per_day")?,
        stale_feed_secs: f.optional::<i64>(
            "stale_feed_secs",
            "stale_feed_secs",
            "a whole number",
        )?,
    })
}

pub(super) async fn create(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    AxumForm(fields): AxumForm<Vec<(String, String)>>,
) -> HtmlResult {
    let outcome = match new_run(&fields) {
        Ok(new) => act::start(&actor, &state.ctx, Owner::Me, &new)
            .await
            .map(|s| (s.run_ids, s.batch_id)),
        Err(e) => Err(e),
    };
    FORM.answer(&state, &fields, outcome)
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
    AxumForm(form): AxumForm<StopForm>,
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
    AxumForm(fields): AxumForm<Vec<(String, String)>>,
) -> HtmlResult {
    let id = run_id(&id).map_err(page)?;
    let outcome = match Fields::at_most(&fields, MAX_FIELDS).and_then(|f| risk_input(&f)) {
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
    AxumForm(form): AxumForm<ReasonForm>,
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
    AxumForm(form): AxumForm<ReasonForm>,
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
        Err(Error::Conflict(m)) => Ok(back_to_run(&state, id, "kill_mode", &m)),
        Err(e) => Err(page(e)),
    }
}

/// Releasing a kill switch over the run (one an administrator threw needs an administrator).
pub(super) async fn kill_release(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path((id, switch)): Path<(String, String)>,
    AxumForm(form): AxumForm<ReasonForm>,
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

/// The run page's inbound-signal form: `signal_mode` (`off`, `gate`), `allow_ips` (comma- or space-separated),
/// `rotate`. A new secret is shown on the answer page, once (nothing keeps it); otherwise back to the run.
pub(super) async fn signals(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
    AxumForm(fields): AxumForm<Vec<(String, String)>>,
) -> HtmlResult {
    let id = run_id(&id).map_err(page)?;
    let get = |k: &str| {
        fields
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.trim().to_owned())
    };
    let change = backend::paper::signals::SignalChange {
        mode: get("signal_mode").filter(|m| !m.is_empty()),
        allow_ips: get("allow_ips").map(|s| {
            s.split([',', ' ', '\n'])
                .filter(|x| !x.trim().is_empty())
                .map(|x| x.trim().to_owned())
                .collect()
        }),
        rotate: get("rotate").is_some_and(|v| !v.is_empty()),
    };
    match act::configure_signals(&actor, &state.ctx, Owner::Me, id, &change).await {
        Ok(changed) => match changed.secret {
            None => Ok(done_on_run(&state, id, Flash::PaperSignalsChanged)),
            Some(secret) => Ok(secret_page(&state, id, &secret)),
        },
        Err(Error::Invalid { field, message }) => Ok(back_to_run(&state, id, &field, &message)),
        Err(Error::Conflict(_)) => Ok(to(&Flash::PaperNotNow.redirect_to(&format!("/paper/{id}")))),
        Err(e) => Err(page(e)),
    }
}

/// The one page that shows a run's new signal secret (hex and a UUID: nothing to escape), never cached.
fn secret_page(
    state: &AppState,
    id: Uuid,
    secret: &backend::paper::signals::NewSecret,
) -> Response {
    let url = format!(
        "{}/api/v1/signals/{id}",
        state.ctx.settings.public_url.as_str().trim_end_matches('/')
    );
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Signal secret · Vortex</title>\
         <link rel=\"stylesheet\" href=\"/pkg/vortex.css\"></head><body><main class=\"container\">\
         <h1>The run's new signal secret</h1>\
         <p class=\"notice\">Copy it now: it is shown once and never stored (only its hash). The old secret no \
         longer works.</p>\
         <dl class=\"kv\"><dt>Webhook URL</dt><dd><code id=\"signal-url\">{url}</code></dd>\
         <dt>Token (for the alert message)</dt><dd><code id=\"signal-token\">{token}</code></dd>\
         <dt>Signing key (for X-Vortex-Signature)</dt><dd><code id=\"signal-key\">{key}</code></dd></dl>\
         <p>TradingView alert message:</p>\
         <pre><code>{{\"action\": \"{{{{strategy.order.action}}}}\", \"ticker\": \"{{{{ticker}}}}\", \
         \"time\": \"{{{{timenow}}}}\", \"token\": \"{token}\"}}</code></pre>\
         <p><a class=\"button\" href=\"/paper/{id}\">Back to the run</a></p></main></body></html>",
        token = secret.token,
        key = secret.signing_key,
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
