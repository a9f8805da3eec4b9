//! The request and response types of the plans API. Inputs are strict (`deny_unknown_fields`): an unknown
//! field, a value of the wrong type or out of its bounds is 400 naming the field.

use std::collections::BTreeMap;

use backend::plans::{
    Limit, LimitValues,
    actions::{Assignment, LimitRow, Plan, PlanInput, UserPlan},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A present field, even when `null` (so `null` can mean "remove the value" and absence "unchanged").
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// A limits object, refused unless it is a JSON object (or `null`): a derived struct would also read an
/// array. Errors name the limit (`strategies: invalid type …`) under the field.
fn limits_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LimitsIn>, D::Error> {
    use serde::de::Error as _;
    let Some(map) = Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)? else {
        return Ok(None);
    };
    serde_path_to_error::deserialize(serde_json::Value::Object(map))
        .map(Some)
        .map_err(|e| D::Error::custom(format!("{}: {}", e.path(), e.inner())))
}

/// A plan's limits, as stored: `null` = no plan-specific value (the instance setting where there is one,
/// otherwise unlimited).
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(example = json!({"concurrent_backtests": 2, "backtests_per_day": 50, "candles_per_backtest": null,
    "active_paper_runs": 1, "strategies": 20, "api_requests_per_minute": 120, "history_days": 365,
    "export_rows": 100000, "optimisation_trials": null}))]
pub struct LimitsOut {
    pub concurrent_backtests: Option<i64>,
    pub backtests_per_day: Option<i64>,
    pub candles_per_backtest: Option<i64>,
    pub active_paper_runs: Option<i64>,
    pub strategies: Option<i64>,
    pub api_requests_per_minute: Option<i64>,
    pub history_days: Option<i64>,
    pub export_rows: Option<i64>,
    pub optimisation_trials: Option<i64>,
}

impl From<&LimitValues> for LimitsOut {
    fn from(v: &LimitValues) -> Self {
        let g = |l| v.get(&l).copied();
        Self {
            concurrent_backtests: g(Limit::ConcurrentBacktests),
            backtests_per_day: g(Limit::BacktestsPerDay),
            candles_per_backtest: g(Limit::CandlesPerBacktest),
            active_paper_runs: g(Limit::ActivePaperRuns),
            strategies: g(Limit::Strategies),
            api_requests_per_minute: g(Limit::ApiRequestsPerMinute),
            history_days: g(Limit::HistoryDays),
            export_rows: g(Limit::ExportRows),
            optimisation_trials: g(Limit::OptimisationTrials),
        }
    }
}

/// Limit values to set: a number sets the value, `null` removes it, an absent limit is unchanged (on a plan)
/// or not overridden (on an assignment).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"concurrent_backtests": 2, "strategies": 20, "history_days": null}))]
pub struct LimitsIn {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1000)]
    pub concurrent_backtests: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000)]
    pub backtests_per_day: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1000, maximum = 100_000_000)]
    pub candles_per_backtest: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10_000)]
    pub active_paper_runs: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000)]
    pub strategies: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000)]
    pub api_requests_per_minute: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 36_500)]
    pub history_days: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000)]
    pub export_rows: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10_000_000)]
    pub optimisation_trials: Option<Option<i64>>,
}

impl LimitsIn {
    /// The changes as the actions take them (name → value or `null`).
    pub fn changes(&self) -> BTreeMap<String, Option<serde_json::Value>> {
        [
            (Limit::ConcurrentBacktests, self.concurrent_backtests),
            (Limit::BacktestsPerDay, self.backtests_per_day),
            (Limit::CandlesPerBacktest, self.candles_per_backtest),
            (Limit::ActivePaperRuns, self.active_paper_runs),
            (Limit::Strategies, self.strategies),
            (Limit::ApiRequestsPerMinute, self.api_requests_per_minute),
            (Limit::HistoryDays, self.history_days),
            (Limit::ExportRows, self.export_rows),
            (Limit::OptimisationTrials, self.optimisation_trials),
        ]
        .into_iter()
        .filter_map(|(l, v)| v.map(|v| (l.key().to_owned(), v.map(serde_json::Value::from))))
        .collect()
    }
}

/// A plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanOut {
    pub id: Uuid,
    #[schema(example = "pro")]
    pub slug: String,
    #[schema(example = "Pro")]
    pub name: String,
    pub description: String,
    /// The price in minor units of `currency` (e.g. cents), per `billing_period`.
    #[schema(example = 1900)]
    pub price_minor: i64,
    /// ISO 4217 code.
    #[schema(example = "USD")]
    pub currency: String,
    /// `month` or `year`.
    #[schema(example = "month")]
    pub billing_period: String,
    pub trial_days: i32,
    /// The plan of every user without an assignment (exactly one plan is the default).
    pub is_default: bool,
    /// Archived plans keep their users but cannot be assigned anew.
    pub archived: bool,
    pub limits: LimitsOut,
    /// Users assigned this plan explicitly (0 in a user's own view).
    pub users: i64,
    /// The payment provider's price id a checkout for this plan buys (docs/billing.md); absent: not for sale.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "price_1PqXyZAbCdEf")]
    pub provider_price_id: Option<String>,
}

impl From<&Plan> for PlanOut {
    fn from(p: &Plan) -> Self {
        Self {
            id: p.id,
            slug: p.slug.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            price_minor: p.price_minor,
            currency: p.currency.clone(),
            billing_period: p.billing_period.clone(),
            trial_days: p.trial_days,
            is_default: p.is_default,
            archived: p.archived,
            limits: LimitsOut::from(&p.limits),
            users: p.users,
            provider_price_id: p.provider_price_id.clone(),
        }
    }
}

/// Every plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanList {
    pub plans: Vec<PlanOut>,
}

/// `POST /api/v1/admin/plans`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slug": "pro", "name": "Pro", "price_minor": 1900, "currency": "USD",
    "billing_period": "month", "trial_days": 14, "limits": {"concurrent_backtests": 5, "strategies": 100}}))]
pub struct NewPlan {
    /// Lowercase letters, digits and dashes; unique.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$", max_length = 40)]
    pub slug: String,
    #[schema(min_length = 1, max_length = 80)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100_000_000_000_i64)]
    pub price_minor: Option<i64>,
    #[serde(default)]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// `month` (default) or `year`.
    #[serde(default)]
    #[schema(pattern = "^(month|year)$")]
    pub billing_period: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 365)]
    pub trial_days: Option<i64>,
    /// Make this the default plan (the previous default stops being it).
    #[serde(default)]
    pub is_default: Option<bool>,
    #[serde(default, deserialize_with = "limits_object")]
    pub limits: Option<LimitsIn>,
    /// The payment provider's price id (Stripe `price_…`) a checkout for this plan buys; one plan per price.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_]{1,100}$")]
    pub provider_price_id: Option<String>,
}

impl From<&NewPlan> for PlanInput {
    fn from(n: &NewPlan) -> Self {
        Self {
            slug: Some(n.slug.clone()),
            name: Some(n.name.clone()),
            description: n.description.clone(),
            price_minor: n.price_minor,
            currency: n.currency.clone(),
            billing_period: n.billing_period.clone(),
            trial_days: n.trial_days,
            is_default: n.is_default,
            archived: None,
            provider_price_id: n.provider_price_id.clone(),
            limits: n.limits.as_ref().map(LimitsIn::changes).unwrap_or_default(),
        }
    }
}

/// `PATCH /api/v1/admin/plans/{id}`: the fields to change (absent = unchanged; in `limits`, `null` removes a
/// value).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"limits": {"concurrent_backtests": 1}, "archived": false}))]
pub struct PlanPatch {
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$", max_length = 40)]
    pub slug: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 80)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100_000_000_000_i64)]
    pub price_minor: Option<i64>,
    #[serde(default)]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    #[serde(default)]
    #[schema(pattern = "^(month|year)$")]
    pub billing_period: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 365)]
    pub trial_days: Option<i64>,
    /// `true` makes this the default plan; `false` is refused on the default plan (make another one the
    /// default instead).
    #[serde(default)]
    pub is_default: Option<bool>,
    /// Archive (`true`) or restore (`false`); the default plan cannot be archived. Plans are never deleted.
    #[serde(default)]
    pub archived: Option<bool>,
    #[serde(default, deserialize_with = "limits_object")]
    pub limits: Option<LimitsIn>,
    /// The payment provider's price id; an empty string removes it (the plan is then not for sale).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_]{0,100}$")]
    pub provider_price_id: Option<String>,
}

impl From<&PlanPatch> for PlanInput {
    fn from(n: &PlanPatch) -> Self {
        Self {
            slug: n.slug.clone(),
            name: n.name.clone(),
            description: n.description.clone(),
            price_minor: n.price_minor,
            currency: n.currency.clone(),
            billing_period: n.billing_period.clone(),
            trial_days: n.trial_days,
            is_default: n.is_default,
            archived: n.archived,
            provider_price_id: n.provider_price_id.clone(),
            limits: n.limits.as_ref().map(LimitsIn::changes).unwrap_or_default(),
        }
    }
}

/// `PUT /api/v1/admin/users/{id}/plan`: the user's plan and overrides (replacing the previous assignment).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"plan": "pro", "overrides": {"concurrent_backtests": 10}, "reason": "conference comp",
    "ends_at": "2030-01-01T00:00:00Z"}))]
pub struct AssignPlan {
    /// The plan's slug or id; absent or `null` = the default plan.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub plan: Option<String>,
    /// Per-user values over the plan's (a comp); absent limits are not overridden.
    #[serde(default, deserialize_with = "limits_object")]
    pub overrides: Option<LimitsIn>,
    /// Why (kept in the audit trail).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
    /// When the assignment ends (the user is back on the default plan then); must be in the future.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
}

impl From<&AssignPlan> for Assignment {
    fn from(a: &AssignPlan) -> Self {
        Self {
            plan: a.plan.clone(),
            overrides: a
                .overrides
                .as_ref()
                .map(LimitsIn::changes)
                .unwrap_or_default(),
            reason: a.reason.clone(),
            ends_at: a.ends_at,
        }
    }
}

/// One limit of a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitUsage {
    /// The limit's name, e.g. `concurrent_backtests`.
    #[schema(example = "concurrent_backtests")]
    pub limit: String,
    #[schema(example = "concurrent backtests")]
    pub label: String,
    /// The effective value; `null` = unlimited.
    pub value: Option<i64>,
    /// Where the value comes from: `override`, `plan`, `instance` (the instance setting) or `unlimited`.
    #[schema(example = "plan")]
    pub source: String,
    /// The current usage, for limits that count something (`concurrent_backtests`, `backtests_per_day`,
    /// `strategies`); `null` for per-request limits.
    pub usage: Option<i64>,
}

impl From<&LimitRow> for LimitUsage {
    fn from(r: &LimitRow) -> Self {
        Self {
            limit: r.limit.key().to_owned(),
            label: r.label.to_owned(),
            value: r.value,
            source: serde_json::to_value(r.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            usage: r.usage,
        }
    }
}

/// A user's plan, effective limits and usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPlanOut {
    pub user_id: Uuid,
    pub plan: PlanOut,
    pub limits: Vec<LimitUsage>,
    /// The user's own values over the plan's.
    pub overrides: LimitsOut,
    /// Why the plan was assigned (admins' note), if it was.
    pub reason: Option<String>,
    /// When the assignment ends, if it does.
    pub ends_at: Option<DateTime<Utc>>,
    /// The limits the user is over after a plan change (`active_paper_runs`, `strategies`), with the end of
    /// each grace period and, once it ended, what is restricted (docs/plans.md, "Over your plan's limits").
    pub overages: Vec<OverageOut>,
}

/// A limit the user is over after a plan change.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverageOut {
    pub id: Uuid,
    /// `active_paper_runs` or `strategies`.
    #[schema(example = "active_paper_runs")]
    pub limit: String,
    #[schema(example = "active paper runs")]
    pub label: String,
    /// The usage and the limit's value as last checked.
    pub usage: i64,
    pub allowed: i64,
    /// The plan's name.
    pub plan: String,
    pub started_at: DateTime<Utc>,
    /// When the excess becomes (or became) read-only.
    pub grace_ends_at: DateTime<Utc>,
    /// `grace` (nothing restricted yet) or `enforced` (the excess is read-only).
    #[schema(example = "grace")]
    pub state: String,
    /// When it became read-only; absent during the grace period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforced_at: Option<DateTime<Utc>>,
    /// `enforced`: the runs (reduce-only) or strategies (read-only) it restricts, newest first.
    pub restricted: Vec<RestrictedOut>,
}

/// A run or strategy an overage restricts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestrictedOut {
    /// The paper run's or the strategy's id.
    pub id: Uuid,
    /// `paper_run` or `strategy`.
    #[schema(example = "paper_run")]
    pub kind: String,
    pub name: String,
}

impl From<&backend::plans::overage::Overage> for OverageOut {
    fn from(o: &backend::plans::overage::Overage) -> Self {
        let kind = if o.limit == Limit::ActivePaperRuns {
            "paper_run"
        } else {
            "strategy"
        };
        Self {
            id: o.id,
            limit: o.limit.key().to_owned(),
            label: o.label.clone(),
            usage: o.usage,
            allowed: o.allowed,
            plan: o.plan.clone(),
            started_at: o.started_at,
            grace_ends_at: o.grace_ends_at,
            state: if o.enforced_at.is_some() {
                "enforced"
            } else {
                "grace"
            }
            .to_owned(),
            enforced_at: o.enforced_at,
            restricted: o
                .restricted
                .iter()
                .map(|r| RestrictedOut {
                    id: r.id,
                    kind: kind.to_owned(),
                    name: r.name.clone(),
                })
                .collect(),
        }
    }
}

impl From<&UserPlan> for UserPlanOut {
    fn from(u: &UserPlan) -> Self {
        Self {
            user_id: u.user_id,
            plan: PlanOut::from(&u.plan),
            limits: u.limits.iter().map(LimitUsage::from).collect(),
            overrides: LimitsOut::from(&u.overrides),
            reason: u.reason.clone(),
            ends_at: u.ends_at,
            overages: u.overages.iter().map(OverageOut::from).collect(),
        }
    }
}
