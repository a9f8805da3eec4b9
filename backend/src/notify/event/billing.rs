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
            "Your plan changed from {} to {} on {} UTC because {why}. Nothing of yours was deleted: new work over a \
             lower limit is refused, and more paper runs or strategies than it allows get a grace period before the \
             newest become read-only (you are told separately). Your plan, limits and invoices: /account/plan.",
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

/// A plan limit the user is over after a plan change (`active_paper_runs`, `strategies`): the grace period
/// started (`stage` `grace`), it ended and the excess is read-only now (`enforced`), or the user is within the
/// limit again and every restriction is lifted (`resolved`). One event per overage and stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingOverLimit {
    pub user_id: Uuid,
    /// The overage (`plan_overage.overage_id`).
    pub overage_id: Uuid,
    /// `grace`, `enforced` or `resolved`.
    pub stage: String,
    /// The limit's key (`active_paper_runs`, `strategies`) and its words.
    pub limit: String,
    pub label: String,
    pub usage: i64,
    /// The limit's value (`None`: unlimited now, only when `resolved`).
    pub allowed: Option<i64>,
    /// The plan's name.
    pub plan: String,
    /// When the grace period ends (or ended).
    pub grace_ends_at: DateTime<Utc>,
    /// `enforced`: the names of the runs or strategies now restricted (at most [`OVER_LIMIT_NAMES`]), and how
    /// many there are in all.
    #[serde(default)]
    pub restricted: Vec<String>,
    #[serde(default)]
    pub restricted_count: usize,
}

/// Most restricted items a [`BillingOverLimit`] names.
pub const OVER_LIMIT_NAMES: usize = 20;

impl BillingOverLimit {
    fn runs(&self) -> bool {
        self.limit == "active_paper_runs"
    }

    /// What read-only means for `n` items of this limit's excess.
    fn consequence(&self, n: usize) -> String {
        if self.runs() {
            format!(
                "the {n} most recently started run(s) become reduce-only: they keep processing candles and can \
                 close positions (exits, stops and targets work) but open no new ones. Nothing is stopped or \
                 deleted, and you can stop a run at any time"
            )
        } else {
            format!(
                "the {n} most recently created strategies become read-only: you can still view, export, archive \
                 and delete them, but not edit them, backtest them or start paper runs from them. Nothing is \
                 deleted"
            )
        }
    }

    fn fix(&self) -> &'static str {
        if self.runs() {
            "stop paper runs you no longer need, or move to a larger plan"
        } else {
            "delete strategies you no longer need (archived ones count too), or move to a larger plan"
        }
    }

    fn allowed_text(&self) -> String {
        self.allowed
            .map_or_else(|| "any number".to_owned(), |a| a.to_string())
    }

    pub fn title(&self) -> String {
        match self.stage.as_str() {
            "resolved" => format!("You are within your plan's limit of {} again", self.label),
            "enforced" => format!(
                "Over your plan's limit of {}: the excess is now read-only",
                self.label
            ),
            _ => format!("You are over your plan's limit of {}", self.label),
        }
    }

    pub fn body(&self) -> String {
        let excess = usize::try_from(self.usage - self.allowed.unwrap_or(self.usage)).unwrap_or(0);
        let when = self.grace_ends_at.format("%Y-%m-%d %H:%M UTC");
        let (usage, label, plan, allowed) =
            (self.usage, &self.label, &self.plan, self.allowed_text());
        match self.stage.as_str() {
            "resolved" => format!(
                "You now have {usage} {label} and your {plan} plan allows {allowed}: every restriction for this \
                 limit is lifted and your runs and strategies work as before. Your limits and usage: /account/plan."
            ),
            "enforced" => {
                let names = if self.restricted.is_empty() {
                    String::new()
                } else {
                    let more = self.restricted_count.saturating_sub(self.restricted.len());
                    format!(
                        " Restricted: {}{}.",
                        self.restricted.join("; "),
                        if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        }
                    )
                };
                format!(
                    "You have {usage} {label} and your {plan} plan allows {allowed}. The grace period ended on \
                     {when}, so {}.{names} To lift it, {}: the restriction ends as soon as you are within the \
                     limit. Your limits and usage: /account/plan.",
                    self.consequence(self.restricted_count.max(excess)),
                    self.fix(),
                )
            }
            _ => format!(
                "You have {usage} {label} and your {plan} plan allows {allowed}. Nothing changes until {when} (the \
                 end of the grace period). If you are still over the limit then, {}. To avoid it, {} before then. \
                 Your limits and usage: /account/plan.",
                self.consequence(excess),
                self.fix(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(
        limit: &str,
        stage: &str,
        allowed: Option<i64>,
        restricted: usize,
    ) -> BillingOverLimit {
        BillingOverLimit {
            user_id: Uuid::nil(),
            overage_id: Uuid::nil(),
            stage: stage.into(),
            limit: limit.into(),
            label: limit.replace('_', " "),
            usage: 5,
            allowed,
            plan: "Tiny".into(),
            grace_ends_at: DateTime::parse_from_rfc3339("2027-03-19T12:00:00Z")
                .unwrap()
                .to_utc(),
            restricted: (0..restricted).map(|i| format!("run {i}")).collect(),
            restricted_count: restricted + 3,
        }
    }

    #[test]
    fn over_limit_notices_say_when_what_happens_and_how_to_avoid_it() {
        let g = notice("active_paper_runs", "grace", Some(2), 0);
        assert_eq!(
            g.title(),
            "You are over your plan's limit of active paper runs"
        );
        let b = g.body();
        for needle in [
            "You have 5 active paper runs and your Tiny plan allows 2",
            "until 2027-03-19 12:00 UTC",
            "the 3 most recently started run(s) become reduce-only",
            "stop paper runs you no longer need",
            "/account/plan",
        ] {
            assert!(b.contains(needle), "{needle}: {b}");
        }
        let b = notice("strategies", "grace", Some(4), 0).body();
        assert!(
            b.contains("1 most recently created strategies become read-only"),
            "{b}"
        );
        assert!(
            b.contains("delete strategies") && b.contains("archived ones count"),
            "{b}"
        );
        let e = notice("active_paper_runs", "enforced", Some(2), 2);
        assert!(e.title().ends_with("the excess is now read-only"));
        let b = e.body();
        assert!(b.contains("ended on 2027-03-19 12:00 UTC"), "{b}");
        assert!(b.contains("Restricted: run 0; run 1 and 3 more."), "{b}");
        let r = notice("strategies", "resolved", None, 0);
        assert!(
            r.title()
                .contains("within your plan's limit of strategies again")
        );
        assert!(r.body().contains("allows any number"), "{}", r.body());
    }
}
