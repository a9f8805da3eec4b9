#!/usr/bin/env bash
# CycloneDX SBOMs (JSON) of the workspace's Rust dependencies, from Cargo.lock: target/sbom/<crate>.cdx.json.
# Run for each release (docs/releasing.md); the release workflow attaches them to the GitHub release. Installs the
# pinned cargo-cyclonedx into $VORTEX_TOOLS on first use.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
CYCLONEDX_VERSION=0.5.7
if ! "$VORTEX_TOOLS/bin/cargo-cyclonedx" cyclonedx --version 2>/dev/null | grep -q " $CYCLONEDX_VERSION$"; then
  log "installing cargo-cyclonedx $CYCLONEDX_VERSION into $VORTEX_TOOLS (one-time)"
  cargo install cargo-cyclonedx --version "$CYCLONEDX_VERSION" --locked --root "$VORTEX_TOOLS"
fi
rm -rf target/sbom
mkdir -p target/sbom
"$VORTEX_TOOLS/bin/cargo-cyclonedx" cyclonedx --format json --spec-version 1.5 --all-features \
  --override-filename vortex-sbom
for f in */vortex-sbom.json; do
  mv "$f" "target/sbom/$(dirname "$f").cdx.json"
done
log "SBOMs: $(ls target/sbom | tr '\n' ' ')"
