//! The payloads of the billing events (docs/billing.md): the trader's plan changed because of their
//! subscription, a payment failed, a trial ends soon.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The user's plan changed because their subscription's state changed (bought, downgraded at the end, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingPlanChanged {
    pub user_id: Uuid,
    /// The plan's name before and after.
    pub from: String,
    pub to: String,
    /// The subscription's state that caused it (`active`, `trialing`, `canceled`, `unpaid`, …).
    pub status: String,
    pub effective_at: DateTime<Utc>,
    /// One change is one event (the webhook event's id, or the sync's).
    pub change_id: String,
}

/// The provider could not collect a payment: the subscription is past due (access kept while the provider
/// retries) or unpaid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingPaymentFailed {
    pub user_id: Uuid,
    pub plan: String,
    /// The amount due, in minor units of `currency`.
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    /// When the provider tries again, if it does.
    pub retry_at: Option<DateTime<Utc>>,
    /// The subscription's state now.
    pub status: String,
    /// The provider's event id (one failure is one event).
    pub change_id: String,
}

/// The subscription's trial ends soon (only sent while it is still trialing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingTrialEnding {
    pub user_id: Uuid,
    pub plan: String,
    pub ends_at: Option<DateTime<Utc>>,
    /// The subscription (with `ends_at`, one reminder per trial).
    pub subscription_id: String,
}

/// The user's usage of a plan limit reached 80 % or 100 % of its value (one per limit, threshold and UTC day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingUsageWarning {
    pub user_id: Uuid,
    /// The limit's key (`backtests_per_day`, `strategies`, `active_paper_runs`) and its words.
    pub limit: String,
    pub label: String,
    pub usage: i64,
    pub value: i64,
    /// 80 or 100.
    pub percent: u8,
    /// The plan's name.
    pub plan: String,
    /// The UTC day (`YYYY-MM-DD`) the threshold was reached.
    pub day: String,
}

fn money(amount: Option<i64>, currency: Option<&str>) -> String {
    match (amount, currency) {
        (Some(a), Some(c)) => format!("{}.{:02} {}", a / 100, (a % 100).abs(), c.to_uppercase()),
        (Some(a), None) => format!("{}.{:02}", a / 100, (a % 100).abs()),
        _ => "the amount due".to_owned(),
    }
}

impl BillingPlanChanged {
    pub fn title(&self) -> String {
        format!("Your plan is now {}", self.to)
    }

    pub fn body(&self) -> String {
        let why = match self.status.as_str() {
            "active" => "your subscription is active".to_owned(),
            "trialing" => "your trial started".to_owned(),
            "past_due" => {
                "your subscription is past due (you keep the plan while payment is retried)"
                    .to_owned()
            }
            "canceled" => "your subscription ended".to_owned(),
            "unpaid" => "the payment could not be collected".to_owned(),
            other => format!("your subscription is {other}"),
        };
        format!(
            "Your plan changed from {} to {} on {} UTC because {why}. Nothing of yours was deleted: work over a \
             lower limit is kept, only new work is refused. Your plan, limits and invoices: /account/plan.",
            self.from,
            self.to,
            self.effective_at.format("%Y-%m-%d %H:%M"),
        )
    }
}

impl BillingPaymentFailed {
    pub fn title(&self) -> String {
        format!("Payment failed for your {} plan", self.plan)
    }

    pub fn body(&self) -> String {
        let retry = self.retry_at.map_or_else(
            || "The provider will not retry automatically.".to_owned(),
            |t| {
                format!(
                    "The provider tries again on {} UTC.",
                    t.format("%Y-%m-%d %H:%M")
                )
            },
        );
        format!(
            "We could not collect {} for your {} plan. {retry} You keep your plan while the payment is retried; \
             if it cannot be collected, your account returns to the default plan. Update your payment method \
             under \"Manage billing\" on /account/plan.",
            money(self.amount_minor, self.currency.as_deref()),
            self.plan,
        )
    }
}

impl BillingTrialEnding {
    pub fn title(&self) -> String {
        format!("Your {} trial ends soon", self.plan)
    }

    pub fn body(&self) -> String {
        let when = self.ends_at.map_or_else(
            || "soon".to_owned(),
            |t| format!("on {} UTC", t.format("%Y-%m-%d %H:%M")),
        );
        format!(
            "The trial of your {} plan ends {when}. The subscription then continues with the payment method on \
             file; to change or cancel it, use \"Manage billing\" on /account/plan.",
            self.plan
        )
    }
}

impl BillingUsageWarning {
    pub fn title(&self) -> String {
        if self.percent >= 100 {
            format!("You reached your plan's limit of {}", self.label)
        } else {
            format!("You have used {} % of your {}", self.percent, self.label)
        }
    }

    pub fn body(&self) -> String {
        let resets = if self.limit == "backtests_per_day" {
            " The count starts again at 00:00 UTC."
        } else {
            ""
        };
        let next = if self.percent >= 100 {
            "New ones are refused until you are below the limit"
        } else {
            "At the limit, new ones are refused"
        };
        format!(
            "You have {} of {} {} allowed by your {} plan.{resets} {next}; nothing of yours is deleted or \
             stopped. Your limits, your usage and how to raise them: /account/plan.",
            self.usage, self.value, self.label, self.plan,
        )
    }
}
