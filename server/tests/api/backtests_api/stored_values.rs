//! The rule values of stored trades (issue 16): written by binary COPY in columnar chunks with the names once
//! per run, read back as the same named values the engine produced, in SQL's order for every sort; and the
//! migration that moved trades stored a row each into chunks gives the same answers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{app, get, import, post, strategy_from, trader};

/// Every trade of run `id` through the API, and the CSV export.
async fn trades(app: &crate::helpers::TestApp, token: &str, id: &str) -> (Value, String) {
    let list = get(
        app,
        &format!("/api/v1/backtests/{id}/trades?limit=1000"),
        token,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{list:?}");
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/backtests/{id}/trades.csv")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    (list.json["trades"].clone(), csv.text().await.unwrap())
}

#[tokio::test]
async fn stored_values_match_the_engine_and_trades_stored_the_old_way_read_the_same_after_the_migration()
 {
    let app = app(true, vec![]).await;
    let token = trader(&app, "values@example.org").await;
    let eth = import(&app, "ETH-BTC-5m.csv").await;
    // A strategy whose exit rule names other series than its entry rule, one of them not finite at times.
    let strategy = strategy_from(&app, &token, "bollinger").await;
    let created = post(
        &app,
        "/api/v1/backtests",
        &token,
        &json!({"strategy_id": strategy, "instrument_ids": [eth], "timeframe": "5m",
                "from": "2018-01-10", "to": "2018-01-31"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{created:?}");
    let id = created.json["runs"][0]["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let d = get(&app, &format!("/api/v1/backtests/{id}"), &token).await;
        match d.json["status"].as_str().unwrap() {
            "done" => break,
            "queued" | "running" => {}
            other => panic!("run ended {other}: {d:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The values are the engine's, named as the engine names them.
    let text = std::fs::read_to_string(super::data_file("ETH-BTC-5m.csv")).unwrap();
    let all = engine::csv::parse_candles(&text, None).unwrap().0;
    let compiled = engine::strategy::compile(
        engine::catalogue::template("bollinger").unwrap().source,
        &[],
    )
    .unwrap();
    let expected = engine::backtest::run(
        &all,
        &compiled,
        &engine::backtest::BacktestConfig::default(),
    )
    .unwrap();
    let (list, csv) = trades(&app, &token, &id).await;
    let list = list.as_array().unwrap().clone();
    assert!(list.len() > 5, "a meaningful run: {} trades", list.len());
    assert_eq!(list.len(), expected.trades.len());
    let pairs = |v: &[(std::sync::Arc<str>, f64)]| -> Value {
        Value::Array(
            v.iter()
                .map(|(k, x)| json!({"name": k.as_ref(), "value": x.is_finite().then_some(*x)}))
                .collect(),
        )
    };
    for (t, e) in list.iter().zip(&expected.trades) {
        assert_eq!(t["entry_rule"], e.entry_rule.as_ref(), "{t}");
        assert_eq!(t["entry_values"], pairs(&e.entry_values), "{t}");
        assert_eq!(t["exit_values"], pairs(&e.exit_values), "{t}");
    }
    assert!(
        list.iter()
            .any(|t| !t["exit_values"].as_array().unwrap().is_empty()),
        "signal exits carry values"
    );

    // Every order the API offers is SQL's order over the trades (the `backtest_trade` view sorts them in
    // Postgres; the application sorts the stored chunks itself), in both directions and across chunks.
    let db = &app.ctx.db;
    let run: uuid::Uuid = id.parse().unwrap();
    for sort in backend::backtest::runs::TRADE_SORTS {
        for dir in ["asc", "desc"] {
            for (limit, offset) in [(7usize, 0usize), (9, 3), (1000, 0), (4, list.len() - 2)] {
                let page = get(
                    &app,
                    &format!(
                        "/api/v1/backtests/{id}/trades?sort={sort}&dir={dir}&limit={limit}&offset={offset}"
                    ),
                    &token,
                )
                .await;
                assert_eq!(page.status, StatusCode::OK, "{page:?}");
                let got: Vec<i64> = page.json["trades"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["seq"].as_i64().unwrap())
                    .collect();
                let want: Vec<i64> = sqlx::query_scalar(&format!(
                    "select seq::bigint from backtest_trade where backtest_run_id = $1
                     order by {sort} {dir}, seq limit $2 offset $3"
                ))
                .bind(run)
                .bind(i64::try_from(limit).unwrap())
                .bind(i64::try_from(offset).unwrap())
                .fetch_all(db)
                .await
                .unwrap();
                assert_eq!(
                    got, want,
                    "sort={sort} dir={dir} limit={limit} offset={offset}"
                );
                assert_eq!(
                    page.json["total"].as_u64(),
                    Some(list.len() as u64),
                    "{page:?}"
                );
            }
        }
    }

    // Store the trades as the previous schema did (a row per trade), then run the migration's conversion to
    // chunks: the API and the export answer exactly as before.
    sqlx::query("create table backtest_trade_row as select * from backtest_trade where backtest_run_id = $1")
        .bind(run)
        .execute(db)
        .await
        .unwrap();
    sqlx::query("delete from backtest_trade_chunk where backtest_run_id = $1")
        .bind(run)
        .execute(db)
        .await
        .unwrap();
    let (emptied, _) = trades(&app, &token, &id).await;
    assert_eq!(emptied, json!([]), "the chunks are what is read");
    let migration = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../migrations/20270103000001_backtest_trade_chunks.sql"
    ))
    .unwrap();
    let code: String = migration
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let conversion: Vec<&str> = code
        .split(';')
        .map(str::trim)
        .filter(|s| s.starts_with("insert into backtest_trade_chunk"))
        .collect();
    assert_eq!(conversion.len(), 1, "the migration's conversion statement");
    sqlx::query(conversion[0]).execute(db).await.unwrap();
    sqlx::query("drop table backtest_trade_row")
        .execute(db)
        .await
        .unwrap();
    let chunks: i64 =
        sqlx::query_scalar("select count(*) from backtest_trade_chunk where backtest_run_id = $1")
            .bind(run)
            .fetch_one(db)
            .await
            .unwrap();
    assert!(
        chunks > 1,
        "converted 32 trades to a chunk: {chunks} chunks"
    );
    let (again, csv_again) = trades(&app, &token, &id).await;
    assert_eq!(Value::Array(list), again);
    assert_eq!(csv, csv_again);

    // Trades have no foreign key (it would be checked once per stored chunk): deleting a run (here with its owner,
    // as account deletion does) still takes its result and trades with it.
    let trades_of = |db: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("select count(*) from backtest_trade")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    assert!(trades_of(db.clone()).await > 5);
    sqlx::query("delete from app_user where email = 'values@example.org'")
        .execute(db)
        .await
        .unwrap();
    assert_eq!(
        trades_of(db.clone()).await,
        0,
        "the run's trades went with it"
    );
}
