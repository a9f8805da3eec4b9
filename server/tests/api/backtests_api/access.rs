//! Who may do what through the REST API: another trader gets 404 for everything of the first,
//! read-only tokens get 403 on every write, no token gets 401, and the per-user rate limit answers
//! 429 with `Retry-After`.

use std::time::Duration;

use backend::{
    auth::{Role, Scope},
    backtest::runs,
    market::parse_time,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    app, call, get, import, post, queue, strategy_from, submission, trader, user_with_token,
};
use crate::helpers::TestApp;

/// A digest of every strategy, version, run and job row (timestamps included), to show nothing changed.
async fn digest(app: &TestApp) -> String {
    sqlx::query_scalar(
        r#"select md5(concat_ws('#',
               (select string_agg(s::text, '|' order by strategy_id) from strategy s),
               (select string_agg(v::text, '|' order by strategy_version_id) from strategy_version v),
               (select string_agg(r::text, '|' order by backtest_run_id) from backtest_run r),
               (select string_agg(j.job_id::text || j.status, '|' order by job_id) from job j)))"#,
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn backtests_api_another_trader_gets_404_for_every_strategy_and_run_of_the_first_and_changes_nothing()
 {
    let app = app(false, vec![]).await;
    let alice = trader(&app, "alice@example.org").await;
    let bob = trader(&app, "bob@example.org").await;
    let xrp = import(&app, "XRP-ETH-5m.csv").await;
    let strategy = strategy_from(&app, &alice, "sma_cross").await;
    let run = queue(&app, &alice, &submission(strategy, xrp)).await;
    let before = digest(&app).await;

    let s = format!("/api/v1/strategies/{strategy}");
    let b = format!("/api/v1/backtests/{run}");
    let edit = json!({"name": "mine now", "source": "param x: int = 1 in 1..2\nentry long when close > 0\nexit long when close < 0\n"});
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, s.clone(), None),
        (Method::PUT, s.clone(), Some(edit)),
        (Method::DELETE, s.clone(), None),
        (Method::POST, format!("{s}/restore"), Some(json!({}))),
        (Method::POST, format!("{s}/duplicate"), Some(json!({}))),
        (Method::GET, format!("{s}/versions/1"), None),
        (
            Method::POST,
            "/api/v1/backtests".into(),
            Some(submission(strategy, xrp)),
        ),
        (Method::GET, b.clone(), None),
        (Method::GET, format!("{b}/result"), None),
        (Method::GET, format!("{b}/trades"), None),
        (Method::GET, format!("{b}/trades.csv"), None),
        (Method::POST, format!("{b}/cancel"), Some(json!({}))),
        (
            Method::GET,
            format!("{b}/trace?time={}", parse_time("2019-10-12").unwrap()),
            None,
        ),
    ];
    for (method, path, body) in &attempts {
        let r = call(&app, method.clone(), path, Some(&bob), body.as_ref()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}: {r:?}");
        assert_eq!(r.error(), "not_found", "{method} {path}");
    }
    // Bob's lists do not show Alice's rows.
    let mine = get(&app, "/api/v1/strategies?archived=true", &bob).await;
    assert_eq!(mine.json["strategies"], json!([]));
    let runs = get(
        &app,
        &format!("/api/v1/backtests?strategy_id={strategy}"),
        &bob,
    )
    .await;
    assert_eq!(runs.json["runs"], json!([]));
    assert_eq!(digest(&app).await, before, "nothing changed");
    // Alice still sees hers.
    assert_eq!(get(&app, &b, &alice).await.status, StatusCode::OK);
    assert_eq!(
        get(&app, "/api/v1/backtests", &alice).await.json["runs"][0]["id"],
        run.to_string()
    );
}

#[tokio::test]
async fn backtests_api_read_only_tokens_get_403_on_every_write_and_no_token_gets_401() {
    let app = app(false, vec![]).await;
    let (owner, read_only) =
        user_with_token(&app, "ro@example.org", Role::Trader, Scope::Read).await;
    let (_, viewer) =
        user_with_token(&app, "viewer@example.org", Role::Viewer, Scope::ReadWrite).await;
    let xrp = import(&app, "XRP-ETH-5m.csv").await;
    // The read-only token's owner has a strategy and a run (made through the backend, as the UI would).
    let strategy = backend::backtest::strategies::create(
        &app.ctx.db,
        owner,
        backend::backtest::strategies::NewStrategy {
            template: Some("macd".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let new_run: runs::NewRun = serde_json::from_value(json!({
        "strategy_id": strategy, "instrument_ids": [xrp], "timeframe": "5m", "from": "2019-10-11",
        "to": "2019-10-13", "initial_cash": 10000.0, "fee": 0.001, "slippage_bps": 0.0, "fill": "next_open"
    }))
    .unwrap();
    let run = runs::create(&app.ctx, owner, &new_run, None)
        .await
        .unwrap()
        .run_ids[0];
    let before = digest(&app).await;

    let s = format!("/api/v1/strategies/{strategy}");
    let b = format!("/api/v1/backtests/{run}");
    let writes: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/api/v1/strategies".into(),
            json!({"template": "macd"}),
        ),
        (Method::PUT, s.clone(), json!({"name": "renamed"})),
        (Method::DELETE, s.clone(), json!({})),
        (Method::POST, format!("{s}/restore"), json!({})),
        (Method::POST, format!("{s}/duplicate"), json!({})),
        (
            Method::POST,
            "/api/v1/backtests".into(),
            submission(strategy, xrp),
        ),
        (Method::POST, format!("{b}/cancel"), json!({})),
    ];
    for token in [&read_only, &viewer] {
        for (method, path, body) in &writes {
            let r = call(&app, method.clone(), path, Some(token), Some(body)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {r:?}");
            assert_eq!(r.error(), "forbidden");
        }
    }
    assert_eq!(digest(&app).await, before, "nothing changed");

    // Reads work with the read-only token (validate is a read).
    let reads = [
        "/api/v1/templates".to_owned(),
        "/api/v1/strategies".into(),
        s.clone(),
        format!("{s}/versions/1"),
        "/api/v1/backtests".into(),
        b.clone(),
        "/api/v1/market/instruments".into(),
    ];
    for path in &reads {
        let r = get(&app, path, &read_only).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {r:?}");
    }
    let v = post(
        &app,
        "/api/v1/strategies/validate",
        &read_only,
        &json!({"source": "entry long when close > open\nexit long when close < open\n"}),
    )
    .await;
    assert_eq!(v.json["ok"], true, "{v:?}");
    let instruments = get(&app, "/api/v1/market/instruments", &read_only).await;
    let xrp_info = &instruments.json["instruments"][0];
    assert_eq!(xrp_info["instrument_id"], xrp);
    assert_eq!(xrp_info["pair"], "XRP/ETH");
    assert_eq!(xrp_info["timeframes"][0]["timeframe"], "5m");
    assert_eq!(xrp_info["timeframes"][0]["count"], 706);
    assert_eq!(xrp_info["timeframes"][0]["first"], "2019-10-11T00:00:00Z");

    // No token (or a bogus one): 401 on every endpoint, reads and writes.
    let mut every: Vec<(Method, String)> = writes
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    every.extend(reads.iter().map(|p| (Method::GET, p.clone())));
    every.extend([
        (Method::POST, "/api/v1/strategies/validate".to_owned()),
        (Method::GET, format!("{b}/result")),
        (Method::GET, format!("{b}/trades")),
        (Method::GET, format!("{b}/trades.csv")),
        (Method::GET, format!("{b}/trace?time=0")),
    ]);
    for (method, path) in &every {
        for token in [None, Some("vxt_not-a-token")] {
            let r = call(&app, method.clone(), path, token, Some(&json!({}))).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}: {r:?}");
            assert_eq!(r.error(), "unauthorized");
            assert_eq!(r.headers["www-authenticate"], "Bearer");
        }
    }
}

#[tokio::test]
async fn backtests_api_the_rate_limit_answers_429_with_retry_after() {
    let app = app(false, vec![("API_RATE_LIMIT_PER_MINUTE", "5".into())]).await;
    let token = trader(&app, "rae@example.org").await;
    // The limit counts per clock minute: start early in one so the six calls share it.
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second > 50 {
        tokio::time::sleep(Duration::from_secs(61 - second)).await;
    }
    for i in 1..=5 {
        let r = get(&app, "/api/v1/templates", &token).await;
        assert_eq!(r.status, StatusCode::OK, "call {i}: {r:?}");
    }
    let sixth = get(&app, "/api/v1/strategies", &token).await;
    assert_eq!(sixth.status, StatusCode::TOO_MANY_REQUESTS, "{sixth:?}");
    assert_eq!(sixth.error(), "rate_limited");
    let wait: u64 = sixth.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Another user has their own budget.
    let other = trader(&app, "ray@example.org").await;
    assert_eq!(
        get(&app, "/api/v1/templates", &other).await.status,
        StatusCode::OK
    );
}
