//! Inbound signals over HTTP against the real app: a buy signal lets exactly one gated entry through (the
//! run's fills equal the ungated run's first round trip, and nothing after), an exit signal closes at the next
//! open; the signature header and the body token authenticate; bad secrets, stale times, other tickers,
//! replays, oversize bodies and floods are refused and stored as such; rotation retires the old secret; only
//! the owner sees the settings and the received list.

use backend::auth::{Scope, api_token};
use backend::billing::signature;
use backend::paper::{actions as act, actions::Owner};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{SMA, advance, fills, new_run, series, shifted, store_candles, strategy, trader};
use crate::helpers::{Options, TestApp, spawn_app_with};

const M5: i64 = 300_000;

/// An app without workers whose steps process one candle per run (so a test places signals candle by candle).
async fn app() -> TestApp {
    spawn_app_with(Options {
        workers: false,
        env: vec![
            ("MARKET_DATA_URL", "http://127.0.0.1:9".into()),
            ("PAPER_WARMUP_BARS", "100".into()),
            ("PAPER_TICK_SECS", "3600".into()),
            ("PAPER_CATCHUP_CANDLES", "1".into()),
        ],
    })
    .await
}

async fn bearer(app: &TestApp, user: Uuid) -> String {
    api_token::create(&app.ctx.db, user, "signals tests", Scope::ReadWrite, None)
        .await
        .unwrap()
        .unwrap()
        .1
}

/// `PUT /api/v1/paper-runs/{id}/signals` with `body`: (status, answer).
async fn put_signals(app: &TestApp, token: &str, run: Uuid, body: Value) -> (StatusCode, Value) {
    let resp = app
        .client
        .put(app.url(&format!("/api/v1/paper-runs/{run}/signals")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = resp.status();
    (s, resp.json().await.unwrap_or(Value::Null))
}

/// Switches a run to `gate`; its token (the secret) and signing key.
async fn gate(app: &TestApp, token: &str, run: Uuid) -> (String, String) {
    let (s, v) = put_signals(app, token, run, json!({"mode": "gate"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (
        v["secret"]["token"].as_str().unwrap().to_owned(),
        v["secret"]["signing_key"].as_str().unwrap().to_owned(),
    )
}

/// Posts `body` as text/plain (as TradingView does) to the run's signal URL, with an optional signature.
async fn post(app: &TestApp, run: Uuid, body: &str, sig: Option<String>) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/signals/{run}")))
        .header("content-type", "text/plain; charset=utf-8")
        .body(body.to_owned());
    if let Some(s) = sig {
        req = req.header("x-vortex-signature", s);
    }
    let resp = req.send().await.unwrap();
    let s = resp.status();
    (s, resp.json().await.unwrap_or(Value::Null))
}

fn tv(action: &str, token: &str, id: &str) -> String {
    json!({"action": action, "ticker": "BINANCE:ETHBTC", "time": Utc::now().to_rfc3339(), "id": id, "token": token})
        .to_string()
}

/// (verdict, status, reason) of every stored request, oldest first.
async fn stored(app: &TestApp, run: Uuid) -> Vec<(String, i16, Option<String>)> {
    sqlx::query_as(
        "select verdict, status, reason from paper_signal where paper_run_id = $1 order by received_at, signal_id",
    )
    .bind(run)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
}

async fn cursor(app: &TestApp, run: Uuid) -> (i64, Option<i64>) {
    let (live, last): (DateTime<Utc>, Option<DateTime<Utc>>) =
        sqlx::query_as("select live_from, last_open_time from paper_run where paper_run_id = $1")
            .bind(run)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    (live.timestamp_millis(), last.map(|t| t.timestamp_millis()))
}

/// Advances until the series has nothing left to do.
async fn drain(app: &TestApp, inst: i32) {
    for _ in 0..1000 {
        if !advance(app, inst).await.more {
            return;
        }
    }
    panic!("the series did not drain");
}

#[tokio::test]
async fn signals_gate_entries_and_exit_signals_close_at_the_next_open() {
    let app = app().await;
    // The runs started one after another must share their first live candle: not near a 5-minute boundary.
    let to_next = M5 - Utc::now().timestamp_millis().rem_euclid(M5);
    if to_next < 60_000 {
        tokio::time::sleep(std::time::Duration::from_millis(
            to_next.unsigned_abs() + 1000,
        ))
        .await;
    }
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let ann_id = ann.reader().unwrap().user_id;
    let token = bearer(&app, ann_id).await;
    let sid = strategy(&app, &ann, SMA).await;
    // The ungated run processes 150 live candles first: its fills say where the strategy enters.
    let a = act::start(&ann, &app.ctx, Owner::Me, &new_run(sid, inst))
        .await
        .unwrap()
        .run_ids[0];
    store_candles(&app, inst, &live.slice(0..150)).await;
    drain(&app, inst).await;
    let fa = fills(&app, a).await;
    let entries: Vec<i64> = fa.iter().filter(|f| f.1 == "buy").map(|f| f.0).collect();
    assert!(entries.len() >= 2, "the strategy must enter twice: {fa:?}");
    // The gated run, started now (same first live candle), processes the same candles one at a time.
    let b = act::start(&ann, &app.ctx, Owner::Me, &new_run(sid, inst))
        .await
        .unwrap()
        .run_ids[0];
    assert_eq!(cursor(&app, a).await.0, cursor(&app, b).await.0);
    let (secret, _) = gate(&app, &token, b).await;
    // A buy signal arrives before the candle at whose close the ungated run decided its first entry.
    let decide = entries[0] - M5;
    let mut n = 0;
    loop {
        let (live_from, last) = cursor(&app, b).await;
        let next = last.map_or(live_from, |t| t + M5);
        if next == decide {
            let (s, v) = post(&app, b, &tv("buy", &secret, "first"), None).await;
            assert_eq!(
                (s, v["verdict"].as_str()),
                (StatusCode::OK, Some("accepted")),
                "{v}"
            );
        }
        if !advance(&app, inst).await.more && last == cursor(&app, b).await.1 {
            break;
        }
        n += 1;
        assert!(n < 1000);
    }
    let fb = fills(&app, b).await;
    // Exactly the first round trip: the same entry (time, price, units, fee) and the strategy's own exit; the
    // later entries had no signal.
    let first_exit = fa.iter().position(|f| f.1 == "sell").unwrap();
    assert_eq!(fb, fa[..=first_exit].to_vec(), "gated fills differ");
    // The signal is marked with the candle it gated; the refused entry's candle records the signal gate.
    let applied: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select applied_to from paper_signal where paper_run_id = $1 and verdict = 'accepted'",
    )
    .bind(b)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(applied.map(|t| t.timestamp_millis()), Some(decide));
    let (gate_then, sig): (String, Value) = sqlx::query_as(
        "select gate, decision->'signal' from paper_candle where paper_run_id = $1 and open_time = $2",
    )
    .bind(b)
    .bind(DateTime::<Utc>::from_timestamp_millis(entries[1] - M5).unwrap())
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(gate_then, "no_entry");
    assert_eq!(sig["gated"], json!(true), "{sig}");
    // The parity report names the signal gate as the cause of the missing trades.
    let r = act::parity(&ann, &app.ctx, Owner::Me, b).await.unwrap();
    let text = serde_json::to_string(&r).unwrap();
    assert!(text.contains("inbound signal"), "{text}");

    // An exit signal: a third gated run enters on a buy signal before one of the ungated run's entries (one
    // that lasts three candles or more) and leaves at the open after the candle an exit signal arrived for.
    let sells: Vec<i64> = fa.iter().filter(|f| f.1 == "sell").map(|f| f.0).collect();
    let j = (0..entries.len().min(sells.len()))
        .find(|&j| sells[j] >= entries[j] + 3 * M5)
        .expect("a trade of three candles or more");
    let c = act::start(&ann, &app.ctx, Owner::Me, &new_run(sid, inst))
        .await
        .unwrap()
        .run_ids[0];
    assert_eq!(cursor(&app, a).await.0, cursor(&app, c).await.0);
    let (secret_c, _) = gate(&app, &token, c).await;
    loop {
        let (live_from, last) = cursor(&app, c).await;
        let next = last.map_or(live_from, |t| t + M5);
        if next == entries[j] - M5 {
            let (s, v) = post(&app, c, &tv("buy", &secret_c, "in"), None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        if next == entries[j] + M5 {
            let (s, v) = post(&app, c, &tv("sell", &secret_c, "out"), None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        if next > sells[j] || !advance(&app, inst).await.more {
            break;
        }
    }
    let fc = fills(&app, c).await;
    let a_entry = fa
        .iter()
        .find(|f| f.0 == entries[j] && f.1 == "buy")
        .unwrap();
    assert_eq!((fc[0].0, fc[0].2), (a_entry.0, a_entry.2), "{fc:?}");
    assert_eq!(
        (fc[1].0, fc[1].1.as_str()),
        (entries[j] + 2 * M5, "sell"),
        "{fc:?}"
    );
    let reason: String = sqlx::query_scalar(
        "select reason from paper_fill where paper_run_id = $1 and side = 'sell' order by open_time limit 1",
    )
    .bind(c)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(reason, "flatten");
}

#[tokio::test]
async fn signals_are_authenticated_checked_stored_and_listed_for_their_owner_only() {
    let app = app().await;
    let (history, _) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let bob = trader(&app, "bob@example.org").await;
    let ann_token = bearer(&app, ann.reader().unwrap().user_id).await;
    let bob_token = bearer(&app, bob.reader().unwrap().user_id).await;
    let sid = strategy(&app, &ann, SMA).await;
    let run = act::start(&ann, &app.ctx, Owner::Me, &new_run(sid, inst))
        .await
        .unwrap()
        .run_ids[0];

    // Signals off: the URL is 404 and nothing is stored; an unknown run too.
    let (s, _) = post(&app, run, &tv("buy", "vsig_x", "1"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = post(&app, Uuid::new_v4(), &tv("buy", "vsig_x", "1"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(stored(&app, run).await.is_empty());

    // Another user cannot configure or read the run's signals.
    let (s, _) = put_signals(&app, &bob_token, run, json!({"mode": "gate"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (secret, key) = gate(&app, &ann_token, run).await;
    assert!(secret.starts_with("vsig_"));

    // The body token: accepted; a replay is a duplicate and changes nothing.
    let body = tv("buy", &secret, "a1");
    let (s, v) = post(&app, run, &body, None).await;
    assert_eq!(
        (s, v["verdict"].as_str()),
        (StatusCode::OK, Some("accepted")),
        "{v}"
    );
    let (s, v) = post(&app, run, &body, None).await;
    assert_eq!(
        (s, v["verdict"].as_str()),
        (StatusCode::OK, Some("duplicate")),
        "{v}"
    );
    // Without an id the key is ticker and time.
    let t = Utc::now().timestamp();
    let no_id =
        json!({"action": "exit", "ticker": "ETHBTC", "time": t, "token": secret}).to_string();
    assert_eq!(post(&app, run, &no_id, None).await.1["verdict"], "accepted");
    assert_eq!(
        post(&app, run, &no_id, None).await.1["verdict"],
        "duplicate"
    );

    // The signature header (no token in the body).
    let signed = json!({"action": "buy", "ticker": "ETHBTC", "time": t, "id": "s1"}).to_string();
    let header = signature::header(&[key.as_str()], t, signed.as_bytes());
    let (s, v) = post(&app, run, &signed, Some(header)).await;
    assert_eq!(
        (s, v["verdict"].as_str()),
        (StatusCode::OK, Some("accepted")),
        "{v}"
    );
    // A signature made with another key, a tampered body, a wrong token, no secret at all: 401.
    let bad = signature::header(&["not-the-key"], t, signed.as_bytes());
    assert_eq!(
        post(&app, run, &signed, Some(bad)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let good = signature::header(&[key.as_str()], t, signed.as_bytes());
    let tampered = signed.replace("buy", "exit");
    assert_eq!(
        post(&app, run, &tampered, Some(good)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, run, &tv("buy", "vsig_wrong", "w1"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = post(
        &app,
        run,
        &json!({"action": "buy", "ticker": "ETHBTC", "time": t}).to_string(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // Stale: the signal's time, or the signature's timestamp, more than 300 s away.
    let old = Utc::now().timestamp() - 600;
    let stale =
        json!({"action": "buy", "ticker": "ETHBTC", "time": old, "token": secret}).to_string();
    let (s, v) = post(&app, run, &stale, None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("stale_signal")),
        "{v}"
    );
    let old_sig = signature::header(&[key.as_str()], old, signed.as_bytes());
    assert_eq!(
        post(&app, run, &signed, Some(old_sig)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Another ticker; an unknown action; a body over 8 KiB.
    let other =
        json!({"action": "buy", "ticker": "BTCUSDT", "time": t, "token": secret}).to_string();
    let (s, v) = post(&app, run, &other, None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("wrong_ticker")),
        "{v}"
    );
    let hold =
        json!({"action": "hold", "ticker": "ETHBTC", "time": t, "token": secret}).to_string();
    assert_eq!(
        post(&app, run, &hold, None).await.0,
        StatusCode::BAD_REQUEST
    );
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(9000));
    assert_eq!(
        post(&app, run, &big, None).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // Every request is stored with its verdict; only three accepted; no secret in any stored body.
    let rows = stored(&app, run).await;
    let count = |v: &str| rows.iter().filter(|r| r.0 == v).count();
    assert_eq!((count("accepted"), count("duplicate")), (3, 2), "{rows:?}");
    assert_eq!(count("rejected"), 9, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.1 == 401 && r.2.as_deref() == Some("the token does not match"))
    );
    let bodies: Vec<String> =
        sqlx::query_scalar("select body from paper_signal where paper_run_id = $1")
            .bind(run)
            .fetch_all(&app.ctx.db)
            .await
            .unwrap();
    assert!(
        bodies
            .iter()
            .all(|b| !b.contains(&secret[5..]) && !b.contains("vsig_wrong"))
    );
    // Rejections changed nothing else: no candle, no fill.
    let n: i64 = sqlx::query_scalar("select count(*) from paper_candle where paper_run_id = $1")
        .bind(run)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // The owner's list (REST), newest first with verdicts; another user's is 404.
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/paper-runs/{run}/signals?limit=5")))
        .bearer_auth(&ann_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["signals"].as_array().unwrap().len(), 5);
    assert_eq!(v["settings"]["mode"], "gate");
    assert_eq!(v["signals"][0]["status"], 413);
    assert!(v.to_string().find(&secret).is_none());
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/paper-runs/{run}/signals")))
        .bearer_auth(&bob_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(
        act::received_signals(&bob, &app.ctx, Owner::Me, run, None, 10)
            .await
            .is_err()
    );

    // Rotation: the old secret fails, the new one works.
    let (s, v) = put_signals(&app, &ann_token, run, json!({"rotate": true})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let new = v["secret"]["token"].as_str().unwrap().to_owned();
    assert_ne!(new, secret);
    assert_eq!(
        post(&app, run, &tv("buy", &secret, "r1"), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, run, &tv("buy", &new, "r2"), None).await.0,
        StatusCode::OK
    );
    // The allow-list: another address is refused.
    let (s, _) = put_signals(&app, &ann_token, run, json!({"allow_ips": ["203.0.113.7"]})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        post(&app, run, &tv("buy", &new, "r3"), None).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, _) = put_signals(&app, &ann_token, run, json!({"allow_ips": []})).await;
    assert_eq!(s, StatusCode::OK);
    // Settings changes are audited, without the secret.
    let audit: Vec<Value> = sqlx::query_scalar(
        "select detail from audit_event where event = 'paper_signals_changed' order by created_at",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert!(audit.len() >= 4, "{audit:?}");
    assert!(audit.iter().all(|d| !d.to_string().contains("vsig_")));

    // The OpenAPI document lists the routes; the signal URL needs no bearer token.
    let doc: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = &doc["paths"];
    assert_eq!(
        paths["/api/v1/signals/{run_id}"]["post"]["security"],
        json!([{}]),
        "{}",
        paths["/api/v1/signals/{run_id}"]
    );
    for m in ["get", "put"] {
        assert!(
            paths["/api/v1/paper-runs/{id}/signals"][m].is_object(),
            "{m}"
        );
    }

    // Off again: 404, nothing stored.
    let before = stored(&app, run).await.len();
    let (s, _) = put_signals(&app, &ann_token, run, json!({"mode": "off"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        post(&app, run, &tv("buy", &new, "o1"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(stored(&app, run).await.len(), before);
}

#[tokio::test]
async fn signals_are_rate_limited_per_run() {
    let app = app().await;
    let (history, _) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let token = bearer(&app, ann.reader().unwrap().user_id).await;
    let sid = strategy(&app, &ann, SMA).await;
    let ids = act::start(
        &ann,
        &app.ctx,
        Owner::Me,
        &backend::paper::NewPaperRun {
            instrument_ids: vec![inst],
            ..new_run(sid, inst)
        },
    )
    .await
    .unwrap()
    .run_ids;
    let run = ids[0];
    let (secret, _) = gate(&app, &token, run).await;
    let mut limited = 0;
    for i in 0..40 {
        let (s, _) = post(&app, run, &tv("buy", &secret, &format!("f{i}")), None).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 10, "{limited} of 40 were limited");
    let accepted: i64 = sqlx::query_scalar(
        "select count(*) from paper_signal where paper_run_id = $1 and verdict = 'accepted'",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert!(accepted <= backend::paper::signals::RATE_PER_MINUTE as i64);
    // The run's settings warn that TradingView would stop this alert.
    let s = act::signal_settings(&ann, &app.ctx, Owner::Me, run)
        .await
        .unwrap();
    assert!(s.near_tradingview_limit, "{s:?}");
}
