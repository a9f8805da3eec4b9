//! Kill switches: each level × mode on real runs, a switch thrown while a step holds the runs, who may throw
//! and release, audit and events.

use backend::{
    Actor, Surface,
    auth::{Role, Scope as TokenScope},
    paper::{
        actions::{self as act, Owner},
        kill::Scope,
    },
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    SMA, advance, app_without_workers, new_run, series, shifted, start, store_candles, strategy,
    trader,
};
use crate::helpers::TestApp;

async fn gates_since(app: &TestApp, run: Uuid, from: i64) -> Vec<String> {
    sqlx::query_scalar(
        "select gate from paper_candle where paper_run_id = $1 and open_time >= $2 order by open_time",
    )
    .bind(run)
    .bind(backend::market::to_datetime(from))
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
}

async fn buys_since(app: &TestApp, run: Uuid, from: i64) -> i64 {
    sqlx::query_scalar("select count(*) from paper_fill where paper_run_id = $1 and side = 'buy' and open_time > $2")
        .bind(run)
        .bind(backend::market::to_datetime(from))
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn paper_each_level_gates_the_runs_it_covers_from_their_next_candle_and_only_those() {
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let bob = trader(&app, "bob@example.org").await;
    let admin = crate::helpers::api_actor(
        &app.ctx,
        "root@example.org",
        Role::Admin,
        true,
        TokenScope::ReadWrite,
    )
    .await;
    let ann_s = strategy(&app, &ann, SMA).await;
    let bob_s = strategy(&app, &bob, SMA).await;
    let a1 = start(&app, &ann, &new_run(ann_s, inst)).await;
    let a2 = start(&app, &ann, &new_run(ann_s, inst)).await;
    let b1 = start(&app, &bob, &new_run(bob_s, inst)).await;
    let k = std::cell::Cell::new(0);
    let feed = |n: usize| {
        let part = live.slice(k.get()..k.get() + n);
        k.set(k.get() + n);
        part
    };
    store_candles(&app, inst, &feed(20)).await;
    advance(&app, inst).await;

    // Run level (its owner): only that run.
    let t0 = live.time[k.get()];
    let run_switch = act::throw_switch(
        &ann,
        &app.ctx,
        Scope::Run(a1),
        "reduce_only",
        "testing one run",
    )
    .await
    .unwrap();
    store_candles(&app, inst, &feed(5)).await;
    advance(&app, inst).await;
    assert!(
        gates_since(&app, a1, t0)
            .await
            .iter()
            .all(|g| g == "reduce_only")
    );
    assert!(gates_since(&app, a2, t0).await.iter().all(|g| g == "open"));
    assert!(gates_since(&app, b1, t0).await.iter().all(|g| g == "open"));
    let d = act::get(&ann, &app.ctx, Owner::Me, a1).await.unwrap();
    assert_eq!(d.effective_gate, "reduce_only");
    assert_eq!(d.kill_switches.len(), 1);

    // User level (the trader for themselves): both of Ann's runs; the strictest applies.
    let t1 = live.time[k.get()];
    act::throw_switch(
        &ann,
        &app.ctx,
        Scope::User(ann.user_id().unwrap()),
        "halt",
        "stepping away",
    )
    .await
    .unwrap();
    store_candles(&app, inst, &feed(5)).await;
    advance(&app, inst).await;
    assert!(
        gates_since(&app, a1, t1).await.iter().all(|g| g == "halt"),
        "halt is stricter than reduce-only"
    );
    assert!(gates_since(&app, a2, t1).await.iter().all(|g| g == "halt"));
    assert!(gates_since(&app, b1, t1).await.iter().all(|g| g == "open"));

    // Platform level (administrators): everyone, flatten wins.
    let t2 = live.time[k.get()];
    let platform = act::throw_switch(
        &admin,
        &app.ctx,
        Scope::Platform,
        "flatten",
        "exchange incident",
    )
    .await
    .unwrap();
    store_candles(&app, inst, &feed(30)).await;
    advance(&app, inst).await;
    for r in [a1, a2, b1] {
        assert!(
            gates_since(&app, r, t2)
                .await
                .iter()
                .all(|g| g == "flatten")
        );
        assert!(
            act::get(
                &admin,
                &app.ctx,
                Owner::User(if r == b1 {
                    bob.user_id().unwrap()
                } else {
                    ann.user_id().unwrap()
                }),
                r
            )
            .await
            .unwrap()
            .position
            .is_none(),
            "flattened"
        );
        assert_eq!(buys_since(&app, r, t2).await, 0);
    }
    // Traders cannot release the platform switch, nor Bob Ann's; the admin can.
    assert_eq!(
        act::release_switch(&ann, &app.ctx, platform.switch_id, None)
            .await
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        act::release_switch(&bob, &app.ctx, run_switch.switch_id, None)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        act::throw_switch(&bob, &app.ctx, Scope::Run(a1), "halt", "x")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        act::throw_switch(&bob, &app.ctx, Scope::Platform, "halt", "x")
            .await
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        act::throw_switch(
            &bob,
            &app.ctx,
            Scope::User(ann.user_id().unwrap()),
            "halt",
            "x"
        )
        .await
        .unwrap_err()
        .code(),
        "forbidden"
    );
    act::release_switch(&admin, &app.ctx, platform.switch_id, Some("incident over"))
        .await
        .unwrap();
    // Bob trades normally again from his next candle.
    let t3 = live.time[k.get()];
    store_candles(&app, inst, &feed(3)).await;
    advance(&app, inst).await;
    assert!(gates_since(&app, b1, t3).await.iter().all(|g| g == "open"));
    assert!(
        gates_since(&app, a2, t3).await.iter().all(|g| g == "halt"),
        "Ann's own switch still holds"
    );

    // Bad input names the field.
    let e = act::throw_switch(&ann, &app.ctx, Scope::Run(a2), "panic", "x")
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("mode:"), "{e}");
    let e = act::throw_switch(&ann, &app.ctx, Scope::Run(a2), "halt", "  ")
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("reason:"), "{e}");
    let e = act::throw_switch(&ann, &app.ctx, Scope::Run(a2), "halt", &"x".repeat(501))
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("reason:"), "{e}");

    // Audited and announced: the platform switch reached both traders (thrown and released).
    let audited: i64 = sqlx::query_scalar("select count(*) from audit_event where event in ('kill_switch_thrown', 'kill_switch_released')")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(audited, 4);
    for who in [&ann, &bob] {
        let n: i64 = sqlx::query_scalar("select count(*) from notify_event where user_id = $1 and event_type like 'kill_switch.%' and payload->>'scope' = 'platform'")
            .bind(who.user_id().unwrap())
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
        assert_eq!(n, 2);
    }
}

#[tokio::test]
async fn paper_a_switch_thrown_while_a_step_holds_the_runs_applies_from_the_next_candle() {
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let run = start(&app, &ann, &new_run(sid, inst)).await;
    store_candles(&app, inst, &live.slice(0..10)).await;
    // A step is in flight (its transaction holds the runs and the shared lock) …
    let mut tx = app.ctx.db.begin().await.unwrap();
    backend::paper::advance::advance(&app.ctx, &mut tx, inst, backend::market::Timeframe::M5)
        .await
        .unwrap();
    // … the switch waits for it …
    let ctx = app.ctx.clone();
    let ann2 = ann.clone();
    let thrower = tokio::spawn(async move {
        act::throw_switch(&ann2, &ctx, Scope::Run(run), "halt", "now")
            .await
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !thrower.is_finished(),
        "the switch must wait for the step in flight"
    );
    tx.commit().await.unwrap();
    let thrown: backend::paper::kill::KillSwitch = thrower.await.unwrap();
    let at: DateTime<Utc> = thrown.thrown_at;
    assert!(at <= Utc::now());
    // … the candles of that step stay open; the next ones are halted.
    let gates: Vec<String> = sqlx::query_scalar(
        "select gate from paper_candle where paper_run_id = $1 order by open_time",
    )
    .bind(run)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert!(gates.iter().all(|g| g == "open"));
    store_candles(&app, inst, &live.slice(10..12)).await;
    advance(&app, inst).await;
    assert_eq!(
        gates_since(&app, run, live.time[10]).await,
        vec!["halt", "halt"]
    );
    let _ = Actor::system(Surface::Cli);
}

#[tokio::test]
async fn paper_a_trader_can_neither_replace_nor_release_an_administrators_switch_and_a_suspended_owner_is_halted()
 {
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let bob = trader(&app, "bob@example.org").await;
    let cy = trader(&app, "cy@example.org").await;
    let admin = crate::helpers::api_actor(
        &app.ctx,
        "root@example.org",
        Role::Admin,
        true,
        TokenScope::ReadWrite,
    )
    .await;
    let bob_s = strategy(&app, &bob, SMA).await;
    let cy_s = strategy(&app, &cy, SMA).await;
    let b1 = start(&app, &bob, &new_run(bob_s, inst)).await;
    let c1 = start(&app, &cy, &new_run(cy_s, inst)).await;
    let bob_id = bob.user_id().unwrap();

    // An administrator halts Bob's account and, separately, his run.
    let on_user = act::throw_switch(&admin, &app.ctx, Scope::User(bob_id), "halt", "review")
        .await
        .unwrap();
    let on_run = act::throw_switch(&admin, &app.ctx, Scope::Run(b1), "flatten", "review")
        .await
        .unwrap();
    // Bob's own, milder switches of the same scope would have replaced them: refused, and both still hold.
    for scope in [Scope::User(bob_id), Scope::Run(b1)] {
        let e = act::throw_switch(&bob, &app.ctx, scope, "reduce_only", "mine")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "conflict", "{e}");
        assert!(e.to_string().contains("administrator"), "{e}");
    }
    for s in [&on_user, &on_run] {
        assert_eq!(
            act::release_switch(&bob, &app.ctx, s.switch_id, None)
                .await
                .unwrap_err()
                .code(),
            "forbidden"
        );
    }
    let active: i64 = sqlx::query_scalar(
        "select count(*) from kill_switch where released_at is null and thrown_by_admin",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(active, 2);
    // The administrator may replace their own.
    act::throw_switch(&admin, &app.ctx, Scope::Run(b1), "halt", "calmer")
        .await
        .unwrap();

    // Cy is suspended while her run is still active (as if pausing it had lost a race): the step holds it at
    // halt anyway, and Bob's neighbour run on the same series is untouched by that.
    sqlx::query("update app_user set disabled_at = now() where user_id = $1")
        .bind(cy.user_id().unwrap())
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let t0 = live.time[0];
    store_candles(&app, inst, &live.slice(0..10)).await;
    advance(&app, inst).await;
    let gates = gates_since(&app, c1, t0).await;
    assert!(
        !gates.is_empty() && gates.iter().all(|g| g == "halt"),
        "{gates:?}"
    );
    assert_eq!(buys_since(&app, c1, t0).await, 0);
}
