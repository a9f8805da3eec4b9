//! The `vortex` command line: one file per subcommand. `main.rs` only calls [`main`].
//!
//! ```text
//! vortex serve [--no-worker] [--migrate]   web server (+ in-process workers unless --no-worker)
//! vortex worker [--queues backtest=2,mail]   background workers only (run N of them on N machines)
//! vortex migrate                           apply database migrations
//! vortex check-config [--verify-connections]
//! vortex jobs list|show|retry|housekeeping operator commands for the job queue
//! vortex create-admin --email …           create or promote an admin (password from stdin or a file)
//! vortex notify test|deliveries|clear-undeliverable --email …   notification operator commands
//! vortex plans list|create|set-limit|assign --email … --plan …   plans and users' plans
//! vortex run-strategy --strategy macd --csv … | --assets BTC   backtest from the command line
//! vortex indicator --csv FILE EXPR…        indicator series as CSV
//! vortex run-etl --assets BTC,ETH --mode daily|backfill …   market data from the exchange or CSV
//! vortex mock-exchange --port 9100 --data data/market       a local Binance-compatible exchange
//! ```
//!
//! Exit status: 0 success, 1 failure, 2 bad input (clap's own errors included).

pub mod billing;
pub mod check_config;
pub mod create_admin;
pub mod halt;
pub mod indicator;
pub mod jobs;
pub mod migrate;
pub mod mock_exchange;
pub mod notify;
pub mod paper;
pub mod plans;
pub mod run_etl;
pub mod run_strategy;
pub mod serve;
pub mod values;
pub mod worker;

use std::{process::ExitCode, time::Duration};

use backend::{
    Ctx,
    settings::{self, Settings},
};
use clap::{Parser, Subcommand};
use tokio::sync::watch;

#[derive(Parser)]
#[command(name = "vortex", version = env!("VORTEX_VERSION_LONG"), about = "Vortex trading-strategy platform")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web application (and run the background workers in-process unless --no-worker).
    Serve(serve::ServeArgs),
    /// Run background workers only.
    Worker(worker::WorkerArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate the configuration; exit non-zero with one line per problem.
    CheckConfig(check_config::CheckConfigArgs),
    /// Backtest a strategy on candles from CSV files (--csv) or the database (--assets) and print the result.
    RunStrategy(Box<run_strategy::RunStrategyArgs>),
    /// Print indicator series for a CSV file as CSV (e.g. 'rsi(close, 14)' 'macd(close, 12, 26, 9)').
    Indicator(indicator::IndicatorArgs),
    /// Create an admin account, or promote an existing account to admin. The password (for a new account) is
    /// read from the file named by VORTEX_ADMIN_PASSWORD_FILE, or else from the first line of stdin; never from
    /// the command line.
    CreateAdmin(create_admin::CreateAdminArgs),
    /// Inspect and operate the job queue.
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// Notifications: send a test, show a user's delivery log, clear an undeliverable address.
    Notify {
        #[command(subcommand)]
        command: notify::NotifyCommand,
    },
    /// Kill switches over the platform, a user's runs or one run (works when the web is down).
    Halt(halt::HaltArgs),
    /// Paper runs for a user: start, list, show, pause, resume, stop (optionally flattening), parity report,
    /// risk limits (change, release locks).
    Paper {
        #[command(subcommand)]
        command: paper::PaperCommand,
    },
    /// Plans: list, create, set a limit, assign a plan (and overrides) to a user.
    Plans {
        #[command(subcommand)]
        command: plans::PlansCommand,
    },
    /// Billing: queue a reconciliation with the payment provider, show the recent runs.
    Billing {
        #[command(subcommand)]
        command: billing::BillingCommand,
    },
    /// Fetch market data from the exchange (or import CSV) into the database.
    RunEtl(run_etl::RunEtlArgs),
    /// Serve the repository's candles as a local Binance-compatible exchange, with fault switches.
    MockExchange(mock_exchange::MockExchangeArgs),
}

/// The whole `vortex` binary: parse the command line and the settings, start the runtime, run the command.
pub fn main() -> ExitCode {
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
    let service = matches!(
        cli.command,
        Command::Serve(_) | Command::Worker(_) | Command::MockExchange(_)
    );
    let code = runtime.block_on(async move {
        match run(cli.command, settings).await {
            Ok(code) => code,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "fatal");
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    });
    // Tasks still running end with the runtime; then the log's last lines are written out.
    drop(runtime);
    if service {
        tracing::info!("vortex stopped");
    }
    backend::telemetry::flush();
    code
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    // Commands that need no database (and no telemetry) first.
    let command = match command {
        Command::CheckConfig(args) => return check_config::run(settings, args).await,
        Command::Indicator(args) => return research(|| indicator::indicator(&args)),
        Command::RunStrategy(args) if !args.csv.is_empty() => {
            return research(|| {
                run_strategy::print_runs(&run_strategy::run_strategy_csv(&args)?, args.format)
            });
        }
        other => other,
    };
    let to = match command {
        Command::Serve(_) | Command::Worker(_) | Command::MockExchange(_) => {
            backend::telemetry::LogTo::Stdout
        }
        _ => backend::telemetry::LogTo::Stderr,
    };
    backend::telemetry::init(&settings.log_level, settings.log_format, to);
    // Panics, 5xx answers and failed jobs to SENTRY_DSN (when set) until the process ends.
    let process = match command {
        Command::Serve(_) => "web",
        Command::Worker(_) => "worker",
        _ => "cli",
    };
    let _error_tracking = backend::error_tracking::init(&settings, process)?;
    let _ = backend::telemetry::prometheus();
    let ctx = Ctx::new(settings)?;
    match command {
        Command::Serve(args) => serve::run(ctx, args).await,
        Command::Worker(args) => worker::run(ctx, args).await,
        Command::Migrate => migrate::run(ctx).await,
        Command::Jobs { command } => jobs::run(ctx, command).await,
        Command::CreateAdmin(args) => create_admin::run(ctx, args).await,
        Command::Notify { command } => notify::run(ctx, command).await,
        Command::Paper { command } => paper::run(ctx, command).await,
        Command::Halt(args) => halt::run(ctx, args).await,
        Command::Plans { command } => plans::run(ctx, command).await,
        Command::Billing { command } => billing::run(ctx, command).await,
        Command::RunStrategy(args) => {
            let runs = match run_strategy::run_strategy_db(&ctx.db, &args).await {
                Ok(runs) => runs,
                Err(e) if e.downcast_ref::<run_strategy::InputError>().is_some() => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e),
            };
            research(|| run_strategy::print_runs(&runs, args.format))
        }
        Command::RunEtl(args) => run_etl::run_etl(ctx, args).await,
        Command::MockExchange(args) => mock_exchange::mock_exchange(args).await,
        Command::CheckConfig(_) | Command::Indicator(_) => unreachable!("handled above"),
    }
}

/// Runs a research command: input errors print their message and exit 2; anything else is a failure (1).
fn research(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    match f() {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.downcast_ref::<run_strategy::InputError>().is_some() => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e),
    }
}

/// Turns true on SIGTERM or Ctrl-C.
pub(crate) fn shutdown_signal() -> watch::Receiver<bool> {
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
pub(crate) const WORKER_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
