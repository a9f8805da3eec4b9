//! Payments (docs/billing.md): Stripe Checkout and the Billing Portal for buying and managing a plan, and the
//! provider's signed webhooks that keep each user's subscription state — and so their plan — in step.
//!
//! Vortex holds no card data. Each user who starts a checkout gets one provider customer (created with their
//! user id in its metadata, stored before the checkout) and at most one subscription; `subscription` keeps the
//! provider's last reported state of it. Webhook events are *triggers*: an event's id is recorded in
//! `billing_event` in the transaction of its effect (a second delivery does nothing), and the effect is always
//! "fetch the subscription from the provider and store it" — so events arriving late, twice or out of order
//! end in the provider's current state. A state read before the stored one (`observed_at`) never overwrites it.
//!
//! Entitlement: `trialing`, `active` and `past_due` (the provider is retrying the payment) keep the plan the
//! subscription's price maps to (`plan.provider_price_id`); `canceled` and `unpaid` send the user back to the
//! default plan (a cancel at period end stays entitled until the provider ends the subscription). Plans are
//! changed by `plans::actions::assign_in` as the system actor, audited, with a `billing.plan_changed`
//! notification; a failed payment emits `billing.payment_failed`, an ending trial `billing.trial_ending`.
//!
//! * [`signature`]: the `Stripe-Signature` header; [`stripe`]: the REST client; [`webhook`]: one event (a
//!   delivery, or one listed by a reconciliation); [`actions`]: checkout, portal, the trader's billing view, the
//!   success-page sync and the admin list; [`reconcile`]: the scheduled reconciliation with the provider after
//!   lost deliveries, and "Reconcile now".

pub mod actions;
pub mod reconcile;
pub mod signature;
pub mod stripe;
mod sync;
pub mod webhook;

use crate::error::Error;

/// Subscription states in which the user keeps the paid plan.
pub const ENTITLED: [&str; 3] = ["trialing", "active", "past_due"];
/// Subscription states in which the user is back on the default plan.
pub const ENDED: [&str; 3] = ["canceled", "unpaid", "incomplete_expired"];

/// The refusal of every billing action when `PAYMENT_PROVIDER=none`.
pub fn billing_off() -> Error {
    Error::Conflict(
        "billing is off on this instance (PAYMENT_PROVIDER=none): plans are given by an administrator".into(),
    )
}

/// Whether `status` keeps the paid plan.
pub fn entitled(status: &str) -> bool {
    ENTITLED.contains(&status)
}
