//! `vortex check-config`: validate the configuration (and with `--verify-connections`, reach Postgres,
//! Redis and SMTP); exit non-zero with one line per problem.

use std::{process::ExitCode, time::Duration};

use backend::{Ctx, settings::Settings};
use clap::Args;

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Also connect to Postgres, Redis and SMTP.
    #[arg(long)]
    pub verify_connections: bool,
}

/// Runs `vortex check-config` (settings were already parsed: a parse failure never gets here).
///
/// # Errors
/// The connection pools could not be built.
pub async fn run(settings: Settings, args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    check_config(settings, args.verify_connections).await
}

async fn check_config(settings: Settings, verify: bool) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    if verify {
        let ctx = Ctx::new(settings.clone())?;
        for check in ctx.readiness().await.checks {
            if let Some(e) = check.error {
                problems.push(format!(
                    "{}: cannot connect: {e}",
                    match check.name {
                        "postgres" => "DATABASE_URL",
                        "redis" => "REDIS_URL",
                        other => other,
                    }
                ));
            }
        }
        if ctx.mailer.is_configured() {
            if let Err(e) = tokio::time::timeout(Duration::from_secs(10), ctx.mailer.ping())
                .await
                .unwrap_or_else(|_| Err("no answer within 10 s".into()))
            {
                problems.push(format!("SMTP_URL: {e}"));
            }
        } else if settings.is_production() {
            problems.push("SMTP_URL: is not set".into());
        }
    }
    if problems.is_empty() {
        println!(
            "configuration OK (environment: {}{})",
            settings.app_env,
            if verify { ", connections verified" } else { "" }
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        Ok(ExitCode::FAILURE)
    }
}
