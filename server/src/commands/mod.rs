//! `vortex`: one binary for every process type.
//!
//! ```text
//! vortex serve [--no-worker] [--migrate]   web server (+ in-process workers unless --no-worker)
//! vortex worker [--queues backtest=2,mail]   background workers only (run N of them on N machines)
//! vortex migrate                           apply database migrations
//! vortex check-config [--verify-connections]
//! vortex jobs list|show|retry|housekeeping operator commands for the job queue
//! vortex create-admin --email …           create or promote an admin (password from stdin or a file)
//! vortex run-etl --assets BTC,ETH --mode daily|backfill …   market data from the exchange or CSV
//! vortex mock-exchange --port 9100 --data data/market       a local Binance-compatible exchange
//! ```

use std::{process::ExitCode, time::Duration};

use backend::{
    Ctx,
    settings::{self, Settings},
};
use clap::{Parser, Subcommand};
use tokio::sync::watch;
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "vortex", version, about = "Vortex trading-strategy platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web application (and run the background workers in-process unless --no-worker).
    Serve {
        /// Do not run background workers in this process (run `vortex worker` separately).
        #[arg(long)]
        no_worker: bool,
        /// Apply pending database migrations before serving.
        #[arg(long)]
        migrate: bool,
    },
    /// Run background workers only.
    Worker {
        /// Queues to serve, each with an optional concurrency: `backtest=2,mail=4,market` (queues: default,
        /// mail, market, backtest; default: all of them, each with WORKER_CONCURRENCY). Scale backtest workers
        /// apart from mail and ETL by running several `vortex worker` processes with different lists.
        #[arg(long, env = "WORKER_QUEUES")]
        queues: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate the configuration; exit non-zero with one line per problem.
    CheckConfig {
        /// Also connect to Postgres, Redis and SMTP.
        #[arg(long)]
        verify_connections: bool,
    },
    /// Backtest a strategy on candles from CSV files (--csv) or the database (--assets) and print the result.
    RunStrategy(Box<server::cli::RunStrategyArgs>),
    /// Print indicator series for a CSV file as CSV (e.g. 'rsi(close, 14)' 'macd(close, 12, 26, 9)').
    Indicator(server::cli::IndicatorArgs),
    /// Create an admin account, or promote an existing account to admin. The password (for a new account) is
    /// read from the file named by VORTEX_ADMIN_PASSWORD_FILE, or else from the first line of stdin; never from
    /// the command line.
    CreateAdmin {
        #[arg(long)]
        email: String,
    },
    /// Inspect and operate the job queue.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Fetch market data from the exchange (or import CSV) into the database.
    RunEtl(server::etl_cli::RunEtlArgs),
    /// Serve the repository's candles as a local Binance-compatible exchange, with fault switches.
    MockExchange(server::etl_cli::MockExchangeArgs),
}

#[derive(Subcommand)]
enum JobsCommand {
    /// List recent jobs.
    List {
        /// Only jobs with this status (queued, running, done, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    settings::load_dotenv();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(errors) => {
            for p in &errors.0 {
                eprintln!("{p}");
            }
            eprintln!(
                "configuration invalid: {} problem(s); see backend.env.example",
                errors.0.len()
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match run(cli.command, settings).await {
            Ok(code) => code,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "fatal");
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    let command = match command {
        Command::CheckConfig { verify_connections } => {
            return check_config(settings, verify_connections).await;
        }
        Command::Indicator(args) => return research(|| server::cli::indicator(&args)),
        Command::RunStrategy(args) if !args.csv.is_empty() => {
            return research(|| {
                server::cli::print_runs(&server::cli::run_strategy_csv(&args)?, args.format)
            });
        }
        other => other,
    };
    backend::telemetry::init(&settings.log_level, settings.log_format);
    let _ = backend::telemetry::prometheus();
    let ctx = Ctx::new(settings)?;
    match command {
        Command::Serve { no_worker, migrate } => serve(ctx, !no_worker, migrate).await,
        Command::Worker { queues } => {
            let queues = match queues {
                None => backend::jobs::worker::all_queues(&ctx),
                Some(spec) => {
                    match backend::jobs::worker::parse_queues(&spec, ctx.settings.jobs.concurrency)
                    {
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
        Command::Migrate => {
            backend::db::migrate(&ctx.db).await?;
            tracing::info!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs { command } => jobs(ctx, command).await,
        Command::CreateAdmin { email } => {
            let password = read_admin_password()?;
            let message =
                server::routes::account::create_or_promote_admin(&ctx, &email, password).await?;
            println!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        Command::RunStrategy(args) => {
            let runs = match server::cli::run_strategy_db(&ctx.db, &args).await {
                Ok(runs) => runs,
                Err(e) if e.downcast_ref::<server::cli::InputError>().is_some() => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e),
            };
            research(|| server::cli::print_runs(&runs, args.format))
        }
        Command::RunEtl(args) => server::etl_cli::run_etl(ctx, args).await,
        Command::MockExchange(args) => server::etl_cli::mock_exchange(args).await,
        Command::CheckConfig { .. } | Command::Indicator(_) => unreachable!("handled above"),
    }
}

/// The new admin's password: from `VORTEX_ADMIN_PASSWORD_FILE`, else the first line of stdin (`None` when
/// stdin is a terminal with nothing typed or empty, which is fine for promoting an existing account).
fn read_admin_password() -> anyhow::Result<Option<String>> {
    use std::io::{BufRead, IsTerminal};
    if let Ok(path) = std::env::var("VORTEX_ADMIN_PASSWORD_FILE") {
        let content = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "VORTEX_ADMIN_PASSWORD_FILE: cannot read `{path}`: {}",
                e.kind()
            )
        })?;
        return Ok(
            Some(content.trim_end_matches(['\r', '\n']).to_owned()).filter(|p| !p.is_empty())
        );
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "Password for the new admin (input is shown; prefer piping it or VORTEX_ADMIN_PASSWORD_FILE):"
        );
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()).filter(|p| !p.is_empty()))
}

/// Runs a research command: input errors print their message and exit 2; anything else is a failure (1).
fn research(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    match f() {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.downcast_ref::<server::cli::InputError>().is_some() => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e),
    }
}

/// Turns true on SIGTERM or Ctrl-C.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
            () = term => tracing::info!("SIGTERM received; shutting down"),
        }
        let _ = tx.send(true);
    });
    rx
}

/// Workers get this long after a shutdown signal to finish running jobs; unfinished ones are re-run elsewhere.
const WORKER_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

async fn serve(ctx: Ctx, with_worker: bool, migrate: bool) -> anyhow::Result<ExitCode> {
    if migrate {
        backend::db::migrate(&ctx.db).await?;
        tracing::info!("migrations applied");
    }
    let shutdown = shutdown_signal();
    backend::telemetry::start_upkeep();
    let app = server::Application::build(ctx.clone()).await?;
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

async fn worker(
    ctx: Ctx,
    queues: Vec<backend::jobs::worker::QueueSpec>,
) -> anyhow::Result<ExitCode> {
    let shutdown = shutdown_signal();
    if let Some(addr) = ctx.settings.metrics_addr {
        tokio::spawn(server::startup::serve_worker_probes(
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

async fn jobs(ctx: Ctx, command: JobsCommand) -> anyhow::Result<ExitCode> {
    use backend::jobs::store;
    match command {
        JobsCommand::List { status, limit } => {
            for j in store::list(&ctx.db, status.as_deref(), limit.clamp(1, 1000)).await? {
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
