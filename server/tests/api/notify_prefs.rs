//! Notification preferences (docs/design/notifications.md §3, §4.2): the `prefs` actions against real Postgres.
//! A viewer may change their own preferences, a read-only token may not; invalid documents name the field and
//! change nothing; a stored document reads back, is audited and schedules the next digest in the profile's time
//! zone; a time-zone change moves it; an unsubscribe veto survives a `put` until the category's email is set
//! again.

use backend::{
    Actor, Error, Surface,
    account::profile::{self, ProfileUpdate},
    auth::{AuthUser, Credential, RequestMeta, Role, Scope, users},
    clock::Clock,
    notify::{
        Category, Mode,
        prefs::{self, DigestDoc, Preferences, QuietAction, QuietHours, RuleDoc, RuleSource},
        schedule::Frequency,
        unsubscribe,
    },
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::helpers::{Options, TestApp, spawn_app_with_clock};

fn z(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

async fn person(app: &TestApp, email: &str, role: Role, tz: &str, credential: Credential) -> Actor {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, email, "Pat", "not-a-password-hash", role)
        .await
        .unwrap()
        .expect("new email");
    users::mark_verified(&mut conn, id).await.unwrap();
    users::update_profile(&mut *conn, id, "Pat", tz)
        .await
        .unwrap();
    Actor::user(
        AuthUser {
            user_id: id,
            email: email.into(),
            display_name: "Pat".into(),
            role,
            email_verified: true,
            time_zone: tz.into(),
            credential,
        },
        Surface::Api,
        RequestMeta::new("127.0.0.1", "tests"),
        None,
    )
}

fn rule(cat: &str, ty: &str, ch: &str, mode: Mode) -> RuleDoc {
    RuleDoc {
        category: cat.into(),
        event_type: ty.into(),
        channel: ch.into(),
        mode,
        paper_run_id: None,
        source: RuleSource::User,
    }
}

fn doc(rules: Vec<RuleDoc>) -> Preferences {
    Preferences {
        rules,
        quiet_hours: QuietHours {
            enabled: true,
            start: "22:00".into(),
            end: "07:00".into(),
            action: QuietAction::Digest,
        },
        digest: DigestDoc {
            frequency: Frequency::Daily,
            weekday: 1,
            time: "08:00".into(),
        },
        time_zone: "ignored/on-put".into(),
    }
}

async fn next_digest_at(app: &TestApp, user_id: Uuid) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("select next_digest_at from notify_settings where user_id = $1")
        .bind(user_id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

async fn audits(app: &TestApp, user_id: Uuid) -> i64 {
    sqlx::query_scalar(
        "select count(*) from audit_event where user_id = $1 and event = 'notify_preferences_changed'",
    )
    .bind(user_id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn notify_prefs_put_validates_audits_schedules_and_keeps_vetoes() {
    // Friday 12 March 2027, 10:00Z: 19:00 in Tokyo.
    let clock = Clock::manual(z("2027-03-12T10:00:00Z"));
    let app = spawn_app_with_clock(Options::default(), clock.clone()).await;
    let ctx = &app.ctx;
    let viewer = person(
        &app,
        "viewer@example.org",
        Role::Viewer,
        "Asia/Tokyo",
        Credential::Session("s1".into()),
    )
    .await;
    let uid = viewer.user_id().unwrap();

    // Never set: the defaults, with the profile's zone.
    let got = prefs::get(ctx, &viewer).await.unwrap();
    assert!(got.rules.is_empty() && !got.quiet_hours.enabled);
    assert_eq!(
        (got.digest.frequency, got.digest.time.as_str()),
        (Frequency::Daily, "08:00")
    );
    assert_eq!(got.time_zone, "Asia/Tokyo");

    // A read-only token may read but not write.
    let mut reader = viewer.clone();
    if let backend::actor::Who::User(u) = &mut reader.who {
        u.credential = Credential::ApiToken {
            token_id: Uuid::new_v4(),
            scope: Scope::Read,
        };
    }
    assert!(prefs::get(ctx, &reader).await.is_ok());
    assert!(matches!(
        prefs::put(ctx, &reader, doc(vec![])).await,
        Err(Error::Forbidden(_))
    ));

    // An invalid document names the field and changes nothing.
    let bad = doc(vec![
        rule("backtests", "*", "email", Mode::Immediate),
        rule("security", "*", "email", Mode::Off),
    ]);
    match prefs::put(ctx, &viewer, bad).await {
        Err(Error::Invalid { field, message }) => {
            assert_eq!(field, "rules[1].mode");
            assert_eq!(message, "security email cannot be turned off");
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    assert!(prefs::get(ctx, &viewer).await.unwrap().rules.is_empty());
    assert_eq!(audits(&app, uid).await, 0);

    // A viewer sets their own preferences; they read back as stored (the event type fills in its category).
    let stored = prefs::put(
        ctx,
        &viewer,
        doc(vec![
            rule("backtests", "*", "email", Mode::Immediate),
            rule("*", "backtest.failed", "inapp", Mode::Off),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        stored.rules,
        [
            rule("backtests", "*", "email", Mode::Immediate),
            rule("backtests", "backtest.failed", "inapp", Mode::Off),
        ]
    );
    assert!(stored.quiet_hours.enabled && stored.quiet_hours.action == QuietAction::Digest);
    assert_eq!(stored.time_zone, "Asia/Tokyo");
    assert_eq!(prefs::get(ctx, &viewer).await.unwrap(), stored);
    assert_eq!(audits(&app, uid).await, 1);
    // 08:00 in Tokyo is 23:00Z the day before: the next one after 10:00Z on the 12th is 23:00Z on the 12th.
    assert_eq!(
        next_digest_at(&app, uid).await,
        Some(z("2027-03-12T23:00:00Z"))
    );

    // Moving to New York moves the next digest (08:00 EST on the 12th = 13:00Z) and the waiting batches.
    sqlx::query(
        "insert into notify_batch (batch_id, user_id, channel, kind, batch_key, flush_at)
         values ($1, $2, 'email', 'digest', '', '2027-03-12T23:00:00Z')",
    )
    .bind(Uuid::new_v4())
    .bind(uid)
    .execute(&ctx.db)
    .await
    .unwrap();
    let mut trader = viewer.clone();
    if let backend::actor::Who::User(u) = &mut trader.who {
        u.role = Role::Trader;
    }
    profile::update(
        ctx,
        &trader,
        ProfileUpdate {
            display_name: None,
            time_zone: Some("America/New_York".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        next_digest_at(&app, uid).await,
        Some(z("2027-03-12T13:00:00Z"))
    );
    let flush: DateTime<Utc> = sqlx::query_scalar(
        "select flush_at from notify_batch where user_id = $1 and kind = 'digest' and status = 'open'",
    )
    .bind(uid)
    .fetch_one(&ctx.db)
    .await
    .unwrap();
    assert_eq!(flush, z("2027-03-12T13:00:00Z"));

    // A one-click unsubscribe from backtest email: a put that does not set that email keeps the veto…
    let token = unsubscribe::sign(&ctx.keys, uid, Category::Backtests);
    let anon = Actor::anonymous(Surface::Web, RequestMeta::new("127.0.0.1", "mail"), None);
    unsubscribe::one_click(ctx, &anon, &token).await.unwrap();
    let after = prefs::get(ctx, &viewer).await.unwrap();
    let veto = RuleDoc {
        source: RuleSource::Unsubscribe,
        ..rule("backtests", "*", "email", Mode::Off)
    };
    assert!(after.rules.contains(&veto), "{:?}", after.rules);
    let kept = prefs::put(
        ctx,
        &viewer,
        doc(vec![rule("paper", "*", "email", Mode::Digest)]),
    )
    .await
    .unwrap();
    assert!(kept.rules.contains(&veto), "{:?}", kept.rules);
    // …and echoing it back keeps it too; a forged veto is refused.
    let echoed = prefs::put(ctx, &viewer, kept.clone()).await.unwrap();
    assert_eq!(echoed.rules, kept.rules);
    let mut forged = doc(vec![]);
    forged.rules.push(RuleDoc {
        source: RuleSource::Unsubscribe,
        ..rule("paper", "*", "email", Mode::Off)
    });
    match prefs::put(ctx, &viewer, forged).await {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "rules[0].source"),
        other => panic!("expected invalid, got {other:?}"),
    }
    // Setting backtest email again lifts it.
    let lifted = prefs::put(
        ctx,
        &viewer,
        doc(vec![rule("backtests", "*", "email", Mode::Immediate)]),
    )
    .await
    .unwrap();
    assert_eq!(
        lifted.rules,
        [rule("backtests", "*", "email", Mode::Immediate)]
    );

    // Digests off: nothing scheduled, the waiting digest items are suppressed.
    let mut off = doc(vec![]);
    off.digest.frequency = Frequency::Off;
    prefs::put(ctx, &viewer, off).await.unwrap();
    assert_eq!(next_digest_at(&app, uid).await, None);
    let open: i64 = sqlx::query_scalar(
        "select count(*) from notify_batch where user_id = $1 and kind = 'digest' and status = 'open'",
    )
    .bind(uid)
    .fetch_one(&ctx.db)
    .await
    .unwrap();
    assert_eq!(open, 0);

    // The catalogue document serialises.
    let c = serde_json::to_value(prefs::catalogue()).unwrap();
    assert!(c["types"].as_array().unwrap().len() > 20);
}
