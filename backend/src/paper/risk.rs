//! Risk limits per run: max drawdown, daily loss, consecutive losing trades, max position value, max orders
//! per day and a stale-feed timeout (docs/paper-trading.md, "Risk limits").
//!
//! Limits are evaluated by the step ([`super::step`]) at each processed candle's close, on the replay itself
//! (so a recomputation finds the same breaches). A breach becomes a **risk lock**: the run's configured mode
//! (`reduce_only`, `halt` or `flatten`) as a gate from the next candle on, with the same semantics as a kill
//! switch (the strictest gate that applies wins). Locks on daily limits end at the first candle of the next
//! UTC day; the others hold until the run's owner releases them. After a release, the limit measures from
//! the next candle (a released drawdown lock starts a new peak). Pure computation here; the writes are in
//! [`super::advance`], the owner's changes in [`super::actions`].

use engine::backtest::{Gate, Replay};
use engine::candles::{Candles, Timeframe};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

const DAY_MS: i64 = 86_400_000;

pub use crate::risk_limits::{MAX_AMOUNT, MAX_COUNT, MAX_PCT, MAX_STALE_SECS, RiskLimits};

/// A change to a run's limits (or the limits given at start). Absent = unchanged (at start: the setting's
/// default); `0` = no such limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskInput {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub max_drawdown_pct: Option<f64>,
    #[serde(default)]
    pub daily_loss: Option<f64>,
    #[serde(default)]
    pub daily_loss_pct: Option<f64>,
    #[serde(default)]
    pub max_consecutive_losses: Option<i32>,
    #[serde(default)]
    pub max_position_value: Option<f64>,
    #[serde(default)]
    pub max_orders_per_day: Option<i32>,
    #[serde(default)]
    pub stale_feed_secs: Option<i64>,
}

impl RiskInput {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == RiskInput::default()
    }
}

fn amount(field: &str, v: Option<f64>, max: f64, was: Option<f64>) -> Result<Option<f64>> {
    match v {
        None => Ok(was),
        Some(x) if !x.is_finite() || !(0.0..=max).contains(&x) => Err(Error::invalid(
            field,
            format!("must be a number from 0 (no limit) to {max}"),
        )),
        Some(0.0) => Ok(None),
        Some(x) => Ok(Some(x)),
    }
}

fn count<T: Copy + PartialOrd + Default + std::fmt::Display>(
    field: &str,
    v: Option<T>,
    max: T,
    was: Option<T>,
) -> Result<Option<T>> {
    match v {
        None => Ok(was),
        Some(x) if x < T::default() || x > max => Err(Error::invalid(
            field,
            format!("must be a whole number from 0 (no limit) to {max}"),
        )),
        Some(x) if x == T::default() => Ok(None),
        Some(x) => Ok(Some(x)),
    }
}

/// Parses a mode (`reduce_only`, `halt`, `flatten`).
///
/// # Errors
/// [`Error::Invalid`] on `risk_mode`.
pub fn parse_mode(text: &str) -> Result<Gate> {
    match crate::risk_limits::mode(text) {
        Some(g) => Ok(g),
        None => Err(Error::invalid(
            "risk_mode",
            format!(
                "`{}` is not a mode; use reduce_only, halt or flatten",
                text.trim()
            ),
        )),
    }
}

impl RiskLimits {
    /// `base` changed by `input` (checked; the error names the field).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn apply(base: RiskLimits, input: &RiskInput) -> Result<RiskLimits> {
        Ok(RiskLimits {
            mode: match input.mode.as_deref().map(str::trim) {
                None | Some("") => base.mode,
                Some(m) => parse_mode(m)?,
            },
            max_drawdown_pct: amount(
                "max_drawdown_pct",
                input.max_drawdown_pct,
                MAX_PCT,
                base.max_drawdown_pct,
            )?,
            daily_loss: amount("daily_loss", input.daily_loss, MAX_AMOUNT, base.daily_loss)?,
            daily_loss_pct: amount(
                "daily_loss_pct",
                input.daily_loss_pct,
                MAX_PCT,
                base.daily_loss_pct,
            )?,
            max_consecutive_losses: count(
                "max_consecutive_losses",
                input.max_consecutive_losses,
                MAX_COUNT,
                base.max_consecutive_losses,
            )?,
            max_position_value: amount(
                "max_position_value",
                input.max_position_value,
                MAX_AMOUNT,
                base.max_position_value,
            )?,
            max_orders_per_day: count(
                "max_orders_per_day",
                input.max_orders_per_day,
                MAX_COUNT,
                base.max_orders_per_day,
            )?,
            stale_feed_secs: count(
                "stale_feed_secs",
                input.stale_feed_secs,
                MAX_STALE_SECS,
                base.stale_feed_secs,
            )?,
        })
    }

    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.max_drawdown_pct.is_some()
            || self.daily_loss.is_some()
            || self.daily_loss_pct.is_some()
            || self.max_consecutive_losses.is_some()
            || self.max_position_value.is_some()
            || self.max_orders_per_day.is_some()
            || self.stale_feed_secs.is_some()
    }
}

/// Which limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    MaxDrawdown,
    DailyLoss,
    ConsecutiveLosses,
    MaxPositionValue,
    MaxOrdersPerDay,
    StaleFeed,
}

impl Limit {
    pub const ALL: [Limit; 6] = [
        Limit::MaxDrawdown,
        Limit::DailyLoss,
        Limit::ConsecutiveLosses,
        Limit::MaxPositionValue,
        Limit::MaxOrdersPerDay,
        Limit::StaleFeed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxDrawdown => "max_drawdown",
            Limit::DailyLoss => "daily_loss",
            Limit::ConsecutiveLosses => "consecutive_losses",
            Limit::MaxPositionValue => "max_position_value",
            Limit::MaxOrdersPerDay => "max_orders_per_day",
            Limit::StaleFeed => "stale_feed",
        }
    }

    pub fn parse(s: &str) -> Option<Limit> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Daily limits end with the UTC day; the others hold until released.
    pub fn daily(self) -> bool {
        matches!(self, Limit::DailyLoss | Limit::MaxOrdersPerDay)
    }
}

/// A lock as the step sees it: the gate it puts on candles from `from` (open time, ms) until `until`
/// (exclusive; `None` = until released).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lock {
    pub limit: Limit,
    pub gate: Gate,
    pub from: i64,
    pub until: Option<i64>,
}

impl Lock {
    pub fn covers(&self, t: i64) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

/// The gate the locks put on the candle opening at `t`, and the limit behind it (the first of the strictest).
pub fn lock_gate(locks: &[Lock], t: i64) -> Option<(Gate, Limit)> {
    locks
        .iter()
        .filter(|l| l.covers(t))
        .fold(None, |acc: Option<(Gate, Limit)>, l| match acc {
            Some((g, _)) if g >= l.gate => acc,
            _ => Some((l.gate, l.limit)),
        })
}

/// A breach found at a candle's close.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breach {
    pub limit: Limit,
    pub value: f64,
    pub threshold: f64,
    /// What was measured, in words.
    pub reason: String,
    /// The lock it becomes.
    #[serde(skip)]
    pub lock: Lock,
}

/// What the evaluation needs besides the replay.
pub struct Context<'a> {
    pub limits: &'a RiskLimits,
    pub initial_cash: f64,
    /// Index of the first live candle in the window.
    pub live_index: usize,
    /// Per limit, the last candle (open time) before it measures again (released locks).
    pub since: &'a [(Limit, i64)],
    /// Clock time (ms) of the step.
    pub now_ms: i64,
    pub timeframe: Timeframe,
}

impl Context<'_> {
    fn since(&self, limit: Limit) -> Option<i64> {
        self.since
            .iter()
            .filter(|(l, _)| *l == limit)
            .map(|(_, t)| *t)
            .max()
    }
}

/// The first candle open time at or after `t`.
pub fn round_up(t: i64, tf: Timeframe) -> i64 {
    let f = tf.floor(t);
    if f == t { t } else { f + tf.millis() }
}

/// The breaches at the close of candle `k` (for limits not locked at the next candle).
pub fn breaches_at(
    w: &Candles,
    r: &Replay,
    cx: &Context<'_>,
    locks: &[Lock],
    k: usize,
) -> Vec<Breach> {
    let lim = cx.limits;
    let t = w.time[k];
    let tf = cx.timeframe.millis();
    let next = t + tf;
    let mut out = Vec::new();
    let mode = lim.mode;
    let locked = |l: Limit| locks.iter().any(|x| x.limit == l && x.covers(next));
    let day_start = t.div_euclid(DAY_MS) * DAY_MS;
    let next_day = round_up(day_start + DAY_MS, cx.timeframe);
    let mut push = |limit: Limit, value: f64, threshold: f64, reason: String| {
        out.push(Breach {
            limit,
            value,
            threshold,
            reason,
            lock: Lock {
                limit,
                gate: mode,
                from: next,
                until: limit.daily().then_some(next_day),
            },
        });
    };
    // First index a limit measures from: live, and after its last release.
    let start_for = |limit: Limit| -> usize {
        let mut s = cx.live_index;
        if let Some(since) = cx.since(limit) {
            s = s.max(w.time.partition_point(|&x| x <= since));
        }
        s
    };
    let eq_before = |i: usize| -> f64 {
        if i == 0 {
            cx.initial_cash
        } else {
            r.equity[i - 1]
        }
    };
    if let Some(max) = lim.max_drawdown_pct
        && !locked(Limit::MaxDrawdown)
    {
        let s = start_for(Limit::MaxDrawdown).min(k);
        let peak = r.equity[s..=k].iter().copied().fold(eq_before(s), f64::max);
        if peak > 0.0 {
            let dd = (peak - r.equity[k]) / peak * 100.0;
            if dd >= max {
                push(
                    Limit::MaxDrawdown,
                    dd,
                    max,
                    format!(
                        "drawdown {dd:.2} % from the peak equity {} reached the limit of {max} %",
                        num(peak)
                    ),
                );
            }
        }
    }
    if (lim.daily_loss.is_some() || lim.daily_loss_pct.is_some()) && !locked(Limit::DailyLoss) {
        // The equity at the close of the last candle before the day (or the release), else the start.
        let day_idx = w.time.partition_point(|&x| x < day_start);
        let s = day_idx.max(start_for(Limit::DailyLoss)).min(k);
        let base = eq_before(s);
        let loss = base - r.equity[k];
        if let Some(max) = lim.daily_loss
            && loss >= max
        {
            push(
                Limit::DailyLoss,
                loss,
                max,
                format!(
                    "loss today {} (equity {} at the start of the day) reached the limit of {}",
                    num(loss),
                    num(base),
                    num(max)
                ),
            );
        } else if let Some(max) = lim.daily_loss_pct
            && base > 0.0
            && loss / base * 100.0 >= max
        {
            let pct = loss / base * 100.0;
            push(
                Limit::DailyLoss,
                pct,
                max,
                format!(
                    "loss today {pct:.2} % of the equity {} at the start of the day reached the limit of {max} %",
                    num(base)
                ),
            );
        }
    }
    if let Some(max) = lim.max_consecutive_losses
        && !locked(Limit::ConsecutiveLosses)
        && r.trades.iter().any(|x| x.exit_index == k)
    {
        let s = start_for(Limit::ConsecutiveLosses);
        let mut exits: Vec<&engine::backtest::Trade> = r
            .trades
            .iter()
            .filter(|x| x.exit_index <= k && x.exit_index >= s && x.entry_index >= cx.live_index)
            .collect();
        exits.sort_by_key(|x| x.exit_index);
        let n = exits.iter().rev().take_while(|x| x.pnl < 0.0).count();
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        if n >= max {
            push(
                Limit::ConsecutiveLosses,
                f64::from(n),
                f64::from(max),
                format!("{n} losing trade(s) in a row reached the limit of {max}"),
            );
        }
    }
    if let Some(max) = lim.max_position_value
        && !locked(Limit::MaxPositionValue)
    {
        let units = units_at(r, k);
        let value = units * w.close[k];
        if value > max {
            push(
                Limit::MaxPositionValue,
                value,
                max,
                format!(
                    "the position ({} units) is worth {} at the close, above the limit of {}",
                    num(units),
                    num(value),
                    num(max)
                ),
            );
        }
    }
    if let Some(max) = lim.max_orders_per_day
        && !locked(Limit::MaxOrdersPerDay)
    {
        let s = w
            .time
            .partition_point(|&x| x < day_start)
            .max(start_for(Limit::MaxOrdersPerDay));
        let in_day = |i: usize| i >= s && i <= k;
        let n = r
            .trades
            .iter()
            .map(|x| usize::from(in_day(x.entry_index)) + usize::from(in_day(x.exit_index)))
            .sum::<usize>()
            + r.position
                .as_ref()
                .map_or(0, |p| usize::from(in_day(p.entry_index)));
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        if n >= max {
            push(
                Limit::MaxOrdersPerDay,
                f64::from(n),
                f64::from(max),
                format!("{n} order(s) filled today reached the limit of {max} per day"),
            );
        }
    }
    if let Some(max) = lim.stale_feed_secs
        && !locked(Limit::StaleFeed)
    {
        let lag = (cx.now_ms - (t + tf)) / 1000;
        if lag > max {
            push(
                Limit::StaleFeed,
                lag as f64,
                max as f64,
                format!(
                    "the candle was processed {lag} s after it closed, over the stale-feed timeout of {max} s"
                ),
            );
        }
    }
    out
}

/// Units held at candle `k`'s close in a replay.
pub fn units_at(r: &Replay, k: usize) -> f64 {
    r.position
        .as_ref()
        .filter(|p| p.entry_index <= k)
        .map(|p| p.units)
        .or_else(|| {
            r.trades
                .iter()
                .find(|t| t.entry_index <= k && k < t.exit_index)
                .map(|t| t.units)
        })
        .unwrap_or(0.0)
}

fn num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_up_lands_on_a_candle_open() {
        assert_eq!(round_up(0, Timeframe::M5), 0);
        assert_eq!(round_up(1, Timeframe::M5), 300_000);
        // Weeks open on Mondays (1970-01-05).
        assert_eq!(round_up(DAY_MS, Timeframe::W1), 4 * DAY_MS);
    }

    #[test]
    fn zero_turns_a_limit_off_and_absent_keeps_it() {
        let base = RiskLimits {
            max_drawdown_pct: Some(10.0),
            ..RiskLimits::default()
        };
        let kept = RiskLimits::apply(base, &RiskInput::default()).unwrap();
        assert_eq!(kept.max_drawdown_pct, Some(10.0));
        let off = RiskLimits::apply(
            base,
            &RiskInput {
                max_drawdown_pct: Some(0.0),
                ..RiskInput::default()
            },
        )
        .unwrap();
        assert_eq!(off.max_drawdown_pct, None);
        let bad = RiskLimits::apply(
            base,
            &RiskInput {
                max_drawdown_pct: Some(150.0),
                ..RiskInput::default()
            },
        );
        assert!(matches!(bad, Err(Error::Invalid { .. })), "{bad:?}");
        let bad_mode = RiskLimits::apply(
            base,
            &RiskInput {
                mode: Some("open".into()),
                ..RiskInput::default()
            },
        );
        assert!(bad_mode.is_err());
    }

    #[test]
    fn the_strictest_lock_covering_a_candle_wins() {
        let locks = [
            Lock {
                limit: Limit::DailyLoss,
                gate: Gate::ReduceOnly,
                from: 10,
                until: Some(20),
            },
            Lock {
                limit: Limit::MaxDrawdown,
                gate: Gate::Halt,
                from: 15,
                until: None,
            },
        ];
        assert_eq!(lock_gate(&locks, 5), None);
        assert_eq!(
            lock_gate(&locks, 12),
            Some((Gate::ReduceOnly, Limit::DailyLoss))
        );
        assert_eq!(
            lock_gate(&locks, 16),
            Some((Gate::Halt, Limit::MaxDrawdown))
        );
        assert_eq!(
            lock_gate(&locks, 25),
            Some((Gate::Halt, Limit::MaxDrawdown))
        );
    }
}

// --- Stored limits and locks: what the run page shows and what its owner changes ---------------------------

/// A risk lock as shown on the run (history included).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RiskLock {
    pub lock_id: uuid::Uuid,
    /// The limit (`max_drawdown`, `daily_loss`, …).
    pub limit: String,
    /// The gate it puts on the run: `reduce_only`, `halt` or `flatten`.
    pub mode: String,
    pub reason: String,
    pub value: f64,
    pub threshold: f64,
    /// The candle at whose close it was found.
    pub candle_time: chrono::DateTime<chrono::Utc>,
    /// The first candle it gates, and the first it no longer gates (`None`: until released).
    pub applies_from: chrono::DateTime<chrono::Utc>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub locked_at: chrono::DateTime<chrono::Utc>,
    pub released_at: Option<chrono::DateTime<chrono::Utc>>,
    pub release_reason: Option<String>,
    /// It gates the run's next candle.
    pub active: bool,
}

/// Most locks a run's detail lists (newest first).
pub const MAX_LOCKS_SHOWN: i64 = 100;

/// The run's locks, newest first; `next` is the open time of the run's next candle (what `active` is
/// measured against).
///
/// # Errors
/// Database errors.
pub async fn locks(
    conn: &mut sqlx::PgConnection,
    run: uuid::Uuid,
    next: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<Vec<RiskLock>> {
    sqlx::query_as!(
        RiskLock,
        r#"select lock_id, limit_kind as "limit", mode, reason, value, threshold, candle_time, applies_from, until,
                  locked_at, released_at, release_reason,
                  (released_at is null and (until is null or until > $2)) as "active!"
           from paper_risk_lock where paper_run_id = $1
           order by candle_time desc, limit_kind limit $3"#,
        run,
        next,
        MAX_LOCKS_SHOWN,
    )
    .fetch_all(&mut *conn)
    .await
}

/// Longest release reason.
pub const MAX_REASON: usize = 500;

/// Locks the user's live run for a change (a step in flight holds it; the change applies from the next
/// candle). Its status and the open time of its next candle.
async fn lock_run(
    conn: &mut sqlx::PgConnection,
    user: uuid::Uuid,
    id: uuid::Uuid,
) -> Result<chrono::DateTime<chrono::Utc>> {
    let row = sqlx::query!(
        "select status, timeframe, live_from, last_open_time from paper_run
         where paper_run_id = $1 and user_id = $2 for update",
        id,
        user,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound)?;
    let status = super::Status::parse(&row.status).unwrap_or(super::Status::Failed);
    if !status.is_live() {
        return Err(Error::Conflict(format!(
            "this run is {status}: risk limits apply to live runs only"
        )));
    }
    let tf = engine::candles::Timeframe::parse(&row.timeframe)
        .map_or(0, engine::candles::Timeframe::millis);
    Ok(row
        .last_open_time
        .map_or(row.live_from, |t| t + chrono::Duration::milliseconds(tf)))
}

/// Changes the user's run's limits (absent fields unchanged, 0 = off); audited as
/// `paper_risk_limits_changed`. Applies from the run's next candle.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Conflict`] (not live), [`Error::Invalid`] naming the field, database errors.
pub(crate) async fn set_limits(
    ctx: &crate::Ctx,
    actor: &crate::Actor,
    user: uuid::Uuid,
    id: uuid::Uuid,
    input: &RiskInput,
) -> Result<RiskLimits> {
    let mut tx = ctx.db.begin().await?;
    lock_run(&mut tx, user, id).await?;
    let stored: serde_json::Value = sqlx::query_scalar!(
        "select risk_limits from paper_run where paper_run_id = $1",
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    let before: RiskLimits = serde_json::from_value(stored).unwrap_or(ctx.settings.paper.risk);
    let after = RiskLimits::apply(before, input)?;
    sqlx::query!(
        "update paper_run set risk_limits = $2 where paper_run_id = $1",
        id,
        serde_json::json!(after),
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit(
            &mut tx,
            "paper_risk_limits_changed",
            Some(user),
            serde_json::json!({ "paper_run_id": id, "from": before, "to": after }),
        )
        .await?;
    super::advance::notify_changed(&mut tx, &[id.to_string()]).await?;
    tx.commit().await?;
    Ok(after)
}

/// Releases the user's run's unreleased risk locks (all, or the one named); audited as
/// `paper_risk_lock_released`. The limits measure again from the candle after the last one processed.
///
/// # Errors
/// [`Error::NotFound`] (run, or no such unreleased lock), [`Error::Conflict`] (not live, or nothing to
/// release), [`Error::Invalid`] (`reason`), database errors.
pub(crate) async fn release(
    ctx: &crate::Ctx,
    actor: &crate::Actor,
    user: uuid::Uuid,
    id: uuid::Uuid,
    lock_id: Option<uuid::Uuid>,
    reason: Option<&str>,
) -> Result<Vec<RiskLock>> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if let Some(r) = reason
        && (r.chars().count() > MAX_REASON
            || r.chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')))
    {
        return Err(Error::invalid(
            "reason",
            format!(
                "at most {MAX_REASON} characters, no control characters but tab and line breaks"
            ),
        ));
    }
    let mut tx = ctx.db.begin().await?;
    let next = lock_run(&mut tx, user, id).await?;
    let now = ctx.clock.now();
    let released: Vec<uuid::Uuid> = sqlx::query_scalar!(
        "update paper_risk_lock l set released_at = $3, released_by = $4,
             release_reason = coalesce($5, 'released by the owner'),
             released_after = (select last_open_time from paper_run where paper_run_id = $1)
         where l.paper_run_id = $1 and l.released_at is null and ($2::uuid is null or l.lock_id = $2)
         returning l.lock_id",
        id,
        lock_id,
        now,
        actor.user_id(),
        reason,
    )
    .fetch_all(&mut *tx)
    .await?;
    if released.is_empty() {
        return Err(match lock_id {
            Some(_) => Error::NotFound,
            None => Error::Conflict("this run has no risk lock to release".into()),
        });
    }
    actor
        .audit(
            &mut tx,
            "paper_risk_lock_released",
            Some(user),
            serde_json::json!({ "paper_run_id": id, "locks": released, "reason": reason }),
        )
        .await?;
    super::advance::notify_changed(&mut tx, &[id.to_string()]).await?;
    let all = locks(&mut tx, id, next).await?;
    tx.commit().await?;
    Ok(all)
}
