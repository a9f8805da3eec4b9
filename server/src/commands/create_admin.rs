//! `vortex create-admin`: create an admin account, or promote an existing one.

use std::process::ExitCode;

use backend::Ctx;
use clap::Args;

#[derive(Debug, Args)]
pub struct CreateAdminArgs {
    #[arg(long)]
    pub email: String,
}

/// Runs `vortex create-admin`.
///
/// # Errors
/// Reading the password, or the account could not be created or promoted.
pub async fn run(ctx: Ctx, args: CreateAdminArgs) -> anyhow::Result<ExitCode> {
    let CreateAdminArgs { email } = args;
    let password = read_admin_password()?;
    let message = backend::account::admin::create_or_promote(
        &ctx,
        &backend::Actor::system(backend::Surface::Cli),
        &email,
        password,
    )
    .await?;
    println!("{message}");
    Ok(ExitCode::SUCCESS)
}

/// The new admin's password: from `VORTEX_ADMIN_PASSWORD_FILE`, else the first line of stdin (`None` when
/// stdin is a terminal with nothing typed or empty, which is fine for promoting an existing account).
fn read_admin_password() -> anyhow::Result<Option<String>> {
    use std::io::{BufRead, IsTerminal};
    if let Ok(path) = std::env::var("VORTEX_ADMIN_PASSWORD_FILE") {
        let content = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "VORTEX_ADMIN_PASSWORD_FILE: cannot read `{path}`: {}",
                e.kind()
            )
        })?;
        return Ok(
            Some(content.trim_end_matches(['\r', '\n']).to_owned()).filter(|p| !p.is_empty())
        );
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "Password for the new admin (input is shown; prefer piping it or VORTEX_ADMIN_PASSWORD_FILE):"
        );
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()).filter(|p| !p.is_empty()))
}
