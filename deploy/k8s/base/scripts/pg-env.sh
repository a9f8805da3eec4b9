# Shared by backup.sh and restore.sh: turns a postgres:// URL into libpq environment variables, so the
# password never appears on a command line. Source it after defining log() and die().

# Exports PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (+ PGSSLMODE...) from a postgres:// URL.
pg_env_from_url() {
  local url="$1" re='^postgres(ql)?://(([^:@/]*)(:([^@]*))?@)?([^/:?]*)(:([0-9]+))?(/([^?]*))?(\?(.*))?$'
  [[ "$url" =~ $re ]] || die "not a postgres:// URL"
  local user="${BASH_REMATCH[3]}" pass="${BASH_REMATCH[5]}" host="${BASH_REMATCH[6]}"
  local port="${BASH_REMATCH[8]}" db="${BASH_REMATCH[10]}" query="${BASH_REMATCH[12]}"
  # setenv NAME percent-encoded-value: exports the decoded value when it is not empty.
  setenv() {
    [ -n "$2" ] || return 0
    local s="${2//+/ }"
    printf -v "$1" '%b' "${s//%/\\x}"
    export "${1?}"
  }
  setenv PGUSER "$user"
  setenv PGPASSWORD "$pass"
  setenv PGHOST "$host"
  setenv PGPORT "$port"
  setenv PGDATABASE "$db"
  local kv
  IFS='&' read -ra kvs <<<"$query"
  for kv in "${kvs[@]}"; do
    case "${kv%%=*}" in
      sslmode) setenv PGSSLMODE "${kv#*=}" ;;
      sslrootcert) setenv PGSSLROOTCERT "${kv#*=}" ;;
      application_name) setenv PGAPPNAME "${kv#*=}" ;;
      connect_timeout) setenv PGCONNECT_TIMEOUT "${kv#*=}" ;;
      '') ;;
      *) log "ignoring URL parameter ${kv%%=*}" ;;
    esac
  done
  return 0
}
