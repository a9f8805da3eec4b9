//! The plan page's data (`/account/plan`): the user's plan, each limit with its usage, and the plans to
//! compare. Reads only; the backend action decides (`backend::plans::actions`).

use leptos::{prelude::*, server_fn::codec::GetUrl};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One plan as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub slug: String,
    pub name: String,
    pub description: String,
    /// e.g. "USD 19.00 / month", or "Free".
    pub price: String,
    pub trial_days: i32,
    pub is_default: bool,
    /// (label, value) of each limit, in the order of the usage table ("unlimited" or a number).
    pub limits: Vec<(String, String)>,
    /// The plan has a provider price id (it can be bought when billing is on).
    pub buyable: bool,
}

/// One invoice from the payment provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceView {
    pub number: String,
    pub date: String,
    pub amount: String,
    pub status: String,
    pub url: Option<String>,
}

/// The billing part of the plan page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingSection {
    /// `PAYMENT_PROVIDER` is not `none`.
    pub enabled: bool,
    /// The subscription's state (`active`, `past_due`, …), if there is one.
    pub status: Option<String>,
    /// What the state means for the trader.
    pub status_text: String,
    pub period_end: Option<String>,
    pub cancel_at_period_end: bool,
    /// A provider customer exists (the portal can be opened).
    pub has_customer: bool,
    /// A subscription that keeps the plan is live (no new checkout).
    pub live: bool,
    pub invoices: Vec<InvoiceView>,
    pub invoices_unavailable: bool,
}

/// One limit of the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitView {
    pub key: String,
    pub label: String,
    /// The effective value ("unlimited" when none).
    pub value: String,
    /// The usage, for counted limits.
    pub usage: Option<i64>,
    /// Whether usage reached the value.
    pub full: bool,
    /// "your override", "plan", "instance setting", "".
    pub source: String,
}

/// A limit the user is over after a plan change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverageView {
    pub key: String,
    pub label: String,
    pub usage: i64,
    pub allowed: i64,
    /// When the grace period ends (or ended), in the user's time zone.
    pub grace_ends: String,
    /// The excess is read-only now.
    pub enforced: bool,
    /// What happens (or happened) at the end of the grace period, and how to fix it.
    pub what: String,
    /// The restricted runs or strategies: (link, name), newest first.
    pub restricted: Vec<(String, String)>,
}

/// Everything the plan page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MyPlanView {
    pub plan: PlanView,
    pub limits: Vec<LimitView>,
    pub overages: Vec<OverageView>,
    pub ends: Option<String>,
    pub plans: Vec<PlanView>,
    pub billing: BillingSection,
}

/// The signed-in user's plan, limits, usage, the plans to compare and their billing. With `sync` (the trader
/// is back from the provider's checkout, which often beats the webhook) the subscription is read from the
/// provider first.
#[server(endpoint = "my_plan", input = GetUrl)]
pub async fn get_my_plan(sync: bool) -> Result<MyPlanView, AppError> {
    ssr::my_plan(sync).await
}

#[cfg(feature = "ssr")]
mod ssr {
    use backend::{
        Ctx,
        plans::{
            Limit, Source,
            actions::{self, Plan},
        },
    };
    use leptos::prelude::*;

    use super::*;

    fn price(p: &Plan) -> String {
        if p.price_minor == 0 {
            return "Free".into();
        }
        format!(
            "{} {}.{:02} / {}",
            p.currency,
            p.price_minor / 100,
            p.price_minor % 100,
            p.billing_period
        )
    }

    fn number(v: Option<i64>) -> String {
        v.map_or_else(|| "unlimited".into(), |v| v.to_string())
    }

    fn plan_view(p: &Plan, settings: &backend::settings::Settings) -> PlanView {
        PlanView {
            slug: p.slug.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            price: price(p),
            trial_days: p.trial_days,
            is_default: p.is_default,
            buyable: p.provider_price_id.is_some(),
            limits: Limit::ALL
                .into_iter()
                .map(|l| {
                    let v = p
                        .limits
                        .get(&l)
                        .copied()
                        .or_else(|| backend::plans::instance_default(settings, l));
                    (l.label().to_owned(), number(v))
                })
                .collect(),
        }
    }

    fn status_text(status: Option<&str>, cancel_at_period_end: bool) -> String {
        let s = match status {
            None => "No subscription yet: choose a plan below.",
            Some("trialing") => {
                "Trial: the plan's limits apply; the first payment is taken when the trial ends."
            }
            Some("active") if cancel_at_period_end => {
                "Active until the end of the period, then canceled: you are back on the default plan then."
            }
            Some("active") => "Active: the plan's limits apply.",
            Some("past_due") => {
                "Past due: a payment failed and the provider is retrying it. You keep the plan meanwhile; update your payment method under Manage billing."
            }
            Some("unpaid") => {
                "Unpaid: the payment could not be collected; you are on the default plan."
            }
            Some("canceled") => "Canceled: you are on the default plan.",
            Some("incomplete") => "Incomplete: the first payment is not confirmed yet.",
            Some("incomplete_expired") => "Expired: the first payment was never confirmed.",
            Some(_) => "Paused.",
        };
        s.to_owned()
    }

    fn money(minor: i64, currency: &str) -> String {
        format!(
            "{} {}.{:02}",
            currency.to_uppercase(),
            minor / 100,
            (minor % 100).abs()
        )
    }

    async fn billing(
        actor: &backend::Actor,
        ctx: &Ctx,
        tz: &str,
        sync: bool,
    ) -> Result<BillingSection, AppError> {
        if sync && let Err(e) = backend::billing::actions::sync_mine(actor, ctx).await {
            tracing::warn!(error = %e, "billing sync on return from checkout failed");
        }
        let v = backend::billing::actions::mine(actor, ctx).await?;
        let sub = v.subscription.as_ref();
        let status = sub.and_then(|s| s.status.clone());
        let cancel = sub.is_some_and(|s| s.cancel_at_period_end);
        Ok(BillingSection {
            enabled: v.enabled,
            status_text: status_text(status.as_deref(), cancel),
            live: status.as_deref().is_some_and(backend::billing::entitled),
            status,
            period_end: sub
                .and_then(|s| s.current_period_end)
                .map(|t| backend::auth::users::format_time(t, tz)),
            cancel_at_period_end: cancel,
            has_customer: sub.is_some(),
            invoices: v
                .invoices
                .iter()
                .map(|i| InvoiceView {
                    number: i.number.clone().unwrap_or_else(|| i.id.clone()),
                    date: chrono::DateTime::from_timestamp(i.created, 0)
                        .map(|t| backend::auth::users::format_time(t, tz))
                        .unwrap_or_default(),
                    amount: money(i.amount_due, &i.currency),
                    status: i.status.clone().unwrap_or_default(),
                    url: i
                        .hosted_invoice_url
                        .clone()
                        .filter(|u| u.starts_with("https://")),
                })
                .collect(),
            invoices_unavailable: v.invoices_unavailable,
        })
    }

    fn overage_view(o: &backend::plans::overage::Overage, tz: &str) -> OverageView {
        let runs = o.limit == Limit::ActivePaperRuns;
        let excess = (o.usage - o.allowed).max(0);
        let what = match (runs, o.enforced_at.is_some()) {
            (true, false) => format!(
                "Nothing changes until then. If you still have more than {} active paper runs then, the {excess} most recently started become reduce-only: they keep processing candles and can close positions but open no new ones; nothing is stopped. To avoid it, stop runs you no longer need or move to a larger plan.",
                o.allowed
            ),
            (true, true) => "The most recently started runs beyond the limit are reduce-only: they keep processing candles and can close positions but open no new ones; you can stop any run. Stop runs you no longer need or move to a larger plan: the restriction ends as soon as you are within the limit.".to_owned(),
            (false, false) => format!(
                "Nothing changes until then. If you still have more than {} strategies then (archived ones count), the {excess} most recently created become read-only: you can view, export, archive and delete them, but not edit, backtest or paper-trade them. To avoid it, delete strategies you no longer need or move to a larger plan.",
                o.allowed
            ),
            (false, true) => "The most recently created strategies beyond the limit are read-only: you can view, export, archive and delete them, but not edit, backtest or paper-trade them. Delete strategies you no longer need (archived ones count) or move to a larger plan: the restriction ends as soon as you are within the limit.".to_owned(),
        };
        OverageView {
            key: o.limit.key().to_owned(),
            label: o.label.clone(),
            usage: o.usage,
            allowed: o.allowed,
            grace_ends: backend::auth::users::format_time(o.grace_ends_at, tz),
            enforced: o.enforced_at.is_some(),
            what,
            restricted: o
                .restricted
                .iter()
                .map(|r| {
                    let href = if runs {
                        format!("/paper/{}", r.id)
                    } else {
                        format!("/strategies/{}", r.id)
                    };
                    (href, r.name.clone())
                })
                .collect(),
        }
    }

    pub async fn my_plan(sync: bool) -> Result<MyPlanView, AppError> {
        let actor = crate::api::actor().await?;
        let ctx = expect_context::<Ctx>();
        let tz0 = actor
            .auth_user()
            .map(|u| u.time_zone.clone())
            .unwrap_or_default();
        let billing = billing(&actor, &ctx, &tz0, sync).await?;
        let mine = actions::mine(&actor, &ctx).await?;
        let plans = actions::catalogue(&actor, &ctx).await?;
        let tz = actor
            .auth_user()
            .map(|u| u.time_zone.clone())
            .unwrap_or_default();
        Ok(MyPlanView {
            plan: plan_view(&mine.plan, &ctx.settings),
            limits: mine
                .limits
                .iter()
                .map(|r| LimitView {
                    key: r.limit.key().to_owned(),
                    label: r.label.to_owned(),
                    value: number(r.value),
                    usage: r.usage,
                    full: matches!((r.usage, r.value), (Some(u), Some(v)) if u >= v),
                    source: match r.source {
                        Source::Override => "your own limit",
                        Source::Plan => "plan",
                        Source::Instance => "instance setting",
                        Source::Unlimited => "",
                    }
                    .to_owned(),
                })
                .collect(),
            overages: mine.overages.iter().map(|o| overage_view(o, &tz)).collect(),
            ends: mine
                .ends_at
                .map(|t| backend::auth::users::format_time(t, &tz)),
            plans: plans.iter().map(|p| plan_view(p, &ctx.settings)).collect(),
            billing,
        })
    }
}
