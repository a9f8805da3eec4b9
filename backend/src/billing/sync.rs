//! Storing a subscription read from the provider, and what follows from it: the user's plan, the audit entry
//! and the notification. Runs inside the caller's transaction (the webhook's, which also records the event).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{ENDED, entitled, stripe::Subscription};
use crate::{
    Actor, Ctx, Surface,
    error::Result,
    notify::{
        self, Emitted,
        event::{BillingPlanChanged, Event},
    },
    plans::{self, actions::Assignment},
};

/// What storing a subscription did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// The user whose subscription it is (`None`: a customer Vortex did not create).
    pub user: Option<Uuid>,
    /// Words for `billing_event.outcome`.
    pub outcome: String,
    /// The name of the plan the subscription's price maps to (for notifications).
    pub plan_name: Option<String>,
    pub emitted: Vec<Emitted>,
}

/// The actor billing changes are made and audited as.
pub(crate) fn system() -> Actor {
    Actor::system(Surface::Api)
}

/// Stores `sub` (read from the provider at `observed_at`) for the customer's user and applies its entitlement.
/// `change_id` names the change in notifications (the event id, or the sync's).
pub(crate) async fn apply(
    ctx: &Ctx,
    tx: &mut PgConnection,
    sub: &Subscription,
    observed_at: DateTime<Utc>,
    change_id: &str,
) -> Result<Applied> {
    let Some(row) = sqlx::query!(
        r#"select user_id, subscription_id, status, plan_id, observed_at from subscription
           where customer_id = $1 for update"#,
        sub.customer,
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        tracing::warn!(customer = %sub.customer, "subscription of a customer Vortex did not create; ignored");
        return Ok(Applied {
            outcome: "ignored: unknown customer".into(),
            ..Applied::default()
        });
    };
    let user = row.user_id;
    if row.observed_at.is_some_and(|t| t > observed_at) {
        return Ok(Applied {
            user: Some(user),
            outcome: "ignored: a newer state is stored".into(),
            ..Applied::default()
        });
    }
    let stored_live = row.status.as_deref().is_some_and(entitled);
    if row.subscription_id.as_deref().is_some_and(|s| s != sub.id)
        && stored_live
        && !entitled(&sub.status)
    {
        // One subscription per customer: an old or abandoned one does not replace the live one.
        return Ok(Applied {
            user: Some(user),
            outcome: format!(
                "ignored: {} is not the user's live subscription",
                clip(&sub.id)
            ),
            ..Applied::default()
        });
    }
    let plan = match sub.price_id() {
        Some(price) => sqlx::query!(
            "select plan_id, name, archived_at is not null as \"archived!\" from plan where provider_price_id = $1",
            price
        )
        .fetch_optional(&mut *tx)
        .await?,
        None => None,
    };
    if plan.is_none() {
        tracing::warn!(price = ?sub.price_id(), "subscription price matches no plan's provider_price_id");
    }
    sqlx::query!(
        r#"update subscription set subscription_id = $2, status = $3, plan_id = $4, price_id = $5,
               current_period_end = $6, cancel_at_period_end = $7, trial_end = $8, observed_at = $9
           where user_id = $1"#,
        user,
        sub.id,
        sub.status,
        plan.as_ref().map(|p| p.plan_id),
        sub.price_id(),
        sub.period_end(),
        sub.cancel_at_period_end,
        sub.trial_end(),
        observed_at,
    )
    .execute(&mut *tx)
    .await?;
    let actor = system();
    let status_changed = row.status.as_deref() != Some(sub.status.as_str())
        || row.subscription_id.as_deref() != Some(sub.id.as_str());
    if status_changed {
        actor
            .audit(
                &mut *tx,
                "billing_subscription_changed",
                Some(user),
                serde_json::json!({
                    "subscription_id": sub.id, "before": row.status, "after": sub.status,
                    "price_id": sub.price_id(), "plan_id": plan.as_ref().map(|p| p.plan_id),
                    "cancel_at_period_end": sub.cancel_at_period_end, "change": change_id,
                }),
            )
            .await?;
    }
    let mut out = Applied {
        user: Some(user),
        outcome: format!("subscription {}: {}", clip(&sub.id), sub.status),
        plan_name: plan.as_ref().map(|p| p.name.clone()),
        emitted: Vec::new(),
    };
    // The user's current plan and explicit assignment (to keep overrides, and to downgrade only what billing gave).
    let current = plans::limits_in(&mut *tx, &ctx.settings, user).await?;
    let assigned = sqlx::query!(
        "select plan_id, overrides from user_plan where user_id = $1 and (ends_at is null or ends_at > now())",
        user
    )
    .fetch_optional(&mut *tx)
    .await?;
    let overrides = assigned
        .as_ref()
        .map(|a| {
            plans::parse_values(&a.overrides)
                .into_iter()
                .map(|(l, v)| (l.key().to_owned(), Some(serde_json::Value::from(v))))
                .collect()
        })
        .unwrap_or_default();
    let target: Option<Option<Uuid>> = if entitled(&sub.status) {
        match &plan {
            Some(p) if p.plan_id != current.plan.id && !p.archived => Some(Some(p.plan_id)),
            _ => None,
        }
    } else if ENDED.contains(&sub.status.as_str()) {
        // Back to the default plan, but only from the plan billing gave (an administrator's comp stays).
        let billed = [row.plan_id, plan.as_ref().map(|p| p.plan_id)];
        match assigned.as_ref().and_then(|a| a.plan_id) {
            Some(p) if billed.contains(&Some(p)) => Some(None),
            _ => None,
        }
    } else {
        None
    };
    if let Some(to) = target {
        let (after, over_limit) = plans::actions::assign_in(
            &actor,
            ctx,
            &mut *tx,
            user,
            &Assignment {
                plan: to.map(|id| id.to_string()),
                overrides,
                reason: Some(format!("billing: subscription {}", sub.status)),
                ends_at: None,
            },
        )
        .await?;
        out.emitted.extend(over_limit);
        if after.plan.id != current.plan.id {
            out.outcome.push_str(&format!(
                "; plan {} → {}",
                current.plan.slug, after.plan.slug
            ));
            let e = notify::emit(
                &mut *tx,
                &ctx.jobs,
                &ctx.clock,
                &Event::BillingPlanChanged(BillingPlanChanged {
                    user_id: user,
                    from: current.plan.name.clone(),
                    to: after.plan.name.clone(),
                    status: sub.status.clone(),
                    effective_at: Utc::now(),
                    change_id: change_id.to_owned(),
                }),
            )
            .await?;
            out.emitted.push(e);
        }
    }
    Ok(out)
}

/// An id cut for outcome text.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}
