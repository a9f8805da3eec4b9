//! `vortex run-strategy`: backtest a strategy on candles from CSV files (`--csv`, no server needed) or from
//! the database (`--assets`), and print the result. `vortex indicator` shares the CSV loading.
//! Bad input ends with a clear message and exit status 2, never a panic.

use std::{path::PathBuf, time::Instant};

use clap::{Args, ValueEnum};
use engine::{
    backtest::{self, BacktestConfig, BacktestResult, Fill},
    candles::{Candles, Timeframe},
};
use serde_json::json;

use super::values::{self, FillArg};

/// Output format of `run-strategy`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct RunStrategyArgs {
    /// A built-in template by name (case-insensitive): sma_cross, ema_cross, macd, rsi, bollinger, adx_trend,
    /// donchian_breakout.
    #[arg(
        long,
        conflicts_with = "strategy_file",
        required_unless_present = "strategy_file"
    )]
    pub strategy: Option<String>,
    /// A strategy written in the Vortex strategy language.
    #[arg(long)]
    pub strategy_file: Option<PathBuf>,
    /// Candle files (`timestamp,open,high,low,close,volume`); repeat for several. Without it, candles come
    /// from the database (`--assets`).
    #[arg(long = "csv")]
    pub csv: Vec<PathBuf>,
    /// Base assets to load from the database, comma-separated (e.g. BTC,ETH).
    #[arg(long, value_delimiter = ',')]
    pub assets: Vec<String>,
    /// Quote asset for `--assets` (default: the only stored pair of the asset, else USDT).
    #[arg(long)]
    pub quote: Option<String>,
    /// Timeframe to run on: 1m 5m 15m 30m 1h 4h 1d 1w (candles are resampled up from the stored/CSV timeframe).
    #[arg(long, value_parser = values::timeframe)]
    pub timeframe: Option<Timeframe>,
    /// First candle to use (ISO date or date-time, UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// Last candle to use (ISO date or date-time, UTC; a date includes the whole day).
    #[arg(long)]
    pub to: Option<String>,
    /// Strategy parameter override, `name=value`; repeatable.
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Fee per side as a fraction (0.001 = 0.1 %).
    #[arg(long, default_value_t = 0.001)]
    pub fee: f64,
    /// Slippage against the trader on every fill, in basis points.
    #[arg(long, default_value_t = 0.0)]
    pub slippage_bps: f64,
    /// Fill model: next-open (default: signal on bar t's close, fill at t+1's open) or close (same bar).
    #[arg(long, value_enum, ignore_case = true, default_value_t = FillArg::NextOpen)]
    pub fill: FillArg,
    /// Initial cash in the quote currency.
    #[arg(long, default_value_t = 10_000.0)]
    pub cash: f64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// A user-facing error (exit status 2).
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

pub(super) fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

/// Parses `2024-01-01`, ISO 8601 or epoch ms (and `2024-01-01 12:00:00`) to epoch ms by
/// `backend::backtest::range`; `end_of_day` makes a bare date inclusive (the bound is the next midnight).
pub fn parse_time(flag: &str, s: &str, end_of_day: bool) -> anyhow::Result<i64> {
    use backend::backtest::range::{End, bound};
    use chrono::{NaiveDateTime, TimeZone, Utc};
    let s = s.trim();
    // The one date-range rule (a bare end date includes that day), as in the form and the API.
    let end = if end_of_day { End::End } else { End::Start };
    if let Ok(ms) = bound(flag, s, end) {
        return Ok(ms);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(Utc.from_utc_datetime(&t).timestamp_millis());
        }
    }
    Err(bad(format!(
        "{flag}: `{s}` is not a date (use 2024-01-01 or 2024-01-01T12:00:00Z)"
    )))
}

/// Loads and prepares one CSV file: parse, validate (with line numbers), window, resample.
pub fn load_csv(
    path: &std::path::Path,
    timeframe: Option<Timeframe>,
    from: Option<i64>,
    to: Option<i64>,
) -> anyhow::Result<Candles> {
    let file = std::fs::File::open(path)
        .map_err(|e| bad(format!("{}: cannot open: {e}", path.display())))?;
    let (candles, _gaps) = engine::csv::read_candles(std::io::BufReader::new(file), None)
        .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    prepare(candles, timeframe, from, to).map_err(|e| bad(format!("{}: {e}", path.display())))
}

/// Windows and resamples candles for a run.
pub fn prepare(
    candles: Candles,
    timeframe: Option<Timeframe>,
    from: Option<i64>,
    to: Option<i64>,
) -> anyhow::Result<Candles> {
    let candles = if from.is_some() || to.is_some() {
        candles.between(from, to)
    } else {
        candles
    };
    let candles = match timeframe {
        Some(tf) if tf != candles.timeframe => {
            candles.resample(tf).map_err(|e| bad(e.to_string()))?
        }
        _ => candles,
    };
    if candles.is_empty() {
        return Err(bad("no candles in the selected range"));
    }
    Ok(candles)
}

/// Compiles the strategy named by the arguments, printing diagnostics with carets on failure.
pub fn compile(
    args: &RunStrategyArgs,
) -> anyhow::Result<(String, engine::strategy::CompiledStrategy)> {
    let (name, source) = match (&args.strategy, &args.strategy_file) {
        (Some(name), _) => {
            let t = engine::catalogue::template(name).ok_or_else(|| {
                let names: Vec<&str> = engine::catalogue::templates()
                    .iter()
                    .map(|t| t.name)
                    .collect();
                bad(format!(
                    "--strategy: unknown template `{name}`; built-in templates: {}",
                    names.join(", ")
                ))
            })?;
            (t.name.to_owned(), t.source.to_owned())
        }
        (None, Some(path)) => {
            let source = std::fs::read_to_string(path).map_err(|e| {
                bad(format!(
                    "--strategy-file {}: cannot read: {e}",
                    path.display()
                ))
            })?;
            (path.display().to_string(), source)
        }
        (None, None) => return Err(bad("give --strategy NAME or --strategy-file PATH")),
    };
    let mut overrides = Vec::new();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| bad(format!("--param `{p}`: expected name=value")))?;
        overrides.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    match engine::strategy::compile(&source, &overrides) {
        Ok(s) => Ok((name, s)),
        Err(diags) => {
            let text: Vec<String> = diags.iter().map(|d| d.render(&source)).collect();
            Err(bad(format!(
                "{name}: the strategy has errors:\n{}",
                text.join("\n")
            )))
        }
    }
}

/// The backtest configuration from the flags.
pub fn config(args: &RunStrategyArgs) -> anyhow::Result<BacktestConfig> {
    let fill = Fill::from(args.fill);
    if !(0.0..0.1).contains(&args.fee) {
        return Err(bad(
            "--fee must be a fraction between 0 and 0.1 (0.001 = 0.1 %)",
        ));
    }
    if !(0.0..=1000.0).contains(&args.slippage_bps) {
        return Err(bad("--slippage-bps must be between 0 and 1000"));
    }
    if !(args.cash.is_finite() && args.cash > 0.0) {
        return Err(bad("--cash must be a positive amount"));
    }
    Ok(BacktestConfig {
        fee: args.fee,
        slippage_bps: args.slippage_bps,
        fill,
        initial_cash: args.cash,
        ..BacktestConfig::default()
    })
}

/// One finished run, ready to print.
pub struct Run {
    pub label: String,
    pub result: BacktestResult,
    pub load_seconds: f64,
    pub engine_seconds: f64,
    pub candles: usize,
}

/// Runs the engine on prepared candles, timing it.
pub fn run_one(
    label: String,
    candles: &Candles,
    strategy: &engine::strategy::CompiledStrategy,
    config: &BacktestConfig,
    load_seconds: f64,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let result =
        backtest::run(candles, strategy, config).map_err(|e| bad(format!("{label}: {e}")))?;
    Ok(Run {
        label,
        result,
        load_seconds,
        engine_seconds: started.elapsed().as_secs_f64(),
        candles: candles.len(),
    })
}

/// `--timeframe`, `--from` and `--to` (a bare `--to` date includes that whole day).
fn window(args: &RunStrategyArgs) -> anyhow::Result<(Option<Timeframe>, Option<i64>, Option<i64>)> {
    let tf = args.timeframe;
    let from = args
        .from
        .as_deref()
        .map(|s| parse_time("--from", s, false))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|s| parse_time("--to", s, true))
        .transpose()?;
    Ok((tf, from, to))
}

/// `run-strategy --csv …`: no database needed.
pub fn run_strategy_csv(args: &RunStrategyArgs) -> anyhow::Result<Vec<Run>> {
    let (_, strategy) = compile(args)?;
    let config = config(args)?;
    let (tf, from, to) = window(args)?;
    let mut runs = Vec::new();
    for path in &args.csv {
        let started = Instant::now();
        let candles = load_csv(path, tf, from, to)?;
        let load = started.elapsed().as_secs_f64();
        let label = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        runs.push(run_one(label, &candles, &strategy, &config, load)?);
    }
    Ok(runs)
}

/// `run-strategy --assets BTC,ETH`: candles from the database (the stored series of each asset whose
/// timeframe is the requested one, or the longest stored one it can be resampled from).
pub async fn run_strategy_db(
    db: &sqlx::PgPool,
    args: &RunStrategyArgs,
) -> anyhow::Result<Vec<Run>> {
    let (_, strategy) = compile(args)?;
    let config = config(args)?;
    if args.assets.is_empty() {
        return Err(bad(
            "give --csv FILE… or --assets BTC,ETH (candles from the database)",
        ));
    }
    let (tf, from, to) = window(args)?;
    let mut runs = Vec::new();
    for asset in &args.assets {
        let base =
            backend::market::Asset::parse(asset).map_err(|e| bad(format!("--assets: {e}")))?;
        let series: Vec<(i32, String, String, String)> = sqlx::query!(
            r#"select i.instrument_id, i.exchange, i.quote, s.timeframe
               from instrument i join market_series s using (instrument_id)
               where i.base = $1 order by i.quote, i.exchange"#,
            base.as_str(),
        )
        .fetch_all(db)
        .await?
        .into_iter()
        .map(|r| (r.instrument_id, r.exchange, r.quote, r.timeframe))
        .collect();
        if series.is_empty() {
            return Err(bad(format!(
                "--assets: no {base} candles are stored; load them with `vortex run-etl --assets {base}` (or a CSV import)"
            )));
        }
        let mut quotes: Vec<&str> = series.iter().map(|s| s.2.as_str()).collect();
        quotes.dedup();
        let quote = match &args.quote {
            Some(q) => q.trim().to_ascii_uppercase(),
            None if quotes.len() == 1 => quotes[0].to_owned(),
            None if quotes.contains(&"USDT") => "USDT".to_owned(),
            None => {
                return Err(bad(format!(
                    "--assets {base}: stored against several quotes ({}); choose one with --quote",
                    quotes.join(", ")
                )));
            }
        };
        // The stored series to load: the requested timeframe, or the longest shorter one that resamples to it.
        let mut candidates: Vec<(i32, String, Timeframe)> = series
            .iter()
            .filter(|s| s.2 == quote)
            .filter_map(|s| Timeframe::parse(&s.3).ok().map(|t| (s.0, s.1.clone(), t)))
            .filter(|(_, _, t)| {
                tf.is_none_or(|want| t.millis() <= want.millis() && want.millis() % t.millis() == 0)
            })
            .collect();
        candidates.sort_by_key(|(_, _, t)| std::cmp::Reverse(t.millis()));
        if tf.is_none() {
            // No timeframe asked for: the shortest stored one.
            candidates.reverse();
        }
        if candidates.is_empty() {
            let have: Vec<String> = series
                .iter()
                .filter(|s| s.2 == quote)
                .map(|s| s.3.clone())
                .collect();
            return Err(bad(format!(
                "--assets {base}: no {base}/{quote} series{} is stored (stored timeframes: {})",
                tf.map(|t| format!(" that resamples to {}", t.as_str()))
                    .unwrap_or_default(),
                if have.is_empty() {
                    "none".to_owned()
                } else {
                    have.join(", ")
                }
            )));
        }
        let started = Instant::now();
        let mut found = None;
        for (instrument_id, exchange, stored_tf) in &candidates {
            let c = backend::market::store::load_candles(
                db,
                *instrument_id,
                *stored_tf,
                from,
                to.map(|t| t + 1),
                None,
            )
            .await?;
            if !c.is_empty() {
                found = Some((c, exchange.clone()));
                break;
            }
        }
        let Some((candles, exchange)) = found else {
            return Err(bad(format!(
                "--assets {base}: no {base}/{quote} candles in the selected range"
            )));
        };
        let candles = prepare(candles, tf, None, None)?;
        let load = started.elapsed().as_secs_f64();
        let label = format!("{base}/{quote} {} · {exchange}", candles.timeframe.as_str());
        runs.push(run_one(label, &candles, &strategy, &config, load)?);
    }
    Ok(runs)
}

fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// Prints runs as a readable summary or as JSON.
pub fn print_runs(runs: &[Run], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let docs: Vec<serde_json::Value> = runs
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(&r.result).unwrap_or_default();
                    if let Some(obj) = v.as_object_mut() {
                        obj.insert("input".into(), json!(r.label));
                        obj.insert("candles".into(), json!(r.candles));
                        obj.insert("timing".into(), json!({ "load_seconds": r.load_seconds, "engine_seconds": r.engine_seconds }));
                    }
                    v
                })
                .collect();
            let out = if docs.len() == 1 {
                docs.into_iter().next().unwrap_or_default()
            } else {
                json!(docs)
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Table => {
            for r in runs {
                println!(
                    "{} · {} candles · loaded in {:.3} s, engine {:.3} s",
                    r.label, r.candles, r.load_seconds, r.engine_seconds
                );
                println!("  {:<24} {:>16}  basis", "metric", "value");
                for (name, m) in r.result.metrics.iter() {
                    let value = match m.value {
                        Some(v) if m.unit == "fraction" => format!("{:.2} %", v * 100.0),
                        Some(v) if m.unit == "count" || m.unit == "bars" => format!("{v:.0}"),
                        Some(v) => format!("{v:.4}"),
                        None => "n/a".to_owned(),
                    };
                    let note = m.na_reason.as_deref().unwrap_or(&m.basis);
                    println!("  {name:<24} {value:>16}  {note}");
                }
                let trades = &r.result.trades;
                println!("  trades: {}", trades.len());
                for t in trades.iter().take(10) {
                    println!(
                        "    {} → {}  {:.6} → {:.6}  units {:.6}  pnl {:+.4}  ({:?})",
                        fmt_time(t.entry_time),
                        fmt_time(t.exit_time),
                        t.entry_price,
                        t.exit_price,
                        t.units,
                        t.pnl,
                        t.exit_reason
                    );
                }
                if trades.len() > 10 {
                    println!(
                        "    … {} more (use --format json for all)",
                        trades.len() - 10
                    );
                }
                println!();
            }
        }
    }
    Ok(())
}
