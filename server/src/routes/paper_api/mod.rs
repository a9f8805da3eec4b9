//! `/api/v1/paper-runs…`: start paper runs (one per instrument, each on a live feed), list and inspect them
//! (fills, trades, equity, processed candles with their decisions), pause, resume and stop them, and the
//! parity report. The actions in `backend::paper::actions` decide who may (reads: any token; control: a
//! read-write token of a non-viewer; start: also a confirmed email address) and scope every read to the
//! token's user: another user's run answers 404. Inbound signals ([`signals`]): a run's settings and received
//! list, and the public signal URL `POST /api/v1/signals/{run_id}` (authorized by the run's secret).

pub mod dto;
pub mod kill;
pub mod runs;
pub mod signals;

use axum::{
    Router,
    routing::{get, patch, post},
};

use self::runs::{
    get_paper_run, list_paper_candles, list_paper_fills, list_paper_runs, list_paper_trades,
    paper_equity, paper_parity, pause_paper_run, release_paper_risk_locks, resume_paper_run,
    set_paper_risk_limits, start_paper_run, stop_paper_run,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/paper-runs",
            get(list_paper_runs).post(start_paper_run),
        )
        .route("/api/v1/paper-runs/{id}", get(get_paper_run))
        .route("/api/v1/paper-runs/{id}/fills", get(list_paper_fills))
        .route("/api/v1/paper-runs/{id}/trades", get(list_paper_trades))
        .route("/api/v1/paper-runs/{id}/candles", get(list_paper_candles))
        .route("/api/v1/paper-runs/{id}/equity", get(paper_equity))
        .route("/api/v1/paper-runs/{id}/parity", get(paper_parity))
        .route("/api/v1/paper-runs/{id}/pause", post(pause_paper_run))
        .route("/api/v1/paper-runs/{id}/resume", post(resume_paper_run))
        .route("/api/v1/paper-runs/{id}/stop", post(stop_paper_run))
        .route("/api/v1/paper-runs/{id}/risk", patch(set_paper_risk_limits))
        .route(
            "/api/v1/paper-runs/{id}/risk/release",
            post(release_paper_risk_locks),
        )
        .route(
            "/api/v1/paper-runs/{id}/signals",
            get(signals::list_paper_signals).put(signals::set_paper_signals),
        )
        .route("/api/v1/signals/{run_id}", post(signals::receive_signal))
        .route(
            "/api/v1/kill-switches",
            get(kill::list_kill_switches).post(kill::throw_kill_switch),
        )
        .route(
            "/api/v1/kill-switches/{id}/release",
            post(kill::release_kill_switch),
        )
        .route(
            "/api/v1/admin/kill-switches",
            get(kill::admin_list_kill_switches).post(kill::admin_throw_kill_switch),
        )
}
