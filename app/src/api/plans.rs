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

/// Everything the plan page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MyPlanView {
    pub plan: PlanView,
    pub limits: Vec<LimitView>,
    pub ends: Option<String>,
    pub plans: Vec<PlanView>,
}

/// The signed-in user's plan, limits, usage and the plans to compare.
#[server(endpoint = "my_plan", input = GetUrl)]
pub async fn get_my_plan() -> Result<MyPlanView, AppError> {
    ssr::my_plan().await
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

    pub async fn my_plan() -> Result<MyPlanView, AppError> {
        let actor = crate::api::actor().await?;
        let ctx = expect_context::<Ctx>();
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
            ends: mine
                .ends_at
                .map(|t| backend::auth::users::format_time(t, &tz)),
            plans: plans.iter().map(|p| plan_view(p, &ctx.settings)).collect(),
        })
    }
}
