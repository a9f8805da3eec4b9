//! The admin pages and their forms against the real server.

use reqwest::{Client, Method, StatusCode};
use uuid::Uuid;

use super::{Person, app, audits, form_post as post, paper_run, person, rest, run_status};
use crate::{
    auth::{PASSWORD, browser, csrf, location, page_text, sign_in},
    helpers::TestApp,
};

/// The page after a form's redirect.
async fn follow(app: &TestApp, client: &Client, resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{resp:?}");
    page_text(app, client, &location(resp)).await
}

fn pages(user: Uuid) -> Vec<String> {
    vec![
        "/admin".into(),
        "/admin/users".into(),
        format!("/admin/users/{user}"),
        "/admin/signups".into(),
        "/admin/plans".into(),
        "/admin/catalogue".into(),
        format!("/admin/catalogue/{user}"),
        "/admin/jobs".into(),
        "/admin/kill".into(),
        "/admin/audit".into(),
        "/admin/subscriptions".into(),
        "/admin/market".into(),
    ]
}

fn forms(user: Uuid) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    let some = Uuid::new_v4();
    vec![
        (
            format!("/admin/users/{user}/suspend"),
            vec![("reason", "no")],
        ),
        (format!("/admin/users/{user}/unsuspend"), vec![]),
        ("/admin/users/bulk".into(), vec![("action", "sign_out")]),
        (format!("/admin/users/{user}/role"), vec![("role", "admin")]),
        (format!("/admin/users/{user}/sign-out"), vec![]),
        (format!("/admin/users/{user}/plan"), vec![("plan", "free")]),
        (format!("/admin/users/{user}/verification"), vec![]),
        (format!("/admin/users/{user}/export.json"), vec![]),
        (
            format!("/admin/users/{user}/delete"),
            vec![("confirm_email", "root@example.org")],
        ),
        ("/admin/plans".into(), vec![("slug", "x"), ("name", "X")]),
        (format!("/admin/plans/{some}"), vec![("name", "Y")]),
        (
            "/admin/catalogue".into(),
            vec![
                ("slug", "x"),
                ("name", "X"),
                ("source", "entry long when close > open"),
                ("published", "true"),
            ],
        ),
        (
            format!("/admin/catalogue/{some}"),
            vec![("name", "Y"), ("published", "true")],
        ),
        ("/admin/jobs/housekeeping".into(), vec![]),
        ("/admin/billing/reconcile".into(), vec![]),
        (format!("/admin/jobs/{some}/retry"), vec![]),
        (format!("/admin/jobs/{some}/cancel"), vec![]),
        (
            "/admin/market/track".into(),
            vec![
                ("pair", "ETH/BTC"),
                ("timeframe", "1h"),
                ("tracked", "true"),
            ],
        ),
        ("/admin/market/update".into(), vec![]),
        (
            "/admin/market/backfill".into(),
            vec![
                ("pair", "ETH/BTC"),
                ("timeframe", "1h"),
                ("from", "2024-01-01"),
                ("to", "2024-01-02"),
            ],
        ),
        (
            "/admin/kill".into(),
            vec![("scope", "platform"), ("mode", "halt"), ("reason", "no")],
        ),
        (format!("/admin/kill/{some}/release"), vec![]),
        ("/admin/invites".into(), vec![]),
        (
            format!("/admin/users/{user}/approver"),
            vec![("approver", "on")],
        ),
        (format!("/admin/signups/{user}/approve"), vec![]),
        (
            format!("/admin/signups/{user}/reject"),
            vec![("reason", "no")],
        ),
        (
            "/admin/settings".into(),
            vec![("signup_policy", "closed"), ("banner", "no")],
        ),
    ]
}

#[tokio::test]
async fn admin_pages_refuse_traders_and_viewers_and_send_the_anonymous_to_sign_in() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let vera = person(&app, "vera@example.org", "viewer").await;
    for who in [&ann, &vera] {
        for path in pages(root.id) {
            let resp = who.browser.get(app.url(&path)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
            let html = resp.text().await.unwrap();
            assert!(!html.contains("root@example.org"), "{path}: {html}");
        }
        for (action, fields) in forms(root.id) {
            let resp = post(&who.browser, &app, &action, &fields).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{action}");
        }
        for f in [
            "/api/admin_overview",
            "/api/admin_users?q=&role=&status=&page=1",
            &format!("/api/admin_user?id={}", root.id),
            "/api/admin_plans",
            "/api/admin_catalogue",
            &format!("/api/admin_catalogue_entry?id={}", root.id),
            "/api/admin_jobs",
            "/api/admin_kill",
            "/api/admin_audit?user=&actor=&event=&since=&until=&before=",
            "/api/admin_subscriptions",
            "/api/admin_market",
            "/api/admin_signups",
        ] {
            let resp = who.browser.get(app.url(f)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{f}");
        }
        // No "Admin" link in their header.
        assert!(
            !page_text(&app, &who.browser, "/account")
                .await
                .contains("id=\"admin-link\"")
        );
    }
    assert!(
        page_text(&app, &root.browser, "/account")
            .await
            .contains("id=\"admin-link\"")
    );
    let anon = browser();
    for path in pages(root.id) {
        let resp = anon.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            location(&resp).starts_with(&format!("/signin?next={path}")),
            "{path}: {}",
            location(&resp)
        );
    }
    let token = csrf(&app, &anon, "/signin").await;
    for (action, mut fields) in forms(root.id) {
        fields.push(("csrf", &token));
        let resp = anon
            .post(app.url(&action))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{action}");
        assert!(location(&resp).starts_with("/signin"), "{action}");
    }
    // Nothing changed.
    let changed: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event in
           ('user_suspended', 'role_changed', 'sessions_revoked_by_admin', 'plan_assigned', 'plan_created',
            'job_retried', 'kill_switch_thrown', 'platform_settings_changed', 'invite_created',
            'catalogue_created', 'catalogue_updated', 'job_cancelled', 'audit_exported',
            'account_deleted', 'data_exported', 'market_series_tracked', 'market_update_requested', 'market_backfill_requested',
            'signup_approved', 'signup_rejected', 'signup_approver_changed', 'billing_reconcile_requested')",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(changed, 0);
}

#[tokio::test]
async fn admin_forms_without_a_csrf_token_are_refused() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let resp = root
        .browser
        .post(app.url(&format!("/admin/users/{}/suspend", ann.id)))
        .form(&[("reason", "no token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = root
        .browser
        .post(app.url(&format!("/admin/users/{}/suspend", ann.id)))
        .form(&[("reason", "wrong token"), ("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(audits(&app, "user_suspended", ann.id).await, 0);
    let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn user_page(app: &TestApp, admin: &Person, user: Uuid) -> String {
    page_text(app, &admin.browser, &format!("/admin/users/{user}")).await
}

#[tokio::test]
async fn admin_user_page_suspends_restores_changes_role_assigns_a_plan_and_signs_out() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let run = paper_run(&app, &ann).await;
    let base = format!("/admin/users/{}", ann.id);

    let list = page_text(&app, &root.browser, "/admin/users?q=ann").await;
    assert!(
        list.contains(&format!("data-user-id=\"{}\"", ann.id)),
        "{list}"
    );
    assert!(
        !list.contains(&format!("data-user-id=\"{}\"", root.id)),
        "{list}"
    );
    let overview = page_text(&app, &root.browser, "/admin").await;
    assert!(
        overview.contains("id=\"stat-users\" class=\"stat-value\">2<"),
        "{overview}"
    );

    // A reason is required: refused in place, nothing done.
    let resp = post(
        &root.browser,
        &app,
        &format!("{base}/suspend"),
        &[("reason", "  ")],
    )
    .await;
    let page = follow(&app, &root.browser, &resp).await;
    assert!(
        page.contains("id=\"form-error\" data-field=\"reason\""),
        "{page}"
    );
    assert_eq!(audits(&app, "user_suspended", ann.id).await, 0);

    let resp = post(
        &root.browser,
        &app,
        &format!("{base}/suspend"),
        &[("reason", "Unpaid invoice"), ("until", "")],
    )
    .await;
    assert!(
        location(&resp).ends_with("ok=admin_suspended"),
        "{}",
        location(&resp)
    );
    let page = follow(&app, &root.browser, &resp).await;
    assert!(
        page.contains("id=\"suspension\"") && page.contains("Unpaid invoice"),
        "{page}"
    );
    assert_eq!(run_status(&app, run).await, "paused");
    let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = sign_in(&app, &browser(), &ann.email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().await.unwrap().contains("Unpaid invoice"));
    let suspended = page_text(&app, &root.browser, "/admin/users?status=suspended").await;
    assert!(suspended.contains("ann@example.org"), "{suspended}");

    let resp = post(&root.browser, &app, &format!("{base}/unsuspend"), &[]).await;
    assert!(location(&resp).ends_with("ok=admin_unsuspended"));
    assert!(
        !user_page(&app, &root, ann.id)
            .await
            .contains("id=\"suspension\"")
    );
    let ann_browser = browser();
    assert_eq!(
        location(&sign_in(&app, &ann_browser, &ann.email, PASSWORD).await),
        "/account"
    );

    // Role: the admin cannot change their own; a trader becomes a viewer.
    let resp = post(
        &root.browser,
        &app,
        &format!("/admin/users/{}/role", root.id),
        &[("role", "trader")],
    )
    .await;
    let page = follow(&app, &root.browser, &resp).await;
    assert!(
        page.contains("id=\"form-error\" data-field=\"conflict\""),
        "{page}"
    );
    let resp = post(
        &root.browser,
        &app,
        &format!("{base}/role"),
        &[("role", "viewer")],
    )
    .await;
    assert!(location(&resp).ends_with("ok=admin_role_changed"));
    let role: String = sqlx::query_scalar("select role from app_user where user_id = $1")
        .bind(ann.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(role, "viewer");
    assert_eq!(audits(&app, "role_changed", ann.id).await, 1);

    // A plan made on the plans page, then assigned.
    let resp = post(
        &root.browser,
        &app,
        "/admin/plans",
        &[
            ("slug", "pro"),
            ("name", "Pro"),
            ("price_minor", "1900"),
            ("currency", "USD"),
            ("billing_period", "month"),
            ("trial_days", "14"),
            ("limit_concurrent_backtests", "7"),
            ("limit_strategies", "40"),
            ("limit_history_days", ""),
        ],
    )
    .await;
    assert!(
        location(&resp).ends_with("ok=admin_plan_saved"),
        "{}",
        location(&resp)
    );
    let plans = page_text(&app, &root.browser, "/admin/plans").await;
    assert!(plans.contains("data-plan=\"pro\""), "{plans}");
    let limits = |slug: &'static str| {
        let db = app.ctx.db.clone();
        async move {
            sqlx::query_scalar::<_, serde_json::Value>("select limits from plan where slug = $1")
                .bind(slug)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    // The form's limits are stored; an empty field sets nothing.
    assert_eq!(
        limits("pro").await,
        serde_json::json!({ "concurrent_backtests": 7, "strategies": 40 })
    );
    assert!(
        plans.contains(r#"name="limit_concurrent_backtests" data-limit="concurrent_backtests""#),
        "{plans}"
    );
    let pro: Uuid = sqlx::query_scalar("select plan_id from plan where slug = 'pro'")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    // Editing: an emptied field removes the plan's value; an out-of-range one is refused in place, naming
    // the limit, and changes nothing.
    let edit = |fields: Vec<(&'static str, &'static str)>| {
        let mut all = vec![
            ("name", "Pro"),
            ("price_minor", "1900"),
            ("currency", "USD"),
        ];
        all.extend(fields);
        all
    };
    let resp = post(
        &root.browser,
        &app,
        &format!("/admin/plans/{pro}"),
        &edit(vec![
            ("limit_concurrent_backtests", "9"),
            ("limit_strategies", ""),
        ]),
    )
    .await;
    assert!(location(&resp).ends_with("ok=admin_plan_saved"));
    assert_eq!(
        limits("pro").await,
        serde_json::json!({ "concurrent_backtests": 9 })
    );
    for (value, field) in [
        ("5000", "limits.concurrent_backtests"),
        ("seven", "limits.concurrent_backtests"),
    ] {
        let resp = post(
            &root.browser,
            &app,
            &format!("/admin/plans/{pro}"),
            &edit(vec![("limit_concurrent_backtests", value)]),
        )
        .await;
        let page = follow(&app, &root.browser, &resp).await;
        assert!(
            page.contains(&format!(r#"id="form-error" data-field="{field}""#)),
            "{value}: {page}"
        );
    }
    let resp = post(
        &root.browser,
        &app,
        &format!("/admin/plans/{pro}"),
        &edit(vec![("limit_no_such_limit", "3")]),
    )
    .await;
    let page = follow(&app, &root.browser, &resp).await;
    assert!(
        page.contains(r#"data-field="limits.no_such_limit""#),
        "{page}"
    );
    assert_eq!(
        limits("pro").await,
        serde_json::json!({ "concurrent_backtests": 9 })
    );
    let resp = post(
        &root.browser,
        &app,
        "/admin/plans",
        &[("slug", "Bad Slug"), ("name", "Bad")],
    )
    .await;
    let page = follow(&app, &root.browser, &resp).await;
    assert!(page.contains("data-field=\"slug\""), "{page}");
    let resp = post(
        &root.browser,
        &app,
        &format!("{base}/plan"),
        &[("plan", "pro"), ("reason", "conference comp")],
    )
    .await;
    assert!(location(&resp).ends_with("ok=admin_plan_assigned"));
    let page = user_page(&app, &root, ann.id).await;
    assert!(page.contains("id=\"plan-name\">Pro<"), "{page}");

    // Force sign-out ends the browser session.
    let resp = post(&root.browser, &app, &format!("{base}/sign-out"), &[]).await;
    assert!(location(&resp).ends_with("ok=admin_signed_out"));
    let resp = ann_browser.get(app.url("/account")).send().await.unwrap();
    assert!(location(&resp).starts_with("/signin"), "{resp:?}");
    assert_eq!(audits(&app, "sessions_revoked_by_admin", ann.id).await, 1);
}

#[tokio::test]
async fn admin_jobs_page_retries_a_failed_job_and_the_kill_page_throws_and_releases() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let job = Uuid::new_v4();
    sqlx::query(
        "insert into job (job_id, queue, kind, status, attempts, max_attempts, last_error, finished_at)
         values ($1, 'default', 'housekeeping', 'failed', 5, 5, 'boom: the disk is full', now())",
    )
    .bind(job)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let page = page_text(&app, &root.browser, "/admin/jobs").await;
    assert!(page.contains(&format!("data-job-id=\"{job}\"")), "{page}");
    assert!(page.contains("boom: the disk is full"), "{page}");
    let resp = post(
        &root.browser,
        &app,
        &format!("/admin/jobs/{job}/retry"),
        &[],
    )
    .await;
    assert!(
        location(&resp).ends_with("ok=admin_job_retried"),
        "{}",
        location(&resp)
    );
    let status: String = sqlx::query_scalar("select status from job where job_id = $1")
        .bind(job)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(status, "queued");
    // Retrying a queued job is refused in place.
    let resp = post(
        &root.browser,
        &app,
        &format!("/admin/jobs/{job}/retry"),
        &[],
    )
    .await;
    let page = follow(&app, &root.browser, &resp).await;
    assert!(page.contains("only failed or cancelled jobs"), "{page}");

    // Kill switches: a user switch by email, then the platform's; released again.
    let resp = post(
        &root.browser,
        &app,
        "/admin/kill",
        &[
            ("scope", "user"),
            ("email", "nobody@example.org"),
            ("mode", "halt"),
            ("reason", "x"),
        ],
    )
    .await;
    let page = follow(&app, &root.browser, &resp).await;
    assert!(page.contains("data-field=\"email\""), "{page}");
    let resp = post(
        &root.browser,
        &app,
        "/admin/kill",
        &[
            ("scope", "user"),
            ("email", &ann.email),
            ("mode", "reduce_only"),
            ("reason", "margin review"),
        ],
    )
    .await;
    assert!(
        location(&resp).ends_with("ok=admin_switch_thrown"),
        "{}",
        location(&resp)
    );
    let resp = post(
        &root.browser,
        &app,
        "/admin/kill",
        &[
            ("scope", "platform"),
            ("mode", "halt"),
            ("reason", "exchange outage"),
        ],
    )
    .await;
    let page = follow(&app, &root.browser, &resp).await;
    assert!(
        page.contains("data-scope=\"platform\"") && page.contains("exchange outage"),
        "{page}"
    );
    assert!(
        page.contains("data-scope=\"user\"") && page.contains("margin review"),
        "{page}"
    );
    let overview = page_text(&app, &root.browser, "/admin").await;
    assert!(overview.contains("exchange outage"), "{overview}");
    let platform: Uuid = sqlx::query_scalar(
        "select switch_id from kill_switch where scope = 'platform' and released_at is null",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let resp = post(
        &root.browser,
        &app,
        &format!("/admin/kill/{platform}/release"),
        &[("reason", "exchange back")],
    )
    .await;
    let page = follow(&app, &root.browser, &resp).await;
    assert!(!page.contains("data-scope=\"platform\""), "{page}");
    assert!(page.contains("data-scope=\"user\""), "{page}");
}
