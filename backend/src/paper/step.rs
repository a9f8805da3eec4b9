//! One run's step over newly stored candles: pure computation, no I/O (the `paper_advance` job loads the
//! inputs and writes the outputs in one transaction).
//!
//! For each new candle in order, the engine replays the run's window (warm-up plus every candle processed so
//! far plus this one, without the ranges recorded as gaps) with the gate each candle was processed under. The
//! replay is the run's state: its fills in this candle, the trades it closed, the position and the order
//! decided at this close. Because the replay of a longer window extends the shorter one (the engine's prefix
//! property, tested there), a candle processed twice yields the same effects, and a run's history can be
//! recomputed from the candles and gates alone.

use std::sync::Arc;

use engine::backtest::{
    BacktestConfig, Gate, OpenPosition, PendingOrder, RefusalKind, RunLimits, Trade, replay,
};
use engine::candles::Candles;
use engine::strategy::CompiledStrategy;
use uuid::Uuid;

use super::risk::{self, Breach, Limit, Lock, RiskLimits, lock_gate};

/// What one run needs for a step.
#[derive(Clone)]
pub struct RunInput {
    pub run_id: Uuid,
    pub strategy: Arc<CompiledStrategy>,
    pub config: BacktestConfig,
    pub warmup_from: i64,
    pub live_from: i64,
    /// The last candle processed.
    pub cursor: Option<i64>,
    /// Equity after `cursor` as stored (checks that history did not change).
    pub equity: f64,
    pub trade_count: usize,
    /// Gates other than `open` of processed candles, by open time (sorted).
    pub stored_gates: Vec<(i64, Gate)>,
    /// Recorded gaps `[from, to)` (sorted).
    pub gaps: Vec<(i64, i64)>,
    /// The gate new candles are processed under.
    pub gate_now: Gate,
    /// Stopping with "flatten first": stops once flat.
    pub stopping: bool,
    /// The run's risk limits, its risk locks (active or time-boxed) and, per limit, the last candle before it
    /// measures again (a released lock).
    pub risk: RiskLimits,
    pub locks: Vec<Lock>,
    pub since: Vec<(Limit, i64)>,
    /// Clock time of the step (ms; the stale-feed limit).
    pub now_ms: i64,
    /// Runs in signal `gate` mode: the accepted signals not used yet, in arrival order (`None`: signals off).
    pub signals: Option<Vec<super::signals::Pending>>,
}

/// A fill in a processed candle.
#[derive(Debug, Clone, PartialEq)]
pub struct FillOut {
    pub buy: bool,
    pub price: f64,
    pub units: f64,
    pub fee: f64,
    /// `entry` or the exit reason.
    pub reason: String,
    pub rule: Option<String>,
    pub values: Vec<(String, f64)>,
    /// The round trip's net profit (exits).
    pub pnl: Option<f64>,
}

/// One processed candle's effects.
#[derive(Debug, Clone)]
pub struct CandleEffect {
    pub time: i64,
    pub ohlcv: [f64; 5],
    pub gate: Gate,
    pub equity: f64,
    pub cash: f64,
    pub units: f64,
    /// The engine's bar trace (rules, values, actions) as JSON.
    pub decision: serde_json::Value,
    pub fills: Vec<FillOut>,
    /// Trades closed in this candle, with their number (1-based).
    pub trades: Vec<(i32, Trade)>,
    /// Candles missing before this one: `[from, to)` and how many.
    pub gap: Option<(i64, i64, i32)>,
    /// The order decided at this close.
    pub signal: Option<PendingOrder>,
    /// An order decided at the previous close and cancelled before this open (by the gate).
    pub cancelled: Option<(bool, Gate)>,
    /// Risk limits breached at this close (each a lock from the next candle on).
    pub breaches: Vec<Breach>,
    /// The risk lock that made this candle's gate stricter than the run's own and the kill switches'.
    pub risk_lock: Option<Limit>,
    /// Inbound signals this candle used (gate mode).
    pub signals: Vec<Uuid>,
    /// The signal gate (no buy signal: `no_entry`; an exit: `flatten`) made this candle's gate stricter.
    pub signal_gated: bool,
}

/// The state after the last processed candle.
#[derive(Debug, Clone)]
pub struct FinalState {
    pub cash: f64,
    pub equity: f64,
    pub position: Option<OpenPosition>,
    pub pending: Option<PendingOrder>,
    /// Trades stored for the run (numbering goes on from here).
    pub trade_count: usize,
    /// Net profit of every closed trade, and every fee paid (closed trades and the open position's entry),
    /// from the replay: absolute values, never accumulated.
    pub realised: f64,
    pub fees: f64,
}

/// A step's outcome.
#[derive(Debug, Clone, Default)]
pub struct StepOutput {
    pub effects: Vec<CandleEffect>,
    pub state: Option<FinalState>,
    /// History before the cursor changed since it was processed (a revised or late candle): what was noticed.
    pub revised: Option<String>,
    /// The run cannot go on (shown on the run; it fails).
    pub error: Option<String>,
    /// More new candles remain than one step processes.
    pub more: bool,
    /// A stopping run is flat: it stops.
    pub stopped: bool,
    /// No new candle, and the last one closed longer ago than the stale-feed timeout: the breach, at the last
    /// candle processed.
    pub stale: Option<(i64, Breach)>,
}

/// Most characters of a rule's text kept in a stored decision (the full text is in the strategy version).
const DECISION_RULE_CHARS: usize = 200;

/// Most replays one step makes for risk locks found on the way (each breach costs one).
const MAX_RISK_REPLAYS: usize = 16;

/// Runs one step over `candles` (the series, sorted, covering at least the run's window). With `hold_at_holes`
/// (market data for the series is still being fetched), a missing candle ends the step instead of being
/// recorded as a gap: it may still arrive out of order.
pub fn step(
    candles: &Candles,
    input: &RunInput,
    max_candles: usize,
    max_window: usize,
    hold_at_holes: bool,
) -> StepOutput {
    // The window: every candle from the warm-up start, without the ranges recorded as gaps (both sorted).
    let mut window = Candles::with_capacity(candles.timeframe, 0);
    let mut g = 0;
    for i in 0..candles.len() {
        let t = candles.time[i];
        if t < input.warmup_from {
            continue;
        }
        while g < input.gaps.len() && input.gaps[g].1 <= t {
            g += 1;
        }
        if g < input.gaps.len() && input.gaps[g].0 <= t {
            continue;
        }
        let b = candles.bar(i);
        window.push(t, b.open, b.high, b.low, b.close, b.volume);
    }
    let is_new = |t: i64| t >= input.live_from && input.cursor.is_none_or(|c| t > c);
    let tf = candles.timeframe.millis();
    let Some(first_new) = window.time.iter().position(|&t| is_new(t)) else {
        return StepOutput {
            stale: stale_without_candles(input, tf),
            ..StepOutput::default()
        };
    };
    let total_new = window.len() - first_new;
    let mut last = first_new + total_new.min(max_candles);
    let mut out = StepOutput {
        more: total_new > max_candles,
        ..StepOutput::default()
    };
    if hold_at_holes {
        let mut prev = input.cursor.unwrap_or(input.live_from - tf);
        let hole = window.time[first_new..last].iter().position(|&t| {
            let missing = t > prev + tf;
            prev = t;
            missing
        });
        if let Some(h) = hole {
            last = first_new + h;
            out.more = false;
        }
        if last == first_new {
            return out;
        }
    }
    if last > max_window {
        out.error = Some(format!(
            "the run reached its limit of {max_window} candles (warm-up plus processed); start a new run \
             to go on (its history stays here)"
        ));
        out.more = false;
        return out;
    }
    // Inbound signals (gate mode): each accepted signal goes to the first new candle whose close is at or after
    // its arrival (else the last new candle); that candle's signal gate is flatten (an exit), open (a buy) or
    // no_entry (none).
    let mut signal_ids: Vec<Vec<Uuid>> = vec![Vec::new(); last];
    let mut signal_gate: Vec<Option<Gate>> = vec![None; last];
    if let Some(pending) = &input.signals {
        for g in &mut signal_gate[first_new..last] {
            *g = Some(Gate::NoEntry);
        }
        for s in pending {
            let j = (first_new..last)
                .find(|&j| window.time[j] + tf >= s.received_ms)
                .unwrap_or(last - 1);
            signal_ids[j].push(s.signal_id);
            let g = if s.exit { Gate::Flatten } else { Gate::Open };
            signal_gate[j] = Some(match signal_gate[j] {
                Some(Gate::NoEntry) | None => g,
                Some(x) => x.max(g),
            });
        }
    }
    // Gates: stored ones for processed candles; for new ones the run's gate and the kill switches, made
    // stricter by the risk locks covering them and by the signal gate.
    let mut locks = input.locks.clone();
    let gates_for = |locks: &[Lock], last: usize| -> (Vec<Gate>, Vec<Option<Limit>>, Vec<bool>) {
        let mut by_lock = vec![None; last];
        let mut by_signal = vec![false; last];
        let g = window.time[..last]
            .iter()
            .enumerate()
            .map(|(j, &t)| {
                if t < input.live_from {
                    Gate::Warmup
                } else if j >= first_new {
                    let base = match lock_gate(locks, t) {
                        Some((g, limit)) if g > input.gate_now => {
                            by_lock[j] = Some(limit);
                            g
                        }
                        _ => input.gate_now,
                    };
                    match signal_gate[j] {
                        Some(sg) if sg > base => {
                            by_signal[j] = true;
                            sg
                        }
                        _ => base,
                    }
                } else {
                    input
                        .stored_gates
                        .binary_search_by_key(&t, |&(x, _)| x)
                        .map_or(Gate::Open, |k| input.stored_gates[k].1)
                }
            })
            .collect();
        (g, by_lock, by_signal)
    };
    let live_index = window.time.partition_point(|&x| x < input.live_from);
    let cx = risk::Context {
        limits: &input.risk,
        initial_cash: input.config.initial_cash,
        live_index,
        since: &input.since,
        now_ms: input.now_ms,
        timeframe: candles.timeframe,
    };
    // One replay up to the last new candle: each new candle's effects are read off it (the engine's prefix
    // property: the replay ending at k says the same about bars up to k). A risk limit breached at a close
    // locks the candles after it: replay again with that lock (the candles up to the breach stay the same).
    let mut breaches: Vec<(usize, Vec<Breach>)> = Vec::new();
    let mut replays = 0;
    let (r, gates, by_lock, by_signal) = loop {
        let (gates, by_lock, by_signal) = gates_for(&locks, last);
        let r = match replay(
            &window.slice(0..last),
            &input.strategy,
            &input.config,
            &gates,
            RunLimits::default(),
            first_new,
        ) {
            Ok(r) => r,
            Err(e) => {
                out.error = Some(format!("the engine stopped: {e}"));
                out.more = false;
                return out;
            }
        };
        replays += 1;
        if !input.risk.any() {
            break (r, gates, by_lock, by_signal);
        }
        let from = breaches.last().map_or(first_new, |(k, _)| k + 1);
        let found = (from..last).find_map(|k| {
            let b = risk::breaches_at(&window, &r, &cx, &locks, k);
            (!b.is_empty()).then_some((k, b))
        });
        match found {
            Some((k, b)) => {
                locks.extend(b.iter().map(|x| x.lock));
                breaches.push((k, b));
                if k + 1 == last {
                    break (r, gates, by_lock, by_signal);
                }
                if replays >= MAX_RISK_REPLAYS {
                    // Enough for one step: the rest waits for the next one (with the locks stored).
                    last = k + 1;
                    out.more = true;
                }
            }
            None => break (r, gates, by_lock, by_signal),
        }
    };
    let w = window.slice(0..last);
    if input.cursor.is_some()
        && first_new > 0
        && r.equity[first_new - 1].to_bits() != input.equity.to_bits()
    {
        out.revised = Some(format!(
            "stored candles up to the last processed one changed since they were processed (a revised \
             or late candle): equity there is now {} instead of {}; the run goes on from the stored data",
            r.equity[first_new - 1],
            input.equity
        ));
    }
    let fee = input.config.fee;
    let mut prev_time = input.cursor.unwrap_or(input.live_from - tf);
    let mut seq = input.trade_count;
    let mut end = last;
    #[allow(clippy::needless_range_loop)]
    // k indexes the window, the gates and the replay's columns alike
    for k in first_new..last {
        let time = w.time[k];
        let gap = (time > prev_time + tf).then(|| {
            let from = prev_time + tf;
            (
                from,
                time,
                i32::try_from((time - from) / tf).unwrap_or(i32::MAX),
            )
        });
        let mut fills = Vec::new();
        let mut trades = Vec::new();
        for t in r
            .trades
            .iter()
            .filter(|t| t.entry_index == k || t.exit_index == k)
        {
            if t.entry_index == k {
                fills.push(entry_fill(
                    t.entry_price,
                    t.units,
                    fee,
                    &t.entry_rule,
                    &t.entry_values,
                ));
            }
            if t.exit_index == k {
                fills.push(FillOut {
                    buy: false,
                    price: t.exit_price,
                    units: t.units,
                    fee: t.units * t.exit_price * fee,
                    reason: reason_text(t.exit_reason),
                    rule: t.exit_rule.as_deref().map(str::to_owned),
                    values: t
                        .exit_values
                        .iter()
                        .map(|(l, v)| (l.to_string(), *v))
                        .collect(),
                    pnl: Some(t.pnl),
                });
                seq += 1;
                trades.push((i32::try_from(seq).unwrap_or(i32::MAX), t.clone()));
            }
        }
        if let Some(p) = r.position.as_ref().filter(|p| p.entry_index == k) {
            fills.push(FillOut {
                fee: p.entry_fee,
                ..entry_fill(p.entry_price, p.units, fee, &p.entry_rule, &p.entry_values)
            });
        }
        // Units held at k's close: the open position, or a trade entered by k and closed after it.
        let units = r
            .position
            .as_ref()
            .filter(|p| p.entry_index <= k)
            .map(|p| p.units)
            .or_else(|| {
                r.trades
                    .iter()
                    .find(|t| t.entry_index <= k && k < t.exit_index)
                    .map(|t| t.units)
            })
            .unwrap_or(0.0);
        let signal = r.signals.iter().find(|x| x.decided_index == k).cloned();
        let cancelled = r
            .refused
            .iter()
            .find(|x| x.index == k && x.kind == RefusalKind::PendingEntryCancelled)
            .map(|x| (true, x.gate));
        let cash = if k + 1 == last {
            r.cash
        } else {
            r.equity[k] - units * w.close[k]
        };
        let b = w.bar(k);
        let mut decision = r.decisions.get(k - first_new).cloned();
        if let Some(d) = &mut decision {
            for (text, _) in d.entry_rules.iter_mut().chain(d.exit_rules.iter_mut()) {
                if text.chars().count() > DECISION_RULE_CHARS {
                    *text = text
                        .chars()
                        .take(DECISION_RULE_CHARS - 1)
                        .collect::<String>()
                        + "…";
                }
            }
        }
        let flat = units == 0.0 && signal.is_none();
        out.effects.push(CandleEffect {
            time,
            ohlcv: [b.open, b.high, b.low, b.close, b.volume],
            gate: gates[k],
            equity: r.equity[k],
            cash,
            units,
            decision: with_signals(
                with_risk(
                    serde_json::to_value(&decision).unwrap_or(serde_json::Value::Null),
                    by_lock[k],
                    breaches
                        .iter()
                        .find(|(b, _)| *b == k)
                        .map(|(_, b)| b.as_slice()),
                ),
                signal_gate[k],
                by_signal[k],
                &signal_ids[k],
            ),
            fills,
            trades,
            gap,
            signal,
            cancelled,
            breaches: breaches
                .iter()
                .find(|(b, _)| *b == k)
                .map(|(_, b)| b.clone())
                .unwrap_or_default(),
            risk_lock: by_lock[k],
            signals: signal_ids[k].clone(),
            signal_gated: by_signal[k],
        });
        prev_time = time;
        if input.stopping && flat {
            out.stopped = true;
            out.more = false;
            end = k + 1;
            break;
        }
    }
    // The state after the last processed candle.
    let closed: Vec<&Trade> = r.trades.iter().filter(|t| t.exit_index < end).collect();
    let position = r.position.clone().filter(|_| end == last);
    out.state = Some(FinalState {
        cash: if end == last {
            r.cash
        } else {
            r.equity[end - 1]
        },
        equity: r.equity[end - 1],
        position: position.clone(),
        pending: if end == last { r.pending.clone() } else { None },
        trade_count: seq,
        realised: closed.iter().map(|t| t.pnl).sum(),
        fees: closed.iter().map(|t| t.fees).sum::<f64>() + position.map_or(0.0, |p| p.entry_fee),
    });
    out
}

/// The stale-feed breach of a run that got no new candle: its last candle (or, before its first, the one
/// before its start) closed longer ago than the timeout, and no stale-feed lock covers the next candle.
fn stale_without_candles(input: &RunInput, tf: i64) -> Option<(i64, Breach)> {
    let max = input.risk.stale_feed_secs?;
    let last = input.cursor.unwrap_or(input.live_from - tf);
    let next = last + tf;
    if input
        .locks
        .iter()
        .any(|l| l.limit == Limit::StaleFeed && l.covers(next))
        || input
            .since
            .iter()
            .any(|(l, t)| *l == Limit::StaleFeed && *t >= last)
    {
        return None;
    }
    // The next candle closes at next + tf; it is late once that is more than the timeout ago.
    let late = (input.now_ms - (next + tf)) / 1000;
    (late > max).then(|| {
        (
            last,
            Breach {
                limit: Limit::StaleFeed,
                value: late as f64,
                threshold: max as f64,
                reason: format!(
                    "no candle arrived for {late} s after the next one was due, over the stale-feed timeout of \
                     {max} s"
                ),
                lock: Lock {
                    limit: Limit::StaleFeed,
                    gate: input.risk.mode,
                    from: next,
                    until: None,
                },
            },
        )
    })
}

/// The decision with what risk did at this candle: `risk.lock` (the limit whose lock gated the candle) and
/// `risk.breaches` (limits breached at its close, each locking the candles after it).
fn with_risk(
    mut decision: serde_json::Value,
    lock: Option<Limit>,
    breaches: Option<&[Breach]>,
) -> serde_json::Value {
    if lock.is_none() && breaches.is_none_or(<[Breach]>::is_empty) {
        return decision;
    }
    let risk = serde_json::json!({
        "lock": lock.map(Limit::as_str),
        "breaches": breaches.unwrap_or_default(),
    });
    match &mut decision {
        serde_json::Value::Object(m) => {
            m.insert("risk".into(), risk);
            decision
        }
        _ => serde_json::json!({ "risk": risk }),
    }
}

/// The decision with what inbound signals did at this candle (gate mode): `signal.gate` (the signal gate),
/// `signal.gated` (it made the candle's gate stricter) and `signal.ids` (the signals used here).
fn with_signals(
    mut decision: serde_json::Value,
    gate: Option<Gate>,
    gated: bool,
    ids: &[Uuid],
) -> serde_json::Value {
    let Some(gate) = gate else {
        return decision;
    };
    let signal = serde_json::json!({ "gate": gate.as_str(), "gated": gated, "ids": ids });
    match &mut decision {
        serde_json::Value::Object(m) => {
            m.insert("signal".into(), signal);
            decision
        }
        _ => serde_json::json!({ "signal": signal }),
    }
}

fn reason_text(r: engine::backtest::ExitReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn entry_fill(price: f64, units: f64, fee: f64, rule: &str, values: &[(Arc<str>, f64)]) -> FillOut {
    FillOut {
        buy: true,
        price,
        units,
        fee: units * price * fee,
        reason: "entry".into(),
        rule: Some(rule.to_owned()),
        values: values.iter().map(|(l, v)| (l.to_string(), *v)).collect(),
        pnl: None,
    }
}
