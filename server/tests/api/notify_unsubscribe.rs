//! One-click unsubscribe end to end (docs/design/notifications.md §5 "GET vs POST", §10): a cookie-less POST
//! to the `List-Unsubscribe` URL of a real mail turns exactly that category's email off (200, no cookie), the
//! next such event sends no mail while other mail still arrives; a tampered token is refused; GET and HEAD of
//! the links change nothing; the confirmation page's own form needs the CSRF token (the exemption is exact).

use std::time::{Duration, Instant};

use backend::{
    auth::{Role, users},
    notify::{self, Category, Event, unsubscribe},
};
use reqwest::{Client, StatusCode, redirect::Policy};
use uuid::Uuid;

use crate::{
    auth::{browser, csrf, location},
    helpers::{Options, TestApp, spawn_app_with},
    smtp::{SmtpSink, app_with_retrying_mail, header, link},
};

async fn app_with_sink() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![("SMTP_URL", sink.url())],
    })
    .await;
    (app, sink)
}

async fn verified_user(app: &TestApp, email: &str) -> Uuid {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, email, "Ann", "not-a-password-hash", Role::Trader)
        .await
        .unwrap()
        .expect("new email");
    users::mark_verified(&mut conn, id).await.unwrap();
    id
}

async fn rule(app: &TestApp, user: Uuid, category: &str, channel: &str, mode: &str) {
    sqlx::query(
        "insert into notify_rule (rule_id, user_id, category, channel, mode) values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(user)
    .bind(category)
    .bind(channel)
    .bind(mode)
    .execute(&app.ctx.db)
    .await
    .unwrap();
}

/// (category, event_type, channel, mode, source) of every rule of the user, sorted.
async fn rules(app: &TestApp, user: Uuid) -> Vec<(String, String, String, String, String)> {
    sqlx::query_as(
        "select category, event_type, channel, mode, source from notify_rule where user_id = $1
         order by category, event_type, channel",
    )
    .bind(user)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
}

/// (status, reason) of every delivery of the user, in order.
async fn deliveries(app: &TestApp, user: Uuid) -> Vec<(Uuid, String, Option<String>)> {
    sqlx::query_as(
        "select delivery_id, status, reason from notify_delivery where user_id = $1 order by created_at, delivery_id",
    )
    .bind(user)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
}

/// A finished-backtest event of its own run and batch (so neither dedupe nor coalescing joins it to another).
fn finished(user: Uuid) -> Event {
    let mut e = Event::sample("backtest.finished", user).unwrap();
    if let Event::BacktestFinished(b) = &mut e {
        b.run_id = Uuid::new_v4();
        b.batch_id = Uuid::new_v4();
    }
    e
}

async fn emit(app: &TestApp, event: &Event) -> Uuid {
    let mut tx = app.ctx.db.begin().await.unwrap();
    let e = notify::emit(&mut tx, &app.ctx.jobs, &app.ctx.clock, event)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    notify::push(&app.ctx.jobs, std::slice::from_ref(&e)).await;
    e.event_id
}

/// Waits until the event's email delivery reaches a final state; returns `status/reason`.
async fn email_outcome(app: &TestApp, event: Uuid) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Option<String> = sqlx::query_scalar(
            "select status || '/' || coalesce(reason, '') from notify_delivery
             where channel = 'email' and event_id = $1 and status not in ('pending', 'queued')",
        )
        .bind(event)
        .fetch_optional(&app.ctx.db)
        .await
        .unwrap();
        if let Some(g) = got {
            return g;
        }
        assert!(
            Instant::now() < deadline,
            "no final email delivery for {event}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn no_cookies() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn sets_cookie(resp: &reqwest::Response) -> bool {
    resp.headers().contains_key(reqwest::header::SET_COOKIE)
}

#[tokio::test]
async fn notify_unsubscribe_one_click_post_turns_off_exactly_that_category_and_gets_change_nothing()
{
    let (app, sink) = app_with_sink().await;
    let ann = verified_user(&app, "ann@example.org").await;
    // Ann's own choices: backtest results by email at once, paper by email, backtests in-app.
    rule(&app, ann, "backtests", "email", "immediate").await;
    rule(&app, ann, "paper", "email", "immediate").await;
    rule(&app, ann, "backtests", "inapp", "immediate").await;

    // A real backtest mail, and its links.
    let first = emit(&app, &finished(ann)).await;
    let mails = sink
        .wait_for("ann@example.org", 1, Duration::from_secs(60))
        .await;
    assert_eq!(email_outcome(&app, first).await, "sent/");
    let m = &mails[0];
    let list_unsub = header(m, "List-Unsubscribe").expect("List-Unsubscribe");
    let one_click = list_unsub
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    assert!(
        one_click.starts_with(&app.url("/unsubscribe/one-click?t=")),
        "{one_click}"
    );
    let token = one_click.split("?t=").nth(1).unwrap().to_owned();
    assert_eq!(
        unsubscribe::verify(&app.ctx.keys, &token),
        Some((ann, Category::Backtests))
    );
    let footer = link(m, "/unsubscribe?t=");
    assert_eq!(footer, app.url(&format!("/unsubscribe?t={token}")));

    let rules_before = rules(&app, ann).await;
    let deliveries_before = deliveries(&app, ann).await;
    let client = no_cookies();

    // GET and HEAD change nothing: the footer link shows the page, the one-click URL redirects to it.
    let page = client.get(&footer).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Backtests"), "{html}");
    assert!(html.contains("a•••@example.org"), "{html}");
    assert!(html.contains(r#"action="/unsubscribe""#), "{html}");
    assert!(!html.contains("ann@example.org"), "the address is masked");
    let head = client.head(&footer).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    for resp in [
        client.get(&one_click).send().await.unwrap(),
        client.head(&one_click).send().await.unwrap(),
    ] {
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&resp), format!("/unsubscribe?t={token}"));
        assert!(!sets_cookie(&resp), "no cookie on the one-click URL");
    }
    assert_eq!(rules(&app, ann).await, rules_before);
    assert_eq!(deliveries(&app, ann).await, deliveries_before);

    // The confirmation page's form is CSRF-protected: without the token, 403. The exemption is exact.
    let resp = client
        .post(app.url("/unsubscribe"))
        .form(&[("t", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = client
        .post(app.url(&format!("/unsubscribe/one-click/x?t={token}")))
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a longer path is not exempt"
    );
    // A tampered token, or a genuine one without RFC 8058's body: 400, nothing changes, no cookie.
    let tampered = token.replace(".backtests.", ".paper.");
    for (url, body) in [
        (
            app.url(&format!("/unsubscribe/one-click?t={tampered}")),
            "List-Unsubscribe=One-Click",
        ),
        (
            app.url("/unsubscribe/one-click?t=v1.x.backtests.y"),
            "List-Unsubscribe=One-Click",
        ),
        (one_click.clone(), "List-Unsubscribe=Maybe"),
    ] {
        let resp = client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{url} {body}");
        assert!(!sets_cookie(&resp));
    }
    assert_eq!(rules(&app, ann).await, rules_before);
    assert_eq!(deliveries(&app, ann).await, deliveries_before);

    // The mail provider's POST: no session, no cookie, 200; only (backtests, email) is off.
    let resp = crate::helpers::one_click_unsubscribe(&client, &one_click).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!sets_cookie(&resp), "the one-click answer sets no cookie");
    let after = rules(&app, ann).await;
    let expected: Vec<_> = rules_before
        .iter()
        .map(|r| {
            if (r.0.as_str(), r.2.as_str()) == ("backtests", "email") {
                (
                    r.0.clone(),
                    r.1.clone(),
                    r.2.clone(),
                    "off".to_owned(),
                    "unsubscribe".to_owned(),
                )
            } else {
                r.clone()
            }
        })
        .collect();
    assert_eq!(after, expected, "only (backtests, email) changed");
    // Multipart, as RFC 8058 also allows, and again: idempotent.
    let form = reqwest::multipart::Form::new().text("List-Unsubscribe", "One-Click");
    let resp = client
        .post(&one_click)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(rules(&app, ann).await, expected);

    // The next backtest result sends no mail but still arrives in-app; system mail still arrives.
    let second = emit(&app, &finished(ann)).await;
    assert_eq!(email_outcome(&app, second).await, "suppressed/off");
    let inapp: i64 = sqlx::query_scalar(
        "select count(*) from notification where user_id = $1 and event_type = 'backtest.finished'",
    )
    .bind(ann)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(inapp, 2, "in-app is unchanged");
    let test = emit(&app, &Event::sample("system.test", ann).unwrap()).await;
    let mails = sink
        .wait_for("ann@example.org", 2, Duration::from_secs(60))
        .await;
    assert_eq!(email_outcome(&app, test).await, "sent/");
    assert!(
        header(&mails[1], "X-Vortex-Event").as_deref() == Some("system.test"),
        "{}",
        mails[1]
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let to_ann = sink
        .messages()
        .iter()
        .filter(|m| m.contains("To: ann@example.org"))
        .count();
    assert_eq!(to_ann, 2, "no backtest mail after the unsubscribe");
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'notify_unsubscribed' and user_id = $1",
    )
    .bind(ann)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn notify_unsubscribe_the_confirmation_page_form_unsubscribes_with_its_csrf_token() {
    let (app, _sink) = app_with_sink().await;
    let ann = verified_user(&app, "ann@example.org").await;
    let token = unsubscribe::sign(&app.ctx.keys, ann, Category::Paper);
    let page = format!("/unsubscribe?t={token}");
    let client = browser();
    let csrf = csrf(&app, &client, &page).await;
    let resp = client
        .post(app.url("/unsubscribe"))
        .form(&[("t", token.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), format!("{page}&ok=unsubscribed"));
    assert_eq!(
        rules(&app, ann).await,
        vec![(
            "paper".into(),
            "*".into(),
            "email".into(),
            "off".into(),
            "unsubscribe".into()
        )]
    );
    let html = client
        .get(app.url(&location(&resp)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("You are unsubscribed"), "{html}");
    // A link that is not valid: the page says so and offers the settings; its form post is refused.
    let bad = client
        .get(app.url("/unsubscribe?t=v1.nonsense"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::OK);
    assert!(bad.text().await.unwrap().contains("not valid"));
    let resp = client
        .post(app.url("/unsubscribe"))
        .form(&[("t", "v1.nonsense"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&resp),
        "/unsubscribe?t=v1.nonsense&error=unsubscribe_invalid"
    );
}

#[tokio::test]
async fn notify_unsubscribe_billing_mail_carries_one_click_and_never_stops_a_failed_payment_mail() {
    // Retries that keep trying while the relay is down below.
    let (app, mut sink) = app_with_retrying_mail("attempts=60,base_secs=0.5,max_secs=2").await;
    let ann = verified_user(&app, "ann@example.org").await;

    // A billing notice (not critical) is subscription mail: it carries the one-click link for billing.
    let changed = emit(&app, &Event::sample("billing.plan_changed", ann).unwrap()).await;
    let mails = sink
        .wait_for("ann@example.org", 1, Duration::from_secs(60))
        .await;
    assert_eq!(email_outcome(&app, changed).await, "sent/");
    let one_click = header(&mails[0], "List-Unsubscribe")
        .expect("a billing notice carries List-Unsubscribe")
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    let token = one_click.split("?t=").nth(1).unwrap().to_owned();
    assert_eq!(
        unsubscribe::verify(&app.ctx.keys, &token),
        Some((ann, Category::Billing))
    );

    // The relay is down: a failed payment's mail waits for its retry when the trader unsubscribes from
    // billing mail. It is not cancelled, and it is sent once the relay is back.
    sink.stop();
    let failed = emit(&app, &Event::sample("billing.payment_failed", ann).unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: Option<String> = sqlx::query_scalar(
            "select status from notify_delivery where event_id = $1 and channel = 'email'",
        )
        .bind(failed)
        .fetch_optional(&app.ctx.db)
        .await
        .unwrap();
        if status.as_deref() == Some("queued") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed payment's mail waits: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = crate::helpers::one_click_unsubscribe(&no_cookies(), &one_click).await;
    assert_eq!(resp.status(), StatusCode::OK);
    sink.restart().await;
    assert_eq!(
        email_outcome(&app, failed).await,
        "sent/",
        "the failed payment's mail was stopped by the unsubscribe"
    );
    let mails = sink
        .wait_for("ann@example.org", 2, Duration::from_secs(60))
        .await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains("Payment failed for your Pro plan")),
        "{mails:?}"
    );
    // A later billing notice is not mailed.
    let later = emit(&app, &Event::sample("billing.usage_warning", ann).unwrap()).await;
    assert_eq!(email_outcome(&app, later).await, "suppressed/off");
}
