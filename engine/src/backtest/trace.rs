//! The decision trace: for a window of bars, what each rule said and what the engine did.

use serde::{Deserialize, Serialize};

use super::config::check;
use super::replay::RefusalKind;
use super::simulate::{Simulation, simulate};
use super::{BacktestConfig, BacktestError, Fill, RunLimits};
use crate::candles::Candles;
use crate::strategy::{CompiledStrategy, Evaluation};

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
        None,
    )?;
    let n = candles.len();
    let range = range.start.min(n)..range.end.min(n);
    Ok(range
        .map(|t| bar_trace(candles, strategy, config, &ev, &sim, t, t + 1 == n))
        .collect())
}

/// The trace of bar `t` of a recorded simulation (`last`: no decision is taken at this bar).
pub(crate) fn bar_trace(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
    ev: &Evaluation,
    sim: &Simulation,
    t: usize,
    last: bool,
) -> BarTrace {
    let texts: Vec<&str> = strategy.rules().map(|r| r.text.as_str()).collect();
    let n_entry = ev.entry.len();
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
    if let Some(o) = &sim.open
        && o.entry_index == t
    {
        actions.push(format!("bought {} units at {}", o.units, o.entry_price));
    }
    let entry_now = ev.entry.iter().any(|r| r[t]);
    let exit_now = ev.exit.iter().any(|r| r[t]);
    let held = sim.in_position[t];
    let refused: Vec<_> = sim.refused.iter().filter(|r| r.index == t).collect();
    for r in &refused {
        actions.push(format!("{} ({})", r.kind.label(), r.gate));
    }
    let refused_here = |k: RefusalKind| refused.iter().any(|r| r.kind == k);
    if refused_here(RefusalKind::EntrySignal) || refused_here(RefusalKind::ExitSignal) {
        // Said above.
    } else if entry_now && !held && !last {
        actions.push(match config.fill {
            Fill::NextOpen => "entry signal: buy at the next bar's open".into(),
            Fill::SameClose => "entry signal: bought at this close".into(),
        });
    } else if entry_now && held {
        actions.push("entry signal ignored: already in a position".into());
    } else if entry_now && last {
        actions.push("entry signal ignored: last bar".into());
    }
    if exit_now && held && !last && !refused_here(RefusalKind::ExitSignal) {
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
        actions
            .push("some series are still warming up (NaN): comparisons with them are false".into());
    }
    BarTrace {
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
            .map(|(k, r)| (texts[k].to_string(), r[t]))
            .collect(),
        exit_rules: ev
            .exit
            .iter()
            .enumerate()
            .map(|(k, r)| (texts[n_entry + k].to_string(), r[t]))
            .collect(),
        values,
        actions,
    }
}
