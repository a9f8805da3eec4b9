//! `vortex`: one binary for every process type (see `server::commands` for the subcommands).

fn main() -> std::process::ExitCode {
    server::commands::main()
}
