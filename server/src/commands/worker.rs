//! `vortex worker`: background workers only, for some or all queues.

use std::process::ExitCode;

use backend::Ctx;
use clap::Args;

use super::{WORKER_SHUTDOWN_TIMEOUT, shutdown_signal};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Queues to serve, each with an optional concurrency: `backtest=2,mail=4,market` (queues: default,
    /// mail, market, backtest; default: all of them, each with WORKER_CONCURRENCY). Scale backtest workers
    /// apart from mail and ETL by running several `vortex worker` processes with different lists.
    #[arg(long, env = "WORKER_QUEUES")]
    pub queues: Option<String>,
}

/// Runs `vortex worker` until SIGTERM or Ctrl-C; a bad `--queues` exits 2.
///
/// # Errors
/// None today beyond start-up; kept fallible like every command.
pub async fn run(ctx: Ctx, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let queues = match args.queues {
        None => backend::jobs::worker::all_queues(&ctx),
        Some(spec) => {
            match backend::jobs::worker::parse_queues(&spec, ctx.settings.jobs.concurrency) {
                Ok(q) => q,
                Err(e) => {
                    eprintln!("--queues: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    };
    worker(ctx, queues).await
}

async fn worker(
    ctx: Ctx,
    queues: Vec<backend::jobs::worker::QueueSpec>,
) -> anyhow::Result<ExitCode> {
    let shutdown = shutdown_signal();
    if let Some(addr) = ctx.settings.metrics_addr {
        tokio::spawn(crate::startup::serve_worker_probes(
            ctx.clone(),
            addr,
            shutdown.clone(),
        ));
    }
    let mut stop = shutdown.clone();
    let run = tokio::spawn(backend::jobs::worker::run_queues(ctx, queues, shutdown));
    let _ = stop.wait_for(|s| *s).await;
    if tokio::time::timeout(WORKER_SHUTDOWN_TIMEOUT, run)
        .await
        .is_err()
    {
        tracing::warn!(
            "workers did not stop in time; their jobs will be re-run after the lease expires"
        );
    }
    Ok(ExitCode::SUCCESS)
}
