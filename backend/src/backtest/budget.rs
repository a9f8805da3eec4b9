//! The memory budget of backtests and traces (`BACKTEST_MEMORY_BUDGET_MB`).
//!
//! Before a run is queued (at submission), again in the worker before it loads the candles, and before a
//! "why here?" trace, the run's memory is estimated from the compiled strategy and the bar count
//! ([`engine::backtest::estimate_memory`]: candles, the columns the evaluation keeps, the equity curve) plus
//! what the worker adds around the engine (the candle columns' growth while loading). A run over the budget is
//! refused with a message that says what to shorten. Trades cannot be known in advance: the budget left after
//! the estimate bounds how many the run may record ([`engine::backtest::RunLimits`]), each with what storing it
//! costs here.
//!
//! A worker process also admits backtests by their estimate: the runs it executes at once need at most the
//! budget together ([`admit`]), so `WORKER_CONCURRENCY` no longer multiplies the worst case.

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

use engine::backtest::{MemoryEstimate, RunLimits, estimate_memory};
use engine::strategy::CompiledStrategy;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::settings::BacktestSettings;

/// Bytes per bar the worker adds to the engine's estimate: the candle columns grow by doubling while they
/// load, so at worst they hold twice their length for a moment.
const LOAD_BYTES_PER_BAR: u64 = engine::backtest::CANDLE_BYTES;
/// Bytes one trade costs while its row is written (the insert's column arrays and its values as JSON), on top
/// of the engine's own.
const STORE_BYTES_PER_TRADE: u64 = 400;
const STORE_BYTES_PER_VALUE: u64 = 96;

const MB: u64 = 1024 * 1024;

/// A run's estimate, with the worker's additions.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    pub engine: MemoryEstimate,
    /// Everything but the trades, in bytes.
    pub bytes: u64,
    /// One trade, engine and storage.
    pub per_trade: u64,
}

impl Estimate {
    /// Megabytes, rounded up.
    pub fn mb(&self) -> u64 {
        self.bytes.div_ceil(MB)
    }
}

/// Estimates a run (or, with `trace`, a trace) of `compiled` over `bars` candles.
pub fn estimate(compiled: &CompiledStrategy, bars: usize, trace: bool) -> Estimate {
    let engine = estimate_memory(compiled, bars, trace);
    let bytes = engine
        .total()
        .saturating_add((bars as u64).saturating_mul(LOAD_BYTES_PER_BAR));
    let per_trade = engine.per_trade
        + STORE_BYTES_PER_TRADE
        + engine.plan.values_per_trade as u64 * STORE_BYTES_PER_VALUE;
    Estimate {
        engine,
        bytes,
        per_trade,
    }
}

/// Refuses a run (or trace) whose estimate exceeds the budget, with a message that says what to shorten;
/// otherwise the limits that keep its trades within the budget.
///
/// # Errors
/// The message for the trader.
pub fn check(
    settings: &BacktestSettings,
    compiled: &CompiledStrategy,
    bars: usize,
    trace: bool,
) -> Result<(Estimate, RunLimits), String> {
    let est = estimate(compiled, bars, trace);
    let budget = settings.memory_budget_bytes;
    if est.bytes > budget {
        let per_bar = est.bytes / (bars.max(1) as u64);
        let fits = budget / per_bar.max(1);
        let what = if trace {
            "tracing this run"
        } else {
            "this run"
        };
        return Err(format!(
            "{what} needs about {} MB ({bars} candles, keeping {} series and {} rule columns per candle), more than the \
             {} MB a run may use: use fewer candles (about {fits} fit: a shorter range or a larger timeframe) or fewer \
             clauses (fewer named series and indicators in the rules)",
            est.mb(),
            est.engine.plan.kept_numeric,
            est.engine.plan.rule_columns,
            budget / MB,
        ));
    }
    let room = budget - est.bytes;
    let max_trades = usize::try_from(room / est.per_trade.saturating_mul(2).max(1))
        .unwrap_or(usize::MAX)
        .max(1);
    Ok((est, RunLimits { max_trades }))
}

/// This process's budget as megabyte permits (one per configured budget: a test process may run several
/// configurations side by side).
fn admission(settings: &BacktestSettings) -> &'static Semaphore {
    static SEMS: OnceLock<Mutex<HashMap<u64, &'static Semaphore>>> = OnceLock::new();
    let mb = (settings.memory_budget_bytes / MB).max(1);
    let mut map = SEMS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(mb).or_insert_with(|| {
        Box::leak(Box::new(Semaphore::new(
            usize::try_from(mb).unwrap_or(usize::MAX >> 4),
        )))
    })
}

/// Memory reserved for one run in this process (released on drop).
pub struct Admission {
    _permit: Option<SemaphorePermit<'static>>,
}

/// Reserves the estimate's megabytes of this process's budget, without waiting. `None` when the runs already
/// admitted leave too little: the caller waits with [`admit`].
pub fn try_admit(settings: &BacktestSettings, est: &Estimate) -> Option<Admission> {
    let sem = admission(settings);
    let want = permits(settings, est);
    sem.try_acquire_many(want)
        .ok()
        .map(|p| Admission { _permit: Some(p) })
}

/// Reserves the estimate's megabytes of this process's budget, waiting until the runs admitted before have
/// released enough.
pub async fn admit(settings: &BacktestSettings, est: &Estimate) -> Admission {
    let sem = admission(settings);
    let want = permits(settings, est);
    // The semaphore is static and never closed, so this is always a permit.
    Admission {
        _permit: sem.acquire_many(want).await.ok(),
    }
}

fn permits(settings: &BacktestSettings, est: &Estimate) -> u32 {
    let cap = (settings.memory_budget_bytes / MB).max(1);
    u32::try_from(est.mb().clamp(1, cap)).unwrap_or(u32::MAX)
}
