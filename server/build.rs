//! Build metadata: `vortex --version` names the git commit the build was given (`VORTEX_GIT_SHA`, set by the
//! Dockerfile and the CI workflow), as `vortex_build_info` and error reports do.

fn main() {
    println!("cargo:rerun-if-env-changed=VORTEX_GIT_SHA");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = std::env::var("VORTEX_GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty() && s != "unknown")
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=VORTEX_VERSION_LONG={version} (commit {commit})");
}
