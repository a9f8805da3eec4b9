//! CSV import: all or nothing by default, bad lines reported when skipping, the CLI importing a
//! folder, and the copy path of a large import.

use backend::market::{
    Timeframe,
    csv_import::{self, ImportError},
};

use super::{app_with_mock, count, csv, data_dir, import_opts, stored};

#[tokio::test]
async fn csv_import_is_all_or_nothing_by_default_and_reports_bad_lines_when_skipping() {
    let (app, _mock) = app_with_mock(false, vec![]).await;
    let db = &app.ctx.db;
    let good = data_dir().join("XRP-ETH-5m.csv");
    let r = csv_import::import_file(db, &good, &import_opts("XRP/ETH", false))
        .await
        .unwrap();
    assert_eq!((r.rows, r.written, r.timeframe), (706, 706, Timeframe::M5));
    let again = csv_import::import_file(db, &good, &import_opts("XRP/ETH", false))
        .await
        .unwrap();
    assert_eq!(again.written, 0, "re-importing wrote rows again");
    assert_eq!(count(&app).await, 706);

    let bad = "timestamp,open,high,low,close,volume\n\
               2018-01-10T04:55:00Z,1,2,0.5,1.5,5\n\
               2018-01-10T05:00:00Z,1,2,0.5,1.5,5\n\
               2018-01-10T05:05:00Z,1,0.9,0.5,1.5,5\n\
               2018-01-10T05:10:00Z,1,2,0.5,1.5,5\n";
    let e = csv_import::import_text(db, bad, "bad.csv", &import_opts("AAA/BBB", false))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ImportError::Csv { .. }));
    assert!(
        msg.contains("bad.csv: line 4") && msg.contains("high 0.9 is below"),
        "{msg}"
    );
    assert_eq!(
        count(&app).await,
        706,
        "something from the bad file was stored"
    );

    let r = csv_import::import_text(db, bad, "bad.csv", &import_opts("AAA/BBB", true))
        .await
        .unwrap();
    assert_eq!((r.rows, r.written), (3, 3));
    assert_eq!(
        r.rejected
            .iter()
            .filter_map(|e| e.line())
            .collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(r.gaps.len(), 1);
}

#[tokio::test]
async fn the_cli_imports_a_folder_rejects_bad_files_and_explains_bad_arguments() {
    let (app, mock) = app_with_mock(false, vec![]).await;
    let db_url: String = {
        let opts = app.ctx.db.connect_options();
        format!(
            "postgres://postgres@127.0.0.1:5432/{}",
            opts.get_database().unwrap()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        data_dir().join("XRP-ETH-5m.csv"),
        dir.path().join("XRP-ETH-5m.csv"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("BAD-BTC-5m.csv"),
        "timestamp,open,high,low,close,volume\n2018-01-10T04:55:00Z,1,2,0.5,1.5,5\n2018-01-10T05:00:00Z,1,2,0.5,oops,5\n",
    )
    .unwrap();
    // tokio's Command: the mock exchange runs on this test's runtime and must keep answering meanwhile.
    let vortex = async |args: &[&str]| {
        tokio::process::Command::new(crate::helpers::vortex_bin())
            .args(args)
            .env("APP_ENV", "test")
            .env("DATABASE_URL", &db_url)
            .env("LOG_LEVEL", "warn")
            .env("MARKET_DATA_URL", app.ctx.settings.market.data_url.as_str())
            .env("MARKET_HTTP_TIMEOUT_SECS", "5")
            .output()
            .await
            .unwrap()
    };
    let source = format!("csv:{}", dir.path().display());
    let out = vortex(&["run-etl", "--source", &source]).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("demo XRP/ETH 5m: 706 rows read, 706 written"),
        "{stdout}"
    );
    assert!(
        stderr.contains("line 3: close: `oops` is not a number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing from this file was stored"),
        "{stderr}"
    );

    // The exchange source through the binary, with a plain log when not on a terminal.
    let out = vortex(&[
        "run-etl",
        "--assets",
        "XRP",
        "--quote",
        "ETH",
        "--timeframe",
        "15m",
        "--mode",
        "backfill",
        "--from",
        "2019-10-11",
        "--to",
        "2019-10-12",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `--to 2019-10-12` includes the 12th, as it does in run-strategy, the form and the API: two days.
    assert!(
        stdout.contains("XRP/ETH 15m: 192 candles fetched, 192 written"),
        "{stdout}"
    );
    assert!(mock.requests("klines") >= 1);

    for (args, needle) in [
        (
            vec!["run-etl", "--assets", "BTC", "--mode", "weekly"],
            "invalid value 'weekly' for '--mode",
        ),
        (
            vec!["run-etl", "--timeframe", "2h"],
            "unknown timeframe `2h`",
        ),
        (
            vec!["run-etl"],
            "--assets is required for the exchange source",
        ),
        (
            vec![
                "run-etl",
                "--assets",
                "BTC",
                "--from",
                "2024-02-01",
                "--to",
                "2024-01-01",
            ],
            "is not before --to",
        ),
        (
            vec!["run-etl", "--source", "csv:/no/such/file.csv"],
            "does not exist",
        ),
    ] {
        let out = vortex(&args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_large_import_takes_the_copy_path_and_stays_idempotent() {
    let (app, _mock) = app_with_mock(false, vec![]).await;
    // 11 copies of ETH-BTC-5m laid end to end: 63 360 candles, above the COPY threshold.
    let one = csv("ETH-BTC-5m.csv");
    let span = one.time[one.len() - 1] - one.time[0] + Timeframe::M5.millis();
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    for k in 0..11 {
        for i in 0..one.len() {
            let b = one.bar(i);
            text.push_str(&format!(
                "{},{},{},{},{},{}\n",
                one.time[i] + k * span,
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume
            ));
        }
    }
    let opts = import_opts("BIG/BTC", false);
    let r = csv_import::import_text(&app.ctx.db, &text, "big.csv", &opts)
        .await
        .unwrap();
    assert_eq!((r.rows, r.written), (63_360, 63_360));
    let again = csv_import::import_text(&app.ctx.db, &text, "big.csv", &opts)
        .await
        .unwrap();
    assert_eq!(again.written, 0);
    let back = stored(&app, r.instrument_id, Timeframe::M5).await;
    assert_eq!(back.len(), 63_360);
    assert_eq!(
        back.between(None, Some(one.time[0] + span)),
        one,
        "values changed on the way through COPY"
    );
}
