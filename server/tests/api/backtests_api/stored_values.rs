//! The rule values of stored trades (issue 16): written by binary COPY as `float8[]` with the names once per
//! run, read back as the same named values the engine produced; and the migration that moved them out of the
//! old jsonb columns gives the same answers for trades stored the old way.

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

    // Store the trades as the previous schema did (jsonb pairs, no names per run), then run the migration's
    // backfill: the API and the export answer exactly as before.
    let db = &app.ctx.db;
    sqlx::query(
        r#"update backtest_trade t
              set entry_values = (select coalesce(jsonb_agg(jsonb_build_array(r.value_names -> t.entry_rule
                                                                  -> (o - 1)::int, v) order by o), '[]')
                                  from unnest(t.entry_vals) with ordinality u(v, o)),
                  exit_values = (select coalesce(jsonb_agg(jsonb_build_array(r.value_names -> t.exit_rule
                                                                 -> (o - 1)::int, v) order by o), '[]')
                                 from unnest(t.exit_vals) with ordinality u(v, o)),
                  entry_vals = '{}', exit_vals = '{}'
             from backtest_result r where r.backtest_run_id = t.backtest_run_id"#,
    )
    .execute(db)
    .await
    .unwrap();
    sqlx::query("update backtest_result set value_names = '{}'")
        .execute(db)
        .await
        .unwrap();
    let (emptied, _) = trades(&app, &token, &id).await;
    assert_eq!(
        emptied[0]["entry_values"],
        json!([]),
        "the new columns are what is read"
    );
    let migration = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../migrations/20261227000001_compact_trade_values.sql"
    ))
    .unwrap();
    let code: String = migration
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let backfill: Vec<&str> = code
        .split(';')
        .map(str::trim)
        .filter(|s| s.starts_with("update"))
        .collect();
    assert_eq!(backfill.len(), 2, "the migration's two backfill statements");
    for statement in backfill {
        sqlx::query(statement).execute(db).await.unwrap();
    }
    let (again, csv_again) = trades(&app, &token, &id).await;
    assert_eq!(Value::Array(list), again);
    assert_eq!(csv, csv_again);

    // Trades have no foreign key (it was checked once per stored row): deleting a run (here with its owner,
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
