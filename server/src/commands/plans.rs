//! `vortex plans list|create|set-limit|assign`: operator commands for plans (docs/plans.md). They act as the
//! operator ([`Actor::system`], surface `cli`) through the same actions as the admin API, so validation and
//! audit entries are the same.

use std::{collections::BTreeMap, process::ExitCode};

use backend::{
    Actor, Ctx,
    actor::Surface,
    plans::{
        Limit,
        actions::{self, Assignment, Plan, PlanInput},
    },
};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PlansCommand {
    /// List the plans with their price, limits and assigned users.
    List,
    /// Create a plan.
    Create {
        /// Unique short name (lowercase letters, digits, dashes).
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// Price in minor units (e.g. cents) per billing period.
        #[arg(long, default_value_t = 0)]
        price_minor: i64,
        #[arg(long, default_value = "USD")]
        currency: String,
        /// month or year.
        #[arg(long, default_value = "month")]
        billing_period: String,
        #[arg(long, default_value_t = 0)]
        trial_days: i64,
        /// Make it the default plan.
        #[arg(long)]
        default: bool,
        /// A limit, as NAME=VALUE (repeatable), e.g. --limit concurrent_backtests=2.
        #[arg(long = "limit", value_name = "NAME=VALUE", allow_hyphen_values = true)]
        limits: Vec<String>,
        /// The payment provider's price id a checkout for this plan buys (docs/billing.md).
        #[arg(long)]
        price_id: Option<String>,
    },
    /// Set (or, with the value `default`, remove) one limit of a plan.
    SetLimit {
        /// The plan's slug or id.
        #[arg(long)]
        plan: String,
        /// The limit's name (e.g. concurrent_backtests, strategies, backtests_per_day).
        #[arg(long)]
        limit: String,
        /// A whole number, or `default` for no plan-specific value.
        #[arg(long, allow_hyphen_values = true)]
        value: String,
    },
    /// Give a user a plan (replacing their assignment and overrides).
    Assign {
        /// The user's email address.
        #[arg(long)]
        email: String,
        /// The plan's slug or id (the default plan: `default`).
        #[arg(long)]
        plan: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: Option<String>,
        /// A per-user override, as NAME=VALUE (repeatable).
        #[arg(
            long = "override",
            value_name = "NAME=VALUE",
            allow_hyphen_values = true
        )]
        overrides: Vec<String>,
    },
}

/// `NAME=VALUE` pairs as the actions take them (`default` = no value).
fn pairs(
    raw: &[String],
    what: &str,
) -> Result<BTreeMap<String, Option<serde_json::Value>>, String> {
    let mut out = BTreeMap::new();
    for p in raw {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--{what} {p}: use NAME=VALUE"))?;
        let v = match v.trim() {
            "default" | "" => None,
            n => Some(serde_json::Value::from(n.parse::<i64>().map_err(|_| {
                format!("--{what} {p}: the value must be a whole number or `default`")
            })?)),
        };
        out.insert(k.trim().to_owned(), v);
    }
    Ok(out)
}

fn limits_text(p: &Plan) -> String {
    if p.limits.is_empty() {
        return "instance settings".into();
    }
    p.limits
        .iter()
        .map(|(k, v)| format!("{}={v}", k.key()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_plan(p: &Plan) {
    println!(
        "{:<16} {:<20} {:>8} {} / {}{}{}  users {}  limits: {}",
        p.slug,
        p.name,
        p.price_minor,
        p.currency,
        p.billing_period,
        if p.is_default { "  (default)" } else { "" },
        if p.archived { "  (archived)" } else { "" },
        p.users,
        limits_text(p),
    );
}

/// Runs `vortex plans …`. Exit 0 on success, 1 for a refused action or unknown address, 2 for bad input.
///
/// # Errors
/// Database errors.
pub async fn run(ctx: Ctx, command: PlansCommand) -> anyhow::Result<ExitCode> {
    let actor = Actor::system(Surface::Cli);
    let result = match command {
        PlansCommand::List => actions::list(&actor, &ctx).await.map(|plans| {
            for p in &plans {
                print_plan(p);
            }
        }),
        PlansCommand::Create {
            slug,
            name,
            price_minor,
            currency,
            billing_period,
            trial_days,
            default,
            limits,
            price_id,
        } => {
            let limits = match pairs(&limits, "limit") {
                Ok(l) => l,
                Err(m) => {
                    eprintln!("error: {m}");
                    return Ok(ExitCode::from(2));
                }
            };
            let input = PlanInput {
                slug: Some(slug),
                name: Some(name),
                description: None,
                price_minor: Some(price_minor),
                currency: Some(currency),
                billing_period: Some(billing_period),
                trial_days: Some(trial_days),
                is_default: Some(default),
                archived: None,
                provider_price_id: price_id,
                limits,
            };
            actions::create(&actor, &ctx, &input).await.map(|p| {
                println!("created plan {} ({})", p.slug, p.id);
            })
        }
        PlansCommand::SetLimit { plan, limit, value } => {
            let changes = match pairs(&[format!("{limit}={value}")], "value") {
                Ok(l) => l,
                Err(m) => {
                    eprintln!("error: {m}");
                    return Ok(ExitCode::from(2));
                }
            };
            match actions::find(&actor, &ctx, &plan).await {
                Ok(p) => {
                    let input = PlanInput {
                        limits: changes,
                        ..PlanInput::default()
                    };
                    actions::update(&actor, &ctx, p.id, &input)
                        .await
                        .map(|p| print_plan(&p))
                }
                Err(e) => Err(e),
            }
        }
        PlansCommand::Assign {
            email,
            plan,
            reason,
            overrides,
        } => {
            let overrides = match pairs(&overrides, "override") {
                Ok(l) => l,
                Err(m) => {
                    eprintln!("error: {m}");
                    return Ok(ExitCode::from(2));
                }
            };
            let Some((user, _)) =
                backend::auth::users::find_for_signin(&ctx.db, email.trim()).await?
            else {
                eprintln!("no account with the address {email}");
                return Ok(ExitCode::FAILURE);
            };
            let a = Assignment {
                plan: Some(plan).filter(|p| p != "default"),
                overrides,
                reason,
                ends_at: None,
            };
            actions::assign(&actor, &ctx, user.user_id, &a)
                .await
                .map(|u| {
                    println!("{email} is on the plan {} now", u.plan.slug);
                    for l in &u.limits {
                        let value = l.value.map_or("unlimited".into(), |v| v.to_string());
                        println!("  {:<24} {value}", Limit::key(l.limit));
                    }
                })
        }
    };
    exit(result)
}

/// The exit code of an operator command's action: 0, 2 for refused input, 1 for another refusal; database
/// and internal errors are errors.
///
/// # Errors
/// Those of `result` that are not refusals.
pub(super) fn exit(result: Result<(), backend::Error>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(backend::Error::Db(e)) => Err(e.into()),
        Err(backend::Error::Internal(e)) => Err(e),
        Err(e @ backend::Error::Invalid { .. }) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("error: {}", e.message());
            Ok(ExitCode::FAILURE)
        }
    }
}
