#!/usr/bin/env bash
# Engine throughput and memory: runs the sma_cross, macd and rsi templates on 100k, 1M and 10M
# deterministic candles (built from data/market/*.csv with price re-basing, see
# engine/benches/synth.rs), one process per run, and reports wall time, candles/s and peak RSS
# (/usr/bin/time -v). Single-threaded. Criterion micro-benches: `cargo bench -p engine`.
#
# Usage: bench/engine.sh [sizes...]   (default: 100000 1000000 10000000)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/engine-target}"
nice -n 10 cargo build --release -p engine --example bench_run --example versus_loop >&2
bin="$CARGO_TARGET_DIR/release/examples/bench_run"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000 10000000)
printf '%-10s %10s %10s %12s %14s %10s %8s\n' template candles run_s candles/s compile_us rss_mb trades
for n in "${sizes[@]}"; do
  for t in sma_cross macd rsi; do
    out=$( { /usr/bin/time -v "$bin" "$n" "$t" 2>/tmp/bench_time.$$; } )
    rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' /tmp/bench_time.$$)
    python3 - "$out" "$rss_kb" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); rss = int(sys.argv[2]) / 1024
print(f"{r['template']:<10} {r['candles']:>10} {r['run_s']:>10.4f} {r['candles_per_s']:>12.0f} {r['compile_us']:>14.1f} {rss:>10.1f} {r['trades']:>8}")
PY
  done
done
rm -f /tmp/bench_time.$$
# The engine against a plain single-pass loop over the same arrays (same trades and per-bar equity, bit for
# bit): sma_cross on 1 M candles, 15 interleaved rounds in one process (engine/examples/versus_loop.rs).
echo
echo "engine vs plain loop (sma_cross, 1,000,000 candles, medians of 15 rounds):"
out=$("$CARGO_TARGET_DIR/release/examples/versus_loop" 1000000 15)
python3 - "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"  engine     {r['engine_median_s']*1e3:7.2f} ms  {r['engine_candles_per_s']/1e6:6.1f} M candles/s  ({r['trades']} trades)")
print(f"  loop       {r['loop_median_s']*1e3:7.2f} ms  {r['loop_candles_per_s']/1e6:6.1f} M candles/s  ratio engine/loop {r['ratio']:.2f}")
print(f"  bare loop  {r['bare_loop_median_s']*1e3:7.2f} ms  {r['bare_loop_candles_per_s']/1e6:6.1f} M candles/s  ratio engine/bare {r['ratio_to_bare']:.2f}")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
