//! The strategy and backtest policy, rule by rule, called on the backend actions DIRECTLY
//! (`backend::backtest::actions`) as each kind of actor: anonymous, viewer, read-only token, unverified
//! trader, confirmed trader, another trader, admin and the system. Each case asserts the decision (the error
//! code) and that the audit entry exists if and only if the effect committed.

use std::path::Path;

use backend::{
    Actor, Surface,
    auth::{RequestMeta, Role, Scope},
    backtest::{
        actions::{exports, runs, strategies, upload},
        runs::NewRun,
        strategies::NewStrategy,
    },
    market::{Pair, csv_import},
};
use uuid::Uuid;

use crate::helpers::{Options, TestApp, spawn_app_with};

/// Everyone the rules are about, as actors of the REST surface (the surface does not change a decision).
struct Cast {
    anonymous: Actor,
    viewer: Actor,
    read_only: Actor,
    unverified: Actor,
    trader: Actor,
    other: Actor,
    admin: Actor,
    system: Actor,
}

async fn person(app: &TestApp, email: &str, role: Role, verified: bool, scope: Scope) -> Actor {
    crate::helpers::api_actor(&app.ctx, email, role, verified, scope).await
}

async fn cast(app: &TestApp) -> Cast {
    let rw = Scope::ReadWrite;
    Cast {
        anonymous: Actor::anonymous(Surface::Api, RequestMeta::new("127.0.0.1", "tests"), None),
        viewer: person(app, "viewer@example.org", Role::Viewer, true, rw).await,
        read_only: person(app, "ro@example.org", Role::Trader, true, Scope::Read).await,
        unverified: person(app, "new@example.org", Role::Trader, false, rw).await,
        trader: person(app, "ann@example.org", Role::Trader, true, rw).await,
        other: person(app, "bob@example.org", Role::Trader, true, rw).await,
        admin: person(app, "root@example.org", Role::Admin, true, rw).await,
        system: Actor::system(Surface::Cli),
    }
}

async fn app() -> TestApp {
    spawn_app_with(Options {
        workers: false,
        env: vec![("BACKTEST_MAX_CONCURRENT", "2".into())],
    })
    .await
}

/// Imports the XRP/ETH 5m demo candles (2019-10-11 to 2019-10-13); returns the instrument id.
async fn candles(app: &TestApp) -> i32 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/XRP-ETH-5m.csv");
    let opts = csv_import::ImportOptions {
        exchange: "binance".into(),
        pair: Pair::parse("XRP/ETH").unwrap(),
        timeframe: None,
        skip_bad_rows: false,
    };
    csv_import::import_file(&app.ctx.db, &path, &opts)
        .await
        .unwrap()
        .instrument_id
}

/// Audit entries of `event` recorded for this actor's user.
async fn audited(app: &TestApp, event: &str, actor: &Actor) -> i64 {
    sqlx::query_scalar(
        "select count(*) from audit_event where event = $1 and actor_id is not distinct from $2",
    )
    .bind(event)
    .bind(actor.user_id())
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

fn template(name: &str) -> NewStrategy {
    NewStrategy {
        name: None,
        description: None,
        template: Some(name.into()),
        source: None,
    }
}

fn run_request(strategy: Uuid, instrument: i32) -> NewRun {
    NewRun {
        strategy_id: strategy,
        version: None,
        params: Vec::new(),
        instrument_ids: vec![instrument],
        timeframe: "5m".into(),
        from: "2019-10-11".into(),
        to: "2019-10-12".into(),
        initial_cash: 10_000.0,
        fee: 0.001,
        slippage_bps: 0.0,
        fill: "next_open".into(),
    }
}

#[tokio::test]
async fn policy_backtests_strategy_writes_need_a_writer_and_are_audited_with_their_effect() {
    let app = app().await;
    let c = cast(&app).await;
    let ctx = &app.ctx;
    for (who, actor, expected) in [
        ("anonymous", &c.anonymous, "unauthorized"),
        ("viewer", &c.viewer, "forbidden"),
        ("read-only token", &c.read_only, "forbidden"),
        ("system", &c.system, "unauthorized"),
        ("unverified trader", &c.unverified, "ok"),
        ("trader", &c.trader, "ok"),
        ("admin", &c.admin, "ok"),
    ] {
        let before = audited(&app, "strategy_created", actor).await;
        let r = strategies::create(actor, ctx, template("macd")).await;
        assert_eq!(code(&r), expected, "{who}: {r:?}");
        let after = audited(&app, "strategy_created", actor).await;
        assert_eq!(
            after - before,
            i64::from(r.is_ok()),
            "{who}: audit iff created"
        );
    }
    let mine = strategies::create(&c.trader, ctx, template("rsi"))
        .await
        .unwrap();
    // Another trader sees "not found" for every action on the first trader's strategy, and nothing is audited.
    let other = &c.other;
    assert_eq!(code(&strategies::get(other, ctx, mine).await), "not_found");
    assert_eq!(
        code(&strategies::set_archived(other, ctx, mine, true).await),
        "not_found"
    );
    assert_eq!(
        code(&strategies::duplicate(other, ctx, mine).await),
        "not_found"
    );
    assert_eq!(
        code(&strategies::discard_draft(other, ctx, mine).await),
        "not_found"
    );
    assert_eq!(audited(&app, "strategy_archived", other).await, 0);
    assert_eq!(audited(&app, "strategy_created", other).await, 0);
    // A viewer may read their own strategies but not archive them.
    assert_eq!(code(&strategies::list(&c.viewer, ctx, true).await), "ok");
    assert_eq!(
        code(&strategies::list(&c.anonymous, ctx, true).await),
        "unauthorized"
    );
    // The owner archives (audited in the same transaction) and restores.
    strategies::set_archived(&c.trader, ctx, mine, true)
        .await
        .unwrap();
    assert_eq!(audited(&app, "strategy_archived", &c.trader).await, 1);
    strategies::set_archived(&c.trader, ctx, mine, false)
        .await
        .unwrap();
    assert_eq!(audited(&app, "strategy_restored", &c.trader).await, 1);
    let copy = strategies::duplicate(&c.trader, ctx, mine).await.unwrap();
    let detail: serde_json::Value = sqlx::query_scalar(
        "select detail from audit_event where event = 'strategy_created' and detail->>'strategy_id' = $1",
    )
    .bind(copy.to_string())
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(detail["duplicate_of"], mine.to_string());
    assert_eq!(detail["surface"], "api");
}

#[tokio::test]
async fn policy_backtests_runs_need_a_confirmed_runner_respect_the_limit_and_are_audited() {
    let app = app().await;
    let c = cast(&app).await;
    let ctx = &app.ctx;
    let instrument = candles(&app).await;
    let strategy = strategies::create(&c.trader, ctx, template("macd"))
        .await
        .unwrap();
    // The unverified trader's own strategy: refused for the address, not the strategy.
    let theirs = strategies::create(&c.unverified, ctx, template("macd"))
        .await
        .unwrap();
    for (who, actor, sid, expected) in [
        ("anonymous", &c.anonymous, strategy, "unauthorized"),
        ("viewer", &c.viewer, strategy, "forbidden"),
        ("read-only token", &c.read_only, strategy, "forbidden"),
        ("system", &c.system, strategy, "unauthorized"),
        (
            "unverified trader",
            &c.unverified,
            theirs,
            "email_unconfirmed",
        ),
        ("another trader", &c.other, strategy, "not_found"),
        ("admin (not theirs)", &c.admin, strategy, "not_found"),
    ] {
        let r = runs::submit(actor, ctx, &run_request(sid, instrument)).await;
        assert_eq!(code(&r), expected, "{who}: {r:?}");
        assert_eq!(audited(&app, "backtest_started", actor).await, 0, "{who}");
    }
    let rows: i64 = sqlx::query_scalar("select count(*) from backtest_run")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(rows, 0, "a refused submission queued a run");

    // The owner's runs: queued and audited, up to the limit (2 here), then `plan_limit` and no audit.
    let first = runs::submit(&c.trader, ctx, &run_request(strategy, instrument))
        .await
        .unwrap();
    runs::submit(&c.trader, ctx, &run_request(strategy, instrument))
        .await
        .unwrap();
    assert_eq!(audited(&app, "backtest_started", &c.trader).await, 2);
    let over = runs::submit(&c.trader, ctx, &run_request(strategy, instrument)).await;
    assert_eq!(code(&over), "plan_limit", "{over:?}");
    assert!(matches!(over, Err(backend::Error::PlanLimit(_))));
    assert_eq!(audited(&app, "backtest_started", &c.trader).await, 2);

    // "to 2019-10-12" includes the 12th: the stored range ends at the next midnight.
    let run = first.run_ids[0];
    let detail = runs::get(&c.trader, ctx, run).await.unwrap();
    assert_eq!(
        detail.summary.range_to.to_rfc3339(),
        "2019-10-13T00:00:00+00:00"
    );

    // The results of a queued run are "not finished" for its owner, "not found" for anyone else.
    assert_eq!(
        code(&runs::result(&c.trader, ctx, run).await),
        "not_finished"
    );
    assert_eq!(
        code(&runs::chart(&c.trader, ctx, run).await),
        "not_finished"
    );
    let page = runs::TradePage {
        sort: None,
        dir: None,
        limit: 10,
        offset: 0,
        max_limit: 100,
    };
    let trades = runs::trades(&c.trader, ctx, run, &page).await;
    assert!(
        matches!(trades, Err(backend::Error::NotFinished(_))),
        "{trades:?}"
    );
    assert_eq!(
        code(&runs::trades(&c.other, ctx, run, &page).await),
        "not_found"
    );
    assert_eq!(
        code(&runs::trades(&c.anonymous, ctx, run, &page).await),
        "unauthorized"
    );
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
    assert_eq!(
        code(&exports::admit(&c.trader, ctx, &slots, run).await),
        "not_finished"
    );
    assert_eq!(
        code(&exports::admit(&c.other, ctx, &slots, run).await),
        "not_found"
    );
    assert_eq!(code(&runs::get(&c.other, ctx, run).await), "not_found");
    assert_eq!(code(&runs::get(&c.viewer, ctx, run).await), "not_found");

    // Cancelling: a writer who owns the run; audited once; a finished run is a conflict, not audited again.
    assert_eq!(code(&runs::cancel(&c.other, ctx, run).await), "not_found");
    assert_eq!(
        code(&runs::cancel(&c.read_only, ctx, run).await),
        "forbidden"
    );
    assert_eq!(
        code(&runs::cancel(&c.anonymous, ctx, run).await),
        "unauthorized"
    );
    runs::cancel(&c.trader, ctx, run).await.unwrap();
    assert_eq!(audited(&app, "backtest_cancelled", &c.trader).await, 1);
    assert_eq!(code(&runs::cancel(&c.trader, ctx, run).await), "conflict");
    assert_eq!(audited(&app, "backtest_cancelled", &c.trader).await, 1);
    assert_eq!(audited(&app, "backtest_cancelled", &c.other).await, 0);
    // The slot freed by the cancel takes a new run.
    runs::submit(&c.trader, ctx, &run_request(strategy, instrument))
        .await
        .unwrap();
}

#[tokio::test]
async fn policy_backtests_the_trace_rate_limit_is_the_actions_whatever_the_surface() {
    let app = app().await;
    let c = cast(&app).await;
    let ctx = &app.ctx;
    let instrument = candles(&app).await;
    let strategy = strategies::create(&c.trader, ctx, template("macd"))
        .await
        .unwrap();
    let run = runs::submit(&c.trader, ctx, &run_request(strategy, instrument))
        .await
        .unwrap()
        .run_ids[0];
    assert_eq!(
        code(&runs::trace(&c.anonymous, ctx, run, 0, 0).await),
        "unauthorized"
    );
    assert_eq!(
        code(&runs::trace(&c.trader, ctx, run, 0, -1).await),
        "invalid_input"
    );
    // Every request counts, from any surface: the web actor's and the API actor's requests share the limit.
    let web = Actor::user(
        c.trader.auth_user().unwrap().clone(),
        Surface::Web,
        RequestMeta::new("127.0.0.1", "tests"),
        None,
    );
    let per_minute = backend::backtest::runs::TRACE_RATE_PER_MINUTE;
    let mut refused = None;
    for i in 0..=2 * per_minute {
        let actor = if i % 2 == 0 { &web } else { &c.trader };
        let r = runs::trace(actor, ctx, run, 0, 0).await;
        if code(&r) == "rate_limited" {
            refused = Some(i);
            break;
        }
        assert_eq!(code(&r), "not_finished", "request {i}: {r:?}");
    }
    // A minute boundary may reset the window once; the limit is reached within two windows' worth.
    assert!(refused.is_some_and(|i| i >= per_minute), "{refused:?}");
}

#[tokio::test]
async fn policy_backtests_candle_uploads_are_for_admins_and_the_operator() {
    let app = app().await;
    let c = cast(&app).await;
    for (who, actor, expected) in [
        ("anonymous", &c.anonymous, "unauthorized"),
        ("viewer", &c.viewer, "forbidden"),
        ("trader", &c.trader, "forbidden"),
        ("admin", &c.admin, "ok"),
        ("system", &c.system, "ok"),
    ] {
        assert_eq!(code(&upload::admit(actor)), expected, "{who}");
    }
    let opts = csv_import::ImportOptions {
        exchange: "upload".into(),
        pair: Pair::parse("ABC/XYZ").unwrap(),
        timeframe: None,
        skip_bad_rows: false,
    };
    let text = "timestamp,open,high,low,close,volume\n2020-01-01T00:00:00Z,1,2,0.5,1.5,10\n2020-01-01T00:01:00Z,1.5,2,1,1.2,11\n";
    let refused = upload::import_csv(&c.trader, &app.ctx, text, "t.csv", 10, &opts).await;
    assert_eq!(code(&refused), "forbidden");
    let candles: i64 = sqlx::query_scalar("select count(*) from candle")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(candles, 0);
    assert_eq!(audited(&app, "market_data_uploaded", &c.trader).await, 0);
    let stored = upload::import_csv(&c.admin, &app.ctx, text, "t.csv", 10, &opts)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.rows, 2);
    assert_eq!(audited(&app, "market_data_uploaded", &c.admin).await, 1);
}
