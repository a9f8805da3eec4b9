//! `vortex run-strategy --csv` and `vortex indicator` on the repo's real candles, as a user runs them.

use std::process::Command;

use crate::helpers::vortex_bin;

fn data(file: &str) -> String {
    format!("{}/../data/market/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn vortex(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(vortex_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "test")
        .output()
        .expect("run vortex");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_strategy_on_a_csv_prints_the_full_result_as_json() {
    let (code, out, err) = vortex(&[
        "run-strategy",
        "--strategy",
        "SMA_CROSS",
        "--csv",
        &data("ETH-BTC-5m.csv"),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let trades = v["trades"].as_array().expect("trades");
    assert!(!trades.is_empty());
    let final_equity = v["metrics"]["final_equity"]["value"]
        .as_f64()
        .expect("final equity");
    assert!(final_equity.is_finite() && final_equity > 0.0);
    assert!(
        v["provenance"]["engine_version"].is_string(),
        "{}",
        v["provenance"]
    );
    assert!(v["timing"]["engine_seconds"].as_f64().unwrap() >= 0.0);
    assert!(v["timing"]["load_seconds"].as_f64().unwrap() > 0.0);
    // Deterministic: the same input gives the same numbers.
    let (_, again, _) = vortex(&[
        "run-strategy",
        "--strategy",
        "sma_cross",
        "--csv",
        &data("ETH-BTC-5m.csv"),
        "--format",
        "json",
    ]);
    let w: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["trades"], w["trades"]);
    assert_eq!(v["metrics"], w["metrics"]);
}

#[test]
fn run_strategy_accepts_parameters_fees_fill_model_and_a_window_and_prints_a_table() {
    let (code, out, err) = vortex(&[
        "run-strategy",
        "--strategy",
        "rsi",
        "--csv",
        &data("LTC-BTC-5m.csv"),
        "--param",
        "period=10",
        "--fee",
        "0.002",
        "--slippage-bps",
        "5",
        "--fill",
        "close",
        "--cash",
        "5000",
        "--from",
        "2018-01-12",
        "--to",
        "2018-01-25",
        "--timeframe",
        "15m",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("final_equity") && out.contains("trades:"),
        "{out}"
    );
}

#[test]
fn bad_research_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad_strategy = dir.path().join("bad.vx");
    std::fs::write(&bad_strategy, "param fast: int = 10 in 2..200\nseries f = rsj(close, fast)\nentry long when f > 50\nexit long when f < 50\n").unwrap();
    let (code, _, err) = vortex(&[
        "run-strategy",
        "--strategy-file",
        bad_strategy.to_str().unwrap(),
        "--csv",
        &data("ETH-BTC-5m.csv"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rsj") && err.contains('^'), "{err}");

    let bad_csv = dir.path().join("bad.csv");
    std::fs::write(&bad_csv, "timestamp,open,high,low,close,volume\n2018-01-10T04:55:00Z,1,2,0.5,1.5,10\n2018-01-10T05:00:00Z,1,0.5,0.4,1.0,10\n").unwrap();
    let (code, _, err) = vortex(&[
        "run-strategy",
        "--strategy",
        "macd",
        "--csv",
        bad_csv.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("line 3"), "{err}");

    let (code, _, err) = vortex(&[
        "run-strategy",
        "--strategy",
        "nope",
        "--csv",
        &data("ETH-BTC-5m.csv"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown template") && err.contains("sma_cross"),
        "{err}"
    );
    let (code, _, err) = vortex(&[
        "run-strategy",
        "--strategy",
        "macd",
        "--csv",
        "/nonexistent.csv",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot open"), "{err}");
    let (code, _, err) = vortex(&[
        "run-strategy",
        "--strategy",
        "macd",
        "--csv",
        &data("ETH-BTC-5m.csv"),
        "--fill",
        "sometimes",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--fill"), "{err}");
}

#[test]
fn indicator_prints_series_as_csv_aligned_with_the_candles() {
    let (code, out, err) = vortex(&[
        "indicator",
        "--csv",
        &data("XRP-ETH-5m.csv"),
        "rsi(close, 14)",
        "macd(close, 12, 26, 9)",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header,
        r#"timestamp,"rsi(close, 14)","macd(close, 12, 26, 9).macd","macd(close, 12, 26, 9).signal","macd(close, 12, 26, 9).hist""#
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 706);
    assert!(
        rows[0].starts_with("2019-10-11T00:00:00Z,,"),
        "warm-up is empty: {}",
        rows[0]
    );
    let last: Vec<&str> = rows[705].split(',').collect();
    let rsi: f64 = last[1].parse().unwrap();
    assert!((0.0..=100.0).contains(&rsi));
    let (code, _, err) = vortex(&[
        "indicator",
        "--csv",
        &data("XRP-ETH-5m.csv"),
        "rsj(close, 14)",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("rsj") && err.contains("rsi"), "{err}");
}

/// `run-strategy --assets` reads the same candles from the database and gives the same result as the CSV.
#[tokio::test]
async fn run_strategy_on_stored_candles_matches_the_csv_run_and_explains_missing_assets() {
    let db = crate::helpers::TestDb::new().await;
    let run = |args: Vec<String>| {
        let out = Command::new(vortex_bin())
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("APP_ENV", "test")
            .env("DATABASE_URL", &db.url)
            .env("LOG_LEVEL", "warn")
            .output()
            .expect("run vortex");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let csv = data("ETH-BTC-5m.csv");
    let (code, _, err) = run(vec![
        "run-etl".into(),
        "--source".into(),
        format!("csv:{csv}"),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, from_db, err) = run([
        "run-strategy",
        "--strategy",
        "MACD",
        "--assets",
        "ETH",
        "--format",
        "json",
    ]
    .map(String::from)
    .to_vec());
    assert_eq!(code, 0, "{err}");
    let (code, from_csv, err) = vortex(&[
        "run-strategy",
        "--strategy",
        "macd",
        "--csv",
        &csv,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let a: serde_json::Value = serde_json::from_str(&from_db).unwrap();
    let b: serde_json::Value = serde_json::from_str(&from_csv).unwrap();
    assert_eq!(a["input"], "ETH/BTC 5m · demo", "{}", a["input"]);
    assert_eq!(a["metrics"]["final_equity"], b["metrics"]["final_equity"]);
    assert_eq!(a["trades"], b["trades"]);
    assert_eq!(
        a["provenance"]["candles_hash"],
        b["provenance"]["candles_hash"]
    );
    // An asset that is not stored, and a timeframe nothing resamples to: exit 2 with what to do.
    let (code, _, err) = run(["run-strategy", "--strategy", "macd", "--assets", "BTC"]
        .map(String::from)
        .to_vec());
    assert_eq!(code, 2);
    assert!(
        err.contains("no BTC candles are stored") && err.contains("run-etl"),
        "{err}"
    );
    let (code, _, err) = run([
        "run-strategy",
        "--strategy",
        "macd",
        "--assets",
        "ETH",
        "--timeframe",
        "1m",
    ]
    .map(String::from)
    .to_vec());
    assert_eq!(code, 2);
    assert!(
        err.contains("resamples to 1m") && err.contains("5m"),
        "{err}"
    );
}
