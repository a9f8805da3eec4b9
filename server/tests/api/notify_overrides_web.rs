//! Per-event overrides on the settings page without JavaScript (docs/notifications.md "Per-event overrides"):
//! added, changed and removed with the preferences form's plain HTML post; stored as the user's rules; they
//! win over their category's cell (a finished backtest with its email override off is not emailed while the
//! category's email is immediate); a locked override (security email off) is refused with the action's
//! message shown at the override.

use std::time::{Duration, Instant};

use backend::notify::{self, Event};
use reqwest::{Client, StatusCode};
use uuid::Uuid;

use crate::{
    auth::{browser, confirmed_user, csrf, location, page_text},
    helpers::{Options, TestApp, spawn_app_with},
    smtp::SmtpSink,
};

const SETTINGS: &str = "/notifications/settings";

async fn browser_user(app: &TestApp, email: &str) -> (Client, Uuid) {
    let client = browser();
    let id = confirmed_user(app, &client, email, "Trader", None).await;
    (client, id)
}

/// The settings form as the page would post it: backtests email immediately, the rest default, plus `extra`.
async fn save(app: &TestApp, client: &Client, extra: &[(&str, &str)]) -> reqwest::Response {
    let token = csrf(app, client, SETTINGS).await;
    let mut fields: Vec<(&str, &str)> = vec![
        ("keep", "[]"),
        ("pref.backtests.inapp", "default"),
        ("pref.backtests.email", "immediate"),
        ("pref.backtests.webhook", "default"),
        ("quiet_start", "22:00"),
        ("quiet_end", "07:00"),
        ("quiet_action", "defer"),
        ("digest_frequency", "daily"),
        ("digest_weekday", "1"),
        ("digest_time", "08:00"),
    ];
    fields.extend_from_slice(extra);
    fields.push(("csrf", &token));
    client
        .post(app.url(SETTINGS))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

async fn rules_of(app: &TestApp, user: Uuid) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "select category, event_type, channel, mode from notify_rule where user_id = $1
         order by category, event_type, channel",
    )
    .bind(user)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
}

fn rule(c: &str, t: &str, ch: &str, m: &str) -> (String, String, String, String) {
    (c.into(), t.into(), ch.into(), m.into())
}

/// Emits a backtest event of `kind` for a run of its own; returns the event id.
async fn emit(app: &TestApp, kind: &str, user: Uuid) -> Uuid {
    let mut e = Event::sample(kind, user).unwrap();
    let run = Uuid::new_v4();
    match &mut e {
        Event::BacktestFinished(b) => (b.run_id, b.batch_id) = (run, run),
        Event::BacktestFailed(b) => (b.run_id, b.batch_id) = (run, run),
        _ => unreachable!(),
    }
    let mut tx = app.ctx.db.begin().await.unwrap();
    let emitted = notify::emit(&mut tx, &app.ctx.jobs, &app.ctx.clock, &e)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    notify::push(&app.ctx.jobs, std::slice::from_ref(&emitted)).await;
    emitted.event_id
}

/// The email delivery of an event once the fan-out wrote it and it settled: (id, status, reason).
async fn email_delivery(app: &TestApp, event: Uuid, status: &str) -> (Uuid, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row: Option<(Uuid, String, Option<String>)> = sqlx::query_as(
            "select delivery_id, status, reason from notify_delivery where event_id = $1 and channel = 'email'",
        )
        .bind(event)
        .fetch_optional(&app.ctx.db)
        .await
        .unwrap();
        if let Some((id, s, reason)) = &row
            && s == status
        {
            return (*id, reason.clone());
        }
        assert!(
            Instant::now() < deadline,
            "the email delivery of {event} is not {status}: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn notify_overrides_are_added_changed_and_removed_and_win_over_their_category() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![("SMTP_URL", sink.url())],
    })
    .await;
    let (ann, ann_id) = browser_user(&app, "ann@example.org").await;

    // The section is there, with an "add" row offering the catalogue's event types.
    let html = page_text(&app, &ann, SETTINGS).await;
    assert!(html.contains(r#"id="overrides""#), "{html}");
    assert!(html.contains(r#"name="override.new.event""#), "{html}");
    assert!(
        html.contains(r#"<option value="backtest.finished">"#),
        "{html}"
    );
    assert!(
        !html.contains(r#"<option value="admin.job_dead">"#),
        "admin events are for admins"
    );

    // Without the CSRF token: 403, nothing stored.
    let resp = ann
        .post(app.url(SETTINGS))
        .form(&[
            ("override.new.event", "backtest.finished"),
            ("override.new.channel", "email"),
            ("override.new.mode", "off"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(rules_of(&app, ann_id).await.is_empty());

    // Add: finished backtests not by email, although the category's email is immediate.
    let resp = save(
        &app,
        &ann,
        &[
            ("override.new.event", "backtest.finished"),
            ("override.new.channel", "email"),
            ("override.new.mode", "off"),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/notifications/settings?ok=prefs_saved");
    assert_eq!(
        rules_of(&app, ann_id).await,
        vec![
            rule("backtests", "*", "email", "immediate"),
            rule("backtests", "backtest.finished", "email", "off"),
        ]
    );
    let html = page_text(&app, &ann, SETTINGS).await;
    assert!(
        html.contains(r#"data-override="backtest.finished.email""#),
        "{html}"
    );
    assert!(
        html.contains(r#"name="override.0.event" value="backtest.finished""#),
        "{html}"
    );
    assert!(
        !keep_has(&html, "backtest.finished"),
        "an override is not also kept"
    );

    // It takes effect: the failed run is emailed (the category), the finished one is not (the override).
    let finished = emit(&app, "backtest.finished", ann_id).await;
    let failed = emit(&app, "backtest.failed", ann_id).await;
    let (sent, _) = email_delivery(&app, failed, "sent").await;
    sink.wait_for_text(
        "ann@example.org",
        &[&format!("n-{sent}@")],
        Duration::from_secs(20),
    )
    .await;
    let (_, reason) = email_delivery(&app, finished, "suppressed").await;
    assert_eq!(reason.as_deref(), Some("off"));
    assert!(
        !sink
            .messages()
            .iter()
            .any(|m| m.contains("To: ann@example.org") && m.contains("Backtest finished")),
        "the finished backtest was not emailed"
    );

    // Change it (to the digest), then remove it: the category's immediate email applies again.
    let resp = save(
        &app,
        &ann,
        &[
            ("override.0.event", "backtest.finished"),
            ("override.0.channel", "email"),
            ("override.0.mode", "digest"),
            ("override.new.event", ""),
            ("override.new.channel", "inapp"),
            ("override.new.mode", "off"),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/notifications/settings?ok=prefs_saved");
    assert_eq!(
        rules_of(&app, ann_id).await,
        vec![
            rule("backtests", "*", "email", "immediate"),
            rule("backtests", "backtest.finished", "email", "digest"),
        ]
    );
    let resp = save(
        &app,
        &ann,
        &[
            ("override.0.event", "backtest.finished"),
            ("override.0.channel", "email"),
            ("override.0.mode", "remove"),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/notifications/settings?ok=prefs_saved");
    assert_eq!(
        rules_of(&app, ann_id).await,
        vec![rule("backtests", "*", "email", "immediate")]
    );
    let finished = emit(&app, "backtest.finished", ann_id).await;
    let (sent, _) = email_delivery(&app, finished, "sent").await;
    let mail = sink
        .wait_for_text(
            "ann@example.org",
            &[&format!("n-{sent}@")],
            Duration::from_secs(20),
        )
        .await;
    assert!(mail.contains("Backtest finished"), "{mail}");
}

/// Whether the hidden `keep` field carries `needle`.
fn keep_has(html: &str, needle: &str) -> bool {
    const NEEDLE: &str = r#"name="keep" value=""#;
    let start = html.find(NEEDLE).expect("keep field") + NEEDLE.len();
    html[start..].split('"').next().unwrap().contains(needle)
}

#[tokio::test]
async fn notify_overrides_a_locked_override_is_refused_with_the_message_at_the_override() {
    let app = spawn_app_with(Options::default()).await;
    let (ann, ann_id) = browser_user(&app, "ann@example.org").await;
    let resp = save(
        &app,
        &ann,
        &[
            ("override.new.event", "backtest.failed"),
            ("override.new.channel", "inapp"),
            ("override.new.mode", "off"),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/notifications/settings?ok=prefs_saved");
    let before = rules_of(&app, ann_id).await;
    assert_eq!(before.len(), 2);

    // Security email cannot be turned off: refused, the message at the "add" row, nothing changed.
    let resp = save(
        &app,
        &ann,
        &[
            ("override.0.event", "backtest.failed"),
            ("override.0.channel", "inapp"),
            ("override.0.mode", "immediate"),
            ("override.new.event", "security.password_changed"),
            ("override.new.channel", "email"),
            ("override.new.mode", "off"),
        ],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?error=prefs_invalid#overrides"
    );
    assert_eq!(rules_of(&app, ann_id).await, before);
    let html = page_text(&app, &ann, "/notifications/settings?error=prefs_invalid").await;
    let at = html
        .find(r#"id="override-error""#)
        .unwrap_or_else(|| panic!("the message at the override: {html}"));
    let shown = &html[at..at + 400];
    assert!(
        shown.contains(r#"data-field="override.new.mode""#),
        "{shown}"
    );
    assert!(shown.contains("cannot be turned off"), "{shown}");
    assert!(
        html.find(r#"id="override-new""#).unwrap() < at,
        "shown in the add row"
    );
    assert!(
        !html.contains(r#"id="form-error""#),
        "not (also) at the top"
    );

    // The in-app channel has no digest: the message is at the listed override it was chosen for.
    let resp = save(
        &app,
        &ann,
        &[
            ("override.0.event", "backtest.failed"),
            ("override.0.channel", "inapp"),
            ("override.0.mode", "digest"),
        ],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?error=prefs_invalid#overrides"
    );
    let html = page_text(&app, &ann, "/notifications/settings?error=prefs_invalid").await;
    assert!(html.contains(r#"data-field="override.0.mode""#), "{html}");
    assert!(html.contains("no in-app digest"), "{html}");
    assert_eq!(rules_of(&app, ann_id).await, before);

    // Garbage field names are refused with the field named.
    let resp = save(&app, &ann, &[("override.x.event", "backtest.failed")]).await;
    assert_eq!(
        location(&resp),
        "/notifications/settings?error=prefs_invalid"
    );
    let html = page_text(&app, &ann, "/notifications/settings?error=prefs_invalid").await;
    assert!(html.contains(r#"data-field="override""#), "{html}");
}
