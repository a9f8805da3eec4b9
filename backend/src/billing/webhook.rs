//! One event, from a webhook delivery (after its signature was verified) or from the provider's event list (a
//! reconciliation run, [`super::reconcile`]): record its event id and apply the subscription it is about,
//! fetched from the provider, in one transaction. Both paths go through `process`, so an event is processed
//! once whichever way it arrives first, and in any order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    stripe::{Stripe, Subscription},
    sync,
};
use crate::{
    Ctx,
    error::{Error, Result},
    notify::{
        self,
        event::{BillingPaymentFailed, BillingTrialEnding, Event},
    },
    plans,
};

/// Largest webhook body read (Stripe's events are a few KiB).
pub const MAX_BODY: usize = 256 * 1024;

/// The event types Vortex acts on (docs/billing.md lists them for the provider's dashboard).
pub const EVENTS: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
    "invoice.paid",
    "invoice.payment_failed",
];

/// Where an event came from (`billing_event.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Delivered to the webhook, signed.
    Webhook,
    /// Read from the provider's event list by a reconciliation run (over TLS, with the API key).
    Reconcile,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Reconcile => "reconcile",
        }
    }
}

/// The provider, as one call of [`process`] (a webhook) or a whole reconciliation run asks it for
/// subscriptions. A run remembers what it read: many events about one subscription cost one request.
pub(crate) struct Provider {
    stripe: Option<Stripe>,
    remember: bool,
    read: HashMap<String, Option<(Subscription, DateTime<Utc>)>>,
}

impl Provider {
    /// Asks the provider every time (a webhook delivery); the client is made when first needed.
    pub(crate) fn per_event() -> Self {
        Self {
            stripe: None,
            remember: false,
            read: HashMap::new(),
        }
    }

    /// Asks the provider once per subscription for as long as it lives (a reconciliation run).
    pub(crate) fn remembering(stripe: Stripe) -> Self {
        Self {
            stripe: Some(stripe),
            remember: true,
            read: HashMap::new(),
        }
    }

    /// The client.
    ///
    /// # Errors
    /// [`Error::Conflict`] when billing is off.
    pub(crate) fn client(&mut self, ctx: &Ctx) -> Result<&Stripe> {
        let stripe = match self.stripe.take() {
            Some(s) => s,
            None => Stripe::from_settings(&ctx.settings.billing)?,
        };
        Ok(self.stripe.insert(stripe))
    }

    /// The subscription `id` and when it was read; `None` when the provider has no such subscription.
    ///
    /// # Errors
    /// [`Error::Unavailable`] and [`Error::Internal`] from the provider.
    pub(crate) async fn subscription(
        &mut self,
        ctx: &Ctx,
        id: &str,
    ) -> Result<Option<(Subscription, DateTime<Utc>)>> {
        if let Some(known) = self.read.get(id) {
            return Ok(known.clone());
        }
        let observed_at = Utc::now();
        let found = match self.client(ctx)?.subscription(id).await {
            Ok(sub) => Some((sub, observed_at)),
            Err(Error::NotFound) => None,
            Err(e) => return Err(e),
        };
        if self.remember {
            self.read.insert(id.to_owned(), found.clone());
        }
        Ok(found)
    }
}

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Processed now; the outcome as recorded.
    Processed(String),
    /// This event id was processed before: nothing done.
    Duplicate,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// The subscription an event is about, if it is one Vortex acts on.
fn subscription_of(kind: &str, object: &Value) -> Option<String> {
    let s = match kind {
        "checkout.session.completed" => {
            if str_at(object, &["mode"]) != Some("subscription") {
                return None;
            }
            str_at(object, &["subscription"])
        }
        k if k.starts_with("customer.subscription.") => str_at(object, &["id"]),
        "invoice.paid" | "invoice.payment_failed" => {
            str_at(object, &["subscription"]).or_else(|| {
                // API versions from 2025 move it under `parent`.
                str_at(object, &["parent", "subscription_details", "subscription"])
            })
        }
        _ => None,
    }?;
    (!s.is_empty() && s.len() <= 255).then(|| s.to_owned())
}

/// Handles a verified delivery's raw body.
///
/// # Errors
/// [`Error::Invalid`] (`body`) when it is not JSON, (`id`, `type`, `data.object`) when it is not an event;
/// [`Error::Unavailable`] when the provider cannot be asked for the subscription (nothing is recorded: the
/// provider retries the delivery); database errors.
pub async fn handle(ctx: &Ctx, body: &[u8]) -> Result<Handled> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid("body", format!("not a JSON event: {e}")))?;
    process(ctx, &v, Source::Webhook, &mut Provider::per_event()).await
}

/// Processes one event (a webhook delivery's body, or an event of the provider's list): a duplicate of an
/// event id processed before does nothing; otherwise the subscription it names is read from the provider and
/// applied, and the id recorded with its outcome and `source`, in one transaction.
///
/// # Errors
/// [`Error::Invalid`] (`id`, `type`, `data.object`) when it is not an event; [`Error::Unavailable`] when the
/// provider cannot be asked for the subscription (nothing is recorded: the provider retries the delivery, or
/// the next reconciliation lists the event again); database errors.
pub(crate) async fn process(
    ctx: &Ctx,
    v: &Value,
    source: Source,
    provider: &mut Provider,
) -> Result<Handled> {
    let id = str_at(v, &["id"])
        .filter(|s| (1..=255).contains(&s.len()))
        .ok_or_else(|| Error::invalid("id", "an event id of 1 to 255 characters is required"))?
        .to_owned();
    let kind = str_at(v, &["type"])
        .filter(|s| (1..=100).contains(&s.len()))
        .ok_or_else(|| Error::invalid("type", "an event type of 1 to 100 characters is required"))?
        .to_owned();
    let object = v
        .get("data")
        .and_then(|d| d.get("object"))
        .filter(|o| o.is_object())
        .ok_or_else(|| Error::invalid("data.object", "the event's object is required"))?;
    let seen = sqlx::query_scalar!(
        "select 1 as \"one!\" from billing_event where event_id = $1",
        id
    )
    .fetch_optional(&ctx.db)
    .await?;
    if seen.is_some() {
        return Ok(Handled::Duplicate);
    }
    let mut missing = None;
    let sub = match subscription_of(&kind, object) {
        // Another account's or test mode's subscription: recorded as ignored, not retried for days.
        Some(s) if EVENTS.contains(&kind.as_str()) => {
            let found = provider.subscription(ctx, &s).await?;
            if found.is_none() {
                missing = Some(s);
            }
            found
        }
        _ => None,
    };
    let mut tx = ctx.db.begin().await?;
    let fresh = sqlx::query_scalar!(
        r#"insert into billing_event (event_id, event_type, outcome, source) values ($1, $2, '', $3)
           on conflict do nothing returning event_id"#,
        id,
        kind,
        source.as_str(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    if fresh.is_none() {
        return Ok(Handled::Duplicate);
    }
    let mut emitted = Vec::new();
    let mut user = None;
    let outcome = match &sub {
        None => match &missing {
            Some(m) => format!(
                "ignored: the provider has no subscription {}",
                sync::clip(m)
            ),
            None => format!("ignored: {} is not acted on", sync::clip(&kind)),
        },
        Some((sub, observed_at)) => {
            let applied = sync::apply(ctx, &mut tx, sub, *observed_at, &id).await?;
            emitted.extend(applied.emitted);
            user = applied.user;
            if let Some(u) = applied.user {
                let plan = match applied.plan_name {
                    Some(p) => p,
                    None => plans::limits_in(&mut tx, &ctx.settings, u).await?.plan.name,
                };
                let extra = match kind.as_str() {
                    // Only while still unpaid: a failure the trader has since paid (an event processed late,
                    // by a reconciliation or a delayed retry) is no news.
                    "invoice.payment_failed" if !PAID.contains(&sub.status.as_str()) => {
                        Some(Event::BillingPaymentFailed(BillingPaymentFailed {
                            user_id: u,
                            plan,
                            amount_minor: object.get("amount_due").and_then(Value::as_i64),
                            currency: str_at(object, &["currency"]).map(sync::clip),
                            retry_at: object
                                .get("next_payment_attempt")
                                .and_then(Value::as_i64)
                                .and_then(|t| DateTime::from_timestamp(t, 0)),
                            status: sub.status.clone(),
                            change_id: id.clone(),
                        }))
                    }
                    // It can fire at once (a short trial, or a trial ended early): only while still trialing.
                    "customer.subscription.trial_will_end" if sub.status == "trialing" => {
                        Some(Event::BillingTrialEnding(BillingTrialEnding {
                            user_id: u,
                            plan,
                            ends_at: sub.trial_end(),
                            subscription_id: sub.id.clone(),
                        }))
                    }
                    _ => None,
                };
                if let Some(e) = extra {
                    emitted.push(notify::emit(&mut tx, &ctx.jobs, &ctx.clock, &e).await?);
                }
            }
            applied.outcome
        }
    };
    sqlx::query!(
        "update billing_event set outcome = $2 where event_id = $1",
        id,
        outcome.chars().take(500).collect::<String>(),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if let Some(u) = user {
        plans::actions::forget_user(u);
    }
    notify::push(&ctx.jobs, &emitted).await;
    tracing::info!(event = %id, kind = %kind, source = source.as_str(), outcome = %outcome, "billing event processed");
    Ok(Handled::Processed(outcome))
}

/// Subscription states in which the latest invoice is paid (a `payment_failed` about it is old news).
const PAID: [&str; 2] = ["active", "trialing"];

/// A delivery as received: checks that billing is on and the `Stripe-Signature` header (on the raw bytes, at
/// the server's clock), then [`handle`]s it.
///
/// # Errors
/// [`Error::NotFound`] when billing is off (there is no webhook endpoint then); [`Error::Invalid`]
/// (`Stripe-Signature`) for a missing, malformed, stale or unmatched signature — nothing is recorded or
/// changed; otherwise as [`handle`].
pub async fn receive(ctx: &Ctx, signature: Option<&str>, body: &[u8]) -> Result<Handled> {
    let billing = &ctx.settings.billing;
    // A delivery without the header is malformed whether or not payments are on (400 before 404).
    if signature.is_none_or(|s| s.trim().is_empty()) {
        return Err(Error::invalid(
            "Stripe-Signature",
            "the header is missing: every delivery from the provider is signed",
        ));
    }
    if !billing.enabled() {
        return Err(Error::NotFound);
    }
    if let Err(e) = super::signature::verify(
        signature,
        body,
        &billing.webhook_secrets,
        Utc::now().timestamp(),
    ) {
        tracing::warn!(problem = %e, "billing webhook refused");
        return Err(Error::invalid("Stripe-Signature", e.to_string()));
    }
    handle(ctx, body).await
}
