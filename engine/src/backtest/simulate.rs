//! The simulation loop: walks the bars once, filling orders by the documented fill model. Tuned for
//! speed (see the benchmark); keep its body as it is unless a measurement says otherwise.

use std::sync::Arc;

use super::replay::{OpenPosition, PendingOrder, Refusal, RefusalKind};
use super::{BacktestConfig, BacktestError, ExitReason, Fill, Gate, RunLimits, Trade};
use crate::candles::Candles;
use crate::strategy::{CompiledStrategy, Evaluation, PositionSize};

pub(crate) struct Simulation {
    pub trades: Vec<Trade>,
    pub equity: Vec<f64>,
    pub skipped: usize,
    /// Per bar (only when recording): position held at the close.
    pub in_position: Vec<bool>,
    /// Cash after the last bar.
    pub cash: f64,
    /// Open-ended runs only: the position still open after the last bar, and the order decided at its close.
    pub open: Option<OpenPosition>,
    pub pending: Option<PendingOrder>,
    /// Decisions a gate refused.
    pub refused: Vec<Refusal>,
    /// Only when recording: every order decided at a close (entries and the strategy's exits), in order.
    pub signals: Vec<PendingOrder>,
}

/// How a paper run differs from a backtest: a gate per bar, and no end of data (the last bar decides, an open
/// position stays open).
pub(crate) struct Live<'a> {
    pub gates: &'a [Gate],
    pub open_ended: bool,
}

impl Live<'_> {
    fn gate(&self, t: usize) -> Gate {
        self.gates.get(t).copied().unwrap_or(Gate::Open)
    }
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
    live: Option<&Live<'_>>,
) -> Result<Simulation, BacktestError> {
    let n = c.len();
    let gate = |t: usize| live.map_or(Gate::Open, |l| l.gate(t));
    let open_ended = live.is_some_and(|l| l.open_ended);
    let mut refused = Vec::new();
    let mut signals = Vec::new();
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
        if pending.is_none() && live.is_none() {
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
                    if gate(t).allows_entry_fill() {
                        pos = open_pos(t, c.open[t], rule, values, &mut cash, &mut skipped);
                    } else {
                        refused.push(Refusal {
                            index: t,
                            kind: RefusalKind::PendingEntryCancelled,
                            gate: gate(t),
                        });
                    }
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
        let last = t + 1 == n && !open_ended;
        let g = gate(t);
        if !last && g != Gate::Warmup {
            match &pos {
                Some(o) => {
                    let exit_rule = first_true(&ev.exit, t);
                    let held = t + 1 - o.index;
                    let mut decision = if let Some(k) = exit_rule {
                        Some((Some(k), ExitReason::Signal))
                    } else if risk.max_bars.is_some_and(|m| held >= m) {
                        Some((None, ExitReason::MaxBars))
                    } else {
                        None
                    };
                    if decision.is_some() && !g.allows_exit() {
                        refused.push(Refusal {
                            index: t,
                            kind: RefusalKind::ExitSignal,
                            gate: g,
                        });
                        decision = None;
                    }
                    if g == Gate::Flatten && decision.is_none() {
                        decision = Some((None, ExitReason::Flatten));
                    }
                    if let Some((rule, reason)) = decision {
                        let values = match rule {
                            Some(k) => rule_values(n_entry + k, t, &equity),
                            None => Vec::new(),
                        };
                        if record {
                            signals.push(PendingOrder {
                                decided_index: t,
                                entry: false,
                                reason: Some(reason),
                                rule: rule.and_then(|k| rule_texts.get(n_entry + k).cloned()),
                                values: values.clone(),
                            });
                        }
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
                    let rule = first_true(&ev.entry, t);
                    if rule.is_some() && !g.allows_entry() {
                        refused.push(Refusal {
                            index: t,
                            kind: RefusalKind::EntrySignal,
                            gate: g,
                        });
                    } else if let Some(rule) = rule {
                        let values = rule_values(rule, t, &equity);
                        if record {
                            signals.push(PendingOrder {
                                decided_index: t,
                                entry: true,
                                reason: None,
                                rule: rule_texts.get(rule).cloned(),
                                values: values.clone(),
                            });
                        }
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
    let open = pos.map(|o| OpenPosition {
        entry_index: o.index,
        entry_time: c.time[o.index],
        entry_price: o.price,
        units: o.units,
        cost: o.cost,
        entry_fee: o.fee,
        peak: o.peak,
        entry_rule: rule_texts
            .get(o.rule)
            .cloned()
            .unwrap_or_else(|| Arc::from("")),
        entry_values: o.values,
    });
    let pending = pending.map(|p| match p {
        Pending::Entry { rule } => PendingOrder {
            decided_index: n - 1,
            entry: true,
            reason: None,
            rule: rule_texts.get(rule).cloned(),
            values: std::mem::take(&mut pending_values),
        },
        Pending::Exit { rule, reason } => PendingOrder {
            decided_index: n - 1,
            entry: false,
            reason: Some(reason),
            rule: rule.and_then(|k| rule_texts.get(n_entry + k).cloned()),
            values: std::mem::take(&mut pending_values),
        },
    });
    Ok(Simulation {
        trades,
        equity,
        skipped,
        in_position,
        cash,
        open,
        pending,
        refused,
        signals,
    })
}
