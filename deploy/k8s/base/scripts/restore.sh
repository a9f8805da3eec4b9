#!/usr/bin/env bash
# Restores a dump made by scripts/backup.sh into a database, in one transaction (all or nothing).
#
#   RESTORE_DATABASE_URL=postgres://user:pass@host:5432/vortex_restore scripts/restore.sh [--create] [--clean] DUMP
#
#   --create   create the target database first if it does not exist (needs CREATEDB; connects to the
#              server's `postgres` database to do it)
#   --clean    the target may already hold Vortex tables: drop them first. Without it, a target that has any
#              table in schema public is refused, so a restore never lands on top of live data by mistake.
#
# Environment:
#   RESTORE_DATABASE_URL / RESTORE_DATABASE_URL_FILE   the target (default: DATABASE_URL / DATABASE_URL_FILE)
#   RESTORE_KEEP_OWNER=1   keep the dump's owners and grants (default: objects belong to the connecting user,
#                          which is what you want when restoring to another server or role)
#
# The dump's .sha256 file, when present next to it, is checked first. After the restore the script runs
# ANALYZE (pg_restore does not restore planner statistics) and prints the row count of every table.
# Afterwards point DATABASE_URL at the target and run `vortex migrate` (a no-op when the dump is from the
# same version; it applies newer migrations otherwise), then start Vortex. Redis may start empty: unfinished
# jobs are re-enqueued from Postgres when the workers connect.
set -euo pipefail

log() { printf '[restore %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=scripts/pg-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg-env.sh"

CREATE=0 CLEAN=0 DUMP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --create) CREATE=1 ;;
    --clean) CLEAN=1 ;;
    -h|--help) sed -n '2,22p' "$0" >&2; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$DUMP" ] || die "one dump at a time"; DUMP="$1" ;;
  esac
  shift
done
[ -n "$DUMP" ] || die "usage: scripts/restore.sh [--create] [--clean] DUMP"
[ -r "$DUMP" ] || die "cannot read $DUMP"

URL="${RESTORE_DATABASE_URL:-}"
if [ -n "${RESTORE_DATABASE_URL_FILE:-}" ]; then URL="$(cat "$RESTORE_DATABASE_URL_FILE")"; fi
if [ -z "$URL" ]; then
  URL="${DATABASE_URL:-}"
  if [ -n "${DATABASE_URL_FILE:-}" ]; then URL="$(cat "$DATABASE_URL_FILE")"; fi
fi
[ -z "$URL" ] || pg_env_from_url "$URL"
unset URL RESTORE_DATABASE_URL DATABASE_URL
[ -n "${PGDATABASE:-}" ] || die "no target: set RESTORE_DATABASE_URL (or DATABASE_URL)"
TARGET="$PGDATABASE"

if [ -f "$DUMP.sha256" ]; then
  (cd "$(dirname "$DUMP")" && sha256sum --check --quiet "$(basename "$DUMP").sha256") \
    || die "$DUMP does not match its .sha256: corrupted or truncated"
  log "checksum OK"
fi
pg_restore --list "$DUMP" >/dev/null || die "$DUMP is not a pg_dump custom-format archive"

psql_on() { psql -X -q -v ON_ERROR_STOP=1 --no-password -d "$1" "${@:2}"; }

exists=$(psql_on postgres -tA -v db="$TARGET" <<<"select 1 from pg_database where datname = :'db'" || true)
if [ "$exists" != 1 ]; then
  [ "$CREATE" = 1 ] || die "database $TARGET does not exist (use --create)"
  log "creating database $TARGET"
  psql_on postgres -v db="$TARGET" <<<'create database :"db"'
fi

tables=$(psql_on "$TARGET" -tAc "select count(*) from pg_tables where schemaname = 'public'")
if [ "$tables" != 0 ] && [ "$CLEAN" != 1 ]; then
  die "database $TARGET already has $tables table(s); refusing to restore over them (use --clean)"
fi

args=(--dbname="$TARGET" --no-password --exit-on-error --single-transaction)
[ "$CLEAN" = 1 ] && args+=(--clean --if-exists)
[ "${RESTORE_KEEP_OWNER:-0}" = 1 ] || args+=(--no-owner --no-privileges)

START=$(date +%s)
log "restoring $DUMP into $TARGET on ${PGHOST:-local socket}:${PGPORT:-5432}"
pg_restore "${args[@]}" "$DUMP"
psql_on "$TARGET" -c "analyze"
log "restored in $(( $(date +%s) - START )) s; rows per table:"
psql_on "$TARGET" -tA -F' ' -c "
  select format('%s %s', c.relname,
         (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from public.%I', c.relname), false, true, '')))[1]::text)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind in ('r', 'p') order by c.relname" >&2
log "next: DATABASE_URL=<target> vortex migrate && vortex check-config --verify-connections, then start Vortex"
