//! An SMTP relay down for a whole minute, then back (issue 13, "Done when"): ten notifications of different
//! types queued during the outage are retried with back-off, none gives up, and after the relay returns each
//! arrives exactly once (counted by its deterministic `Message-ID`).

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use backend::{
    auth::{Role, users},
    notify::{self, Event},
};

use crate::smtp::{app_with_retrying_mail, header};

#[tokio::test]
async fn notif_outage_a_minute_without_the_relay_loses_and_doubles_nothing() {
    // Back-off that keeps trying through the minute without giving up.
    let (app, mut sink) = app_with_retrying_mail("attempts=60,base_secs=0.5,max_secs=4").await;
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let user = users::insert(&mut conn, "dee@example.org", "Dee", "x", Role::Trader)
        .await
        .unwrap()
        .unwrap();
    users::mark_verified(&mut conn, user).await.unwrap();
    drop(conn);

    sink.stop();
    let mut types = vec![
        "backtest.failed",
        "notify.webhook_disabled",
        "security.signin_new_device",
        "security.password_changed",
        "security.token_created",
    ];
    types.extend(["system.test"; 5]);
    let mut events = Vec::new();
    for ty in &types {
        let event = Event::sample(ty, user).unwrap();
        let mut tx = app.ctx.db.begin().await.unwrap();
        let e = notify::emit(&mut tx, &app.ctx.jobs, &app.ctx.clock, &event)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        notify::push(&app.ctx.jobs, &[e]).await;
        events.push(e.event_id);
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    // A minute of retries: every delivery still queued (none failed), several attempts each.
    let (queued, failed, retries): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where status = 'queued'), count(*) filter (where status = 'failed'),
                (select count(*) from notify_attempt a join notify_delivery d2 using (delivery_id)
                 where d2.user_id = $1 and a.outcome = 'retry')
         from notify_delivery d where d.user_id = $1 and d.channel = 'email'",
    )
    .bind(user)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!((queued, failed), (10, 0), "all waiting, none given up");
    assert!(
        retries >= 30,
        "retried with back-off through the outage: {retries}"
    );

    sink.restart().await;
    let mails = sink
        .wait_for("dee@example.org", 10, Duration::from_secs(60))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent: i64 = sqlx::query_scalar(
            "select count(*) from notify_delivery where user_id = $1 and channel = 'email' and status = 'sent'",
        )
        .bind(user)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
        if sent == 10 {
            break;
        }
        assert!(Instant::now() < deadline, "{sent} of 10 marked sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails_now = sink.messages();
    assert_eq!(mails_now.len(), 10, "nothing doubled");
    let ids: HashSet<String> = mails
        .iter()
        .map(|m| header(m, "Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 10, "ten distinct messages");
    let sent_types: HashSet<String> = mails
        .iter()
        .map(|m| header(m, "X-Vortex-Event").unwrap())
        .collect();
    assert_eq!(sent_types.len(), 6, "{sent_types:?}");
}
