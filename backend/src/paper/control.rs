//! Pause, resume and stop. Each locks the run row (waiting for an advance job that holds it), so a change
//! takes effect at the run's next candle, also when a worker holds the run right now.
//!
//! * **Pause**: the run keeps processing candles (equity, protective stops and targets keep working) under
//!   the gate `halt`: no new orders. Resume sets it back to `open`.
//! * **Stop**: no more candles are processed; the position (if any) stays as it was, marked at the last close.
//! * **Stop, flattening first**: the gate becomes `flatten`: the next processed close decides the sale, which
//!   fills at the open after it (the fill model), then the run stops (at once when it is flat already).

use uuid::Uuid;

use super::{Error, Result, Status};
use crate::{Actor, Ctx};

/// What a control action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Controlled {
    pub status: Status,
}

/// The change asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
    Stop { flatten: bool },
}

/// Applies `command` to the user's run; audited (`paper_paused`, `paper_resumed`, `paper_stopped`) in the
/// same transaction. Stopping is always allowed, also under a plan gate; a stop reconciles the user's plan
/// overages after its commit, in a transaction of its own whose failure cannot undo the stop
/// (`crate::plans::overage`).
///
/// # Errors
/// [`Error::NotFound`], [`Error::Conflict`] (e.g. resuming a run that is not paused), database errors.
pub(crate) async fn apply(
    ctx: &Ctx,
    actor: &Actor,
    user: Uuid,
    id: Uuid,
    command: Command,
) -> Result<Controlled> {
    let mut tx = ctx.db.begin().await?;
    let row = sqlx::query!(
        "select status, position is not null as \"holding!\" from paper_run
         where paper_run_id = $1 and user_id = $2 for update",
        id,
        user,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    let status = Status::parse(&row.status).unwrap_or(Status::Failed);
    let (next, gate, event) = match (command, status) {
        (Command::Pause, Status::Active) => (Status::Paused, "halt", "paper_paused"),
        (Command::Resume, Status::Paused) => (Status::Active, "open", "paper_resumed"),
        (Command::Stop { flatten: true }, Status::Active | Status::Paused) if row.holding => {
            (Status::Stopping, "flatten", "paper_stopped")
        }
        (Command::Stop { .. }, s) if s.is_live() => (Status::Stopped, "halt", "paper_stopped"),
        (Command::Pause, s) => {
            return Err(Error::Conflict(format!(
                "only an active run can be paused; this one is {s}"
            )));
        }
        (Command::Resume, s) => {
            return Err(Error::Conflict(format!(
                "only a paused run can be resumed; this one is {s}"
            )));
        }
        (Command::Stop { .. }, s) => {
            return Err(Error::Conflict(format!("this run is already {s}")));
        }
    };
    let now = ctx.clock.now();
    let stopped = next == Status::Stopped;
    sqlx::query!(
        "update paper_run set status = $2, run_gate = $3,
             stopped_at = case when $4 then $5 else stopped_at end,
             stop_reason = case when $4 then $6 else stop_reason end
         where paper_run_id = $1",
        id,
        next.as_str(),
        gate,
        stopped,
        now,
        stopped.then_some("stopped by its owner"),
    )
    .execute(&mut *tx)
    .await?;
    let flatten = matches!(command, Command::Stop { flatten: true });
    actor
        .audit(
            &mut tx,
            event,
            Some(user),
            serde_json::json!({ "paper_run_id": id, "from": status.as_str(), "to": next.as_str(), "flatten": flatten }),
        )
        .await?;
    super::advance::notify_changed(&mut tx, &[id.to_string()]).await?;
    tx.commit().await?;
    // A stopped run no longer counts: an overage of the plan's active paper runs may shrink or end now. After
    // the commit, in its own transaction: its failure cannot undo the stop (logged; the sweep repeats it).
    if stopped {
        crate::plans::overage::reconcile_after(ctx, actor, user).await;
    }
    Ok(Controlled { status: next })
}
