//! Authentication and authorization extractors: the one place that decides who a request is.
//!
//! * [`MaybeUser`] / [`SignedIn`]: browser pages and forms, from the session cookie only.
//! * [`ApiUser`] / [`ApiWriter`] / [`ApiAdmin`]: the REST API, from `Authorization: Bearer vxt_…` only.
//!
//! A database error while authenticating is a 503, never an anonymous or allowed request (fail closed, AC4).

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use backend::{
    Actor, Surface,
    auth::{AuthUser, RequestMeta, api_token, session},
    web::ClientIp,
};

use crate::{error::ApiError, state::AppState};

/// Where the request came from (client IP as resolved by the middleware, user agent).
pub struct Meta(pub RequestMeta);

impl FromRequestParts<AppState> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Meta(request_meta(parts)))
    }
}

pub fn request_meta(parts: &Parts) -> RequestMeta {
    let ip = parts
        .extensions
        .get::<ClientIp>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let ua = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    RequestMeta::new(ip, ua)
}

/// The signed-in browser user, if any.
pub struct MaybeUser(pub Option<AuthUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(MaybeUser(Some(user.clone())));
        }
        let ctx = &state.ctx;
        let Some(token) = session::read_cookie(&parts.headers, session::cookie_name(&ctx.settings))
        else {
            return Ok(MaybeUser(None));
        };
        match session::authenticate(&ctx.db, &ctx.keys, &ctx.settings, token).await {
            Ok(user) => {
                if let Some(u) = &user {
                    parts.extensions.insert(u.clone());
                }
                Ok(MaybeUser(user))
            }
            Err(e) => Err(ApiError::Database(e).into_response()),
        }
    }
}

/// A signed-in browser user; anonymous form posts are sent to the sign-in page.
pub struct SignedIn(pub AuthUser);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match MaybeUser::from_request_parts(parts, state).await? {
            MaybeUser(Some(u)) => Ok(SignedIn(u)),
            MaybeUser(None) => Err(Redirect::to("/signin?error=signin_required").into_response()),
        }
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(MaybeUser::from_request_parts(parts, state)
            .await?
            .0
            .map(SignedIn))
    }
}

/// An API caller authenticated by a bearer token. Cookies are ignored here on purpose.
pub struct ApiUser(pub AuthUser);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let user = api_token::authenticate(&state.ctx.db, secret.trim())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let ctx = &state.ctx;
        if let Some(wait) = backend::redis::rate_limit(
            &ctx.redis,
            &ctx.settings.redis_namespace,
            &format!("api:{}", user.user_id),
            ctx.settings.backtest.api_rate_per_minute,
        )
        .await
        {
            return Err(ApiError::RateLimited(wait));
        }
        Ok(ApiUser(user))
    }
}

/// An API caller allowed to change data (read-write token, not a viewer).
pub struct ApiWriter(pub AuthUser);

impl FromRequestParts<AppState> for ApiWriter {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ApiUser(user) = ApiUser::from_request_parts(parts, state).await?;
        if user.can_write() {
            Ok(ApiWriter(user))
        } else {
            Err(ApiError::Forbidden(
                "this token or account is read-only".into(),
            ))
        }
    }
}

/// An API caller with the admin role.
pub struct ApiAdmin(pub AuthUser);

impl FromRequestParts<AppState> for ApiAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ApiUser(user) = ApiUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(ApiAdmin(user))
        } else {
            Err(ApiError::Forbidden("admins only".into()))
        }
    }
}

pub use crate::error::html_error;

fn request_id(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<backend::web::RequestId>()
        .map(|r| r.0.clone())
}

/// The signed-in browser user as the [`Actor`] of a form post or page script (surface `Web`); anonymous
/// requests are sent to the sign-in page.
pub struct WebActor(pub Actor);

impl FromRequestParts<AppState> for WebActor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let SignedIn(user) =
            <SignedIn as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        Ok(WebActor(Actor::user(
            user,
            Surface::Web,
            request_meta(parts),
            request_id(parts),
        )))
    }
}

/// The browser's actor whether or not someone is signed in (sign-up, sign-in, password reset forms).
pub struct AnyWebActor(pub Actor);

impl FromRequestParts<AppState> for AnyWebActor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let MaybeUser(user) = MaybeUser::from_request_parts(parts, state).await?;
        let (meta, id) = (request_meta(parts), request_id(parts));
        Ok(AnyWebActor(match user {
            Some(u) => Actor::user(u, Surface::Web, meta, id),
            None => Actor::anonymous(Surface::Web, meta, id),
        }))
    }
}

/// A REST API caller (bearer token, per-token rate limit applied) as the [`Actor`] of surface `Api`.
pub struct ApiActor(pub Actor);

impl FromRequestParts<AppState> for ApiActor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ApiUser(user) = ApiUser::from_request_parts(parts, state).await?;
        Ok(ApiActor(Actor::user(
            user,
            Surface::Api,
            request_meta(parts),
            request_id(parts),
        )))
    }
}
