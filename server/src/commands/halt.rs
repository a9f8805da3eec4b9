//! `vortex halt`: kill switches from the command line, for operators when the web is down. Acts as the
//! operator ([`Actor::system`], surface `cli`) through the same actions as the admin API: audited, announced.
//!
//!     vortex halt --platform --mode halt --reason "exchange maintenance"
//!     vortex halt --user ann@example.org --mode flatten --reason "margin review"
//!     vortex halt --run 2f0c… --mode reduce_only --reason "runaway strategy"
//!     vortex halt --list
//!     vortex halt --release 7a1e… --reason "maintenance over"

use std::process::ExitCode;

use backend::{
    Actor, Ctx,
    actor::Surface,
    paper::{actions as act, kill::Scope},
};
use clap::Args;
use uuid::Uuid;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["platform", "user", "run", "release", "list"])))]
pub struct HaltArgs {
    /// Every paper run on the platform.
    #[arg(long)]
    platform: bool,
    /// Every run of the user with this email address.
    #[arg(long, value_name = "EMAIL")]
    user: Option<String>,
    /// One run.
    #[arg(long, value_name = "RUN_ID")]
    run: Option<Uuid>,
    /// Release this switch instead.
    #[arg(long, value_name = "SWITCH_ID")]
    release: Option<Uuid>,
    /// List the active switches.
    #[arg(long)]
    list: bool,
    /// reduce_only, halt or flatten.
    #[arg(long, default_value = "halt")]
    mode: String,
    /// Why (required to throw; shown to the traders it affects and kept in the audit log).
    #[arg(long)]
    reason: Option<String>,
}

/// Runs `vortex halt`. Exit 0 on success, 1 for an unknown user or run or a refused change.
///
/// # Errors
/// Database errors.
pub async fn run(ctx: Ctx, args: HaltArgs) -> anyhow::Result<ExitCode> {
    let actor = Actor::system(Surface::Cli);
    let result = if args.list {
        act::switches(&actor, &ctx, true)
            .await
            .map(|l| serde_json::json!(l))
    } else if let Some(id) = args.release {
        act::release_switch(&actor, &ctx, id, args.reason.as_deref())
            .await
            .map(|k| serde_json::json!(k))
    } else {
        let scope = if args.platform {
            Scope::Platform
        } else if let Some(run) = args.run {
            Scope::Run(run)
        } else {
            let email = args.user.unwrap_or_default();
            match backend::auth::users::find_for_signin(&ctx.db, email.trim()).await? {
                Some((u, _)) => Scope::User(u.user_id),
                None => {
                    eprintln!("no account with the address {email}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        };
        act::throw_switch_as_admin(
            &actor,
            &ctx,
            scope,
            &args.mode,
            args.reason.as_deref().unwrap_or(""),
        )
        .await
        .map(|k| serde_json::json!(k))
    };
    match result {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(backend::Error::Db(e)) => Err(e.into()),
        Err(backend::Error::Internal(e)) => Err(e),
        Err(e) => {
            eprintln!("refused: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
