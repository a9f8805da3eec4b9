//! `vortex notify test|deliveries|clear-undeliverable`: operator commands for notifications. They act as
//! the operator ([`Actor::system`], surface `cli`) through the same actions as the admin API, so permissions,
//! limits and audit entries are the same.

use std::process::ExitCode;

use backend::{
    Actor, Ctx,
    actor::Surface,
    notify::{Channel, admin, email, log},
};
use clap::{Subcommand, ValueEnum};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChannelArg {
    Email,
    Webhook,
    Inapp,
}

impl From<ChannelArg> for Channel {
    fn from(c: ChannelArg) -> Self {
        match c {
            ChannelArg::Email => Channel::Email,
            ChannelArg::Webhook => Channel::Webhook,
            ChannelArg::Inapp => Channel::InApp,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a user a test notification (system.test) through their preferences and destinations.
    Test {
        /// The user's email address.
        #[arg(long)]
        email: String,
        /// Only this channel (default: every channel the user's preferences allow).
        #[arg(long, value_enum, ignore_case = true)]
        channel: Option<ChannelArg>,
    },
    /// Show a user's delivery log (email and webhook messages), newest first.
    Deliveries {
        /// The user's email address.
        #[arg(long)]
        email: String,
        /// At most this many entries (1–200).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=200))]
        limit: i64,
    },
    /// Clear the undeliverable mark of a user's address (after the mailbox was fixed) and send a test.
    ClearUndeliverable {
        /// The user's email address.
        #[arg(long)]
        email: String,
    },
}

async fn user_id(ctx: &Ctx, email: &str) -> anyhow::Result<Option<Uuid>> {
    Ok(backend::auth::users::find_for_signin(&ctx.db, email.trim())
        .await?
        .map(|(u, _)| u.user_id))
}

/// Runs `vortex notify …`. Exit 0 on success, 1 for an unknown address or a refused action.
///
/// # Errors
/// Database errors.
pub async fn run(ctx: Ctx, command: NotifyCommand) -> anyhow::Result<ExitCode> {
    let actor = Actor::system(Surface::Cli);
    let email = match &command {
        NotifyCommand::Test { email, .. }
        | NotifyCommand::Deliveries { email, .. }
        | NotifyCommand::ClearUndeliverable { email } => email.clone(),
    };
    let Some(user_id) = user_id(&ctx, &email).await? else {
        eprintln!("no account with the address {email}");
        return Ok(ExitCode::FAILURE);
    };
    let result = match command {
        NotifyCommand::Test { channel, .. } => {
            admin::send_test(&ctx, &actor, user_id, channel.map(Channel::from))
                .await
                .map(|t| {
                    println!(
                        "test notification {} emitted for {email}; see `vortex notify deliveries --email {email}`",
                        t.event_id
                    );
                })
        }
        NotifyCommand::Deliveries { limit, .. } => {
            let q = log::Query {
                limit: Some(limit),
                ..log::Query::default()
            };
            log::for_user(&ctx, &actor, user_id, q).await.map(|page| {
                if page.items.is_empty() {
                    println!("no deliveries for {email}");
                }
                for e in page.items {
                    let target = e
                        .webhook_id
                        .map_or_else(|| e.channel.clone(), |w| format!("webhook {w}"));
                    println!(
                        "{}  {}  {:<10} {:<10} {:<28} attempts {}  {}{}{}",
                        e.created_at.to_rfc3339(),
                        e.id,
                        target,
                        e.status,
                        e.event_type.unwrap_or_default(),
                        e.attempts,
                        e.reason.map(|r| format!("reason {r}  ")).unwrap_or_default(),
                        e.last_error.unwrap_or_default(),
                        if e.replayable { "  (replayable)" } else { "" },
                    );
                }
            })
        }
        NotifyCommand::ClearUndeliverable { .. } => {
            email::clear_undeliverable_for(&ctx, &actor, user_id)
                .await
                .map(|c| {
                    if c.cleared {
                        println!(
                            "{} is no longer marked undeliverable; a test notification is on its way",
                            c.address
                        );
                    } else {
                        println!("{} was not marked undeliverable; nothing to do", c.address);
                    }
                })
        }
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(backend::Error::Db(e)) => Err(e.into()),
        Err(backend::Error::Internal(e)) => Err(e),
        Err(e) => {
            eprintln!("error: {}", e.message());
            Ok(ExitCode::FAILURE)
        }
    }
}
