//! `vortex run-etl`: market data from the exchange or CSV files into the database (`vortex mock-exchange`
//! serves a local exchange to fetch from).
//!
//! ```text
//! vortex run-etl --assets BTC,ETH --mode daily|backfill [--timeframe 1h] [--from 2024-01-01 --to …]
//!                [--quote USDT] [--source binance|csv:PATH] [--exchange NAME] [--enqueue] [--skip-bad-rows]
//! vortex run-etl --source csv:data/market            # every BASE-QUOTE-TF.csv of a folder (the demo data)
//! vortex mock-exchange --port 9100 --data data/market [--now 2018-01-20T00:00:00Z] [--speed 60]
//! ```
//!
//! Progress is a bar on a terminal and plain log lines otherwise. The exit status is 0 when every series was
//! stored, 1 when one failed (the others are still done), 2 for bad arguments.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use backend::{
    Ctx,
    market::{
        Asset, Pair, Timeframe,
        binance::BinanceClient,
        csv_import::{self, FileName, ImportOptions, ImportReport},
        etl::{self, Mode, Progress, RunRequest},
        iso, parse_exchange,
    },
};
use clap::Args;

use super::values::{self, ModeArg};

/// Where candles come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The Binance-compatible REST API at `MARKET_DATA_URL`.
    Exchange,
    /// A CSV file or a folder of `BASE-QUOTE-TF.csv` files.
    Csv(PathBuf),
}

fn parse_source(s: &str) -> Result<Source, String> {
    match s.trim() {
        "binance" | "exchange" => Ok(Source::Exchange),
        other => match other.strip_prefix("csv:") {
            Some(p) if !p.is_empty() => Ok(Source::Csv(PathBuf::from(p))),
            _ => Err(format!(
                "`{other}` is not a source (expected binance or csv:PATH)"
            )),
        },
    }
}

/// A comma-separated list of assets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetList(pub Vec<Asset>);

fn parse_assets(s: &str) -> Result<AssetList, String> {
    let list: Vec<Asset> = s
        .split(',')
        .filter(|a| !a.trim().is_empty())
        .map(Asset::parse)
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err("give at least one asset, e.g. BTC,ETH".into());
    }
    Ok(AssetList(list))
}

/// `vortex run-etl`.
#[derive(Debug, Args)]
pub struct RunEtlArgs {
    /// Base assets, comma-separated (BTC,ETH). Required for the exchange source; filters a CSV folder.
    #[arg(long, value_parser = parse_assets)]
    assets: Option<AssetList>,
    /// Quote asset (default USDT for the exchange source; filters a CSV folder).
    #[arg(long, value_parser = Asset::parse)]
    quote: Option<Asset>,
    /// daily: from the newest stored candle up to now; backfill: the --from/--to range (default: 30 days).
    #[arg(long, value_enum, ignore_case = true, default_value_t = ModeArg::Daily)]
    mode: ModeArg,
    /// Candle timeframe: 1m 5m 15m 30m 1h 4h 1d 1w (default 1h; a CSV's own when importing).
    #[arg(long, value_parser = values::timeframe)]
    timeframe: Option<Timeframe>,
    /// Start (inclusive): 2024-01-01, ISO 8601 or epoch ms.
    #[arg(long, value_parser = backend::backtest::range::start_arg)]
    from: Option<i64>,
    /// End, same formats; a bare date includes that day (as everywhere), a timestamp is exclusive; default now.
    #[arg(long, value_parser = backend::backtest::range::end_arg)]
    to: Option<i64>,
    /// binance (the REST API at MARKET_DATA_URL) or csv:PATH (a file, or a folder of BASE-QUOTE-TF.csv files).
    #[arg(long, default_value = "binance", value_parser = parse_source)]
    source: Source,
    /// Exchange name to store under (default: MARKET_DATA_EXCHANGE for the REST source, `demo` for CSV).
    #[arg(long, value_parser = parse_exchange)]
    exchange: Option<String>,
    /// Put the chunks on the job queue (run by `vortex worker`/`serve`) instead of running them here.
    #[arg(long)]
    enqueue: bool,
    /// CSV: store the good rows and report the bad ones (default: a bad row rejects the whole file).
    #[arg(long)]
    skip_bad_rows: bool,
    /// Do not add fetched series to the scheduled update.
    #[arg(long)]
    no_track: bool,
}

/// Runs `vortex run-etl`.
///
/// # Errors
/// Unexpected failures (database unreachable); per-series failures are reported and give exit status 1.
pub async fn run_etl(ctx: Ctx, args: RunEtlArgs) -> anyhow::Result<ExitCode> {
    let mode = Mode::from(args.mode);
    if let (Some(f), Some(t)) = (args.from, args.to)
        && f >= t
    {
        return Ok(usage(format!(
            "--from {} is not before --to {}",
            iso(f),
            iso(t)
        )));
    }
    match args.source.clone() {
        Source::Csv(path) => {
            if args.enqueue {
                return Ok(usage(
                    "--enqueue applies to the exchange source only".into(),
                ));
            }
            import_csv(&ctx, &args, &path).await
        }
        Source::Exchange => {
            if args.skip_bad_rows {
                return Ok(usage(
                    "--skip-bad-rows applies to CSV imports only (invalid exchange candles are always dropped and logged)".into(),
                ));
            }
            if let Some(ex) = &args.exchange
                && ex != &ctx.settings.market.exchange
            {
                return Ok(usage(format!(
                    "--exchange {ex}: the REST source stores under MARKET_DATA_EXCHANGE ({}); set that instead",
                    ctx.settings.market.exchange
                )));
            }
            let Some(AssetList(assets)) = args.assets.clone() else {
                return Ok(usage(
                    "--assets is required for the exchange source (e.g. --assets BTC,ETH)".into(),
                ));
            };
            fetch_from_exchange(&ctx, &args, mode, &assets).await
        }
    }
}

fn usage(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

async fn fetch_from_exchange(
    ctx: &Ctx,
    args: &RunEtlArgs,
    mode: Mode,
    assets: &[Asset],
) -> anyhow::Result<ExitCode> {
    let quote = args
        .quote
        .clone()
        .unwrap_or_else(|| Asset::parse("USDT").expect("static"));
    let timeframe = args.timeframe.unwrap_or(Timeframe::H1);
    let client = BinanceClient::new(&ctx.settings.market)?;
    let now = match client.server_time().await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", client.base_url());
            return Ok(ExitCode::FAILURE);
        }
    };
    let tty = std::io::stderr().is_terminal();
    let mut failed = 0;
    for base in assets {
        let pair = Pair::new(base.clone(), quote.clone());
        let req = RunRequest {
            pair: pair.clone(),
            timeframe,
            mode,
            from: args.from,
            to: args.to,
        };
        let run = match etl::plan_run(ctx, &req, now).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{pair} {timeframe}: {e}");
                failed += 1;
                continue;
            }
        };
        let label = format!("{pair} {timeframe}");
        tracing::info!(
            run_id = %run.run_id, series = %label, from = %iso(run.from), to = %iso(run.to),
            chunks = run.chunks.len(), skipped = run.skipped, "market ETL planned"
        );
        if args.enqueue {
            let ids = etl::enqueue_run(ctx, &run, !args.no_track).await?;
            println!(
                "{label}: {} chunk job(s) queued ({} already complete), run {}",
                ids.len(),
                run.skipped,
                run.run_id
            );
            continue;
        }
        let result = etl::run_inline(ctx, &client, &run, !args.no_track, |p| {
            report_progress(&label, p, tty);
        })
        .await;
        if tty {
            eprintln!();
        }
        match result {
            Ok(p) => println!(
                "{label}: {} candles fetched, {} written, {} chunk(s) ({} already complete), {} .. {}",
                p.fetched,
                p.written,
                p.chunks_total,
                run.skipped,
                iso(run.from),
                iso(run.to)
            ),
            Err(e) => {
                if e.is_transient() {
                    eprintln!(
                        "{label}: failed: {e} (run {}; completed chunks are kept, re-run to resume)",
                        run.run_id
                    );
                } else {
                    eprintln!("{label}: failed: {e}");
                }
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn report_progress(label: &str, p: Progress, tty: bool) {
    if tty {
        const WIDTH: usize = 30;
        let filled = (p.chunks_done * WIDTH)
            .checked_div(p.chunks_total)
            .unwrap_or(WIDTH);
        eprint!(
            "\r{label} [{}{}] {}/{} chunks, {}/{} candles",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            p.chunks_done,
            p.chunks_total,
            p.fetched,
            p.expected
        );
        let _ = std::io::stderr().flush();
    } else if p.chunks_done > 0 {
        tracing::info!(
            series = label,
            chunks_done = p.chunks_done,
            chunks_total = p.chunks_total,
            fetched = p.fetched,
            expected = p.expected,
            written = p.written,
            "market ETL progress"
        );
    }
}

/// The files to import with their instrument and timeframe.
fn csv_targets(
    args: &RunEtlArgs,
    path: &Path,
) -> Result<Vec<(PathBuf, Pair, Option<Timeframe>)>, String> {
    if path.is_dir() {
        let files = csv_import::list_dir(path)?;
        let wanted = |name: &FileName| {
            args.assets
                .as_ref()
                .is_none_or(|a| a.0.contains(&name.pair.base))
                && args.quote.as_ref().is_none_or(|q| q == &name.pair.quote)
                && args.timeframe.is_none_or(|tf| tf == name.timeframe)
        };
        let out: Vec<_> = files
            .into_iter()
            .filter(|(_, n)| wanted(n))
            .map(|(p, n)| (p, n.pair, Some(n.timeframe)))
            .collect();
        if out.is_empty() {
            return Err(format!(
                "no matching BASE-QUOTE-TF.csv files in {}",
                path.display()
            ));
        }
        return Ok(out);
    }
    if !path.is_file() {
        return Err(format!("{} does not exist", path.display()));
    }
    // A file: its name may say what it holds; --assets/--quote/--timeframe say it otherwise (and win).
    let named = FileName::parse(path).ok();
    let base = match (&args.assets, &named) {
        (Some(AssetList(a)), _) if a.len() == 1 => a[0].clone(),
        (Some(_), _) => {
            return Err("a CSV file holds one instrument: give one asset in --assets".into());
        }
        (None, Some(n)) => n.pair.base.clone(),
        (None, None) => {
            return Err(format!(
                "{} is not named BASE-QUOTE-TF.csv: give --assets BASE --quote QUOTE",
                path.display()
            ));
        }
    };
    let quote = match (&args.quote, &named) {
        (Some(q), _) => q.clone(),
        (None, Some(n)) => n.pair.quote.clone(),
        (None, None) => {
            return Err("give --quote for a CSV file not named BASE-QUOTE-TF.csv".into());
        }
    };
    let tf = args.timeframe.or(named.map(|n| n.timeframe));
    Ok(vec![(path.to_owned(), Pair::new(base, quote), tf)])
}

async fn import_csv(ctx: &Ctx, args: &RunEtlArgs, path: &Path) -> anyhow::Result<ExitCode> {
    let targets = match csv_targets(args, path) {
        Ok(t) => t,
        Err(e) => return Ok(usage(e)),
    };
    let exchange = args.exchange.clone().unwrap_or_else(|| "demo".into());
    let mut failed = 0;
    let started = std::time::Instant::now();
    let mut total_rows = 0;
    for (file, pair, timeframe) in targets {
        let opts = ImportOptions {
            exchange: exchange.clone(),
            pair: pair.clone(),
            timeframe,
            skip_bad_rows: args.skip_bad_rows,
        };
        let t0 = std::time::Instant::now();
        match csv_import::import_file(&ctx.db, &file, &opts).await {
            Ok(r) => {
                total_rows += r.rows;
                print_import(&exchange, &r, t0.elapsed());
            }
            Err(e) => {
                eprintln!("error: {e} (nothing from this file was stored)");
                failed += 1;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        rows = total_rows,
        seconds = secs,
        rows_per_second = (total_rows as f64 / secs.max(1e-9)) as u64,
        "CSV import finished"
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_import(exchange: &str, r: &ImportReport, took: std::time::Duration) {
    let missing: usize = r.gaps.iter().map(|g| g.missing).sum();
    println!(
        "{exchange} {} {}: {} rows read, {} written, {} gap(s) ({missing} missing candles), {} rejected, {:.0} ms",
        r.pair,
        r.timeframe,
        r.rows,
        r.written,
        r.gaps.len(),
        r.rejected.len(),
        took.as_secs_f64() * 1000.0
    );
    for e in &r.rejected {
        eprintln!("  skipped {e}");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: RunEtlArgs,
    }

    #[test]
    fn run_etl_arguments_parse_and_bad_ones_are_named() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let c = Cli::try_parse_from([
            "x",
            "--assets",
            "btc,ETH",
            "--mode",
            "backfill",
            "--timeframe",
            "1h",
            "--from",
            "2024-01-01",
            "--source",
            "csv:data/market",
        ])
        .unwrap();
        assert_eq!(c.args.assets.unwrap().0.len(), 2);
        assert_eq!(c.args.source, Source::Csv("data/market".into()));
        for (bad, word) in [
            (vec!["--mode", "weekly"], "weekly"),
            (vec!["--timeframe", "7m"], "7m"),
            (vec!["--assets", "B$C"], "B$C"),
            (vec!["--from", "soon"], "soon"),
            (vec!["--source", "kraken"], "kraken"),
            (vec!["--source", "csv:"], "csv:"),
        ] {
            let e = Cli::try_parse_from(std::iter::once("x").chain(bad.clone())).unwrap_err();
            assert!(e.to_string().contains(word), "{bad:?}: {e}");
        }
    }
}
