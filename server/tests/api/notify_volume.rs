//! Shared helpers of the notification volume tests (notify_schedule.rs, notify_storm.rs): people with a time
//! zone, emitting events as an emitter does, waiting for the fan-out, and reading mail from the SMTP sink.

use std::time::{Duration, Instant};

use backend::{
    Actor, Surface,
    auth::{AuthUser, Credential, RequestMeta, Role, users},
    notify::{
        self, Event,
        event::{BacktestFailed, BacktestFinished},
    },
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::helpers::TestApp;

pub fn z(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// A confirmed trader in `tz`, signed in with a session.
pub async fn person(app: &TestApp, email: &str, tz: &str) -> Actor {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, email, "Kai", "not-a-password-hash", Role::Trader)
        .await
        .unwrap()
        .expect("new email");
    users::mark_verified(&mut conn, id).await.unwrap();
    users::update_profile(&mut *conn, id, "Kai", tz)
        .await
        .unwrap();
    Actor::user(
        AuthUser {
            user_id: id,
            email: email.into(),
            display_name: "Kai".into(),
            role: Role::Trader,
            email_verified: true,
            time_zone: tz.into(),
            credential: Credential::Session(format!("s-{id}")),
        },
        Surface::Web,
        RequestMeta::new("127.0.0.1", "tests"),
        None,
    )
}

/// A failed backtest run of sweep `batch_id` (coalescible by batch; email immediately by default).
pub fn failed(user_id: Uuid, batch_id: Uuid, name: &str) -> Event {
    Event::BacktestFailed(BacktestFailed {
        user_id,
        run_id: Uuid::new_v4(),
        batch_id,
        strategy_name: name.into(),
        symbol: "ETHBTC".into(),
        timeframe: "5m".into(),
        error: "no candles stored for this range".into(),
    })
}

/// A finished backtest run (email in the digest by default).
pub fn finished(user_id: Uuid, name: &str) -> Event {
    let Some(Event::BacktestFinished(mut b)) = Event::sample("backtest.finished", user_id) else {
        unreachable!()
    };
    b.run_id = Uuid::new_v4();
    b.batch_id = b.run_id;
    b.strategy_name = name.into();
    Event::BacktestFinished(BacktestFinished { ..b })
}

/// Emits `event` in its own transaction, as an emitter does, and pushes its fan-out.
pub async fn emit(app: &TestApp, event: &Event) -> Uuid {
    let mut tx = app.ctx.db.begin().await.unwrap();
    let e = notify::emit(&mut tx, &app.ctx.jobs, &app.ctx.clock, event)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    notify::push(&app.ctx.jobs, &[e]).await;
    e.event_id
}

/// Waits until every event is fanned out (the release decisions read the clock then).
pub async fn fanned_out(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: i64 =
            sqlx::query_scalar("select count(*) from notify_event where fanned_out_at is null")
                .fetch_one(&app.ctx.db)
                .await
                .unwrap();
        if left == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{left} event(s) not fanned out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw message with quoted-printable soft breaks undone (for looking at its text).
pub fn unfold(m: &str) -> String {
    m.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The message's `Subject` (decoded when it is RFC 2047 encoded UTF-8).
pub fn subject(m: &str) -> String {
    crate::smtp::header(m, "Subject").unwrap_or_default()
}

/// Waits until no new message arrived for a second, then returns the messages to `to`.
pub async fn settled(sink: &crate::smtp::SmtpSink, to: &str) -> Vec<String> {
    let mut last = usize::MAX;
    loop {
        let n = sink.messages().len();
        if n == last {
            break;
        }
        last = n;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    sink.messages()
        .into_iter()
        .filter(|m| m.contains(&format!("To: {to}")))
        .collect()
}
