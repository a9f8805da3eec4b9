//! Bulk actions on users (`POST /admin/users/bulk`, `POST /api/v1/admin/users/bulk`): each user goes through the
//! single action's rules and audit entry; refusals are reported per user and do not undo the others.

use backend::auth::{Scope, api_token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{app, audits, count, form_post, person, rest};
use crate::auth::{browser, csrf, location, page_text};

const LIVE_SESSIONS: &str = "select count(*) from user_session where user_id = $1 and revoked_at is null and expires_at > now()";

#[tokio::test]
async fn admin_bulk_suspend_from_the_list_does_the_others_and_reports_the_refusal() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let bob = person(&app, "bob@example.org", "trader").await;
    let cat = person(&app, "cat@example.org", "trader").await;
    let traders = [&ann, &bob, &cat];
    let list = page_text(&app, &root.browser, "/admin/users").await;
    assert!(list.contains("id=\"bulk-form\""), "{list}");
    assert!(list.contains(&format!("value=\"{}\"", ann.id)), "{list}");

    let ids: Vec<String> = [ann.id, bob.id, root.id, cat.id]
        .iter()
        .map(Uuid::to_string)
        .collect();
    let mut fields = vec![
        ("action", "suspend"),
        ("reason", "Chargebacks under review"),
        ("back", "status=active&page=1"),
    ];
    fields.extend(ids.iter().map(|id| ("user_id", id.as_str())));
    let resp = form_post(&root.browser, &app, "/admin/users/bulk", &fields).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = location(&resp);
    assert_eq!(to, "/admin/users?status=active&page=1&ok=admin_bulk_done");
    let page = page_text(&app, &root.browser, &to).await;
    assert!(
        page.contains(
            "3 suspended; 1 refused: you cannot suspend your own account; ask another administrator"
        ),
        "{page}"
    );
    // Shown once.
    let again = page_text(&app, &root.browser, "/admin/users").await;
    assert!(!again.contains("id=\"bulk-result\""));

    for p in traders {
        assert_eq!(
            count(&app, LIVE_SESSIONS, Some(p.id)).await,
            0,
            "{}",
            p.email
        );
        assert_eq!(audits(&app, "user_suspended", p.id).await, 1, "{}", p.email);
        let resp = p.browser.get(app.url("/account")).send().await.unwrap();
        assert!(location(&resp).starts_with("/signin"), "{resp:?}");
        let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&p.token), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'user_suspended'",
            None
        )
        .await,
        3
    );
    assert_eq!(audits(&app, "user_suspended", root.id).await, 0);
    assert_eq!(count(&app, LIVE_SESSIONS, Some(root.id)).await, 1);

    // A second bulk suspension never overwrites the first one's reason (the admin did not see it): the
    // suspended user is refused, the other is suspended; a suspension whose end has passed (lifted only at the
    // next sign-in) no longer counts, and is replaced.
    let dan = person(&app, "dan@example.org", "trader").await;
    let (ann_id, dan_id, cat_id) = (ann.id.to_string(), dan.id.to_string(), cat.id.to_string());
    sqlx::query(
        "update app_user set suspended_until = now() - interval '1 minute' where user_id = $1",
    )
    .bind(cat.id)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let resp = form_post(
        &root.browser,
        &app,
        "/admin/users/bulk",
        &[
            ("action", "suspend"),
            ("reason", "Spam"),
            ("user_id", &ann_id),
            ("user_id", &dan_id),
            ("user_id", &cat_id),
        ],
    )
    .await;
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(
        page.contains(
            "2 suspended; 1 refused: already suspended; change or lift that suspension on the user&#x27;s page"
        ) || page.contains(
            "2 suspended; 1 refused: already suspended; change or lift that suspension on the user's page"
        ),
        "{page}"
    );
    let (cat_reason, cat_until): (String, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "select suspended_reason, suspended_until from app_user where user_id = $1 and disabled_at > now() - interval '1 minute'",
    )
    .bind(cat.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!((cat_reason.as_str(), cat_until), ("Spam", None));
    let reason: String =
        sqlx::query_scalar("select suspended_reason from app_user where user_id = $1")
            .bind(ann.id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(reason, "Chargebacks under review");
    assert_eq!(audits(&app, "user_suspended", ann.id).await, 1);
    let id = dan.id.to_string();
    let resp = form_post(
        &root.browser,
        &app,
        "/admin/users/bulk",
        &[("action", "unsuspend"), ("user_id", &id)],
    )
    .await;
    assert!(location(&resp).contains("ok=admin_bulk_done"), "{resp:?}");

    // Lifting: two suspended users and one who is not.
    let ids: Vec<String> = [ann.id, dan.id, bob.id]
        .iter()
        .map(Uuid::to_string)
        .collect();
    let mut fields = vec![("action", "unsuspend")];
    fields.extend(ids.iter().map(|id| ("user_id", id.as_str())));
    let resp = form_post(&root.browser, &app, "/admin/users/bulk", &fields).await;
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(
        page.contains("2 reinstated; 1 refused: this account is not suspended"),
        "{page}"
    );
    assert_eq!(audits(&app, "user_unsuspended", ann.id).await, 1);
    assert_eq!(audits(&app, "user_unsuspended", bob.id).await, 1);
    // (Dan's one lift is the one above.)
    assert_eq!(audits(&app, "user_unsuspended", dan.id).await, 1);
    let suspended = "select count(*) from app_user where disabled_at is not null";
    assert_eq!(count(&app, suspended, None).await, 1);

    // A suspension without a reason changes nobody.
    let id = dan.id.to_string();
    let resp = form_post(
        &root.browser,
        &app,
        "/admin/users/bulk",
        &[("action", "suspend"), ("reason", " "), ("user_id", &id)],
    )
    .await;
    assert!(location(&resp).contains("error=admin_refused"), "{resp:?}");
    // (Dan's one suspension is the earlier one.)
    assert_eq!(audits(&app, "user_suspended", dan.id).await, 1);
    assert_eq!(count(&app, suspended, None).await, 1);
}

#[tokio::test]
async fn admin_bulk_sign_out_over_rest_ends_sessions_and_reports_each_user() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let vera = person(&app, "vera@example.org", "viewer").await;
    let ghost = Uuid::new_v4();
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/users/bulk",
        Some(&root.token),
        Some(json!({ "action": "sign_out", "user_ids": [ann.id, ghost, vera.id, root.id] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["done"], 2, "{body}");
    assert_eq!(body["refused"], 2, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["user_id"], ann.id.to_string());
    assert_eq!(results[0]["outcome"], "done");
    assert_eq!(results[1]["outcome"], "refused");
    assert_eq!(results[1]["code"], "not_found");
    assert_eq!(results[2]["outcome"], "done");
    // Oneself is never signed out as part of a selection (the account page does that).
    assert_eq!(results[3]["code"], "conflict", "{body}");
    assert_eq!(count(&app, LIVE_SESSIONS, Some(root.id)).await, 1);
    assert_eq!(audits(&app, "sessions_revoked_by_admin", root.id).await, 0);
    for p in [&ann, &vera] {
        assert_eq!(count(&app, LIVE_SESSIONS, Some(p.id)).await, 0);
        assert_eq!(audits(&app, "sessions_revoked_by_admin", p.id).await, 1);
        // Tokens keep working after a sign-out.
        let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&p.token), None).await;
        assert_eq!(status, StatusCode::OK);
    }

    // Suspend and lift over REST: oneself is refused, the other is done.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/users/bulk",
        Some(&root.token),
        Some(json!({ "action": "suspend", "user_ids": [root.id, ann.id], "reason": "Review", "until": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339() })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["code"], "conflict", "{body}");
    assert_eq!(body["results"][1]["outcome"], "done", "{body}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/users/bulk",
        Some(&root.token),
        Some(json!({ "action": "unsuspend", "user_ids": [ann.id] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["done"], 1, "{body}");
    assert_eq!(audits(&app, "user_unsuspended", ann.id).await, 1);
}

#[tokio::test]
async fn admin_bulk_rest_validation_names_the_field() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let many: Vec<Uuid> = (0..101).map(|_| Uuid::new_v4()).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "action": "sign_out", "user_ids": [] }), "user_ids"),
        (
            json!({ "action": "sign_out", "user_ids": many }),
            "user_ids",
        ),
        (
            json!({ "action": "sign_out", "user_ids": [ann.id, ann.id] }),
            "user_ids",
        ),
        (
            json!({ "action": "delete", "user_ids": [ann.id] }),
            "action",
        ),
        (
            json!({ "action": "suspend", "user_ids": [ann.id] }),
            "reason",
        ),
        (
            json!({ "action": "suspend", "user_ids": [ann.id], "reason": "  " }),
            "reason",
        ),
        (
            json!({ "action": "suspend", "user_ids": [ann.id], "reason": "x", "until": "2001-01-01T00:00:00Z" }),
            "until",
        ),
    ];
    for (body, field) in cases {
        let (status, out) = rest(
            &app,
            Method::POST,
            "/api/v1/admin/users/bulk",
            Some(&root.token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {out}");
        assert!(
            out["field"].as_str().unwrap_or_default().starts_with(field),
            "{body}: {out}"
        );
    }
    let changed = "select count(*) from audit_event where event in ('user_suspended', 'sessions_revoked_by_admin')";
    assert_eq!(count(&app, changed, None).await, 0);
    assert_eq!(count(&app, LIVE_SESSIONS, Some(ann.id)).await, 1);
}

#[tokio::test]
async fn admin_bulk_is_refused_for_traders_viewers_read_only_tokens_and_anonymous_callers() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let vera = person(&app, "vera@example.org", "viewer").await;
    let (_, read_only) = api_token::create(&app.ctx.db, root.id, "ro", Scope::Read, None)
        .await
        .unwrap()
        .unwrap();
    let body = json!({ "action": "sign_out", "user_ids": [root.id, ann.id] });
    for token in [&ann.token, &vera.token, &read_only] {
        let (status, out) = rest(
            &app,
            Method::POST,
            "/api/v1/admin/users/bulk",
            Some(token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{out}");
    }
    let (status, _) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/users/bulk",
        None,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let root_id = root.id.to_string();
    let fields = [("action", "sign_out"), ("user_id", root_id.as_str())];
    for who in [&ann, &vera] {
        let resp = form_post(&who.browser, &app, "/admin/users/bulk", &fields).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    let anon = browser();
    let token = csrf(&app, &anon, "/signin").await;
    let resp = anon
        .post(app.url("/admin/users/bulk"))
        .form(&[
            ("action", "sign_out"),
            ("user_id", root_id.as_str()),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(location(&resp).starts_with("/signin"), "{resp:?}");
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'sessions_revoked_by_admin'",
            None
        )
        .await,
        0
    );
    assert_eq!(count(&app, LIVE_SESSIONS, Some(root.id)).await, 1);
}
