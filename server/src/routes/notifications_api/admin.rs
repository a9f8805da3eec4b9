//! Admin tools: a user's delivery log and a test notification. The actions require an admin.

use axum::{Json, extract::State, http::StatusCode};
use backend::notify::{Channel, admin, log};
use uuid::Uuid;

use super::dto::{DeliveriesQuery, DeliveryPage, SendTest, TestSent};
use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiJson, ApiPath, ApiQuery},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// `GET /api/v1/admin/users/{id}/notification-deliveries`: a user's delivery log (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}/notification-deliveries",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id"), DeliveriesQuery),
    responses(
        (status = 200, description = "A page of the user's delivery log, newest first", body = DeliveryPage),
        (status = 400, description = "The id is not a UUID, or an invalid query", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn user_deliveries(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    Ok(Json(
        log::for_user(&state.ctx, &actor, id, q.into())
            .await?
            .into(),
    ))
}

/// `POST /api/v1/admin/users/{id}/notifications/test`: sends the user a `system.test` notification through
/// the normal pipeline (their preferences and destinations), on one channel or all (admins only).
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/notifications/test",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = SendTest,
    responses(
        (status = 202, description = "Emitted; the deliveries show in the user's log", body = TestSent),
        (status = 400, description = "The id is not a UUID; `channel` invalid, malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`conflict`: the account is disabled", body = ErrorBody),
    )
)]
pub async fn send_test(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SendTest>,
) -> ApiResult<(StatusCode, Json<TestSent>)> {
    let channel = body.channel.as_deref().and_then(Channel::parse);
    let sent = admin::send_test(&state.ctx, &actor, id, channel).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestSent {
            event_id: sent.event_id,
        }),
    ))
}
