//! Throughput/RSS probe used by `bench/engine.sh`:
//! `bench_run <candles> <template>` builds `<candles>` deterministic candles from the real data,
//! compiles the template and runs the default backtest, printing one JSON line of timings.
#![allow(clippy::disallowed_methods)] // timing is the point of this binary

use std::time::Instant;

use engine::backtest::{BacktestConfig, run};
use engine::catalogue::template;
use engine::strategy::compile;

#[path = "../benches/synth.rs"]
mod synth;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let name = args.next().unwrap_or_else(|| "sma_cross".into());
    let t0 = Instant::now();
    let candles = {
        let sources = synth::sources();
        synth::build(&sources, n)
    };
    let build_s = t0.elapsed().as_secs_f64();
    let src = template(&name).expect("template").source;
    let t1 = Instant::now();
    let mut strategy = None;
    const REPS: u32 = 1000;
    for _ in 0..REPS {
        strategy = Some(compile(src, &[]).expect("compiles"));
    }
    let compile_us = t1.elapsed().as_secs_f64() * 1e6 / f64::from(REPS);
    let strategy = strategy.expect("compiled");
    let te = Instant::now();
    let ev = strategy.evaluate(&candles);
    let eval_s = te.elapsed().as_secs_f64();
    drop(ev);
    let th = Instant::now();
    let _hash = candles.content_hash();
    let hash_s = th.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let r = run(&candles, &strategy, &BacktestConfig::default()).expect("runs");
    let run_s = t2.elapsed().as_secs_f64();
    // PROFILE_REPEAT=k re-runs the backtest k more times (for profilers).
    let repeat: usize = std::env::var("PROFILE_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for _ in 0..repeat {
        let _ = run(&candles, &strategy, &BacktestConfig::default());
    }
    println!(
        "{{\"template\":\"{name}\",\"candles\":{n},\"build_s\":{build_s:.3},\"compile_us\":{compile_us:.1},\"run_s\":{run_s:.4},\"eval_s\":{eval_s:.4},\"hash_s\":{hash_s:.4},\"candles_per_s\":{:.0},\"trades\":{},\"final_equity\":{}}}",
        n as f64 / run_s,
        r.trades.len(),
        r.metrics.final_equity.value.unwrap_or(f64::NAN)
    );
}
