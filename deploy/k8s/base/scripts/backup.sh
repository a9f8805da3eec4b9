#!/usr/bin/env bash
# Backs up the Vortex database: pg_dump in custom format (compressed, restorable table by table with
# pg_restore), timestamped, verified, checksummed, with retention.
#
#   scripts/backup.sh                      prints the new dump's path on stdout; progress on stderr
#
# Environment:
#   DATABASE_URL / DATABASE_URL_FILE   the database to dump (postgres://user:pass@host:port/db?sslmode=...);
#                                      if both are unset, the usual PGHOST/PGUSER/PGDATABASE/... are used
#   BACKUP_DIR             where dumps go                              (default: ./backups)
#   BACKUP_PREFIX          file name prefix                            (default: the database name)
#   BACKUP_RETENTION_DAYS  delete this script's dumps older than this  (default: 14; 0 = keep everything)
#   BACKUP_KEEP_MIN        but always keep at least this many newest   (default: 3)
#   BACKUP_METRICS_FILE    if set, write Prometheus metrics there after a success (node_exporter's textfile
#                          collector: vortex_backup_last_success_timestamp_seconds, ..._size_bytes, ..._duration_seconds)
#
# Files: $BACKUP_DIR/$PREFIX-YYYYmmddTHHMMSSZ.dump and .dump.sha256. A dump is written under a .partial name,
# checked with `pg_restore --list`, and only then renamed, so a file with the final name is always complete.
# The password never appears on a command line (it is handed to libpq through PGPASSWORD).
# Redis is not backed up: it holds nothing that Postgres cannot rebuild (see DEPLOYMENT.md).
# pg_dump must be the server's major version or newer (docker-compose.prod.yml's `backup` service is).
set -euo pipefail

log() { printf '[backup %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=scripts/pg-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg-env.sh"

if [ -n "${DATABASE_URL_FILE:-}" ]; then
  [ -z "${DATABASE_URL:-}" ] || die "set DATABASE_URL or DATABASE_URL_FILE, not both"
  DATABASE_URL="$(cat "$DATABASE_URL_FILE")"
fi
[ -z "${DATABASE_URL:-}" ] || pg_env_from_url "$DATABASE_URL"
unset DATABASE_URL
[ -n "${PGDATABASE:-}" ] || die "no database: set DATABASE_URL (or DATABASE_URL_FILE, or PGDATABASE)"

BACKUP_DIR="${BACKUP_DIR:-./backups}"
PREFIX="${BACKUP_PREFIX:-$PGDATABASE}"
RETENTION_DAYS="${BACKUP_RETENTION_DAYS:-14}"
KEEP_MIN="${BACKUP_KEEP_MIN:-3}"
[[ "$RETENTION_DAYS" =~ ^[0-9]+$ ]] || die "BACKUP_RETENTION_DAYS must be a whole number of days"
[[ "$KEEP_MIN" =~ ^[0-9]+$ ]] || die "BACKUP_KEEP_MIN must be a whole number"
[[ "$PREFIX" =~ ^[A-Za-z0-9._-]+$ ]] || die "BACKUP_PREFIX may only contain letters, digits, . _ -"

umask 077
mkdir -p "$BACKUP_DIR"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
FINAL="$BACKUP_DIR/$PREFIX-$STAMP.dump"
PARTIAL="$FINAL.partial"
[ ! -e "$FINAL" ] || die "$FINAL already exists (two backups in the same second?)"
trap 'rm -f "$PARTIAL"' EXIT

START=$(date +%s)
log "dumping database $PGDATABASE on ${PGHOST:-local socket}:${PGPORT:-5432} to $FINAL"
# Custom format, compressed; one consistent snapshot (pg_dump runs in a REPEATABLE READ transaction).
# Owners and grants are kept in the dump; restore.sh decides whether to apply them.
pg_dump --format=custom --compress=6 --no-password --file="$PARTIAL"
# A dump pg_restore cannot read is not a backup.
pg_restore --list "$PARTIAL" >/dev/null || die "pg_restore cannot read the new dump"
mv "$PARTIAL" "$FINAL"
trap - EXIT
(cd "$BACKUP_DIR" && sha256sum "$(basename "$FINAL")" >"$(basename "$FINAL").sha256")
SIZE=$(du -h "$FINAL" | cut -f1)
log "done in $(( $(date +%s) - START )) s: $FINAL ($SIZE)"

# Retention: only this script's files for this prefix; the newest KEEP_MIN always survive.
find "$BACKUP_DIR" -maxdepth 1 -name "$PREFIX-*.dump.partial" -mmin +60 -delete
if [ "$RETENTION_DAYS" -gt 0 ]; then
  mapfile -t dumps < <(find "$BACKUP_DIR" -maxdepth 1 -type f -name "$PREFIX-*.dump" -printf '%T@ %p\n' \
    | sort -rn | cut -d' ' -f2-)
  cutoff=$(( $(date +%s) - RETENTION_DAYS * 86400 ))
  for i in "${!dumps[@]}"; do
    f="${dumps[$i]}"
    [ "$i" -lt "$KEEP_MIN" ] && continue
    [ "$f" = "$FINAL" ] && continue
    if [ "$(stat -c %Y "$f")" -lt "$cutoff" ]; then
      log "retention: deleting $f (older than $RETENTION_DAYS days)"
      rm -f "$f" "$f.sha256"
    fi
  done
fi

if [ -n "${BACKUP_METRICS_FILE:-}" ]; then
  {
    echo "# HELP vortex_backup_last_success_timestamp_seconds When the last database backup succeeded."
    echo "# TYPE vortex_backup_last_success_timestamp_seconds gauge"
    echo "vortex_backup_last_success_timestamp_seconds $(date +%s)"
    echo "# HELP vortex_backup_size_bytes Size of the last database backup."
    echo "# TYPE vortex_backup_size_bytes gauge"
    echo "vortex_backup_size_bytes $(stat -c %s "$FINAL")"
    echo "# HELP vortex_backup_duration_seconds How long the last database backup took."
    echo "# TYPE vortex_backup_duration_seconds gauge"
    echo "vortex_backup_duration_seconds $(( $(date +%s) - START ))"
  } >"$BACKUP_METRICS_FILE.tmp"
  chmod 644 "$BACKUP_METRICS_FILE.tmp"
  mv "$BACKUP_METRICS_FILE.tmp" "$BACKUP_METRICS_FILE"
fi

printf '%s\n' "$FINAL"
