//! The REST API's errors are RFC 9457 problems (`application/problem+json` with `type`, `title`, `status`,
//! `detail`, `code`, `request_id` = the response's `x-request-id`, `field` for input errors, `Retry-After` on
//! 429/503), the input is read as strictly as the OpenAPI document says, and the document describes the problems.

use backend::auth::{Role, Scope, api_token, users};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, spawn_app, spawn_app_with};

async fn token(app: &TestApp, email: &str, role: Role, scope: Scope) -> String {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, email, "Pat", "not-a-password-hash", role)
        .await
        .unwrap()
        .unwrap();
    users::mark_verified(&mut conn, id).await.unwrap();
    drop(conn);
    api_token::create(&app.ctx.db, id, "tests", scope, None)
        .await
        .unwrap()
        .unwrap()
        .1
}

/// Sends a request and checks the problem shape every error shares; returns the problem.
async fn problem(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
    status: StatusCode,
    code: &str,
) -> (Value, reqwest::header::HeaderMap) {
    let mut req = app.client.request(method.clone(), app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((ct, b)) = body {
        req = req.header("content-type", ct).body(b);
    }
    let resp = req.send().await.unwrap();
    let headers = resp.headers().clone();
    assert_eq!(resp.status(), status, "{method} {path}");
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "{method} {path}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert_eq!(body["code"], code, "{method} {path}: {body}");
    assert_eq!(body["type"], format!("/api/problems/{code}"), "{body}");
    assert!(!body["title"].as_str().unwrap().is_empty(), "{body}");
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
    let rid = headers["x-request-id"].to_str().unwrap();
    assert_eq!(body["request_id"], rid, "{method} {path}: {body}");
    (body, headers)
}

#[tokio::test]
async fn every_error_class_is_a_problem_with_the_request_id() {
    let app = spawn_app().await;
    let rw = token(&app, "rw@example.com", Role::Trader, Scope::ReadWrite).await;
    let ro = token(&app, "ro@example.com", Role::Trader, Scope::Read).await;
    let json_body = |v: Value| Some(("application/json", v.to_string()));

    // 401 with the challenge.
    let (_, h) = problem(
        &app,
        Method::GET,
        "/api/v1/me",
        None,
        None,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_eq!(h["www-authenticate"], "Bearer");
    // 403, 404 (resource and unknown path), 405 from the router, 400 from the path, query and body readers.
    problem(
        &app,
        Method::PATCH,
        "/api/v1/me",
        Some(&ro),
        json_body(json!({})),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let missing = format!("/api/v1/strategies/{}", uuid::Uuid::new_v4());
    problem(
        &app,
        Method::GET,
        &missing,
        Some(&rw),
        None,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        &app,
        Method::GET,
        "/api/v1/nothing/here",
        Some(&rw),
        None,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let (_, h) = problem(
        &app,
        Method::PUT,
        "/api/v1/me",
        Some(&rw),
        None,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert!(h.contains_key("allow"), "{h:?}");
    problem(
        &app,
        Method::GET,
        "/api/v1/strategies/not-a-uuid",
        Some(&rw),
        None,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    problem(
        &app,
        Method::GET,
        "/api/v1/me/audit?limit=0",
        Some(&rw),
        None,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    )
    .await;
    problem(
        &app,
        Method::PATCH,
        "/api/v1/me",
        Some(&rw),
        Some(("application/json", "{".into())),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let (body, _) = problem(
        &app,
        Method::PATCH,
        "/api/v1/me",
        Some(&rw),
        json_body(json!({"role": "admin"})),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("role"), "{body}");
    // 415 and 413.
    problem(
        &app,
        Method::PATCH,
        "/api/v1/me",
        Some(&rw),
        Some(("text/plain", "{}".into())),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let huge = format!("{{\"source\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    problem(
        &app,
        Method::POST,
        "/api/v1/strategies/validate",
        Some(&rw),
        Some(("application/json", huge)),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    // 400 invalid_input with the field, 422 with the problems, 409 from the backend.
    let (body, _) = problem(
        &app,
        Method::POST,
        "/api/v1/strategies",
        Some(&rw),
        json_body(json!({"name": "   "})),
        StatusCode::BAD_REQUEST,
        "invalid_input",
    )
    .await;
    assert_eq!(body["field"], "name", "{body}");
    let (body, _) = problem(
        &app,
        Method::POST,
        "/api/v1/strategies",
        Some(&rw),
        json_body(json!({"source": "entry long when"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_strategy",
    )
    .await;
    assert!(body["problems"][0]["line"].as_u64().unwrap() >= 1, "{body}");
    // The same problem answers the page scripts' JSON (the editor's live check needs a session: 401 here).
    let resp = app
        .client
        .get(app.url("/api/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    // Every type URI is described.
    let resp = app.get("/api/problems/invalid_input").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("field"));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let app = spawn_app_with(Options {
        env: vec![("API_RATE_LIMIT_PER_MINUTE", "2".into())],
        ..Options::default()
    })
    .await;
    let rw = token(&app, "rl@example.com", Role::Trader, Scope::ReadWrite).await;
    for _ in 0..2 {
        let r = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth(&rw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let (_, h) = problem(
        &app,
        Method::GET,
        "/api/v1/me",
        Some(&rw),
        None,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    let secs: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
}

#[tokio::test]
async fn an_unavailable_database_is_a_503_problem_with_retry_after() {
    let app = spawn_app().await;
    let rw = token(&app, "db@example.com", Role::Trader, Scope::ReadWrite).await;
    app.ctx.db.close().await;
    let (_, h) = problem(
        &app,
        Method::GET,
        "/api/v1/me",
        Some(&rw),
        None,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert!(h.contains_key("retry-after"), "{h:?}");
}

#[tokio::test]
async fn a_json_array_is_not_an_object_body() {
    let app = spawn_app().await;
    let rw = token(&app, "arr@example.com", Role::Trader, Scope::ReadWrite).await;
    for body in [
        json!(["<b>x</b>", "Europe/Zurich"]),
        json!("x"),
        json!(3),
        json!(null),
    ] {
        let (p, _) = problem(
            &app,
            Method::PATCH,
            "/api/v1/me",
            Some(&rw),
            Some(("application/json", body.to_string())),
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
        assert!(p["detail"].as_str().unwrap().contains("JSON object"), "{p}");
    }
    let me: Value = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&rw)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["display_name"], "Pat", "the array changed nothing: {me}");
    // Well-formed values the document rules out are invalid_input: an unknown time zone, a control character.
    for body in [
        json!({"time_zone": "Mars/Olympus"}),
        json!({"display_name": "a\u{7}b"}),
    ] {
        problem(
            &app,
            Method::PATCH,
            "/api/v1/me",
            Some(&rw),
            Some(("application/json", body.to_string())),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        )
        .await;
    }
}

#[tokio::test]
async fn far_dates_are_refused_with_a_clear_problem() {
    let app = spawn_app().await;
    let rw = token(&app, "far@example.com", Role::Trader, Scope::ReadWrite).await;
    let body = json!({
        "strategy_id": uuid::Uuid::new_v4(), "instrument_ids": [1], "timeframe": "1h",
        "from": "2018-01-01", "to": "9999-12-31",
    });
    let (p, _) = problem(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&rw),
        Some(("application/json", body.to_string())),
        StatusCode::BAD_REQUEST,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "to", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("2099-12-31"), "{p}");
    let (p, _) = problem(
        &app,
        Method::GET,
        "/api/v1/market/candles?instrument_id=1&timeframe=1h&to=9999-12-31",
        None,
        None,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("out of range"),
        "{p}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_problems() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let problem = &doc["components"]["schemas"]["Problem"];
    for member in [
        "type",
        "title",
        "status",
        "detail",
        "code",
        "request_id",
        "field",
        "problems",
        "limit",
        "usage",
        "allowed",
    ] {
        assert!(problem["properties"][member].is_object(), "{member}");
    }
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for status in ["500", "503"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        r["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
                if status == "429" || status == "503" {
                    assert!(
                        r["headers"]["Retry-After"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
            }
        }
    }
    // Parameter values are `anyOf` (a JSON integer is also a number), never an ambiguous `oneOf`.
    assert!(doc["components"]["schemas"]["ParamValueOut"]["anyOf"].is_array());
    assert!(doc["components"]["schemas"]["ParamValueOut"]["oneOf"].is_null());
}
