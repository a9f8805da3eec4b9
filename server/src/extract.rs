//! Authentication and authorization extractors: the one place that decides who a request is.
//!
//! * `MaybeUser` / [`SignedIn`]: browser pages and forms, from the session cookie only.
//! * `ApiUser` / [`ApiActor`]: the REST API, from `Authorization: Bearer vxt_…` only; what the caller may do
//!   is decided by the backend's actions it is passed to.
//!
//! * [`ApiJson`] / [`ApiPath`] / [`ApiQuery`]: the REST API's input, refused as problems (`crate::error`).
//!
//! A database error while authenticating is a 503, never an anonymous or allowed request (fail closed, AC4).

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, OptionalFromRequest, OptionalFromRequestParts, Path, Request,
    },
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use backend::{
    Actor, Surface,
    auth::{AuthUser, RequestMeta, api_token, session},
    web::ClientIp,
};
use serde::de::DeserializeOwned;

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
struct MaybeUser(Option<AuthUser>);

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
                    backend::error_tracking::set_user(u.user_id);
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
struct ApiUser(AuthUser);

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
            // The plan's API requests per minute (cached in-process; see backend::plans).
            backend::plans::api_rate_for(ctx, user.user_id).await,
        )
        .await
        {
            return Err(ApiError::RateLimited(wait));
        }
        backend::error_tracking::set_user(user.user_id);
        Ok(ApiUser(user))
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

/// Whether the body is declared as JSON (`application/json` or a `+json` type).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The REST API's JSON body: `application/json` (else 415), within the body limit (else 413), and a JSON
/// **object** (an array or a scalar is refused even where serde would read a struct from a sequence), read into
/// `T` strictly (unknown fields and wrong types are 400 `bad_request` naming the field).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as application/json".into(),
            ));
        }
        let bytes = body_bytes(req, state).await?;
        json_object(&bytes).map(ApiJson)
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(e.body_text())
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })
}

/// Reads a JSON object into `T` (see [`ApiJson`]).
fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    integral_numbers(&mut value);
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    serde_path_to_error::deserialize(value)
        .map_err(|e| refusal(&e.path().to_string(), &e.inner().to_string()))
}

/// An optional JSON body: none at all, whitespace, or JSON `null` is `None`; anything else is read as
/// [`ApiJson`] with its rules (type, size, an object, the fields).
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = body_bytes(req, state).await?;
        let text = bytes.trim_ascii();
        if text.is_empty() || text == b"null" {
            return Ok(None);
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as application/json".into(),
            ));
        }
        json_object(text).map(|v| Some(ApiJson(v)))
    }
}

/// A body or query string that did not read into its type: 400 naming the field, `invalid_input` when a
/// well-formed value broke a rule of `crate::routes::contract`, else `bad_request`.
fn refusal(path: &str, message: &str) -> ApiError {
    let (code, message) = crate::routes::contract::split_rule(message);
    if path.is_empty() || path == "." {
        return ApiError::Detailed {
            status: StatusCode::BAD_REQUEST,
            code,
            message,
            field: None,
            problems: None,
        };
    }
    ApiError::Detailed {
        status: StatusCode::BAD_REQUEST,
        code,
        message: format!("{path}: {message}"),
        field: Some(path.to_owned()),
        problems: None,
    }
}

/// JSON Schema counts `3.0` as an integer, so the API reads it as one: every whole-valued float (within ±2⁵³)
/// becomes an integer before the body is read into its type (a float field reads an integer as before).
fn integral_numbers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| !n.is_i64() && !n.is_u64())
                && f.fract() == 0.0
                && f.abs() <= 9_007_199_254_740_992.0
            {
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *v = Value::from(i);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_numbers),
        Value::Object(o) => o.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Path parameters whose rejections (e.g. an id that is not a UUID) are the API's 400 problem.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match <Path<T> as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(e @ axum::extract::rejection::PathRejection::FailedToDeserializePathParams(_)) => {
                Err(ApiError::BadRequest(e.body_text()))
            }
            Err(e) => Err(ApiError::Internal(anyhow::anyhow!("path parameters: {e}"))),
        }
    }
}

/// A query string whose rejections (wrong types, bad UUIDs) are the API's 400 problem.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| refusal(&e.path().to_string(), &e.inner().to_string()))
    }
}
