#!/usr/bin/env bash
# Paper-trading fan-out (issue 14): from a candle stored to every active run's decision committed, for 1,000
# and 10,000 active runs on one instrument, one step (one transaction), release build, real Postgres and
# Redis; and the process's memory. Two cases: runs sharing their inputs (one strategy, settings and start:
# computed once) and runs whose inputs all differ (each its own cash: every replay computed).
# The measurement is the ignored test `paper::bench::paper_fanout_figures` (server/tests/api/paper/bench.rs).
#   bench/paper.sh [RUN_COUNTS]   (default 1000,10000)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_services
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$HOME/.cache/vortex/target-release}"
export PAPER_BENCH_RUNS="${1:-1000,10000}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
nice -n 5 cargo nextest run --release -p server --run-ignored only --no-capture \
  -E 'test(paper_fanout_figures)' 2>&1 | grep -E '^paper fan-out|PASS|FAIL|panicked'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
