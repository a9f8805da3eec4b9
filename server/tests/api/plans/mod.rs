//! Plans and limits (docs/plans.md): the default plan equals the instance settings; a smaller plan refuses the
//! next backtest with the `plan_limit` problem on REST and in place on the browser form; an override raises it
//! again; the admin routes are refused for traders (403) and anonymous callers (401); every change is audited;
//! validation names the field; the CLI goes through the same actions.
//!
//! * this file: helpers and the default plan; [`enforcement`]: a smaller plan refuses, an override raises;
//!   [`admin`]: authorization and validation of the admin routes; [`cli`]: `vortex plans`; [`warnings`]: the
//!   80 % and 100 % usage warnings; [`overage`]: over a limit after a plan change (grace period, read-only
//!   excess, resolution).

mod admin;
mod cli;
mod enforcement;
mod exports;
mod overage;
mod warnings;

use std::path::Path;

use backend::{
    auth::{Scope, api_token},
    market::{Pair, csv_import},
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth::{browser, confirmed_user, page_text},
    helpers::{Options, TestApp, spawn_app_with},
};

/// A person in a browser session and with a read-write API token (the admin tests use them too).
pub(crate) struct Person {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) browser: Client,
    pub(crate) token: String,
}

/// Signs up `email` through the form, gives the account `role` and a confirmed address, signs it in and
/// creates its API token.
pub(crate) async fn person(app: &TestApp, email: &str, role: &str) -> Person {
    let browser = browser();
    let id = confirmed_user(app, &browser, email, "Trader", Some(role)).await;
    let (_, token) = api_token::create(&app.ctx.db, id, "tests", Scope::ReadWrite, None)
        .await
        .unwrap()
        .unwrap();
    Person {
        id,
        email: email.to_owned(),
        browser,
        token,
    }
}

pub(super) async fn app(env: Vec<(&'static str, String)>) -> TestApp {
    spawn_app_with(Options {
        workers: false,
        env,
    })
    .await
}

pub(super) async fn candles(app: &TestApp) -> i32 {
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

pub(super) async fn rest(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(super) fn run_body(strategy: &str, instrument: i32) -> Value {
    json!({
        "strategy_id": strategy, "instrument_ids": [instrument], "timeframe": "5m",
        "from": "2019-10-11", "to": "2019-10-11",
    })
}

pub(super) async fn strategy_of(app: &TestApp, p: &Person) -> String {
    let (status, body) = rest(
        app,
        Method::POST,
        "/api/v1/strategies",
        Some(&p.token),
        Some(json!({ "template": "macd" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

pub(super) fn limit<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["limit"] == name)
        .unwrap_or_else(|| panic!("no limit {name} in {plan}"))
}

pub(super) async fn audits(app: &TestApp, event: &str) -> i64 {
    sqlx::query_scalar("select count(*) from audit_event where event = $1")
        .bind(event)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn plans_the_default_plan_is_the_instance_settings() {
    let app = app(vec![
        ("BACKTEST_MAX_CONCURRENT", "2".into()),
        ("STRATEGY_QUOTA", "7".into()),
        ("API_RATE_LIMIT_PER_MINUTE", "90".into()),
    ])
    .await;
    let ann = person(&app, "ann@example.org", "trader").await;
    strategy_of(&app, &ann).await;
    let (status, me) = rest(&app, Method::GET, "/api/v1/me/plan", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["plan"]["slug"], "free");
    assert_eq!(me["plan"]["is_default"], true);
    assert_eq!(me["plan"]["price_minor"], 0);
    for (name, value, usage) in [
        ("concurrent_backtests", json!(2), json!(0)),
        ("strategies", json!(7), json!(1)),
        ("api_requests_per_minute", json!(90), Value::Null),
        ("candles_per_backtest", json!(5_000_000), Value::Null),
        ("backtests_per_day", Value::Null, json!(0)),
        ("history_days", Value::Null, Value::Null),
    ] {
        let l = limit(&me, name);
        assert_eq!((&l["value"], &l["usage"]), (&value, &usage), "{name}: {l}");
    }
    assert_eq!(limit(&me, "concurrent_backtests")["source"], "instance");
    assert_eq!(limit(&me, "history_days")["source"], "unlimited");
    let (status, _) = rest(&app, Method::GET, "/api/v1/me/plan", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The plan page shows the same.
    let page = page_text(&app, &ann.browser, "/account/plan").await;
    assert!(
        page.contains(r#"id="plan-name""#) && page.contains("Free"),
        "{page}"
    );
    assert!(page.contains(r#"data-limit="strategies""#), "{page}");
    assert!(page.contains(r#"data-plan="free""#), "{page}");
}

#[tokio::test]
async fn plans_the_api_rate_limit_is_the_plans() {
    let app = app(vec![]).await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let (status, body) = rest(
        &app,
        Method::PUT,
        &format!("/api/v1/admin/users/{}/plan", ann.id),
        Some(&root.token),
        Some(json!({ "overrides": { "api_requests_per_minute": 3 } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Three a minute: a minute boundary may reset the window once, so a 429 comes within seven requests.
    let mut answers = Vec::new();
    for _ in 0..7 {
        let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&ann.token), None).await;
        answers.push(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert!(
        answers[..3].iter().all(|s| *s == StatusCode::OK),
        "{answers:?}"
    );
    assert_eq!(
        answers.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{answers:?}"
    );
    // The admin's own limit is the instance's.
    let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&root.token), None).await;
    assert_eq!(status, StatusCode::OK);
}
