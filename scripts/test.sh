#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it:
#   operations files (scripts/ops-check.sh: alert rules and routing, Kubernetes manifests, workflows,
#   Dockerfile, npm audit; seconds, no build) · formatting · the dependency policy (cargo deny, offline) ·
#   compile-checked SQL (.sqlx/ complete and current, docs/sql.md) · clippy (server build and wasm build,
#   -D warnings) · unit and integration tests against the real Postgres and Redis · the REST API against its
#   OpenAPI document (Schemathesis, all checks, bounded in time; scripts/schemathesis.sh) · the headless-browser
#   test (Playwright + Debian Chromium).
# Needs: Rust (rustup), Postgres and Redis on 127.0.0.1, Node.js + npm, chromium, python3 (venv), apt-get (the
# Debian packages promtool/amtool come from). `.ci/run` installs them; the pinned Schemathesis and the ops
# validators are installed into $VORTEX_TOOLS on first use.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

log "operations files (scripts/ops-check.sh)"
bash scripts/ops-check.sh

ensure_services
ensure_wasm_target

log "cargo fmt --check"
cargo fmt --all --check

log "dependency policy (cargo deny, deny.toml: licences, banned crates, sources; advisories run in CI)"
ensure_cargo_deny
cargo deny --offline check bans licenses sources

log "SQL: .sqlx/ is complete and current (cargo sqlx prepare --check against a freshly migrated database)"
bash scripts/sqlx-prepare.sh --check

log "clippy: server build (engine, backend, app[ssr], server; all targets)"
cargo clippy -p engine -p backend -p app -p server --all-targets --features app/ssr -- -D warnings

log "clippy: wasm build (engine, app[hydrate], frontend)"
cargo clippy -p engine -p app -p frontend --target wasm32-unknown-unknown -- -D warnings

bash scripts/build.sh debug

log "unit and integration tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run -p engine -p backend -p server --no-fail-fast
else
  cargo test -p engine -p backend -p server --no-fail-fast
fi

log "REST API contract (schemathesis)"
ensure_schemathesis
bash scripts/schemathesis.sh "$CARGO_TARGET_DIR/debug/vortex"

log "browser test"
bash end2end/run.sh
