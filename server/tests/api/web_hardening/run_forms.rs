//! Issue 11, item 7: run forms are parsed in linear time and bounded; huge and over-declared forms
//! are refused quickly with a clear error.

use std::time::Duration;

use reqwest::StatusCode;

use super::{app, create_strategy, import_eth_btc, run_fields, scalar_i64, submit_run, trader};
use crate::auth::{csrf, location, page_text};

// ---------------------------------------------------------------------------------------------------------
// Item 7: run forms are parsed in linear time and bounded
// ---------------------------------------------------------------------------------------------------------

/// Short distinct names: `a`, `b`, … `aa`, …
fn short_name(mut i: usize) -> String {
    let mut s = String::new();
    loop {
        s.push(char::from(b'a' + u8::try_from(i % 26).unwrap()));
        i /= 26;
        if i == 0 {
            return s;
        }
    }
}

#[tokio::test]
async fn huge_and_over_declared_run_forms_are_refused_quickly_with_a_clear_error() {
    let app = app(Vec::new()).await;
    let instrument = import_eth_btc(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd", "Mine").await;
    let token = csrf(&app, &ann, "/").await;

    // 150,000 distinct `param.*` fields (under the 2 MiB body limit): refused at once, not parsed.
    let mut body = format!("csrf={token}&strategy_id={strategy}&instrument_id={instrument}");
    for i in 0..150_000 {
        body.push_str("&param.");
        body.push_str(&short_name(i));
        body.push('=');
    }
    assert!(body.len() < 2 * 1024 * 1024, "{}", body.len());
    let started = std::time::Instant::now();
    let resp = ann
        .post(app.url("/backtests/create"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("an answer within 5 s");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(resp.text().await.unwrap().contains("at most 1000"));

    // Within the field limit but more parameters than any strategy declares: back to the form, named.
    let mut fields = run_fields(strategy, instrument);
    for i in 0..100 {
        fields.push((format!("param.{}", short_name(i)), "1".into()));
    }
    let resp = submit_run(&app, &ann, &fields).await;
    let loc = location(&resp);
    assert!(
        loc.starts_with("/backtests/new?") && loc.contains("failed=1"),
        "{loc}"
    );
    let page = page_text(&app, &ann, &loc).await;
    assert!(page.contains("parameters"), "the form names the problem");
    // More values than the strategy declares (MACD has three): refused and said so.
    let mut fields = run_fields(strategy, instrument);
    fields.push(("param.extra".into(), "1".into()));
    let loc = location(&submit_run(&app, &ann, &fields).await);
    assert!(loc.contains("failed=1"), "{loc}");
    let page = page_text(&app, &ann, &loc).await.replace("<!>", "");
    assert!(
        page.contains("4 parameter values were sent but this strategy declares 3"),
        "{page}"
    );
    assert_eq!(
        scalar_i64(&app, "select count(*) from backtest_run").await,
        0
    );
}
