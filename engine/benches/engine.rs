//! Criterion benches: indicators, strategy compilation and full backtests of the templates on
//! deterministic candles built from the real data (see `synth.rs`).

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use engine::backtest::{BacktestConfig, run};
use engine::catalogue::template;
use engine::indicators::batch;
use engine::strategy::compile;

#[path = "synth.rs"]
mod synth;

fn benches(c: &mut Criterion) {
    let sources = synth::sources();
    let candles = synth::build(&sources, 1_000_000);

    let mut g = c.benchmark_group("compile");
    for name in ["sma_cross", "macd", "adx_trend"] {
        let src = template(name).unwrap().source;
        g.bench_function(name, |b| b.iter(|| compile(black_box(src), &[]).unwrap()));
    }
    g.finish();

    let mut g = c.benchmark_group("indicators_1m");
    g.throughput(Throughput::Elements(candles.len() as u64));
    g.sample_size(10);
    g.bench_function("sma_30", |b| {
        b.iter(|| batch::sma(black_box(&candles.close), 30).unwrap())
    });
    g.bench_function("ema_30", |b| {
        b.iter(|| batch::ema(black_box(&candles.close), 30).unwrap())
    });
    g.bench_function("rsi_14", |b| {
        b.iter(|| batch::rsi(black_box(&candles.close), 14).unwrap())
    });
    g.bench_function("macd_12_26_9", |b| {
        b.iter(|| batch::macd(black_box(&candles.close), 12, 26, 9).unwrap())
    });
    g.bench_function("adx_14", |b| {
        b.iter(|| batch::adx(black_box(&candles), 14).unwrap())
    });
    g.bench_function("bollinger_20_2", |b| {
        b.iter(|| batch::bollinger(black_box(&candles.close), 20, 2.0).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("backtest");
    g.sample_size(10);
    let cfg = BacktestConfig::default();
    for n in [100_000usize, 1_000_000] {
        let cs = candles.slice(0..n);
        g.throughput(Throughput::Elements(n as u64));
        for name in ["sma_cross", "macd", "rsi"] {
            let s = compile(template(name).unwrap().source, &[]).unwrap();
            g.bench_with_input(BenchmarkId::new(name, n), &cs, |b, cs| {
                b.iter(|| run(black_box(cs), &s, &cfg).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
