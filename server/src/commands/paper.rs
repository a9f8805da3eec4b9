//! `vortex paper start|list|show|pause|resume|stop|parity`: paper runs from the command line. The operator
//! acts for a named user (`--email`) through the same actions as the browser and the REST API
//! ([`Actor::system`], surface `cli`, [`Owner::User`]), so checks, limits and audit entries are the same.

use std::process::ExitCode;

use backend::{
    Actor, Ctx,
    actor::Surface,
    market::store,
    paper::{
        NewPaperRun,
        actions::{self as act, Owner},
        control::Command,
        query::RunFilter,
        risk::RiskInput,
    },
};
use clap::Subcommand;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum PaperCommand {
    /// Start a paper run per instrument for a user's strategy (each instrument needs a live feed).
    Start {
        /// The owner's email address.
        #[arg(long)]
        email: String,
        /// The strategy's id.
        #[arg(long)]
        strategy: Uuid,
        /// A saved version (default: the newest).
        #[arg(long)]
        version: Option<i32>,
        /// Instrument symbols as stored, e.g. ETHBTC (repeat or comma-separate for several).
        #[arg(long = "instrument", required = true, value_delimiter = ',')]
        instruments: Vec<String>,
        #[arg(long)]
        timeframe: String,
        /// Fee per side as a fraction (0.001 = 0.1 %); required, 0 for none.
        #[arg(long)]
        fee: f64,
        #[arg(long, default_value_t = 10_000.0)]
        cash: f64,
        #[arg(long, default_value_t = 0.0)]
        slippage_bps: f64,
        /// next_open or same_close.
        #[arg(long, default_value = "next_open")]
        fill: String,
        /// Parameter overrides, name=value (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Warm-up candles (default PAPER_WARMUP_BARS).
        #[arg(long)]
        warmup_bars: Option<i64>,
        #[command(flatten)]
        risk: RiskArgs,
    },
    /// List a user's paper runs, newest first.
    List {
        #[arg(long)]
        email: String,
        /// active, paused, stopping, stopped, failed or live.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one run as JSON (position, pending order, gaps, settings).
    Show {
        #[arg(long)]
        email: String,
        id: Uuid,
    },
    /// Pause a run (no new orders; protective stops keep working).
    Pause {
        #[arg(long)]
        email: String,
        id: Uuid,
    },
    /// Resume a paused run.
    Resume {
        #[arg(long)]
        email: String,
        id: Uuid,
    },
    /// Stop a run; with --flatten, sell the position at the next open first.
    Stop {
        #[arg(long)]
        email: String,
        id: Uuid,
        #[arg(long)]
        flatten: bool,
    },
    /// The parity report as JSON: the backtest of the run's window diffed trade by trade.
    Parity {
        #[arg(long)]
        email: String,
        id: Uuid,
    },
    /// Change a run's risk limits (flags not given stay as they are; 0 turns a limit off), or with --release
    /// release its risk locks.
    Risk {
        #[arg(long)]
        email: String,
        id: Uuid,
        #[command(flatten)]
        risk: RiskArgs,
        /// Release the run's risk locks instead (it trades again from its next candle).
        #[arg(long)]
        release: bool,
        /// Why (with --release; kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Risk limit flags (docs/paper-trading.md, "Risk limits"); absent = the default (at start, `PAPER_RISK_*`)
/// or unchanged, 0 = off.
#[derive(Debug, clap::Args)]
pub struct RiskArgs {
    /// What a breach does: reduce_only, halt or flatten.
    #[arg(long = "risk-mode")]
    mode: Option<String>,
    /// Max drawdown from the peak equity, percent.
    #[arg(long)]
    max_drawdown_pct: Option<f64>,
    /// Max loss since the start of the UTC day, quote currency.
    #[arg(long)]
    daily_loss: Option<f64>,
    /// Max loss since the start of the UTC day, percent.
    #[arg(long)]
    daily_loss_pct: Option<f64>,
    /// Max losing trades in a row.
    #[arg(long)]
    max_consecutive_losses: Option<i32>,
    /// Max value of the open position at a close, quote currency.
    #[arg(long)]
    max_position_value: Option<f64>,
    /// Max fills per UTC day.
    #[arg(long)]
    max_orders_per_day: Option<i32>,
    /// Seconds without a (timely) candle before the run trips.
    #[arg(long)]
    stale_feed_secs: Option<i64>,
}

impl From<RiskArgs> for RiskInput {
    fn from(a: RiskArgs) -> Self {
        RiskInput {
            mode: a.mode,
            max_drawdown_pct: a.max_drawdown_pct,
            daily_loss: a.daily_loss,
            daily_loss_pct: a.daily_loss_pct,
            max_consecutive_losses: a.max_consecutive_losses,
            max_position_value: a.max_position_value,
            max_orders_per_day: a.max_orders_per_day,
            stale_feed_secs: a.stale_feed_secs,
        }
    }
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("`{s}` is not name=value"))
}

fn email_of(c: &PaperCommand) -> &str {
    match c {
        PaperCommand::Start { email, .. }
        | PaperCommand::List { email, .. }
        | PaperCommand::Show { email, .. }
        | PaperCommand::Pause { email, .. }
        | PaperCommand::Resume { email, .. }
        | PaperCommand::Stop { email, .. }
        | PaperCommand::Parity { email, .. }
        | PaperCommand::Risk { email, .. } => email,
    }
}

/// Runs `vortex paper …`. Exit 0 on success, 1 for an unknown address, symbol or a refused action.
///
/// # Errors
/// Database errors.
pub async fn run(ctx: Ctx, command: PaperCommand) -> anyhow::Result<ExitCode> {
    let actor = Actor::system(Surface::Cli);
    let email = email_of(&command).trim().to_owned();
    let Some((user, _)) = backend::auth::users::find_for_signin(&ctx.db, &email).await? else {
        eprintln!("no account with the address {email}");
        return Ok(ExitCode::FAILURE);
    };
    let who = Owner::User(user.user_id);
    let result: Result<serde_json::Value, backend::Error> = match command {
        PaperCommand::Start {
            strategy,
            version,
            instruments,
            timeframe,
            fee,
            cash,
            slippage_bps,
            fill,
            params,
            warmup_bars,
            risk,
            ..
        } => {
            let known = store::instruments(&ctx.db).await?;
            let mut ids = Vec::new();
            for sym in &instruments {
                let want = sym.trim().to_ascii_uppercase().replace(['/', '-', '_'], "");
                match known
                    .iter()
                    .find(|i| i.symbol == want && i.exchange == ctx.settings.market.exchange)
                {
                    Some(i) => ids.push(i.instrument_id),
                    None => {
                        eprintln!("no instrument {sym} on {}", ctx.settings.market.exchange);
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            let new = NewPaperRun {
                strategy_id: strategy,
                version,
                params,
                instrument_ids: ids,
                timeframe,
                initial_cash: cash,
                fee: Some(fee),
                slippage_bps,
                fill,
                warmup_bars,
                risk: risk.into(),
            };
            act::start(&actor, &ctx, who, &new)
                .await
                .map(|s| serde_json::json!(s))
        }
        PaperCommand::List { status, limit, .. } => {
            let filter = RunFilter {
                status,
                limit: Some(limit),
                ..RunFilter::default()
            };
            match act::list(&actor, &ctx, who, &filter).await {
                Ok(runs) => {
                    println!(
                        "{:<36}  {:<9} {:<12} {:>4}  {:>14}  {:>6}  strategy",
                        "id", "status", "series", "", "equity", "trades"
                    );
                    for r in runs {
                        println!(
                            "{:<36}  {:<9} {:<12} {:>4}  {:>14.4}  {:>6}  {} v{}",
                            r.paper_run_id,
                            r.status.as_str(),
                            r.symbol,
                            r.timeframe,
                            r.equity,
                            r.trade_count,
                            r.strategy_name,
                            r.version
                        );
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => Err(e),
            }
        }
        PaperCommand::Risk {
            id,
            release: true,
            reason,
            ..
        } => act::release_risk_locks(&actor, &ctx, who, id, None, reason.as_deref())
            .await
            .map(|l| serde_json::json!(l)),
        PaperCommand::Risk { id, risk, .. } => {
            act::set_risk_limits(&actor, &ctx, who, id, &risk.into())
                .await
                .map(|l| serde_json::json!(l))
        }
        PaperCommand::Show { id, .. } => act::get(&actor, &ctx, who, id)
            .await
            .map(|d| serde_json::json!(d)),
        PaperCommand::Pause { id, .. } => act::control(&actor, &ctx, who, id, Command::Pause)
            .await
            .map(|c| serde_json::json!(c)),
        PaperCommand::Resume { id, .. } => act::control(&actor, &ctx, who, id, Command::Resume)
            .await
            .map(|c| serde_json::json!(c)),
        PaperCommand::Stop { id, flatten, .. } => {
            act::control(&actor, &ctx, who, id, Command::Stop { flatten })
                .await
                .map(|c| serde_json::json!(c))
        }
        PaperCommand::Parity { id, .. } => act::parity(&actor, &ctx, who, id)
            .await
            .map(|r| serde_json::json!(r)),
    };
    match result {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(backend::Error::Db(e)) => Err(e.into()),
        Err(backend::Error::Internal(e)) => Err(e),
        Err(e) => {
            eprintln!("refused: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
