//! Issue 11, item 18: every metric the alert rules use is emitted, and the ETL reports its lag.

use std::time::Duration;

use crate::helpers::{Options, spawn_app_with};

// ----------------------------------------------------------------------------------------------------------
// 18. Metrics the alert rules use
// ----------------------------------------------------------------------------------------------------------

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(rel),
    )
    .unwrap()
}

/// Metric names used in the `expr:` of the alert rules (histogram series mapped to their base name).
fn alert_metrics() -> Vec<String> {
    let rules = repo_file("monitoring/alerts.yml");
    let mut exprs = String::new();
    let mut in_expr = false;
    for line in rules.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("expr:") {
            exprs.push_str(rest);
            exprs.push('\n');
            in_expr = rest.trim() == "|";
        } else if in_expr && !t.contains(':') {
            exprs.push_str(t);
            exprs.push('\n');
        } else {
            in_expr = false;
        }
    }
    // Drop strings, label matchers (`{…}`), `by (…)` groupings and ranges (`[…]`).
    let mut cleaned = String::new();
    let (mut braces, mut brackets, mut in_str) = (0, 0, false);
    for c in exprs.chars() {
        match c {
            '"' => in_str = !in_str,
            _ if in_str => {}
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => brackets += 1,
            ']' => brackets -= 1,
            _ if braces > 0 || brackets > 0 => {}
            _ => cleaned.push(c),
        }
    }
    while let Some(at) = cleaned.find("by (") {
        let close = at + cleaned[at..].find(')').unwrap();
        cleaned.replace_range(at..=close, " ");
    }
    // Identifiers with an underscore that are not function calls are metric names.
    let mut names: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = cleaned.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '_')
            {
                continue;
            }
            let rest: String = chars.clone().collect();
            let is_call = rest.trim_start().starts_with('(');
            let w = std::mem::take(&mut word);
            if w.contains('_') && !is_call && !w.starts_with(|c: char| c.is_ascii_digit()) {
                let base = w.strip_suffix("_bucket").unwrap_or(&w).to_owned();
                if !names.contains(&base) {
                    names.push(base);
                }
            }
        }
    }
    names
}

#[tokio::test]
async fn every_metric_the_alert_rules_use_is_emitted_and_the_etl_reports_its_lag() {
    use server::mock_exchange::MockExchange;
    let names = alert_metrics();
    assert!(
        names.contains(&"market_data_lag_seconds".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"jobs_pending".to_owned()), "{names:?}");

    let mock = MockExchange::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market"),
    )
    .unwrap();
    let addr = mock.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![
            ("MARKET_DATA_URL", format!("http://{addr}")),
            ("MARKET_CHUNK_CANDLES", "2000".into()),
            ("MARKET_PAGE_LIMIT", "500".into()),
            ("MARKET_UPDATE_INTERVAL_SECS", "0".into()),
            ("MARKET_MAX_RETRIES", "0".into()),
            ("JOB_RETRY_MARKET", "base_secs=0.2,max_secs=1".into()),
            // Billing on (nothing here calls the provider): the workers export the reconciliation's gauges
            // at start.
            ("PAYMENT_PROVIDER", "stripe".into()),
            ("STRIPE_API_KEY", "sk_test_metrics".into()),
            ("STRIPE_WEBHOOK_SECRET", "whsec_metrics".into()),
            ("STRIPE_API_BASE", "http://127.0.0.1:9".into()),
        ],
    })
    .await;
    // An ETL run through the market queue (a chunk job on a worker), whose first attempt meets a 500.
    let client = backend::market::binance::BinanceClient::new(&app.ctx.settings.market).unwrap();
    let now = client.server_time().await.unwrap();
    let req = backend::market::etl::RunRequest {
        pair: backend::market::Pair::parse("ETH/BTC").unwrap(),
        timeframe: engine::candles::Timeframe::M5,
        mode: backend::market::etl::Mode::Backfill,
        from: Some(server::cli::parse_time("--from", "2018-01-11", false).unwrap()),
        to: Some(server::cli::parse_time("--to", "2018-01-11", true).unwrap()),
    };
    let run = backend::market::etl::plan_run(&app.ctx, &req, now)
        .await
        .unwrap();
    mock.set_faults(server::mock_exchange::Faults {
        server_errors: 1,
        ..Default::default()
    });
    for id in backend::market::etl::enqueue_run(&app.ctx, &run, true)
        .await
        .unwrap()
    {
        let row = app
            .wait_for_job(id, &["done"], Duration::from_secs(30))
            .await;
        assert_eq!(row.attempts, 2, "one 500, one success after the back-off");
    }
    // A few requests, so the HTTP metrics exist.
    for path in ["/health", "/status", "/nope"] {
        app.get(path).await;
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    let lag_line = text
        .lines()
        .find(|l| l.starts_with(r#"market_data_lag_seconds{instrument="ETHBTC",timeframe="5m"}"#))
        .unwrap_or_else(|| panic!("no lag metric after an ETL run:\n{text}"));
    let lag: f64 = lag_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        lag > 86_400.0,
        "candles from 2018 are years behind the mock's clock: {lag_line}"
    );

    // Metrics from outside the app (node_exporter, the backup script's textfile, Prometheus itself).
    let backup_script = repo_file("scripts/backup.sh");
    for name in &names {
        let external = name.starts_with("node_")
            || (name.starts_with("vortex_backup_") && backup_script.contains(name.as_str()));
        if external {
            continue;
        }
        assert!(
            text.lines().any(|l| l.starts_with(name.as_str())),
            "alert metric `{name}` is never emitted:\n{text}"
        );
    }

    // Prometheus scrapes the workers too, on the port the compose file gives them.
    let prom = repo_file("monitoring/prometheus.yml");
    assert!(prom.contains("job_name: vortex-worker"), "{prom}");
    let compose = repo_file("docker-compose.prod.yml");
    assert!(compose.contains("METRICS_ADDR: 0.0.0.0:9100"));
    let worker_job = &prom[prom.find("job_name: vortex-worker").unwrap()..];
    assert!(
        worker_job.contains("names: [worker, worker-backtest]")
            && worker_job.contains("port: 9100"),
        "{prom}"
    );
}
