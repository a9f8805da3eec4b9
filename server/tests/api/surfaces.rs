//! The same strategy/backtest rule through every surface gives the same decision with the same code, each in
//! its surface's shape: the browser form (status, or a redirect with its flash / form message), the page
//! scripts' JSON and the REST API (status + `error` code), and the Leptos server functions (status + the
//! `AppError` code). One user per kind, signed in in a browser AND holding an API token.

use std::path::Path;

use backend::{
    auth::{Scope, api_token},
    market::{Pair, csv_import},
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth::{PASSWORD, browser, location, page_text, post_form, sign_in},
    helpers::{Options, TestApp, spawn_app_with},
};

/// A person in a browser session and with a read-write API token.
struct Person {
    browser: Client,
    token: String,
}

async fn person(app: &TestApp, email: &str, verified: bool, role: &str) -> Person {
    let browser = browser();
    let resp = post_form(
        app,
        &browser,
        "/signup",
        "/auth/signup",
        &[
            ("email", email),
            ("display_name", "Trader"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=check_email");
    let id: Uuid = sqlx::query_scalar(
        "update app_user set role = $2, email_verified_at = case when $3 then now() end where email = $1 returning user_id",
    )
    .bind(email)
    .bind(role)
    .bind(verified)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        sign_in(app, &browser, email, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, token) = api_token::create(&app.ctx.db, id, "tests", Scope::ReadWrite, None)
        .await
        .unwrap()
        .unwrap();
    Person { browser, token }
}

async fn app() -> TestApp {
    spawn_app_with(Options {
        workers: false,
        env: vec![("BACKTEST_MAX_CONCURRENT", "1".into())],
    })
    .await
}

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

/// A REST call: status and the `error` code of the body.
async fn rest(
    app: &TestApp,
    method: reqwest::Method,
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
    let json = resp.json().await.unwrap_or(Value::Null);
    (status, json)
}

/// The code of a REST or page-script refusal (an RFC 9457 problem's `code`).
fn code_of(body: &Value) -> Option<&str> {
    body["code"].as_str()
}

/// A server function (GET): status and the `AppError` code (`refused` carries the backend code).
async fn server_fn(app: &TestApp, client: &Client, path: &str) -> (StatusCode, String, Value) {
    let resp = client.get(app.url(path)).send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let code = match body["error"].as_str() {
        Some("refused") => body["code"].as_str().unwrap_or("").to_owned(),
        Some(c) => c.to_owned(),
        None => String::new(),
    };
    (status, code, body)
}

fn run_fields(strategy: Uuid, instrument: i32, from: &str, to: &str) -> Vec<(String, String)> {
    [
        ("strategy_id", strategy.to_string()),
        ("timeframe", "5m".into()),
        ("instrument_id", instrument.to_string()),
        ("from", from.into()),
        ("to", to.into()),
        ("initial_cash", "10000".into()),
        ("fee_pct", "0.1".into()),
        ("slippage_bps", "0".into()),
        ("fill", "next_open".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn submit_form(
    app: &TestApp,
    client: &Client,
    fields: &[(String, String)],
) -> reqwest::Response {
    let f: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_form(app, client, "/", "/backtests/create", &f).await
}

fn run_body(strategy: Uuid, instrument: i32, from: &str, to: &str) -> Value {
    json!({
        "strategy_id": strategy, "instrument_ids": [instrument], "timeframe": "5m", "from": from, "to": to,
    })
}

async fn strategy_of(app: &TestApp, p: &Person) -> Uuid {
    let (status, body) = rest(
        app,
        reqwest::Method::POST,
        "/api/v1/strategies",
        Some(&p.token),
        Some(json!({ "template": "macd" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn surfaces_give_the_same_decision_for_permission_email_ownership_state_and_limit() {
    let app = app().await;
    let instrument = candles(&app).await;
    let ann = person(&app, "ann@example.org", true, "trader").await;
    let bob = person(&app, "bob@example.org", true, "trader").await;
    let dan = person(&app, "dan@example.org", false, "trader").await;
    let vic = person(&app, "vic@example.org", true, "trader").await;
    let strategy = strategy_of(&app, &ann).await;
    let dan_strategy = strategy_of(&app, &dan).await;
    let vic_strategy = strategy_of(&app, &vic).await;
    sqlx::query("update app_user set role = 'viewer' where email = 'vic@example.org'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    // 1. The date-range rule: "to 2019-10-11" includes the 11th in the form and in the API alike.
    let resp = submit_form(
        &app,
        &ann.browser,
        &run_fields(strategy, instrument, "2019-10-11", "2019-10-11"),
    )
    .await;
    let loc = location(&resp);
    assert!(
        loc.starts_with("/backtests/") && !loc.contains("failed=1"),
        "{loc}"
    );
    let form_run: Uuid = loc.trim_start_matches("/backtests/").parse().unwrap();
    let ends: Vec<String> = sqlx::query_scalar(
        "select to_char(range_to at time zone 'UTC', 'YYYY-MM-DD HH24:MI') from backtest_run",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(ends, vec!["2019-10-12 00:00".to_owned()]);

    // 2. The run limit (1 here): `plan_limit` (403) in the API; the form goes back with the same code.
    let (status, body) = rest(
        &app,
        post.clone(),
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(strategy, instrument, "2019-10-11", "2019-10-11")),
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::FORBIDDEN, Some("plan_limit")),
        "{body}"
    );
    let resp = submit_form(
        &app,
        &ann.browser,
        &run_fields(strategy, instrument, "2019-10-11", "2019-10-11"),
    )
    .await;
    let loc = location(&resp);
    assert!(loc.contains("failed=1"), "{loc}");
    let page = page_text(&app, &ann.browser, &loc).await;
    assert!(
        page.contains("the limit is 1 at a time"),
        "form shows the limit"
    );

    // 3. The results of an unfinished run: `not_finished` (409) in the API, the page script's JSON and the
    //    download (a 409 page), instead of a 404 in one and a 409 in another.
    let (status, body) = rest(
        &app,
        get.clone(),
        &format!("/api/v1/backtests/{form_run}/trades"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::CONFLICT, Some("not_finished")),
        "{body}"
    );
    let (status, body) = rest(
        &app,
        get.clone(),
        &format!("/api/v1/backtests/{form_run}/trades.csv"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::CONFLICT, Some("not_finished")),
        "{body}"
    );
    let resp = ann
        .browser
        .get(app.url(&format!("/backtests/{form_run}/chart.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(
        code_of(&resp.json::<Value>().await.unwrap()),
        Some("not_finished")
    );
    for download in ["trades.csv", "result.json", "report.html"] {
        let resp = ann
            .browser
            .get(app.url(&format!("/backtests/{form_run}/{download}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CONFLICT, "{download}");
        assert!(
            resp.headers().get("content-disposition").is_none(),
            "{download}"
        );
    }

    // 4. Another trader's run: not found everywhere (REST 404, script JSON 404, download 404 page, server fn 404).
    let (status, body) = rest(
        &app,
        get.clone(),
        &format!("/api/v1/backtests/{form_run}/trades"),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = rest(
        &app,
        post.clone(),
        &format!("/api/v1/backtests/{form_run}/cancel"),
        Some(&bob.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let resp = post_form(
        &app,
        &bob.browser,
        "/",
        &format!("/backtests/{form_run}/cancel"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = bob
        .browser
        .get(app.url(&format!("/backtests/{form_run}/status.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = bob
        .browser
        .get(app.url(&format!("/backtests/{form_run}/trades.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (status, code, _) = server_fn(&app, &bob.browser, &format!("/api/run?id={form_run}")).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );

    // 5. An unconfirmed email address may not run: REST 403 `email_unconfirmed`; the form goes back and says
    //    so; the run form (server function) is blocked with the same reason. Nothing is queued.
    let (status, body) = rest(
        &app,
        post.clone(),
        "/api/v1/backtests",
        Some(&dan.token),
        Some(run_body(
            dan_strategy,
            instrument,
            "2019-10-11",
            "2019-10-12",
        )),
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::FORBIDDEN, Some("email_unconfirmed")),
        "{body}"
    );
    let resp = submit_form(
        &app,
        &dan.browser,
        &run_fields(dan_strategy, instrument, "2019-10-11", "2019-10-12"),
    )
    .await;
    let loc = location(&resp);
    assert!(loc.contains("failed=1"), "{loc}");
    assert!(
        page_text(&app, &dan.browser, &loc)
            .await
            .contains("Confirm your email address")
    );
    let (status, _, body) = server_fn(
        &app,
        &dan.browser,
        &format!("/api/run_form?strategy={dan_strategy}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["can_run"], false);
    assert!(
        body["blocked"]
            .as_str()
            .unwrap()
            .contains("Confirm your email address")
    );

    // 6. A read-only account may not write: REST 403 `forbidden`, form 403 page, run form blocked.
    let (status, body) = rest(
        &app,
        post.clone(),
        &format!("/api/v1/strategies/{vic_strategy}/duplicate"),
        Some(&vic.token),
        None,
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{body}"
    );
    let resp = post_form(
        &app,
        &vic.browser,
        "/",
        &format!("/strategies/{vic_strategy}/duplicate"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().await.unwrap().contains("Read-only account"));
    let (status, body) = rest(
        &app,
        post.clone(),
        "/api/v1/backtests",
        Some(&vic.token),
        Some(run_body(
            vic_strategy,
            instrument,
            "2019-10-11",
            "2019-10-12",
        )),
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{body}"
    );
    let resp = submit_form(
        &app,
        &vic.browser,
        &run_fields(vic_strategy, instrument, "2019-10-11", "2019-10-12"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, _, body) = server_fn(
        &app,
        &vic.browser,
        &format!("/api/run_form?strategy={vic_strategy}"),
    )
    .await;
    assert_eq!(body["can_run"], false);
    assert!(body["blocked"].as_str().unwrap().contains("read-only"));

    // 7. Nobody signed in: REST 401, script JSON 401, server function 401, form post to sign-in.
    let anon = browser();
    let (status, body) = rest(
        &app,
        get.clone(),
        &format!("/api/v1/backtests/{form_run}"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let resp = anon
        .get(app.url(&format!("/backtests/{form_run}/status.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, code, _) = server_fn(&app, &anon, &format!("/api/run?id={form_run}")).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );

    let runs: i64 = sqlx::query_scalar("select count(*) from backtest_run")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(runs, 1, "only ann's first run was queued");
    // Audited once, by the action, whatever the surface.
    let started: i64 =
        sqlx::query_scalar("select count(*) from audit_event where event = 'backtest_started'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(started, 1);
}
