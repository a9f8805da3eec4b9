#!/usr/bin/env bash
# Offline query data (.sqlx/) for the compile-checked SQL (`query!`, `query_as!`, `query_scalar!`), see docs/sql.md.
#   scripts/sqlx-prepare.sh           rewrite .sqlx/ (after adding or changing a query or a migration); commit it
#   scripts/sqlx-prepare.sh --check   fail if .sqlx/ is incomplete or stale (scripts/test.sh runs this)
# Both migrate a fresh database from migrations/ on the local Postgres and drop it afterwards. Installs the
# sqlx-cli of the Cargo.lock's sqlx version into $VORTEX_TOOLS if it is missing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_services
case "${1:-}" in
  "")      log "regenerating .sqlx/ from a freshly migrated database"; sqlx_prepare write ;;
  --check) log "checking .sqlx/ against a freshly migrated database"; sqlx_prepare ;;
  *) die "usage: scripts/sqlx-prepare.sh [--check]" ;;
esac
