#!/usr/bin/env bash
# Checks the operations and supply-chain files, without building anything (a few seconds once the tools are
# cached; scripts/test.sh runs it first):
#   monitoring/    promtool: rule files, rule unit tests (alerts.test.yml), both scrape configs;
#                  amtool: alertmanager.yml, and where critical and warning alerts are routed
#   deploy/k8s/    every overlay and its migration rendered with kustomize (pykustomize; compared with
#                  `kubectl kustomize` when a kubectl with kustomize v5 is installed), validated with the
#                  Kubernetes JSON schemas (strict: unknown fields fail) of the oldest and newest versions
#                  we support, and checked against deploy/k8s's rules (scripts/k8s-policy.py); the backup
#                  scripts copied into the base are the ones in scripts/
#   .github/       the workflows against GitHub's workflow schema (and every job has a timeout), Dependabot's
#   Dockerfile     hadolint; compose files against the Compose Specification schema
#   end2end/       npm audit of the runtime dependencies (high and critical advisories fail)
#   docs           LICENSE is the AGPL the workspace declares; docs/releasing.md lists every migration;
#                  every repository path docs/threat-model.md cites exists
# Tools are pinned and installed into $VORTEX_TOOLS on first use (scripts/lib.sh, ensure_ops_tools).
# Environment: VORTEX_REQUIRE_AUDIT=1 makes an unreachable npm advisory service a failure (CI on GitHub);
# otherwise it is reported and skipped (some registry mirrors do not serve the audit endpoint).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
START=$(date +%s)
ensure_ops_tools
PROM="$VORTEX_TOOLS/prometheus"
OPS="$VORTEX_TOOLS/ops/bin"
# Kubernetes versions whose schemas the manifests must satisfy (kubernetes-validate bundles 1.25–1.37).
K8S_VERSIONS=(1.30.0 1.37.0)
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { printf '\033[1;31mFAILED:\033[0m %s\n' "$*" >&2; failures=$((failures + 1)); }
# run DESCRIPTION COMMAND...: runs the command quietly, shows its output only when it fails.
run() {
  local what="$1"; shift
  if ! "$@" >"$TMP/out" 2>&1; then
    cat "$TMP/out" >&2
    fail "$what"
  fi
}

log "ops: monitoring (promtool, amtool; $(tr '\n' ' ' <"$PROM/VERSIONS"))"
run "promtool check rules" "$PROM/promtool" check rules monitoring/alerts.yml monitoring/alerts-external.yml
run "promtool test rules (monitoring/alerts.test.yml)" "$PROM/promtool" test rules monitoring/alerts.test.yml
run "promtool check config" "$PROM/promtool" check config --syntax-only \
  monitoring/prometheus.yml monitoring/prometheus-kubernetes.yml
run "amtool check-config" "$PROM/amtool" check-config monitoring/alertmanager.yml
# Routing: critical alerts page (webhook) and mail; warnings only mail.
run "alertmanager routes critical alerts to the pager and mail" "$PROM/amtool" config routes test \
  --config.file=monitoring/alertmanager.yml --verify.receivers=ops-pager,ops-email severity=critical alertname=VortexWebDown
run "alertmanager routes warnings to mail only" "$PROM/amtool" config routes test \
  --config.file=monitoring/alertmanager.yml --verify.receivers=ops-email severity=warning alertname=VortexEtlLag

log "ops: Kubernetes manifests (kustomize $("$OPS/python" -c 'import pykustomize; print(pykustomize.native_version())'), kubernetes-validate ${K8S_VERSIONS[*]})"
for f in backup.sh restore.sh pg-env.sh; do
  cmp -s "scripts/$f" "deploy/k8s/base/scripts/$f" \
    || fail "deploy/k8s/base/scripts/$f differs from scripts/$f: cp scripts/$f deploy/k8s/base/scripts/"
done
targets=()
for overlay in deploy/k8s/overlays/*/; do
  targets+=("${overlay%/}" "${overlay}migrate")
done
rendered=()
for t in "${targets[@]}"; do
  out="$TMP/$(echo "${t#deploy/k8s/overlays/}" | tr / -).yaml"
  if "$OPS/python" - "$t" "$out" >"$TMP/out" 2>&1 <<'PY'
import asyncio, sys
import pykustomize
result = asyncio.run(pykustomize.build(sys.argv[1]))
open(sys.argv[2], "w", encoding="utf-8").write(result.yaml)
PY
  then
    rendered+=("$out")
    # The same output from kubectl's kustomize, when there is one (what operators run: kubectl apply -k).
    if command -v kubectl >/dev/null && kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5'; then
      kubectl kustomize "$t" >"$TMP/kubectl.yaml" 2>"$TMP/out" || { cat "$TMP/out" >&2; fail "kubectl kustomize $t"; }
      cmp -s "$out" "$TMP/kubectl.yaml" || fail "kubectl kustomize $t renders differently from pykustomize"
    fi
  else
    cat "$TMP/out" >&2
    fail "kustomize build $t"
  fi
done
[ ${#rendered[@]} -ge 4 ] || fail "expected at least two overlays with their migrate/ (found ${#rendered[@]} renderable)"
if [ ${#rendered[@]} -gt 0 ]; then
  for v in "${K8S_VERSIONS[@]}"; do
    run "Kubernetes $v schemas (strict)" "$OPS/kubernetes-validate" --strict --quiet -k "$v" "${rendered[@]}"
  done
  run "deploy/k8s rules (scripts/k8s-policy.py)" "$OPS/python" scripts/k8s-policy.py "${rendered[@]}"
fi

log "ops: GitHub workflows, Dependabot, Compose files (check-jsonschema $("$OPS/check-jsonschema" --version | awk '{print $NF}')), Dockerfile ($("$OPS/hadolint" --version))"
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
shopt -u nullglob
if [ ${#workflows[@]} -eq 0 ]; then
  fail "no workflow in .github/workflows"
else
  run "GitHub workflow schema" "$OPS/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
  run "every workflow job has timeout-minutes" \
    "$OPS/check-jsonschema" --builtin-schema custom.github-workflows-require-timeout "${workflows[@]}"
fi
[ ! -f .github/dependabot.yml ] \
  || run "Dependabot schema" "$OPS/check-jsonschema" --builtin-schema vendor.dependabot .github/dependabot.yml
run "Compose Specification schema" "$OPS/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose*.yml
run "hadolint Dockerfile" "$OPS/hadolint" --no-color Dockerfile

log "ops: npm audit (end2end runtime dependencies, high and critical)"
if ! (cd end2end && npm audit --omit=dev --audit-level=high) >"$TMP/out" 2>&1; then
  if grep -qiE 'audit endpoint returned an error|ENOAUDIT|EAI_AGAIN|ENOTFOUND|ECONNREFUSED|ETIMEDOUT' "$TMP/out" \
     && ! grep -qE '^# npm audit report' "$TMP/out"; then
    if [ "${VORTEX_REQUIRE_AUDIT:-0}" = 1 ]; then
      cat "$TMP/out" >&2
      fail "npm audit: the registry's advisory service did not answer (VORTEX_REQUIRE_AUDIT=1)"
    else
      log "npm audit skipped: the registry's advisory service did not answer here ($(grep -m1 -iE 'audit|npm error' "$TMP/out"))"
    fi
  else
    cat "$TMP/out" >&2
    fail "npm audit --omit=dev --audit-level=high (end2end)"
  fi
fi

log "ops: licence, release notes, threat model"
head -n 3 LICENSE 2>/dev/null | grep -q 'GNU AFFERO GENERAL PUBLIC LICENSE' \
  && grep -q 'END OF TERMS AND CONDITIONS' LICENSE \
  && grep -q '^license = "AGPL-3.0-only"' Cargo.toml \
  || fail "LICENSE must be the full AGPL-3.0 text matching Cargo.toml's license = \"AGPL-3.0-only\""
grep -q '^## \[Unreleased\]' CHANGELOG.md 2>/dev/null || fail "CHANGELOG.md has no '## [Unreleased]' section"
# The threat model cites where each defence lives: every cited repository path must exist.
while read -r path; do
  [ -e "$path" ] || fail "docs/threat-model.md cites $path, which does not exist"
done < <(grep -oE '`[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]*`' docs/threat-model.md | tr -d '`' | grep -vE '^\.?/' | sort -u)
for m in migrations/*.sql; do
  v="$(basename "$m" .sql)"
  grep -q "$v" docs/releasing.md 2>/dev/null || fail "docs/releasing.md does not list the migration $v"
done

if [ "$failures" -gt 0 ]; then
  die "ops checks: $failures failed"
fi
log "ops checks passed in $(( $(date +%s) - START )) s"
