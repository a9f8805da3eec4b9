//! The backtester: an explicit, documented fill model over a compiled strategy.
//!
//! Default semantics (also stated in every result's [`Provenance::semantics`]):
//! - A rule is evaluated on bar t's close using only data up to t; the order fills at bar
//!   t+1's **open** ([`Fill::NextOpen`]). No signal is acted on at the last bar.
//! - Long-only, one position at a time. Entry spends the sized budget (default: all cash) with
//!   fractional units: `units = budget / (price · (1 + fee))`, `cash −= units · price · (1 + fee)`;
//!   exit: `cash += units · price · (1 − fee)`. Fee default 0.1 % per side.
//! - Slippage (bps) moves every fill price against the trader.
//! - Stops and targets are checked against each bar's high/low after entry; a gap through the
//!   level fills at the open; if stop and target are both inside one bar the stop fills first.
//! - An open position is closed at the last bar's close ("end of data").

mod memory;
mod metrics;

pub use memory::{CANDLE_BYTES, MemoryEstimate, estimate_memory};

pub use metrics::{Metric, Metrics};

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::candles::Candles;
use crate::strategy::{CompiledStrategy, Evaluation, PositionSize};

/// When an order triggered at bar t's close is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// At bar t+1's open (default; no look-ahead).
    #[default]
    NextOpen,
    /// At bar t's own close (optimistic: assumes you can trade at the price you just saw).
    SameClose,
}

impl Fill {
    /// Parses `next-open` / `next_open` / `close` / `same-close`.
    pub fn parse(s: &str) -> Option<Fill> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "next-open" | "open" => Some(Fill::NextOpen),
            "close" | "same-close" => Some(Fill::SameClose),
            _ => None,
        }
    }
}

/// Backtest options, recorded with the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestConfig {
    /// Starting cash in quote currency.
    pub initial_cash: f64,
    /// Fee per side as a fraction of traded value (0.001 = 0.1 %).
    pub fee: f64,
    /// Slippage in basis points, against the trader on every fill.
    pub slippage_bps: f64,
    pub fill: Fill,
    /// Units are rounded down to a multiple of this (e.g. 1.0 = whole units); `None` = fractional.
    pub quantity_step: Option<f64>,
    /// Overrides the strategy's `size`; `None` = the strategy's, else 100 % of equity.
    pub position_size: Option<PositionSize>,
    /// Days per year for annualising (365 for crypto, 252 for exchange-traded stocks).
    pub days_per_year: f64,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            initial_cash: 10_000.0,
            fee: 0.001,
            slippage_bps: 0.0,
            fill: Fill::NextOpen,
            quantity_step: None,
            position_size: None,
            days_per_year: 365.0,
        }
    }
}

/// Why a backtest did not produce a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum BacktestError {
    #[error("no candles to run on")]
    NoCandles,
    #[error("invalid candles: {0}")]
    Candles(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cancelled")]
    Cancelled,
    /// The run made more trades than its memory budget holds (see [`RunLimits::max_trades`]).
    #[error(
        "the run made more than {0} trades, more than its memory budget holds: shorten the range, use a larger \
         timeframe or a strategy that trades less often"
    )]
    TooManyTrades(usize),
}

/// Bounds on one run's memory that the caller (a worker with a memory budget) sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Most trades the run may record before it stops with [`BacktestError::TooManyTrades`].
    pub max_trades: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            max_trades: usize::MAX,
        }
    }
}

/// Why a trade was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Signal,
    StopLoss,
    TakeProfit,
    TrailingStop,
    MaxBars,
    EndOfData,
}

impl ExitReason {
    /// Human label, e.g. "end of data".
    pub fn label(self) -> &'static str {
        match self {
            ExitReason::Signal => "exit signal",
            ExitReason::StopLoss => "stop loss",
            ExitReason::TakeProfit => "take profit",
            ExitReason::TrailingStop => "trailing stop",
            ExitReason::MaxBars => "max bars in trade",
            ExitReason::EndOfData => "end of data",
        }
    }
}

/// One round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// Bar index of the entry fill and of the exit fill.
    pub entry_index: usize,
    pub exit_index: usize,
    /// Open times (epoch ms UTC) of those bars.
    pub entry_time: i64,
    pub exit_time: i64,
    /// Fill prices (after slippage).
    pub entry_price: f64,
    pub exit_price: f64,
    pub units: f64,
    /// Fees paid on entry and exit, quote currency.
    pub fees: f64,
    /// Net profit in quote currency: exit proceeds − entry cost, fees included.
    pub pnl: f64,
    /// `pnl / entry cost`.
    pub return_pct: f64,
    /// Bars from entry fill to exit fill (`exit_index − entry_index`).
    pub bars_held: usize,
    pub exit_reason: ExitReason,
    /// The entry rule that fired and the values (at the signal bar) of the series it uses.
    pub entry_rule: Arc<str>,
    pub entry_values: Vec<(Arc<str>, f64)>,
    /// The exit rule that fired (for signal exits) and its values.
    pub exit_rule: Option<Arc<str>>,
    pub exit_values: Vec<(Arc<str>, f64)>,
}

/// Where a result came from: enough to reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub engine_version: String,
    /// SHA-256 of the candles ([`Candles::content_hash`]).
    pub candles_hash: String,
    pub timeframe: String,
    pub bars: usize,
    pub first_time: Option<i64>,
    pub last_time: Option<i64>,
    /// SHA-256 of the strategy source.
    pub strategy_source_hash: String,
    /// Parameter values in effect.
    pub params: Vec<(String, String)>,
    pub fill_model: String,
    pub fee: f64,
    pub slippage_bps: f64,
    pub quantity_step: Option<f64>,
    pub initial_cash: f64,
    pub position_size: String,
    pub days_per_year: f64,
    /// The semantics the numbers were computed under, in plain words.
    pub semantics: Vec<String>,
}

/// A backtest result (serde-serialisable for the API, the worker and `--format json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestResult {
    pub trades: Vec<Trade>,
    /// Mark-to-market equity at each bar's close (`cash + units · close`), aligned with the
    /// candles.
    pub equity: Vec<f64>,
    pub metrics: Metrics,
    pub provenance: Provenance,
    /// Entry signals that could not be filled (e.g. budget below one quantity step).
    pub skipped_entries: usize,
}

/// Runs a backtest.
///
/// # Errors
/// [`BacktestError`] for empty or ragged candles or an invalid configuration.
pub fn run(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
) -> Result<BacktestResult, BacktestError> {
    run_with(candles, strategy, config, &mut |_, _| true)
}

/// [`run`] with a progress callback `progress(done_bars, total_bars)`, called a few times per
/// million bars; returning `false` cancels with [`BacktestError::Cancelled`].
///
/// # Errors
/// As [`run`], plus [`BacktestError::Cancelled`].
pub fn run_with(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<BacktestResult, BacktestError> {
    run_limited(candles, strategy, config, RunLimits::default(), progress)
}

/// [`run_with`] within `limits`.
///
/// # Errors
/// As [`run_with`], plus [`BacktestError::TooManyTrades`].
pub fn run_limited(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
    limits: RunLimits,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<BacktestResult, BacktestError> {
    check(candles, config)?;
    let n = candles.len();
    if !progress(0, n) {
        return Err(BacktestError::Cancelled);
    }
    let mut ev = strategy.evaluate(candles);
    let sim = simulate(candles, strategy, config, &mut ev, progress, false, limits)?;
    drop(ev);
    let metrics = metrics::compute(candles, config, &sim.trades, &sim.equity);
    Ok(BacktestResult {
        provenance: provenance(candles, strategy, config),
        trades: sim.trades,
        equity: sim.equity,
        metrics,
        skipped_entries: sim.skipped,
    })
}

fn check(candles: &Candles, config: &BacktestConfig) -> Result<(), BacktestError> {
    if candles.is_empty() {
        return Err(BacktestError::NoCandles);
    }
    let n = candles.len();
    if [
        &candles.open,
        &candles.high,
        &candles.low,
        &candles.close,
        &candles.volume,
    ]
    .iter()
    .any(|c| c.len() != n)
    {
        return Err(BacktestError::Candles(
            "columns have different lengths".into(),
        ));
    }
    let bad = |m: &str| Err(BacktestError::Config(m.to_string()));
    if !(config.initial_cash.is_finite() && config.initial_cash > 0.0) {
        return bad("initial cash must be a positive number");
    }
    if !(0.0..0.5).contains(&config.fee) {
        return bad("fee must be in [0, 0.5) (a fraction: 0.001 = 0.1 %)");
    }
    if !(0.0..5000.0).contains(&config.slippage_bps) {
        return bad("slippage must be in [0, 5000) basis points");
    }
    if let Some(s) = config.quantity_step
        && !(s.is_finite() && s > 0.0)
    {
        return bad("quantity step must be a positive number");
    }
    if !(config.days_per_year.is_finite()
        && config.days_per_year >= 1.0
        && config.days_per_year <= 366.0)
    {
        return bad("days per year must be in 1..=366");
    }
    match config.position_size {
        Some(PositionSize::PercentOfEquity(f)) if !(f > 0.0 && f <= 1.0) => {
            bad("position size must be in (0, 100 %] of equity")
        }
        Some(PositionSize::FixedQuote(q)) if !(q.is_finite() && q > 0.0) => {
            bad("fixed position size must be a positive amount")
        }
        _ => Ok(()),
    }
}

fn size_label(s: PositionSize) -> String {
    match s {
        PositionSize::PercentOfEquity(f) => format!("{}% of equity", f * 100.0),
        PositionSize::FixedQuote(q) => format!("{q} quote"),
    }
}

fn provenance(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
) -> Provenance {
    let size = config
        .position_size
        .or(strategy.risk().size)
        .unwrap_or(PositionSize::PercentOfEquity(1.0));
    let fill = match config.fill {
        Fill::NextOpen => "next_open",
        Fill::SameClose => "same_close",
    };
    let mut semantics = vec![
        match config.fill {
            Fill::NextOpen => "rules are evaluated on bar t's close using data up to t; orders fill at bar t+1's open; no signal is acted on at the last bar".to_string(),
            Fill::SameClose => "rules are evaluated on bar t's close and fill at that same close (optimistic); no signal is acted on at the last bar".to_string(),
        },
        "long-only, one position at a time".to_string(),
        format!("entry buys {} with {} units: units = budget / (price * (1 + fee)); exit proceeds = units * price * (1 - fee)", size_label(size), match config.quantity_step { None => "fractional".to_string(), Some(s) => format!("multiples of {s}") }),
        format!("fee {}% per side; slippage {} bps against the trader on every fill", config.fee * 100.0, config.slippage_bps),
        "crosses_above(a, b) at t means a[t-1] < b[t-1] and a[t] > b[t]; comparisons with NaN (warm-up) are false".to_string(),
        "an open position is closed at the last bar's close (reason: end of data)".to_string(),
        "equity is marked to market at each bar's close; metrics use daily (UTC) mark-to-market returns".to_string(),
    ];
    let r = strategy.risk();
    if r.stop_loss.is_some() || r.take_profit.is_some() || r.trailing_stop.is_some() {
        semantics.push("stops and targets are checked against each bar's high/low after entry; a gap through the level fills at the open; if stop and target are both inside one bar, the stop fills first (pessimistic); a trailing stop trails the highest high of the bars before the current one".to_string());
    }
    if r.max_bars.is_some() {
        semantics.push("max bars: when the position has been held that many bars at a close, it exits like an exit signal".to_string());
    }
    Provenance {
        engine_version: crate::ENGINE_VERSION.to_string(),
        candles_hash: candles.content_hash(),
        timeframe: candles.timeframe.to_string(),
        bars: candles.len(),
        first_time: candles.time.first().copied(),
        last_time: candles.time.last().copied(),
        strategy_source_hash: strategy.source_hash().to_string(),
        params: strategy
            .params()
            .iter()
            .map(|p| (p.name.clone(), p.value.to_string()))
            .collect(),
        fill_model: fill.to_string(),
        fee: config.fee,
        slippage_bps: config.slippage_bps,
        quantity_step: config.quantity_step,
        initial_cash: config.initial_cash,
        position_size: size_label(size),
        days_per_year: config.days_per_year,
        semantics,
    }
}

pub(crate) struct Simulation {
    pub trades: Vec<Trade>,
    pub equity: Vec<f64>,
    pub skipped: usize,
    /// Per bar (only when recording): position held at the close.
    pub in_position: Vec<bool>,
}

struct Open {
    index: usize,
    price: f64,
    units: f64,
    cost: f64,
    fee: f64,
    peak: f64,
    rule: usize,
    /// Entry rule's values at the signal bar.
    values: Vec<(Arc<str>, f64)>,
}

#[derive(Clone, Copy)]
enum Pending {
    Entry {
        rule: usize,
    },
    Exit {
        rule: Option<usize>,
        reason: ExitReason,
    },
}

/// Most rule-reference values one side (entry or exit) of a trade stores: a rule that names more
/// series keeps the first ones in source order. Each trade stores its entry rule's values at the
/// entry signal and its exit rule's at the exit signal (labels are shared, not copied), so a trade
/// holds at most `2 × MAX_TRADE_VALUES` values however many series a strategy names.
pub const MAX_TRADE_VALUES: usize = 8;

/// Values at bar `i` of the series a rule uses (at most [`MAX_TRADE_VALUES`]). Column `reused` has been lent to the equity
/// curve, whose entries from `i` on still hold that column's values (see [`simulate`]).
fn values_at(
    ev: &Evaluation,
    labels: &[Arc<str>],
    refs: &[(String, usize)],
    i: usize,
    reused: Option<usize>,
    equity: &[f64],
) -> Vec<(Arc<str>, f64)> {
    refs.iter()
        .zip(labels)
        .take(MAX_TRADE_VALUES)
        .map(|((_, k), l)| {
            let col = if reused == Some(*k) {
                equity
            } else {
                ev.columns.get(*k).map_or(&[][..], |c| c.as_slice())
            };
            (l.clone(), col.get(i).copied().unwrap_or(f64::NAN))
        })
        .collect()
}

/// The first bar in `from..to` at which any of `rules` is true, else `to`.
fn next_true(rules: &[Vec<bool>], from: usize, to: usize) -> usize {
    let mut end = to;
    for r in rules {
        let stop = end.min(r.len());
        if from < stop
            && let Some(k) = r[from..stop].iter().position(|&b| b)
        {
            end = from + k;
        }
    }
    end
}

pub(crate) fn simulate(
    c: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
    ev: &mut Evaluation,
    progress: &mut dyn FnMut(usize, usize) -> bool,
    record: bool,
    limits: RunLimits,
) -> Result<Simulation, BacktestError> {
    let n = c.len();
    // The equity curve is written over a retained numeric column (when not recording a trace,
    // nothing reads the columns afterwards): bar t's values are read at t's close, before
    // equity[t] is written. This saves faulting in a fresh n-bar buffer.
    let reused = if record {
        None
    } else {
        ev.columns.iter().position(|col| col.len() == n)
    };
    let mut equity = match reused {
        Some(k) => std::mem::take(&mut ev.columns[k]),
        None => vec![0.0; n],
    };
    let ev: &Evaluation = ev;
    let risk = strategy.risk();
    let size = config
        .position_size
        .or(risk.size)
        .unwrap_or(PositionSize::PercentOfEquity(1.0));
    let slip = config.slippage_bps / 10_000.0;
    let fee = config.fee;
    // Shared strings: a trade clones a pointer, not the text (this matters at 100k trades).
    let rule_texts: Vec<Arc<str>> = strategy
        .rules()
        .map(|r| Arc::from(r.text.as_str()))
        .collect();
    let ref_labels: Vec<Vec<Arc<str>>> = ev
        .rule_refs
        .iter()
        .map(|refs| refs.iter().map(|(l, _)| Arc::from(l.as_str())).collect())
        .collect();
    let n_entry = ev.entry.len();
    let mut cash = config.initial_cash;
    let mut pos: Option<Open> = None;
    let mut pending: Option<Pending> = None;
    let mut trades = Vec::new();
    let mut pending_values = Vec::new();
    let mut in_position = Vec::with_capacity(if record { n } else { 0 });
    let mut skipped = 0;
    const CHUNK: usize = 1 << 18;

    let first_true = |rules: &[Vec<bool>], t: usize| {
        rules
            .iter()
            .position(|r| r.get(t).copied().unwrap_or(false))
    };

    let close_pos = |pos: Open,
                     t: usize,
                     price: f64,
                     reason: ExitReason,
                     rule: Option<usize>,
                     exit_values: Vec<(Arc<str>, f64)>,
                     cash: &mut f64,
                     trades: &mut Vec<Trade>| {
        let gross = pos.units * price;
        let exit_fee = gross * fee;
        let proceeds = pos.units * price * (1.0 - fee);
        *cash += proceeds;
        let pnl = proceeds - pos.cost;
        trades.push(Trade {
            entry_index: pos.index,
            exit_index: t,
            entry_time: c.time[pos.index],
            exit_time: c.time[t],
            entry_price: pos.price,
            exit_price: price,
            units: pos.units,
            fees: pos.fee + exit_fee,
            pnl,
            return_pct: if pos.cost > 0.0 { pnl / pos.cost } else { 0.0 },
            bars_held: t - pos.index,
            exit_reason: reason,
            entry_rule: rule_texts
                .get(pos.rule)
                .cloned()
                .unwrap_or_else(|| Arc::from("")),
            entry_values: pos.values,
            exit_rule: rule.map(|k| {
                rule_texts
                    .get(n_entry + k)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(""))
            }),
            exit_values,
        });
    };

    // Values of rule `idx` (entry rules, then exit rules) at bar `i`.
    let rule_values =
        |idx: usize, i: usize, equity: &[f64]| match (ev.rule_refs.get(idx), ref_labels.get(idx)) {
            (Some(r), Some(l)) => values_at(ev, l, r, i, reused, equity),
            _ => Vec::new(),
        };

    let open_pos = |t: usize,
                    base: f64,
                    rule: usize,
                    values: Vec<(Arc<str>, f64)>,
                    cash: &mut f64,
                    skipped: &mut usize|
     -> Option<Open> {
        let price = base * (1.0 + slip);
        let budget = match size {
            PositionSize::PercentOfEquity(f) => *cash * f,
            PositionSize::FixedQuote(q) => q.min(*cash),
        };
        let mut units = budget / (price * (1.0 + fee));
        if let Some(step) = config.quantity_step {
            units = (units / step).floor() * step;
        }
        if !(units > 0.0 && units.is_finite()) {
            *skipped += 1;
            return None;
        }
        let cost = units * price * (1.0 + fee);
        *cash -= cost;
        if *cash < 0.0 {
            // Rounding residue of spending everything.
            *cash = 0.0;
        }
        Some(Open {
            index: t,
            price,
            units,
            cost,
            fee: units * price * fee,
            peak: price,
            rule,
            values,
        })
    };

    // Bars on which nothing can happen (no pending order, no rule firing, no stop to check,
    // not the last bar, not a progress checkpoint) only extend the equity curve; they are
    // skipped over in bulk (same values, same operations).
    let has_levels =
        risk.stop_loss.is_some() || risk.take_profit.is_some() || risk.trailing_stop.is_some();
    let mut t = 0;
    while t < n {
        if t % CHUNK == 0 && t > 0 && !progress(t, n) {
            return Err(BacktestError::Cancelled);
        }
        if pending.is_none() {
            let from = t;
            let to = (n - 1).min((t / CHUNK + 1) * CHUNK);
            match &pos {
                None => {
                    let q = next_true(&ev.entry, t, to);
                    equity[t..q].fill(cash);
                    if record {
                        in_position.resize(in_position.len() + (q - t), false);
                    }
                    t = q;
                }
                Some(o) if !has_levels => {
                    // Held bars: `held = u + 1 - index` must stay below max bars.
                    let to = match risk.max_bars {
                        Some(m) => to.min((o.index + m).saturating_sub(1).max(t)),
                        None => to,
                    };
                    let q = next_true(&ev.exit, t, to);
                    let units = o.units;
                    for (e, &x) in equity[t..q].iter_mut().zip(&c.close[t..q]) {
                        *e = cash + units * x;
                    }
                    if record {
                        in_position.resize(in_position.len() + (q - t), true);
                    }
                    t = q;
                }
                Some(_) => {}
            }
            if t > from {
                continue;
            }
        }
        // 1. Orders decided at the previous close fill at this open.
        if let Some(p) = pending.take() {
            match p {
                Pending::Entry { rule } => {
                    let values = std::mem::take(&mut pending_values);
                    pos = open_pos(t, c.open[t], rule, values, &mut cash, &mut skipped);
                }
                Pending::Exit { rule, reason } => {
                    let values = std::mem::take(&mut pending_values);
                    if let Some(o) = pos.take() {
                        close_pos(
                            o,
                            t,
                            c.open[t] * (1.0 - slip),
                            reason,
                            rule,
                            values,
                            &mut cash,
                            &mut trades,
                        );
                    }
                }
            }
        }
        // 2. Stops and targets inside this bar (after the entry fill).
        if let Some(o) = &mut pos {
            let checkable = config.fill == Fill::NextOpen || t > o.index;
            if checkable {
                let mut stop: Option<(f64, ExitReason)> = None;
                if let Some(sl) = risk.stop_loss {
                    stop = Some((o.price * (1.0 - sl), ExitReason::StopLoss));
                }
                if let Some(ts) = risk.trailing_stop {
                    let lvl = o.peak * (1.0 - ts);
                    if stop.is_none_or(|(s, _)| lvl > s) {
                        stop = Some((lvl, ExitReason::TrailingStop));
                    }
                }
                let target = risk.take_profit.map(|tp| o.price * (1.0 + tp));
                let (open, high, low) = (c.open[t], c.high[t], c.low[t]);
                let mut exit: Option<(f64, ExitReason)> = None;
                if let Some((lvl, why)) = stop {
                    if open <= lvl {
                        exit = Some((open, why));
                    } else if low <= lvl {
                        exit = Some((lvl, why));
                    }
                }
                if exit.is_none()
                    && let Some(lvl) = target
                {
                    if open >= lvl {
                        exit = Some((open, ExitReason::TakeProfit));
                    } else if high >= lvl {
                        exit = Some((lvl, ExitReason::TakeProfit));
                    }
                }
                if let Some((price, why)) = exit {
                    if let Some(o) = pos.take() {
                        close_pos(
                            o,
                            t,
                            price * (1.0 - slip),
                            why,
                            None,
                            Vec::new(),
                            &mut cash,
                            &mut trades,
                        );
                    }
                } else {
                    o.peak = o.peak.max(high);
                }
            }
        }
        // 3. Decisions at this close.
        let last = t + 1 == n;
        if !last {
            match &pos {
                Some(o) => {
                    let exit_rule = first_true(&ev.exit, t);
                    let held = t + 1 - o.index;
                    let decision = if let Some(k) = exit_rule {
                        Some((Some(k), ExitReason::Signal))
                    } else if risk.max_bars.is_some_and(|m| held >= m) {
                        Some((None, ExitReason::MaxBars))
                    } else {
                        None
                    };
                    if let Some((rule, reason)) = decision {
                        let values = match rule {
                            Some(k) => rule_values(n_entry + k, t, &equity),
                            None => Vec::new(),
                        };
                        match config.fill {
                            Fill::NextOpen => {
                                pending = Some(Pending::Exit { rule, reason });
                                pending_values = values;
                            }
                            Fill::SameClose => {
                                if let Some(o) = pos.take() {
                                    close_pos(
                                        o,
                                        t,
                                        c.close[t] * (1.0 - slip),
                                        reason,
                                        rule,
                                        values,
                                        &mut cash,
                                        &mut trades,
                                    );
                                }
                            }
                        }
                    }
                }
                None => {
                    if let Some(rule) = first_true(&ev.entry, t) {
                        let values = rule_values(rule, t, &equity);
                        match config.fill {
                            Fill::NextOpen => {
                                pending = Some(Pending::Entry { rule });
                                pending_values = values;
                            }
                            Fill::SameClose => {
                                pos =
                                    open_pos(t, c.close[t], rule, values, &mut cash, &mut skipped);
                            }
                        }
                    }
                }
            }
        } else if let Some(o) = pos.take() {
            close_pos(
                o,
                t,
                c.close[t] * (1.0 - slip),
                ExitReason::EndOfData,
                None,
                Vec::new(),
                &mut cash,
                &mut trades,
            );
        }
        if trades.len() > limits.max_trades {
            return Err(BacktestError::TooManyTrades(limits.max_trades));
        }
        equity[t] = match &pos {
            Some(o) => cash + o.units * c.close[t],
            None => cash,
        };
        if record {
            in_position.push(pos.is_some());
        }
        t += 1;
    }
    if !progress(n, n) {
        return Err(BacktestError::Cancelled);
    }
    Ok(Simulation {
        trades,
        equity,
        skipped,
        in_position,
    })
}

/// One bar of the decision trace ("why did / didn't it trade here").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarTrace {
    pub index: usize,
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Position held at this bar's close.
    pub in_position: bool,
    /// Each entry rule's text and whether it was true at this close.
    pub entry_rules: Vec<(String, bool)>,
    pub exit_rules: Vec<(String, bool)>,
    /// Named series and the series the rules use, at this bar (NaN during warm-up).
    pub values: Vec<(String, f64)>,
    /// What the engine did or decided at this bar, in words.
    pub actions: Vec<String>,
}

/// The decision trace for bars in `range` (clamped to the candles). Runs the full backtest so
/// position state is exact.
pub fn trace(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
    range: std::ops::Range<usize>,
) -> Result<Vec<BarTrace>, BacktestError> {
    trace_limited(candles, strategy, config, range, RunLimits::default())
}

/// [`trace`] within `limits`.
///
/// # Errors
/// As [`trace`], plus [`BacktestError::TooManyTrades`].
pub fn trace_limited(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
    range: std::ops::Range<usize>,
    limits: RunLimits,
) -> Result<Vec<BarTrace>, BacktestError> {
    check(candles, config)?;
    let mut ev = strategy.evaluate(candles);
    let sim = simulate(
        candles,
        strategy,
        config,
        &mut ev,
        &mut |_, _| true,
        true,
        limits,
    )?;
    let n = candles.len();
    let range = range.start.min(n)..range.end.min(n);
    let texts: Vec<String> = strategy.rules().map(|r| r.text.clone()).collect();
    let n_entry = ev.entry.len();
    let mut out = Vec::with_capacity(range.len());
    for t in range {
        let mut actions = Vec::new();
        for tr in &sim.trades {
            if tr.entry_index == t {
                actions.push(format!("bought {} units at {}", tr.units, tr.entry_price));
            }
            if tr.exit_index == t {
                actions.push(format!(
                    "sold {} units at {} ({})",
                    tr.units,
                    tr.exit_price,
                    tr.exit_reason.label()
                ));
            }
        }
        let entry_now = ev.entry.iter().any(|r| r[t]);
        let exit_now = ev.exit.iter().any(|r| r[t]);
        let held = sim.in_position[t];
        let last = t + 1 == n;
        if entry_now && !held && !last {
            actions.push(match config.fill {
                Fill::NextOpen => "entry signal: buy at the next bar's open".into(),
                Fill::SameClose => "entry signal: bought at this close".into(),
            });
        } else if entry_now && held {
            actions.push("entry signal ignored: already in a position".into());
        } else if entry_now && last {
            actions.push("entry signal ignored: last bar".into());
        }
        if exit_now && held && !last {
            actions.push("exit signal: sell at the next bar's open".into());
        } else if exit_now && !held && t > 0 && !sim.in_position[t - 1] {
            actions.push("exit signal ignored: no position".into());
        }
        let mut values: Vec<(String, f64)> = ev
            .series
            .iter()
            .map(|(k, c)| (k.clone(), ev.columns[*c][t]))
            .collect();
        for refs in &ev.rule_refs {
            for (k, c) in refs {
                if !values.iter().any(|(x, _)| x == k) {
                    values.push((k.clone(), ev.columns[*c][t]));
                }
            }
        }
        if values.iter().any(|(_, v)| v.is_nan()) && !entry_now {
            actions.push(
                "some series are still warming up (NaN): comparisons with them are false".into(),
            );
        }
        out.push(BarTrace {
            index: t,
            time: candles.time[t],
            open: candles.open[t],
            high: candles.high[t],
            low: candles.low[t],
            close: candles.close[t],
            in_position: held,
            entry_rules: ev
                .entry
                .iter()
                .enumerate()
                .map(|(k, r)| (texts[k].clone(), r[t]))
                .collect(),
            exit_rules: ev
                .exit
                .iter()
                .enumerate()
                .map(|(k, r)| (texts[n_entry + k].clone(), r[t]))
                .collect(),
            values,
            actions,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
