//! Payments (docs/billing.md) against a local mock of Stripe ([`mock_stripe`]): checkout → webhook → the paid
//! plan's limits apply; a failed payment → past_due (still entitled, notified) → deleted → canceled → the
//! default plan's limits; duplicate, replayed and out-of-order deliveries; refused signatures change nothing;
//! two secrets during a rotation; billing off; authorization of the billing routes.

mod mock_stripe;
mod reconcile;
mod webhooks;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use self::mock_stripe::MockStripe;
pub(super) use crate::plans::rest;
use crate::{
    helpers::TestApp,
    plans::{Person, app, limit, person},
};

pub(super) const SECRET: &str = "whsec_vortex_test_endpoint_secret";

/// An app speaking to `mock` with `secrets`, an admin, a trader, and the plan `pro` (price `price_pro`,
/// 50 strategies; the default plan allows `STRATEGY_QUOTA=5`).
pub(super) async fn setup(mock: &MockStripe, secrets: &str) -> (TestApp, Person, Person) {
    let mut env = mock.env(secrets);
    env.push(("STRATEGY_QUOTA", "5".into()));
    setup_on(app(env).await).await
}

/// [`setup`] on a spawned app.
pub(super) async fn setup_on(app: TestApp) -> (TestApp, Person, Person) {
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/plans",
        Some(&root.token),
        Some(json!({
            "slug": "pro", "name": "Pro", "price_minor": 1900, "provider_price_id": "price_pro",
            "limits": { "strategies": 50 },
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["provider_price_id"], "price_pro");
    (app, root, ann)
}

/// Ann starts a checkout of `pro` and pays on the mock's page; returns the completed session object.
pub(super) async fn buy_pro(app: &TestApp, mock: &MockStripe, who: &Person) -> Value {
    let (status, body) = rest(
        app,
        Method::POST,
        "/api/v1/me/billing/checkout",
        Some(&who.token),
        Some(json!({ "plan": "pro" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = mock.last_session();
    assert_eq!(body["url"], session["url"]);
    assert_eq!(session["price"], "price_pro");
    assert_eq!(session["client_reference_id"], who.id.to_string());
    assert!(
        session["success_url"]
            .as_str()
            .unwrap()
            .ends_with("/account/plan?billing=success"),
        "{session}"
    );
    // The customer was created with the user's id, and stored before the checkout.
    let customer = session["customer"].as_str().unwrap().to_owned();
    assert!(
        mock.customers()
            .iter()
            .any(|c| c["id"] == customer.as_str() && c["metadata"]["user_id"] == who.id.to_string()),
    );
    let stored: String =
        sqlx::query_scalar("select customer_id from subscription where user_id = $1")
            .bind(who.id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(stored, customer);
    mock.complete_checkout(session["id"].as_str().unwrap())
}

/// Delivers the checkout `session`'s `checkout.session.completed` webhook, signed; the acknowledged outcome.
pub(super) async fn deliver_completed(app: &TestApp, mock: &MockStripe, session: Value) -> String {
    ack(mock
        .deliver(
            &app.address,
            &mock.event("checkout.session.completed", session),
            SECRET,
        )
        .await)
    .await
}

/// `who` buys Pro and the checkout's `checkout.session.completed` webhook arrives; the subscription's id.
pub(super) async fn buy_pro_delivered(app: &TestApp, mock: &MockStripe, who: &Person) -> String {
    let session = buy_pro(app, mock, who).await;
    let sub_id = session["subscription"].as_str().unwrap().to_owned();
    deliver_completed(app, mock, session).await;
    sub_id
}

pub(super) async fn my_plan(app: &TestApp, who: &Person) -> Value {
    let (status, me) = rest(app, Method::GET, "/api/v1/me/plan", Some(&who.token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me
}

pub(super) async fn my_billing(app: &TestApp, who: &Person) -> Value {
    let (status, b) = rest(
        app,
        Method::GET,
        "/api/v1/me/billing",
        Some(&who.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    b
}

/// The plan slug and the strategies limit `who` has now.
pub(super) async fn entitlement(app: &TestApp, who: &Person) -> (String, i64) {
    let me = my_plan(app, who).await;
    (
        me["plan"]["slug"].as_str().unwrap().to_owned(),
        limit(&me, "strategies")["value"].as_i64().unwrap(),
    )
}

pub(super) async fn count(app: &TestApp, sql: &str, user: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(user)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

pub(super) async fn events_of(app: &TestApp, user: Uuid, kind: &str) -> i64 {
    sqlx::query_scalar("select count(*) from notify_event where user_id = $1 and event_type = $2")
        .bind(user)
        .bind(kind)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

pub(super) async fn ack(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["outcome"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn billing_checkout_webhook_past_due_canceled_moves_the_plan() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    assert_eq!(entitlement(&app, &ann).await, ("free".into(), 5));

    let session = buy_pro(&app, &mock, &ann).await;
    let sub_id = session["subscription"].as_str().unwrap().to_owned();
    // Before the webhook nothing changed.
    assert_eq!(entitlement(&app, &ann).await, ("free".into(), 5));
    let outcome = deliver_completed(&app, &mock, session).await;
    assert!(
        outcome.contains("active") && outcome.contains("free → pro"),
        "{outcome}"
    );
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    let b = my_billing(&app, &ann).await;
    assert_eq!(b["enabled"], true);
    assert_eq!(b["subscription"]["status"], "active");
    assert_eq!(b["subscription"]["plan"], "pro");
    assert_eq!(b["subscription"]["subscription_id"], sub_id.as_str());
    assert_eq!(b["invoices"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["invoices"][0]["status"], "paid");
    assert_eq!(events_of(&app, ann.id, "billing.plan_changed").await, 1);
    // Audited as the system: the plan assignment and the subscription's transition.
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'plan_assigned' and user_id = $1 and actor_id is null",
            ann.id
        )
        .await,
        1
    );

    // A payment fails: past_due keeps the plan while the provider retries; the trader is told.
    mock.set(&sub_id, |s| s["status"] = json!("past_due"));
    let inv = mock.failed_invoice(&sub_id);
    let outcome = ack(mock
        .deliver(
            &app.address,
            &mock.event("invoice.payment_failed", inv),
            SECRET,
        )
        .await)
    .await;
    assert!(outcome.contains("past_due"), "{outcome}");
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    assert_eq!(
        my_billing(&app, &ann).await["subscription"]["status"],
        "past_due"
    );
    assert_eq!(events_of(&app, ann.id, "billing.payment_failed").await, 1);
    let payload: Value = sqlx::query_scalar(
        "select payload from notify_event where user_id = $1 and event_type = 'billing.payment_failed'",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(payload["amount_minor"], 1900);
    assert_eq!(payload["plan"], "Pro");

    // The provider gives up and deletes the subscription: back to the default plan's limits.
    let sub = mock.set(&sub_id, |s| s["status"] = json!("canceled"));
    let outcome = ack(mock
        .deliver(
            &app.address,
            &mock.event("customer.subscription.deleted", sub),
            SECRET,
        )
        .await)
    .await;
    assert!(
        outcome.contains("canceled") && outcome.contains("pro → free"),
        "{outcome}"
    );
    assert_eq!(entitlement(&app, &ann).await, ("free".into(), 5));
    assert_eq!(
        my_billing(&app, &ann).await["subscription"]["status"],
        "canceled"
    );
    assert_eq!(events_of(&app, ann.id, "billing.plan_changed").await, 2);
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'billing_subscription_changed' and user_id = $1",
            ann.id
        )
        .await,
        3
    );
    // The plan page says so.
    let page = crate::auth::page_text(&app, &ann.browser, "/account/plan").await;
    assert!(page.contains(r#"id="billing-status""#), "{page}");
}

#[tokio::test]
async fn billing_is_off_without_a_provider() {
    let app = app(vec![]).await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/me/billing/checkout",
        Some(&ann.token),
        Some(json!({ "plan": "free" })),
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
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/me/billing/portal",
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let b = my_billing(&app, &ann).await;
    assert_eq!(b["enabled"], false);
    assert!(b.get("subscription").is_none(), "{b}");
    // No webhook endpoint: 404 whatever is sent.
    let mock = MockStripe::start().await;
    let body = mock.event("invoice.paid", json!({ "subscription": "sub_x" }));
    let resp = mock.deliver(&app.address, &body, SECRET).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // A delivery without the signature header is malformed, on or off: 400 naming the header.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/billing/webhook", app.address))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let p: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(p["field"], "Stripe-Signature", "{p}");
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from billing_event")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap(),
        0
    );
    let page = crate::auth::page_text(&app, &ann.browser, "/account/plan").await;
    assert!(page.contains(r#"id="billing-off""#), "{page}");
}

#[tokio::test]
async fn billing_routes_are_authorized() {
    let mock = MockStripe::start().await;
    let (app, root, ann) = setup(&mock, SECRET).await;
    let bob = person(&app, "bob@example.org", "trader").await;
    let session = buy_pro(&app, &mock, &ann).await;
    deliver_completed(&app, &mock, session).await;
    // Bob sees only his own billing (none), never Ann's.
    let b = my_billing(&app, &bob).await;
    assert!(
        b.get("subscription").is_none() && b["invoices"] == json!([]),
        "{b}"
    );
    let (status, _) = rest(
        &app,
        Method::POST,
        "/api/v1/me/billing/portal",
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Ann's portal.
    let (status, p) = rest(
        &app,
        Method::POST,
        "/api/v1/me/billing/portal",
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert!(p["url"].as_str().unwrap().starts_with(&mock.url), "{p}");
    // A second checkout while subscribed is refused (one subscription per customer).
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/me/billing/checkout",
        Some(&ann.token),
        Some(json!({ "plan": "pro" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // A plan without a price cannot be bought.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/me/billing/checkout",
        Some(&bob.token),
        Some(json!({ "plan": "free" })),
    )
    .await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("plan")),
        "{body}"
    );
    // The admin list: admins only.
    for who in [&ann, &bob] {
        let (status, _) = rest(
            &app,
            Method::GET,
            "/api/v1/admin/subscriptions",
            Some(&who.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = rest(&app, Method::GET, "/api/v1/admin/subscriptions", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, list) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/subscriptions",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let rows = list["subscriptions"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["email"], "ann@example.org");
    assert_eq!(rows[0]["status"], "active");
    assert_eq!(rows[0]["plan"], "pro");
}

#[tokio::test]
async fn billing_returning_from_checkout_syncs_before_the_webhook() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    // The page offers the paid plan.
    let page = crate::auth::page_text(&app, &ann.browser, "/account/plan").await;
    assert!(
        page.contains(r#"action="/account/plan/checkout""#),
        "{page}"
    );
    buy_pro(&app, &mock, &ann).await;
    // No webhook yet: the trader's return to the success page reads the subscription from the provider.
    let page = crate::auth::page_text(&app, &ann.browser, "/account/plan?billing=success").await;
    assert!(page.contains(r#"data-status="active""#), "{page}");
    assert!(page.contains(r#"id="manage-billing""#), "{page}");
    assert!(page.contains("MOCK-"), "invoice listed: {page}");
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    // The webhook that follows changes nothing more.
    let session = mock.last_session();
    deliver_completed(&app, &mock, session).await;
    assert_eq!(events_of(&app, ann.id, "billing.plan_changed").await, 1);
}

#[tokio::test]
async fn billing_upgrade_form_sends_the_trader_to_the_checkout() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    let resp = crate::auth::post_form(
        &app,
        &ann.browser,
        "/account/plan",
        "/account/plan/checkout",
        &[("plan", "pro")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = mock.last_session();
    assert_eq!(
        crate::auth::location(&resp),
        session["url"].as_str().unwrap()
    );
    // Browsers apply the CSP's form-action to the form's redirect: the provider's pages must be in it (here the
    // mock hosts them), or "Upgrade" goes nowhere in a real browser.
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    let form_action = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("form-action "))
        .unwrap();
    assert_eq!(
        form_action,
        format!(
            "form-action 'self' https://checkout.stripe.com https://billing.stripe.com {}",
            mock.url
        )
    );
    // Without the CSRF token the post is refused.
    let resp = ann
        .browser
        .post(app.url("/account/plan/checkout"))
        .form(&[("plan", "pro")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn billing_a_failed_payment_is_mailed_to_the_trader() {
    let mock = MockStripe::start().await;
    let (app, sink) = crate::auth::app_with_mail_env(mock.env(SECRET)).await;
    let (app, _root, ann) = setup_on(app).await;
    let sub_id = buy_pro_delivered(&app, &mock, &ann).await;
    mock.set(&sub_id, |s| s["status"] = json!("past_due"));
    let failed = mock.event("invoice.payment_failed", mock.failed_invoice(&sub_id));
    ack(mock.deliver(&app.address, &failed, SECRET).await).await;
    let mail = sink
        .wait_for_text(
            "ann@example.org",
            &["Payment failed", "19.00 USD"],
            std::time::Duration::from_secs(60),
        )
        .await;
    assert!(mail.contains("/account/plan"), "{mail}");
}
