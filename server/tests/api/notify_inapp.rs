//! Notifications, step 1 (docs/design/notifications.md §11): the event stream, the fan-out and the in-app
//! centre, against real Postgres and Redis with in-process workers. A real backtest runs to completion and its
//! owner gets exactly one in-app notification; the fan-out is idempotent; the in-app actions only touch the
//! actor's own rows; an event exists if and only if the transaction that emitted it committed.

use std::{path::Path, time::Duration};

use backend::{
    Actor, Surface,
    auth::{Credential, RequestMeta, Role, Scope},
    backtest::{
        actions::{runs, strategies},
        runs::NewRun,
        strategies::NewStrategy,
    },
    jobs::NOTIFY_QUEUE,
    market::{Pair, csv_import},
    notify::{self, Event, fanout, inapp},
};
use uuid::Uuid;

use crate::helpers::{Options, TestApp, spawn_app_with};

async fn person(app: &TestApp, email: &str, role: Role, scope: Scope) -> Actor {
    crate::helpers::api_actor(&app.ctx, email, role, true, scope).await
}

/// The same user through a read-only token.
fn read_only(actor: &Actor) -> Actor {
    let mut u = actor.auth_user().unwrap().clone();
    u.credential = Credential::ApiToken {
        token_id: Uuid::new_v4(),
        scope: Scope::Read,
    };
    Actor::user(
        u,
        Surface::Api,
        RequestMeta::new("127.0.0.1", "tests"),
        None,
    )
}

async fn app(workers: bool) -> TestApp {
    spawn_app_with(Options {
        workers,
        env: vec![],
    })
    .await
}

/// Queues a backtest of the MACD template over the XRP/ETH 5m demo candles; returns the run id.
pub(crate) async fn submit(app: &TestApp, actor: &Actor) -> Uuid {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/XRP-ETH-5m.csv");
    let opts = csv_import::ImportOptions {
        exchange: "binance".into(),
        pair: Pair::parse("XRP/ETH").unwrap(),
        timeframe: None,
        skip_bad_rows: false,
    };
    let instrument = csv_import::import_file(&app.ctx.db, &path, &opts)
        .await
        .unwrap()
        .instrument_id;
    let strategy = strategies::create(
        actor,
        &app.ctx,
        NewStrategy {
            name: None,
            description: None,
            template: Some("macd".into()),
            source: None,
        },
    )
    .await
    .unwrap();
    let created = runs::submit(
        actor,
        &app.ctx,
        &NewRun {
            strategy_id: strategy,
            version: None,
            params: Vec::new(),
            instrument_ids: vec![instrument],
            timeframe: "5m".into(),
            from: "2019-10-11".into(),
            to: "2019-10-13".into(),
            initial_cash: 10_000.0,
            fee: 0.001,
            slippage_bps: 0.0,
            fill: "next_open".into(),
        },
    )
    .await
    .unwrap();
    created.run_ids[0]
}

async fn scalar(app: &TestApp, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

/// Rows of every notification table, to show a second fan-out wrote nothing.
async fn row_counts(app: &TestApp) -> (i64, i64, i64) {
    sqlx::query_as(
        "select (select count(*) from notify_event), (select count(*) from notification),
                (select count(*) from notify_delivery)",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

fn code<T: std::fmt::Debug>(r: &Result<T, backend::Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn notif_a_finished_backtest_notifies_its_owner_once_and_nobody_else() {
    let app = app(true).await;
    let ann = person(&app, "ann@example.org", Role::Trader, Scope::ReadWrite).await;
    let bob = person(&app, "bob@example.org", Role::Trader, Scope::ReadWrite).await;
    let run = submit(&app, &ann).await;
    let job: Uuid =
        sqlx::query_scalar("select job_id from backtest_run where backtest_run_id = $1")
            .bind(run)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    app.wait_for_job(job, &["done"], Duration::from_secs(60))
        .await;
    let status: String =
        sqlx::query_scalar("select status from backtest_run where backtest_run_id = $1")
            .bind(run)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(status, "done");

    // The event was written with the result; its fan-out job runs on the notify queue.
    let (event_id, fanout_job): (Uuid, Uuid) = sqlx::query_as(
        "select e.event_id, j.job_id from notify_event e
         join job j on j.kind = 'notify_fanout' and j.payload->>'event_id' = e.event_id::text
         where e.dedupe_key = 'backtest.finished:' || $1::text",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let fj = app
        .wait_for_job(fanout_job, &["done"], Duration::from_secs(30))
        .await;
    assert_eq!(fj.queue, NOTIFY_QUEUE);

    // Exactly one in-app notification, for the owner.
    let page = inapp::list(&app.ctx, &ann, inapp::ListQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "{page:?}");
    let n = &page.items[0];
    assert_eq!(n.event_type, "backtest.finished");
    assert_eq!(n.category, "backtests");
    assert_eq!(n.url.as_deref(), Some(format!("/backtests/{run}").as_str()));
    assert!(n.title.starts_with("Backtest finished: "), "{}", n.title);
    assert!(n.title.contains("XRPETH 5m"), "{}", n.title);
    assert!(n.read_at.is_none());
    assert_eq!(page.next_before, None);
    assert_eq!(inapp::unread_count(&app.ctx, &ann).await.unwrap(), 1);
    // Nobody else got one.
    assert!(
        inapp::list(&app.ctx, &bob, inapp::ListQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(inapp::unread_count(&app.ctx, &bob).await.unwrap(), 0);
    assert_eq!(
        scalar(
            &app,
            "select count(*) from notification where event_id = $1",
            event_id
        )
        .await,
        1
    );
    // The payload is self-contained (the email and webhook steps render from it).
    let payload: serde_json::Value =
        sqlx::query_scalar("select payload from notify_event where event_id = $1")
            .bind(event_id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    let Event::BacktestFinished(p) = serde_json::from_value(payload).unwrap() else {
        panic!("not a backtest.finished payload");
    };
    assert_eq!((p.run_id, p.symbol.as_str()), (run, "XRPETH"));
    assert!(!p.sparkline.is_empty() && p.sparkline.len() <= 200);
    // Backtest results go to email as a digest by default: the delivery waits in the user's digest batch
    // (digests are covered by notify_schedule.rs, immediate email by notify_email.rs).
    let (status, reason): (String, Option<String>) = sqlx::query_as(
        "select status, reason from notify_delivery where event_id = $1 and channel = 'email'",
    )
    .bind(event_id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("pending", Some("digest"))
    );

    // A second fan-out of the same event (a re-run after a crash, a duplicate delivery) writes nothing twice.
    let before = row_counts(&app).await;
    sqlx::query("update notify_event set fanned_out_at = null where event_id = $1")
        .bind(event_id)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let again = app
        .ctx
        .jobs
        .enqueue(&app.ctx.jobs.new_job(
            NOTIFY_QUEUE,
            fanout::KIND,
            serde_json::json!({ "event_id": event_id }),
        ))
        .await
        .unwrap()
        .unwrap();
    app.wait_for_job(again, &["done"], Duration::from_secs(30))
        .await;
    assert_eq!(row_counts(&app).await, before);
    let mut tx = app.ctx.db.begin().await.unwrap();
    let out = fanout::fan_out(&mut tx, &app.ctx.jobs, &app.ctx.clock, event_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((out.notifications, out.deliveries), (0, 0));
    tx.commit().await.unwrap();
    assert_eq!(row_counts(&app).await, before);
    assert_eq!(inapp::unread_count(&app.ctx, &ann).await.unwrap(), 1);

    // Read marks: another user's notification is not found; a read-only token may not mark; the owner may.
    assert_eq!(
        code(&inapp::mark_read(&app.ctx, &bob, n.id).await),
        "not_found"
    );
    assert_eq!(code(&inapp::open(&app.ctx, &bob, n.id).await), "not_found");
    assert_eq!(
        code(&inapp::mark_read(&app.ctx, &read_only(&ann), n.id).await),
        "forbidden"
    );
    assert_eq!(
        code(&inapp::mark_read(&app.ctx, &ann, Uuid::new_v4()).await),
        "not_found"
    );
    assert_eq!(inapp::mark_all_read(&app.ctx, &bob, None).await.unwrap(), 0);
    assert_eq!(inapp::unread_count(&app.ctx, &ann).await.unwrap(), 1);
    inapp::mark_read(&app.ctx, &ann, n.id).await.unwrap();
    assert_eq!(inapp::unread_count(&app.ctx, &ann).await.unwrap(), 0);
    // Idempotent; open returns where it leads.
    assert_eq!(
        inapp::open(&app.ctx, &ann, n.id).await.unwrap(),
        format!("/backtests/{run}")
    );
    let unread = inapp::list(
        &app.ctx,
        &ann,
        inapp::ListQuery {
            unread: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(unread.items.is_empty());
}

#[tokio::test]
async fn notif_an_event_exists_iff_its_transaction_committed_and_is_emitted_once_per_dedupe_key() {
    let app = app(false).await;
    let ann = person(&app, "ann@example.org", Role::Trader, Scope::ReadWrite).await;
    let ann_id = ann.user_id().unwrap();
    let event = Event::sample("backtest.failed", ann_id).unwrap();
    let ctx = &app.ctx;

    // Rolled back: no event, no fan-out job.
    let mut tx = ctx.db.begin().await.unwrap();
    let e = notify::emit(&mut tx, &ctx.jobs, &ctx.clock, &event)
        .await
        .unwrap();
    assert!(e.job_id.is_some());
    tx.rollback().await.unwrap();
    assert_eq!(row_counts(&app).await, (0, 0, 0));
    assert_eq!(
        scalar(
            &app,
            "select count(*) from job where kind = 'notify_fanout' and $1 is not null",
            ann_id
        )
        .await,
        0
    );

    // Committed twice with the same dedupe key: one event, one fan-out job.
    let mut emitted = Vec::new();
    for _ in 0..2 {
        let mut tx = ctx.db.begin().await.unwrap();
        emitted.push(
            notify::emit(&mut tx, &ctx.jobs, &ctx.clock, &event)
                .await
                .unwrap(),
        );
        tx.commit().await.unwrap();
    }
    assert_eq!(emitted[0].event_id, emitted[1].event_id);
    assert!(emitted[0].job_id.is_some() && emitted[1].job_id.is_none());
    assert_eq!(
        scalar(
            &app,
            "select count(*) from notify_event where user_id = $1",
            ann_id
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            "select count(*) from job where kind = 'notify_fanout' and $1 is not null",
            ann_id
        )
        .await,
        1
    );
    // Events without a dedupe key are each new; a paged list walks them newest first.
    for _ in 0..4 {
        let mut tx = ctx.db.begin().await.unwrap();
        let e = notify::emit(
            &mut tx,
            &ctx.jobs,
            &ctx.clock,
            &Event::sample("system.test", ann_id).unwrap(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut tx = ctx.db.begin().await.unwrap();
        fanout::fan_out(&mut tx, &ctx.jobs, &ctx.clock, e.event_id)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = inapp::list(
            ctx,
            &ann,
            inapp::ListQuery {
                unread: false,
                before,
                limit: Some(3),
            },
        )
        .await
        .unwrap();
        seen.extend(page.items.iter().map(|n| n.seq));
        match page.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    assert_eq!(
        code(
            &inapp::list(
                ctx,
                &ann,
                inapp::ListQuery {
                    limit: Some(0),
                    ..Default::default()
                }
            )
            .await
        ),
        "invalid_input"
    );
    // Mark all read up to a seq leaves the newer ones unread; a viewer may mark their own.
    assert_eq!(
        inapp::mark_all_read(ctx, &ann, Some(seen[2]))
            .await
            .unwrap(),
        2
    );
    assert_eq!(inapp::unread_count(ctx, &ann).await.unwrap(), 2);
    assert_eq!(inapp::mark_all_read(ctx, &ann, None).await.unwrap(), 2);
    assert_eq!(inapp::unread_count(ctx, &ann).await.unwrap(), 0);
    let viewer = person(&app, "vic@example.org", Role::Viewer, Scope::ReadWrite).await;
    assert_eq!(code(&inapp::mark_all_read(ctx, &viewer, None).await), "ok");
    let anonymous = Actor::anonymous(Surface::Api, RequestMeta::new("127.0.0.1", "tests"), None);
    assert_eq!(
        code(&inapp::unread_count(ctx, &anonymous).await),
        "unauthorized"
    );
}

#[tokio::test]
async fn notif_a_backtest_whose_job_gave_up_emits_one_failed_event_in_the_same_transaction() {
    let app = app(false).await;
    let ann = person(&app, "ann@example.org", Role::Trader, Scope::ReadWrite).await;
    let run = submit(&app, &ann).await;
    let job: Uuid =
        sqlx::query_scalar("select job_id from backtest_run where backtest_run_id = $1")
            .bind(run)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    // Nothing happened to the run yet: no event.
    assert_eq!(row_counts(&app).await, (0, 0, 0));
    sqlx::query("update job set status = 'failed', attempts = max_attempts where job_id = $1")
        .bind(job)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    // The hook runs (twice: the worker and a repeat); the run is failed and announced once.
    backend::jobs::registry::fail_dependents(&app.ctx, job).await;
    backend::jobs::registry::fail_dependents(&app.ctx, job).await;
    let (event_id, payload): (Uuid, serde_json::Value) = sqlx::query_as(
        "select event_id, payload from notify_event where dedupe_key = 'backtest.failed:' || $1::text",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(row_counts(&app).await.0, 1);
    let Event::BacktestFailed(p) = serde_json::from_value(payload).unwrap() else {
        panic!("not a backtest.failed payload");
    };
    assert_eq!(p.error, backend::backtest::job::FAILED_FOR_TRADER);
    // Its fan-out (run here by hand: no workers) gives the owner one notification.
    let mut tx = app.ctx.db.begin().await.unwrap();
    let out = fanout::fan_out(&mut tx, &app.ctx.jobs, &app.ctx.clock, event_id)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((out.recipients, out.notifications), (1, 1));
    let page = inapp::list(&app.ctx, &ann, inapp::ListQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].event_type, "backtest.failed");
    assert!(page.items[0].body.contains("could not finish"));
}
