//! Notifications, step 2, the email channel (docs/design/notifications.md §5): a real backtest finishes and its
//! owner gets exactly one email in the SMTP sink, with both parts, the subscription headers and a valid one-click
//! token; the one-click action turns exactly that category's email off and the next backtest sends none; a
//! permanently rejected address is marked undeliverable and gets no further subscription mail.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use backend::{
    Actor, Surface,
    auth::{RequestMeta, Role, Scope},
    backtest::{
        actions::{runs, strategies},
        runs::NewRun,
        strategies::NewStrategy,
    },
    market::{Pair, csv_import},
    notify::{self, Category, Event, unsubscribe},
};
use uuid::Uuid;

use crate::{
    helpers::{Options, TestApp, spawn_app_with},
    smtp::{SmtpSink, app_with_retrying_mail, header},
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

async fn person(app: &TestApp, email: &str) -> Actor {
    crate::helpers::api_actor(&app.ctx, email, Role::Trader, true, Scope::ReadWrite).await
}

/// Backtest results by email at once (their default is the digest), as the preferences page would set.
async fn backtests_email_immediately(app: &TestApp, user_id: Uuid) {
    sqlx::query(
        "insert into notify_rule (rule_id, user_id, category, channel, mode)
         values ($1, $2, 'backtests', 'email', 'immediate')",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .execute(&app.ctx.db)
    .await
    .unwrap();
}

/// Imports the XRP/ETH 5m demo candles and creates a MACD strategy; returns (instrument, strategy).
async fn setup_backtest(app: &TestApp, actor: &Actor) -> (i32, Uuid) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/XRP-ETH-5m.csv");
    let opts = csv_import::ImportOptions {
        exchange: "binance".into(),
        pair: Pair::parse("XRP/ETH").unwrap(),
        timeframe: None,
        skip_bad_rows: false,
    };
    let instrument = csv_import::import_file(&app.ctx.db, &path, &opts)
        .await
        .unwrap()
        .instrument_id;
    let strategy = strategies::create(
        actor,
        &app.ctx,
        NewStrategy {
            name: None,
            description: None,
            template: Some("macd".into()),
            source: None,
        },
    )
    .await
    .unwrap();
    (instrument, strategy)
}

/// Runs one backtest to `done`; returns its id.
async fn backtest(app: &TestApp, actor: &Actor, setup: (i32, Uuid), to: &str) -> Uuid {
    let created = runs::submit(
        actor,
        &app.ctx,
        &NewRun {
            strategy_id: setup.1,
            version: None,
            params: Vec::new(),
            instrument_ids: vec![setup.0],
            timeframe: "5m".into(),
            from: "2019-10-11".into(),
            to: to.into(),
            initial_cash: 10_000.0,
            fee: 0.001,
            slippage_bps: 0.0,
            fill: "next_open".into(),
        },
    )
    .await
    .unwrap();
    let run = created.run_ids[0];
    let job: Uuid =
        sqlx::query_scalar("select job_id from backtest_run where backtest_run_id = $1")
            .bind(run)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    app.wait_for_job(job, &["done"], Duration::from_secs(90))
        .await;
    run
}

/// Polls `sql` (one `$1` parameter, one text column) until it returns `want`.
async fn wait_for_value(app: &TestApp, sql: &str, id: Uuid, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Option<String> = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(&app.ctx.db)
            .await
            .unwrap();
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{sql}` for {id}: {got:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const DELIVERY_OF_RUN: &str =
    "select d.status || '/' || coalesce(d.reason, '') from notify_delivery d
     join notify_event e on e.event_id = d.event_id
     where d.channel = 'email' and e.dedupe_key = 'backtest.finished:' || $1::text";

fn to_count(sink: &SmtpSink, to: &str) -> usize {
    sink.messages()
        .iter()
        .filter(|m| m.contains(&format!("To: {to}")))
        .count()
}

/// The decoded body of the part with `Content-ID: {cid}` (base64, as lettre encodes binary parts).
fn inline_part(message: &str, cid: &str) -> Vec<u8> {
    use base64::Engine as _;
    let at = message
        .find(&format!("Content-ID: {cid}"))
        .unwrap_or_else(|| panic!("no part {cid} in:\n{message}"));
    let part = &message[at..];
    let head = part.find("\n\n").expect("part headers end");
    assert!(
        part[..head].contains("Content-Type: image/png"),
        "{}",
        &part[..head]
    );
    assert!(
        part[..head].contains("Content-Disposition: inline"),
        "{}",
        &part[..head]
    );
    assert!(part[..head].contains("Content-Transfer-Encoding: base64"));
    let body = &part[head + 2..];
    let body: String = body[..body.find("\n--").expect("part end")]
        .split_whitespace()
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("base64 body")
}

#[tokio::test]
async fn notif_email_a_finished_backtest_mails_its_owner_once_and_one_click_turns_it_off() {
    let (app, sink) = app_with_sink().await;
    let ann = person(&app, "ann@example.org").await;
    let ann_id = ann.user_id().unwrap();
    backtests_email_immediately(&app, ann_id).await;
    let setup = setup_backtest(&app, &ann).await;

    let run = backtest(&app, &ann, setup, "2019-10-13").await;
    let mails = sink
        .wait_for("ann@example.org", 1, Duration::from_secs(60))
        .await;
    wait_for_value(&app, DELIVERY_OF_RUN, run, "sent/").await;
    let m = &mails[0];

    // The envelope: subscription class, deterministic Message-ID, Date at send time, list headers.
    let delivery_id: Uuid = sqlx::query_scalar(
        "select d.delivery_id from notify_delivery d join notify_event e on e.event_id = d.event_id
         where d.channel = 'email' and e.dedupe_key = 'backtest.finished:' || $1::text",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let message_id = header(m, "Message-ID").expect("Message-ID");
    assert!(
        message_id.starts_with(&format!("<n-{delivery_id}@")),
        "{message_id}"
    );
    let provider_ref: Option<String> =
        sqlx::query_scalar("select provider_ref from notify_delivery where delivery_id = $1")
            .bind(delivery_id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(provider_ref.as_deref(), Some(message_id.as_str()));
    let date = header(m, "Date").expect("Date");
    let date = chrono::DateTime::parse_from_rfc2822(&date).expect("RFC 2822 date");
    assert!((chrono::Utc::now() - date.to_utc()).num_seconds().abs() < 120);
    assert!(header(m, "Subject").unwrap().contains("Backtest finished"));
    assert!(
        header(m, "List-Id")
            .unwrap()
            .starts_with("Vortex backtests <backtests.notify.")
    );
    assert_eq!(
        header(m, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        header(m, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        header(m, "X-Vortex-Event").as_deref(),
        Some("backtest.finished")
    );
    let list_unsub = header(m, "List-Unsubscribe").expect("List-Unsubscribe");
    let one_click = format!("{}/unsubscribe/one-click?t=", app.address);
    assert!(
        list_unsub.starts_with(&format!("<{one_click}")) && list_unsub.ends_with('>'),
        "{list_unsub}"
    );
    let token = list_unsub
        .trim_start_matches(&format!("<{one_click}"))
        .trim_end_matches('>')
        .to_owned();
    assert_eq!(
        unsubscribe::verify(&app.ctx.keys, &token),
        Some((ann_id, Category::Backtests))
    );
    // Both parts, the results, the link to the run and the footer links; no remote images.
    assert!(m.contains("multipart/alternative"), "{m}");
    assert!(m.contains("Content-Type: text/plain"), "{m}");
    assert!(m.contains("Content-Type: text/html"), "{m}");
    let unfolded = m.replace("=\n", "").replace("=3D", "=");
    for s in [
        "Sharpe ratio",
        "Max drawdown",
        "Trades",
        "Total return",
        &format!("{}/backtests/{run}", app.address),
        &format!("{}/notifications/settings", app.address),
        &format!("{}/unsubscribe?t={token}", app.address),
    ] {
        assert!(unfolded.contains(s), "{s} missing in:\n{m}");
    }
    // One image: the equity sparkline, inside the message (no remote image, no tracking pixel).
    assert_eq!(unfolded.matches("<img").count(), 1, "{m}");
    assert!(
        unfolded.contains("<img src=\"cid:equity-sparkline@vortex\""),
        "{m}"
    );
    assert!(m.contains("multipart/related"), "{m}");
    let png = inline_part(m, "<equity-sparkline@vortex>");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (480, 96), "drawn at twice its 240x48 size");

    // Exactly once: nothing more arrives; the outbox row is the delivery's and marked sent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(to_count(&sink, "ann@example.org"), 1);
    let (class, status): (String, String) = sqlx::query_as(
        "select mail_class, status from email_outbox where delivery_id = $1 and email_id = $1",
    )
    .bind(delivery_id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!((class.as_str(), status.as_str()), ("subscription", "sent"));

    // The page's preview changes nothing and shows the category and the masked address.
    let p = unsubscribe::preview(&app.ctx, &token).await.unwrap();
    assert_eq!(
        (p.categories, p.masked_email.as_str()),
        (vec![Category::Backtests], "a•••@example.org")
    );
    // A tampered token changes nothing; the genuine one turns exactly (backtests, email) off.
    let anon = Actor::anonymous(
        Surface::Web,
        RequestMeta::new("127.0.0.1", "mail client"),
        None,
    );
    let tampered = token.replace(".backtests.", ".system.");
    assert_eq!(
        unsubscribe::one_click(&app.ctx, &anon, &tampered)
            .await
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    let done = unsubscribe::one_click(&app.ctx, &anon, &token)
        .await
        .unwrap();
    assert_eq!(
        (done.user_id, done.categories),
        (ann_id, vec![Category::Backtests])
    );
    // Idempotent.
    unsubscribe::one_click(&app.ctx, &anon, &token)
        .await
        .unwrap();
    let rules: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "select category, event_type, channel, mode, source from notify_rule where user_id = $1 order by mode",
    )
    .bind(ann_id)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        rules,
        vec![(
            "backtests".into(),
            "*".into(),
            "email".into(),
            "off".into(),
            "unsubscribe".into()
        )],
        "the unsubscribe replaced the user's backtests email rule and touched nothing else"
    );
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'notify_unsubscribed' and user_id = $1",
    )
    .bind(ann_id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 2);

    // The next backtest still notifies in-app, but sends no email.
    let second = backtest(&app, &ann, setup, "2019-10-12").await;
    wait_for_value(&app, DELIVERY_OF_RUN, second, "suppressed/off").await;
    let inapp: i64 = sqlx::query_scalar(
        "select count(*) from notification where user_id = $1 and event_type = 'backtest.finished'",
    )
    .bind(ann_id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(inapp, 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(to_count(&sink, "ann@example.org"), 1);
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

const DELIVERY_OF_EVENT: &str = "select status || '/' || coalesce(reason, '') from notify_delivery
     where channel = 'email' and event_id = $1";

#[tokio::test]
async fn notif_email_one_click_from_a_mixed_digest_turns_off_each_of_its_categories() {
    let (app, _sink) = app_with_sink().await;
    let dee = person(&app, "dee@example.org").await;
    let dee_id = dee.user_id().unwrap();
    let both = unsubscribe::sign_set(
        &app.ctx.keys,
        dee_id,
        &[Category::Backtests, Category::System],
    );
    let p = unsubscribe::preview(&app.ctx, &both).await.unwrap();
    assert_eq!(p.categories, vec![Category::Backtests, Category::System]);
    let anon = Actor::anonymous(
        Surface::Web,
        RequestMeta::new("127.0.0.1", "mail client"),
        None,
    );
    let done = unsubscribe::one_click(&app.ctx, &anon, &both)
        .await
        .unwrap();
    assert_eq!(done.categories, vec![Category::Backtests, Category::System]);
    let rules: Vec<(String, String, String, String)> = sqlx::query_as(
        "select category, channel, mode, source from notify_rule where user_id = $1 order by category",
    )
    .bind(dee_id)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    let want = |c: &str| {
        (
            c.to_owned(),
            "email".to_owned(),
            "off".to_owned(),
            "unsubscribe".to_owned(),
        )
    };
    assert_eq!(rules, vec![want("backtests"), want("system")]);
    // Someone else's set, or a widened one, changes nothing.
    let widened = both.replace(".backtests+system.", ".backtests+security+system.");
    assert!(
        unsubscribe::one_click(&app.ctx, &anon, &widened)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn notif_email_a_permanently_rejected_address_is_marked_undeliverable() {
    let (app, sink) = app_with_sink().await;
    let bob = person(&app, "Bounce@example.org").await;
    let bob_id = bob.user_id().unwrap();
    sink.reject_rcpt(
        "bounce@example.org",
        "550 5.1.1 <bounce@example.org>: no such user",
    );

    // `backtest.failed` is emailed at once by default: the relay refuses the address for good.
    let first = emit(&app, &Event::sample("backtest.failed", bob_id).unwrap()).await;
    wait_for_value(&app, DELIVERY_OF_EVENT, first, "failed/rejected_address").await;
    let (reason, code): (String, Option<i32>) = sqlx::query_as(
        "select reason, smtp_code from mail_suppression where address = 'bounce@example.org'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!((reason.as_str(), code), ("rejected", Some(550)));
    let attempts: Vec<(String, Option<i32>)> = sqlx::query_as(
        "select a.outcome, a.smtp_code from notify_attempt a join notify_delivery d using (delivery_id)
         where d.event_id = $1",
    )
    .bind(first)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        attempts,
        vec![("rejected_address".to_owned(), Some(550))],
        "one try, no retry"
    );
    // The user learns it in-app (that event's email is off by default, and could not arrive anyway).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let told: i64 = sqlx::query_scalar(
            "select count(*) from notification where user_id = $1 and event_type = 'notify.email_undeliverable'",
        )
        .bind(bob_id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
        if told == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no in-app notice");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Further subscription mail to the address is not attempted: the fan-out records it as undeliverable and
    // queues no job.
    let second = emit(&app, &Event::sample("system.test", bob_id).unwrap()).await;
    wait_for_value(&app, DELIVERY_OF_EVENT, second, "suppressed/undeliverable").await;
    let job: Option<Uuid> = sqlx::query_scalar(
        "select job_id from notify_delivery where event_id = $1 and channel = 'email'",
    )
    .bind(second)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(job, None);
    let tries: i64 = sqlx::query_scalar(
        "select count(*) from notify_attempt a join notify_delivery d using (delivery_id) where d.event_id = $1",
    )
    .bind(second)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(tries, 0);
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn notif_email_an_smtp_outage_is_retried_and_a_duplicate_job_sends_nothing_twice() {
    let (app, mut sink) = app_with_retrying_mail("attempts=20,base_secs=0.2,max_secs=0.5").await;
    let cy = person(&app, "cy@example.org").await;
    let cy_id = cy.user_id().unwrap();

    // The relay is down: the delivery stays queued, each try logged as a retry.
    sink.stop();
    let event = emit(&app, &Event::sample("backtest.failed", cy_id).unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let retries: i64 = sqlx::query_scalar(
            "select count(*) from notify_attempt a join notify_delivery d using (delivery_id)
             where d.event_id = $1 and a.outcome = 'retry'",
        )
        .bind(event)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
        if retries >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no retries logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_value(&app, DELIVERY_OF_EVENT, event, "queued/").await;

    // Back up: delivered once, with the Message-ID rendered on the first try.
    sink.restart().await;
    let mails = sink
        .wait_for("cy@example.org", 1, Duration::from_secs(30))
        .await;
    wait_for_value(&app, DELIVERY_OF_EVENT, event, "sent/").await;
    let (delivery_id, provider_ref): (Uuid, String) = sqlx::query_as(
        "select delivery_id, provider_ref from notify_delivery where event_id = $1 and channel = 'email'",
    )
    .bind(event)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(header(&mails[0], "Message-ID").unwrap(), provider_ref);
    assert!(provider_ref.starts_with(&format!("<n-{delivery_id}@")));
    // backtest.failed is subscription mail too.
    assert!(header(&mails[0], "List-Unsubscribe").is_some());

    // A second job for the same delivery (a duplicate) finds it sent and sends nothing.
    let dup = app
        .ctx
        .jobs
        .enqueue(&app.ctx.jobs.new_job(
            backend::jobs::MAIL_QUEUE,
            notify::email::KIND,
            serde_json::json!({ "delivery_id": delivery_id }),
        ))
        .await
        .unwrap()
        .unwrap();
    app.wait_for_job(dup, &["done"], Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(to_count(&sink, "cy@example.org"), 1);
}
