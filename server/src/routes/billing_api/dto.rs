//! The request and response types of the billing API. Absent values are left out of answers (never a `null`
//! id).

use backend::billing::{
    actions::{AdminRow, BillingView, SubscriptionState},
    reconcile::{Overview, Run},
    stripe::Invoice,
    webhook::Handled,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::routes::contract;

/// `POST /api/v1/me/billing/checkout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"plan": "pro"}))]
pub struct CheckoutIn {
    /// The plan's slug or id (a plan with a price id, not archived).
    #[schema(min_length = 1, max_length = 64)]
    pub plan: String,
}

/// A page of the payment provider to send the trader to.
#[derive(Debug, Serialize, ToSchema)]
pub struct UrlOut {
    #[schema(example = "https://checkout.stripe.com/c/pay/cs_test_…")]
    pub url: String,
}

/// The webhook's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    pub received: bool,
    /// What was done: the subscription's state and any plan change, `ignored: …`, or `already processed`.
    #[schema(example = "subscription sub_123: active; plan free → pro")]
    pub outcome: String,
}

impl From<Handled> for WebhookAck {
    fn from(h: Handled) -> Self {
        Self {
            received: true,
            outcome: match h {
                Handled::Processed(o) => o,
                Handled::Duplicate => "already processed".into(),
            },
        }
    }
}

/// A subscription as the provider last reported it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionOut {
    /// The provider customer (`cus_…`).
    pub customer_id: String,
    /// The provider subscription (`sub_…`); absent until a checkout completes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// `trialing`, `active`, `past_due` (payment being retried; the plan is kept), `unpaid` or `canceled` (back
    /// to the default plan), `incomplete`, `incomplete_expired`, `paused`; absent until a checkout completes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "active")]
    pub status: Option<String>,
    /// The plan the subscription's price maps to (slug).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<DateTime<Utc>>,
    /// The subscription ends at `current_period_end` (entitled until then).
    pub cancel_at_period_end: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_end: Option<DateTime<Utc>>,
    /// When this state was read from the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl From<&SubscriptionState> for SubscriptionOut {
    fn from(s: &SubscriptionState) -> Self {
        Self {
            customer_id: s.customer_id.clone(),
            subscription_id: s.subscription_id.clone(),
            status: s.status.clone(),
            plan: s.plan_slug.clone(),
            plan_name: s.plan_name.clone(),
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            trial_end: s.trial_end,
            observed_at: s.observed_at,
            updated_at: s.updated_at,
        }
    }
}

/// An invoice from the provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Minor units of `currency`.
    pub amount_due: i64,
    pub amount_paid: i64,
    #[schema(example = "usd")]
    pub currency: String,
    pub created: DateTime<Utc>,
    /// The provider's page of the invoice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl From<&Invoice> for InvoiceOut {
    fn from(i: &Invoice) -> Self {
        Self {
            id: i.id.clone(),
            number: i.number.clone(),
            status: i.status.clone(),
            amount_due: i.amount_due,
            amount_paid: i.amount_paid,
            currency: i.currency.clone(),
            created: DateTime::from_timestamp(i.created, 0).unwrap_or_default(),
            url: i.hosted_invoice_url.clone(),
        }
    }
}

/// `GET /api/v1/me/billing`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingOut {
    /// Whether this instance takes payments (`PAYMENT_PROVIDER`); when not, plans are given by administrators.
    pub enabled: bool,
    /// Absent until the first checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionOut>,
    /// The latest invoices, newest first (at most 12).
    pub invoices: Vec<InvoiceOut>,
    /// The provider could not be asked for the invoices just now.
    pub invoices_unavailable: bool,
}

impl From<&BillingView> for BillingOut {
    fn from(v: &BillingView) -> Self {
        Self {
            enabled: v.enabled,
            subscription: v.subscription.as_ref().map(Into::into),
            invoices: v.invoices.iter().map(Into::into).collect(),
            invoices_unavailable: v.invoices_unavailable,
        }
    }
}

/// One user's subscription (admin list).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSubscriptionOut {
    pub user_id: Uuid,
    pub email: String,
    #[serde(flatten)]
    pub subscription: SubscriptionOut,
}

impl From<&AdminRow> for AdminSubscriptionOut {
    fn from(r: &AdminRow) -> Self {
        Self {
            user_id: r.state.user_id,
            email: r.email.clone(),
            subscription: (&r.state).into(),
        }
    }
}

/// `GET /api/v1/admin/subscriptions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSubscriptions {
    pub subscriptions: Vec<AdminSubscriptionOut>,
}

/// `POST /api/v1/admin/billing/reconcile`: the queued run's job.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileQueued {
    pub job_id: Uuid,
}

/// `GET /api/v1/admin/billing/reconcile`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReconcileQuery {
    /// Runs to list, newest first (1–100, default 10).
    #[serde(default, deserialize_with = "contract::de_range::<_, 1, 100>")]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// One reconciliation run with the payment provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileRunOut {
    pub run_id: Uuid,
    /// The job that ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    /// `schedule` or `admin`.
    #[schema(example = "schedule")]
    pub trigger: String,
    /// The administrator who asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `ok`, `partial` (stopped early or some subscriptions failed: the next run continues),
    /// `failed` (nothing could be read) or `abandoned` (its worker stopped; the next run continued).
    #[schema(example = "ok")]
    pub outcome: String,
    /// The provider's events created in `[events_from, events_to]` are listed.
    pub events_from: DateTime<Utc>,
    pub events_to: DateTime<Utc>,
    /// Events created up to this time are left for the next run (absent once all were listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_resume: Option<DateTime<Utc>>,
    /// Pages of up to 100 events read.
    pub pages: i32,
    pub events_seen: i32,
    /// Events processed by this run (their webhook never arrived).
    pub events_processed: i32,
    /// Events processed before (by their webhook or an earlier run): nothing done.
    pub events_duplicate: i32,
    /// Subscriptions read from the provider and stored.
    pub subscriptions_synced: i32,
    pub subscriptions_failed: i32,
    /// Up to 20 errors, each naming what failed.
    pub errors: Vec<String>,
}

impl From<&Run> for ReconcileRunOut {
    fn from(r: &Run) -> Self {
        Self {
            run_id: r.run_id,
            job_id: r.job_id,
            trigger: r.trigger.clone(),
            requested_by: r.requested_by,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome.clone(),
            events_from: r.events_from,
            events_to: r.events_to,
            events_resume: r.events_resume,
            pages: r.pages,
            events_seen: r.events_seen,
            events_processed: r.events_processed,
            events_duplicate: r.events_duplicate,
            subscriptions_synced: r.subscriptions_synced,
            subscriptions_failed: r.subscriptions_failed,
            errors: r.errors.clone(),
        }
    }
}

/// `GET /api/v1/admin/billing/reconcile`: the newest runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileRuns {
    /// A payment provider is configured (`PAYMENT_PROVIDER=stripe`).
    pub enabled: bool,
    /// `BILLING_RECONCILE_INTERVAL_SECS` (0: only when an administrator asks).
    pub interval_secs: u64,
    /// A run is queued or running now.
    pub pending: bool,
    pub runs: Vec<ReconcileRunOut>,
}

impl From<&Overview> for ReconcileRuns {
    fn from(o: &Overview) -> Self {
        Self {
            enabled: o.enabled,
            interval_secs: o.interval_secs,
            pending: o.pending,
            runs: o.runs.iter().map(Into::into).collect(),
        }
    }
}
