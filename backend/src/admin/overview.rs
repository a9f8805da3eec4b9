//! The admin overview's figures: users and sign-ups per day, active backtests and paper runs, queue depth and
//! failed jobs, and the kill switches in force. Read-only; admins only.

use chrono::NaiveDate;
use serde::Serialize;

use crate::{Actor, Ctx, error::Result, jobs::store, paper::kill};

/// Days of sign-ups the overview shows (today included).
pub const DAYS: i32 = 14;

/// One day's sign-ups (UTC).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Day {
    pub day: NaiveDate,
    pub signups: i64,
}

/// Everything the overview shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub users: i64,
    pub admins: i64,
    pub suspended: i64,
    /// The last [`DAYS`] days, oldest first, days without sign-ups included.
    pub signups: Vec<Day>,
    pub backtests_queued: i64,
    pub backtests_running: i64,
    pub paper_runs_active: i64,
    pub paper_runs_paused: i64,
    pub jobs: store::Counts,
    /// Active kill switches (platform first).
    pub switches: Vec<kill::KillSwitch>,
}

/// The overview (admins only).
///
/// # Errors
/// [`crate::Error::Unauthenticated`], [`crate::Error::Forbidden`], database.
pub async fn get(actor: &Actor, ctx: &Ctx) -> Result<Overview> {
    actor.admin()?;
    let u = sqlx::query!(
        r#"select count(*) as "users!",
                  count(*) filter (where role = 'admin' and disabled_at is null) as "admins!",
                  count(*) filter (where disabled_at is not null) as "suspended!"
           from app_user"#,
    )
    .fetch_one(&ctx.db)
    .await?;
    let signups = sqlx::query_as!(
        Day,
        r#"select d::date as "day!", count(u.user_id) as "signups!"
           from generate_series((now() at time zone 'utc')::date - ($1::int - 1), (now() at time zone 'utc')::date,
                                interval '1 day') d
           left join app_user u on (u.created_at at time zone 'utc')::date = d::date
           group by d order by d"#,
        DAYS,
    )
    .fetch_all(&ctx.db)
    .await?;
    let r = sqlx::query!(
        r#"select (select count(*) from backtest_run where status = 'queued') as "bq!",
                  (select count(*) from backtest_run where status = 'running') as "br!",
                  (select count(*) from paper_run where status = 'active') as "pa!",
                  (select count(*) from paper_run where status = 'paused') as "pp!""#,
    )
    .fetch_one(&ctx.db)
    .await?;
    let jobs = store::counts(&ctx.db).await?;
    let mut conn = ctx.db.acquire().await?;
    let mut switches = kill::active_all(&mut conn).await?;
    switches.sort_by_key(|s| s.scope != "platform");
    Ok(Overview {
        users: u.users,
        admins: u.admins,
        suspended: u.suspended,
        signups,
        backtests_queued: r.bq,
        backtests_running: r.br,
        paper_runs_active: r.pa,
        paper_runs_paused: r.pp,
        jobs,
        switches,
    })
}
