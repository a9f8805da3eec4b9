//! Issue 11, item 14: housekeeping prunes sessions, audit entries, mail, jobs and failed sign-ins
//! past their retention.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Options, spawn_app_with};

// ----------------------------------------------------------------------------------------------------------
// 14. Retention
// ----------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn housekeeping_prunes_sessions_audit_mail_jobs_and_failed_sign_ins_past_their_retention() {
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![
            ("SESSION_RETENTION_DAYS", "7".into()),
            ("AUDIT_RETENTION_DAYS", "90".into()),
            ("FAILED_SIGNIN_RETENTION_DAYS", "3".into()),
            ("MAIL_RETENTION_DAYS", "10".into()),
            ("JOB_RETENTION_DAYS", "5".into()),
        ],
    })
    .await;
    let db = &app.ctx.db;
    let user = Uuid::new_v4();
    sqlx::query(
        "insert into app_user (user_id, email, password_hash) values ($1, 'keep@example.org', 'x')",
    )
    .bind(user)
    .execute(db)
    .await
    .unwrap();
    let sid = |c: char| c.to_string().repeat(64);
    // Sessions: expired 8 days ago (pruned), revoked 8 days ago (pruned), expired 6 days ago (kept), live (kept).
    for (id, expires, revoked) in [
        (sid('a'), "now() - interval '8 days'", "null"),
        (
            sid('b'),
            "now() + interval '1 day'",
            "now() - interval '8 days'",
        ),
        (sid('c'), "now() - interval '6 days'", "null"),
        (sid('d'), "now() + interval '1 day'", "null"),
    ] {
        sqlx::query(&format!(
            "insert into user_session (session_id, user_id, expires_at, revoked_at) values ($1, $2, {expires}, {revoked})"
        ))
        .bind(id)
        .bind(user)
        .execute(db)
        .await
        .unwrap();
    }
    // One-time tokens: used 8 days ago (pruned), fresh (kept).
    for (hash, used) in [
        (vec![1u8], "now() - interval '8 days'"),
        (vec![2u8], "null"),
    ] {
        sqlx::query(&format!(
            "insert into user_token (token_hash, user_id, purpose, expires_at, used_at) values ($1, $2, 'verify_email', now() + interval '1 day', {used})"
        ))
        .bind(hash)
        .bind(user)
        .execute(db)
        .await
        .unwrap();
    }
    // Audit: 100 days old (pruned), 80 days (kept); failed sign-ins 4 days (pruned) and 2 days (kept).
    for (event, age) in [
        ("signed_in", "100 days"),
        ("signed_in", "80 days"),
        ("signin_failed", "4 days"),
        ("signin_failed", "2 days"),
    ] {
        sqlx::query(&format!(
            "insert into audit_event (user_id, event, created_at) values ($1, $2, now() - interval '{age}')"
        ))
        .bind(user)
        .bind(event)
        .execute(db)
        .await
        .unwrap();
    }
    // Mail: sent 11 days ago (pruned), sent 9 days ago (kept), queued 30 days ago (kept: not finished).
    for (status, age) in [
        ("sent", "11 days"),
        ("sent", "9 days"),
        ("queued", "30 days"),
    ] {
        let id = Uuid::new_v4();
        sqlx::query(
            "insert into email_outbox (email_id, to_address, template, subject, body_text, body_html, message_id, status) \
             values ($1, 'keep@example.org', 't', 's', 'b', 'h', $2, $3)",
        )
        .bind(id)
        .bind(format!("<{id}@test>"))
        .bind(status)
        .execute(db)
        .await
        .unwrap();
        // updated_at is set by a trigger on update; age it with the trigger off for this session.
        sqlx::query("alter table email_outbox disable trigger email_outbox_set_updated_at")
            .execute(db)
            .await
            .unwrap();
        sqlx::query(&format!(
            "update email_outbox set updated_at = now() - interval '{age}' where email_id = $1"
        ))
        .bind(id)
        .execute(db)
        .await
        .unwrap();
        sqlx::query("alter table email_outbox enable trigger email_outbox_set_updated_at")
            .execute(db)
            .await
            .unwrap();
    }
    // Sign-in challenges and email-change links: expired 8 days ago (pruned), pending (kept).
    for (c, expires) in [
        ('e', "now() - interval '8 days'"),
        ('f', "now() + interval '1 day'"),
    ] {
        sqlx::query(&format!(
            "insert into signin_challenge (challenge_hash, user_id, expires_at) values ($1, $2, {expires})"
        ))
        .bind(sid(c))
        .bind(user)
        .execute(db)
        .await
        .unwrap();
        sqlx::query(&format!(
            "insert into email_change (token_hash, user_id, new_email, expires_at) values ($1, $2, 'new@example.org', {expires})"
        ))
        .bind(sid(c))
        .bind(user)
        .execute(db)
        .await
        .unwrap();
    }
    // Password-check reservations: 31 days old (pruned), 20 days old (kept: the 30-day known-client window
    // outlasts a shorter failed-sign-in retention).
    sqlx::query(
        "insert into auth_attempt (kind, account, client, outcome, created_at) values \
         ('signin', 'keep@example.org', '127.0.0.1', 'failed', now() - interval '31 days'), \
         ('signin', 'keep@example.org', '127.0.0.1', 'succeeded', now() - interval '20 days')",
    )
    .execute(db)
    .await
    .unwrap();
    // Jobs: finished 6 days ago (pruned), 4 days ago (kept).
    sqlx::query(
        "insert into job (job_id, queue, kind, status, finished_at) values \
         ($1, 'default', 'x', 'done', now() - interval '6 days'), ($2, 'default', 'x', 'failed', now() - interval '4 days')",
    )
    .bind(Uuid::new_v4())
    .bind(Uuid::new_v4())
    .execute(db)
    .await
    .unwrap();

    let id = backend::jobs::housekeeping::enqueue(&app.ctx, None, false)
        .await
        .unwrap()
        .unwrap();
    app.wait_for_job(id, &["done"], Duration::from_secs(20))
        .await;

    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(db)
            .await
            .unwrap()
    };
    let sessions: Vec<String> =
        sqlx::query_scalar("select session_id from user_session order by 1")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(sessions, vec![sid('c'), sid('d')]);
    assert_eq!(count("select count(*) from user_token").await, 1);
    assert_eq!(
        count("select count(*) from audit_event where event = 'signed_in'").await,
        1
    );
    assert_eq!(
        count("select count(*) from audit_event where event = 'signin_failed'").await,
        1
    );
    assert_eq!(count("select count(*) from email_outbox").await, 2);
    assert_eq!(
        count("select count(*) from email_outbox where status = 'queued'").await,
        1
    );
    assert_eq!(count("select count(*) from job where kind = 'x'").await, 1);
    assert_eq!(count("select count(*) from auth_attempt").await, 1);
    assert_eq!(count("select count(*) from signin_challenge").await, 1);
    assert_eq!(count("select count(*) from email_change").await, 1);
    let pruned: Value = sqlx::query_scalar("select pruned from housekeeping_run where job_id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(
        pruned,
        serde_json::json!({"jobs": 1, "sessions": 2, "one_time_tokens": 1, "signin_challenges": 1, "email_changes": 1, "failed_signins": 1, "auth_attempts": 1, "audit_events": 1, "plan_overages": 0, "emails": 1,
                           "billing_events": 0, "billing_reconcile_runs": 0})
    );
}
