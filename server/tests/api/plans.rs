//! Plans and limits (docs/plans.md): the default plan equals the instance settings; a smaller plan refuses the
//! next backtest with the `plan_limit` problem on REST and in place on the browser form; an override raises it
//! again; the admin routes are refused for traders (403) and anonymous callers (401); every change is audited;
//! validation names the field; the CLI goes through the same actions.

use std::{path::Path, process::Command};

use backend::{
    auth::{Scope, api_token},
    market::{Pair, csv_import},
};
use reqwest::{Client, Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth::{PASSWORD, browser, location, page_text, post_form, sign_in},
    helpers::{Options, TestApp, spawn_app_with, vortex_bin},
};

/// A person in a browser session and with a read-write API token.
struct Person {
    id: Uuid,
    browser: Client,
    token: String,
}

async fn person(app: &TestApp, email: &str, role: &str) -> Person {
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
        "update app_user set role = $2, email_verified_at = now() where email = $1 returning user_id",
    )
    .bind(email)
    .bind(role)
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
    Person { id, browser, token }
}

async fn app(env: Vec<(&'static str, String)>) -> TestApp {
    spawn_app_with(Options {
        workers: false,
        env,
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

async fn rest(
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

fn run_body(strategy: &str, instrument: i32) -> Value {
    json!({
        "strategy_id": strategy, "instrument_ids": [instrument], "timeframe": "5m",
        "from": "2019-10-11", "to": "2019-10-11",
    })
}

async fn strategy_of(app: &TestApp, p: &Person) -> String {
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

fn limit<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["limit"] == name)
        .unwrap_or_else(|| panic!("no limit {name} in {plan}"))
}

async fn audits(app: &TestApp, event: &str) -> i64 {
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
async fn plans_a_smaller_plan_refuses_the_next_backtest_everywhere_and_an_override_raises_it() {
    let app = app(vec![]).await;
    let instrument = candles(&app).await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let strategy = strategy_of(&app, &ann).await;

    let (status, plan) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/plans",
        Some(&root.token),
        Some(
            json!({ "slug": "tiny", "name": "Tiny", "price_minor": 500, "currency": "EUR",
                     "limits": { "concurrent_backtests": 1, "strategies": 1 } }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    assert_eq!(plan["limits"]["concurrent_backtests"], 1);
    let path = format!("/api/v1/admin/users/{}/plan", ann.id);
    let (status, assigned) = rest(
        &app,
        Method::PUT,
        &path,
        Some(&root.token),
        Some(json!({ "plan": "tiny", "reason": "trial of the tiny plan" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{assigned}");
    assert_eq!(assigned["plan"]["slug"], "tiny");
    assert_eq!(limit(&assigned, "concurrent_backtests")["value"], 1);

    // Lowering deletes nothing: ann keeps her strategy although the plan allows one and she has one; the next
    // strategy is refused with the limit named.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/strategies",
        Some(&ann.token),
        Some(json!({ "template": "macd" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        (&body["code"], &body["limit"]),
        (&json!("plan_limit"), &json!("strategies"))
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from strategy")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap(),
        1
    );

    // One backtest is allowed; the second is refused on REST with the documented problem.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&strategy, instrument)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&strategy, instrument)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["type"], "/api/problems/plan_limit");
    assert_eq!(body["code"], "plan_limit");
    assert_eq!(body["limit"], "concurrent_backtests");
    assert_eq!((&body["usage"], &body["allowed"]), (&json!(1), &json!(1)));
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("Tiny") && detail.contains("administrator"),
        "{detail}"
    );
    let (status, doc) = rest(&app, Method::GET, "/api/problems/plan_limit", None, None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");

    // The browser form goes back with the message in place.
    let fields: Vec<(&str, String)> = vec![
        ("strategy_id", strategy.clone()),
        ("timeframe", "5m".into()),
        ("instrument_id", instrument.to_string()),
        ("from", "2019-10-11".into()),
        ("to", "2019-10-11".into()),
        ("initial_cash", "10000".into()),
        ("fee_pct", "0.1".into()),
        ("slippage_bps", "0".into()),
        ("fill", "next_open".into()),
    ];
    let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = post_form(&app, &ann.browser, "/", "/backtests/create", &f).await;
    let loc = location(&resp);
    assert!(loc.contains("failed=1"), "{loc}");
    let page = page_text(&app, &ann.browser, &loc).await;
    assert!(
        page.contains("the limit is 1 at a time on your plan (Tiny)"),
        "the form shows the plan limit"
    );
    assert!(page.contains(r#"href="/account/plan""#));

    // The plan page shows the plan, its price and the full limit.
    let page = page_text(&app, &ann.browser, "/account/plan").await;
    assert!(
        page.contains("Tiny") && page.contains("EUR 5.00 / month"),
        "{page}"
    );

    // An override raises the limit again (and is shown as the user's own).
    let (status, body) = rest(
        &app,
        Method::PUT,
        &path,
        Some(&root.token),
        Some(
            json!({ "plan": "tiny", "overrides": { "concurrent_backtests": 3 }, "reason": "comp" }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(limit(&body, "concurrent_backtests")["source"], "override");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&strategy, instrument)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // History depth and runs per day: a plan that reaches back a year refuses a 2019 range.
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/plans/{}", plan["id"].as_str().unwrap()),
        Some(&root.token),
        Some(json!({ "limits": { "history_days": 365, "backtests_per_day": 5 } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&strategy, instrument)),
    )
    .await;
    assert_eq!(
        (status, &body["limit"]),
        (StatusCode::FORBIDDEN, &json!("history_days")),
        "{body}"
    );
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/plans/{}", plan["id"].as_str().unwrap()),
        Some(&root.token),
        Some(json!({ "limits": { "history_days": null, "backtests_per_day": 2 } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["limits"]["history_days"].is_null(), "{body}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&strategy, instrument)),
    )
    .await;
    assert_eq!(
        (status, &body["limit"]),
        (StatusCode::FORBIDDEN, &json!("backtests_per_day")),
        "{body}"
    );

    // Back on the default plan: the instance settings again.
    let (status, body) = rest(&app, Method::PUT, &path, Some(&root.token), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan"]["slug"], "free");

    // Audited, each in its transaction, with the admin as actor and ann as subject.
    assert_eq!(audits(&app, "plan_created").await, 1);
    assert_eq!(audits(&app, "plan_updated").await, 2);
    assert_eq!(audits(&app, "plan_assigned").await, 3);
    let (actor, reason): (Uuid, String) = sqlx::query_as(
        "select actor_id, detail->>'reason' from audit_event where event = 'plan_assigned' and user_id = $1 order by created_at limit 1",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        (actor, reason.as_str()),
        (root.id, "trial of the tiny plan")
    );
}

#[tokio::test]
async fn plans_admin_routes_are_refused_for_traders_and_anonymous_callers() {
    let app = app(vec![]).await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let id = Uuid::new_v4();
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/admin/plans".into(), None),
        (
            Method::POST,
            "/api/v1/admin/plans".into(),
            Some(json!({ "slug": "x", "name": "X" })),
        ),
        (Method::GET, format!("/api/v1/admin/plans/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/admin/plans/{id}"),
            Some(json!({ "name": "Y" })),
        ),
        (
            Method::GET,
            format!("/api/v1/admin/users/{}/plan", ann.id),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{}/plan", ann.id),
            Some(json!({ "plan": "free" })),
        ),
    ];
    for (method, path, body) in routes {
        let (status, b) = rest(&app, method.clone(), &path, Some(&ann.token), body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {b}");
        let (status, _) = rest(&app, method.clone(), &path, None, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from user_plan")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn plans_validation_names_the_field() {
    let app = app(vec![]).await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let t = Some(root.token.as_str());
    let create = |body: Value| rest(&app, Method::POST, "/api/v1/admin/plans", t, Some(body));
    for (body, field) in [
        (
            json!({ "slug": "a", "name": "A", "limits": { "concurrent_backtests": -1 } }),
            "limits.concurrent_backtests",
        ),
        (
            json!({ "slug": "a", "name": "A", "limits": { "strategies": 5_000_000_000_i64 } }),
            "limits.strategies",
        ),
        (json!({ "slug": "Bad Slug", "name": "A" }), "slug"),
        (json!({ "slug": "a", "name": "  " }), "name"),
        (
            json!({ "slug": "a", "name": "A", "currency": "euro" }),
            "currency",
        ),
        (
            json!({ "slug": "a", "name": "A", "price_minor": -5 }),
            "price_minor",
        ),
        (
            json!({ "slug": "a", "name": "A", "billing_period": "week" }),
            "billing_period",
        ),
        (
            json!({ "slug": "a", "name": "A", "trial_days": 1000 }),
            "trial_days",
        ),
        (json!({ "slug": "free", "name": "Again" }), "slug"),
    ] {
        let (status, b) = create(body.clone()).await;
        assert_eq!(
            (status, b["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}: {b}"
        );
    }
    // Numbers too large for any limit and unknown limits are refused as malformed, naming the path.
    let (status, b) =
        create(json!({ "slug": "a", "name": "A", "limits": { "strategies": 1e30 } })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("strategies"), "{b}");
    let (status, b) =
        create(json!({ "slug": "a", "name": "A", "limits": { "gold_bars": 1 } })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{b}");
    let (status, b) = create(json!({ "slug": "a", "name": "A", "limits": [null, null] })).await;
    assert_eq!(
        (status, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limits")),
        "{b}"
    );
    let (status, b) =
        create(json!({ "slug": "a", "name": "A", "limits": { "strategies": "many" } })).await;
    assert!(
        b["detail"].as_str().unwrap().contains("strategies"),
        "{status} {b}"
    );
    assert_eq!(audits(&app, "plan_created").await, 0);

    // The default plan cannot be archived or stop being the default.
    let (_, list) = rest(&app, Method::GET, "/api/v1/admin/plans", t, None).await;
    let free = list["plans"][0]["id"].as_str().unwrap().to_owned();
    let free_path = format!("/api/v1/admin/plans/{free}");
    let (status, b) = rest(
        &app,
        Method::PATCH,
        &free_path,
        t,
        Some(json!({ "archived": true })),
    )
    .await;
    assert_eq!(
        (status, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("archived")),
        "{b}"
    );
    let (status, b) = rest(
        &app,
        Method::PATCH,
        &free_path,
        t,
        Some(json!({ "is_default": false })),
    )
    .await;
    assert_eq!(
        (status, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("is_default")),
        "{b}"
    );
    let (status, _) = rest(
        &app,
        Method::GET,
        &format!("/api/v1/admin/plans/{}", Uuid::new_v4()),
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Assignments: unknown or archived plan, bad override, reason too long, an end in the past, unknown user.
    let (status, old) = create(json!({ "slug": "old", "name": "Old" })).await;
    assert_eq!(status, StatusCode::CREATED, "{old}");
    let (status, b) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/plans/{}", old["id"].as_str().unwrap()),
        t,
        Some(json!({ "archived": true })),
    )
    .await;
    assert_eq!(
        (status, &b["archived"]),
        (StatusCode::OK, &json!(true)),
        "{b}"
    );
    let path = format!("/api/v1/admin/users/{}/plan", ann.id);
    for (body, field) in [
        (json!({ "plan": "platinum" }), "plan"),
        (json!({ "plan": "old" }), "plan"),
        (
            json!({ "overrides": { "strategies": -3 } }),
            "overrides.strategies",
        ),
        (json!({ "reason": "x".repeat(501) }), "reason"),
        (json!({ "ends_at": "2001-01-01T00:00:00Z" }), "ends_at"),
    ] {
        let (status, b) = rest(&app, Method::PUT, &path, t, Some(body.clone())).await;
        assert_eq!(
            (status, b["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}: {b}"
        );
    }
    let (status, _) = rest(
        &app,
        Method::PUT,
        &format!("/api/v1/admin/users/{}/plan", Uuid::new_v4()),
        t,
        Some(json!({ "plan": "free" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(audits(&app, "plan_assigned").await, 0);
}

fn vortex(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let s = &app.ctx.settings;
    let out = Command::new(vortex_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "test")
        .env("DATABASE_URL", s.database_url.expose_secret())
        .env("REDIS_URL", s.redis_url.expose_secret())
        .env("REDIS_NAMESPACE", &s.redis_namespace)
        .env("LOG_LEVEL", "warn")
        .output()
        .expect("run vortex");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn plans_the_operator_creates_sets_and_assigns_plans_from_the_command_line() {
    let app = app(vec![]).await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let (code, out, err) = vortex(
        &app,
        &[
            "plans",
            "create",
            "--slug",
            "pro",
            "--name",
            "Pro",
            "--price-minor",
            "1900",
            "--limit",
            "strategies=50",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = vortex(
        &app,
        &[
            "plans",
            "set-limit",
            "--plan",
            "pro",
            "--limit",
            "concurrent_backtests",
            "--value",
            "-2",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("limits.concurrent_backtests"), "{err}");
    let (code, out, err) = vortex(
        &app,
        &[
            "plans",
            "set-limit",
            "--plan",
            "pro",
            "--limit",
            "concurrent_backtests",
            "--value",
            "4",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = vortex(
        &app,
        &[
            "plans",
            "assign",
            "--email",
            "nobody@example.org",
            "--plan",
            "pro",
        ],
    );
    assert_eq!(code, 1, "{err}");
    let (code, out, err) = vortex(
        &app,
        &[
            "plans",
            "assign",
            "--email",
            "ann@example.org",
            "--plan",
            "pro",
            "--reason",
            "beta tester",
            "--override",
            "history_days=30",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("concurrent_backtests") && out.contains('4'),
        "{out}"
    );
    let (code, out, _) = vortex(&app, &["plans", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("pro") && out.contains("free") && out.contains("(default)"),
        "{out}"
    );

    let (_, me) = rest(&app, Method::GET, "/api/v1/me/plan", Some(&ann.token), None).await;
    assert_eq!(me["plan"]["slug"], "pro");
    assert_eq!(limit(&me, "strategies")["value"], 50);
    assert_eq!(limit(&me, "history_days")["value"], 30);
    assert_eq!(me["reason"], "beta tester");
    let surfaces: Vec<String> = sqlx::query_scalar(
        "select detail->>'surface' from audit_event where event like 'plan_%' order by created_at",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(surfaces, vec!["cli", "cli", "cli"]);
}
