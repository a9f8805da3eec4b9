//! A paper run's live stream through nginx (`location ^~ /api/events/`, unbuffered): the first event, then a
//! processed candle announced within a second of its commit; another user's run is 404 through the proxy.

use std::time::{Duration, Instant};

use backend::{
    Ctx,
    auth::{RequestMeta, Role, Scope, session},
    backtest::{actions::strategies, strategies::NewStrategy},
    market::{Pair, store},
    paper::{NewPaperRun, actions as paper},
    settings::Settings,
};
use engine::candles::{Candles, Timeframe};
use reqwest::StatusCode;
use uuid::Uuid;

use super::Stack;
use crate::{helpers::api_actor, notify_live::EventStream};

async fn cookie_for(ctx: &Ctx, user: Uuid) -> String {
    let s = session::create(
        &ctx.db,
        &ctx.keys,
        &ctx.settings,
        user,
        &RequestMeta::new("127.0.0.1", "tests"),
    )
    .await
    .unwrap();
    format!("{}={}", session::cookie_name(&ctx.settings), s.token)
}

async fn store_candles(ctx: &Ctx, instrument: i32, from: i64, n: usize) {
    let tf = Timeframe::parse("5m").unwrap();
    let mut c = Candles::with_capacity(tf, n);
    for i in 0..n {
        let p = 0.05 + i as f64 * 1e-5;
        c.push(from + i as i64 * tf.millis(), p, p, p, p, 1.0);
    }
    let mut conn = ctx.db.acquire().await.unwrap();
    store::upsert_candles(&mut conn, instrument, &c)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_processed_candle_reaches_the_run_page_stream_through_nginx_within_a_second() {
    let stack = Stack::start_with(
        1,
        &[
            ("JWT_SECRET", "nginx-paper-sse-secret-0123456789abcdef01"),
            ("MARKET_DATA_EXCHANGE", "demo"),
            ("MARKET_DATA_URL", "http://127.0.0.1:9"),
        ],
    )
    .await;
    let ctx = Ctx::new(Settings::from_map(&stack.env).unwrap()).unwrap();
    let ann = api_actor(
        &ctx,
        "ann@example.org",
        Role::Trader,
        true,
        Scope::ReadWrite,
    )
    .await;
    let ann_id = ann.reader().unwrap().user_id;
    let strategy = strategies::create(
        &ann,
        &ctx,
        NewStrategy {
            template: Some("rsi".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let tf = Timeframe::parse("5m").unwrap();
    let mut conn = ctx.db.acquire().await.unwrap();
    let inst = store::ensure_instrument(&mut conn, "demo", &Pair::parse("ETH/BTC").unwrap())
        .await
        .unwrap();
    store::touch_series(&mut conn, inst.instrument_id, tf, Some(true), true)
        .await
        .unwrap();
    drop(conn);
    let started = paper::start(
        &ann,
        &ctx,
        paper::Owner::Me,
        &NewPaperRun {
            strategy_id: strategy,
            version: None,
            params: Vec::new(),
            instrument_ids: vec![inst.instrument_id],
            timeframe: "5m".into(),
            initial_cash: 1000.0,
            fee: Some(0.001),
            slippage_bps: 0.0,
            fill: "next_open".into(),
            warmup_bars: Some(0),
            risk: Default::default(),
        },
    )
    .await
    .unwrap();
    let run = started.run_ids[0];

    let cookie = cookie_for(&ctx, ann_id).await;
    let client = stack.nginx.client_from("127.0.0.8");
    let url = stack.nginx.https(&format!("/api/events/paper/{run}"));
    crate::paper_web::wait_listening_db(&ctx.db).await;
    let resp = client
        .get(&url)
        .header("cookie", &cookie)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = EventStream::new(resp);
    let (name, data, _) = stream
        .next_event(Duration::from_secs(5))
        .await
        .expect("the first event through nginx");
    assert_eq!(
        (name.as_str(), data["candles"].as_i64()),
        ("changed", Some(0))
    );

    let live_from: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select live_from from paper_run where paper_run_id = $1")
            .bind(run)
            .fetch_one(&ctx.db)
            .await
            .unwrap();
    store_candles(&ctx, inst.instrument_id, live_from.timestamp_millis(), 1).await;
    let t = Instant::now();
    let mut tx = ctx.db.begin().await.unwrap();
    backend::paper::advance::advance(&ctx, &mut tx, inst.instrument_id, tf)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (name, data, _) = stream
        .next_event(Duration::from_secs(5))
        .await
        .expect("the change through nginx");
    let took = t.elapsed();
    assert_eq!(
        (name.as_str(), data["candles"].as_i64()),
        ("changed", Some(1))
    );
    assert!(
        took < Duration::from_secs(1),
        "buffered? arrived after {took:?}"
    );

    // Another user's run: 404 through the proxy.
    let bob = api_actor(
        &ctx,
        "bob@example.org",
        Role::Trader,
        true,
        Scope::ReadWrite,
    )
    .await;
    let bob_cookie = cookie_for(&ctx, bob.reader().unwrap().user_id).await;
    let resp = client
        .get(&url)
        .header("cookie", &bob_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
