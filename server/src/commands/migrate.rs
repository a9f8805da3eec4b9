//! `vortex migrate`: apply pending database migrations and exit.

use std::process::ExitCode;

use backend::Ctx;

/// Runs `vortex migrate`.
///
/// # Errors
/// A migration failed or the database is unreachable.
pub async fn run(ctx: Ctx) -> anyhow::Result<ExitCode> {
    backend::backtest::catalogue::migrate_and_seed(&ctx.db).await?;
    tracing::info!("migrations applied");
    Ok(ExitCode::SUCCESS)
}
