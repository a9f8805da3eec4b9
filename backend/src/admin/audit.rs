//! The audit log as admins read it (docs/admin.md#audit-log): filtered by the user an event is about, the
//! admin who acted, the event name and a time range; newest first in keyset pages (stable while new events
//! arrive); and a CSV download of everything a filter matches, up to [`EXPORT_MAX`] events, streamed page by
//! page. Admins only; every download is itself audited (`audit_exported`, with the filter and the row count).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures::stream::BoxStream;
use serde::Serialize;
use serde_json::json;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::{
    Actor, Ctx,
    error::{Error, Result},
};

/// Most events on one page.
pub const PAGE_MAX: i64 = 1000;
/// Most events in one CSV download (a filter that matches more is refused, saying so).
pub const EXPORT_MAX: i64 = 100_000;
/// Events read per query while a download streams.
const EXPORT_PAGE: i64 = 1000;
/// Longest event name accepted in a filter.
const MAX_EVENT: usize = 64;

/// The first line of the CSV download.
pub const CSV_HEADER: &str =
    "id,time,event,user_id,user_email,actor_id,actor_email,subject_email,ip,user_agent,detail\n";

/// What to show. Every part is optional; all given parts must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// The user the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// Who acted (an admin, or the user themselves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
    /// The exact event name (`signin_failed`, `user_suspended`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// At or after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// The filter as typed on a form or a query string: every field text, empty for "any" (taken as given: a
/// form trims its fields before).
#[derive(Debug, Clone, Default)]
pub struct FilterInput<'a> {
    /// An email address or a user id.
    pub user: &'a str,
    /// An email address or a user id.
    pub actor: &'a str,
    pub event: &'a str,
    /// `YYYY-MM-DD` (the start of that UTC day) or an RFC 3339 time.
    pub since: &'a str,
    /// `YYYY-MM-DD` (the whole of that UTC day is included) or an RFC 3339 time (excluded).
    pub until: &'a str,
}

/// One event with the addresses of the accounts it names (as they are now; empty for deleted accounts).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Event {
    pub audit_event_id: i64,
    pub created_at: DateTime<Utc>,
    pub event: String,
    pub user_id: Option<Uuid>,
    pub user_email: Option<String>,
    pub actor_id: Option<Uuid>,
    pub actor_email: Option<String>,
    /// The address an event named without an account (e.g. a failed sign-in for an unknown address).
    pub subject_email: Option<String>,
    pub ip: String,
    pub user_agent: String,
    pub detail: serde_json::Value,
}

/// One page, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub events: Vec<Event>,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// Parses a typed filter: addresses are looked up (an unknown address is an error naming the field), times
/// checked, the range must not be empty.
///
/// # Errors
/// [`Error::Invalid`] naming the field; database errors.
pub async fn parse_filter(ctx: &Ctx, input: &FilterInput<'_>) -> Result<Filter> {
    let event = input.event;
    if event.chars().count() > MAX_EVENT
        || !event
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
    {
        return Err(Error::invalid(
            "event",
            format!(
                "an event name is lowercase letters, digits, '_' and '.', at most {MAX_EVENT} characters (e.g. signin_failed)"
            ),
        ));
    }
    let since = parse_time("since", input.since, false)?;
    let until = parse_time("until", input.until, true)?;
    if let (Some(s), Some(u)) = (since, until)
        && u <= s
    {
        return Err(Error::invalid("until", "must be later than since"));
    }
    Ok(Filter {
        user_id: resolve_user(ctx, "user", input.user).await?,
        actor_id: resolve_user(ctx, "actor", input.actor).await?,
        event: (!event.is_empty()).then(|| event.to_owned()),
        since,
        until,
    })
}

fn parse_time(field: &str, s: &str, end_of_day: bool) -> Result<Option<DateTime<Utc>>> {
    if s.is_empty() {
        return Ok(None);
    }
    let out_of_range = || Error::invalid(field, "give a time between 1970 and 2099");
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let t = t.with_timezone(&Utc);
        return if (1970..=2099).contains(&t.year()) {
            Ok(Some(t))
        } else {
            Err(out_of_range())
        };
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            field,
            "give a day as YYYY-MM-DD (UTC) or a time as RFC 3339 (2026-12-05T08:00:00Z)",
        )
    })?;
    if !(1970..=2099).contains(&day.year()) {
        return Err(out_of_range());
    }
    let day = if end_of_day {
        day.succ_opt()
    } else {
        Some(day)
    };
    day.and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(out_of_range)
}

async fn resolve_user(ctx: &Ctx, field: &str, s: &str) -> Result<Option<Uuid>> {
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(id) = Uuid::parse_str(s) {
        // Ids of deleted accounts stay in the log: an id is taken as it is.
        return Ok(Some(id));
    }
    if !s.contains('@') || s.len() > 320 {
        return Err(Error::invalid(field, "give an email address or a user id"));
    }
    let id = sqlx::query_scalar!(
        "select user_id from app_user where lower(email) = lower($1)",
        s
    )
    .fetch_optional(&ctx.db)
    .await?;
    id.map(Some).ok_or_else(|| {
        Error::invalid(
            field,
            "no account has this address (a deleted account's events keep its user id: filter by the id)",
        )
    })
}

/// Appends `where …` for the filter's given parts (and the id bounds) to `q`. Built per filter rather than
/// with `($1 is null or …)` so that Postgres plans each query with the index that fits.
fn push_where<'a>(
    q: &mut QueryBuilder<'a, Postgres>,
    f: &'a Filter,
    below: Option<i64>,
    from: Option<i64>,
) {
    q.push(" where true");
    if let Some(u) = f.user_id {
        q.push(" and a.user_id = ").push_bind(u);
    }
    if let Some(u) = f.actor_id {
        q.push(" and a.actor_id = ").push_bind(u);
    }
    if let Some(e) = &f.event {
        q.push(" and a.event = ").push_bind(e.as_str());
    }
    if let Some(t) = f.since {
        q.push(" and a.created_at >= ").push_bind(t);
    }
    if let Some(t) = f.until {
        q.push(" and a.created_at < ").push_bind(t);
    }
    if let Some(b) = below {
        q.push(" and a.audit_event_id < ").push_bind(b);
    }
    if let Some(m) = from {
        q.push(" and a.audit_event_id >= ").push_bind(m);
    }
}

/// Matching events with ids in `[from, below)`, newest (highest id) first, at most `limit`.
async fn fetch(
    ctx: &Ctx,
    f: &Filter,
    below: Option<i64>,
    from: Option<i64>,
    limit: i64,
) -> Result<Vec<Event>> {
    let mut q = QueryBuilder::new(
        "select a.audit_event_id, a.created_at, a.event, a.user_id, u.email as user_email, a.actor_id,
                ac.email as actor_email, a.subject_email, a.ip, a.user_agent, a.detail
         from audit_event a
         left join app_user u on u.user_id = a.user_id
         left join app_user ac on ac.user_id = a.actor_id",
    );
    push_where(&mut q, f, below, from);
    q.push(" order by a.audit_event_id desc limit ")
        .push_bind(limit);
    Ok(q.build_query_as::<Event>().fetch_all(&ctx.db).await?)
}

/// A page of events matching `filter`, newest first, older than `before` (an event id from
/// [`Page::next_before`]), at most `limit` (1–[`PAGE_MAX`]).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], database.
pub async fn page(
    actor: &Actor,
    ctx: &Ctx,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Page> {
    actor.admin()?;
    let limit = limit.clamp(1, PAGE_MAX);
    let mut events = fetch(ctx, filter, before, None, limit + 1).await?;
    let next_before = if events.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        events.last().map(|e| e.audit_event_id)
    } else {
        None
    };
    Ok(Page {
        events,
        next_before,
    })
}

/// The body of a download: CSV text chunks, or the error that ended it (the client then sees a broken
/// download, never a silently short file).
pub type Chunks = BoxStream<'static, std::result::Result<String, std::io::Error>>;

/// Every event matching `filter` as CSV ([`CSV_HEADER`], newest first; times RFC 3339 UTC; `detail` as JSON;
/// spreadsheet formulas defused), read [`EXPORT_PAGE`] events per query as the client downloads. Audited as
/// `audit_exported` before the first byte.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Conflict`] when the filter matches more than [`EXPORT_MAX`] events, database.
pub async fn export(actor: &Actor, ctx: &Ctx, filter: &Filter) -> Result<Chunks> {
    actor.admin()?;
    // The matching events when the download starts bound it (ids from the oldest to the newest of them):
    // events recorded meanwhile, this download's own entry too, are not part of it.
    let mut q = QueryBuilder::new(
        "select count(*), min(audit_event_id), max(audit_event_id) from (
           select a.audit_event_id from audit_event a",
    );
    push_where(&mut q, filter, None, None);
    q.push(" limit ").push_bind(EXPORT_MAX + 1).push(") m");
    let (matched, oldest, newest): (i64, Option<i64>, Option<i64>) =
        q.build_query_as().fetch_one(&ctx.db).await?;
    if matched > EXPORT_MAX {
        return Err(Error::Conflict(format!(
            "the filter matches more than {EXPORT_MAX} events; narrow it (a shorter time range, an event or a user) and download in parts"
        )));
    }
    let mut conn = ctx.db.acquire().await?;
    actor
        .audit(
            &mut conn,
            super::event::AUDIT_EXPORTED,
            None,
            json!({ "filter": filter, "events": matched }),
        )
        .await?;
    drop(conn);

    let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<String, std::io::Error>>(2);
    let ctx = ctx.clone();
    let filter = filter.clone();
    tokio::spawn(async move {
        let Some((oldest, newest)) = oldest.zip(newest) else {
            let _ = tx.send(Ok(CSV_HEADER.to_owned())).await;
            return;
        };
        let mut below = newest + 1;
        let mut buf = CSV_HEADER.to_owned();
        loop {
            let rows = match fetch(&ctx, &filter, Some(below), Some(oldest), EXPORT_PAGE).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let Some(last) = rows.last() else { break };
            below = last.audit_event_id;
            for e in &rows {
                push_csv_line(&mut buf, e);
            }
            if tx.send(Ok(std::mem::take(&mut buf))).await.is_err() {
                return; // the client went away
            }
        }
        if !buf.is_empty() {
            let _ = tx.send(Ok(buf)).await;
        }
    });
    // `poll_recv` keeps answering `None` once the channel is closed: the body may be polled after its end
    // (the compression layer does), which an `unfold` stream would panic on.
    let mut rx = rx;
    Ok(Box::pin(futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
    })))
}

/// One event's CSV line (with its newline).
pub fn push_csv_line(out: &mut String, e: &Event) {
    use crate::csv::cell;
    let id = |u: Option<Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    let cells = [
        e.audit_event_id.to_string(),
        e.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        cell(&e.event),
        id(e.user_id),
        cell(e.user_email.as_deref().unwrap_or_default()),
        id(e.actor_id),
        cell(e.actor_email.as_deref().unwrap_or_default()),
        cell(e.subject_email.as_deref().unwrap_or_default()),
        cell(&e.ip),
        cell(&e.user_agent),
        cell(&e.detail.to_string()),
    ];
    out.push_str(&cells.join(","));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_days_or_rfc3339() {
        let t = |s, end| parse_time("since", s, end).unwrap().map(|t| t.to_rfc3339());
        assert_eq!(t("", false), None);
        assert_eq!(
            t("2026-12-05", false).as_deref(),
            Some("2026-12-05T00:00:00+00:00")
        );
        assert_eq!(
            t("2026-12-05", true).as_deref(),
            Some("2026-12-06T00:00:00+00:00")
        );
        assert_eq!(
            t("2026-12-05T08:30:00+01:00", true).as_deref(),
            Some("2026-12-05T07:30:00+00:00")
        );
        for bad in [
            "5/12/2026",
            "+200000-01-01",
            "1969-12-31",
            "2100-01-01T00:00:00Z",
            "2099-12-31 ",
        ] {
            let Err(Error::Invalid { field, .. }) = parse_time("until", bad, true) else {
                panic!("{bad} must be refused");
            };
            assert_eq!(field, "until");
        }
        assert_eq!(
            t("2099-12-31", true).as_deref(),
            Some("2100-01-01T00:00:00+00:00")
        );
    }

    #[test]
    fn a_line_defuses_what_a_user_typed() {
        let e = Event {
            audit_event_id: 7,
            created_at: DateTime::from_timestamp(1_764_921_600, 0).unwrap(),
            event: "signin_failed".into(),
            user_id: None,
            user_email: None,
            actor_id: None,
            actor_email: None,
            subject_email: Some("=HYPERLINK(\"x\")@e.com".into()),
            ip: "10.0.0.1".into(),
            user_agent: "curl, 8".into(),
            detail: json!({"reason": "bad password"}),
        };
        let mut out = String::new();
        push_csv_line(&mut out, &e);
        assert_eq!(
            out,
            "7,2025-12-05T08:00:00.000Z,signin_failed,,,,,\"'=HYPERLINK(\"\"x\"\")@e.com\",10.0.0.1,\"curl, 8\",\"{\"\"reason\"\":\"\"bad password\"\"}\"\n"
        );
    }
}
