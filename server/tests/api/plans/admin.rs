//! The admin routes: refused for traders (403) and anonymous callers (401); validation names the field.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{app, audits, person, rest};

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
