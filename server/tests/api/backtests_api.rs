//! The strategies and backtests REST API end to end: real HTTP with bearer tokens, real Postgres and Redis, real
//! candles from `data/market`, in-process workers where a run must finish. Also the OpenAPI document, the
//! interactive reference page and the per-user API rate limit.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use backend::{
    auth::{Role, Scope, api_token, users},
    backtest::runs,
    market::{Pair, csv_import, parse_time},
};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Options, TestApp, spawn_app_with};

fn data_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/market")
        .join(name)
}

/// Imports a demo CSV (`BASE-QUOTE-TF.csv`) as a binance instrument; returns its id.
async fn import(app: &TestApp, file: &str) -> i32 {
    let parts: Vec<&str> = file.trim_end_matches(".csv").split('-').collect();
    let opts = csv_import::ImportOptions {
        exchange: "binance".into(),
        pair: Pair::parse(&format!("{}/{}", parts[0], parts[1])).unwrap(),
        timeframe: None,
        skip_bad_rows: false,
    };
    csv_import::import_file(&app.ctx.db, &data_file(file), &opts)
        .await
        .unwrap()
        .instrument_id
}

/// A verified user of `role` with an API token of `scope`; returns the user id and the token.
async fn user_with_token(app: &TestApp, email: &str, role: Role, scope: Scope) -> (Uuid, String) {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, email, "Tess", "not-a-password-hash", role)
        .await
        .unwrap()
        .expect("new email");
    users::mark_verified(&mut conn, id).await.unwrap();
    drop(conn);
    let (_, secret) = api_token::create(&app.ctx.db, id, "tests", scope, None)
        .await
        .unwrap()
        .unwrap();
    (id, secret)
}

async fn trader(app: &TestApp, email: &str) -> String {
    user_with_token(app, email, Role::Trader, Scope::ReadWrite)
        .await
        .1
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl Resp {
    fn field(&self) -> &str {
        self.json["field"].as_str().unwrap_or("")
    }
    fn error(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.json["detail"].as_str().unwrap_or("")
    }
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.text)
    }
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    finish(req).await
}

async fn finish(req: reqwest::RequestBuilder) -> Resp {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        json,
    }
}

async fn get(app: &TestApp, path: &str, token: &str) -> Resp {
    call(app, Method::GET, path, Some(token), None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> Resp {
    call(app, Method::POST, path, Some(token), Some(body)).await
}

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> Resp {
    call(app, Method::PUT, path, Some(token), Some(body)).await
}

/// Creates a strategy from a template; returns its id.
async fn strategy_from(app: &TestApp, token: &str, template: &str) -> Uuid {
    let r = post(
        app,
        "/api/v1/strategies",
        token,
        &json!({ "template": template }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    r.json["id"].as_str().unwrap().parse().unwrap()
}

/// A valid submission over the XRP/ETH 5m demo candles (2019-10-11 to 2019-10-13).
fn submission(strategy: Uuid, instrument: i32) -> Value {
    json!({
        "strategy_id": strategy,
        "instrument_ids": [instrument],
        "timeframe": "5m",
        "from": "2019-10-11",
        "to": "2019-10-13",
    })
}

/// Queues a backtest; returns the run id.
async fn queue(app: &TestApp, token: &str, body: &Value) -> Uuid {
    let r = post(app, "/api/v1/backtests", token, body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{r:?}");
    r.json["runs"][0]["id"].as_str().unwrap().parse().unwrap()
}

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

async fn app(workers: bool, env: Vec<(&'static str, String)>) -> TestApp {
    spawn_app_with(Options { workers, env }).await
}

#[tokio::test]
async fn backtests_api_strategies_are_created_validated_versioned_duplicated_archived_and_restored()
{
    let app = app(false, vec![]).await;
    let token = trader(&app, "ann@example.org").await;
    let xrp = import(&app, "XRP-ETH-5m.csv").await;

    // The catalogue, with declared parameters.
    let t = get(&app, "/api/v1/templates", &token).await;
    assert_eq!(t.status, StatusCode::OK, "{t:?}");
    let macd = t.json["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "macd")
        .expect("macd template")
        .clone();
    let names: Vec<&str> = macd["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fast", "slow", "signal"]);
    assert_eq!(macd["params"][0]["default"], 12);

    // Create from the template: 201, Location, version 1.
    let r = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"template": "macd", "description": "trend"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/api/v1/strategies/{id}")
    );
    assert_eq!(r.json["name"], "macd");
    assert_eq!(r.json["template"], "macd");
    assert_eq!(r.json["latest_version"], 1);
    assert_eq!(r.json["latest"]["source"], macd["source"]);
    assert_eq!(r.json["latest"]["params"].as_array().unwrap().len(), 3);
    assert_eq!(r.json["versions"].as_array().unwrap().len(), 1);
    // API writes land in the audit trail like the browser's.
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'strategy_created' and detail->>'strategy_id' = $1",
    )
    .bind(&id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let path = format!("/api/v1/strategies/{id}");
    let source = r.json["latest"]["source"].as_str().unwrap().to_owned();

    // Validate: ok with params; invalid with line and column.
    let ok = post(
        &app,
        "/api/v1/strategies/validate",
        &token,
        &json!({ "source": source }),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    assert_eq!(ok.json["ok"], true);
    assert_eq!(ok.json["diagnostics"], json!([]));
    assert_eq!(ok.json["params"].as_array().unwrap().len(), 3);
    let broken =
        "param fast: int = 10 in 2..100\nlet x = sma(close, fast)\nentry long when x >> 3\n";
    let bad = post(
        &app,
        "/api/v1/strategies/validate",
        &token,
        &json!({ "source": broken }),
    )
    .await;
    assert_eq!(bad.status, StatusCode::OK, "{bad:?}");
    assert_eq!(bad.json["ok"], false);
    let d = &bad.json["diagnostics"][0];
    assert_eq!(d["line"], 3, "{bad:?}");
    assert!(d["column"].as_u64().unwrap() > 1, "{bad:?}");
    assert!(d["len"].as_u64().unwrap() >= 1);
    assert!(!d["message"].as_str().unwrap().is_empty());

    // An unchanged save adds no version; a changed one does.
    let same = put(
        &app,
        &path,
        &token,
        &json!({"source": source, "base_version": 1}),
    )
    .await;
    assert_eq!(same.status, StatusCode::OK, "{same:?}");
    assert_eq!(same.json, json!({"version": 1, "new_version": false}));
    let v2_source = source.replace("= 12 in", "= 10 in");
    assert_ne!(v2_source, source);
    let v2 = put(
        &app,
        &path,
        &token,
        &json!({"source": v2_source, "base_version": 1, "name": "MACD 10"}),
    )
    .await;
    assert_eq!(
        v2.json,
        json!({"version": 2, "new_version": true}),
        "{v2:?}"
    );
    // A save based on version 1 is now stale.
    let stale = put(
        &app,
        &path,
        &token,
        &json!({"source": source, "base_version": 1}),
    )
    .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{stale:?}");
    assert_eq!(stale.error(), "conflict");
    assert!(stale.message().contains("version 2"), "{stale:?}");
    // Source that does not compile: 422 with problems, kept as the draft, no version.
    let invalid = put(&app, &path, &token, &json!({"source": broken})).await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{invalid:?}"
    );
    assert_eq!(invalid.error(), "invalid_strategy");
    assert_eq!(invalid.json["problems"][0]["line"], 3);
    assert!(invalid.json["problems"][0]["column"].as_u64().is_some());
    let detail = get(&app, &path, &token).await;
    assert_eq!(detail.json["name"], "MACD 10");
    assert_eq!(detail.json["latest_version"], 2);
    assert_eq!(detail.json["has_draft"], true);
    assert_eq!(detail.json["draft_source"], broken);
    assert_eq!(detail.json["versions"][0]["version"], 2);

    // Versions.
    let v1 = get(&app, &format!("{path}/versions/1"), &token).await;
    assert_eq!(v1.status, StatusCode::OK);
    assert_eq!(v1.json["source"], source.as_str());
    let v2 = get(&app, &format!("{path}/versions/2"), &token).await;
    assert_eq!(v2.json["source"], v2_source.as_str());
    assert_eq!(v2.json["params"][0]["default"], 10);
    let v3 = get(&app, &format!("{path}/versions/3"), &token).await;
    assert_eq!(v3.status, StatusCode::NOT_FOUND);
    assert_eq!(v3.error(), "not_found");

    // Duplicate.
    let copy = post(&app, &format!("{path}/duplicate"), &token, &json!({})).await;
    assert_eq!(copy.status, StatusCode::CREATED, "{copy:?}");
    assert_eq!(copy.json["name"], "MACD 10 (copy)");
    assert_eq!(copy.json["latest"]["source"], v2_source.as_str());
    assert_ne!(copy.json["id"], id.as_str());
    assert!(copy.headers.contains_key("location"));

    // Archive: hidden from the list, cannot be run; restore.
    let del = call(&app, Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{del:?}");
    let list = get(&app, "/api/v1/strategies", &token).await;
    let ids: Vec<&str> = list.json["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [copy.json["id"].as_str().unwrap()]);
    let all = get(&app, "/api/v1/strategies?archived=true", &token).await;
    assert_eq!(all.json["strategies"].as_array().unwrap().len(), 2);
    let archived = all.json["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap();
    assert_eq!(archived["archived"], true);
    let strategy: Uuid = id.parse().unwrap();
    let run = post(
        &app,
        "/api/v1/backtests",
        &token,
        &submission(strategy, xrp),
    )
    .await;
    assert_eq!(run.status, StatusCode::BAD_REQUEST, "{run:?}");
    assert_eq!(run.error(), "invalid_input");
    assert_eq!(run.field(), "strategy_id");
    assert!(run.message().contains("archived"), "{run:?}");
    let restore = post(&app, &format!("{path}/restore"), &token, &json!({})).await;
    assert_eq!(restore.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&app, "/api/v1/strategies", &token).await.json["strategies"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    queue(&app, &token, &submission(strategy, xrp)).await;

    // Creation errors: unknown template, invalid source, bad name.
    let unknown = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"template": "nope"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{unknown:?}");
    assert_eq!(unknown.field(), "template");
    assert!(
        unknown.message().contains("macd"),
        "lists the templates: {unknown:?}"
    );
    let invalid = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"source": broken}),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.json["problems"][0]["line"], 3);
    let long = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"name": "x".repeat(81)}),
    )
    .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert_eq!(long.field(), "name");
    // Only the two strategies exist.
    let n: i64 = sqlx::query_scalar("select count(*) from strategy")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(n, 2);
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
async fn backtests_api_bad_input_is_refused_with_a_clear_status_and_the_field_named() {
    let app = app(false, vec![("BODY_LIMIT_BYTES", "4096".into())]).await;
    let token = trader(&app, "bea@example.org").await;
    let xrp = import(&app, "XRP-ETH-5m.csv").await;
    let strategy = strategy_from(&app, &token, "macd").await;
    let valid = submission(strategy, xrp);
    let with = |changes: Value| {
        let mut v = valid.clone();
        for (k, x) in changes.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };

    // (body, status, error code, field, words in the message)
    let cases: Vec<(Value, StatusCode, &str, &str, &str)> = vec![
        (
            with(json!({"from": ""})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "from",
            "start",
        ),
        (
            with(json!({"to": " "})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "to",
            "end",
        ),
        (
            with(json!({"from": "2019-10-13", "to": "2019-10-11"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "to",
            "after the start",
        ),
        (
            with(json!({"from": "yesterday"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "from",
            "yesterday",
        ),
        (
            with(json!({"instrument_ids": [9999]})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "instrument_ids",
            "no instrument 9999",
        ),
        (
            with(json!({"instrument_ids": []})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "instrument_ids",
            "at least one",
        ),
        (
            with(json!({"from": "2020-01-01", "to": "2020-02-01"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "range",
            "stored candles run from 2019-10-11 to 2019-10-13",
        ),
        (
            with(json!({"timeframe": "1h"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "range",
            "no candles of this timeframe",
        ),
        (
            with(json!({"timeframe": "7m"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "timeframe",
            "7m",
        ),
        (
            with(json!({"params": {"fast": 1000}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_strategy",
            "",
            "fast",
        ),
        (
            with(json!({"params": {"fast": "many"}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_strategy",
            "",
            "fast",
        ),
        (
            with(json!({"params": {"speed": 3}})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "params",
            "no parameter `speed`",
        ),
        (
            with(json!({"params": {"fast": null}})),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "params.fast",
            "a number, a boolean or a string",
        ),
        (
            with(json!({"version": 7})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "version",
            "no version 7",
        ),
        (
            with(json!({"fee": 0.5})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "fee",
            "10 %",
        ),
        (
            with(json!({"initial_cash": -1})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "initial_cash",
            "positive",
        ),
        (
            with(json!({"fill": "whenever"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "fill",
            "next_open",
        ),
        (
            with(json!({"colour": "blue"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "colour",
            "unknown field `colour`",
        ),
        (
            with(json!({"strategy_id": Uuid::new_v4()})),
            StatusCode::NOT_FOUND,
            "not_found",
            "",
            "",
        ),
        (
            with(json!({"strategy_id": "not-a-uuid"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "strategy_id",
            "strategy_id",
        ),
    ];
    for (body, status, code, field, words) in &cases {
        let r = post(&app, "/api/v1/backtests", &token, body).await;
        assert_eq!(r.status, *status, "{body}: {r:?}");
        assert_eq!(r.error(), *code, "{body}: {r:?}");
        assert_eq!(r.field(), *field, "{body}: {r:?}");
        assert!(r.message().contains(words), "{body}: {r:?}");
    }
    // A parameter out of range names the problem in `problems` too.
    let r = post(
        &app,
        "/api/v1/backtests",
        &token,
        &with(json!({"params": {"fast": 1000}})),
    )
    .await;
    assert!(
        r.json["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("fast")
    );
    let none: i64 = sqlx::query_scalar("select count(*) from backtest_run")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(none, 0, "no refused submission queued anything");

    // Transport-level problems, in the same JSON format.
    let url = app.url("/api/v1/backtests");
    let raw = |body: String, content_type: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
    };
    let malformed = finish(raw("{\"strategy_id\": ".into(), "application/json")).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{malformed:?}");
    assert_eq!(malformed.error(), "bad_request");
    let form = finish(raw(valid.to_string(), "application/x-www-form-urlencoded")).await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{form:?}");
    assert_eq!(form.error(), "unsupported_media_type");
    let mut big = valid.clone();
    big["timeframe"] = json!("5".repeat(8000));
    let declared = finish(raw(big.to_string(), "application/json")).await;
    assert_eq!(
        declared.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{declared:?}"
    );
    assert_eq!(declared.error(), "payload_too_large");
    // Without a declared length the limit applies while reading.
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(big.to_string())];
    let streamed = finish(
        app.client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
    )
    .await;
    assert_eq!(
        streamed.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{streamed:?}"
    );
    assert_eq!(streamed.error(), "payload_too_large");
    let too_big_strategy = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"source": "#".repeat(5000)}),
    )
    .await;
    assert_eq!(too_big_strategy.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Malformed ids and queries, unknown paths and sorts.
    let bad_id = get(&app, "/api/v1/backtests/not-a-uuid", &token).await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST, "{bad_id:?}");
    assert_eq!(bad_id.error(), "bad_request");
    let bad_filter = get(&app, "/api/v1/backtests?status=finished", &token).await;
    assert_eq!(bad_filter.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_filter.field(), "status");
    let bad_sort = get(&app, "/api/v1/backtests?sort=colour", &token).await;
    assert_eq!(bad_sort.field(), "sort");
    let bad_query = get(&app, "/api/v1/backtests?instrument_id=one", &token).await;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_query.error(), "bad_request");
    let unknown = get(&app, "/api/v1/nothing/here", &token).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error(), "not_found");
    let unknown_field = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"template": "macd", "owner": "someone"}),
    )
    .await;
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);
    assert!(unknown_field.message().contains("owner"));
}

#[tokio::test]
async fn backtests_api_the_concurrency_limit_refuses_a_second_run_until_the_first_is_cancelled() {
    let app = app(false, vec![("BACKTEST_MAX_CONCURRENT", "1".into())]).await;
    let token = trader(&app, "cy@example.org").await;
    let xrp = import(&app, "XRP-ETH-5m.csv").await;
    let strategy = strategy_from(&app, &token, "sma_cross").await;
    let first = queue(&app, &token, &submission(strategy, xrp)).await;

    let second = post(
        &app,
        "/api/v1/backtests",
        &token,
        &submission(strategy, xrp),
    )
    .await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{second:?}");
    assert_eq!(second.error(), "limit_reached");
    assert!(
        second.message().contains("the limit is 1"),
        "says why: {second:?}"
    );
    assert!(
        second.message().contains("cancel"),
        "says what to do: {second:?}"
    );

    // A queued run has no result yet.
    let early = get(&app, &format!("/api/v1/backtests/{first}/result"), &token).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{early:?}");
    assert_eq!(early.error(), "not_finished");
    assert!(early.message().contains("queued"), "{early:?}");
    let early_trades = get(&app, &format!("/api/v1/backtests/{first}/trades"), &token).await;
    assert_eq!(early_trades.error(), "not_finished");

    // Cancel the queued run: cancelled at once, its job too.
    let cancel = post(
        &app,
        &format!("/api/v1/backtests/{first}/cancel"),
        &token,
        &json!({}),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::OK, "{cancel:?}");
    assert_eq!(cancel.json["status"], "cancelled");
    let detail = get(&app, &format!("/api/v1/backtests/{first}"), &token).await;
    assert_eq!(detail.json["status"], "cancelled");
    assert_eq!(detail.json["cancel_requested"], true);
    assert!(detail.json["finished_at"].is_string());
    let job: String = sqlx::query_scalar(
        "select j.status from job j join backtest_run r on r.job_id = j.job_id where r.backtest_run_id = $1",
    )
    .bind(first)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(job, "cancelled");
    let again = post(
        &app,
        &format!("/api/v1/backtests/{first}/cancel"),
        &token,
        &json!({}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    assert_eq!(again.error(), "conflict");
    let result = get(&app, &format!("/api/v1/backtests/{first}/result"), &token).await;
    assert_eq!(result.error(), "not_finished");

    // The slot is free again.
    let third = post(
        &app,
        "/api/v1/backtests",
        &token,
        &submission(strategy, xrp),
    )
    .await;
    assert_eq!(third.status, StatusCode::ACCEPTED, "{third:?}");
    let batch = third.json["batch_id"].as_str().unwrap();
    let listed = get(&app, &format!("/api/v1/backtests?batch_id={batch}"), &token).await;
    assert_eq!(listed.json["runs"].as_array().unwrap().len(), 1);
    assert_eq!(listed.json["runs"][0]["status"], "queued");
    let cancelled = get(&app, "/api/v1/backtests?status=cancelled", &token).await;
    assert_eq!(cancelled.json["runs"][0]["id"], first.to_string());
}

#[tokio::test]
async fn backtests_api_a_run_on_real_candles_finishes_and_matches_the_engine_exactly() {
    let app = app(true, vec![]).await;
    let token = trader(&app, "eve@example.org").await;
    let eth = import(&app, "ETH-BTC-5m.csv").await;
    let strategy = strategy_from(&app, &token, "macd").await;
    let body = json!({
        "strategy_id": strategy,
        "params": {"fast": 8, "signal": 9},
        "instrument_ids": [eth],
        "timeframe": "5m",
        "from": "2018-01-10",
        "to": "2018-01-29",
        "fee": 0.002,
        "slippage_bps": 5,
    });
    let created = post(&app, "/api/v1/backtests", &token, &body).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{created:?}");
    let id = created.json["runs"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(created.json["runs"][0]["status"], "queued");
    assert_eq!(
        created.json["runs"][0]["links"]["self"],
        format!("/api/v1/backtests/{id}")
    );

    // Follow it to the end.
    let started = Instant::now();
    let detail = loop {
        let d = get(&app, &format!("/api/v1/backtests/{id}"), &token).await;
        assert_eq!(d.status, StatusCode::OK);
        match d.json["status"].as_str().unwrap() {
            "done" => break d,
            "queued" | "running" => {}
            other => panic!("run ended {other}: {d:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still {d:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(detail.json["progress"], 1.0);
    assert!(detail.json["timing"]["engine_ms"].is_u64(), "{detail:?}");
    assert!(detail.json["started_at"].is_string());
    assert_eq!(detail.json["params"], json!({"fast": "8", "signal": "9"}));
    assert_eq!(detail.json["config"]["fee"], 0.002);

    // The same run through the engine directly, on the file's candles.
    let text = std::fs::read_to_string(data_file("ETH-BTC-5m.csv")).unwrap();
    let all = engine::csv::parse_candles(&text, None).unwrap().0;
    let (from, to) = (
        parse_time("2018-01-10").unwrap(),
        parse_time("2018-01-30").unwrap(),
    );
    let keep: Vec<usize> = (0..all.len())
        .filter(|&i| all.time[i] >= from && all.time[i] < to)
        .collect();
    let (a, b) = (keep[0], keep[keep.len() - 1] + 1);
    let candles = all.slice(a..b);
    let source = engine::catalogue::template("macd").unwrap().source;
    let compiled = engine::strategy::compile(
        source,
        &[("fast".into(), "8".into()), ("signal".into(), "9".into())],
    )
    .unwrap();
    let config = runs::config(10_000.0, 0.002, 5.0, "next_open").unwrap();
    let expected = engine::backtest::run(&candles, &compiled, &config).unwrap();
    let trade_count = expected.trades.len();
    assert!(trade_count > 5, "a meaningful run: {trade_count} trades");
    let final_equity = expected.metrics.final_equity.value.unwrap();

    let result = get(&app, &format!("/api/v1/backtests/{id}/result"), &token).await;
    assert_eq!(result.status, StatusCode::OK, "{result:?}");
    let m = &result.json["metrics"];
    assert_eq!(m["final_equity"]["value"].as_f64().unwrap(), final_equity);
    assert_eq!(
        m["trade_count"]["value"].as_f64().unwrap(),
        trade_count as f64
    );
    assert_eq!(
        m["total_return"]["value"].as_f64(),
        expected.metrics.total_return.value
    );
    assert_eq!(detail.json["final_equity"].as_f64().unwrap(), final_equity);
    assert_eq!(detail.json["trade_count"], trade_count);
    assert_eq!(result.json["bars"], candles.len());
    assert_eq!(
        result.json["provenance"]["candles_hash"],
        candles.content_hash()
    );
    assert_eq!(result.json["equity"]["time"][0], candles.time[0]);
    assert_eq!(
        result.json["equity"]["equity"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_f64()
            .unwrap(),
        final_equity
    );

    // Trades: the total, pages, sorting.
    let trades = get(
        &app,
        &format!("/api/v1/backtests/{id}/trades?limit=1000"),
        &token,
    )
    .await;
    assert_eq!(trades.status, StatusCode::OK);
    assert_eq!(trades.json["total"], trade_count);
    let list = trades.json["trades"].as_array().unwrap();
    assert_eq!(list.len(), trade_count);
    for (t, e) in list.iter().zip(&expected.trades) {
        assert_eq!(t["pnl"].as_f64().unwrap(), e.pnl);
        assert_eq!(
            parse_time(t["entry_time"].as_str().unwrap()).unwrap(),
            e.entry_time
        );
    }
    let page = get(
        &app,
        &format!("/api/v1/backtests/{id}/trades?sort=pnl&dir=desc&limit=2&offset=1"),
        &token,
    )
    .await;
    let mut pnls: Vec<f64> = expected.trades.iter().map(|t| t.pnl).collect();
    pnls.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(page.json["total"], trade_count);
    assert_eq!(page.json["trades"][0]["pnl"].as_f64().unwrap(), pnls[1]);
    assert_eq!(page.json["trades"][1]["pnl"].as_f64().unwrap(), pnls[2]);
    let bad = get(
        &app,
        &format!("/api/v1/backtests/{id}/trades?limit=5000"),
        &token,
    )
    .await;
    assert_eq!(bad.field(), "limit");

    // CSV export.
    let csv = get(&app, &format!("/api/v1/backtests/{id}/trades.csv"), &token).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let disposition = csv.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(disposition.contains(".csv"), "{disposition}");
    assert_eq!(csv.text.lines().count(), trade_count + 1);
    assert!(csv.text.starts_with("seq,entry_time,"));

    // The trace at the first trade's entry lists the fill.
    let entry = expected.trades[0].entry_time;
    let trace = get(
        &app,
        &format!("/api/v1/backtests/{id}/trace?time={entry}"),
        &token,
    )
    .await;
    assert_eq!(trace.status, StatusCode::OK, "{trace:?}");
    let bar = &trace.json["bars"][0];
    assert_eq!(bar["time"], entry);
    let actions: Vec<&str> = bar["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        actions.iter().any(|a| a.starts_with("bought")),
        "{actions:?}"
    );
    assert!(
        bar["values"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["name"].is_string())
    );
    let outside = get(
        &app,
        &format!(
            "/api/v1/backtests/{id}/trace?time={}",
            parse_time("2017-01-01").unwrap()
        ),
        &token,
    )
    .await;
    assert_eq!(outside.status, StatusCode::BAD_REQUEST);
    assert_eq!(outside.field(), "time");
    let missing = get(&app, &format!("/api/v1/backtests/{id}/trace"), &token).await;
    assert_eq!(missing.field(), "time");
    // One request spans at most a chart candle's worth of bars, not the whole run.
    let first = expected.trades[0].entry_time;
    let huge = get(
        &app,
        &format!("/api/v1/backtests/{id}/trace?time={first}&span=1000000000000"),
        &token,
    )
    .await;
    assert_eq!(huge.status, StatusCode::BAD_REQUEST, "{huge:?}");
    assert_eq!(huge.field(), "span");

    // Finished: cannot be cancelled; listed with its metrics.
    let cancel = post(
        &app,
        &format!("/api/v1/backtests/{id}/cancel"),
        &token,
        &json!({}),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::CONFLICT);
    let done = get(
        &app,
        &format!(
            "/api/v1/backtests?status=done&strategy_id={strategy}&instrument_id={eth}&sort=sharpe"
        ),
        &token,
    )
    .await;
    assert_eq!(done.json["runs"][0]["id"], id.as_str());
    assert_eq!(
        done.json["runs"][0]["final_equity"].as_f64().unwrap(),
        final_equity
    );
}

#[tokio::test]
async fn backtests_api_the_openapi_document_is_3_1_public_and_lists_every_api_v1_path() {
    let site = tempfile::tempdir().unwrap();
    let app = app(
        false,
        vec![("SITE_ROOT", site.path().display().to_string())],
    )
    .await;
    let r = app.get("/api/openapi.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = r.json().await.expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/me", &["get", "patch"][..]),
        ("/api/v1/me/audit", &["get"]),
        ("/api/v1/admin/audit", &["get"]),
        ("/api/v1/market/candles", &["get"]),
        ("/api/v1/market/coverage", &["get"]),
        ("/api/v1/market/instruments", &["get"]),
        ("/api/v1/templates", &["get"]),
        ("/api/v1/strategies", &["get", "post"]),
        ("/api/v1/strategies/validate", &["post"]),
        ("/api/v1/strategies/{id}", &["get", "put", "delete"]),
        ("/api/v1/strategies/{id}/restore", &["post"]),
        ("/api/v1/strategies/{id}/duplicate", &["post"]),
        ("/api/v1/strategies/{id}/versions/{version}", &["get"]),
        ("/api/v1/backtests", &["get", "post"]),
        ("/api/v1/backtests/{id}", &["get"]),
        ("/api/v1/backtests/{id}/result", &["get"]),
        ("/api/v1/backtests/{id}/trades", &["get"]),
        ("/api/v1/backtests/{id}/trades.csv", &["get"]),
        ("/api/v1/backtests/{id}/cancel", &["post"]),
        ("/api/v1/backtests/{id}/trace", &["get"]),
    ] {
        for m in methods {
            let op = &paths.get(path).unwrap_or_else(|| panic!("{path} missing"))[*m];
            assert!(op.is_object(), "{m} {path} missing");
            assert!(!op["tags"].as_array().unwrap().is_empty(), "{m} {path} tag");
            assert!(op["responses"].is_object(), "{m} {path} responses");
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        paths["/api/v1/strategies"]["post"]["security"],
        json!([{"bearer": []}])
    );
    for schema in ["CreateBacktest", "RunDetail", "StrategyDetail", "Problem"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} schema"
        );
    }

    // GET only, and public.
    let post = app
        .client
        .post(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert!(post.status().is_client_error(), "{}", post.status());
    assert_ne!(post.status(), StatusCode::NOT_FOUND);

    // The reference page: read from the site root at request time; 503 while it is missing.
    let missing = app.get("/api/docs").await;
    assert_eq!(missing.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(missing.text().await.unwrap().contains("api-docs.html"));
    std::fs::write(
        site.path().join("api-docs.html"),
        "<!DOCTYPE html><title>Vortex API</title><div id=\"swagger-ui\"></div>",
    )
    .unwrap();
    let page = app.get("/api/docs").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("swagger-ui"));
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

/// One submission for several instruments queues one run each under one batch id; all finish, each on its own
/// instrument's candles, and the batch can be listed and compared.
#[tokio::test]
async fn backtests_api_one_submission_for_several_instruments_runs_each_under_one_batch() {
    let app = app(true, vec![]).await;
    let token = trader(&app, "multi@example.org").await;
    let eth = import(&app, "ETH-BTC-5m.csv").await;
    let ltc = import(&app, "LTC-BTC-5m.csv").await;
    let strategy = strategy_from(&app, &token, "sma_cross").await;
    let mut body = submission(strategy, eth);
    body["instrument_ids"] = json!([eth, ltc, eth]);
    body["from"] = json!("2018-01-10");
    body["to"] = json!("2018-01-29");
    let created = post(&app, "/api/v1/backtests", &token, &body).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{created:?}");
    let runs = created.json["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        2,
        "a repeated instrument runs once: {created:?}"
    );
    let batch = created.json["batch_id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let l = get(&app, &format!("/api/v1/backtests?batch_id={batch}"), &token).await;
        assert_eq!(l.status, StatusCode::OK, "{l:?}");
        let list = l.json["runs"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        if list.iter().all(|r| r["status"] == "done") {
            let mut instruments: Vec<i64> = list
                .iter()
                .map(|r| r["instrument_id"].as_i64().unwrap())
                .collect();
            instruments.sort_unstable();
            let mut want = vec![i64::from(eth), i64::from(ltc)];
            want.sort_unstable();
            assert_eq!(instruments, want);
            // Different candles, different results.
            assert_ne!(list[0]["final_equity"], list[1]["final_equity"], "{list:?}");
            break;
        }
        assert!(
            list.iter().all(|r| r["status"] == "queued"
                || r["status"] == "running"
                || r["status"] == "done"),
            "{list:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "{list:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hashes: std::collections::HashSet<String> = sqlx::query_scalar(
        "select provenance->>'candles_hash' from backtest_result res join backtest_run r using (backtest_run_id) where r.batch_id = $1::uuid",
    )
    .bind(&batch)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(
        hashes.len(),
        2,
        "each run used its own instrument's candles"
    );
}

/// A run whose job ran out of attempts (or whose job row is gone) is failed for the trader, with a message
/// that leaks nothing internal; it no longer counts against the concurrency limit and cannot be cancelled.
#[tokio::test]
async fn backtests_api_a_run_whose_job_gave_up_is_failed_for_the_trader_and_frees_its_slot() {
    let app = app(false, vec![("BACKTEST_MAX_CONCURRENT", "1".into())]).await;
    let token = trader(&app, "gaveup@example.org").await;
    let xrp = import(&app, "XRP-ETH-5m.csv").await;
    let strategy = strategy_from(&app, &token, "macd").await;
    let id = queue(&app, &token, &submission(strategy, xrp)).await;
    let job_id: Uuid =
        sqlx::query_scalar("select job_id from backtest_run where backtest_run_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    // The worker died on every attempt: the job is failed, with an operator-facing error.
    sqlx::query(
        "update job set status = 'failed', attempts = max_attempts, last_error = 'pool timed out: 10.0.0.7:5432 (secret detail)' where job_id = $1",
    )
    .bind(job_id)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let d = get(&app, &format!("/api/v1/backtests/{id}"), &token).await;
    assert_eq!(d.json["status"], "failed", "{d:?}");
    let error = d.json["error"].as_str().unwrap();
    assert!(
        error.contains("could not finish") && !error.contains("10.0.0.7"),
        "{error}"
    );
    // Its slot is free again, and a failed run cannot be cancelled.
    let again = post(
        &app,
        "/api/v1/backtests",
        &token,
        &submission(strategy, xrp),
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{again:?}");
    let c = post(
        &app,
        &format!("/api/v1/backtests/{id}/cancel"),
        &token,
        &json!({}),
    )
    .await;
    assert_eq!(c.status, StatusCode::CONFLICT, "{c:?}");
    // The worker's bookkeeping writes the outcome onto the run row itself…
    backend::jobs::registry::fail_dependents(&app.ctx, job_id).await;
    let stored: String =
        sqlx::query_scalar("select status from backtest_run where backtest_run_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(stored, "failed");
    // …and a run whose job row was pruned before that is failed too, never "running" again.
    let second: Uuid = again.json["runs"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    sqlx::query("delete from job where job_id = (select job_id from backtest_run where backtest_run_id = $1)")
        .bind(second)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let d = get(&app, &format!("/api/v1/backtests/{second}"), &token).await;
    assert_eq!(d.json["status"], "failed", "{d:?}");
}

/// The decision trace is only for finished runs (the span bound is checked on a finished run above).
#[tokio::test]
async fn backtests_api_traces_need_a_finished_run() {
    let app = app(false, vec![]).await;
    let token = trader(&app, "trace@example.org").await;
    let xrp = import(&app, "XRP-ETH-1m.csv").await;
    let strategy = strategy_from(&app, &token, "macd").await;
    let mut body = submission(strategy, xrp);
    body["timeframe"] = json!("1m");
    let id = queue(&app, &token, &body).await;
    let t = get(
        &app,
        &format!("/api/v1/backtests/{id}/trace?time=2019-10-11T12:00:00Z"),
        &token,
    )
    .await;
    assert_eq!(t.status, StatusCode::CONFLICT, "{t:?}");
    assert!(
        t.json["detail"]
            .as_str()
            .unwrap()
            .contains("once the run is done"),
        "{t:?}"
    );
}
