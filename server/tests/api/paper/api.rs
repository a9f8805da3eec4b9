//! The paper-run REST API: start, reads, control, parity, and who may do what on every route.

use backend::auth::{Role, Scope, api_token, users};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{app_without_workers, series, shifted};
use crate::helpers::TestApp;

/// A verified user of `role` (created on first use) and an API token of `scope`.
pub(super) async fn token(app: &TestApp, email: &str, role: Role, scope: Scope) -> String {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = match users::insert(&mut conn, email, "Tess", "not-a-password-hash", role)
        .await
        .unwrap()
    {
        Some(id) => id,
        None => sqlx::query_scalar("select user_id from app_user where email = $1")
            .bind(email)
            .fetch_one(&mut *conn)
            .await
            .unwrap(),
    };
    users::mark_verified(&mut conn, id).await.unwrap();
    drop(conn);
    api_token::create(&app.ctx.db, id, &format!("tests {scope:?}"), scope, None)
        .await
        .unwrap()
        .unwrap()
        .1
}

/// A REST call with an optional bearer token and JSON body: the status and the JSON answer (`null` if none).
pub(super) async fn call(
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
    let json = resp.json().await.unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn paper_rest_starts_reads_and_controls_runs_for_their_owner_only() {
    let app = app_without_workers().await;
    let (history, _) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = token(&app, "ann@example.org", Role::Trader, Scope::ReadWrite).await;
    let ann_ro = token(&app, "ann@example.org", Role::Trader, Scope::Read).await;
    let bob = token(&app, "bob@example.org", Role::Trader, Scope::ReadWrite).await;
    let viewer = token(&app, "vic@example.org", Role::Viewer, Scope::ReadWrite).await;
    let (s, st) = call(
        &app,
        Method::POST,
        "/api/v1/strategies",
        Some(&ann),
        Some(json!({"name": "SMA", "source": super::SMA})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{st}");
    let sid = st["id"].as_str().unwrap().to_owned();
    let body = |fee: Option<f64>| {
        let mut b = json!({"strategy_id": sid, "instrument_ids": [inst], "timeframe": "5m", "initial_cash": 1000});
        if let Some(f) = fee {
            b["fee"] = json!(f);
        }
        b
    };

    // A fee must be given; an instrument without a live feed is refused; both name the field.
    let (s, e) = call(
        &app,
        Method::POST,
        "/api/v1/paper-runs",
        Some(&ann),
        Some(body(None)),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("fee")),
        "{e}"
    );
    let mut untracked = body(Some(0.001));
    untracked["timeframe"] = json!("1h");
    let (s, e) = call(
        &app,
        Method::POST,
        "/api/v1/paper-runs",
        Some(&ann),
        Some(untracked),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("instrument_ids")),
        "{e}"
    );
    assert!(
        e["detail"].as_str().unwrap().contains("no live feed"),
        "{e}"
    );
    // Who may not start: read-only token, viewer, nobody.
    for t in [Some(ann_ro.as_str()), Some(viewer.as_str())] {
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/v1/paper-runs",
            t,
            Some(body(Some(0.0))),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/paper-runs",
        None,
        Some(body(Some(0.0))),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, started) = call(
        &app,
        Method::POST,
        "/api/v1/paper-runs",
        Some(&ann),
        Some(body(Some(0.0))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{started}");
    let id: Uuid = started["runs"][0]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(started["runs"][0]["links"]["page"], format!("/paper/{id}"));

    let (s, list) = call(
        &app,
        Method::GET,
        "/api/v1/paper-runs?status=live",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["runs"].as_array().unwrap().len(), 1);
    assert_eq!(list["runs"][0]["status"], "active");
    let (_, list) = call(&app, Method::GET, "/api/v1/paper-runs", Some(&bob), None).await;
    assert!(list["runs"].as_array().unwrap().is_empty());
    let (s, e) = call(
        &app,
        Method::GET,
        "/api/v1/paper-runs?status=sleeping",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status"))
    );

    let reads = ["", "/fills", "/trades", "/candles", "/equity", "/parity"];
    for r in reads {
        let path = format!("/api/v1/paper-runs/{id}{r}");
        let (s, v) = call(&app, Method::GET, &path, Some(&ann), None).await;
        // The parity report needs a processed candle; the rest answer.
        let want = if r == "/parity" {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        };
        assert_eq!(s, want, "{path}: {v}");
        let (s, _) = call(&app, Method::GET, &path, Some(&bob), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path} for another user");
        let (s, _) = call(&app, Method::GET, &path, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} anonymous");
    }
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/paper-runs/{}", Uuid::new_v4()),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/paper-runs/{id}/fills?limit=501"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Control: another user 404, a read-only token 403, the owner changes the state.
    for action in ["pause", "resume", "stop"] {
        let path = format!("/api/v1/paper-runs/{id}/{action}");
        let (s, _) = call(&app, Method::POST, &path, Some(&bob), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{action} by another user");
        let (s, _) = call(&app, Method::POST, &path, Some(&ann_ro), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{action} with a read-only token");
    }
    let (s, e) = call(
        &app,
        Method::POST,
        &format!("/api/v1/paper-runs/{id}/resume"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let (s, c) = call(
        &app,
        Method::POST,
        &format!("/api/v1/paper-runs/{id}/pause"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!((s, c["status"].as_str()), (StatusCode::OK, Some("paused")));
    let (s, c) = call(
        &app,
        Method::POST,
        &format!("/api/v1/paper-runs/{id}/resume"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!((s, c["status"].as_str()), (StatusCode::OK, Some("active")));
    // Flat: stopping with flatten stops at once.
    let (s, c) = call(
        &app,
        Method::POST,
        &format!("/api/v1/paper-runs/{id}/stop"),
        Some(&ann),
        Some(json!({"flatten": true})),
    )
    .await;
    assert_eq!((s, c["status"].as_str()), (StatusCode::OK, Some("stopped")));
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/paper-runs/{id}/stop"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/paper-runs/{id}/stop"),
        Some(&ann),
        Some(json!({"flatten": 3})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let started: i64 =
        sqlx::query_scalar("select count(*) from audit_event where event = 'paper_started'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(started, 1, "refused starts leave no audit entry");

    // A per-run notification rule must name one of the user's own runs (another's, or none: 400 on the field).
    for run in [Uuid::new_v4(), id] {
        let who = if run == id { &bob } else { &ann };
        let (s, e) = call(
            &app,
            Method::PUT,
            "/api/v1/notifications/preferences",
            Some(who),
            Some(json!({"rules": [{"category": "paper", "mode": "off", "paper_run_id": run}], "quiet_hours": {"enabled": false, "start": "22:00", "end": "07:00", "action": "defer"}, "digest": {"frequency": "off", "time": "08:00", "weekday": 1}})),
        )
        .await;
        assert_eq!(
            (s, e["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("rules[0].paper_run_id")),
            "{e}"
        );
    }
    let (s, _) = call(
        &app,
        Method::PUT,
        "/api/v1/notifications/preferences",
        Some(&ann),
        Some(json!({"rules": [{"category": "paper", "mode": "off", "paper_run_id": id}], "quiet_hours": {"enabled": false, "start": "22:00", "end": "07:00", "action": "defer"}, "digest": {"frequency": "off", "time": "08:00", "weekday": 1}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // An optional body may be empty or JSON null.
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/paper-runs/{id}/stop"),
        Some(&ann),
        Some(Value::Null),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "null is no body; the run is already stopped"
    );
    let (s, _) = call(
        &app,
        Method::GET,
        "/api/v1/paper-runs?status=",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
