//! Quiet hours and digests in two time zones on a manual clock (docs/design/notifications.md §4.5, §4.6 and
//! §10): users in Asia/Tokyo and America/New_York with a daily digest at 08:00; the clock steps through
//! 12–16 March 2027 in 15-minute steps with `tick::run_once`. Tokyo's digests go out at 23:00Z every day, New
//! York's at 13:00Z and, from the DST change on 14 March, 12:00Z. New York's quiet hours (22:00–07:00, defer)
//! hold what arrives at night for one "while you were away" mail at 07:00 local (11:00Z after the change);
//! Tokyo's (action digest) put it in the next digest.

use std::time::Duration;

use backend::{
    clock::Clock,
    notify::{
        prefs::{self, DigestDoc, Preferences, QuietAction, QuietHours},
        schedule::Frequency,
        tick,
    },
};
use chrono::{DateTime, Timelike, Utc};
use uuid::Uuid;

use crate::{
    helpers::{Options, spawn_app_with_clock},
    notify_volume::{emit, failed, fanned_out, finished, person, settled, subject, unfold, z},
    smtp::SmtpSink,
};

fn prefs_doc(action: QuietAction) -> Preferences {
    Preferences {
        rules: vec![],
        quiet_hours: QuietHours {
            enabled: true,
            start: "22:00".into(),
            end: "07:00".into(),
            action,
        },
        digest: DigestDoc {
            frequency: Frequency::Daily,
            weekday: 1,
            time: "08:00".into(),
        },
        time_zone: String::new(),
    }
}

#[tokio::test]
async fn notify_schedule_digests_and_quiet_hours_follow_each_users_zone_across_dst() {
    let start = z("2027-03-12T00:00:00Z");
    let clock = Clock::manual(start);
    let sink = SmtpSink::start().await;
    let app = spawn_app_with_clock(
        Options {
            workers: true,
            env: vec![("SMTP_URL", sink.url())],
        },
        clock.clone(),
    )
    .await;
    let tokyo = person(&app, "tokyo@example.org", "Asia/Tokyo").await;
    let ny = person(&app, "ny@example.org", "America/New_York").await;
    prefs::put(&app.ctx, &tokyo, prefs_doc(QuietAction::Digest))
        .await
        .unwrap();
    prefs::put(&app.ctx, &ny, prefs_doc(QuietAction::Defer))
        .await
        .unwrap();
    let (tk, nk) = (tokyo.user_id().unwrap(), ny.user_id().unwrap());

    let end = z("2027-03-16T00:00:00Z");
    let mut t = start;
    while t < end {
        clock.set(t);
        // A finished backtest for each every six hours (their email waits for the digest).
        if t.minute() == 0 && t.hour() % 6 == 1 {
            emit(&app, &finished(tk, &format!("Tokyo {t}"))).await;
            emit(&app, &finished(nk, &format!("NY {t}"))).await;
        }
        // Two failures in New York's night of 13 to 14 March (22:00 and 23:30 EST): held for the morning.
        if t == z("2027-03-14T03:00:00Z") || t == z("2027-03-14T04:30:00Z") {
            emit(
                &app,
                &failed(nk, Uuid::new_v4(), &format!("Night {}", t.hour())),
            )
            .await;
        }
        // A failure at 23:00 in Tokyo (quiet, action digest): in the next digest.
        if t == z("2027-03-13T14:00:00Z") {
            emit(&app, &failed(tk, Uuid::new_v4(), "Tokyo night")).await;
        }
        fanned_out(&app).await;
        tick::run_once(&app.ctx).await.unwrap();
        if t == z("2027-03-14T10:45:00Z") {
            assert_eq!(quiet_messages(&app, nk).await, Vec::<DateTime<Utc>>::new());
            assert_eq!(
                pending(&app, nk, "quiet").await,
                2,
                "both night failures wait"
            );
        }
        t += chrono::Duration::minutes(15);
    }

    assert_eq!(
        digests(&app, tk).await,
        [
            z("2027-03-12T23:00:00Z"),
            z("2027-03-13T23:00:00Z"),
            z("2027-03-14T23:00:00Z"),
            z("2027-03-15T23:00:00Z"),
        ]
    );
    assert_eq!(
        digests(&app, nk).await,
        [
            z("2027-03-12T13:00:00Z"),
            z("2027-03-13T13:00:00Z"),
            z("2027-03-14T12:00:00Z"),
            z("2027-03-15T12:00:00Z"),
        ]
    );
    assert_eq!(quiet_messages(&app, nk).await, [z("2027-03-14T11:00:00Z")]);
    assert_eq!(pending(&app, tk, "quiet").await, 0);

    // The mail: four digests each; New York one "while you were away" with both failures; Tokyo's night
    // failure inside a digest.
    sink.wait_for("tokyo@example.org", 4, Duration::from_secs(60))
        .await;
    sink.wait_for("ny@example.org", 5, Duration::from_secs(60))
        .await;
    let tokyo_mail = settled(&sink, "tokyo@example.org").await;
    let ny_mail = settled(&sink, "ny@example.org").await;
    assert_eq!(tokyo_mail.len(), 4);
    assert_eq!(ny_mail.len(), 5);
    assert!(
        tokyo_mail
            .iter()
            .all(|m| subject(m).starts_with("Your Vortex digest: "))
    );
    let with_failure: Vec<String> = tokyo_mail
        .iter()
        .map(|m| unfold(m))
        .filter(|m| m.contains("Tokyo night"))
        .collect();
    assert_eq!(with_failure.len(), 1);
    assert!(subject(&with_failure[0]).starts_with("Your Vortex digest: "));
    let away: Vec<String> = ny_mail
        .iter()
        .filter(|m| subject(m).starts_with("While you were away"))
        .map(|m| unfold(m))
        .collect();
    assert_eq!(away.len(), 1);
    assert_eq!(subject(&away[0]), "While you were away: 2 notifications");
    assert!(away[0].contains("Night 3") && away[0].contains("Night 4"));
}

/// When the user's digest messages were released (clock time).
async fn digests(app: &crate::helpers::TestApp, user: Uuid) -> Vec<DateTime<Utc>> {
    batch_messages(app, user, "digest").await
}

async fn quiet_messages(app: &crate::helpers::TestApp, user: Uuid) -> Vec<DateTime<Utc>> {
    batch_messages(app, user, "quiet").await
}

async fn batch_messages(
    app: &crate::helpers::TestApp,
    user: Uuid,
    kind: &str,
) -> Vec<DateTime<Utc>> {
    sqlx::query_scalar(
        "select d.released_at from notify_delivery d join notify_batch b on b.batch_id = d.batch_id
         where d.user_id = $1 and d.is_batch_message and b.kind = $2 order by d.released_at",
    )
    .bind(user)
    .bind(kind)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
}

async fn pending(app: &crate::helpers::TestApp, user: Uuid, reason: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from notify_delivery where user_id = $1 and status = 'pending' and reason = $2",
    )
    .bind(user)
    .bind(reason)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}
