//! `vortex jobs list|show|retry|housekeeping`: operator commands for the job queue.

use std::process::ExitCode;

use backend::Ctx;
use clap::Subcommand;
use uuid::Uuid;

use super::values::JobStatusArg;

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List recent jobs.
    List {
        /// Only jobs with this status (queued, running, done, failed, cancelled).
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<JobStatusArg>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one job as JSON.
    Show { job_id: Uuid },
    /// Re-drive a failed or cancelled job.
    Retry { job_id: Uuid },
    /// Enqueue a housekeeping run now.
    Housekeeping,
}

/// Runs `vortex jobs …`.
///
/// # Errors
/// Database errors.
pub async fn run(ctx: Ctx, command: JobsCommand) -> anyhow::Result<ExitCode> {
    use backend::jobs::store;
    match command {
        JobsCommand::List { status, limit } => {
            for j in store::list(
                &ctx.db,
                status.map(JobStatusArg::as_str),
                limit.clamp(1, 1000),
            )
            .await?
            {
                // A queued job that already failed waits for its retry: say when.
                let next = if j.status == "queued" && j.attempts > 0 {
                    format!("  next try {}", j.run_at.to_rfc3339())
                } else {
                    String::new()
                };
                println!(
                    "{}  {:<9} {:<14} attempts {}/{}  {}{next}  {}",
                    j.job_id,
                    j.status,
                    j.kind,
                    j.attempts,
                    j.max_attempts,
                    j.enqueued_at.to_rfc3339(),
                    j.last_error.unwrap_or_default()
                );
            }
        }
        JobsCommand::Show { job_id } => match store::get(&ctx.db, job_id).await? {
            Some(j) => println!("{}", serde_json::to_string_pretty(&j)?),
            None => {
                eprintln!("no job {job_id}");
                return Ok(ExitCode::FAILURE);
            }
        },
        JobsCommand::Retry { job_id } => match store::redrive(&ctx.db, job_id).await? {
            Some(queue) => {
                if ctx.jobs.push(&queue, job_id).await {
                    println!("job {job_id} queued again");
                } else {
                    println!("job {job_id} queued again (a worker's reconciler delivers it)");
                }
            }
            None => {
                eprintln!("job {job_id} does not exist or is not failed/cancelled");
                return Ok(ExitCode::FAILURE);
            }
        },
        JobsCommand::Housekeeping => {
            match backend::jobs::housekeeping::enqueue(&ctx, None, false).await? {
                Some(id) => println!("housekeeping job {id} queued"),
                None => println!("a housekeeping job is already pending"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
