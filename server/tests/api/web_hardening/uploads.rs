//! Issue 11, items 5 and 12: the CSV upload checked before its body is read and one at a time, CSRF on
//! multipart posts everywhere, fixed upload messages and the market page's operational details.

use std::time::Duration;

use backend::market::{Timeframe, store};
use reqwest::{Client, StatusCode};

use super::{MIN5, T0, app, candles, create_strategy, scalar_i64, trader, write};
use crate::{
    auth::{browser, create_admin, csrf, location, page_text, sign_in},
    helpers::TestApp,
};

/// A signed-in admin.
async fn admin(app: &TestApp, email: &str) -> Client {
    let pass = "the boss has a long passphrase";
    let (code, out) = create_admin(app, email, pass);
    assert_eq!(code, 0, "{out}");
    let client = browser();
    assert_eq!(
        location(&sign_in(app, &client, email, pass).await),
        "/account"
    );
    client
}

// ---------------------------------------------------------------------------------------------------------
// Item 5: the CSV upload; item 12: multipart CSRF, upload messages, market page details
// ---------------------------------------------------------------------------------------------------------

const BOUNDARY: &str = "vortexboundary7MA4YWxkTrZu0gW";

fn text_part(name: &str, value: &str) -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

fn file_head() -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n"
    )
}

/// A multipart body: `head` at once, then `chunks` CSV chunks of `chunk` bytes, one every `every`, then the
/// closing boundary. `sent` counts the bytes the server has pulled so far.
fn slow_body(
    head: String,
    chunks: usize,
    chunk: usize,
    every: Duration,
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> reqwest::Body {
    use std::sync::atomic::Ordering;
    let first = head.into_bytes();
    let stream = futures::stream::unfold(0usize, move |i| {
        let sent = sent.clone();
        let first = first.clone();
        async move {
            let bytes: Vec<u8> = if i == 0 {
                first
            } else if i <= chunks {
                tokio::time::sleep(every).await;
                // Whole CSV lines, all valid, for distinct 1m candles.
                let mut out = String::with_capacity(chunk + 64);
                let mut k = (i - 1) * 100_000;
                while out.len() < chunk {
                    let t = 1_599_999_960_000i64 + i64::try_from(k).unwrap() * 60_000;
                    out.push_str(&format!("{t},1.0,2.0,0.5,1.5,10.0\n"));
                    k += 1;
                }
                out.into_bytes()
            } else if i == chunks + 1 {
                format!("\r\n--{BOUNDARY}--\r\n").into_bytes()
            } else {
                return None;
            };
            sent.fetch_add(bytes.len(), Ordering::SeqCst);
            Some((Ok::<_, std::io::Error>(bytes), i + 1))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

async fn post_upload(
    app: &TestApp,
    client: &Client,
    body: reqwest::Body,
    header_token: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = client
        .post(app.url("/market/upload"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    if let Some(t) = header_token {
        req = req.header("x-csrf-token", t);
    }
    req.send().await
}

#[tokio::test]
async fn uploads_by_traders_or_with_forged_tokens_are_refused_before_the_body_is_read() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let app = app(Vec::new()).await;
    let tess = trader(&app, "tess@example.org").await;
    let boss = admin(&app, "boss@example.org").await;
    // 40 chunks of 256 KiB, one every 100 ms: 10 MiB over 4 s.
    let (chunks, chunk, every) = (40, 256 * 1024, Duration::from_millis(100));
    let whole = chunks * chunk;

    let cases: Vec<(&str, &Client, String)> = vec![
        (
            "a trader with a valid token",
            &tess,
            text_part("csrf", &csrf(&app, &tess, "/market").await)
                + &text_part("pair", "ETH/BTC")
                + &file_head(),
        ),
        (
            "an admin with a forged token",
            &boss,
            text_part("csrf", "forged") + &text_part("pair", "ETH/BTC") + &file_head(),
        ),
        ("an admin whose file comes before the token", &boss, {
            let _ = csrf(&app, &boss, "/market").await;
            text_part("pair", "ETH/BTC") + &file_head()
        }),
    ];
    for (who, client, head) in cases {
        let sent = Arc::new(AtomicUsize::new(0));
        let started = std::time::Instant::now();
        let resp = tokio::time::timeout(
            Duration::from_secs(3),
            post_upload(
                &app,
                client,
                slow_body(head, chunks, chunk, every, sent.clone()),
                None,
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("{who}: no answer before the upload was sent"))
        .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{who}");
        let read = sent.load(Ordering::SeqCst);
        assert!(
            read < whole / 4,
            "{who}: {read} of {whole} bytes were read before the refusal ({:?})",
            started.elapsed()
        );
    }
    assert_eq!(scalar_i64(&app, "select count(*) from candle").await, 0);
}

#[tokio::test]
async fn one_upload_at_a_time_and_the_page_scripts_header_token_works() {
    use std::sync::{Arc, atomic::AtomicUsize};
    let app = app(Vec::new()).await;
    let boss = admin(&app, "boss@example.org").await;
    let token = csrf(&app, &boss, "/market").await;
    // A slow upload (the page's script: token in the header, no csrf field) holds the slot …
    let head = text_part("pair", "ETH/BTC")
        + &text_part("timeframe", "1m")
        + &file_head()
        + "timestamp,open,high,low,close,volume\n";
    let slow = {
        let app_url = app.url("/market/upload");
        let boss = boss.clone();
        let token = token.clone();
        let body = slow_body(
            head,
            20,
            16 * 1024,
            Duration::from_millis(150),
            Arc::new(AtomicUsize::new(0)),
        );
        tokio::spawn(async move {
            boss.post(app_url)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .header("x-csrf-token", token)
                .body(body)
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    // … so a second one is refused at once with 503 and Retry-After, …
    let second = text_part("csrf", &token)
        + &text_part("pair", "LTC/BTC")
        + &file_head()
        + "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n2024-01-01T00:01:00Z,1,2,0.5,1.5,10\n"
        + &format!("\r\n--{BOUNDARY}--\r\n");
    let resp = post_upload(&app, &boss, reqwest::Body::from(second.clone()), None)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "30");
    // … and the first one completes and is stored.
    let first = slow.await.unwrap();
    let to = location(&first);
    assert!(to.starts_with("/market?uploaded="), "{to}");
    let stored = scalar_i64(&app, "select count(*) from candle").await;
    assert!(stored > 1000, "{stored}");
    // Then the next upload goes through.
    let resp = post_upload(&app, &boss, reqwest::Body::from(second), None)
        .await
        .unwrap();
    assert!(
        location(&resp).starts_with("/market?uploaded=2&written=2"),
        "{}",
        location(&resp)
    );
}

#[tokio::test]
async fn multipart_posts_need_the_csrf_token_everywhere_but_the_upload_route() {
    let app = app(Vec::new()).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd", "Mine").await;
    // A multipart post without a token header (a cross-site form can send one) to a route without a body.
    let resp = ann
        .post(app.url(&format!("/strategies/{strategy}/archive")))
        .multipart(reqwest::multipart::Form::new().text("x", "y"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let archived: bool =
        sqlx::query_scalar("select archived_at is not null from strategy where strategy_id = $1")
            .bind(strategy)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert!(
        !archived,
        "a tokenless multipart post archived the strategy"
    );
    // With the token in the header it is an ordinary post.
    let token = csrf(&app, &ann, "/strategies").await;
    let resp = ann
        .post(app.url(&format!("/strategies/{strategy}/archive")))
        .header("x-csrf-token", token)
        .multipart(reqwest::multipart::Form::new().text("x", "y"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_market_page_shows_fixed_upload_messages_and_operational_details_to_admins_only() {
    let app = app(Vec::new()).await;
    let db = &app.ctx.db;
    let id = write(db, "ETH/BTC", &candles(Timeframe::M5, 0..10, 0.0)).await;
    let run = uuid::Uuid::new_v4();
    let mut conn = db.acquire().await.unwrap();
    store::insert_run(
        &mut conn,
        &store::NewRun {
            run_id: run,
            instrument_id: id,
            timeframe: Timeframe::M5,
            mode: "csv",
            source: "csv:/srv/vortex/private/secret-file.csv",
            from: T0,
            to: T0 + 10 * MIN5,
            chunks_total: 7,
            candles_expected: 10,
        },
    )
    .await
    .unwrap();
    drop(conn);
    store::fail_run(db, run, "connection to 10.11.12.13:5432 refused")
        .await
        .unwrap();

    // Free text in the query is never shown as the page's alert; known codes show fixed messages.
    let visitor = browser();
    let page = page_text(
        &app,
        &visitor,
        "/market?upload_error=Your+account+is+locked.+Call+0800",
    )
    .await;
    assert!(!page.contains("Your account is locked"), "free text shown");
    let page = page_text(
        &app,
        &visitor,
        "/market?uploaded=%3Cb%3E1%3C%2Fb%3E&written=9",
    )
    .await;
    assert!(!page.contains("Upload stored"), "non-numeric counts shown");
    let page = page_text(&app, &visitor, "/market?upload_error=csv").await;
    assert!(page.contains("The file has a bad row; nothing was stored."));

    // Anyone sees the run's status; only admins see its source path, error text and job counts.
    for (who, client, admin_view) in [
        ("anonymous", browser(), false),
        ("trader", trader(&app, "tess@example.org").await, false),
        ("admin", admin(&app, "boss@example.org").await, true),
    ] {
        let page = page_text(&app, &client, "/market").await;
        assert!(
            page.contains(&format!(r#"data-run="{run}""#)),
            "{who}: the run is listed"
        );
        for secret in [
            "/srv/vortex/private",
            "10.11.12.13",
            r#"class="run-chunks""#,
        ] {
            assert_eq!(page.contains(secret), admin_view, "{who}: {secret}");
        }
    }
}
