//! Billing (docs/billing.md): the payment provider's webhook (`POST /api/v1/billing/webhook`: no session, no
//! token, its `Stripe-Signature` is the authority, exempt from CSRF like every `/api/v1/` path), a trader's
//! billing (`/api/v1/me/billing`: state and invoices, checkout, portal), the admin list of subscriptions and
//! the reconciliation with the provider (`/api/v1/admin/billing/reconcile`).
//! The actions of `backend::billing` decide everything; each handler parses, calls one and maps the result.

pub mod dto;

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use backend::billing::{actions, reconcile, webhook};

use self::dto::{
    AdminSubscriptions, BillingOut, CheckoutIn, ReconcileQuery, ReconcileQueued, ReconcileRuns,
    UrlOut, WebhookAck,
};
use crate::{
    error::{ApiError, ApiResult},
    extract::{ApiActor, ApiJson, ApiQuery},
    routes::openapi::ErrorBody,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/billing/webhook", post(billing_webhook))
        .route("/api/v1/me/billing", get(my_billing))
        .route("/api/v1/me/billing/checkout", post(billing_checkout))
        .route("/api/v1/me/billing/portal", post(billing_portal))
        .route("/api/v1/admin/subscriptions", get(admin_subscriptions))
        .route(
            "/api/v1/admin/billing/reconcile",
            get(reconcile_runs).post(reconcile_now),
        )
}

/// `POST /api/v1/billing/webhook`: the payment provider's events (Stripe's wire format, signed with
/// `Stripe-Signature`). Each event id is processed once; the subscription it names is fetched from the provider
/// and stored, and the user's plan follows it.
#[utoipa::path(
    post,
    path = "/api/v1/billing/webhook",
    tag = "billing",
    security(()),
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">` (several `v1` during a secret rotation)")),
    request_body(content = Object, content_type = "application/json", description = "A Stripe event: `id`, `type`, `data.object` (at most 256 KiB)"),
    responses(
        (status = 200, description = "Processed, ignored (a type Vortex does not act on) or already processed", body = WebhookAck),
        (status = 400, description = "`invalid_input`: `Stripe-Signature` missing, malformed, older than 300 s or made with no configured secret (nothing changed), or a body that is not an event", body = ErrorBody),
        (status = 404, description = "Billing is off (`PAYMENT_PROVIDER=none`)", body = ErrorBody),
        (status = 413, description = "Body over 256 KiB", body = ErrorBody),
        (status = 503, description = "The provider could not be asked for the subscription; nothing was recorded, so its retry is processed", body = ErrorBody),
    )
)]
pub async fn billing_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<WebhookAck>> {
    let bytes = axum::body::to_bytes(body, webhook::MAX_BODY)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!(
                "a webhook body may have at most {} bytes",
                webhook::MAX_BODY
            ))
        })?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let handled = webhook::receive(&state.ctx, signature, &bytes).await?;
    Ok(Json(WebhookAck::from(handled)))
}

/// `GET /api/v1/me/billing`: whether billing is on, the token user's subscription as the provider last
/// reported it, and their latest invoices.
#[utoipa::path(
    get,
    path = "/api/v1/me/billing",
    tag = "billing",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Billing state and invoices", body = BillingOut),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn my_billing(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<BillingOut>> {
    Ok(Json(BillingOut::from(
        &actions::mine(&actor, &state.ctx).await?,
    )))
}

/// `POST /api/v1/me/billing/checkout`: starts buying a plan; answers the provider's checkout page to send the
/// trader to. The plan changes when the provider reports the subscription (webhook or return to
/// `/account/plan`).
#[utoipa::path(
    post,
    path = "/api/v1/me/billing/checkout",
    tag = "billing",
    security(("bearer" = [])),
    request_body = CheckoutIn,
    responses(
        (status = 200, description = "The checkout page", body = UrlOut),
        (status = 400, description = "`invalid_input` (`plan`): no such plan, archived, or not for sale (no price id)", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "A viewer, a read-only token, or an unconfirmed email address", body = ErrorBody),
        (status = 409, description = "`conflict`: billing is off (`PAYMENT_PROVIDER=none`), or a subscription is live already (use the portal)", body = ErrorBody),
        (status = 503, description = "The payment provider did not answer", body = ErrorBody),
    )
)]
pub async fn billing_checkout(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<CheckoutIn>,
) -> ApiResult<Json<UrlOut>> {
    let url = actions::checkout(&actor, &state.ctx, &body.plan).await?;
    Ok(Json(UrlOut { url }))
}

/// `POST /api/v1/me/billing/portal`: a session of the provider's billing portal (payment method, invoices,
/// change or cancel the subscription).
#[utoipa::path(
    post,
    path = "/api/v1/me/billing/portal",
    tag = "billing",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The portal page", body = UrlOut),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "A viewer or a read-only token", body = ErrorBody),
        (status = 409, description = "`conflict`: billing is off, or no billing account yet (buy a plan first)", body = ErrorBody),
        (status = 503, description = "The payment provider did not answer", body = ErrorBody),
    )
)]
pub async fn billing_portal(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<UrlOut>> {
    let url = actions::portal(&actor, &state.ctx).await?;
    Ok(Json(UrlOut { url }))
}

/// `GET /api/v1/admin/subscriptions`: every user's subscription with the provider's last reported state,
/// newest changes first (at most 500; admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/subscriptions",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Subscriptions", body = AdminSubscriptions),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn admin_subscriptions(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<AdminSubscriptions>> {
    let rows = actions::admin_list(&actor, &state.ctx).await?;
    Ok(Json(AdminSubscriptions {
        subscriptions: rows.iter().map(Into::into).collect(),
    }))
}

/// `POST /api/v1/admin/billing/reconcile`: queues a reconciliation with the payment provider now (events whose
/// webhook never arrived are processed, every live subscription is read and stored; docs/billing.md). Audited
/// as `billing_reconcile_requested`. Its result: `GET` on the same path.
#[utoipa::path(
    post,
    path = "/api/v1/admin/billing/reconcile",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = ReconcileQueued),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 409, description = "`conflict`: billing is off (`PAYMENT_PROVIDER=none`), or a run is queued or running", body = ErrorBody),
    )
)]
pub async fn reconcile_now(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<(StatusCode, Json<ReconcileQueued>)> {
    let job_id = reconcile::request(&actor, &state.ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(ReconcileQueued { job_id })))
}

/// `GET /api/v1/admin/billing/reconcile`: the newest reconciliation runs (what each listed, processed and
/// synced, its errors) and whether one is queued or running.
#[utoipa::path(
    get,
    path = "/api/v1/admin/billing/reconcile",
    tag = "admin",
    security(("bearer" = [])),
    params(ReconcileQuery),
    responses(
        (status = 200, description = "Runs, newest first", body = ReconcileRuns),
        (status = 400, description = "`invalid_input` (`limit`)", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn reconcile_runs(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<ReconcileQuery>,
) -> ApiResult<Json<ReconcileRuns>> {
    let o = reconcile::overview(&actor, &state.ctx, q.limit.unwrap_or(10)).await?;
    Ok(Json(ReconcileRuns::from(&o)))
}
