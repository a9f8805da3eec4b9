//! `vortex`: one binary for every process type (see `server::commands` for the subcommands).

/// mimalloc rather than glibc's malloc: a profile of cached pages spent about a quarter of its CPU in
/// glibc malloc/free (issue 16). The binary only; the library and its tests keep the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    server::commands::main()
}
