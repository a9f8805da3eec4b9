//! Reconciliation with the provider after lost webhooks (docs/billing.md, "Reconciliation"), against the mock's
//! event list and subscriptions: a checkout whose webhooks never arrived ends active on the paid plan; events
//! processed before (by their webhook or a run) are not processed again; more events than a page, and more than
//! a run's page budget (the next run continues after the last event done); a cancel whose webhook was lost ends
//! the paid plan; the provider failing (500, not JSON, too slow) is recorded and changes nothing, and the next
//! run continues; "Reconcile now" in the console and over REST, and who may use it; the schedule's due check
//! (a day after a run that finished ok, an hour after one that did not, doubling);
//! the retention of processed event ids; the settings' bounds.

use std::time::Duration;

use backend::{
    auth::{Scope, api_token},
    billing::reconcile::{self, Run, Trigger},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use super::{
    SECRET, ack, buy_pro, buy_pro_delivered, count, entitlement, events_of, mock_stripe::Failure,
    mock_stripe::MockStripe, my_billing, rest, setup, setup_on,
};
use crate::{
    auth::{browser, csrf, location, page_text, post_form},
    helpers::{TestApp, vortex_bin, vortex_cli_with},
    plans::{app, person},
};

/// What the schedule's check enqueues now (`None`: not due, or one pending).
async fn scheduled(app: &TestApp) -> Option<Uuid> {
    reconcile::enqueue_scheduled(&app.ctx).await.unwrap()
}

/// Cancels a queued job (so the next schedule check is not refused as pending).
async fn cancel_job(app: &TestApp, job: Uuid) {
    sqlx::query("update job set status = 'cancelled', finished_at = now() where job_id = $1")
        .bind(job)
        .execute(&app.ctx.db)
        .await
        .unwrap();
}

/// One reconciliation run now, as the job runs it.
async fn reconcile(app: &TestApp) -> Run {
    reconcile::run_once(&app.ctx, None, Trigger::Schedule, None)
        .await
        .expect("the run is recorded")
        .expect("billing is on and no other run holds the lock")
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

/// The value of `key` in one `GET /v1/events` call's query (the first, for `types[]`: all of them).
fn param<'a>(call: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    call.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The three events Stripe sends for a completed checkout (made at the mock, not delivered); the first.
fn checkout_events(mock: &MockStripe, session: &Value) -> String {
    let sub_id = session["subscription"].as_str().unwrap();
    let completed = mock.event("checkout.session.completed", session.clone());
    mock.event(
        "customer.subscription.created",
        mock.subscription(sub_id).unwrap(),
    );
    mock.event(
        "invoice.paid",
        json!({ "id": "in_lost", "object": "invoice", "customer": session["customer"],
                "subscription": sub_id, "status": "paid", "amount_paid": 1900 }),
    );
    completed
}

#[tokio::test]
async fn billing_reconcile_recovers_a_checkout_whose_webhooks_were_lost() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    let session = buy_pro(&app, &mock, &ann).await;
    // Vortex was down: none of the checkout's events was delivered. An event of a type Vortex does not act on
    // is not even asked for.
    let completed = checkout_events(&mock, &session);
    mock.event("customer.created", json!({ "id": "cus_other" }));
    assert_eq!(entitlement(&app, &ann).await, ("free".into(), 5));

    let run = reconcile(&app).await;
    assert_eq!(run.outcome, "ok", "{run:?}");
    assert!(
        run.events_complete && run.events_resume.is_none(),
        "{run:?}"
    );
    assert_eq!(
        (
            run.pages,
            run.events_seen,
            run.events_processed,
            run.events_duplicate
        ),
        (1, 3, 3, 0),
        "{run:?}"
    );
    assert!(run.errors.is_empty(), "{run:?}");
    // The paid plan applies, told once, audited as the system; the events are recorded as reconciled.
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    assert_eq!(
        my_billing(&app, &ann).await["subscription"]["status"],
        "active"
    );
    assert_eq!(events_of(&app, ann.id, "billing.plan_changed").await, 1);
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'plan_assigned' and user_id = $1 and actor_id is null",
            ann.id
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            "select count(*) from billing_event where source = 'reconcile'"
        )
        .await,
        3
    );
    // Stripe's list API as documented: the handled types, the first window 30 days back, 100 a page. The
    // subscription was read once for the three events and the sync that followed.
    let calls = mock.event_list_calls();
    assert_eq!(calls.len(), 1);
    let mut types = param(&calls[0], "types[]");
    types.sort_unstable();
    let mut handled = backend::billing::webhook::EVENTS.to_vec();
    handled.sort_unstable();
    assert_eq!(types, handled);
    assert_eq!(param(&calls[0], "limit"), ["100"]);
    let gte: i64 = param(&calls[0], "created[gte]")[0].parse().unwrap();
    assert_eq!(gte, run.events_from.timestamp());
    assert!(
        (run.events_to - run.events_from - chrono::TimeDelta::days(30))
            .num_seconds()
            .abs()
            <= 1,
        "{run:?}"
    );
    assert!(param(&calls[0], "starting_after").is_empty());
    assert_eq!(mock.subscription_reads(), 1);
    assert_eq!(run.subscriptions_synced, 1, "{run:?}");

    // The late webhook of an event the run processed does nothing.
    assert_eq!(
        ack(mock.deliver(&app.address, &completed, SECRET).await).await,
        "already processed"
    );
    let calls_before = mock.event_list_calls().len();
    // The next run starts its window an hour before the last one ended, and finds nothing new to do.
    let next = reconcile(&app).await;
    assert_eq!(next.outcome, "ok", "{next:?}");
    assert_eq!(
        next.events_from,
        run.events_to - chrono::TimeDelta::hours(1)
    );
    assert_eq!(
        (
            next.events_seen,
            next.events_processed,
            next.events_duplicate
        ),
        (3, 0, 3)
    );
    let calls = mock.event_list_calls();
    assert_eq!(calls.len(), calls_before + 1);
    assert_eq!(
        param(&calls[calls_before], "created[gte]"),
        [next.events_from.timestamp().to_string().as_str()]
    );
    assert_eq!(events_of(&app, ann.id, "billing.plan_changed").await, 1);
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'plan_assigned' and user_id = $1",
            ann.id
        )
        .await,
        1
    );
    assert_eq!(scalar(&app, "select count(*) from billing_event").await, 3);
}

#[tokio::test]
async fn billing_reconcile_skips_events_their_webhook_delivered() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    let session = buy_pro(&app, &mock, &ann).await;
    let sub_id = session["subscription"].as_str().unwrap().to_owned();
    // Two of three deliveries arrived; then a failed payment whose webhook was lost.
    let completed = mock.event("checkout.session.completed", session.clone());
    let created = mock.event(
        "customer.subscription.created",
        mock.subscription(&sub_id).unwrap(),
    );
    ack(mock.deliver(&app.address, &completed, SECRET).await).await;
    ack(mock.deliver(&app.address, &created, SECRET).await).await;
    mock.set(&sub_id, |s| s["status"] = json!("past_due"));
    mock.event("invoice.payment_failed", mock.failed_invoice(&sub_id));
    let run = reconcile(&app).await;
    assert_eq!(run.outcome, "ok", "{run:?}");
    assert_eq!(
        (run.events_seen, run.events_processed, run.events_duplicate),
        (3, 1, 2),
        "{run:?}"
    );
    // The lost one did its work (past_due, the trader told); the delivered ones were not done again.
    assert_eq!(
        my_billing(&app, &ann).await["subscription"]["status"],
        "past_due"
    );
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    assert_eq!(events_of(&app, ann.id, "billing.payment_failed").await, 1);
    assert_eq!(events_of(&app, ann.id, "billing.plan_changed").await, 1);
    assert_eq!(
        scalar(
            &app,
            "select count(*) from billing_event where source = 'webhook'"
        )
        .await,
        2
    );
    assert_eq!(
        scalar(
            &app,
            "select count(*) from billing_event where source = 'reconcile' and event_type = 'invoice.payment_failed'"
        )
        .await,
        1
    );
    // A failure the trader has paid since is old news: no second "payment failed" from a late event.
    mock.set(&sub_id, |s| s["status"] = json!("active"));
    let old = mock.event("invoice.payment_failed", mock.failed_invoice(&sub_id));
    ack(mock.deliver(&app.address, &old, SECRET).await).await;
    assert_eq!(events_of(&app, ann.id, "billing.payment_failed").await, 1);
}

/// `n` `customer.subscription.updated` events of `sub_id`, one a second, the newest 10 s ago.
fn many_updates(mock: &MockStripe, sub_id: &str, n: i64) {
    let now = chrono::Utc::now().timestamp();
    for i in 0..n {
        mock.event_at(
            "customer.subscription.updated",
            mock.subscription(sub_id).unwrap(),
            now - 10 - n + i,
        );
    }
}

#[tokio::test]
async fn billing_reconcile_pages_through_more_events_than_a_page() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    let session = buy_pro(&app, &mock, &ann).await;
    let sub_id = session["subscription"].as_str().unwrap().to_owned();
    many_updates(&mock, &sub_id, 150);
    mock.event("checkout.session.completed", session);
    let run = reconcile(&app).await;
    assert_eq!(run.outcome, "ok", "{run:?}");
    assert_eq!(
        (run.pages, run.events_seen, run.events_processed),
        (2, 151, 151),
        "{run:?}"
    );
    // The second page was asked for after the first page's last event (the newest, then 99 updates), with the
    // same filters.
    let calls = mock.event_list_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(param(&calls[1], "starting_after"), ["evt_mock000052"]);
    assert_eq!(
        param(&calls[0], "created[lte]"),
        param(&calls[1], "created[lte]")
    );
    assert_eq!(
        scalar(&app, "select count(*) from billing_event").await,
        151
    );
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    assert_eq!(
        mock.subscription_reads(),
        1,
        "one read per subscription per run"
    );
}

#[tokio::test]
async fn billing_reconcile_stops_at_its_page_budget_and_the_next_run_continues() {
    let mock = MockStripe::start().await;
    let mut env = mock.env(SECRET);
    env.push(("STRATEGY_QUOTA", "5".into()));
    env.push(("BILLING_RECONCILE_MAX_PAGES", "1".into()));
    let (app, _root, ann) = setup_on(app(env).await).await;
    let session = buy_pro(&app, &mock, &ann).await;
    let sub_id = session["subscription"].as_str().unwrap().to_owned();
    many_updates(&mock, &sub_id, 150);
    let first = reconcile(&app).await;
    assert_eq!(first.outcome, "partial", "{first:?}");
    assert!(!first.events_complete);
    assert_eq!((first.pages, first.events_processed), (1, 100));
    assert!(
        first
            .errors
            .iter()
            .any(|e| e.contains("BILLING_RECONCILE_MAX_PAGES")),
        "{first:?}"
    );
    let resume = first.events_resume.expect("where the next run goes on");
    assert!(resume < first.events_to, "{first:?}");
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));

    // The provider has meanwhile dropped the event the run stopped after: the next run lists on from that
    // event's creation time instead (its second again, so nothing is skipped).
    mock.forget_event("evt_mock000051");
    let second = reconcile(&app).await;
    assert_eq!(second.outcome, "ok", "{second:?}");
    assert_eq!(
        (second.events_from, second.events_to),
        (first.events_from, first.events_to),
        "the same window"
    );
    assert_eq!(
        (
            second.events_seen,
            second.events_processed,
            second.events_duplicate
        ),
        (50, 50, 0),
        "{second:?}"
    );
    let calls = mock.event_list_calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(param(&calls[1], "starting_after"), ["evt_mock000051"]);
    assert!(param(&calls[2], "starting_after").is_empty());
    assert_eq!(
        param(&calls[2], "created[lte]"),
        [resume.timestamp().to_string().as_str()]
    );
    assert_eq!(
        param(&calls[1], "created[gte]"),
        param(&calls[2], "created[gte]")
    );
    assert_eq!(
        scalar(&app, "select count(*) from billing_event").await,
        150
    );
    // Then a new window, an hour before the completed one ended.
    let third = reconcile(&app).await;
    assert_eq!(
        third.events_from,
        first.events_to - chrono::TimeDelta::hours(1)
    );
}

#[tokio::test]
async fn billing_reconcile_ends_a_subscription_canceled_at_the_provider_whose_webhook_was_lost() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    let sub_id = buy_pro_delivered(&app, &mock, &ann).await;
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    // The provider canceled it (retries spent); no event of it is in the list window either (it would be, at
    // Stripe: this checks the subscriptions step on its own).
    mock.set(&sub_id, |s| s["status"] = json!("canceled"));
    let run = reconcile(&app).await;
    assert_eq!(run.outcome, "ok", "{run:?}");
    assert_eq!(
        (run.events_processed, run.events_duplicate),
        (0, 1),
        "{run:?}"
    );
    assert_eq!((run.subscriptions_synced, run.subscriptions_failed), (1, 0));
    assert_eq!(entitlement(&app, &ann).await, ("free".into(), 5));
    assert_eq!(
        my_billing(&app, &ann).await["subscription"]["status"],
        "canceled"
    );
    assert_eq!(events_of(&app, ann.id, "billing.plan_changed").await, 2);
    let change: Value = sqlx::query_scalar(
        "select detail from audit_event where event = 'billing_subscription_changed' and user_id = $1
         order by audit_event_id desc limit 1",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(change["after"], "canceled");
    assert!(
        change["change"]
            .as_str()
            .unwrap()
            .starts_with(&format!("reconcile:{}", run.run_id)),
        "{change}"
    );
    // A canceled subscription is final: the next run does not ask for it again.
    let reads = mock.subscription_reads();
    let next = reconcile(&app).await;
    assert_eq!(next.subscriptions_synced, 0, "{next:?}");
    assert_eq!(mock.subscription_reads(), reads);
}

#[tokio::test]
async fn billing_reconcile_records_provider_failures_changes_nothing_and_the_next_run_continues() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    let session = buy_pro(&app, &mock, &ann).await;
    let sub_id = session["subscription"].as_str().unwrap().to_owned();
    // 120 updates before the checkout's three events: two pages.
    many_updates(&mock, &sub_id, 120);
    checkout_events(&mock, &session);
    for (failure, says) in [
        (Failure::ServerError, "did not answer (HTTP 500"),
        (Failure::Garbage, "unreadable"),
        // Longer than the client's 15 s.
        (Failure::Slow(Duration::from_secs(20)), "timed out"),
    ] {
        mock.fail_events(Some((0, failure)));
        let run = reconcile(&app).await;
        assert_eq!(run.outcome, "failed", "{failure:?}: {run:?}");
        assert_eq!(run.pages, 0);
        assert!(
            run.errors
                .iter()
                .any(|e| e.starts_with("listing events:") && e.contains(says)),
            "{failure:?}: {run:?}"
        );
        assert!(
            !run.errors
                .iter()
                .any(|e| e.contains(super::mock_stripe::API_KEY)),
            "{run:?}"
        );
        assert_eq!(scalar(&app, "select count(*) from billing_event").await, 0);
        assert_eq!(entitlement(&app, &ann).await, ("free".into(), 5));
    }
    // The provider fails after the first page: that page's events are kept (the checkout's three, then 97
    // updates), and the run after the repair continues after the last event done, in the same window.
    mock.fail_events(Some((1, Failure::ServerError)));
    let cut = reconcile(&app).await;
    assert_eq!(cut.outcome, "partial", "{cut:?}");
    assert_eq!((cut.pages, cut.events_processed), (1, 100), "{cut:?}");
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    mock.fail_events(None);
    let done = reconcile(&app).await;
    assert_eq!(done.outcome, "ok", "{done:?}");
    assert_eq!((done.events_processed, done.events_duplicate), (23, 0));
    assert_eq!(
        scalar(&app, "select count(*) from billing_event").await,
        123
    );
    // Every run of the window listed from the same start; the failed page and the repair asked for the events
    // after the same one.
    let calls = mock.event_list_calls();
    let starts: Vec<&str> = calls.iter().map(|c| param(c, "created[gte]")[0]).collect();
    assert!(starts.iter().all(|s| *s == starts[0]), "{starts:?}");
    let n = calls.len();
    assert_eq!(param(&calls[n - 2], "starting_after"), ["evt_mock000024"]);
    assert_eq!(param(&calls[n - 1], "starting_after"), ["evt_mock000024"]);
    assert_eq!(events_of(&app, ann.id, "billing.plan_changed").await, 1);
}

/// Runs the jobs of `app` until the returned sender is dropped or sent `true`.
fn workers(app: &TestApp) -> watch::Sender<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(backend::jobs::worker::run(app.ctx.clone(), rx));
    tx
}

#[tokio::test]
async fn billing_reconcile_now_is_for_admins_audited_and_shown_on_the_subscriptions_page() {
    let mock = MockStripe::start().await;
    let (app, root, ann) = setup(&mock, SECRET).await;
    let session = buy_pro(&app, &mock, &ann).await;
    checkout_events(&mock, &session);
    let page = page_text(&app, &root.browser, "/admin/subscriptions").await;
    assert!(page.contains(r#"id="reconcile-never""#), "{page}");
    assert!(page.contains(r#"id="reconcile-now""#), "{page}");

    // Who may: not a trader (403), not anonymous (401 / sign in), not a read-only admin token, not without
    // the CSRF token.
    for method in [Method::POST, Method::GET] {
        let path = "/api/v1/admin/billing/reconcile";
        let (status, _) = rest(&app, method.clone(), path, Some(&ann.token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = rest(&app, method, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (_, read_only) = api_token::create(&app.ctx.db, root.id, "ro", Scope::Read, None)
        .await
        .unwrap()
        .unwrap();
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/billing/reconcile",
        Some(&read_only),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/admin/billing/reconcile",
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let anon = browser();
    let token = csrf(&app, &anon, "/signin").await;
    let resp = anon
        .post(app.url("/admin/billing/reconcile"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(location(&resp).starts_with("/signin"), "{resp:?}");
    let resp = root
        .browser
        .post(app.url("/admin/billing/reconcile"))
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        scalar(
            &app,
            "select count(*) from job where kind = 'billing_reconcile'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &app,
            "select count(*) from audit_event where event = 'billing_reconcile_requested'"
        )
        .await,
        0
    );

    // The admin's button queues one run (audited); a second press while it waits is refused in place.
    let resp = post_form(
        &app,
        &root.browser,
        "/admin/subscriptions",
        "/admin/billing/reconcile",
        &[],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/admin/subscriptions?ok=admin_reconcile_queued"
    );
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(page.contains(r#"id="reconcile-pending""#), "{page}");
    let resp = post_form(
        &app,
        &root.browser,
        "/admin/subscriptions",
        "/admin/billing/reconcile",
        &[],
    )
    .await;
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(
        page.contains(r#"id="form-error" data-field="conflict""#)
            && page.contains("already queued or running"),
        "{page}"
    );
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/billing/reconcile",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let audit: (Uuid, Value) = sqlx::query_as(
        "select actor_id, detail from audit_event where event = 'billing_reconcile_requested'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audit.0, root.id);
    let job: Uuid = audit.1["job_id"].as_str().unwrap().parse().unwrap();

    // A worker runs it: the page and the REST list show the outcome and counts.
    let stop = workers(&app);
    app.wait_for_job(job, &["done"], Duration::from_secs(30))
        .await;
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    let page = page_text(&app, &root.browser, "/admin/subscriptions").await;
    assert!(
        page.contains(r#"id="reconcile-last" data-outcome="ok""#),
        "{page}"
    );
    assert!(
        page.contains("3 listed, 3 processed now, 0 processed before"),
        "{page}"
    );
    assert!(!page.contains(r#"id="reconcile-pending""#), "{page}");
    let (status, list) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/billing/reconcile?limit=5",
        Some(&read_only),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["enabled"], true);
    assert_eq!(list["pending"], false);
    assert_eq!(list["interval_secs"], 86_400);
    let r = &list["runs"][0];
    assert_eq!(r["trigger"], "admin");
    assert_eq!(r["requested_by"], root.id.to_string());
    assert_eq!(r["job_id"], job.to_string());
    assert_eq!(r["outcome"], "ok");
    assert_eq!(r["events_processed"], 3);
    assert_eq!(r["subscriptions_synced"], 1);
    let (status, body) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/billing/reconcile?limit=101",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Over REST once it is done: queued again (202 with the job).
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/billing/reconcile",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let again: Uuid = body["job_id"].as_str().unwrap().parse().unwrap();
    app.wait_for_job(again, &["done"], Duration::from_secs(30))
        .await;

    // The operator's command line: the same action (queued, audited as the operator), then the runs.
    let (code, out, err) = billing_cli(&app, &mock, &["billing", "reconcile"]);
    assert_eq!(code, 0, "{out}{err}");
    let cli_job: Uuid = out
        .split_whitespace()
        .find_map(|w| w.trim_end_matches(';').parse().ok())
        .unwrap_or_else(|| panic!("a job id in {out}"));
    let (code, out, err) = billing_cli(&app, &mock, &["billing", "reconcile"]);
    assert_eq!(
        code, 1,
        "a second request while one waits is refused: {out}{err}"
    );
    assert!(err.contains("already queued or running"), "{err}");
    app.wait_for_job(cli_job, &["done"], Duration::from_secs(30))
        .await;
    assert_eq!(
        scalar(
            &app,
            "select count(*) from audit_event where event = 'billing_reconcile_requested' and actor_id is null"
        )
        .await,
        1,
        "the CLI's request is audited as the operator; the refused one is not"
    );
    let (code, out, err) = billing_cli(&app, &mock, &["billing", "runs", "--limit", "3"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("    ")).collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].contains(" admin ") && lines[0].contains(" ok "),
        "{out}"
    );
    let (code, _, err) = billing_cli(&app, &mock, &["billing", "runs", "--limit", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("limit"), "{err}");
    let _ = stop.send(true);
}

/// Runs `vortex` with `app`'s database and Redis and billing pointed at `mock`.
fn billing_cli(app: &TestApp, mock: &MockStripe, args: &[&str]) -> (i32, String, String) {
    vortex_cli_with(app, args, &mock.env(SECRET))
}

#[tokio::test]
async fn billing_reconcile_now_is_refused_with_the_reason_when_billing_is_off() {
    let app = app(vec![]).await;
    let root = person(&app, "root@example.org", "admin").await;
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/billing/reconcile",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("PAYMENT_PROVIDER=none"),
        "{body}"
    );
    let resp = post_form(
        &app,
        &root.browser,
        "/admin/subscriptions",
        "/admin/billing/reconcile",
        &[],
    )
    .await;
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(
        page.contains("there is no payment provider to reconcile with"),
        "{page}"
    );
    assert!(page.contains(r#"id="reconcile-off""#), "{page}");
    assert!(!page.contains(r#"id="reconcile-now""#), "{page}");
    let (status, list) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/billing/reconcile",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["enabled"], false);
    assert_eq!(list["runs"], json!([]));
    // Nothing is scheduled or run without a provider.
    assert!(scheduled(&app).await.is_none());
    assert!(
        reconcile::run_once(&app.ctx, None, Trigger::Schedule, None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        scalar(
            &app,
            "select count(*) from job where kind = 'billing_reconcile'"
        )
        .await
            + scalar(&app, "select count(*) from billing_reconcile_run").await,
        0
    );
}

#[tokio::test]
async fn billing_reconcile_is_scheduled_only_when_due() {
    let mock = MockStripe::start().await;
    let (app, _root, _ann) = setup(&mock, SECRET).await;
    let db = &app.ctx.db;
    // Never ran: due; while it waits, not again.
    let job = scheduled(&app).await.expect("due");
    assert!(scheduled(&app).await.is_none());
    cancel_job(&app, job).await;
    // Ran fine just now: not due for a day.
    reconcile(&app).await;
    assert!(scheduled(&app).await.is_none());
    let age = |sql: &'static str| async move {
        sqlx::query(sql).execute(db).await.unwrap();
    };
    age("update billing_reconcile_run set started_at = now() - interval '23 hours'").await;
    assert!(scheduled(&app).await.is_none());
    age("update billing_reconcile_run set started_at = now() - interval '25 hours'").await;
    let job = scheduled(&app).await.expect("a day later");
    let payload: Value = sqlx::query_scalar("select payload from job where job_id = $1")
        .bind(job)
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(payload["trigger"], "schedule");
    cancel_job(&app, job).await;
    // A run that did not finish ok is taken up again after an hour, not before.
    age("update billing_reconcile_run set outcome = 'partial', started_at = now() - interval '30 minutes'").await;
    assert!(scheduled(&app).await.is_none());
    age("update billing_reconcile_run set started_at = now() - interval '61 minutes'").await;
    let job = scheduled(&app).await.expect("an hour later");
    cancel_job(&app, job).await;
    // Two in a row did not: two hours (then four, eight … up to the interval).
    age(
        "insert into billing_reconcile_run (run_id, trigger, outcome, started_at, events_from, events_to, events_upper)
         values (gen_random_uuid(), 'schedule', 'failed', now() - interval '3 hours', now() - interval '30 days',
                 now() - interval '3 hours', now() - interval '3 hours')",
    )
    .await;
    assert!(scheduled(&app).await.is_none());
    age("update billing_reconcile_run set started_at = now() - interval '121 minutes' where outcome = 'partial'")
        .await;
    assert!(scheduled(&app).await.is_some());
}

#[tokio::test]
async fn housekeeping_prunes_billing_event_ids_after_their_retention() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        workers: true,
        env: vec![("BILLING_EVENT_RETENTION_DAYS", "40".into())],
    })
    .await;
    let db = &app.ctx.db;
    for (id, age) in [
        ("evt_old", "40 days 10 minutes"),
        ("evt_kept", "39 days 23 hours 50 minutes"),
    ] {
        sqlx::query(&format!(
            "insert into billing_event (event_id, event_type, outcome, received_at)
             values ($1, 'invoice.paid', 'x', now() - interval '{age}')"
        ))
        .bind(id)
        .execute(db)
        .await
        .unwrap();
        sqlx::query(&format!(
            "insert into billing_reconcile_run (run_id, trigger, outcome, started_at, events_from, events_to, events_upper)
             values ($1, 'schedule', 'ok', now() - interval '{age}', now() - interval '70 days', now() - interval '41 days', now() - interval '41 days')"
        ))
        .bind(Uuid::new_v4())
        .execute(db)
        .await
        .unwrap();
    }
    let job = backend::jobs::housekeeping::enqueue(&app.ctx, None, false)
        .await
        .unwrap()
        .unwrap();
    app.wait_for_job(job, &["done"], Duration::from_secs(30))
        .await;
    let left: Vec<String> = sqlx::query_scalar("select event_id from billing_event")
        .fetch_all(db)
        .await
        .unwrap();
    assert_eq!(left, ["evt_kept"]);
    assert_eq!(
        scalar(&app, "select count(*) from billing_reconcile_run").await,
        1
    );
    let pruned: Value = sqlx::query_scalar("select pruned from housekeeping_run where job_id = $1")
        .bind(job)
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(pruned["billing_events"], 1, "{pruned}");
    assert_eq!(pruned["billing_reconcile_runs"], 1, "{pruned}");
}

#[test]
fn billing_event_retention_under_35_days_is_refused_by_check_config() {
    let run = |days: &str| {
        std::process::Command::new(vortex_bin())
            .arg("check-config")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BILLING_EVENT_RETENTION_DAYS", days)
            .output()
            .expect("run vortex")
    };
    let out = run("30");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("BILLING_EVENT_RETENTION_DAYS: must be at least 35 days")),
        "{stderr}"
    );
    let out = run("35");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("BILLING_EVENT_RETENTION_DAYS"), "{stderr}");
}
