//! The in-app centre and the settings page without JavaScript (docs/design/notifications.md §7, §10): plain
//! HTML form posts with the CSRF field, Post/Redirect/Get. Opening a notification marks it read and goes where
//! it leads; another user's notification is 404; a post without the CSRF token is 403; "mark all read"; the
//! webhook forms (add, test, rotate, delete) with the secret shown once.

use std::time::{Duration, Instant};

use backend::notify::{self, Event};
use reqwest::{Client, StatusCode};
use uuid::Uuid;

use crate::{
    auth::{browser, confirmed_user, csrf, location, page_text},
    helpers::{Options, TestApp, spawn_app_with},
    webhook_sink::WebhookSink,
};

/// A signed-up, confirmed and signed-in browser; returns it and the user's id.
async fn browser_user(app: &TestApp, email: &str) -> (Client, Uuid) {
    let client = browser();
    let id = confirmed_user(app, &client, email, "Trader", None).await;
    (client, id)
}

async fn emit(app: &TestApp, event: &Event) {
    let mut tx = app.ctx.db.begin().await.unwrap();
    let e = notify::emit(&mut tx, &app.ctx.jobs, &app.ctx.clock, event)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    notify::push(&app.ctx.jobs, std::slice::from_ref(&e)).await;
}

/// Waits until the user has `n` notifications; returns (id, url, read) newest first.
async fn notifications(app: &TestApp, user: Uuid, n: usize) -> Vec<(Uuid, Option<String>, bool)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows: Vec<(Uuid, Option<String>, bool)> = sqlx::query_as(
            "select notification_id, url, read_at is not null from notification where user_id = $1
             order by seq desc",
        )
        .bind(user)
        .fetch_all(&app.ctx.db)
        .await
        .unwrap();
        if rows.len() >= n {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} notifications",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(
    client: &Client,
    app: &TestApp,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = csrf(app, client, "/notifications").await;
    let mut form = fields.to_vec();
    form.push(("csrf", &token));
    client
        .post(app.url(action))
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn finished(user: Uuid) -> (Event, Uuid) {
    let mut e = Event::sample("backtest.finished", user).unwrap();
    let run = Uuid::new_v4();
    if let Event::BacktestFinished(b) = &mut e {
        b.run_id = run;
        b.batch_id = run;
    }
    (e, run)
}

#[tokio::test]
async fn notify_web_the_centre_works_with_plain_form_posts() {
    let app = spawn_app_with(Options {
        workers: true,
        env: Vec::new(),
    })
    .await;
    let (ann, ann_id) = browser_user(&app, "ann@example.org").await;
    let (bob, bob_id) = browser_user(&app, "bob@example.org").await;
    let (event, run) = finished(ann_id);
    emit(&app, &event).await;
    emit(&app, &Event::sample("system.test", ann_id).unwrap()).await;
    emit(&app, &Event::sample("system.test", ann_id).unwrap()).await;
    emit(&app, &Event::sample("system.test", bob_id).unwrap()).await;
    let rows = notifications(&app, ann_id, 3).await;
    let bobs = notifications(&app, bob_id, 1).await;
    let (run_item, _, _) = rows
        .iter()
        .find(|r| r.1.as_deref() == Some(&format!("/backtests/{run}")))
        .cloned()
        .expect("the run's notification");

    // The list is server-rendered: every item is a form, the bell shows the count.
    let html = page_text(&app, &ann, "/notifications").await;
    for (id, _, _) in &rows {
        assert!(
            html.contains(&format!(r#"action="/notifications/{id}/open""#)),
            "{html}"
        );
    }
    assert!(!html.contains(&bobs[0].0.to_string()), "only Ann's own");
    assert!(
        html.contains(r#"aria-label="Notifications, 3 unread""#),
        "{html}"
    );
    assert!(html.contains("Backtest finished"), "{html}");

    // Without the CSRF token: 403, nothing read.
    let resp = ann
        .post(app.url(&format!("/notifications/{run_item}/open")))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(notifications(&app, ann_id, 3).await.iter().all(|r| !r.2));

    // Another user's notification, or no such id: 404, and Bob's stays unread.
    let resp = post(
        &ann,
        &app,
        &format!("/notifications/{}/open", bobs[0].0),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = post(&ann, &app, "/notifications/not-an-id/open", &[]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(!notifications(&app, bob_id, 1).await[0].2);

    // Open: marked read, 303 to where it leads.
    let resp = post(&ann, &app, &format!("/notifications/{run_item}/open"), &[]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), format!("/backtests/{run}"));
    let now = notifications(&app, ann_id, 3).await;
    assert!(now.iter().find(|r| r.0 == run_item).unwrap().2);
    assert_eq!(now.iter().filter(|r| !r.2).count(), 2);
    let unread_page = page_text(&app, &ann, "/notifications?filter=unread").await;
    assert!(
        !unread_page.contains(&run_item.to_string()),
        "read items leave the unread filter"
    );
    assert!(unread_page.contains(r#"aria-label="Notifications, 2 unread""#));

    // Mark all read up to the newest shown; a later one stays unread.
    let newest: i64 = sqlx::query_scalar("select max(seq) from notification where user_id = $1")
        .bind(ann_id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    emit(&app, &Event::sample("system.test", ann_id).unwrap()).await;
    notifications(&app, ann_id, 4).await;
    let resp = post(
        &ann,
        &app,
        "/notifications/read-all",
        &[("up_to", &newest.to_string()), ("filter", "")],
    )
    .await;
    assert_eq!(location(&resp), "/notifications?ok=all_read");
    let after = notifications(&app, ann_id, 4).await;
    assert_eq!(
        after.iter().filter(|r| !r.2).count(),
        1,
        "the later one is unread"
    );
    let html = page_text(&app, &ann, "/notifications?ok=all_read").await;
    assert!(html.contains("All notifications are marked read."));
    assert!(html.contains(r#"aria-label="Notifications, 1 unread""#));

    // Anonymous: the page sends to sign-in, a form post too.
    let anon = browser();
    let resp = anon.get(app.url("/notifications")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(location(&resp).starts_with("/signin"));
    drop(bob);
}

#[tokio::test]
async fn notify_web_webhook_forms_add_test_rotate_and_delete_with_the_secret_shown_once() {
    let sink = WebhookSink::start().await;
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![("WEBHOOK_ALLOW_HOSTS", format!("127.0.0.1:{}", sink.port))],
    })
    .await;
    let (ann, ann_id) = browser_user(&app, "ann@example.org").await;
    let settings = "/notifications/settings";

    // A refused destination: back to the page with the field's message; nothing stored.
    let resp = post(
        &ann,
        &app,
        "/notifications/webhooks",
        &[
            ("name", "internal"),
            ("kind", "generic"),
            ("url", "http://10.0.0.5/hook"),
            ("categories", "backtests"),
        ],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?error=webhook_invalid"
    );
    let html = page_text(&app, &ann, &location(&resp)).await;
    assert!(html.contains(r#"data-field="url""#), "{html}");
    let count = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from notify_webhook where user_id = $1")
            .bind(ann_id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 0);

    // Add a generic one: the secret is on the next page once, never again.
    let resp = post(
        &ann,
        &app,
        "/notifications/webhooks",
        &[
            ("name", "My receiver"),
            ("kind", "generic"),
            ("url", &sink.url("/hook")),
            ("categories", "backtests"),
            ("categories", "system"),
        ],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?ok=webhook_created#webhooks"
    );
    let secret: String = sqlx::query_scalar("select secret from notify_webhook where user_id = $1")
        .bind(ann_id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    let html = page_text(&app, &ann, "/notifications/settings?ok=webhook_created").await;
    assert!(html.contains(&secret), "the secret is shown once: {html}");
    assert!(html.contains("My receiver") && html.contains("active"));
    let again = page_text(&app, &ann, settings).await;
    assert!(!again.contains(&secret), "and only once");
    let id: Uuid = sqlx::query_scalar("select webhook_id from notify_webhook where user_id = $1")
        .bind(ann_id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();

    // Test: one signed request now.
    let resp = post(
        &ann,
        &app,
        &format!("/notifications/webhooks/{id}/test"),
        &[],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?ok=webhook_test_ok#webhooks"
    );
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(got[0].verifies(&secret));

    // Rotate: a new secret, shown once.
    let resp = post(
        &ann,
        &app,
        &format!("/notifications/webhooks/{id}/rotate"),
        &[],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?ok=webhook_rotated#webhooks"
    );
    let new_secret: String =
        sqlx::query_scalar("select secret from notify_webhook where user_id = $1")
            .bind(ann_id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_ne!(new_secret, secret);
    assert!(page_text(&app, &ann, settings).await.contains(&new_secret));

    // Another user cannot touch it (404); its owner deletes it.
    let (bob, _) = browser_user(&app, "bob@example.org").await;
    let resp = post(
        &bob,
        &app,
        &format!("/notifications/webhooks/{id}/delete"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(count().await, 1);
    let resp = post(
        &ann,
        &app,
        &format!("/notifications/webhooks/{id}/delete"),
        &[],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?ok=webhook_deleted#webhooks"
    );
    assert_eq!(count().await, 0);
}

/// The value of the hidden `keep` field as the page rendered it (attribute entities undone).
fn keep_field(html: &str) -> String {
    const NEEDLE: &str = r#"name="keep" value=""#;
    let start = html.find(NEEDLE).expect("keep field") + NEEDLE.len();
    html[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `<select>` element with this id, as rendered.
fn select<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let from = html[..start].rfind("<select").unwrap();
    let end = start + html[start..].find("</select>").unwrap();
    &html[from..end]
}

async fn rules_of(app: &TestApp, user: Uuid) -> Vec<(String, String, String, String, String)> {
    sqlx::query_as(
        "select category, event_type, channel, mode, source from notify_rule where user_id = $1
         order by category, event_type, channel",
    )
    .bind(user)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn notify_web_the_preferences_form_round_trips_without_javascript() {
    let app = spawn_app_with(Options::default()).await;
    let (ann, ann_id) = browser_user(&app, "ann@example.org").await;
    let settings = "/notifications/settings";
    // A per-event rule the grid does not show, and an unsubscribe link's veto on paper email.
    sqlx::query(
        "insert into notify_rule (rule_id, user_id, category, event_type, channel, mode)
         values ($1, $2, 'backtests', 'backtest.failed', 'email', 'off')",
    )
    .bind(Uuid::new_v4())
    .bind(ann_id)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let anon = backend::Actor::anonymous(
        backend::Surface::Web,
        backend::auth::RequestMeta::new("127.0.0.1", "tests"),
        None,
    );
    let veto =
        backend::notify::unsubscribe::sign(&app.ctx.keys, ann_id, backend::notify::Category::Paper);
    backend::notify::unsubscribe::one_click(&app.ctx, &anon, &veto)
        .await
        .unwrap();

    let html = page_text(&app, &ann, settings).await;
    assert!(
        select(&html, "pref-security-email").contains("disabled"),
        "security email is locked"
    );
    assert!(
        html.contains("Security messages are always sent by email."),
        "and explained"
    );
    assert!(select(&html, "pref-backtests-email").contains(r#"<option value="default" selected"#));
    assert!(select(&html, "pref-paper-email").contains(r#"<option value="off" selected"#));
    assert!(html.contains("Turned off by an unsubscribe link"));
    assert!(
        html.contains(r#"id="time-zone">UTC<"#),
        "the profile's time zone is shown"
    );
    // The per-event rule is an override of its own (not a kept rule).
    let keep = keep_field(&html);
    assert!(!keep.contains("backtest.failed"), "{keep}");
    assert!(
        html.contains(r#"data-override="backtest.failed.email""#),
        "{html}"
    );

    // Without the CSRF token: 403.
    let resp = ann
        .post(app.url(settings))
        .form(&[("pref.backtests.email", "immediate")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let form = |quiet_start: &'static str, security: Option<&'static str>| {
        let mut f: Vec<(&str, String)> = vec![
            ("keep", keep.clone()),
            ("override.0.event", "backtest.failed".into()),
            ("override.0.channel", "email".into()),
            ("override.0.mode", "off".into()),
            ("override.new.event", String::new()),
            ("pref.backtests.inapp", "default".into()),
            ("pref.backtests.email", "immediate".into()),
            ("pref.backtests.webhook", "default".into()),
            ("pref.paper.email", "off".into()),
            ("pref.system.email", "digest".into()),
            ("quiet_enabled", "on".into()),
            ("quiet_start", quiet_start.into()),
            ("quiet_end", "07:00".into()),
            ("quiet_action", "defer".into()),
            ("digest_frequency", "weekly".into()),
            ("digest_weekday", "3".into()),
            ("digest_time", "09:30".into()),
        ];
        if let Some(m) = security {
            f.push(("pref.security.email", m.into()));
        }
        f
    };
    let send = |fields: Vec<(&'static str, String)>| {
        let (app, ann) = (&app, &ann);
        async move {
            let token = csrf(app, ann, settings).await;
            let mut fields = fields;
            fields.push(("csrf", token));
            ann.post(app.url(settings))
                .form(&fields)
                .send()
                .await
                .unwrap()
        }
    };

    // A bad time, or a locked cell sent anyway: refused with the field named, nothing stored.
    let before = rules_of(&app, ann_id).await;
    let resp = send(form("25:00", None)).await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?error=prefs_invalid"
    );
    let page = page_text(&app, &ann, &location(&resp)).await;
    assert!(page.contains(r#"data-field="quiet_hours.start""#), "{page}");
    let resp = send(form("22:00", Some("off"))).await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?error=prefs_invalid"
    );
    assert_eq!(rules_of(&app, ann_id).await, before);

    // Saved: the grid's choices, the per-event override; the veto replaced by the user's own "off".
    let resp = send(form("22:00", None)).await;
    assert_eq!(location(&resp), "/notifications/settings?ok=prefs_saved");
    assert_eq!(
        rules_of(&app, ann_id).await,
        vec![
            (
                "backtests".into(),
                "*".into(),
                "email".into(),
                "immediate".into(),
                "user".into()
            ),
            (
                "backtests".into(),
                "backtest.failed".into(),
                "email".into(),
                "off".into(),
                "user".into()
            ),
            (
                "paper".into(),
                "*".into(),
                "email".into(),
                "off".into(),
                "user".into()
            ),
            (
                "system".into(),
                "*".into(),
                "email".into(),
                "digest".into(),
                "user".into()
            ),
        ]
    );
    let (qs, qe, freq, wd, dt): (
        Option<chrono::NaiveTime>,
        Option<chrono::NaiveTime>,
        String,
        i16,
        chrono::NaiveTime,
    ) = sqlx::query_as(
        "select quiet_start, quiet_end, digest_frequency, digest_weekday, digest_time
             from notify_settings where user_id = $1",
    )
    .bind(ann_id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(qs.map(|t| t.to_string()).as_deref(), Some("22:00:00"));
    assert_eq!(qe.map(|t| t.to_string()).as_deref(), Some("07:00:00"));
    assert_eq!(
        (freq.as_str(), wd, dt.to_string().as_str()),
        ("weekly", 3, "09:30:00")
    );
    // The page shows what was saved.
    let html = page_text(&app, &ann, "/notifications/settings?ok=prefs_saved").await;
    assert!(html.contains("Notification settings saved."));
    assert!(
        select(&html, "pref-backtests-email").contains(r#"<option value="immediate" selected"#)
    );
    assert!(select(&html, "pref-system-email").contains(r#"<option value="digest" selected"#));
    assert!(!html.contains("Turned off by an unsubscribe link"));
}

#[tokio::test]
async fn notify_web_an_undeliverable_address_shows_the_banner_and_retry_clears_it() {
    let app = spawn_app_with(Options::default()).await;
    let (ann, _) = browser_user(&app, "Ann@example.org").await;
    let html = page_text(&app, &ann, "/notifications").await;
    assert!(!html.contains(r#"id="mail-banner""#));
    sqlx::query(
        "insert into mail_suppression (address, reason, smtp_code) values ('ann@example.org', 'rejected', 550)",
    )
    .execute(&app.ctx.db)
    .await
    .unwrap();
    for page in ["/notifications", "/backtests", "/notifications/settings"] {
        let html = page_text(&app, &ann, page).await;
        assert!(html.contains(r#"id="mail-banner""#), "{page}: {html}");
        assert!(
            html.contains(r#"href="/notifications/settings#email""#),
            "{page}"
        );
    }
    assert!(
        page_text(&app, &ann, "/notifications/settings")
            .await
            .contains(r#"id="email-undeliverable""#)
    );
    let resp = post(&ann, &app, "/notifications/email/retry", &[]).await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?ok=email_retried#email"
    );
    let left: i64 = sqlx::query_scalar("select count(*) from mail_suppression")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let html = page_text(&app, &ann, "/notifications/settings?ok=email_retried").await;
    assert!(!html.contains(r#"id="mail-banner""#));
    assert!(html.contains("a test notification is on its way"));
}
