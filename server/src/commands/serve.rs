//! `vortex serve`: the web application, with the background workers in-process unless `--no-worker`.

use std::process::ExitCode;

use backend::Ctx;
use clap::Args;

use super::{WORKER_SHUTDOWN_TIMEOUT, shutdown_signal};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Do not run background workers in this process (run `vortex worker` separately).
    #[arg(long)]
    pub no_worker: bool,
    /// Apply pending database migrations before serving.
    #[arg(long)]
    pub migrate: bool,
}

/// Runs `vortex serve` until SIGTERM or Ctrl-C.
///
/// # Errors
/// Migrations, binding the port, or the server failing.
pub async fn run(ctx: Ctx, args: ServeArgs) -> anyhow::Result<ExitCode> {
    serve(ctx, !args.no_worker, args.migrate).await
}

async fn serve(ctx: Ctx, with_worker: bool, migrate: bool) -> anyhow::Result<ExitCode> {
    if migrate {
        backend::backtest::catalogue::migrate_and_seed(&ctx.db).await?;
        tracing::info!("migrations applied");
    }
    let shutdown = shutdown_signal();
    backend::telemetry::start_upkeep();
    let app = crate::Application::build(ctx.clone()).await?;
    tracing::info!(
        addr = %ctx.settings.bind_addr.ip(),
        port = app.port(),
        public_url = %ctx.settings.public_url,
        with_worker,
        "vortex listening"
    );
    let workers = with_worker
        .then(|| tokio::spawn(backend::jobs::worker::run(ctx.clone(), shutdown.clone())));
    let result = app.run_until_stopped(shutdown).await;
    if let Some(w) = workers
        && tokio::time::timeout(WORKER_SHUTDOWN_TIMEOUT, w)
            .await
            .is_err()
    {
        tracing::warn!(
            "workers did not stop in time; their jobs will be re-run after the lease expires"
        );
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
