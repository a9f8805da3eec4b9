//! The admin overview's figures: users (accounts waiting for sign-up approval hold no seat and are counted
//! apart) and sign-ups per day, active backtests and paper runs, queue depth and
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
    /// Accounts holding a seat: every account but those waiting for sign-up approval.
    pub users: i64,
    /// Sign-ups waiting for approval (`/admin/signups`).
    pub pending_signups: i64,
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
        r#"select count(*) filter (where r.user_id is null) as "users!",
                  count(*) filter (where r.user_id is not null) as "pending!",
                  count(*) filter (where role = 'admin' and disabled_at is null) as "admins!",
                  count(*) filter (where disabled_at is not null) as "suspended!"
           from app_user u left join signup_request r on r.user_id = u.user_id"#,
    )
    .fetch_one(&ctx.db)
    .await?;
    let signups = sqlx::query_as!(
        Day,
        r#"select d::date as "day!", count(u.user_id) as "signups!"
           from generate_series((now() at time zone 'utc')::date - ($1::int - 1), (now() at time zone 'utc')::date,
                                interval '1 day') d
           left join app_user u on (u.created_at at time zone 'utc')::date = d::date
             and not exists (select 1 from signup_request r where r.user_id = u.user_id)
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
        pending_signups: u.pending,
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
