//! Backtest form posts: start runs (one per chosen instrument) and cancel one.

use app::flash::Flash;
use axum::{
    Form as AxumForm,
    extract::{Path, State},
};
use backend::{
    Error,
    backtest::{actions::runs as act, runs},
};

use super::{page, parse_id, to};
use crate::{
    error::HtmlResult,
    extract::WebActor,
    routes::run_form::{Fields, Form},
    state::AppState,
};

/// The backtest form.
const FORM: Form = Form {
    page: "/backtests/new",
    runs: "/backtests",
    known: &[
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
    ],
    unconfirmed: "Confirm your email address (see your account page) before running backtests.",
};

/// Builds the engine's request from the run form's fields.
fn new_run(fields: &[(String, String)]) -> Result<runs::NewRun, Error> {
    let f = Fields(fields);
    let (strategy_id, version) = f.strategy()?;
    Ok(runs::NewRun {
        strategy_id,
        version,
        params: f.params()?,
        instrument_ids: f.instrument_ids()?,
        timeframe: f.get("timeframe"),
        from: f.get("from"),
        to: f.get("to"),
        initial_cash: f.number("initial_cash", "initial_cash")?,
        fee: f.number("fee_pct", "fee")? / 100.0,
        slippage_bps: f.number("slippage_bps", "slippage_bps")?,
        fill: f.fill(),
    })
}

pub(super) async fn create(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    AxumForm(fields): AxumForm<Vec<(String, String)>>,
) -> HtmlResult {
    let outcome = match new_run(&fields) {
        Ok(new) => act::submit(&actor, &state.ctx, &new)
            .await
            .map(|c| (c.run_ids, c.batch_id)),
        Err(e) => Err(e),
    };
    FORM.answer(&state, &fields, outcome)
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    let back = format!("/backtests/{id}");
    match act::cancel(&actor, &state.ctx, id).await {
        Ok(_) => Ok(to(&Flash::CancelRequested.redirect_to(&back))),
        Err(Error::Conflict(_)) => Ok(to(&Flash::AlreadyFinished.redirect_to(&back))),
        Err(e) => Err(page(e)),
    }
}
