//! The parity report: a backtest of a paper run's window (same strategy version, parameters and settings,
//! the same warm-up, the candles stored now) diffed trade by trade against what the run did. The engine is
//! the same code, so the expected difference is none; each difference found is attributed to a cause.

use std::collections::BTreeMap;

use engine::backtest::{ExitReason, Gate, RunLimits, Trade, run_gated};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::query::{self, PaperTrade};
use super::{Error, Result};
use crate::market::{store, to_datetime};
use chrono::{DateTime, Utc};

/// Prices and fees equal within this relative tolerance are the same (they are computed by the same code;
/// the tolerance only absorbs printing).
const TOLERANCE: f64 = 1e-9;

/// One difference between the run and the backtest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Difference {
    /// `missing_in_paper`, `missing_in_backtest` or `different`.
    pub kind: String,
    pub entry_time: DateTime<Utc>,
    /// The fields that differ (`exit_time`, `entry_price`, `exit_price`, `fees`, `units`).
    pub fields: Vec<String>,
    pub paper: Option<TradeView>,
    pub backtest: Option<TradeView>,
    /// Why: `risk action` (a risk lock gated the run), `inbound signal` (the signal gate), `kill switch or pause`, `revised candle`, `missed candle`, `settings changed`, or
    /// `unexplained`.
    pub cause: String,
    pub detail: String,
}

/// A trade as the report shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TradeView {
    pub entry_time: DateTime<Utc>,
    pub exit_time: Option<DateTime<Utc>>,
    pub entry_price: f64,
    pub exit_price: Option<f64>,
    pub units: f64,
    pub fees: f64,
    pub exit_reason: Option<String>,
}

/// The report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ParityReport {
    pub paper_run_id: Uuid,
    pub window_from: DateTime<Utc>,
    pub live_from: DateTime<Utc>,
    pub window_to: Option<DateTime<Utc>>,
    pub candles: usize,
    pub paper_trades: usize,
    pub backtest_trades: usize,
    pub matched: usize,
    pub differences: Vec<Difference>,
    /// The run's open position, matched with the backtest's end-of-window trade when they entered together.
    pub open_position_matches: Option<bool>,
    /// One line: "no differences" or how many and why.
    pub summary: String,
}

/// Builds the report for the user's run.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Invalid`] (nothing processed yet), database errors.
pub async fn report(db: &PgPool, user: Uuid, id: Uuid, max_window: usize) -> Result<ParityReport> {
    let run = query::get(db, user, id).await?;
    let Some(last) = run.summary.last_candle else {
        return Err(Error::Conflict(
            "this run has processed no candle yet: the report compares what it did".into(),
        ));
    };
    let timeframe = engine::candles::Timeframe::parse(&run.summary.timeframe)
        .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
    let version = sqlx::query!(
        "select source from strategy_version where strategy_version_id = $1",
        run.strategy_version_id
    )
    .fetch_one(db)
    .await?;
    let strategy = crate::backtest::compile(&version.source, &run.params)?;
    let candles = store::load_candles(
        db,
        run.summary.instrument_id,
        timeframe,
        Some(run.warmup_from.timestamp_millis()),
        Some(last.timestamp_millis() + 1),
        None,
    )
    .await?;
    if candles.len() > max_window {
        return Err(Error::Limit(format!(
            "the run's window has {} candles; the report handles at most {max_window}",
            candles.len()
        )));
    }
    let live_from = run.summary.live_from.timestamp_millis();
    let gates: Vec<Gate> = candles
        .time
        .iter()
        .map(|&t| {
            if t < live_from {
                Gate::Warmup
            } else {
                Gate::Open
            }
        })
        .collect();
    let config = run.config.clone();
    let (bt, candles) = tokio::task::spawn_blocking(move || {
        let r = run_gated(&candles, &strategy, &config, &gates, RunLimits::default());
        (r, candles)
    })
    .await
    .map_err(|e| Error::Internal(anyhow::anyhow!("parity backtest panicked: {e}")))?;
    let bt = bt.map_err(|e| Error::Conflict(format!("the backtest of this window failed: {e}")))?;

    let paper = query::trades(db, user, id, i64::MAX).await?;
    // What the run saw, to attribute differences.
    let seen = sqlx::query!(
        r#"select open_time, open, high, low, close, gate, decision->'risk'->>'lock' as risk_lock,
                coalesce((decision->'signal'->>'gated')::boolean, false) as "by_signal!"
         from paper_candle where paper_run_id = $1 order by open_time"#,
        id
    )
    .fetch_all(db)
    .await?;
    let stored: BTreeMap<i64, (f64, f64, f64, f64)> = (0..candles.len())
        .map(|i| {
            (
                candles.time[i],
                (
                    candles.open[i],
                    candles.high[i],
                    candles.low[i],
                    candles.close[i],
                ),
            )
        })
        .collect();
    let mut causes = Causes::default();
    for c in &seen {
        let t = c.open_time.timestamp_millis();
        if c.gate != "open" {
            causes.gated.push((t, c.risk_lock.clone(), c.by_signal));
            causes.gates.push((t, c.gate.clone()));
        }
        match stored.get(&t) {
            Some(&(o, h, l, cl)) if (o, h, l, cl) != (c.open, c.high, c.low, c.close) => {
                causes.revised.push(t);
            }
            None => causes.revised.push(t),
            _ => {}
        }
    }
    for g in &run.gaps {
        causes
            .missed
            .push((g.from.timestamp_millis(), g.to.timestamp_millis()));
    }

    let holding = run.position.is_some();
    let mut bt_trades: Vec<&Trade> = bt.trades.iter().collect();
    // The backtest closes an open position at the window's end; the run still holds it.
    let mut open_position_matches = None;
    if let Some(last_bt) = bt_trades.last()
        && last_bt.exit_reason == ExitReason::EndOfData
    {
        let entry = run
            .position
            .as_ref()
            .and_then(|p| p.get("entry_time"))
            .and_then(serde_json::Value::as_i64);
        if holding {
            open_position_matches = Some(entry == Some(last_bt.entry_time));
        }
        bt_trades.pop();
    }
    let by_entry: BTreeMap<i64, &Trade> = bt_trades.iter().map(|t| (t.entry_time, *t)).collect();
    let paper_by_entry: BTreeMap<i64, &PaperTrade> = paper
        .iter()
        .map(|t| (t.entry_time.timestamp_millis(), t))
        .collect();
    let mut differences = Vec::new();
    let mut matched = 0;
    let keys: std::collections::BTreeSet<i64> = by_entry
        .keys()
        .chain(paper_by_entry.keys())
        .copied()
        .collect();
    for k in keys {
        match (paper_by_entry.get(&k), by_entry.get(&k)) {
            (Some(p), Some(b)) => {
                let fields = differing(p, b);
                if fields.is_empty() {
                    matched += 1;
                } else {
                    let (cause, detail) =
                        causes.explain(k, p.exit_time.timestamp_millis().max(b.exit_time));
                    differences.push(Difference {
                        kind: "different".into(),
                        entry_time: to_datetime(k),
                        fields,
                        paper: Some(view_paper(p)),
                        backtest: Some(view_bt(b)),
                        cause,
                        detail,
                    });
                }
            }
            (Some(p), None) => {
                let (cause, detail) = causes.explain(k, p.exit_time.timestamp_millis());
                differences.push(Difference {
                    kind: "missing_in_backtest".into(),
                    entry_time: to_datetime(k),
                    fields: Vec::new(),
                    paper: Some(view_paper(p)),
                    backtest: None,
                    cause,
                    detail,
                });
            }
            (None, Some(b)) => {
                let (cause, detail) = causes.explain(k, b.exit_time);
                differences.push(Difference {
                    kind: "missing_in_paper".into(),
                    entry_time: to_datetime(k),
                    fields: Vec::new(),
                    paper: None,
                    backtest: Some(view_bt(b)),
                    cause,
                    detail,
                });
            }
            (None, None) => {}
        }
    }
    let summary = if differences.is_empty() && open_position_matches != Some(false) {
        format!("No differences: all {matched} closed trade(s) match the backtest exactly.")
    } else {
        let mut by_cause: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &differences {
            *by_cause.entry(d.cause.as_str()).or_default() += 1;
        }
        let parts: Vec<String> = by_cause.iter().map(|(c, n)| format!("{n} {c}")).collect();
        format!(
            "{} difference(s) ({}); {matched} trade(s) match.",
            differences.len(),
            if parts.is_empty() {
                "open position differs".to_owned()
            } else {
                parts.join(", ")
            }
        )
    };
    Ok(ParityReport {
        paper_run_id: id,
        window_from: run.warmup_from,
        live_from: run.summary.live_from,
        window_to: Some(last),
        candles: candles.len(),
        paper_trades: paper.len(),
        backtest_trades: bt_trades.len(),
        matched,
        differences,
        open_position_matches,
        summary,
    })
}

#[derive(Default)]
struct Causes {
    /// Candles processed under a gate other than `open`, with the risk limit whose lock set it (if one did).
    /// And whether an inbound signal's gate set it (`no_entry` without a buy signal, `flatten` on an exit).
    gated: Vec<(i64, Option<String>, bool)>,
    gates: Vec<(i64, String)>,
    revised: Vec<i64>,
    missed: Vec<(i64, i64)>,
}

impl Causes {
    fn gate_at(&self, t: i64) -> String {
        self.gates
            .iter()
            .find(|(x, _)| *x == t)
            .map_or_else(|| "gated".to_owned(), |(_, g)| g.replace('_', "-"))
    }

    /// The first cause found between `from` and `to` (or before: a change earlier moves later trades).
    fn explain(&self, from: i64, to: i64) -> (String, String) {
        let upto = |t: i64| t <= to.max(from);
        if let Some((t, lock, by_signal)) = self.gated.iter().find(|(t, _, _)| upto(*t)) {
            return match lock {
                _ if *by_signal => (
                    "inbound signal".into(),
                    format!(
                        "the run's signal gate ({}) applied at {}: entries wait for a buy signal, an exit signal \
                         closes the position",
                        self.gate_at(*t),
                        to_datetime(*t)
                    ),
                ),
                Some(limit) => (
                    "risk action".into(),
                    format!(
                        "the run's {} risk lock gated it ({}) from {}",
                        limit.replace('_', " "),
                        self.gate_at(*t),
                        to_datetime(*t)
                    ),
                ),
                None => (
                    "kill switch or pause".into(),
                    format!(
                        "the run was gated ({}: a pause, a stop or a kill switch) at {}",
                        self.gate_at(*t),
                        to_datetime(*t)
                    ),
                ),
            };
        }
        if let Some(t) = self.revised.iter().find(|&&t| upto(t)) {
            return (
                "revised candle".into(),
                format!(
                    "the candle at {} is stored differently now than the run saw it",
                    to_datetime(*t)
                ),
            );
        }
        if let Some((a, b)) = self.missed.iter().find(|(a, _)| upto(*a)) {
            return (
                "missed candle".into(),
                format!(
                    "candles from {} to {} were missing when the run went past them",
                    to_datetime(*a),
                    to_datetime(*b)
                ),
            );
        }
        (
            "unexplained".into(),
            "no gate, revision or gap explains it; please report it".into(),
        )
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE * a.abs().max(b.abs()).max(1.0)
}

fn differing(p: &PaperTrade, b: &Trade) -> Vec<String> {
    let mut f = Vec::new();
    if p.exit_time.timestamp_millis() != b.exit_time {
        f.push("exit_time".into());
    }
    if !close(p.entry_price, b.entry_price) {
        f.push("entry_price".into());
    }
    if !close(p.exit_price, b.exit_price) {
        f.push("exit_price".into());
    }
    if !close(p.units, b.units) {
        f.push("units".into());
    }
    if !close(p.fees, b.fees) {
        f.push("fees".into());
    }
    f
}

fn view_paper(p: &PaperTrade) -> TradeView {
    TradeView {
        entry_time: p.entry_time,
        exit_time: Some(p.exit_time),
        entry_price: p.entry_price,
        exit_price: Some(p.exit_price),
        units: p.units,
        fees: p.fees,
        exit_reason: Some(p.exit_reason.clone()),
    }
}

fn view_bt(b: &Trade) -> TradeView {
    TradeView {
        entry_time: to_datetime(b.entry_time),
        exit_time: Some(to_datetime(b.exit_time)),
        entry_price: b.entry_price,
        exit_price: Some(b.exit_price),
        units: b.units,
        fees: b.fees,
        exit_reason: serde_json::to_value(b.exit_reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned)),
    }
}
