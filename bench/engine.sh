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
nice -n 10 cargo build --release -p engine --example bench_run >&2
bin="$CARGO_TARGET_DIR/release/examples/bench_run"
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
