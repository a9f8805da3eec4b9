//! The webhook's guarantees: a duplicate or replayed event id does nothing; deliveries out of order end in the
//! provider's state; a refused signature (wrong secret, changed body, stale, missing) is 400 with nothing
//! changed; both secrets of a rotation are accepted; `trial_will_end` mails only while trialing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    SECRET, ack, buy_pro, buy_pro_delivered, count, entitlement, events_of,
    mock_stripe::MockStripe, my_billing, setup,
};

async fn processed(app: &crate::helpers::TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from billing_event")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn billing_duplicates_and_replays_do_nothing_twice() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    let session = buy_pro(&app, &mock, &ann).await;
    let sub_id = session["subscription"].as_str().unwrap().to_owned();
    let completed = mock.event("checkout.session.completed", session);
    ack(mock.deliver(&app.address, &completed, SECRET).await).await;
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    let audits = "select count(*) from audit_event where user_id = $1";
    let before = (
        count(&app, audits, ann.id).await,
        events_of(&app, ann.id, "billing.plan_changed").await,
        processed(&app).await,
    );
    // The same delivery again (Stripe retries when it did not see our 200): nothing twice.
    assert_eq!(
        ack(mock.deliver(&app.address, &completed, SECRET).await).await,
        "already processed"
    );
    let after = (
        count(&app, audits, ann.id).await,
        events_of(&app, ann.id, "billing.plan_changed").await,
        processed(&app).await,
    );
    assert_eq!(before, after);

    // Later the subscription is canceled; a replay of the old completed event (same id, freshly signed) must
    // not bring the paid plan back.
    let sub = mock.set(&sub_id, |s| s["status"] = json!("canceled"));
    ack(mock
        .deliver(
            &app.address,
            &mock.event("customer.subscription.deleted", sub),
            SECRET,
        )
        .await)
    .await;
    assert_eq!(entitlement(&app, &ann).await, ("free".into(), 5));
    let plan_changes = events_of(&app, ann.id, "billing.plan_changed").await;
    assert_eq!(
        ack(mock.deliver(&app.address, &completed, SECRET).await).await,
        "already processed"
    );
    assert_eq!(entitlement(&app, &ann).await, ("free".into(), 5));
    assert_eq!(
        events_of(&app, ann.id, "billing.plan_changed").await,
        plan_changes
    );
    assert_eq!(
        my_billing(&app, &ann).await["subscription"]["status"],
        "canceled"
    );
}

#[tokio::test]
async fn billing_out_of_order_deliveries_end_in_the_providers_state() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    let session = buy_pro(&app, &mock, &ann).await;
    let sub_id = session["subscription"].as_str().unwrap().to_owned();
    // Stripe sends these in any order: the invoice first.
    let created = mock.event(
        "customer.subscription.created",
        mock.subscription(&sub_id).unwrap(),
    );
    let paid = mock.event(
        "invoice.paid",
        json!({ "id": "in_first", "object": "invoice", "customer": session["customer"],
                "subscription": sub_id, "status": "paid", "amount_paid": 1900 }),
    );
    let completed = mock.event("checkout.session.completed", session.clone());
    ack(mock.deliver(&app.address, &paid, SECRET).await).await;
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    ack(mock.deliver(&app.address, &completed, SECRET).await).await;
    // The payment then fails: past_due.
    mock.set(&sub_id, |s| s["status"] = json!("past_due"));
    let failed = mock.event("invoice.payment_failed", mock.failed_invoice(&sub_id));
    ack(mock.deliver(&app.address, &failed, SECRET).await).await;
    // The (older) created event arrives last, saying "active" in its payload: the provider says past_due, and
    // that is what is stored.
    ack(mock.deliver(&app.address, &created, SECRET).await).await;
    let b = my_billing(&app, &ann).await;
    assert_eq!(b["subscription"]["status"], "past_due", "{b}");
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    // One plan change in all (free → pro), however many events said so.
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
}

#[tokio::test]
async fn billing_refused_signatures_change_nothing() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    let session = buy_pro(&app, &mock, &ann).await;
    let body = mock.event("checkout.session.completed", session);
    let now = chrono::Utc::now().timestamp();
    let tampered = body.replace("\"livemode\":false", "\"livemode\":true ");
    assert_ne!(tampered, body);
    let cases: Vec<(&str, String, Option<Vec<&str>>, i64)> = vec![
        (
            "unknown secret",
            body.clone(),
            Some(vec!["whsec_someone_else"]),
            now,
        ),
        (
            "stale timestamp",
            body.clone(),
            Some(vec![SECRET]),
            now - 301,
        ),
        (
            "future timestamp",
            body.clone(),
            Some(vec![SECRET]),
            now + 301,
        ),
        ("no header", body.clone(), None, now),
    ];
    for (what, b, secrets, t) in cases {
        let resp = mock
            .deliver_at(&app.address, &b, secrets.as_deref(), t)
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{what}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/problem+json"),
            "{what}"
        );
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["field"], "Stripe-Signature", "{what}: {p}");
    }
    // A valid signature of the body sent with a changed body, and one made at another time than it says.
    let sig = super::mock_stripe::sign(SECRET, now, &body);
    let old_sig = super::mock_stripe::sign(SECRET, now - 10, &body);
    for (what, b, header) in [
        ("changed body", tampered, format!("t={now},v1={sig}")),
        (
            "other timestamp",
            body.clone(),
            format!("t={now},v1={old_sig}"),
        ),
    ] {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/billing/webhook", app.address))
            .header("stripe-signature", header)
            .body(b)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{what}");
    }
    // Nothing was recorded or changed.
    assert_eq!(processed(&app).await, 0);
    assert_eq!(entitlement(&app, &ann).await, ("free".into(), 5));
    assert!(
        my_billing(&app, &ann).await["subscription"]
            .get("status")
            .is_none()
    );
    // The same body, properly signed, is then processed (the refusals did not consume its id).
    ack(mock.deliver(&app.address, &body, SECRET).await).await;
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
}

#[tokio::test]
async fn billing_both_secrets_of_a_rotation_are_accepted() {
    let mock = MockStripe::start().await;
    let (old, new) = ("whsec_rotation_old_secret", "whsec_rotation_new_secret");
    let (app, _root, ann) = setup(&mock, &format!("{old}, {new}")).await;
    let session = buy_pro(&app, &mock, &ann).await;
    let sub_id = session["subscription"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    // Signed with the old secret only, with the new one only, and with both (as Stripe does while rolling).
    let e1 = mock.event("checkout.session.completed", session);
    ack(mock.deliver_at(&app.address, &e1, Some(&[old]), now).await).await;
    let e2 = mock.event(
        "customer.subscription.updated",
        mock.subscription(&sub_id).unwrap(),
    );
    ack(mock.deliver_at(&app.address, &e2, Some(&[new]), now).await).await;
    let e3 = mock.event(
        "invoice.paid",
        json!({ "id": "in_x", "subscription": sub_id }),
    );
    ack(mock
        .deliver_at(&app.address, &e3, Some(&["whsec_retired", new]), now)
        .await)
    .await;
    assert_eq!(processed(&app).await, 3);
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
}

#[tokio::test]
async fn billing_trial_will_end_mails_only_while_trialing() {
    let mock = MockStripe::start().await;
    let (app, root, ann) = setup(&mock, SECRET).await;
    // Pro gets a 14-day trial: the checkout asks for it and the subscription starts trialing (entitled).
    let pro: Value = sqlx::query_scalar("select to_jsonb(plan_id) from plan where slug = 'pro'")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    let (status, body) = super::rest(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/admin/plans/{}", pro.as_str().unwrap()),
        Some(&root.token),
        Some(json!({ "trial_days": 14 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sub_id = buy_pro_delivered(&app, &mock, &ann).await;
    assert_eq!(
        my_billing(&app, &ann).await["subscription"]["status"],
        "trialing"
    );
    assert_eq!(entitlement(&app, &ann).await, ("pro".into(), 50));
    let ending = mock.event(
        "customer.subscription.trial_will_end",
        mock.subscription(&sub_id).unwrap(),
    );
    ack(mock.deliver(&app.address, &ending, SECRET).await).await;
    assert_eq!(events_of(&app, ann.id, "billing.trial_ending").await, 1);

    // A trial_will_end that arrives after the trial ended early (now active): no reminder.
    let sub = mock.set(&sub_id, |s| {
        s["status"] = json!("active");
        s["trial_end"] = json!(chrono::Utc::now().timestamp());
    });
    let late = mock.event("customer.subscription.trial_will_end", sub);
    ack(mock.deliver(&app.address, &late, SECRET).await).await;
    assert_eq!(events_of(&app, ann.id, "billing.trial_ending").await, 1);

    // One trial per account: once that subscription has ended, a new checkout asks for no trial.
    let sub = mock.set(&sub_id, |s| s["status"] = json!("canceled"));
    let deleted = mock.event("customer.subscription.deleted", sub);
    ack(mock.deliver(&app.address, &deleted, SECRET).await).await;
    assert_eq!(
        my_billing(&app, &ann).await["subscription"]["status"],
        "canceled"
    );
    let again = buy_pro(&app, &mock, &ann).await;
    assert!(again["trial_period_days"].is_null(), "{again}");
}

#[tokio::test]
async fn billing_events_about_unknown_subscriptions_or_types_are_recorded_as_ignored() {
    let mock = MockStripe::start().await;
    let (app, _root, ann) = setup(&mock, SECRET).await;
    let unknown = mock.event(
        "invoice.paid",
        json!({ "id": "in_1", "subscription": "sub_not_here" }),
    );
    let outcome = super::ack(mock.deliver(&app.address, &unknown, SECRET).await).await;
    assert!(
        outcome.starts_with("ignored: the provider has no subscription"),
        "{outcome}"
    );
    let other = mock.event("customer.created", json!({ "id": "cus_1" }));
    let outcome = super::ack(mock.deliver(&app.address, &other, SECRET).await).await;
    assert!(outcome.starts_with("ignored:"), "{outcome}");
    assert_eq!(processed(&app).await, 2);
    // Not an event at all: 400 naming what is missing, nothing recorded.
    let resp = mock
        .deliver(&app.address, r#"{"type": "invoice.paid"}"#, SECRET)
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(processed(&app).await, 2);
    assert_eq!(entitlement(&app, &ann).await, ("free".into(), 5));
}
