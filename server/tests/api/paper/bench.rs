//! The fan-out benchmark (bench/paper.sh runs it in release mode; `#[ignore]`d in the test suite): from a
//! candle stored to every active run's decision committed, for 1,000 and 10,000 runs on one instrument, one
//! step in one transaction, and the process's memory. Runs are cloned in SQL from one started through the
//! action. Two cases: runs that share their inputs (one strategy started once for many traders: computed
//! once) and runs that all differ (each its own cash, so every replay is computed).

use std::time::Instant;

use super::{
    SMA, advance, app_without_workers, new_run, series, shifted, start, store_candles, strategy,
    trader,
};

fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
#[ignore = "measurement: run by bench/paper.sh in release mode"]
async fn paper_fanout_figures() {
    let counts: Vec<usize> = std::env::var("PAPER_BENCH_RUNS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    for distinct in [false, true] {
        for &n in &counts {
            let app = app_without_workers().await;
            let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
            let inst = series(&app, &history).await;
            let ann = trader(&app, "ann@example.org").await;
            let sid = strategy(&app, &ann, SMA).await;
            let first = start(&app, &ann, &new_run(sid, inst)).await;
            sqlx::query(
                r#"insert into paper_run (paper_run_id, user_id, strategy_id, strategy_version_id, batch_id,
                       instrument_id, timeframe, params, config, warmup_from, live_from, cash, equity)
                   select gen_random_uuid(), user_id, strategy_id, strategy_version_id, batch_id, instrument_id,
                       timeframe, params,
                       case when $3 then jsonb_set(config, '{initial_cash}', to_jsonb(10000 + g)) else config end,
                       warmup_from, live_from, cash, equity
                   from paper_run, generate_series(1, $2) g where paper_run_id = $1"#,
            )
            .bind(first)
            .bind(n as i32 - 1)
            .bind(distinct)
            .execute(&app.ctx.db)
            .await
            .unwrap();
            // Warm: the first candles (compiles, caches, first rows).
            store_candles(&app, inst, &live.slice(0..3)).await;
            while advance(&app, inst).await.candles > 0 {}
            let (rss0, _) = rss_kib();
            let mut times = Vec::new();
            for k in 3..8 {
                store_candles(&app, inst, &live.slice(k..k + 1)).await;
                let t = Instant::now();
                let out = advance(&app, inst).await;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(out.runs, n);
                assert_eq!(out.candles, n);
            }
            let (rss1, hwm) = rss_kib();
            times.sort_by(f64::total_cmp);
            println!(
                "paper fan-out: {n} runs ({}): candle stored → all decisions committed: median {:.0} ms \
                 (min {:.0}, max {:.0}); process RSS {} MiB → {} MiB (peak {} MiB)",
                if distinct {
                    "all inputs distinct"
                } else {
                    "shared inputs"
                },
                times[times.len() / 2],
                times[0],
                times[times.len() - 1],
                rss0 / 1024,
                rss1 / 1024,
                hwm / 1024
            );
        }
    }
}
