//! Security events and operator alerts through the notification pipeline (docs/design/notifications.md §2):
//! the account actions emit `security.*` events in their own transaction, the fan-out delivers them in-app and
//! by (transactional, never unsubscribable) email; a sign-in is "from a new device" only when the account has
//! signed in before and never from that address and browser in the last 30 days; the market ETL's give-up
//! hook alerts every admin once per series and hour.

use std::time::Duration;

use backend::{
    Actor, Surface,
    account::{password, signin, tokens},
    auth::{RequestMeta, Role, password as hashing, users},
    market::alerts,
};
use uuid::Uuid;

use crate::{
    helpers::{Options, TestApp, spawn_app_with},
    smtp::{SmtpSink, header},
};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const EDGE_ON_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
     Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0";
const PASSWORD: &str = "correct horse battery staple 42";

async fn app_with_sink() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![("SMTP_URL", sink.url())],
    })
    .await;
    (app, sink)
}

async fn account(app: &TestApp, email: &str, role: Role) -> Uuid {
    let hash = hashing::hash(PASSWORD.into()).await.unwrap();
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, email, "Tess", &hash, role)
        .await
        .unwrap()
        .expect("new email");
    users::mark_verified(&mut conn, id).await.unwrap();
    id
}

fn browser(ip: &str, ua: &str) -> Actor {
    Actor::anonymous(Surface::Web, RequestMeta::new(ip, ua), None)
}

async fn sign_in(app: &TestApp, email: &str, ip: &str, ua: &str) -> signin::SignedIn {
    signin::sign_in(&app.ctx, &browser(ip, ua), email, PASSWORD.into())
        .await
        .unwrap_or_else(|e| panic!("sign-in: {e}"))
        .done()
        .expect("no second step without two-factor sign-in")
}

/// The event types in `user_id`'s in-app list, oldest first, once the fan-out caught up with the events.
async fn inapp_types(app: &TestApp, user_id: Uuid, want: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let types: Vec<String> = sqlx::query_scalar(
            "select event_type from notification where user_id = $1 order by created_at, event_type",
        )
        .bind(user_id)
        .fetch_all(&app.ctx.db)
        .await
        .unwrap();
        if types.len() >= want || std::time::Instant::now() > deadline {
            return types;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events_of(app: &TestApp, ty: &str) -> i64 {
    sqlx::query_scalar("select count(*) from notify_event where event_type = $1")
        .bind(ty)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn notif_a_sign_in_from_a_new_browser_is_told_by_email_and_in_app_but_known_ones_are_not() {
    let (app, sink) = app_with_sink().await;
    let email = "nina@example.com";
    let id = account(&app, email, Role::Trader).await;

    // The first sign-in after sign-up has nothing to compare with; the same browser again is known.
    sign_in(&app, email, "198.51.100.4", FIREFOX).await;
    sign_in(&app, email, "198.51.100.4", FIREFOX).await;
    assert_eq!(events_of(&app, "security.signin_new_device").await, 0);

    // Another browser, and the same browser from another address, are new.
    let s = sign_in(&app, email, "198.51.100.4", EDGE_ON_WINDOWS).await;
    sign_in(&app, email, "203.0.113.9", FIREFOX).await;
    assert_eq!(events_of(&app, "security.signin_new_device").await, 2);

    let mails = sink.wait_for(email, 2, Duration::from_secs(20)).await;
    let edge = mails
        .iter()
        .find(|m| m.contains("Edge on Windows"))
        .expect("a mail naming the new browser");
    assert_eq!(
        header(edge, "Subject").as_deref(),
        Some("New sign-in to your Vortex account from Edge on Windows")
    );
    let flat = edge.replace("=\r\n", "").replace("=\n", "");
    assert!(flat.contains("198.51.100.4"), "{flat}");
    assert!(flat.contains("/forgot-password") && flat.contains("/account"));
    assert!(
        header(edge, "List-Unsubscribe").is_none(),
        "security mail is transactional"
    );
    assert!(mails.iter().any(|m| m.contains("203.0.113.9")));
    let types = inapp_types(&app, id, 2).await;
    assert_eq!(types, ["security.signin_new_device"; 2]);

    // The event names the session, so the account page can end it.
    let detail: serde_json::Value = sqlx::query_scalar(
        "select payload from notify_event where event_type = 'security.signin_new_device' \
         and payload->>'device' = 'Edge on Windows'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        detail["session_public_id"],
        backend::auth::session::public_id(&s.session.session_id)
    );
    // Nothing else was mailed: two sign-in mails and no more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.wait_for(email, 2, Duration::from_secs(1)).await.len(),
        2
    );
}

#[tokio::test]
async fn notif_password_changes_and_new_api_tokens_reach_the_owner_even_with_security_email_off() {
    let (app, sink) = app_with_sink().await;
    let email = "omar@example.com";
    let id = account(&app, email, Role::Trader).await;
    // Even a rule turning every email off leaves security mail on (it is critical and locked).
    sqlx::query(
        "insert into notify_rule (rule_id, user_id, category, channel, mode)
         values ($1, $2, '*', 'email', 'off')",
    )
    .bind(Uuid::new_v4())
    .bind(id)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let signed = sign_in(&app, email, "198.51.100.4", FIREFOX).await;
    let user = backend::auth::session::authenticate(
        &app.ctx.db,
        &app.ctx.keys,
        &app.ctx.settings,
        &signed.session.token,
    )
    .await
    .unwrap()
    .expect("session");
    let actor = Actor::user(
        user,
        Surface::Web,
        RequestMeta::new("198.51.100.4", FIREFOX),
        None,
    );

    tokens::create(
        &app.ctx,
        &actor,
        tokens::NewToken {
            name: "nightly <script>".into(),
            scope: "read".into(),
            expires_in_days: "30".into(),
            current_password: PASSWORD.into(),
        },
    )
    .await
    .unwrap();
    password::change_password(
        &app.ctx,
        &actor,
        password::ChangePassword {
            current_password: PASSWORD.into(),
            new_password: "an even better passphrase 43".into(),
            sign_out_others: true,
        },
    )
    .await
    .unwrap();

    let mails = sink.wait_for(email, 2, Duration::from_secs(20)).await;
    let token_mail = mails
        .iter()
        .find(|m| header(m, "X-Vortex-Event").as_deref() == Some("security.token_created"))
        .expect("token mail");
    assert_eq!(
        header(token_mail, "Subject").as_deref(),
        Some("New API token: nightly <script>")
    );
    let flat = token_mail.replace("=\r\n", "").replace("=\n", "");
    let html = flat
        .split("Content-Type: text/html")
        .nth(1)
        .expect("an HTML part");
    assert!(
        html.contains("nightly &#60;script&#62;") && !html.contains("<script>"),
        "names are escaped in HTML: {html}"
    );
    assert!(flat.contains("read-only"));
    let pw = mails
        .iter()
        .find(|m| header(m, "X-Vortex-Event").as_deref() == Some("security.password_changed"))
        .expect("password mail");
    assert_eq!(
        header(pw, "Subject").as_deref(),
        Some("Your Vortex password was changed")
    );
    assert!(
        pw.replace("=\r\n", "")
            .replace("=\n", "")
            .contains("every API token was revoked")
    );
    let mut types = inapp_types(&app, id, 2).await;
    types.sort();
    assert_eq!(
        types,
        ["security.password_changed", "security.token_created"]
    );
}

#[tokio::test]
async fn notif_a_failing_market_job_alerts_every_admin_once_per_series_and_hour() {
    let (app, sink) = app_with_sink().await;
    let admin = account(&app, "ops@example.com", Role::Admin).await;
    let trader = account(&app, "tia@example.com", Role::Trader).await;
    let instrument: i32 = sqlx::query_scalar(
        "insert into instrument (exchange, symbol, base, quote) values ('binance', 'ETHBTC', 'ETH', 'BTC')
         returning instrument_id",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let chunk = |start: i64| {
        serde_json::json!({"run_id": Uuid::new_v4(), "instrument_id": instrument, "timeframe": "1m",
                           "start": start, "end": start + 60_000})
    };
    // Three chunks of one series and the scheduled update give up within the hour.
    let mut jobs = Vec::new();
    for (kind, payload) in [
        ("market_update", serde_json::json!({})),
        ("market_chunk", chunk(0)),
        ("market_chunk", chunk(60_000)),
        ("market_chunk", chunk(120_000)),
    ] {
        let job_id = Uuid::new_v4();
        sqlx::query(
            "insert into job (job_id, queue, kind, payload, status, attempts, last_error, finished_at)
             values ($1, 'market', $2, $3, 'failed', 5, 'the source answered 503 Service Unavailable', now())",
        )
        .bind(job_id)
        .bind(kind)
        .bind(payload)
        .execute(&app.ctx.db)
        .await
        .unwrap();
        jobs.push(job_id);
    }
    for job_id in &jobs {
        alerts::etl_gave_up(&app.ctx, *job_id).await;
    }
    assert_eq!(
        events_of(&app, "admin.etl_failing").await,
        2,
        "one for the update, one for the series"
    );
    let mails = sink
        .wait_for("ops@example.com", 2, Duration::from_secs(20))
        .await;
    assert!(
        mails.iter().any(|m| header(m, "Subject").as_deref()
            == Some("Market data failing: ETHBTC 1m from binance"))
    );
    assert!(mails.iter().any(|m| m.contains("503 Service Unavailable")));
    // (the tick also reports each failed job as `admin.job_dead`, coalesced; only the ETL alerts count here)
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let types = inapp_types(&app, admin, 0).await;
        let etl = types.iter().filter(|t| *t == "admin.etl_failing").count();
        if etl >= 2 || std::time::Instant::now() > deadline {
            assert_eq!(etl, 2, "{types:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        inapp_types(&app, trader, 0).await.is_empty(),
        "traders get no operator alerts"
    );
}

#[tokio::test]
async fn notif_account_flow_mails_are_events_of_the_stream_without_their_secret() {
    let (app, sink) = app_with_sink().await;
    let actor = browser("198.51.100.7", FIREFOX);
    backend::account::signup::sign_up(
        &app.ctx,
        &actor,
        backend::account::signup::SignUp {
            email: "uma@example.com".into(),
            display_name: "Uma".into(),
            password: PASSWORD.into(),
            invite: None,
            reason: None,
        },
    )
    .await
    .unwrap();
    // The same address again: the owner is told (no new account), and a reset link.
    backend::account::signup::sign_up(
        &app.ctx,
        &browser("198.51.100.8", FIREFOX),
        backend::account::signup::SignUp {
            email: "uma@example.com".into(),
            display_name: "Not Uma".into(),
            password: PASSWORD.into(),
            invite: None,
            reason: None,
        },
    )
    .await
    .unwrap();
    backend::account::reset::request_reset(&app.ctx, &actor, "uma@example.com")
        .await
        .unwrap();
    let mails = sink
        .wait_for("uma@example.com", 3, Duration::from_secs(20))
        .await;
    let rows: Vec<(
        String,
        serde_json::Value,
        Option<chrono::DateTime<chrono::Utc>>,
        String,
    )> = sqlx::query_as(
        "select e.event_type, e.payload, e.fanned_out_at, o.mail_class
             from email_outbox o join notify_event e using (event_id)
             where o.to_address = 'uma@example.com' order by o.created_at",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    let types: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        types,
        [
            "account.verification_requested",
            "account.signup_attempt_existing",
            "account.password_reset_requested"
        ]
    );
    for (ty, _, fanned_out, class) in &rows {
        assert!(fanned_out.is_some(), "{ty} is born fanned out");
        assert_eq!(class, "transactional");
    }
    // The one-time secrets of the links are in the mails only, never in the events.
    let secrets: Vec<String> = mails
        .iter()
        .filter(|m| {
            let flat = m.replace("=\n", "").replace("=3D", "=");
            flat.contains("/verify-email?token=") || flat.contains("/reset-password?token=")
        })
        .map(|m| {
            let path = if m.replace("=\n", "").contains("/verify-email") {
                "/verify-email"
            } else {
                "/reset-password"
            };
            crate::smtp::token(&crate::smtp::link(m, path))
        })
        .collect();
    assert_eq!(secrets.len(), 2, "a confirmation link and a reset link");
    for (ty, payload, ..) in &rows {
        for secret in &secrets {
            assert!(
                !payload.to_string().contains(secret.as_str()),
                "{ty} carries no secret"
            );
        }
    }
    let inapp: i64 = sqlx::query_scalar("select count(*) from notification")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(inapp, 0, "flow mails are not in-app notifications");
}
