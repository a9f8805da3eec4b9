//! Over quota after a plan change (docs/plans.md, "Over your plan's limits"): a grace period with a notice,
//! then the excess is read-only — the newest paper runs beyond the limit go reduce-only through the same gate
//! path as a kill switch (no new entries, exits still close), the newest strategies beyond it refuse edits,
//! backtests and paper runs — and it all ends as soon as the trader is within the limit again (a stopped run, a
//! deleted strategy). Another user's data is never touched; `PLAN_GRACE_DAYS=0` enforces at once.

use std::time::Duration;

use backend::{
    Actor,
    auth::{Role, Scope as TokenScope},
    clock::Clock,
    paper::{
        actions::{self as act, Owner},
        control::Command,
        kill::Scope,
    },
    plans::{
        self,
        actions::{Assignment, PlanInput},
    },
};
use chrono::{DateTime, SubsecRound, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{audits, candles, person, rest, run_body};
use crate::{
    auth::{location, page_text, post_form},
    helpers::{Options, TestApp, spawn_app_with, spawn_app_with_clock},
    paper::{SMA, advance, new_run, series, shifted, start, store_candles, strategy, trader},
    smtp::SmtpSink,
};

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

async fn fills_since(app: &TestApp, run: Uuid, side: &str, from: i64) -> i64 {
    sqlx::query_scalar(
        "select count(*) from paper_fill where paper_run_id = $1 and side = $2 and open_time >= $3",
    )
    .bind(run)
    .bind(side)
    .bind(backend::market::to_datetime(from))
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

/// The `billing.over_limit` payloads of a user, oldest first.
async fn notices(app: &TestApp, user: Uuid) -> Vec<Value> {
    sqlx::query_scalar(
        "select payload from notify_event where event_type = 'billing.over_limit' and user_id = $1
          order by created_at, occurred_at",
    )
    .bind(user)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
}

async fn admin(app: &TestApp) -> Actor {
    crate::helpers::api_actor(
        &app.ctx,
        "root@example.org",
        Role::Admin,
        true,
        TokenScope::ReadWrite,
    )
    .await
}

/// Creates a plan `slug` with these limits and assigns it to `user` (as an administrator would).
async fn downgrade(app: &TestApp, admin: &Actor, user: Uuid, slug: &str, limits: Value) {
    let limits = limits
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    plans::actions::create(
        admin,
        &app.ctx,
        &PlanInput {
            slug: Some(slug.into()),
            name: Some(slug.to_uppercase()),
            limits,
            ..PlanInput::default()
        },
    )
    .await
    .unwrap();
    plans::actions::assign(
        admin,
        &app.ctx,
        user,
        &Assignment {
            plan: Some(slug.into()),
            reason: Some("downgrade".into()),
            ..Assignment::default()
        },
    )
    .await
    .unwrap();
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[tokio::test]
async fn plans_overage_runs_get_a_grace_then_the_newest_go_reduce_only_until_stopped_within_the_limit()
 {
    let sink = SmtpSink::start().await;
    let clock = Clock::manual(Utc::now().trunc_subsecs(0));
    let app = spawn_app_with_clock(
        Options {
            workers: true,
            env: vec![
                ("SMTP_URL", sink.url()),
                ("MARKET_DATA_URL", "http://127.0.0.1:9".into()),
                ("PAPER_WARMUP_BARS", "100".into()),
                ("PAPER_TICK_SECS", "3600".into()),
            ],
        },
        clock.clone(),
    )
    .await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let root = admin(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let bob = trader(&app, "bob@example.org").await;
    let (ann_id, bob_id) = (ann.user_id().unwrap(), bob.user_id().unwrap());
    let s = strategy(&app, &ann, SMA).await;
    let bob_s = strategy(&app, &bob, SMA).await;
    // Three runs started in this order (the last is the newest), and Bob's.
    let r1 = start(&app, &ann, &new_run(s, inst)).await;
    let r2 = start(&app, &ann, &new_run(s, inst)).await;
    let r3 = start(&app, &ann, &new_run(s, inst)).await;
    let b1 = start(&app, &bob, &new_run(bob_s, inst)).await;
    let k = std::cell::Cell::new(0);
    let feed = |n: usize| {
        let part = live.slice(k.get()..k.get() + n);
        k.set(k.get() + n);
        part
    };
    store_candles(&app, inst, &feed(20)).await;
    advance(&app, inst).await;

    // Ann's plan goes down to one active run: she is over by two. Nothing changes yet; she is told when the
    // grace period ends, what happens then and how to avoid it.
    let t0 = clock.now();
    downgrade(
        &app,
        &root,
        ann_id,
        "one-run",
        json!({ "active_paper_runs": 1 }),
    )
    .await;
    let mine = plans::actions::mine(&ann, &app.ctx).await.unwrap();
    assert_eq!(mine.overages.len(), 1, "{:?}", mine.overages);
    let o = &mine.overages[0];
    assert_eq!(
        (o.limit.key(), o.usage, o.allowed, o.enforced_at),
        ("active_paper_runs", 3, 1, None)
    );
    assert_eq!(o.grace_ends_at, t0 + chrono::Duration::days(7));
    assert!(o.restricted.is_empty());
    let ends = utc(o.grace_ends_at);
    let mail = sink
        .wait_for_text(
            "ann@example.org",
            &[
                "limit of active paper runs",
                &ends,
                "reduce-only",
                "stop paper runs",
            ],
            Duration::from_secs(30),
        )
        .await;
    assert!(mail.contains("/account/plan"), "{mail}");
    assert!(mail.contains("/notifications/settings"), "{mail}");
    let n = notices(&app, ann_id).await;
    assert_eq!(n.len(), 1);
    assert_eq!(
        (&n[0]["stage"], &n[0]["usage"]),
        (&json!("grace"), &json!(3))
    );
    // The REST view says the same.
    let token = backend::auth::api_token::create(&app.ctx.db, ann_id, "t", TokenScope::Read, None)
        .await
        .unwrap()
        .unwrap()
        .1;
    let (status, me) = rest(&app, Method::GET, "/api/v1/me/plan", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["overages"][0]["state"], "grace");
    assert_eq!(me["overages"][0]["limit"], "active_paper_runs");
    // During the grace, every run trades as before.
    let tg = live.time[k.get()];
    store_candles(&app, inst, &feed(5)).await;
    advance(&app, inst).await;
    for r in [r1, r2, r3] {
        assert!(gates_since(&app, r, tg).await.iter().all(|g| g == "open"));
    }
    // A sweep inside the grace changes nothing.
    clock.advance(chrono::Duration::days(6));
    plans::overage::sweep(&app.ctx).await.unwrap();
    assert!(
        plans::actions::mine(&ann, &app.ctx).await.unwrap().overages[0]
            .enforced_at
            .is_none()
    );

    // Wait for a moment the runs hold a position (the three are identical), so an exit can be seen.
    let mut holding = false;
    for _ in 0..300 {
        store_candles(&app, inst, &feed(1)).await;
        advance(&app, inst).await;
        if act::get(&ann, &app.ctx, Owner::Me, r3)
            .await
            .unwrap()
            .position
            .is_some()
        {
            holding = true;
            break;
        }
    }
    assert!(holding, "the strategy never entered a position");

    // The grace period ends: the sweep puts the two newest runs under the plan's reduce-only gate.
    clock.advance(chrono::Duration::days(2));
    plans::overage::sweep(&app.ctx).await.unwrap();
    let mine = plans::actions::mine(&ann, &app.ctx).await.unwrap();
    let o = &mine.overages[0];
    assert!(o.enforced_at.is_some());
    let restricted: Vec<Uuid> = o.restricted.iter().map(|r| r.id).collect();
    assert_eq!(restricted, vec![r3, r2], "newest first");
    assert!(
        o.restricted[0].name.contains("SMA 3/8 on ETHBTC 5m"),
        "{o:?}"
    );
    sink.wait_for_text(
        "ann@example.org",
        &["the excess is now read-only", "SMA 3/8 on ETHBTC 5m"],
        Duration::from_secs(30),
    )
    .await;
    for (r, gate) in [(r1, "open"), (r2, "reduce_only"), (r3, "reduce_only")] {
        let d = act::get(&ann, &app.ctx, Owner::Me, r).await.unwrap();
        assert_eq!(d.effective_gate, gate, "{r}");
        assert_eq!(d.plan_gate.is_some(), gate == "reduce_only", "{r}");
        assert!(
            d.kill_switches.is_empty(),
            "a plan gate is not a kill switch"
        );
    }
    // Data keeps flowing: every run processes the next candles; the restricted ones open nothing new but
    // close what they hold, the oldest trades as before, and Bob's run is untouched.
    let te = live.time[k.get()];
    let mut exited = false;
    for _ in 0..20 {
        store_candles(&app, inst, &feed(10)).await;
        advance(&app, inst).await;
        if fills_since(&app, r3, "sell", te).await > 0 && fills_since(&app, r1, "buy", te).await > 0
        {
            exited = true;
            break;
        }
    }
    assert!(
        exited,
        "the restricted run never exited or the free one never entered again"
    );
    for r in [r2, r3] {
        let g = gates_since(&app, r, te).await;
        assert!(
            !g.is_empty() && g.iter().all(|g| g == "reduce_only"),
            "{g:?}"
        );
        assert_eq!(fills_since(&app, r, "buy", te).await, 0, "no new entries");
        assert!(
            fills_since(&app, r, "sell", te).await > 0,
            "exits still close"
        );
    }
    assert!(gates_since(&app, r1, te).await.iter().all(|g| g == "open"));
    assert!(gates_since(&app, b1, te).await.iter().all(|g| g == "open"));
    assert!(fills_since(&app, b1, "buy", te).await > 0);

    // Ann cannot lift the plan gate: there is no switch to release, and her own switch on the run, thrown and
    // released, leaves it on.
    assert!(
        act::switches(&ann, &app.ctx, false)
            .await
            .unwrap()
            .is_empty()
    );
    let mine_switch = act::throw_switch(&ann, &app.ctx, Scope::Run(r3), "halt", "mine")
        .await
        .unwrap();
    act::release_switch(&ann, &app.ctx, mine_switch.switch_id, Some("done"))
        .await
        .unwrap();
    let d = act::get(&ann, &app.ctx, Owner::Me, r3).await.unwrap();
    assert_eq!(d.effective_gate, "reduce_only");
    assert!(d.plan_gate.is_some());
    // … nor start another run (the plan's limit refuses it).
    let e = act::start(&ann, &app.ctx, Owner::Me, &new_run(s, inst))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "plan_limit", "{e}");

    // Stopping is always allowed. Stopping the newest leaves her over by one: the next newest stays gated.
    act::control(
        &ann,
        &app.ctx,
        Owner::Me,
        r3,
        Command::Stop { flatten: false },
    )
    .await
    .unwrap();
    let mine = plans::actions::mine(&ann, &app.ctx).await.unwrap();
    assert_eq!(mine.overages.len(), 1);
    assert_eq!(mine.overages[0].usage, 2);
    let restricted: Vec<Uuid> = mine.overages[0].restricted.iter().map(|r| r.id).collect();
    assert_eq!(restricted, vec![r2]);
    // Stopping another brings her within the limit: resolved, every gate lifted, and she is told.
    act::control(
        &ann,
        &app.ctx,
        Owner::Me,
        r2,
        Command::Stop { flatten: false },
    )
    .await
    .unwrap();
    assert!(
        plans::actions::mine(&ann, &app.ctx)
            .await
            .unwrap()
            .overages
            .is_empty()
    );
    let d = act::get(&ann, &app.ctx, Owner::Me, r1).await.unwrap();
    assert_eq!(d.effective_gate, "open");
    assert!(d.plan_gate.is_none());
    let tr = live.time[k.get()];
    store_candles(&app, inst, &feed(5)).await;
    advance(&app, inst).await;
    assert!(gates_since(&app, r1, tr).await.iter().all(|g| g == "open"));
    sink.wait_for_text(
        "ann@example.org",
        &["within your plan", "limit of active paper runs again"],
        Duration::from_secs(30),
    )
    .await;
    let stages: Vec<Value> = notices(&app, ann_id)
        .await
        .into_iter()
        .map(|n| n["stage"].clone())
        .collect();
    assert_eq!(
        stages,
        vec![json!("grace"), json!("enforced"), json!("resolved")]
    );
    for event in [
        "plan_overage_started",
        "plan_overage_enforced",
        "plan_overage_restricted",
        "plan_overage_resolved",
    ] {
        assert_eq!(audits(&app, event).await, 1, "{event}");
    }
    // The overage stays on record, closed.
    let (resolved, enforced): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
        sqlx::query_as("select resolved_at, enforced_at from plan_overage where user_id = $1")
            .bind(ann_id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert!(resolved.is_some() && enforced.is_some());
    // Bob: no overage, no notice, his run untouched throughout.
    assert!(notices(&app, bob_id).await.is_empty());
    assert!(
        plans::actions::mine(&bob, &app.ctx)
            .await
            .unwrap()
            .overages
            .is_empty()
    );
    assert!(
        gates_since(&app, b1, live.time[0])
            .await
            .iter()
            .all(|g| g == "open")
    );
}

#[tokio::test]
async fn plans_overage_strategies_become_read_only_after_the_grace_and_deleting_one_resolves_it() {
    let clock = Clock::manual(Utc::now().trunc_subsecs(0));
    let app = spawn_app_with_clock(
        Options {
            workers: false,
            env: vec![],
        },
        clock.clone(),
    )
    .await;
    let instrument = candles(&app).await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let bob = person(&app, "bob@example.org", "trader").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(super::strategy_of(&app, &ann).await);
    }
    let (s1, s3) = (ids[0].clone(), ids[2].clone());
    let bob_s = super::strategy_of(&app, &bob).await;

    // Ann is on a plan with room; the plan is edited down to 2 strategies: the edit itself finds her over.
    let (status, plan) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/plans",
        Some(&root.token),
        Some(json!({ "slug": "small", "name": "Small", "limits": { "strategies": 10 } })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    let (status, body) = rest(
        &app,
        Method::PUT,
        &format!("/api/v1/admin/users/{}/plan", ann.id),
        Some(&root.token),
        Some(json!({ "plan": "small" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["overages"], json!([]));
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/plans/{}", plan["id"].as_str().unwrap()),
        Some(&root.token),
        Some(json!({ "limits": { "strategies": 2 } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, me) = rest(&app, Method::GET, "/api/v1/me/plan", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let o = &me["overages"][0];
    assert_eq!(
        (&o["limit"], &o["state"], &o["usage"], &o["allowed"]),
        (&json!("strategies"), &json!("grace"), &json!(3), &json!(2)),
        "{me}"
    );
    // The admin sees it too, over REST and on the user's page.
    let (status, theirs) = rest(
        &app,
        Method::GET,
        &format!("/api/v1/admin/users/{}/plan", ann.id),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(theirs["overages"], me["overages"]);
    let page = page_text(&app, &root.browser, &format!("/admin/users/{}", ann.id)).await;
    assert!(page.contains(r#"id="plan-overages""#) && page.contains("grace period until"));
    // And the trader's plan page.
    let page = page_text(&app, &ann.browser, "/account/plan").await;
    assert!(page.contains(r#"id="plan-overages""#) && page.contains(r#"data-state="grace""#));

    // During the grace the newest strategy is still editable.
    let edit = |src: &str| json!({ "source": format!("{}\n# {src}\n", backend::backtest::strategies::blank_source()) });
    let (status, body) = rest(
        &app,
        Method::PUT,
        &format!("/api/v1/strategies/{s3}"),
        Some(&ann.token),
        Some(edit("during the grace")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // After the grace: the newest beyond the limit is read-only everywhere; the older ones are not.
    clock.advance(chrono::Duration::days(8));
    plans::overage::sweep(&app.ctx).await.unwrap();
    let (_, me) = rest(&app, Method::GET, "/api/v1/me/plan", Some(&ann.token), None).await;
    assert_eq!(me["overages"][0]["state"], "enforced");
    assert_eq!(me["overages"][0]["restricted"][0]["id"], json!(s3));
    assert_eq!(me["overages"][0]["restricted"][0]["kind"], "strategy");
    assert_eq!(me["overages"][0]["restricted"].as_array().unwrap().len(), 1);
    let (status, body) = rest(
        &app,
        Method::PUT,
        &format!("/api/v1/strategies/{s3}"),
        Some(&ann.token),
        Some(edit("after the grace")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["type"], "/api/problems/plan_read_only");
    assert_eq!(
        (&body["limit"], &body["usage"], &body["allowed"]),
        (&json!("strategies"), &json!(3), &json!(2))
    );
    assert!(
        body["detail"].as_str().unwrap().contains("read-only"),
        "{body}"
    );
    let (status, doc) = rest(
        &app,
        Method::GET,
        "/api/problems/plan_read_only",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&s3, instrument)),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("plan_read_only")),
        "{body}"
    );
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/paper-runs",
        Some(&ann.token),
        Some(json!({ "strategy_id": s3, "instrument_ids": [instrument], "timeframe": "5m", "fee": 0.001 })),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("plan_read_only")),
        "{body}"
    );
    // Reading it is allowed, and says why it is read-only.
    let (status, body) = rest(
        &app,
        Method::GET,
        &format!("/api/v1/strategies/{s3}"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["read_only"]["limit"], "strategies", "{body}");
    // The older ones work as before.
    let (status, body) = rest(
        &app,
        Method::PUT,
        &format!("/api/v1/strategies/{s1}"),
        Some(&ann.token),
        Some(edit("an older one")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&s1, instrument)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // The browser: the editor is read-only with the reason; a posted save goes back with the message in
    // place (the typed source kept as the draft); the backtest form shows the refusal in place.
    let page = page_text(&app, &ann.browser, &format!("/strategies/{s3}")).await;
    assert!(page.contains(r#"id="read-only-notice""#), "{page}");
    assert!(!page.contains(r#"id="save-strategy""#));
    let resp = post_form(
        &app,
        &ann.browser,
        &format!("/strategies/{s3}"),
        &format!("/strategies/{s3}/save"),
        &[("source", "let x = 1\n# typed in the browser\n")],
    )
    .await;
    let loc = location(&resp);
    assert!(loc.ends_with("error=strategy_read_only"), "{loc}");
    let page = page_text(&app, &ann.browser, &loc).await;
    assert!(
        page.contains("your edit is kept as its draft"),
        "the flash says why: {page}"
    );
    let draft: Option<String> =
        sqlx::query_scalar("select draft_source from strategy where strategy_id = $1::uuid")
            .bind(&s3)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert!(draft.is_some_and(|d| d.contains("typed in the browser")));
    let resp = post_form(
        &app,
        &ann.browser,
        "/",
        "/backtests/create",
        &[
            ("strategy_id", &s3),
            ("timeframe", "5m"),
            ("instrument_id", &instrument.to_string()),
            ("from", "2019-10-11"),
            ("to", "2019-10-11"),
            ("initial_cash", "10000"),
            ("fee_pct", "0.1"),
            ("slippage_bps", "0"),
            ("fill", "next_open"),
        ],
    )
    .await;
    let loc = location(&resp);
    assert!(loc.contains("failed=1"), "{loc}");
    let page = page_text(&app, &ann.browser, &loc).await;
    assert!(
        page.contains("this strategy is read-only") && page.contains(r#"href="/account/plan""#),
        "the form shows the refusal in place"
    );

    // Archiving is allowed but archived strategies count: still over.
    let (status, _) = rest(
        &app,
        Method::DELETE,
        &format!("/api/v1/strategies/{s3}"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, me) = rest(&app, Method::GET, "/api/v1/me/plan", Some(&ann.token), None).await;
    assert_eq!(me["overages"][0]["state"], "enforced");
    // Deleting it for good brings her within the limit: resolved in the same request, nothing restricted.
    let (status, body) = rest(
        &app,
        Method::DELETE,
        &format!("/api/v1/strategies/{s3}?permanent=true"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, me) = rest(&app, Method::GET, "/api/v1/me/plan", Some(&ann.token), None).await;
    assert_eq!(me["overages"], json!([]), "{me}");
    let (status, _) = rest(
        &app,
        Method::GET,
        &format!("/api/v1/strategies/{s3}"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(audits(&app, "strategy_deleted").await, 1);
    assert_eq!(audits(&app, "plan_overage_resolved").await, 1);
    let stages: Vec<String> = sqlx::query_scalar(
        "select payload->>'stage' from notify_event where event_type = 'billing.over_limit' and user_id = $1
          order by created_at",
    )
    .bind(ann.id)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(stages, ["grace", "enforced", "resolved"]);
    // A strategy with a backtest still running cannot be deleted (open work is never killed).
    let (status, body) = rest(
        &app,
        Method::DELETE,
        &format!("/api/v1/strategies/{s1}?permanent=true"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::CONFLICT, &json!("conflict")),
        "{body}"
    );
    // Another user's strategy cannot be deleted (not even seen): 404 (review 47, LOW 12).
    let (status, body) = rest(
        &app,
        Method::DELETE,
        &format!("/api/v1/strategies/{bob_s}?permanent=true"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Bob was never affected.
    let (status, body) = rest(
        &app,
        Method::PUT,
        &format!("/api/v1/strategies/{bob_s}"),
        Some(&bob.token),
        Some(edit("bob")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let n: i64 = sqlx::query_scalar("select count(*) from plan_overage where user_id = $1")
        .bind(bob.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn plans_overage_with_no_grace_period_the_excess_is_read_only_at_once() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![("PLAN_GRACE_DAYS", "0".into())],
    })
    .await;
    let root = admin(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let ann_id = ann.user_id().unwrap();
    let s1 = strategy(&app, &ann, SMA).await;
    let s2 = strategy(&app, &ann, SMA).await;
    downgrade(&app, &root, ann_id, "one", json!({ "strategies": 1 })).await;
    let mine = plans::actions::mine(&ann, &app.ctx).await.unwrap();
    let o = &mine.overages[0];
    assert!(o.enforced_at.is_some(), "{o:?}");
    assert_eq!(o.grace_ends_at, o.started_at);
    assert_eq!(
        o.restricted.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![s2]
    );
    let save = |id| {
        backend::backtest::actions::strategies::save(
            &ann,
            &app.ctx,
            id,
            backend::backtest::strategies::SaveStrategy {
                name: Some("renamed".into()),
                description: None,
                source: None,
                base_version: None,
                draft_rev: None,
            },
        )
    };
    assert_eq!(save(s2).await.unwrap_err().code(), "plan_read_only");
    save(s1).await.unwrap();
    // One notice: it is read-only now (no grace notice before it).
    let stages: Vec<String> = sqlx::query_scalar(
        "select payload->>'stage' from notify_event where event_type = 'billing.over_limit' and user_id = $1",
    )
    .bind(ann_id)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(stages, ["enforced"]);
    // An override that raises the limit lifts it in the same action.
    plans::actions::assign(
        &root,
        &app.ctx,
        ann_id,
        &Assignment {
            plan: Some("one".into()),
            overrides: [("strategies".to_owned(), Some(json!(5)))].into(),
            ..Assignment::default()
        },
    )
    .await
    .unwrap();
    assert!(
        plans::actions::mine(&ann, &app.ctx)
            .await
            .unwrap()
            .overages
            .is_empty()
    );
    save(s2).await.unwrap();
}

/// Review 47, MEDIUM 4: a further cut while the excess is already read-only gets a grace period of its own for
/// the extra excess (and a notice); what was read-only stays so, the rest follows when that grace ends.
#[tokio::test]
async fn plans_overage_a_further_cut_while_enforced_gets_a_new_grace_and_a_notice() {
    let clock = Clock::manual(Utc::now().trunc_subsecs(0));
    let app = spawn_app_with_clock(
        Options {
            workers: false,
            env: vec![],
        },
        clock.clone(),
    )
    .await;
    let root = admin(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let ann_id = ann.user_id().unwrap();
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(strategy(&app, &ann, SMA).await);
        clock.advance(chrono::Duration::seconds(1));
    }
    downgrade(&app, &root, ann_id, "three", json!({ "strategies": 3 })).await;
    clock.advance(chrono::Duration::days(8));
    plans::overage::sweep(&app.ctx).await.unwrap();
    assert_eq!(restricted_ids(&app, &ann).await, vec![ids[3]]);
    // Cut to 1: a new grace, a notice; only the newest stays read-only meanwhile.
    let t_cut = clock.now();
    downgrade(&app, &root, ann_id, "one", json!({ "strategies": 1 })).await;
    let mine = plans::actions::mine(&ann, &app.ctx).await.unwrap();
    let o = &mine.overages[0];
    assert!(o.grace_ends_at > t_cut, "{o:?}");
    assert_eq!(restricted_ids(&app, &ann).await, vec![ids[3]]);
    let stages: Vec<(String, i64)> = notices(&app, ann_id)
        .await
        .iter()
        .map(|p| {
            (
                p["stage"].as_str().unwrap().to_owned(),
                p["allowed"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("grace".into(), 3),
            ("enforced".into(), 3),
            ("grace".into(), 1)
        ]
    );
    // Inside that grace a sweep changes nothing; after it, the extra excess is read-only too.
    clock.advance(chrono::Duration::days(6));
    plans::overage::sweep(&app.ctx).await.unwrap();
    assert_eq!(restricted_ids(&app, &ann).await, vec![ids[3]]);
    clock.advance(chrono::Duration::days(2));
    plans::overage::sweep(&app.ctx).await.unwrap();
    assert_eq!(
        restricted_ids(&app, &ann).await,
        vec![ids[3], ids[2], ids[1]]
    );
    let last = notices(&app, ann_id).await;
    let last = last.last().unwrap();
    assert_eq!(
        (last["stage"].as_str(), last["allowed"].as_i64()),
        (Some("enforced"), Some(1))
    );
}

async fn restricted_ids(app: &TestApp, who: &Actor) -> Vec<Uuid> {
    let mine = plans::actions::mine(who, &app.ctx).await.unwrap();
    mine.overages[0].restricted.iter().map(|r| r.id).collect()
}

/// Review 47, MEDIUM 1: stops racing plan assignments (each reconciling the same user, with gate changes as
/// the grace is 0) never fail, and the overage ends consistent.
#[tokio::test]
async fn plans_overage_stops_racing_assignments_never_fail() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![
            ("PLAN_GRACE_DAYS", "0".into()),
            ("MARKET_DATA_URL", "http://127.0.0.1:9".into()),
            ("PAPER_WARMUP_BARS", "100".into()),
        ],
    })
    .await;
    let (history, _) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let root = admin(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let ann_id = ann.user_id().unwrap();
    let s = strategy(&app, &ann, SMA).await;
    let mut runs = Vec::new();
    for _ in 0..6 {
        runs.push(start(&app, &ann, &new_run(s, inst)).await);
    }
    downgrade(
        &app,
        &root,
        ann_id,
        "base",
        json!({ "active_paper_runs": 1 }),
    )
    .await;
    let assigns = async {
        for i in 0..12 {
            plans::actions::assign(
                &root,
                &app.ctx,
                ann_id,
                &Assignment {
                    plan: Some("base".into()),
                    overrides: [(
                        "active_paper_runs".to_owned(),
                        Some(json!(if i % 2 == 0 { 2 } else { 1 })),
                    )]
                    .into(),
                    ..Assignment::default()
                },
            )
            .await
            .unwrap();
        }
    };
    let stops = async {
        for &r in runs.iter().rev() {
            act::control(
                &ann,
                &app.ctx,
                Owner::Me,
                r,
                Command::Stop { flatten: false },
            )
            .await
            .unwrap();
        }
    };
    let sweeps = async {
        for _ in 0..6 {
            let swept = plans::overage::sweep(&app.ctx).await.unwrap();
            assert_eq!(swept.failed, 0, "{swept:?}");
        }
    };
    tokio::join!(assigns, stops, sweeps);
    plans::overage::sweep(&app.ctx).await.unwrap();
    let mine = plans::actions::mine(&ann, &app.ctx).await.unwrap();
    assert!(mine.overages.is_empty(), "{:?}", mine.overages);
}
