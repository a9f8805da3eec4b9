# syntax=docker/dockerfile:1.7
# Vortex: one image for every process type (`vortex` is the entrypoint):
#   docker run IMAGE serve [--no-worker]   web (+ in-process workers)
#   docker run IMAGE worker                background workers
#   docker run IMAGE migrate               database migrations (one-shot)
#
# Stages: toolchain (Rust + pinned build tools) → planner (dependency recipe) → builder (dependencies cooked in
# their own layer, then the sources) → runtime (Debian slim, non-root, binary + site only).
# The builder runs scripts/build.sh release: the very script CI and developers run.

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS toolchain
ARG CARGO_CHEF_VERSION=0.1.78
# Must equal the wasm-bindgen version in Cargo.lock (checked in the builder).
ARG WASM_BINDGEN_VERSION=0.2.130
# npm's binaryen, never Debian's: Debian's wasm-opt output breaks hydration.
ARG BINARYEN_VERSION=132.0.0
ENV CARGO_TARGET_DIR=/src/target/cargo \
    CARGO_TERM_COLOR=never \
    CARGO_REGISTRIES_CRATES_IO_PROTOCOL=sparse
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY rust-toolchain.toml ./
RUN rustup toolchain install \
 && rustup target add wasm32-unknown-unknown \
 && cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}" \
 && cargo install wasm-bindgen-cli --version "${WASM_BINDGEN_VERSION}" \
 && npm install --global --no-audit --no-fund "binaryen@${BINARYEN_VERSION}" \
 && rm -rf /usr/local/cargo/registry /root/.npm

# ---------------------------------------------------------------------------------------------------------
FROM toolchain AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---------------------------------------------------------------------------------------------------------
FROM toolchain AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is reused until Cargo.toml/Cargo.lock change.
RUN cargo chef cook --release -p server --recipe-path recipe.json \
 && cargo chef cook --profile wasm-release --target wasm32-unknown-unknown -p frontend --recipe-path recipe.json
COPY . .
# SQL is checked against the committed .sqlx/ data (also set in .cargo/config.toml): no database in the build.
ENV SQLX_OFFLINE=true
# Shown as vortex_build_info{git_sha} (`docker build --build-arg VORTEX_GIT_SHA=$(git rev-parse HEAD)`; CI passes it).
ARG VORTEX_GIT_SHA=unknown
ENV VORTEX_GIT_SHA=${VORTEX_GIT_SHA}
# The shell is bash (SHELL, inherited from the toolchain stage), which hadolint does not follow across stages.
# hadolint ignore=SC3046
RUN source scripts/lib.sh \
 && want="$(wasm_bindgen_version)" \
 && { [ "$(wasm-bindgen --version)" = "wasm-bindgen ${want}" ] \
      || { echo "Cargo.lock wants wasm-bindgen ${want}: rebuild with --build-arg WASM_BINDGEN_VERSION=${want}" >&2; exit 1; }; } \
 && WASM_OPT="$(command -v wasm-opt)" bash scripts/build.sh release \
 && mkdir -p /out \
 && cp "${CARGO_TARGET_DIR}/release/vortex" /out/vortex \
 && cp -r target/site /out/site \
 && /out/vortex --version

# ---------------------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: TLS to SMTP relays and other services; curl: the HEALTHCHECK probe.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 vortex \
 && useradd --system --uid 10001 --gid vortex --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin vortex
COPY --from=builder /out/vortex /usr/local/bin/vortex
COPY --from=builder /out/site /app/site
# The licence travels with the binary (AGPL-3.0-only).
COPY LICENSE /usr/share/doc/vortex/LICENSE
WORKDIR /app
ENV APP_ENV=production \
    BIND_ADDR=0.0.0.0:3000 \
    SITE_ROOT=/app/site \
    LOG_FORMAT=json
USER 10001:10001
EXPOSE 3000
# Liveness of the web process (`serve`). `worker` serves /health on METRICS_ADDR instead (compose probes port 9100
# there); `migrate` serves no HTTP (compose disables the check).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "--fail", "--silent", "--show-error", "--max-time", "2", "--output", "/dev/null", "http://127.0.0.1:3000/health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["vortex"]
CMD ["serve"]
# OCI labels. CI passes the release version (the v* tag without the v) and the full commit:
#   docker build --build-arg VORTEX_VERSION=1.2.0 --build-arg VORTEX_GIT_SHA=$(git rev-parse HEAD) .
ARG VORTEX_VERSION=dev
ARG VORTEX_GIT_SHA=unknown
LABEL org.opencontainers.image.title="vortex" \
      org.opencontainers.image.description="Vortex trading-strategy platform: web, workers, migrations" \
      org.opencontainers.image.licenses="AGPL-3.0-only" \
      org.opencontainers.image.version="${VORTEX_VERSION}" \
      org.opencontainers.image.revision="${VORTEX_GIT_SHA}"
