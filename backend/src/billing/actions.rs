//! Billing actions: buy a plan (a Checkout Session), manage billing (a Billing Portal session), the trader's
//! subscription and invoices, the sync when the trader returns from the checkout, and the admin list.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{
    ENTITLED, billing_off,
    stripe::{Invoice, Stripe},
    sync,
};
use crate::{
    Actor, Ctx,
    error::{Error, Result},
    notify,
    plans::{self, actions::catalogue},
};

/// Most subscriptions the admin list shows (newest changes first).
pub const ADMIN_LIST_MAX: i64 = 500;

/// A user's subscription, as the provider last reported it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SubscriptionState {
    pub user_id: Uuid,
    pub customer_id: String,
    pub subscription_id: Option<String>,
    /// `trialing`, `active`, `past_due`, `unpaid`, `canceled`, `incomplete`, …; `None`: no subscription yet
    /// (a checkout was started, not finished).
    pub status: Option<String>,
    pub plan_slug: Option<String>,
    pub plan_name: Option<String>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<DateTime<Utc>>,
    /// When the state was read from the provider.
    pub observed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// The trader's billing: whether billing is on, their subscription and invoices.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BillingView {
    pub enabled: bool,
    pub subscription: Option<SubscriptionState>,
    pub invoices: Vec<Invoice>,
    /// The provider could not be asked for the invoices just now.
    pub invoices_unavailable: bool,
}

/// One row of the admin list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdminRow {
    pub email: String,
    pub state: SubscriptionState,
}

async fn state_of(ctx: &Ctx, user: Option<Uuid>) -> Result<Vec<AdminRow>> {
    let rows = sqlx::query!(
        r#"select s.user_id, u.email, s.customer_id, s.subscription_id, s.status, p.slug as "slug?",
                  p.name as "name?", s.current_period_end, s.cancel_at_period_end, s.trial_end, s.observed_at,
                  s.updated_at
           from subscription s join app_user u on u.user_id = s.user_id
           left join plan p on p.plan_id = s.plan_id
           where $1::uuid is null or s.user_id = $1
           order by s.updated_at desc limit $2"#,
        user,
        ADMIN_LIST_MAX,
    )
    .fetch_all(&ctx.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AdminRow {
            email: r.email,
            state: SubscriptionState {
                user_id: r.user_id,
                customer_id: r.customer_id,
                subscription_id: r.subscription_id,
                status: r.status,
                plan_slug: r.slug,
                plan_name: r.name,
                current_period_end: r.current_period_end,
                cancel_at_period_end: r.cancel_at_period_end,
                trial_end: r.trial_end,
                observed_at: r.observed_at,
                updated_at: r.updated_at,
            },
        })
        .collect())
}

/// Provider calls one trader may cause per minute (page views, returns from checkout).
const PROVIDER_CALLS_PER_MINUTE: u64 = 20;

/// Spends one of the actor's provider calls; an error when the minute's budget is gone (or Redis is down).
async fn provider_budget(ctx: &Ctx, actor: &Actor) -> Result<()> {
    crate::backtest::actions::rate_limit(ctx, actor, "billing_provider", PROVIDER_CALLS_PER_MINUTE)
        .await
}

/// The actor's subscription state and invoices (the invoices from the provider; none when billing is off).
///
/// # Errors
/// [`Error::Unauthenticated`], database errors.
pub async fn mine(actor: &Actor, ctx: &Ctx) -> Result<BillingView> {
    let user = actor.reader()?.user_id;
    let enabled = ctx.settings.billing.enabled();
    let subscription = state_of(ctx, Some(user)).await?.pop().map(|r| r.state);
    let (mut invoices, mut invoices_unavailable) = (Vec::new(), false);
    if let (true, Some(s)) = (enabled, &subscription) {
        // Each view asks the provider; past the per-user budget the page shows the invoices as unavailable
        // (one trader reloading in a loop must not spend the whole account's provider rate limit).
        if provider_budget(ctx, actor).await.is_err() {
            invoices_unavailable = true;
        } else {
            match Stripe::from_settings(&ctx.settings.billing)?
                .invoices(&s.customer_id)
                .await
            {
                Ok(i) => invoices = i,
                Err(e) => {
                    tracing::warn!(error = %e, "invoices unavailable");
                    invoices_unavailable = true;
                }
            }
        }
    }
    Ok(BillingView {
        enabled,
        subscription,
        invoices,
        invoices_unavailable,
    })
}

/// The page a trader returns to from the provider.
fn return_url(ctx: &Ctx, outcome: Option<&str>) -> String {
    let mut url = ctx.settings.public_url.clone();
    url.set_path("/account/plan");
    url.set_query(outcome.map(|o| format!("billing={o}")).as_deref());
    url.to_string()
}

/// Starts buying `plan` (slug or id): creates the actor's provider customer if they have none (stored before
/// the checkout), then a Checkout Session; returns the provider's page to send the trader to. Audited as
/// `billing_checkout_started`.
///
/// # Errors
/// [`Error::Conflict`] when billing is off or the actor has a live subscription already (change it in the
/// portal); [`Error::Invalid`] (`plan`) for an unknown, archived or unpriced plan; [`Error::Unauthenticated`],
/// [`Error::Forbidden`] (viewer, read-only token), [`Error::EmailUnconfirmed`]; [`Error::Unavailable`] when
/// the provider does not answer.
pub async fn checkout(actor: &Actor, ctx: &Ctx, plan: &str) -> Result<String> {
    let user = actor.runner()?.clone();
    if !ctx.settings.billing.enabled() {
        return Err(billing_off());
    }
    let key = plan.trim();
    let id = Uuid::parse_str(key).ok();
    let plan = catalogue(actor, ctx)
        .await?
        .into_iter()
        .find(|p| p.slug == key || Some(p.id) == id)
        .ok_or_else(|| {
            let key: String = key.chars().take(40).collect();
            Error::invalid("plan", format!("there is no plan `{key}` to buy"))
        })?;
    let price = plan.provider_price_id.clone().ok_or_else(|| {
        Error::invalid(
            "plan",
            format!(
                "the plan `{}` cannot be bought (it has no price)",
                plan.slug
            ),
        )
    })?;
    let existing = sqlx::query!(
        "select customer_id, status from subscription where user_id = $1",
        user.user_id
    )
    .fetch_optional(&ctx.db)
    .await?;
    if let Some(status) = existing
        .as_ref()
        .and_then(|e| e.status.as_deref())
        .filter(|s| ENTITLED.contains(s))
    {
        return Err(Error::Conflict(format!(
            "you have a subscription already ({status}); change or cancel it with \"Manage billing\""
        )));
    }
    // One trial per account: a customer who has had any subscription (even a canceled trial) pays from day one.
    let trial_days = if existing.as_ref().is_some_and(|e| e.status.is_some()) {
        0
    } else {
        plan.trial_days
    };
    let stripe = Stripe::from_settings(&ctx.settings.billing)?;
    let customer = match existing {
        Some(e) => e.customer_id,
        None => {
            let c = stripe.create_customer(user.user_id, &user.email).await?;
            sqlx::query!(
                "insert into subscription (user_id, customer_id) values ($1, $2) on conflict (user_id) do nothing",
                user.user_id,
                c,
            )
            .execute(&ctx.db)
            .await?;
            sqlx::query_scalar!(
                "select customer_id from subscription where user_id = $1",
                user.user_id
            )
            .fetch_one(&ctx.db)
            .await?
        }
    };
    let url = stripe
        .create_checkout(
            &customer,
            &price,
            user.user_id,
            trial_days,
            &return_url(ctx, Some("success")),
            &return_url(ctx, Some("cancel")),
        )
        .await?;
    let mut conn = ctx.db.acquire().await?;
    actor
        .audit(
            &mut conn,
            "billing_checkout_started",
            None,
            serde_json::json!({ "plan": plan.slug, "price_id": price, "customer_id": customer }),
        )
        .await?;
    Ok(url)
}

/// A Billing Portal session for the actor (payment method, invoices, change or cancel the subscription).
///
/// # Errors
/// [`Error::Conflict`] when billing is off or the actor has no billing account yet; as [`checkout`].
pub async fn portal(actor: &Actor, ctx: &Ctx) -> Result<String> {
    let user = actor.writer()?.user_id;
    if !ctx.settings.billing.enabled() {
        return Err(billing_off());
    }
    let customer = sqlx::query_scalar!(
        "select customer_id from subscription where user_id = $1",
        user
    )
    .fetch_optional(&ctx.db)
    .await?
    .ok_or_else(|| Error::Conflict("you have no billing account yet: buy a plan first".into()))?;
    Stripe::from_settings(&ctx.settings.billing)?
        .create_portal(&customer, &return_url(ctx, None))
        .await
}

/// Reads the actor's subscription from the provider and applies it (the trader returning from the checkout
/// often beats the webhook). Does nothing when billing is off or the actor never started a checkout.
///
/// # Errors
/// [`Error::Unauthenticated`]; [`Error::Unavailable`] when the provider does not answer; database errors.
pub async fn sync_mine(actor: &Actor, ctx: &Ctx) -> Result<()> {
    let user = actor.reader()?.user_id;
    if !ctx.settings.billing.enabled() || provider_budget(ctx, actor).await.is_err() {
        // Over the per-user budget the webhook still brings the change; nothing is lost by waiting.
        return Ok(());
    }
    let Some(customer) = sqlx::query_scalar!(
        "select customer_id from subscription where user_id = $1",
        user
    )
    .fetch_optional(&ctx.db)
    .await?
    else {
        return Ok(());
    };
    let observed_at = Utc::now();
    let subs = Stripe::from_settings(&ctx.settings.billing)?
        .subscriptions_of(&customer)
        .await?;
    // The live one if there is one, otherwise the newest (the provider lists newest first).
    let Some(sub) = subs
        .iter()
        .find(|s| super::entitled(&s.status))
        .or_else(|| subs.first())
    else {
        return Ok(());
    };
    if sub.customer != customer {
        return Ok(());
    }
    let mut tx = ctx.db.begin().await?;
    let applied = sync::apply(
        ctx,
        &mut tx,
        sub,
        observed_at,
        &format!("sync:{}", Uuid::new_v4()),
    )
    .await?;
    tx.commit().await?;
    plans::actions::forget_user(user);
    notify::push(&ctx.jobs, &applied.emitted).await;
    Ok(())
}

/// Every user's subscription with the provider's last reported state, newest changes first (admins).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], database errors.
pub async fn admin_list(actor: &Actor, ctx: &Ctx) -> Result<Vec<AdminRow>> {
    actor.admin()?;
    state_of(ctx, None).await
}
