//! The audit log viewer (filters, pages, CSV download, the cap), cancelling a waiting job and the
//! subscriptions list, through the REST API and the console against the real server and Postgres.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use super::{app, form_post, person, rest};
use crate::auth::{location, page_text};

/// Inserts `n` events `event` about `user`, one second apart ending an hour ago.
async fn seed(app: &crate::helpers::TestApp, event: &str, user: Option<Uuid>, n: i64) {
    sqlx::query(
        "insert into audit_event (user_id, event, ip, detail, created_at)
         select $1, $2, '10.0.0.9', jsonb_build_object('i', g), now() - interval '1 hour' - g * interval '1 second'
         from generate_series(1, $3) g",
    )
    .bind(user)
    .bind(event)
    .bind(n)
    .execute(&app.ctx.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn admins_filter_page_and_download_the_audit_log() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    seed(&app, "test_event", Some(ann.id), 250).await;
    seed(&app, "test_event", Some(root.id), 5).await;
    // A user agent that a spreadsheet would run as a formula.
    sqlx::query(
        "insert into audit_event (user_id, event, ip, user_agent, subject_email)
         values (null, 'signin_failed', '10.0.0.7', '=HYPERLINK(\"http://evil\")', 'nobody@example.org')",
    )
    .execute(&app.ctx.db)
    .await
    .unwrap();

    // Pages of 100, newest first, by the user's id; the cursor walks to the end without repeats.
    let mut seen = std::collections::BTreeSet::new();
    let mut before: Option<i64> = None;
    let mut pages = 0;
    loop {
        let mut path = format!(
            "/api/v1/admin/audit?user_id={}&event=test_event&limit=100",
            ann.id
        );
        if let Some(b) = before {
            path.push_str(&format!("&before={b}"));
        }
        let (status, body) = rest(&app, Method::GET, &path, Some(&root.token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let events = body["events"].as_array().unwrap();
        let ids: Vec<i64> = events
            .iter()
            .map(|e| e["audit_event_id"].as_i64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
        for e in events {
            assert_eq!(e["user_email"], "ann@example.org");
            assert_eq!(e["event"], "test_event");
            assert!(seen.insert(e["audit_event_id"].as_i64().unwrap()));
        }
        pages += 1;
        match body["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (250, 3));

    // A time range: the 10 newest seconds of the seeded hour-old run (RFC 3339 bounds).
    let newest: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "select max(created_at) from audit_event where user_id = $1 and event = 'test_event'",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let since = (newest - chrono::Duration::milliseconds(9_500)).to_rfc3339();
    let path = format!(
        "/api/v1/admin/audit?user_id={}&event=test_event&since={}",
        ann.id,
        since.replace('+', "%2B")
    );
    let (status, body) = rest(&app, Method::GET, &path, Some(&root.token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 10, "{body}");

    // Refusals name the field.
    for (q, field) in [
        ("since=2026-12-05&until=2026-12-04", "until"),
        ("event=Not-An-Event", "event"),
    ] {
        let (status, body) = rest(
            &app,
            Method::GET,
            &format!("/api/v1/admin/audit?{q}"),
            Some(&root.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(body.to_string().contains(field), "{q}: {body}");
    }

    // The console: the filter by address, the older link, the CSV link carrying the filter.
    let page = page_text(
        &app,
        &root.browser,
        "/admin/audit?user=ann%40example.org&event=test_event",
    )
    .await;
    assert_eq!(
        page.matches("data-event=\"test_event\"").count(),
        100,
        "{page}"
    );
    assert!(page.contains("id=\"audit-older\""), "{page}");
    assert!(
        page.contains("/admin/audit.csv?user=ann%40example.org&amp;event=test_event"),
        "{page}"
    );
    let page = page_text(
        &app,
        &root.browser,
        "/admin/audit?user=nobody%40example.org",
    )
    .await;
    assert!(page.contains("id=\"audit-filter-error\""), "{page}");
    assert!(page.contains("no account has this address"), "{page}");

    // The download: every matching event, the header, formulas defused, and the download recorded.
    let resp = root
        .browser
        .get(app.url("/admin/audit.csv?user=ann%40example.org&event=test_event"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[reqwest::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"vortex-audit-")
    );
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,time,event,user_id,user_email,actor_id,actor_email,subject_email,ip,user_agent,detail"
    );
    assert_eq!(lines.len(), 251, "{csv}");
    assert!(lines[1..].iter().all(|l| l.contains(",test_event,")));
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "select count(*) from audit_event where event = 'audit_exported' and actor_id = $1
               and (detail->>'events')::int = 250"
        )
        .bind(root.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap(),
        1
    );
    let (status, csv) = {
        let resp = app
            .client
            .get(app.url("/api/v1/admin/audit/export?event=signin_failed"))
            .bearer_auth(&root.token)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.contains(",nobody@example.org,10.0.0.7,\"'=HYPERLINK(\"\"http://evil\"\")\","),
        "{csv}"
    );
    // Compressed (as browsers ask): the body ends cleanly (the compression layer polls the stream after its
    // end, which must not panic the connection).
    let resp = app
        .client
        .get(app.url("/api/v1/admin/audit/export?event=test_event"))
        .bearer_auth(&root.token)
        .header(reqwest::header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[reqwest::header::CONTENT_ENCODING], "gzip");
    let gz = resp.bytes().await.expect("the whole compressed body");
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut csv)
        .expect("a complete gzip stream");
    assert_eq!(csv.lines().count(), 256, "{csv}");

    // More than the cap is refused with a message, nothing streamed; the page says so.
    seed(
        &app,
        "bulk_event",
        None,
        backend::admin::audit::EXPORT_MAX + 1,
    )
    .await;
    let (status, body) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/audit/export?event=bulk_event",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("narrow it"), "{body}");
    let resp = root
        .browser
        .get(app.url("/admin/audit.csv?event=bulk_event"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let back = location(&resp);
    assert!(back.starts_with("/admin/audit?event=bulk_event"), "{back}");
    let page = page_text(&app, &root.browser, &back).await;
    assert!(page.contains("more than 100000 events"), "{page}");

    // Traders: 403 on every surface, nothing of the log shown.
    for path in [
        "/admin/audit",
        "/admin/audit.csv",
        "/api/admin_audit?user=&actor=&event=&since=&until=&before=",
    ] {
        let resp = ann.browser.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(!resp.text().await.unwrap().contains("10.0.0.9"), "{path}");
    }
    let resp = crate::auth::browser()
        .get(app.url("/admin/audit.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&resp).starts_with("/signin"),
        "{}",
        location(&resp)
    );
    for path in ["/api/v1/admin/audit", "/api/v1/admin/audit/export"] {
        let (status, _) = rest(&app, Method::GET, path, Some(&ann.token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
}

/// A job row in `status`; its id.
async fn job(app: &crate::helpers::TestApp, status: &str, run_in_secs: i64) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into job (job_id, queue, kind, status, attempts, max_attempts, run_at, worker, lease_until, started_at)
         values ($1, 'default', 'housekeeping', $2, 1, 5, now() + $3 * interval '1 second',
                 case when $2 = 'running' then 'w-1' end,
                 case when $2 = 'running' then now() + interval '1 minute' end,
                 case when $2 = 'running' then now() end)",
    )
    .bind(id)
    .bind(status)
    .bind(run_in_secs)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    id
}

async fn job_status(app: &crate::helpers::TestApp, id: Uuid) -> String {
    sqlx::query_scalar("select status from job where job_id = $1")
        .bind(id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn admins_cancel_waiting_jobs_and_retry_them_but_not_running_ones() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let later = job(&app, "queued", 3600).await;
    let running = job(&app, "running", 0).await;

    // The console lists the waiting job with a cancel button; cancelling is audited.
    let page = page_text(&app, &root.browser, "/admin/jobs").await;
    let waiting = &page[page.find("id=\"waiting\"").unwrap()..];
    assert!(
        waiting.contains(&format!("data-job-id=\"{later}\"")),
        "{page}"
    );
    assert!(
        !waiting.contains(&format!("data-job-id=\"{running}\"")),
        "{page}"
    );
    let resp = form_post(
        &root.browser,
        &app,
        &format!("/admin/jobs/{later}/cancel"),
        &[],
    )
    .await;
    assert!(
        location(&resp).ends_with("ok=admin_job_cancelled"),
        "{}",
        location(&resp)
    );
    assert_eq!(job_status(&app, later).await, "cancelled");
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "select count(*) from audit_event where event = 'job_cancelled' and detail->>'job_id' = $1"
        )
        .bind(later.to_string())
        .fetch_one(&app.ctx.db)
        .await
        .unwrap(),
        1
    );

    // Cancelling again or a running job: 409 saying why; the running job is untouched.
    for (id, says) in [
        (later, "job is cancelled"),
        (running, "finishes or fails by itself"),
    ] {
        let (status, body) = rest(
            &app,
            Method::POST,
            &format!("/api/v1/admin/jobs/{id}/cancel"),
            Some(&root.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body.to_string().contains(says), "{body}");
    }
    assert_eq!(job_status(&app, running).await, "running");

    // A cancelled job can be retried through the API; then cancelled through it.
    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/jobs/{later}/retry"),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "queued");
    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/jobs/{later}/cancel"),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (status, _) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/jobs/{}/cancel", Uuid::new_v4()),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Cancelling a backtest's job cancels its queued run: the trader sees it cancelled at once.
    let trader = super::actor_of(&ann, backend::auth::Role::Trader);
    let run = crate::notify_inapp::submit(&app, &trader).await;
    let backtest_job: Uuid =
        sqlx::query_scalar("select job_id from backtest_run where backtest_run_id = $1")
            .bind(run)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/jobs/{backtest_job}/cancel"),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = rest(
        &app,
        Method::GET,
        &format!("/api/v1/backtests/{run}"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled", "{body}");

    // The jobs view lists waiting jobs in the API too.
    let waiting_job = job(&app, "queued", 600).await;
    let (_, body) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/jobs",
        Some(&root.token),
        None,
    )
    .await;
    assert!(
        body["waiting"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["job_id"] == Value::String(waiting_job.to_string())),
        "{body}"
    );

    // Traders may not.
    for path in [
        format!("/api/v1/admin/jobs/{waiting_job}/cancel"),
        format!("/api/v1/admin/jobs/{waiting_job}/retry"),
    ] {
        let (status, _) = rest(&app, Method::POST, &path, Some(&ann.token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(job_status(&app, waiting_job).await, "queued");
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "select count(*) from audit_event where event = 'job_cancelled' and detail->>'job_id' = $1"
        )
        .bind(waiting_job.to_string())
        .fetch_one(&app.ctx.db)
        .await
        .unwrap(),
        0
    );
}

#[tokio::test]
async fn the_subscriptions_page_lists_each_traders_provider_state() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let bob = person(&app, "bob@example.org", "trader").await;
    for (who, sub, status, cancel) in [
        (&ann, "sub_ann", "past_due", false),
        (&bob, "sub_bob", "active", true),
    ] {
        sqlx::query(
            "insert into subscription (user_id, customer_id, subscription_id, status, current_period_end,
                                       cancel_at_period_end, observed_at)
             values ($1, $2, $3, $4, now() + interval '20 days', $5, now())",
        )
        .bind(who.id)
        .bind(format!("cus_{sub}"))
        .bind(sub)
        .bind(status)
        .bind(cancel)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    }
    let page = page_text(&app, &root.browser, "/admin/subscriptions").await;
    assert!(page.contains("id=\"billing-off\""), "{page}");
    for (who, status) in [(&ann, "past_due"), (&bob, "active")] {
        let row = format!("data-user-id=\"{}\" data-state=\"{status}\"", who.id);
        assert!(page.contains(&row), "{row}: {page}");
    }
    assert!(page.contains("cus_sub_ann"), "{page}");
    assert!(page.contains("(cancels at period end)"), "{page}");
    for path in ["/admin/subscriptions", "/api/admin_subscriptions"] {
        let resp = ann.browser.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }
}
