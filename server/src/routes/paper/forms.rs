//! Paper-run form posts: start runs (one per chosen instrument) and pause, resume or stop one.

use app::flash::Flash;
use axum::{
    Form as AxumForm,
    extract::{Path, State},
};
use backend::{
    Error,
    paper::{
        NewPaperRun, Status,
        actions::{self as act, Owner},
        control::Command,
    },
};
use uuid::Uuid;

use crate::{
    error::HtmlResult,
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
