//! `paper_advance`: every live run on one series processes the candles stored since its last one, in order,
//! each exactly once. The runs are locked (`for update`, in id order) for the job's transaction, their
//! effects are written in batches, and the job's `done` mark commits with them: a worker killed at any
//! point leaves either all of a job's effects or none, and the next delivery finds the cursors where the
//! last commit left them.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use engine::backtest::{BacktestConfig, Gate};
use engine::candles::{Candles, Timeframe};
use engine::strategy::CompiledStrategy;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::risk::{Breach, Limit, Lock, RiskLimits};
use super::step::{RunInput, StepOutput, step};
use crate::Ctx;
use crate::jobs::{JobCtx, JobError, JobKind, JobQueue, NewJob, PAPER_QUEUE};
use crate::market::{store, to_datetime};
use crate::notify::emit::{self, Emitted};
use crate::notify::event::{
    Event, PaperDataGap, PaperFill, PaperOrderCancelled, PaperRunRef, PaperSignal,
    PaperStoppedError, RiskLimitHit,
};

pub const KIND: &str = "paper_advance";

pub const JOB: JobKind = JobKind::new(KIND, PAPER_QUEUE, |job| Box::pin(run(job)));

/// Candle-effects one job writes at most, shared by the series' runs.
pub const JOB_CANDLES: usize = 20_000;

/// The series to advance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    pub instrument_id: i32,
    pub timeframe: Timeframe,
}

/// A `paper_advance` job for a series (at most one unfinished per series).
pub fn new_job(jobs: &JobQueue, instrument_id: i32, timeframe: Timeframe) -> NewJob {
    let mut job = jobs.new_job(
        PAPER_QUEUE,
        KIND,
        serde_json::json!(Payload {
            instrument_id,
            timeframe
        }),
    );
    job.dedupe_key = Some(format!("{KIND}:{instrument_id}:{}", timeframe.as_str()));
    job
}

async fn run(job: &JobCtx) -> Result<(), JobError> {
    let p: Payload = job.payload()?;
    let ctx = &job.ctx;
    let mut tx = ctx.db.begin().await?;
    let out = advance(ctx, &mut tx, p.instrument_id, p.timeframe)
        .await
        .map_err(JobError::Retry)?;
    // More candles than one job processes, or candles stored while this job ran (its dedupe key kept the
    // ETL from enqueueing another): the next job is enqueued in the commit that marks this one done, so a
    // worker killed right after the commit cannot leave the series waiting for the paper tick.
    let next = (out.more || newer_than(ctx, p.instrument_id, p.timeframe, out.newest).await?)
        .then(|| new_job(&ctx.jobs, p.instrument_id, p.timeframe));
    job.complete_with_followup(tx, next.as_ref()).await?;
    emit::push(&ctx.jobs, &out.emitted).await;
    // A run that stopped (after flattening) or failed no longer counts: its owner's plan overage may end.
    for user in &out.finished_users {
        crate::plans::overage::reconcile_after(
            ctx,
            &crate::Actor::system(crate::Surface::Job),
            *user,
        )
        .await;
    }
    // A candle stored between that check and the commit had its own enqueue deduplicated against this job.
    if next.is_none() && newer_than(ctx, p.instrument_id, p.timeframe, out.newest).await? {
        ctx.jobs
            .enqueue(&new_job(&ctx.jobs, p.instrument_id, p.timeframe))
            .await?;
    }
    Ok(())
}

async fn newer_than(
    ctx: &Ctx,
    instrument_id: i32,
    timeframe: Timeframe,
    seen: Option<i64>,
) -> sqlx::Result<bool> {
    let Some(seen) = seen else {
        return Ok(false);
    };
    Ok(store::last_open_time(&ctx.db, instrument_id, timeframe)
        .await?
        .is_some_and(|t| t > seen))
}

/// What one job did.
#[derive(Debug, Default)]
pub struct Advanced {
    pub runs: usize,
    pub candles: usize,
    pub fills: usize,
    pub emitted: Vec<Emitted>,
    /// Some run has more candles to process.
    pub more: bool,
    /// The newest candle of the series when the job read it.
    pub newest: Option<i64>,
    /// Owners of runs this job stopped or failed (a finished run no longer counts against the plan).
    pub finished_users: Vec<Uuid>,
}

/// A run's risk locks (active ones) and, per limit, where it measures again (released ones).
type RunLocks = (Vec<Lock>, Vec<(Limit, i64)>);

struct RunRow {
    id: Uuid,
    user_id: Uuid,
    version_id: Uuid,
    strategy_name: String,
    source: String,
    /// `None` when the stored row no longer decodes (the run fails alone).
    config: Option<BacktestConfig>,
    params: Option<Vec<(String, String)>>,
    status: String,
    run_gate: String,
    warmup_from: i64,
    live_from: i64,
    cursor: Option<i64>,
    equity: f64,
    trade_count: i32,
    /// `None` when the stored limits no longer decode (the run fails alone).
    risk: Option<RiskLimits>,
}

/// Advances every live run on the series inside `conn`'s transaction (see the module docs).
///
/// # Errors
/// Database errors (nothing of the job is committed then).
pub async fn advance(
    ctx: &Ctx,
    conn: &mut PgConnection,
    instrument_id: i32,
    timeframe: Timeframe,
) -> anyhow::Result<Advanced> {
    let rows = sqlx::query!(
        r#"select r.paper_run_id, r.user_id, r.strategy_version_id, s.name as strategy_name, v.source,
                  r.params, r.config,
                  r.status, r.run_gate, r.warmup_from, r.live_from, r.last_open_time, r.equity, r.trade_count,
                  r.risk_limits, u.disabled_at is not null as "owner_suspended!"
           from paper_run r
           join app_user u on u.user_id = r.user_id
           join strategy s on s.strategy_id = r.strategy_id
           join strategy_version v on v.strategy_version_id = r.strategy_version_id
           where r.instrument_id = $1 and r.timeframe = $2 and r.status in ('active', 'paused', 'stopping')
           order by r.paper_run_id
           for update of r"#,
        instrument_id,
        timeframe.as_str(),
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Advanced::default();
    if rows.is_empty() {
        return Ok(out);
    }
    let runs: Vec<RunRow> = rows
        .into_iter()
        .map(|r| RunRow {
            id: r.paper_run_id,
            user_id: r.user_id,
            version_id: r.strategy_version_id,
            strategy_name: r.strategy_name,
            source: r.source,
            params: serde_json::from_value(r.params).ok(),
            config: serde_json::from_value(r.config).ok(),
            status: r.status,
            // A suspended owner's runs take no new orders whatever their state says (suspension pauses
            // them too, but a run started or resumed in the same instant must not slip through).
            run_gate: if r.owner_suspended {
                Gate::Halt.as_str().to_owned()
            } else {
                r.run_gate
            },
            warmup_from: r.warmup_from.timestamp_millis(),
            live_from: r.live_from.timestamp_millis(),
            cursor: r.last_open_time.map(|t| t.timestamp_millis()),
            equity: r.equity,
            trade_count: r.trade_count,
            risk: serde_json::from_value(r.risk_limits).ok(),
        })
        .collect();
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let symbol = store::instrument(&ctx.db, instrument_id)
        .await?
        .map_or_else(|| instrument_id.to_string(), |i| i.symbol);
    let mut gates: HashMap<Uuid, Vec<(i64, Gate)>> = HashMap::new();
    for g in sqlx::query!(
        r#"select paper_run_id, open_time, gate from paper_candle
           where paper_run_id = any($1) and gate <> 'open' order by paper_run_id, open_time"#,
        &ids,
    )
    .fetch_all(&mut *conn)
    .await?
    {
        if let Some(gate) = Gate::parse(&g.gate) {
            gates
                .entry(g.paper_run_id)
                .or_default()
                .push((g.open_time.timestamp_millis(), gate));
        }
    }
    let mut gaps: HashMap<Uuid, Vec<(i64, i64)>> = HashMap::new();
    for g in sqlx::query!(
        "select paper_run_id, gap_from, gap_to from paper_gap where paper_run_id = any($1) order by 1, 2",
        &ids,
    )
    .fetch_all(&mut *conn)
    .await?
    {
        gaps.entry(g.paper_run_id)
            .or_default()
            .push((g.gap_from.timestamp_millis(), g.gap_to.timestamp_millis()));
    }
    // Risk locks: active ones gate candles; released ones say where a limit measures again.
    let mut locks: HashMap<Uuid, RunLocks> = HashMap::new();
    for l in sqlx::query!(
        r#"select paper_run_id, limit_kind, mode, applies_from, until, released_at, released_after
           from paper_risk_lock where paper_run_id = any($1) order by paper_run_id, applies_from"#,
        &ids,
    )
    .fetch_all(&mut *conn)
    .await?
    {
        let (Some(limit), Some(gate)) = (Limit::parse(&l.limit_kind), Gate::parse(&l.mode)) else {
            continue;
        };
        let e = locks.entry(l.paper_run_id).or_default();
        if l.released_at.is_none() {
            e.0.push(Lock {
                limit,
                gate,
                from: l.applies_from.timestamp_millis(),
                until: l.until.map(|u| u.timestamp_millis()),
            });
        } else if let Some(after) = l.released_after {
            e.1.push((limit, after.timestamp_millis()));
        }
    }
    let now_ms = ctx.clock.now().timestamp_millis();
    // Inbound signals of runs in gate mode: the accepted ones no candle used yet (the run rows are locked).
    let mut signals = super::signals::pending(conn, &ids).await?;
    // Kill switches, read under the shared lock a switch change waits for (so it applies from the next candle).
    let users: Vec<Uuid> = runs.iter().map(|r| r.user_id).collect();
    let switches = super::kill::active_gates(conn, &users, &ids).await?;
    let from = runs.iter().map(|r| r.warmup_from).min().unwrap_or(0);
    let candles = store::load_candles(&ctx.db, instrument_id, timeframe, Some(from), None, None)
        .await
        .context("loading candles")?;
    out.newest = candles.time.last().copied();

    // Compile each (version, parameters) once; build the inputs.
    let mut compiled: HashMap<(Uuid, String), Result<Arc<CompiledStrategy>, String>> =
        HashMap::new();
    let mut inputs = Vec::with_capacity(runs.len());
    let mut failed: Vec<(usize, String)> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let (Some(config), Some(params), Some(risk)) = (r.config.clone(), r.params.clone(), r.risk)
        else {
            failed.push((
                i,
                "the run's stored settings can no longer be read".to_owned(),
            ));
            continue;
        };
        let key = (
            r.version_id,
            serde_json::to_string(&params).unwrap_or_default(),
        );
        let strategy = compiled
            .entry(key)
            .or_insert_with(|| {
                engine::strategy::compile(&r.source, &params)
                    .map(Arc::new)
                    .map_err(|d| {
                        format!("the strategy no longer compiles ({} problem(s))", d.len())
                    })
            })
            .clone();
        match strategy {
            Ok(strategy) => inputs.push((
                i,
                RunInput {
                    run_id: r.id,
                    strategy,
                    config,
                    warmup_from: r.warmup_from,
                    live_from: r.live_from,
                    cursor: r.cursor,
                    equity: r.equity,
                    trade_count: usize::try_from(r.trade_count).unwrap_or(0),
                    stored_gates: gates.remove(&r.id).unwrap_or_default(),
                    gaps: gaps.remove(&r.id).unwrap_or_default(),
                    gate_now: switches.effective(
                        Gate::parse(&r.run_gate).unwrap_or(Gate::Halt),
                        r.user_id,
                        r.id,
                    ),
                    stopping: r.status == "stopping",
                    risk,
                    locks: locks.get(&r.id).map(|l| l.0.clone()).unwrap_or_default(),
                    since: locks.get(&r.id).map(|l| l.1.clone()).unwrap_or_default(),
                    now_ms,
                    signals: signals.remove(&r.id),
                },
            )),
            Err(e) => failed.push((i, e)),
        }
    }
    let s = &ctx.settings.paper;
    // Each job handles at most JOB_CANDLES candle-effects in all, shared by the runs (memory and statement
    // size stay bounded however many runs catch up at once); the rest goes to the next job.
    let max_candles = s.catchup_candles.min((JOB_CANDLES / runs.len()).max(1));
    let max_window = s.max_window_bars;
    // While the ETL still has chunks of this series to store, a hole may be candles on their way (chunks commit
    // in any order): hold there instead of recording a gap.
    let hold_at_holes = sqlx::query_scalar!(
        r#"select exists (select 1 from job where kind = 'market_chunk' and status in ('queued', 'running')
                          and (payload->>'instrument_id')::int = $1 and payload->>'timeframe' = $2) as "pending!""#,
        instrument_id,
        timeframe.as_str(),
    )
    .fetch_one(&mut *conn)
    .await?;
    let candles = Arc::new(candles);
    let steps = tokio::task::spawn_blocking(move || {
        compute(&candles, inputs, max_candles, max_window, hold_at_holes)
    })
    .await
    .context("paper step panicked")?;

    let mut w = Writes::default();
    for (i, error) in failed {
        w.fail(&runs[i], &symbol, timeframe, &error);
    }
    for (i, o) in &steps {
        w.add(&runs[*i], &symbol, timeframe, o);
        out.more |= o.more;
    }
    out.runs = runs.len();
    out.candles = w.candle_run.len();
    out.fills = w.fill_run.len();
    w.write(conn).await?;
    let now = ctx.clock.now();
    out.finished_users = runs
        .iter()
        .filter(|r| w.finished.iter().any(|f| f.0 == r.id))
        .map(|r| r.user_id)
        .collect();
    out.finished_users.sort_unstable();
    out.finished_users.dedup();
    for f in &w.finished {
        sqlx::query!(
            "update paper_run set status = $2, error = coalesce($3, error), stopped_at = $4 where paper_run_id = $1",
            f.0,
            f.1,
            f.2.as_deref(),
            now,
        )
        .execute(&mut *conn)
        .await?;
    }
    out.emitted = emit::emit_many(conn, &ctx.jobs, &ctx.clock, &w.events).await?;
    // Live run pages listen (delivered at commit; nothing if the job rolls back).
    let changed: Vec<String> = w
        .state
        .iter()
        .map(|s| s.run)
        .chain(w.finished.iter().map(|f| f.0))
        .chain(w.locks.iter().map(|l| l.0))
        .map(|id| id.to_string())
        .collect();
    notify_changed(conn, &changed).await?;
    metrics::counter!("paper_candles_processed_total").increment(out.candles as u64);
    Ok(out)
}

/// Tells listeners (`LISTEN paper_run`) that these runs changed, when the transaction commits.
///
/// # Errors
/// Database errors.
pub async fn notify_changed(conn: &mut PgConnection, runs: &[String]) -> sqlx::Result<()> {
    crate::gates::runs_changed(conn, runs).await
}

/// Steps every run, computing each distinct input once (runs started together from one strategy share it). A
/// run whose step panics fails alone.
fn compute(
    candles: &Candles,
    inputs: Vec<(usize, RunInput)>,
    max_candles: usize,
    max_window: usize,
    hold_at_holes: bool,
) -> Vec<(usize, Arc<StepOutput>)> {
    let mut memo: HashMap<String, Arc<StepOutput>> = HashMap::new();
    inputs
        .into_iter()
        .map(|(i, input)| {
            let o = memo
                .entry(input_key(&input))
                .or_insert_with(|| {
                    let run = || step(candles, &input, max_candles, max_window, hold_at_holes);
                    Arc::new(
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|_| {
                            tracing::error!(run = %input.run_id, "paper step panicked; the run fails");
                            StepOutput {
                                error: Some("an internal error stopped the run (reported to the operators)".into()),
                                ..StepOutput::default()
                            }
                        }),
                    )
                })
                .clone();
            (i, o)
        })
        .collect()
}

/// Everything a step's output depends on, written out (the run id excluded): equal keys, equal outputs.
fn input_key(i: &RunInput) -> String {
    let params: Vec<(String, String)> = i
        .strategy
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.value.to_string()))
        .collect();
    serde_json::json!([
        i.strategy.source(),
        params,
        i.config,
        [i.warmup_from, i.live_from],
        i.cursor,
        i.equity.to_bits(),
        i.trade_count,
        i.stored_gates
            .iter()
            .map(|(t, g)| (t, g.as_str()))
            .collect::<Vec<_>>(),
        i.gaps,
        i.gate_now.as_str(),
        i.stopping,
        i.risk,
        i.locks
            .iter()
            .map(|l| (l.limit, l.gate.as_str(), l.from, l.until))
            .collect::<Vec<_>>(),
        i.since,
        i.now_ms,
        i.signals,
    ])
    .to_string()
}

fn run_ref(run: &RunRow, symbol: &str, timeframe: Timeframe) -> PaperRunRef {
    PaperRunRef {
        user_id: run.user_id,
        run_id: run.id,
        strategy_name: run.strategy_name.clone(),
        symbol: symbol.to_owned(),
        timeframe: timeframe.as_str().to_owned(),
    }
}

/// A run's cached state after a job.
struct StateUpdate {
    run: Uuid,
    state: super::step::FinalState,
    candles: i32,
    realised: f64,
    fees: f64,
    last: i64,
    notice: Option<String>,
}

/// The batched writes of one job.
#[derive(Default)]
struct Writes {
    candle_run: Vec<Uuid>,
    candle_time: Vec<DateTime<Utc>>,
    candle_ohlcv: [Vec<f64>; 5],
    candle_gate: Vec<String>,
    candle_equity: Vec<f64>,
    candle_cash: Vec<f64>,
    candle_units: Vec<f64>,
    candle_decision: Vec<serde_json::Value>,
    fill_run: Vec<Uuid>,
    fill_time: Vec<DateTime<Utc>>,
    fill_side: Vec<String>,
    fill_price: Vec<f64>,
    fill_units: Vec<f64>,
    fill_fee: Vec<f64>,
    fill_reason: Vec<String>,
    fill_rule: Vec<Option<String>>,
    fill_values: Vec<serde_json::Value>,
    trades: Vec<(Uuid, i32, engine::backtest::Trade)>,
    gaps: Vec<(Uuid, i64, i64, i32)>,
    state: Vec<StateUpdate>,
    /// (run, status, error) for runs that stop now.
    finished: Vec<(Uuid, &'static str, Option<String>)>,
    /// (run, candle whose close breached, the breach).
    locks: Vec<(Uuid, i64, Breach)>,
    /// Inbound signals used, and the candle each gated.
    signal_ids: Vec<Uuid>,
    signal_candles: Vec<DateTime<Utc>>,
    events: Vec<Event>,
}

impl Writes {
    fn fail(&mut self, run: &RunRow, symbol: &str, timeframe: Timeframe, error: &str) {
        self.finished
            .push((run.id, "failed", Some(error.to_owned())));
        self.events
            .push(Event::PaperStoppedError(PaperStoppedError {
                run: run_ref(run, symbol, timeframe),
                error: error.to_owned(),
            }));
    }

    fn lock(&mut self, run: &PaperRunRef, candle: i64, b: &Breach) {
        self.locks.push((run.run_id, candle, b.clone()));
        self.events.push(Event::RiskLimitHit(RiskLimitHit {
            run: run.clone(),
            limit: b.limit.as_str().to_owned(),
            value: b.value,
            threshold: b.threshold,
            mode: b.lock.gate.as_str().to_owned(),
            reason: b.reason.clone(),
            candle_time: to_datetime(candle),
            until: b.lock.until.map(to_datetime),
        }));
    }

    fn add(&mut self, run: &RunRow, symbol: &str, timeframe: Timeframe, o: &StepOutput) {
        let rref = run_ref(run, symbol, timeframe);
        for e in &o.effects {
            let t = to_datetime(e.time);
            self.candle_run.push(run.id);
            self.candle_time.push(t);
            for (col, v) in self.candle_ohlcv.iter_mut().zip(e.ohlcv) {
                col.push(v);
            }
            self.candle_gate.push(e.gate.as_str().to_owned());
            self.candle_equity.push(e.equity);
            self.candle_cash.push(e.cash);
            self.candle_units.push(e.units);
            self.candle_decision.push(e.decision.clone());
            for id in &e.signals {
                self.signal_ids.push(*id);
                self.signal_candles.push(t);
            }
            for f in &e.fills {
                let side = if f.buy { "buy" } else { "sell" };
                self.fill_run.push(run.id);
                self.fill_time.push(t);
                self.fill_side.push(side.to_owned());
                self.fill_price.push(f.price);
                self.fill_units.push(f.units);
                self.fill_fee.push(f.fee);
                self.fill_reason.push(f.reason.clone());
                self.fill_rule.push(f.rule.clone());
                self.fill_values.push(serde_json::json!(f.values));
                self.events.push(Event::PaperFill(PaperFill {
                    run: rref.clone(),
                    side: side.to_owned(),
                    price: f.price,
                    units: f.units,
                    fee: f.fee,
                    reason: f.reason.clone(),
                    pnl: f.pnl,
                    candle_time: t,
                }));
            }
            for (seq, tr) in &e.trades {
                self.trades.push((run.id, *seq, tr.clone()));
            }
            if let Some((from, to, n)) = e.gap {
                self.gaps.push((run.id, from, to, n));
                self.events.push(Event::PaperDataGap(PaperDataGap {
                    run: rref.clone(),
                    gap_from: to_datetime(from),
                    gap_to: to_datetime(to),
                    candles: n,
                }));
            }
            if let Some(p) = &e.signal {
                self.events.push(Event::PaperSignal(PaperSignal {
                    run: rref.clone(),
                    side: if p.entry { "buy" } else { "sell" }.to_owned(),
                    rule: p.rule.as_deref().map_or_else(
                        || p.reason.map(|r| r.label().to_owned()).unwrap_or_default(),
                        str::to_owned,
                    ),
                    candle_time: t,
                    close: e.ohlcv[3],
                }));
            }
            for b in &e.breaches {
                self.lock(&rref, e.time, b);
            }
            if let Some((buy, gate)) = e.cancelled {
                self.events
                    .push(Event::PaperOrderCancelled(PaperOrderCancelled {
                        run: rref.clone(),
                        side: if buy { "buy" } else { "sell" }.to_owned(),
                        gate: gate.as_str().to_owned(),
                        candle_time: t,
                    }));
            }
        }
        if let Some((t, b)) = &o.stale {
            self.lock(&rref, *t, b);
        }
        if let Some(s) = &o.state {
            let last = o.effects.last().map_or(0, |e| e.time);
            self.state.push(StateUpdate {
                run: run.id,
                state: s.clone(),
                candles: i32::try_from(o.effects.len()).unwrap_or(i32::MAX),
                realised: s.realised,
                fees: s.fees,
                last,
                notice: o.revised.clone(),
            });
        }
        if let Some(error) = &o.error {
            self.finished.push((run.id, "failed", Some(error.clone())));
            self.events
                .push(Event::PaperStoppedError(PaperStoppedError {
                    run: rref,
                    error: error.clone(),
                }));
        } else if o.stopped {
            self.finished.push((run.id, "stopped", None));
        }
    }

    async fn write(&self, conn: &mut PgConnection) -> sqlx::Result<()> {
        if !self.candle_run.is_empty() {
            let [o, h, l, c, v] = &self.candle_ohlcv;
            sqlx::query!(
                r#"insert into paper_candle (paper_run_id, open_time, open, high, low, close, volume, gate, equity,
                       cash, units, decision)
                   select * from unnest($1::uuid[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[],
                       $6::float8[], $7::float8[], $8::text[], $9::float8[], $10::float8[], $11::float8[],
                       $12::jsonb[])
                   on conflict do nothing"#,
                &self.candle_run,
                &self.candle_time,
                o,
                h,
                l,
                c,
                v,
                &self.candle_gate,
                &self.candle_equity,
                &self.candle_cash,
                &self.candle_units,
                &self.candle_decision,
            )
            .execute(&mut *conn)
            .await?;
        }
        if !self.fill_run.is_empty() {
            sqlx::query!(
                r#"insert into paper_fill (paper_run_id, open_time, side, price, units, fee, reason, rule, rule_values)
                   select * from unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::float8[], $5::float8[],
                       $6::float8[], $7::text[], $8::text[], $9::jsonb[])
                   on conflict do nothing"#,
                &self.fill_run,
                &self.fill_time,
                &self.fill_side,
                &self.fill_price,
                &self.fill_units,
                &self.fill_fee,
                &self.fill_reason,
                &self.fill_rule as &[Option<String>],
                &self.fill_values,
            )
            .execute(&mut *conn)
            .await?;
        }
        for (run, seq, t) in &self.trades {
            sqlx::query!(
                r#"insert into paper_trade (paper_run_id, seq, entry_time, exit_time, entry_price, exit_price, units,
                       fees, pnl, return_pct, bars_held, exit_reason, entry_rule, exit_rule)
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                   on conflict do nothing"#,
                run,
                seq,
                to_datetime(t.entry_time),
                to_datetime(t.exit_time),
                t.entry_price,
                t.exit_price,
                t.units,
                t.fees,
                t.pnl,
                t.return_pct,
                i32::try_from(t.bars_held).unwrap_or(i32::MAX),
                serde_json::to_value(t.exit_reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                &*t.entry_rule,
                t.exit_rule.as_deref(),
            )
            .execute(&mut *conn)
            .await?;
        }
        for (run, candle, b) in &self.locks {
            sqlx::query!(
                r#"insert into paper_risk_lock (lock_id, paper_run_id, limit_kind, mode, reason, value, threshold,
                       candle_time, applies_from, until, locked_at)
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
                   on conflict do nothing"#,
                Uuid::new_v4(),
                run,
                b.limit.as_str(),
                b.lock.gate.as_str(),
                b.reason,
                b.value,
                b.threshold,
                to_datetime(*candle),
                to_datetime(b.lock.from),
                b.lock.until.map(to_datetime),
            )
            .execute(&mut *conn)
            .await?;
        }
        super::signals::mark_applied(conn, &self.signal_ids, &self.signal_candles).await?;
        for (run, from, to, n) in &self.gaps {
            sqlx::query!(
                "insert into paper_gap (paper_run_id, gap_from, gap_to, candles) values ($1, $2, $3, $4)
                 on conflict do nothing",
                run,
                to_datetime(*from),
                to_datetime(*to),
                n,
            )
            .execute(&mut *conn)
            .await?;
        }
        if !self.state.is_empty() {
            let n = self.state.len();
            let (mut ids, mut last, mut count) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut cash, mut equity, mut trades) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut realised, mut fees) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let (mut position, mut pending, mut notice) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for u in &self.state {
                ids.push(u.run);
                last.push(to_datetime(u.last));
                count.push(u.candles);
                cash.push(u.state.cash);
                equity.push(u.state.equity);
                trades.push(i32::try_from(u.state.trade_count).unwrap_or(i32::MAX));
                realised.push(u.realised);
                fees.push(u.fees);
                position.push(u.state.position.as_ref().map(|p| serde_json::json!(p)));
                pending.push(u.state.pending.as_ref().map(|p| serde_json::json!(p)));
                notice.push(u.notice.clone());
            }
            // One statement for every run (the fan-out's biggest cost when done per run).
            sqlx::query!(
                r#"update paper_run r set last_open_time = u.last, candles_processed = r.candles_processed + u.n,
                       cash = u.cash, equity = u.equity, position = u.position, pending = u.pending,
                       trade_count = u.trades, realised_pnl = u.realised,
                       fees_paid = u.fees, notice = coalesce(u.notice, r.notice)
                   from unnest($1::uuid[], $2::timestamptz[], $3::int4[], $4::float8[], $5::float8[], $6::jsonb[],
                               $7::jsonb[], $8::int4[], $9::float8[], $10::float8[], $11::text[])
                        as u(id, last, n, cash, equity, position, pending, trades, realised, fees, notice)
                   where r.paper_run_id = u.id"#,
                &ids,
                &last,
                &count,
                &cash,
                &equity,
                &position as &[Option<serde_json::Value>],
                &pending as &[Option<serde_json::Value>],
                &trades,
                &realised,
                &fees,
                &notice as &[Option<String>],
            )
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
