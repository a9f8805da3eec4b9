//! Authorization in the browser: another trader gets not found everywhere, anonymous visitors are
//! sent to sign in, read-only or unconfirmed accounts cannot run.

use reqwest::{Client, StatusCode};
use uuid::Uuid;

use super::{
    FROM, TO, app, count, create_strategy, form, get_json, import_eth_btc, run_fields, sign_up,
    start_run, submit_run, trader, wait_finished, with,
};
use crate::{
    auth::{PASSWORD, browser, location, page_text, post_form, sign_in},
    helpers::TestApp,
};

/// A signed-in trader who never confirmed their email address.
async fn unverified(app: &TestApp, email: &str) -> Client {
    let client = browser();
    sign_up(app, &client, email).await;
    let resp = sign_in(app, &client, email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    client
}

async fn user_id(app: &TestApp, email: &str) -> Uuid {
    sqlx::query_scalar("select user_id from app_user where email = $1")
        .bind(email)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// 5. Authorization
// ---------------------------------------------------------------------------------------------------------

/// What the database holds about a user's strategies and runs (to prove nothing changed).
async fn snapshot(app: &TestApp) -> Vec<String> {
    let mut out: Vec<String> = sqlx::query_scalar(
        "select concat_ws('|', strategy_id, user_id, name, latest_version, draft_source, archived_at, updated_at) from strategy order by 1",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    out.extend(
        sqlx::query_scalar::<_, String>(
            "select concat_ws('|', strategy_version_id, version, source_hash) from strategy_version order by 1",
        )
        .fetch_all(&app.ctx.db)
        .await
        .unwrap(),
    );
    out.extend(
        sqlx::query_scalar::<_, String>(
            "select concat_ws('|', backtest_run_id, status, cancel_requested, updated_at) from backtest_run order by 1",
        )
        .fetch_all(&app.ctx.db)
        .await
        .unwrap(),
    );
    out.extend(
        sqlx::query_scalar::<_, String>(
            "select concat_ws('|', job_id, status, attempts) from job where kind = 'backtest' order by 1",
        )
        .fetch_all(&app.ctx.db)
        .await
        .unwrap(),
    );
    out
}

#[tokio::test]
async fn another_trader_gets_not_found_everywhere_anonymous_visitors_are_sent_to_sign_in_and_read_only_or_unconfirmed_accounts_cannot_run()
 {
    let app = app(true, vec![]).await;
    let instrument = import_eth_btc(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd").await;
    let fields = run_fields(strategy, instrument);
    let run = start_run(&app, &ann, &fields).await;
    assert_eq!(wait_finished(&app, &ann, run).await["status"], "done");
    // A draft, so discarding it would show.
    let resp = form(
        &app,
        &ann,
        &format!("/strategies/{strategy}/save"),
        &[("source", "entry long when"), ("base_version", "1")],
    )
    .await;
    assert!(location(&resp).ends_with("error=strategy_invalid"));
    let before = snapshot(&app).await;

    let bob = trader(&app, "bob@example.org").await;
    let bob_id = user_id(&app, "bob@example.org").await;
    // Form posts: an HTML 404 page, exactly as for ids that do not exist.
    for action in [
        format!("/strategies/{strategy}/save"),
        format!("/strategies/{strategy}/duplicate"),
        format!("/strategies/{strategy}/archive"),
        format!("/strategies/{strategy}/restore"),
        format!("/strategies/{strategy}/discard-draft"),
        format!("/backtests/{run}/cancel"),
        format!("/strategies/{}/archive", Uuid::new_v4()),
        format!("/backtests/{}/cancel", Uuid::new_v4()),
    ] {
        let resp = form(
            &app,
            &bob,
            &action,
            &[
                ("source", "# mine now\nentry long when close > 0\n"),
                ("name", "stolen"),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{action}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{action}"
        );
        let body = resp.text().await.unwrap();
        assert!(body.contains("Not found"), "{action}: {body}");
    }
    // Starting a run on someone else's strategy is refused exactly like a strategy that does not exist.
    let foreign = submit_run(&app, &bob, &fields).await;
    let missing = submit_run(
        &app,
        &bob,
        &with(&fields, "strategy_id", &Uuid::new_v4().to_string()),
    )
    .await;
    assert_eq!(foreign.status(), missing.status());
    let (foreign_loc, missing_loc) = (location(&foreign), location(&missing));
    assert!(foreign_loc.contains("failed=1"), "{foreign_loc}");
    assert!(
        !foreign_loc.contains(&strategy.to_string()),
        "{foreign_loc}"
    );
    let page = page_text(&app, &bob, &foreign_loc).await;
    assert!(page.contains("no such strategy"), "no clear message");
    assert!(
        !page.contains("MACD") && !page.contains("macd("),
        "ann's strategy leaked"
    );
    assert_eq!(
        foreign_loc, missing_loc,
        "someone else's strategy is distinguishable"
    );
    // JSON endpoints: 404 JSON.
    let first_entry: i64 = sqlx::query_scalar(
        "select (extract(epoch from entry_time) * 1000)::bigint from backtest_trade where backtest_run_id = $1 and seq = 1",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    for path in [
        format!("/backtests/{run}/status.json"),
        format!("/backtests/{run}/chart.json"),
        format!("/backtests/{run}/trace.json?time={first_entry}"),
        format!("/backtests/compare.json?ids={run}"),
        format!("/backtests/{}/status.json", Uuid::new_v4()),
        "/backtests/not-a-uuid/status.json".to_owned(),
    ] {
        let (code, body) = get_json(&app, &bob, &path).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "not_found", "{path}: {body}");
    }
    // Downloads: the HTML 404 page.
    for path in [
        format!("/backtests/{run}/trades.csv"),
        format!("/backtests/{run}/result.json"),
        format!("/backtests/{run}/report.html"),
    ] {
        let resp = bob.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            resp.headers().get("content-disposition").is_none(),
            "{path}"
        );
        let body = resp.text().await.unwrap();
        assert!(
            body.contains("Not found") && !body.contains("seq,"),
            "{path}"
        );
    }
    // Pages: the not-found view, nothing of ann's.
    for path in [
        format!("/strategies/{strategy}"),
        format!("/backtests/{run}"),
        format!("/backtests/compare?ids={run}&ids={run}"),
        format!("/backtests/new?strategy={strategy}"),
    ] {
        let resp = bob.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("not found"), "{path}");
        assert!(!body.contains("macd(close"), "{path}: ann's source leaked");
        assert!(
            !body.contains("Final equity"),
            "{path}: ann's result leaked"
        );
    }
    // Lists and server functions show bob nothing of ann's.
    for path in [
        "/strategies".to_owned(),
        "/strategies?archived=1".to_owned(),
        "/backtests".to_owned(),
        format!("/backtests?strategy={strategy}"),
    ] {
        let body = page_text(&app, &bob, &path).await;
        assert!(!body.contains(&strategy.to_string()), "{path}");
        assert!(!body.contains(&run.to_string()), "{path}");
    }
    for path in [
        format!("/api/strategy?id={strategy}"),
        format!("/api/run?id={run}"),
        format!("/api/compare?ids%5B0%5D={run}"),
        format!("/api/run_form?strategy={strategy}"),
    ] {
        let resp = bob.get(app.url(&path)).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(!status.is_success(), "{path}: {status} {body}");
        assert!(body.contains("not_found"), "{path}: {body}");
    }
    assert_eq!(
        count(
            &app,
            &format!("select count(*) from strategy where user_id = '{bob_id}'")
        )
        .await,
        0
    );
    assert_eq!(snapshot(&app).await, before, "bob changed ann's rows");

    // Anonymous: pages go to sign-in, JSON is 401, form posts go to sign-in.
    let anon = browser();
    for path in [
        "/strategies".to_owned(),
        format!("/strategies/{strategy}"),
        "/backtests".to_owned(),
        "/backtests/new".to_owned(),
        format!("/backtests/{run}"),
        format!("/backtests/compare?ids={run}"),
        format!("/backtests/{run}/trades.csv"),
        format!("/backtests/{run}/result.json"),
        format!("/backtests/{run}/report.html"),
    ] {
        let resp = anon.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            location(&resp).starts_with("/signin"),
            "{path}: {}",
            location(&resp)
        );
    }
    for path in [
        format!("/backtests/{run}/status.json"),
        format!("/backtests/{run}/chart.json"),
        format!("/backtests/{run}/trace.json?time={first_entry}"),
        format!("/backtests/compare.json?ids={run}"),
    ] {
        let (code, body) = get_json(&app, &anon, &path).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["code"], "unauthorized", "{path}");
    }
    for action in [
        "/strategies/create".to_owned(),
        format!("/strategies/{strategy}/archive"),
        "/backtests/create".to_owned(),
        format!("/backtests/{run}/cancel"),
    ] {
        let resp = post_form(&app, &anon, "/signin", &action, &[("template", "macd")]).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{action}");
        assert!(location(&resp).starts_with("/signin"), "{action}");
    }
    assert_eq!(
        snapshot(&app).await,
        before,
        "anonymous requests changed rows"
    );

    // A viewer (read-only account) sees but cannot create or run.
    let cleo = trader(&app, "cleo@example.org").await;
    let cleo_strategy = create_strategy(&app, &cleo, "rsi").await;
    sqlx::query("update app_user set role = 'viewer' where email = 'cleo@example.org'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let resp = form(&app, &cleo, "/strategies/create", &[("template", "macd")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().await.unwrap().contains("Read-only account"));
    let resp = form(
        &app,
        &cleo,
        &format!("/strategies/{cleo_strategy}/archive"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let cleo_fields = vec![
        ("strategy_id".to_owned(), cleo_strategy.to_string()),
        ("instrument_id".to_owned(), instrument.to_string()),
        ("timeframe".to_owned(), "5m".to_owned()),
        ("from".to_owned(), FROM.to_owned()),
        ("to".to_owned(), TO.to_owned()),
        ("initial_cash".to_owned(), "10000".to_owned()),
        ("fee_pct".to_owned(), "0.1".to_owned()),
        ("slippage_bps".to_owned(), "0".to_owned()),
    ];
    let resp = submit_run(&app, &cleo, &cleo_fields).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = page_text(
        &app,
        &cleo,
        &format!("/backtests/new?strategy={cleo_strategy}"),
    )
    .await;
    assert!(page.contains(r#"id="run-blocked""#) && page.contains("read-only"));
    assert!(
        page.contains(r#"id="start-backtest" disabled"#),
        "run button enabled"
    );
    let page = page_text(&app, &cleo, "/strategies").await;
    assert!(
        !page.contains(r#"id="new-strategy""#),
        "viewer sees the create form"
    );
    assert_eq!(
        count(&app, "select count(*) from strategy").await,
        2,
        "the viewer created a strategy"
    );

    // A trader who has not confirmed their email address cannot start a run, and is told why.
    let dan = unverified(&app, "dan@example.org").await;
    let dan_strategy = create_strategy(&app, &dan, "macd").await;
    let resp = submit_run(&app, &dan, &run_fields(dan_strategy, instrument)).await;
    let loc = location(&resp);
    assert!(loc.contains("failed=1"), "{loc}");
    let page = page_text(&app, &dan, &loc).await;
    assert!(
        page.contains("Confirm your email address"),
        "no clear message for an unconfirmed address"
    );
    let dan_id = user_id(&app, "dan@example.org").await;
    assert_eq!(
        count(
            &app,
            &format!("select count(*) from backtest_run where user_id = '{dan_id}'")
        )
        .await,
        0
    );
}
