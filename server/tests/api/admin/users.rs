//! The admin users REST API.

use backend::{Actor, Error, Surface, admin::users};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{app, audits, paper_run, person, rest, run_status};
use crate::auth::{PASSWORD, browser, location, sign_in};

#[tokio::test]
async fn admin_suspension_ends_access_pauses_runs_and_tells_the_user_why() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let run = paper_run(&app, &ann).await;
    assert_eq!(run_status(&app, run).await, "active");
    let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::OK);

    let path = format!("/api/v1/admin/users/{}/suspend", ann.id);
    let (status, body) = rest(
        &app,
        Method::POST,
        &path,
        Some(&root.token),
        Some(json!({ "reason": "Chargeback under review" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tokens_revoked"], 1, "{body}");
    assert_eq!(body["paper_runs_paused"], 1, "{body}");
    assert!(body["sessions_ended"].as_u64().unwrap() >= 1, "{body}");

    // Every way in is closed: the token, the browser session, a new sign-in (which says why).
    let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = ann.browser.get(app.url("/account")).send().await.unwrap();
    assert!(location(&resp).starts_with("/signin"), "{resp:?}");
    assert_eq!(run_status(&app, run).await, "paused");
    let again = browser();
    let resp = sign_in(&app, &again, &ann.email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Account suspended"), "{page}");
    assert!(page.contains("Chargeback under review"), "{page}");
    // A wrong password learns nothing about the suspension.
    let resp = sign_in(&app, &browser(), &ann.email, "not the password at all").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(location(&resp).starts_with("/signin?error="), "{resp:?}");

    assert_eq!(audits(&app, "user_suspended", ann.id).await, 1);
    assert_eq!(audits(&app, "paper_paused", ann.id).await, 1);
    // The administrators are told (one event, the addresses masked, a link to the user's admin page).
    let (count, payload): (i64, serde_json::Value) = sqlx::query_as(
        "select count(*) over (), payload from notify_event where event_type = 'admin.user_suspended'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(count, 1);
    assert_eq!(payload["user_id"], ann.id.to_string(), "{payload}");
    assert_eq!(payload["reason"], "Chargeback under review");
    assert!(
        !payload.to_string().contains("ann@example.org"),
        "{payload}"
    );
    let (status, detail) = rest(
        &app,
        Method::GET,
        &format!("/api/v1/admin/users/{}", ann.id),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["user"]["suspended"], true);
    assert_eq!(detail["suspension"]["reason"], "Chargeback under review");
    assert_eq!(detail["suspension"]["by"], root.id.to_string());
    assert_eq!(detail["tokens"], 0);
    assert_eq!(detail["sessions"], 0);
    assert_eq!(detail["plan"]["plan"]["slug"], "free", "{detail}");
    assert!(
        detail["recent_audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "user_suspended"),
        "{detail}"
    );

    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{}/unsuspend", ann.id),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("suspension").is_none(), "{body}");
    let resp = sign_in(&app, &browser(), &ann.email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/account");
    // The run stays paused until its owner resumes it.
    assert_eq!(run_status(&app, run).await, "paused");
    assert_eq!(audits(&app, "user_unsuspended", ann.id).await, 1);
    // Unsuspending an active account is a conflict.
    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{}/unsuspend", ann.id),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn admin_a_suspension_with_an_end_lifts_itself_at_the_next_sign_in() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let path = format!("/api/v1/admin/users/{}/suspend", ann.id);
    for (until, field) in [
        ("2001-01-01T00:00:00Z", "until"),
        ("2999-01-01T00:00:00Z", "until"),
    ] {
        let (status, body) = rest(
            &app,
            Method::POST,
            &path,
            Some(&root.token),
            Some(json!({ "reason": "Cooling off", "until": until })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["field"], field, "{body}");
    }
    let until = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let (status, body) = rest(
        &app,
        Method::POST,
        &path,
        Some(&root.token),
        Some(json!({ "reason": "Cooling off", "until": until })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resp = sign_in(&app, &browser(), &ann.email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("Cooling off") && page.contains("It ends on"),
        "{page}"
    );

    // Two days later (moved in the database: the end was checked to be in the future when it was set).
    sqlx::query(
        "update app_user set suspended_until = now() - interval '1 minute' where user_id = $1",
    )
    .bind(ann.id)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let resp = sign_in(&app, &browser(), &ann.email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/account");
    let expired: Value = sqlx::query_scalar(
        "select detail from audit_event where event = 'user_unsuspended' and user_id = $1",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(expired["expired"], true, "{expired}");
}

#[tokio::test]
async fn admin_cannot_suspend_or_demote_themselves_or_the_last_admin() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let bob = person(&app, "bob@example.org", "admin").await;
    let t = Some(root.token.as_str());
    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{}/suspend", root.id),
        t,
        Some(json!({ "reason": "oops" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("your own account"),
        "{body}"
    );
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{}", root.id),
        t,
        Some(json!({ "role": "trader" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Bob can be demoted while root stays an admin; the change ends his sessions and is audited.
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{}", bob.id),
        t,
        Some(json!({ "role": "viewer" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["role"], "viewer");
    assert_eq!(body["sessions"], 0);
    assert_eq!(audits(&app, "role_changed", bob.id).await, 1);
    let (status, _) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/users",
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Root is now the last active admin: not even the operator can suspend or demote them.
    let operator = Actor::system(Surface::Cli);
    let e = users::suspend(&operator, &app.ctx, root.id, "testing", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("last active administrator")),
        "{e:?}"
    );
    let e = users::set_role(&operator, &app.ctx, root.id, backend::auth::Role::Trader)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("last active administrator")),
        "{e:?}"
    );
    assert_eq!(audits(&app, "user_suspended", root.id).await, 0);
    // Bad input names the field.
    for (body, field) in [(json!({ "role": "owner" }), "role")] {
        let (status, b) = rest(
            &app,
            Method::PATCH,
            &format!("/api/v1/admin/users/{}", bob.id),
            t,
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["field"], field, "{b}");
    }
    for (body, field) in [
        (json!({ "reason": "   " }), "reason"),
        (json!({ "reason": "x".repeat(501) }), "reason"),
    ] {
        let (status, b) = rest(
            &app,
            Method::POST,
            &format!("/api/v1/admin/users/{}/suspend", bob.id),
            t,
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["field"], field, "{b}");
    }
    let (status, _) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{}/suspend", Uuid::new_v4()),
        t,
        Some(json!({ "reason": "nobody" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_user_list_searches_filters_and_pages() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let t = Some(root.token.as_str());
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            person(&app, &format!("trader{i}@example.org"), "trader")
                .await
                .id,
        );
    }
    let viewer = person(&app, "vera@example.org", "viewer").await;
    let (status, _) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{}/suspend", ids[0]),
        t,
        Some(json!({ "reason": "spam" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let app = &app;
    let list = |q: &str| {
        let path = format!("/api/v1/admin/users?{q}");
        async move { rest(app, Method::GET, &path, t, None).await }
    };
    let (status, all) = list("").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["total"], 7);
    let (_, page) = list("role=trader&limit=2&offset=2").await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["users"].as_array().unwrap().len(), 2);
    let (_, page) = list("role=trader&limit=2&offset=100").await;
    assert_eq!(page["total"], 5, "{page}");
    assert!(page["users"].as_array().unwrap().is_empty());
    let (_, page) = list("status=suspended").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["users"][0]["user_id"], ids[0].to_string());
    let (_, page) = list("q=VERA").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["users"][0]["user_id"], viewer.id.to_string());
    assert_eq!(page["users"][0]["plan"], "free");
    // `%` is searched for as itself.
    let (_, page) = list("q=%25").await;
    assert_eq!(page["total"], 0, "{page}");
    for q in [
        "limit=0",
        "limit=201",
        "offset=-1",
        "role=owner",
        "status=gone",
        "role=",
        "status=",
    ] {
        let (status, body) = list(q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
    }
}

#[tokio::test]
async fn admin_api_routes_are_refused_for_traders_viewers_and_anonymous_callers() {
    let app = app().await;
    let _root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let vera = person(&app, "vera@example.org", "viewer").await;
    let id = ann.id;
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/admin/users".into(), None),
        (Method::GET, format!("/api/v1/admin/users/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/admin/users/{id}"),
            Some(json!({ "role": "admin" })),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{id}/suspend"),
            Some(json!({ "reason": "x" })),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{id}/unsuspend"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{id}/sign-out"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/users/{id}?confirm_email=ann%40example.org"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{id}/verification"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/users/{id}/export"),
            None,
        ),
        (Method::GET, "/api/v1/admin/jobs".into(), None),
        (Method::POST, format!("/api/v1/admin/jobs/{id}/retry"), None),
        (
            Method::POST,
            format!("/api/v1/admin/jobs/{id}/cancel"),
            None,
        ),
        (Method::GET, "/api/v1/admin/audit".into(), None),
        (Method::GET, "/api/v1/admin/audit/export".into(), None),
        (Method::GET, "/api/v1/admin/market".into(), None),
        (Method::GET, "/api/v1/admin/settings".into(), None),
        (
            Method::PATCH,
            "/api/v1/admin/settings".into(),
            Some(json!({ "signup_policy": "closed" })),
        ),
        (Method::POST, "/api/v1/admin/invites".into(), None),
        (
            Method::POST,
            "/api/v1/admin/market/series".into(),
            Some(json!({ "pair": "ETH/BTC", "timeframe": "1h", "tracked": true })),
        ),
        (Method::POST, "/api/v1/admin/market/update".into(), None),
        (Method::GET, "/api/v1/admin/billing/reconcile".into(), None),
        (Method::POST, "/api/v1/admin/billing/reconcile".into(), None),
        (
            Method::POST,
            "/api/v1/admin/market/backfill".into(),
            Some(
                json!({ "pair": "ETH/BTC", "timeframe": "1h", "from": "2024-01-01", "to": "2024-01-02" }),
            ),
        ),
        (Method::GET, "/api/v1/admin/catalogue".into(), None),
        (
            Method::POST,
            "/api/v1/admin/catalogue".into(),
            Some(json!({ "slug": "x", "name": "X", "source": "entry long when close > open" })),
        ),
        (Method::GET, format!("/api/v1/admin/catalogue/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/admin/catalogue/{id}"),
            Some(json!({ "published": false })),
        ),
    ];
    for (method, path, body) in routes {
        for who in [&ann, &vera] {
            let (status, b) =
                rest(&app, method.clone(), &path, Some(&who.token), body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {b}");
        }
        let (status, _) = rest(&app, method.clone(), &path, None, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let role: String = sqlx::query_scalar("select role from app_user where user_id = $1")
        .bind(id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(role, "trader");
}

#[tokio::test]
async fn admin_force_sign_out_ends_sessions_but_keeps_tokens() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{}/sign-out", ann.id),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sessions_ended"], 1);
    let resp = ann.browser.get(app.url("/account")).send().await.unwrap();
    assert!(location(&resp).starts_with("/signin"), "{resp:?}");
    let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(audits(&app, "sessions_revoked_by_admin", ann.id).await, 1);
}
