//! `/api/v1/me/plan` and the admin plan routes (docs/plans.md): a trader's plan, limits and usage; admins list,
//! create, edit and archive plans and assign a plan or overrides to a user. The actions of
//! `backend::plans::actions` decide permissions (admins only for `/admin`) and write the audit entries; each
//! handler parses, calls one and maps the result.

pub mod dto;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use backend::plans::actions;
use uuid::Uuid;

use self::dto::{AssignPlan, NewPlan, PlanList, PlanOut, PlanPatch, UserPlanOut};
use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiJson, ApiPath},
    routes::openapi::ErrorBody,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me/plan", get(my_plan))
        .route("/api/v1/admin/plans", get(list_plans).post(create_plan))
        .route("/api/v1/admin/plans/{id}", get(get_plan).patch(update_plan))
        .route(
            "/api/v1/admin/users/{id}/plan",
            get(get_user_plan).put(assign_user_plan),
        )
}

/// `GET /api/v1/me/plan`: the token's user's plan, effective limits and usage, and the limits they are over
/// after a plan change (`overages`: the grace period's end and, once it ended, the restricted runs or
/// strategies).
#[utoipa::path(
    get,
    path = "/api/v1/me/plan",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The plan, each limit with its value, source and usage", body = UserPlanOut),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn my_plan(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<UserPlanOut>> {
    let p = actions::mine(&actor, &state.ctx).await?;
    Ok(Json(UserPlanOut::from(&p)))
}

/// `GET /api/v1/admin/plans`: every plan, archived ones last (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/plans",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every plan", body = PlanList),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list_plans(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<PlanList>> {
    let plans = actions::list(&actor, &state.ctx).await?;
    Ok(Json(PlanList {
        plans: plans.iter().map(PlanOut::from).collect(),
    }))
}

/// `POST /api/v1/admin/plans`: creates a plan (admins only, read-write token); audited as `plan_created`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/plans",
    tag = "admin",
    security(("bearer" = [])),
    request_body = NewPlan,
    responses(
        (status = 201, description = "Created (Location: the plan)", body = PlanOut),
        (status = 400, description = "`invalid_input` naming the field (a slug in use, a value out of bounds), or a malformed body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the instance has as many plans as it may keep", body = ErrorBody),
    )
)]
pub async fn create_plan(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<NewPlan>,
) -> ApiResult<Response> {
    let plan = actions::create(&actor, &state.ctx, &(&body).into()).await?;
    let mut resp = (StatusCode::CREATED, Json(PlanOut::from(&plan))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/admin/plans/{}", plan.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET /api/v1/admin/plans/{id}`: one plan (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/plans/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Plan id")),
    responses(
        (status = 200, description = "The plan", body = PlanOut),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such plan", body = ErrorBody),
    )
)]
pub async fn get_plan(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<PlanOut>> {
    Ok(Json(PlanOut::from(
        &actions::get(&actor, &state.ctx, id).await?,
    )))
}

/// `PATCH /api/v1/admin/plans/{id}`: changes a plan, archives or restores it, or makes it the default (admins
/// only, read-write token); audited as `plan_updated`. Plans are never deleted; lowering limits deletes no data.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/plans/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Plan id")),
    request_body = PlanPatch,
    responses(
        (status = 200, description = "The plan as changed", body = PlanOut),
        (status = 400, description = "`invalid_input` naming the field (a slug in use, archiving or un-defaulting the default plan, a value out of bounds), or a malformed body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such plan", body = ErrorBody),
    )
)]
pub async fn update_plan(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PlanPatch>,
) -> ApiResult<Json<PlanOut>> {
    let plan = actions::update(&actor, &state.ctx, id, &(&body).into()).await?;
    Ok(Json(PlanOut::from(&plan)))
}

/// `GET /api/v1/admin/users/{id}/plan`: a user's plan, effective limits and usage (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}/plan",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user's plan, limits and usage, and their open overages", body = UserPlanOut),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn get_user_plan(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<UserPlanOut>> {
    let p = actions::of_user(&actor, &state.ctx, id).await?;
    Ok(Json(UserPlanOut::from(&p)))
}

/// `PUT /api/v1/admin/users/{id}/plan`: gives a user a plan (or the default plan) with per-user overrides, a
/// reason and an optional end, replacing the previous assignment (admins only, read-write token); audited as
/// `plan_assigned`. Nothing of the user's is deleted when the new limits are lower: a user left over
/// `active_paper_runs` or `strategies` gets a grace period (`overages` in the answer), and one back within them
/// has the restrictions lifted.
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/plan",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = AssignPlan,
    responses(
        (status = 200, description = "The user's plan, limits and usage after the change", body = UserPlanOut),
        (status = 400, description = "`invalid_input` naming the field (`plan` unknown or archived, `overrides.<limit>`, `reason`, `ends_at` not in the future), or a malformed body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn assign_user_plan(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AssignPlan>,
) -> ApiResult<Json<UserPlanOut>> {
    let p = actions::assign(&actor, &state.ctx, id, &(&body).into()).await?;
    Ok(Json(UserPlanOut::from(&p)))
}
