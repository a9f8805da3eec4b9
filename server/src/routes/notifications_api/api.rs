//! The caller's notifications, webhooks and delivery log. Each handler parses, calls one action of
//! `backend::notify` and maps the result; the actions check permissions (reads: any token; read marks: a
//! read-write token, viewers included; webhooks and replays: a read-write token of a trader with a confirmed
//! address) and write the audit entries.

use axum::{Json, extract::State, http::StatusCode};
use backend::notify::{inapp, log, webhook};
use uuid::Uuid;

use super::dto::{
    CreateWebhook, CreatedWebhook, DeliveriesQuery, DeliveryPage, ListQuery, MarkedRead,
    NotificationOut, NotificationPage, ReadAll, Replayed, Secret, UnreadCount, WebhookList,
    WebhookOut, WebhookTestResult,
};
use crate::{
    error::{ApiError, ApiResult},
    extract::{ApiActor, ApiJson, ApiPath, ApiQuery},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// `GET /api/v1/notifications`: the caller's in-app notifications, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    tag = "notifications",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of notifications, newest first", body = NotificationPage),
        (status = 400, description = "Invalid query (`limit`, `before`, unknown parameter)", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn list_notifications(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<NotificationPage>> {
    let page = inapp::list(
        &state.ctx,
        &actor,
        inapp::ListQuery {
            unread: q.unread.unwrap_or(false),
            before: q.before,
            limit: q.limit,
        },
    )
    .await?;
    Ok(Json(NotificationPage {
        items: page.items.into_iter().map(NotificationOut::from).collect(),
        next_before: page.next_before,
    }))
}

/// `GET /api/v1/notifications/unread-count`.
#[utoipa::path(
    get,
    path = "/api/v1/notifications/unread-count",
    tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many notifications are unread", body = UnreadCount),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn unread_count(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<UnreadCount>> {
    Ok(Json(UnreadCount {
        unread: inapp::unread_count(&state.ctx, &actor).await?,
    }))
}

/// `POST /api/v1/notifications/{id}/read`: marks one notification read (idempotent).
#[utoipa::path(
    post,
    path = "/api/v1/notifications/{id}/read",
    tag = "notifications",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Notification id")),
    responses(
        (status = 204, description = "Read"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such notification of yours", body = ErrorBody),
    )
)]
pub async fn mark_read(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    inapp::mark_read(&state.ctx, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/notifications/read-all`: marks every unread notification read, or those up to `up_to`.
#[utoipa::path(
    post,
    path = "/api/v1/notifications/read-all",
    tag = "notifications",
    security(("bearer" = [])),
    request_body = ReadAll,
    responses(
        (status = 200, description = "How many were marked read", body = MarkedRead),
        (status = 400, description = "`up_to` invalid, malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
    )
)]
pub async fn mark_all_read(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<ReadAll>,
) -> ApiResult<Json<MarkedRead>> {
    let marked = inapp::mark_all_read(&state.ctx, &actor, body.up_to).await?;
    Ok(Json(MarkedRead { marked }))
}

/// `GET /api/v1/notifications/webhooks`: the caller's webhooks (never their URLs).
#[utoipa::path(
    get,
    path = "/api/v1/notifications/webhooks",
    tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's webhooks, oldest first", body = WebhookList),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<WebhookList>> {
    let list = webhook::list(&state.ctx, &actor).await?;
    Ok(Json(WebhookList {
        webhooks: list.into_iter().map(WebhookOut::from).collect(),
    }))
}

/// `POST /api/v1/notifications/webhooks`: adds a destination. A generic one's signing secret is returned
/// this once.
#[utoipa::path(
    post,
    path = "/api/v1/notifications/webhooks",
    tag = "notifications",
    security(("bearer" = [])),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created (`secret` for a generic webhook, shown once)", body = CreatedWebhook),
        (status = 400, description = "`invalid_input` with `field` (`url` refused: not https, private or loopback address; `name`, `kind`, `categories`), malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer; `email_unconfirmed`: confirm your address first", body = ErrorBody),
        (status = 409, description = "`conflict`: a webhook with this name exists; `limit_reached`: as many webhooks as allowed", body = ErrorBody),
    )
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let created = webhook::create(
        &state.ctx,
        &actor,
        webhook::NewWebhook {
            name: body.name.unwrap_or_default(),
            kind: body.kind,
            url: body.url,
            categories: body.categories,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: created.webhook.into(),
            secret: created.secret,
        }),
    ))
}

/// `DELETE /api/v1/notifications/webhooks/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/notifications/webhooks/{id}",
    tag = "notifications",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted (with its deliveries)"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer; `email_unconfirmed`", body = ErrorBody),
        (status = 404, description = "No such webhook of yours", body = ErrorBody),
    )
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    webhook::delete(&state.ctx, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/notifications/webhooks/{id}/test`: sends one signed `system.test` message now and says what
/// the destination answered (at most 5 a minute).
#[utoipa::path(
    post,
    path = "/api/v1/notifications/webhooks/{id}/test",
    tag = "notifications",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Sent; `ok` says whether the destination answered 2xx", body = WebhookTestResult),
        (status = 400, description = "The id is not a UUID; `invalid_input` on `url`: the destination is refused now", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer; `email_unconfirmed`", body = ErrorBody),
        (status = 404, description = "No such webhook of yours", body = ErrorBody),
        (status = 429, description = "More than 5 tests a minute", body = ErrorBody),
    )
)]
pub async fn test_webhook(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WebhookTestResult>> {
    let t = webhook::test(&state.ctx, &actor, id).await?;
    Ok(Json(WebhookTestResult {
        ok: t.ok,
        http_status: t.http_status,
        error: t.error,
    }))
}

/// `POST /api/v1/notifications/webhooks/{id}/enable`: enables a disabled webhook again (vetted again, failure
/// counter reset). Failed deliveries are replayed from the log.
#[utoipa::path(
    post,
    path = "/api/v1/notifications/webhooks/{id}/enable",
    tag = "notifications",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Enabled", body = WebhookOut),
        (status = 400, description = "The id is not a UUID; `invalid_input` on `url`: the destination is refused now", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer; `email_unconfirmed`", body = ErrorBody),
        (status = 404, description = "No such webhook of yours", body = ErrorBody),
    )
)]
pub async fn enable_webhook(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WebhookOut>> {
    webhook::enable(&state.ctx, &actor, id).await?;
    let hook = webhook::list(&state.ctx, &actor)
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or(ApiError::NotFound)?;
    Ok(Json(hook.into()))
}

/// `POST /api/v1/notifications/webhooks/{id}/rotate-secret`: a new signing secret for a generic webhook,
/// shown once; the old one keeps signing too for 24 hours.
#[utoipa::path(
    post,
    path = "/api/v1/notifications/webhooks/{id}/rotate-secret",
    tag = "notifications",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The new secret", body = Secret),
        (status = 400, description = "The id is not a UUID; `invalid_input` on `kind`: Slack and Discord webhooks are not signed", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer; `email_unconfirmed`", body = ErrorBody),
        (status = 404, description = "No such webhook of yours", body = ErrorBody),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Secret>> {
    let secret = webhook::rotate_secret(&state.ctx, &actor, id).await?;
    Ok(Json(Secret { secret }))
}

/// `GET /api/v1/notifications/deliveries`: the caller's delivery log (email and webhook), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/notifications/deliveries",
    tag = "notifications",
    security(("bearer" = [])),
    params(DeliveriesQuery),
    responses(
        (status = 200, description = "A page of the delivery log, newest first", body = DeliveryPage),
        (status = 400, description = "Invalid query (`status`, `before`, `limit`, `webhook`, unknown parameter)", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    Ok(Json(log::mine(&state.ctx, &actor, q.into()).await?.into()))
}

/// `POST /api/v1/notifications/deliveries/{id}/replay`: sends a failed webhook delivery again (same
/// `webhook-id`, a fresh retry budget).
#[utoipa::path(
    post,
    path = "/api/v1/notifications/deliveries/{id}/replay",
    tag = "notifications",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses(
        (status = 202, description = "Queued again", body = Replayed),
        (status = 400, description = "The id is not a UUID; `invalid_input` on `url`: the destination is refused now", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer; `email_unconfirmed`", body = ErrorBody),
        (status = 404, description = "No such delivery of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: not a webhook delivery, not failed, or the webhook is disabled", body = ErrorBody),
    )
)]
pub async fn replay_delivery(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    let r = log::replay(&state.ctx, &actor, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Replayed {
            delivery_id: r.delivery_id,
            job_id: r.job_id,
        }),
    ))
}
