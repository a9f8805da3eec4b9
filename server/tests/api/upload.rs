//! The Market data page's CSV upload: admins only, CSRF-checked, line-precise errors, nothing stored from a bad
//! file, size-limited.

use reqwest::{
    StatusCode,
    multipart::{Form, Part},
};

use crate::auth::{
    PASSWORD, app_with_mail, browser, create_admin, csrf, location, page_text, sign_in,
    verified_user,
};

const GOOD: &str = "timestamp,open,high,low,close,volume\n\
2018-01-10T04:55:00Z,0.0984,0.0994766,0.09828605,0.0994766,1820.544474\n\
2018-01-10T05:00:00Z,0.09946999,0.0997238,0.099,0.09969,2527.921003\n\
2018-01-10T05:05:00Z,0.09969,0.09999,0.0995,0.0998,1000.5\n";

const BAD: &str = "timestamp,open,high,low,close,volume\n\
2018-01-10T04:55:00Z,0.0984,0.0994766,0.09828605,0.0994766,1820.544474\n\
2018-01-10T05:00:00Z,0.09946999,0.09,0.099,0.09969,2527.921003\n";

fn form(token: &str, pair: &str, csv: &str) -> Form {
    Form::new()
        .text("csrf", token.to_owned())
        .text("pair", pair.to_owned())
        .text("exchange", "upload")
        .text("timeframe", "")
        .part(
            "file",
            Part::bytes(csv.as_bytes().to_vec())
                .file_name("candles.csv")
                .mime_str("text/csv")
                .unwrap(),
        )
}

async fn candles(app: &crate::helpers::TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from candle")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_uploads_candles_and_bad_files_or_other_users_change_nothing() {
    let (app, sink) = app_with_mail().await;
    let (code, out) = create_admin(&app, "boss@example.org", "the boss has a long passphrase");
    assert_eq!(code, 0, "{out}");
    let admin = browser();
    assert_eq!(
        location(
            &sign_in(
                &app,
                &admin,
                "boss@example.org",
                "the boss has a long passphrase"
            )
            .await
        ),
        "/account"
    );
    let page = page_text(&app, &admin, "/market").await;
    assert!(
        page.contains(r#"id="market-upload""#),
        "admins see the upload form"
    );

    let token = csrf(&app, &admin, "/market").await;
    let resp = admin
        .post(app.url("/market/upload"))
        .multipart(form(&token, "ETH/BTC", GOOD))
        .send()
        .await
        .unwrap();
    let to = location(&resp);
    assert!(to.starts_with("/market?uploaded=3&written=3"), "{to}");
    assert_eq!(candles(&app).await, 3);
    let shown = page_text(&app, &admin, &to).await;
    assert!(
        shown.contains(r#"id="upload-result""#)
            && shown
                .replace("<!>", "")
                .contains("3 valid rows read, 3 candles written"),
        "{shown}"
    );

    // A bad row: refused with its line, nothing stored.
    let resp = admin
        .post(app.url("/market/upload"))
        .multipart(form(&token, "LTC/BTC", BAD))
        .send()
        .await
        .unwrap();
    let to = location(&resp);
    assert!(to.contains("upload_error=csv"), "{to}");
    // The line travels in the upload's flash cookie, not the query (issue 11: no free text in the alert).
    let shown = page_text(&app, &admin, &to).await.replace("<!>", "");
    assert!(
        shown.contains("The file has a bad row") && shown.contains("line 3"),
        "{shown}"
    );
    assert_eq!(candles(&app).await, 3);
    // With "skip bad rows" the good row is stored and the bad one reported.
    let resp = admin
        .post(app.url("/market/upload"))
        .multipart(form(&token, "LTC/BTC", BAD).text("skip_bad_rows", "on"))
        .send()
        .await
        .unwrap();
    let to = location(&resp);
    let decoded = url_decode(&to);
    assert!(
        decoded.contains("uploaded=1") && decoded.contains("rejected=1"),
        "{decoded}"
    );
    let shown = page_text(&app, &admin, &to).await.replace("<!>", "");
    assert!(shown.contains("line 3"), "{shown}");
    assert_eq!(candles(&app).await, 4);

    // Without the CSRF token, or as a trader: refused, nothing stored.
    let resp = admin
        .post(app.url("/market/upload"))
        .multipart(form("forged", "XRP/BTC", GOOD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let trader = verified_user(&app, &sink, "tess@example.org").await;
    let trader_page = page_text(&app, &trader, "/market").await;
    assert!(!trader_page.contains(r#"id="market-upload""#));
    let t = csrf(&app, &trader, "/market").await;
    let resp = trader
        .post(app.url("/market/upload"))
        .multipart(form(&t, "XRP/BTC", GOOD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let anonymous = browser();
    let t = csrf(&app, &anonymous, "/market").await;
    let resp = anonymous
        .post(app.url("/market/upload"))
        .multipart(form(&t, "XRP/BTC", GOOD))
        .send()
        .await
        .unwrap();
    assert!(location(&resp).starts_with("/signin"));
    assert_eq!(candles(&app).await, 4);
    let _ = PASSWORD;
}

#[tokio::test]
async fn uploads_over_the_size_limit_are_refused_with_413() {
    let (app, _sink) =
        crate::auth::app_with_mail_env(vec![("MARKET_UPLOAD_LIMIT_BYTES", "4096".into())]).await;
    let (code, out) = create_admin(&app, "big@example.org", "the boss has a long passphrase");
    assert_eq!(code, 0, "{out}");
    let admin = browser();
    sign_in(
        &app,
        &admin,
        "big@example.org",
        "the boss has a long passphrase",
    )
    .await;
    let token = csrf(&app, &admin, "/market").await;
    let big = format!(
        "{GOOD}{}",
        "2018-01-10T05:05:00Z,0.09969,0.09999,0.0995,0.0998,1000.5\n".repeat(200)
    );
    let resp = admin
        .post(app.url("/market/upload"))
        .multipart(form(&token, "ETH/BTC", &big))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(candles(&app).await, 0);
}

fn url_decode(s: &str) -> String {
    url::form_urlencoded::parse(
        s.split_once('?')
            .map_or("", |(_, q)| q)
            .split('#')
            .next()
            .unwrap_or("")
            .as_bytes(),
    )
    .map(|(k, v)| format!("{k}={v}"))
    .collect::<Vec<_>>()
    .join("&")
}
