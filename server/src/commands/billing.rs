//! `vortex billing reconcile|runs`: the reconciliation with the payment provider from the command line
//! (docs/billing.md, "Reconciliation"), as the operator ([`Actor::system`], surface `cli`) through the same
//! actions as "Reconcile now" and `GET /api/v1/admin/billing/reconcile`.

use std::process::ExitCode;

use backend::{Actor, Ctx, actor::Surface, billing::reconcile};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Queue a reconciliation run now (a worker serving the `default` queue runs it); refused while one is
    /// queued or running, or when billing is off.
    Reconcile,
    /// Show the newest reconciliation runs and whether one is pending.
    Runs {
        /// How many runs (1 to 50).
        #[arg(long, default_value_t = 10)]
        limit: i64,
    },
}

fn print_run(r: &reconcile::Run) {
    println!(
        "{}  {:<8} {:<9} events {} listed / {} processed now / {} before, {} pages{}  subscriptions {} stored / {} failed",
        r.started_at.format("%Y-%m-%d %H:%M:%S"),
        r.trigger,
        r.outcome,
        r.events_seen,
        r.events_processed,
        r.events_duplicate,
        r.pages,
        if r.events_complete {
            ""
        } else {
            " (window not finished)"
        },
        r.subscriptions_synced,
        r.subscriptions_failed,
    );
    for e in &r.errors {
        println!("    error: {e}");
    }
}

/// Runs `vortex billing …`. Exit 0 on success, 1 for a refused action, 2 for bad input.
///
/// # Errors
/// Database errors.
pub async fn run(ctx: Ctx, command: BillingCommand) -> anyhow::Result<ExitCode> {
    let actor = Actor::system(Surface::Cli);
    let result = match command {
        BillingCommand::Reconcile => reconcile::request(&actor, &ctx).await.map(|job| {
            println!("reconciliation queued as job {job}; `vortex billing runs` shows its result");
        }),
        BillingCommand::Runs { limit } => reconcile::overview(&actor, &ctx, limit).await.map(|o| {
            if !o.enabled {
                println!("billing is off (PAYMENT_PROVIDER=none): nothing is reconciled");
            }
            if o.pending {
                println!("a run is queued or running");
            }
            if o.runs.is_empty() {
                println!("no reconciliation has run yet");
            }
            for r in &o.runs {
                print_run(r);
            }
        }),
    };
    super::plans::exit(result)
}
