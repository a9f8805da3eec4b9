//! Plans and limits (docs/plans.md).
//!
//! A plan is data (the `plan` table): a name, a price, a billing period, trial days and [`Limit`]s. Every user
//! is on the default plan unless an admin assigned another one (`user_plan`), optionally with per-user
//! overrides (a comp) and an end date. A plan's or override's missing value means "no specific value": the
//! instance setting where there is one (`BACKTEST_MAX_CONCURRENT`, `BACKTEST_MAX_BARS`, `STRATEGY_QUOTA`,
//! `API_RATE_LIMIT_PER_MINUTE`), otherwise unlimited. The seeded default plan `free` has no values, so an
//! install behaves as before until an admin changes it.
//!
//! [`limits_for`] is the one function every action asks for a user's effective limits (override ⊕ plan ⊕
//! instance setting); the actions compare them with the usage they count under their own lock and refuse with
//! [`Limits::refuse`] ([`Error::PlanLimit`]: the limit, the usage, the value and how to raise it). The API
//! rate limiter reads [`api_rate_for`], cached in-process for [`CACHE_TTL`].
//!
//! Lowering a plan never deletes anything: work over the new limit stays; new work is refused. A user left
//! over `active_paper_runs` or `strategies` gets a grace period, then the excess is read-only ([`overage`]).
//!
//! * [`actions`]: the plan catalogue, the admin actions (create, edit, archive, assign) and "my plan".
//! * [`overage`]: over quota after a plan change: the grace period, the reduce-only and read-only excess, the
//!   sweep.

pub mod actions;
mod limit;
pub mod overage;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

pub use self::limit::{Limit, LimitValues, apply, parse_values, to_json};
use crate::{
    Ctx,
    error::{Error, PlanRefusal, Result},
    settings::Settings,
};

/// The seeded default plan's id (`free`).
pub const FREE_PLAN_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);

/// How long [`api_rate_for`] keeps a user's value in this process (an assignment made in this process clears
/// it at once; other processes see it within this time).
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// The plan a user is on (no price: see [`actions::Plan`]).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlanRef {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

/// Where an effective limit's value comes from.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The user's override.
    Override,
    /// The plan's value.
    Plan,
    /// The instance setting (the plan has no value).
    Instance,
    /// No value anywhere: unlimited.
    Unlimited,
}

/// A user's effective limits: override ⊕ plan ⊕ instance setting.
#[derive(Debug, Clone)]
pub struct Limits {
    pub plan: PlanRef,
    values: BTreeMap<Limit, (Option<i64>, Source)>,
    /// The assignment's end (the user falls back to the default plan then), if any.
    pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Limits {
    /// The limit's value; `None` = unlimited.
    pub fn get(&self, limit: Limit) -> Option<i64> {
        self.values.get(&limit).and_then(|v| v.0)
    }

    /// Where the limit's value comes from.
    pub fn source(&self, limit: Limit) -> Source {
        self.values.get(&limit).map_or(Source::Unlimited, |v| v.1)
    }

    /// Refuses when `usage + adding` would exceed the limit (a per-run limit: `usage` is the run's size and
    /// `adding` 0).
    ///
    /// # Errors
    /// [`Error::PlanLimit`].
    pub fn check(&self, limit: Limit, usage: i64, adding: i64) -> Result<()> {
        match self.get(limit) {
            Some(value) if usage.saturating_add(adding) > value => {
                Err(self.refuse(limit, usage, adding))
            }
            _ => Ok(()),
        }
    }

    /// The refusal of `limit` at `usage` (plus `adding`), with a sentence that says how to raise it.
    pub fn refuse(&self, limit: Limit, usage: i64, adding: i64) -> Error {
        let value = self.get(limit).unwrap_or(i64::MAX);
        let plan = &self.plan.name;
        let what = match limit {
            Limit::ConcurrentBacktests => format!(
                "you have {usage} backtest(s) queued or running and this would start {adding} more; the limit is {value} \
                 at a time on your plan ({plan}). Wait for one to finish or cancel one"
            ),
            Limit::BacktestsPerDay => format!(
                "you have started {usage} backtest(s) today (UTC) and this would start {adding} more; your plan \
                 ({plan}) allows {value} a day. Wait until 00:00 UTC"
            ),
            Limit::CandlesPerBacktest => format!(
                "this run needs {usage} candles; your plan ({plan}) allows {value} per backtest. Shorten the range or \
                 use a longer timeframe"
            ),
            Limit::HistoryDays => format!(
                "this range starts {usage} days ago; your plan ({plan}) reaches back {value} days. Start the range \
                 later"
            ),
            Limit::Strategies => format!(
                "you have {usage} strategies (archived ones count); your plan ({plan}) allows {value}. Delete one"
            ),
            Limit::ActivePaperRuns => format!(
                "you have {usage} active paper run(s); your plan ({plan}) allows {value}. Stop one"
            ),
            Limit::ExportRows => format!(
                "this export has {usage} rows; your plan ({plan}) allows {value} per export"
            ),
            Limit::ApiRequestsPerMinute | Limit::OptimisationTrials => format!(
                "{usage} {}; your plan ({plan}) allows {value}",
                limit.label()
            ),
        };
        Error::PlanLimit(Box::new(PlanRefusal {
            limit: limit.key().to_owned(),
            usage,
            value,
            message: format!(
                "{}: {what}, or ask an administrator for a larger plan or a higher limit (your plan and usage: \
                 /account/plan).",
                limit.label()
            ),
        }))
    }
}

/// The instance setting a limit falls back to, if there is one.
pub fn instance_default(settings: &Settings, limit: Limit) -> Option<i64> {
    let b = &settings.backtest;
    match limit {
        Limit::ConcurrentBacktests => Some(b.max_concurrent),
        Limit::CandlesPerBacktest => Some(b.max_bars),
        Limit::Strategies => Some(b.strategy_quota),
        Limit::ApiRequestsPerMinute => {
            Some(i64::try_from(b.api_rate_per_minute).unwrap_or(i64::MAX))
        }
        Limit::ActivePaperRuns => Some(settings.paper.max_active_runs),
        Limit::BacktestsPerDay
        | Limit::HistoryDays
        | Limit::ExportRows
        | Limit::OptimisationTrials => None,
    }
}

/// Combines override, plan and instance setting. Candles per backtest never exceed `BACKTEST_MAX_BARS`
/// (the workers' memory bound, checked again when a run loads its candles).
pub(crate) fn combine(
    settings: &Settings,
    plan: PlanRef,
    plan_values: &LimitValues,
    overrides: &LimitValues,
    ends_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Limits {
    let values = Limit::ALL
        .iter()
        .map(|&l| {
            let v = if let Some(&v) = overrides.get(&l) {
                (Some(v), Source::Override)
            } else if let Some(&v) = plan_values.get(&l) {
                (Some(v), Source::Plan)
            } else if let Some(v) = instance_default(settings, l) {
                (Some(v), Source::Instance)
            } else {
                (None, Source::Unlimited)
            };
            let v = if l == Limit::CandlesPerBacktest {
                (v.0.map(|n| n.min(settings.backtest.max_bars)), v.1)
            } else {
                v
            };
            (l, v)
        })
        .collect();
    Limits {
        plan,
        values,
        ends_at,
    }
}

/// A user's effective limits, read on `conn` (inside the caller's transaction when it has one).
///
/// # Errors
/// [`Error::NotFound`] (no such user), database errors.
pub async fn limits_in(conn: &mut PgConnection, settings: &Settings, user: Uuid) -> Result<Limits> {
    let row = sqlx::query!(
        r#"select p.plan_id, p.slug, p.name, p.limits, up.overrides as "overrides?", up.ends_at
           from app_user u
           left join user_plan up on up.user_id = u.user_id and (up.ends_at is null or up.ends_at > now())
           join plan p on p.plan_id = coalesce(up.plan_id, (select plan_id from plan where is_default))
           where u.user_id = $1"#,
        user,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(combine(
        settings,
        PlanRef {
            id: row.plan_id,
            slug: row.slug,
            name: row.name,
        },
        &parse_values(&row.limits),
        &row.overrides.as_ref().map(parse_values).unwrap_or_default(),
        row.ends_at,
    ))
}

/// A user's effective limits: the one function every limit check reads.
///
/// # Errors
/// As [`limits_in`].
pub async fn limits_for(ctx: &Ctx, user: Uuid) -> Result<Limits> {
    let mut conn = ctx.db.acquire().await?;
    limits_in(&mut conn, &ctx.settings, user).await
}

fn rate_cache() -> &'static Mutex<HashMap<Uuid, (Instant, u64)>> {
    static CACHE: OnceLock<Mutex<HashMap<Uuid, (Instant, u64)>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// A user's API requests per minute, cached in this process for [`CACHE_TTL`] (the rate limiter asks on every
/// request). When the database cannot answer, the instance setting applies.
pub async fn api_rate_for(ctx: &Ctx, user: Uuid) -> u64 {
    let now = Instant::now();
    if let Some(&(at, v)) = rate_cache()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&user)
        && now.duration_since(at) < CACHE_TTL
    {
        return v;
    }
    let v = match limits_for(ctx, user).await {
        Ok(l) => l
            .get(Limit::ApiRequestsPerMinute)
            .map_or(u64::MAX, |v| u64::try_from(v).unwrap_or(0)),
        Err(e) => {
            tracing::warn!(error = %e, "plan limits unavailable; using API_RATE_LIMIT_PER_MINUTE");
            return ctx.settings.backtest.api_rate_per_minute;
        }
    };
    let mut cache = rate_cache()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if cache.len() >= 100_000 {
        cache.retain(|_, (at, _)| now.duration_since(*at) < CACHE_TTL);
        if cache.len() >= 100_000 {
            cache.clear();
        }
    }
    cache.insert(user, (now, v));
    v
}

/// Forgets cached values (after an assignment or a plan edit in this process).
pub(crate) fn forget(user: Option<Uuid>) {
    let mut cache = rate_cache()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match user {
        Some(u) => {
            cache.remove(&u);
        }
        None => cache.clear(),
    }
}

/// Backtests of the user queued or running (the usage of [`Limit::ConcurrentBacktests`]).
///
/// # Errors
/// Database errors.
/// Paper runs that count against [`Limit::ActivePaperRuns`]: active, paused or stopping.
///
/// # Errors
/// Database errors.
pub async fn active_paper_runs(conn: &mut PgConnection, user: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "n!" from paper_run
           where user_id = $1 and status in ('active', 'paused', 'stopping')"#,
        user,
    )
    .fetch_one(conn)
    .await?)
}

pub async fn active_backtests(conn: &mut PgConnection, user: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "n!" from backtest_run r left join job j on j.job_id = r.job_id
           where r.user_id = $1 and r.status in ('queued', 'running') and j.status in ('queued', 'running')"#,
        user,
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Backtests the user started since 00:00 UTC (the usage of [`Limit::BacktestsPerDay`]).
///
/// # Errors
/// Database errors.
pub async fn backtests_today(conn: &mut PgConnection, user: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "n!" from backtest_run
           where user_id = $1 and created_at >= date_trunc('day', now() at time zone 'UTC') at time zone 'UTC'"#,
        user,
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// The user's strategies, archived ones included (the usage of [`Limit::Strategies`]).
///
/// # Errors
/// Database errors.
pub async fn strategies(conn: &mut PgConnection, user: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "n!" from strategy where user_id = $1"#,
        user
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// The limits that warn their user at 80 % and 100 % of the value: the counted ones that grow with the user's
/// own actions (a concurrent-backtest count comes and goes within minutes and would only be noise).
pub const WARNED: [Limit; 3] = [
    Limit::BacktestsPerDay,
    Limit::Strategies,
    Limit::ActivePaperRuns,
];

/// The warning threshold `usage` reached of `value`: 100, 80, or none (also for a value of 0, which refuses
/// everything: the refusal itself says so).
pub fn threshold(usage: i64, value: i64) -> Option<u8> {
    if value <= 0 {
        None
    } else if usage >= value {
        Some(100)
    } else if usage.saturating_mul(5) >= value.saturating_mul(4) {
        Some(80)
    } else {
        None
    }
}

/// After an action that used `limit` committed: when the user's usage reached 80 % or 100 % of its value,
/// emits `billing.usage_warning` (in-app and email by default; once per limit, threshold and UTC day by the
/// event's dedupe key). Best effort: the action is done, so a failure here is logged, not returned.
pub async fn warn_usage(ctx: &Ctx, user: Uuid, limit: Limit) {
    if !WARNED.contains(&limit) {
        return;
    }
    if let Err(e) = try_warn_usage(ctx, user, limit).await {
        tracing::warn!(%user, limit = limit.key(), error = %e, "the usage warning could not be emitted");
    }
}

async fn try_warn_usage(ctx: &Ctx, user: Uuid, limit: Limit) -> Result<()> {
    let mut tx = ctx.db.begin().await?;
    let limits = limits_in(&mut tx, &ctx.settings, user).await?;
    let Some(value) = limits.get(limit) else {
        return Ok(());
    };
    let usage = match limit {
        Limit::BacktestsPerDay => backtests_today(&mut tx, user).await?,
        Limit::Strategies => strategies(&mut tx, user).await?,
        Limit::ActivePaperRuns => active_paper_runs(&mut tx, user).await?,
        _ => return Ok(()),
    };
    let Some(percent) = threshold(usage, value) else {
        return Ok(());
    };
    let event =
        crate::notify::Event::BillingUsageWarning(crate::notify::event::BillingUsageWarning {
            user_id: user,
            limit: limit.key().to_owned(),
            label: limit.label().to_owned(),
            usage,
            value,
            percent,
            plan: limits.plan.name.clone(),
            day: ctx.clock.now().format("%Y-%m-%d").to_string(),
        });
    let emitted = crate::notify::emit(&mut tx, &ctx.jobs, &ctx.clock, &event).await?;
    tx.commit().await?;
    crate::notify::push(&ctx.jobs, &[emitted]).await;
    Ok(())
}

/// The current usage of each counted limit (per-run limits have none). Active paper runs are counted by
/// the paper-trading module when it exists; until then they are not listed.
///
/// # Errors
/// Database errors.
pub async fn usage(conn: &mut PgConnection, user: Uuid) -> Result<BTreeMap<Limit, i64>> {
    let mut u = BTreeMap::new();
    u.insert(
        Limit::ConcurrentBacktests,
        active_backtests(conn, user).await?,
    );
    u.insert(Limit::BacktestsPerDay, backtests_today(conn, user).await?);
    u.insert(Limit::Strategies, strategies(conn, user).await?);
    u.insert(Limit::ActivePaperRuns, active_paper_runs(conn, user).await?);
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::threshold;

    #[test]
    fn usage_warns_at_80_and_100_percent() {
        assert_eq!(threshold(0, 10), None);
        assert_eq!(threshold(7, 10), None);
        assert_eq!(threshold(8, 10), Some(80));
        assert_eq!(threshold(9, 10), Some(80));
        assert_eq!(threshold(10, 10), Some(100));
        assert_eq!(threshold(12, 10), Some(100));
        assert_eq!(threshold(3, 5), None);
        assert_eq!(threshold(4, 5), Some(80));
        assert_eq!(threshold(1, 1), Some(100));
        assert_eq!(threshold(5, 0), None);
        assert_eq!(threshold(i64::MAX, i64::MAX), Some(100));
        assert_eq!(threshold(i64::MAX - 1, i64::MAX), Some(80));
    }
}
