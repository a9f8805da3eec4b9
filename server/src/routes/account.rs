//! The account flows as HTML form posts (they work without JavaScript): sign-up, sign-in, sign-out, email
//! verification, password reset and change, profile, sessions and API tokens. Every handler answers with a
//! redirect (Post/Redirect/Get) carrying an `ok=` or `error=` code that the page shows as a message.
//! CSRF is checked by the middleware before any of these run.

use std::time::Duration;

use axum::{
    Form, Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
    routing::post,
};
use backend::{
    auth::{
        self, RequestMeta, Role, Scope, api_token,
        audit::{self, Entry, event},
        csrf,
        email_token::{self, Purpose},
        password, rate_limit, redirect, session,
        signin::{self, Check},
        users,
    },
    mail::{outbox, templates},
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    extract::{Meta, SignedIn, html_error},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(sign_up))
        .route("/auth/signin", post(sign_in))
        .route("/auth/signout", post(sign_out))
        .route("/auth/verify-email", post(verify_email))
        .route("/account/verification", post(resend_verification))
        .route("/auth/forgot-password", post(forgot_password))
        .route("/auth/reset-password", post(reset_password))
        .route("/account/profile", post(update_profile))
        .route("/account/password", post(change_password))
        .route("/account/sessions/{public_id}/revoke", post(revoke_session))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{token_id}/revoke", post(revoke_token))
}

type Result<T = Response, E = Response> = std::result::Result<T, E>;

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "account flow failed");
    html_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The error has been logged. Please try again.",
    )
}

fn db_error(e: sqlx::Error) -> Response {
    if backend::db::is_unavailable(&e) {
        let mut r = html_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "Please try again in a moment.",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        r
    } else {
        internal(e)
    }
}

fn too_many(retry_after: u64) -> Response {
    let minutes = retry_after.div_ceil(60);
    let mut r = html_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!(
            "For your security this is paused. Try again in {minutes} minute(s), or reset your password."
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Every password-hashing slot stayed busy: 503 with `Retry-After` (nothing was checked or changed).
fn busy(b: password::Busy) -> Response {
    let mut r = html_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "Too many password checks are running right now. Please try again in a few seconds.",
    );
    if let Ok(v) = HeaderValue::from_str(&b.retry_after_secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn hash_error(e: password::HashError) -> Response {
    match e {
        password::HashError::Busy(b) => busy(b),
        password::HashError::Internal(e) => internal(e),
    }
}

fn to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

fn link(state: &AppState, path: &str, token: &str) -> String {
    let mut url = state.ctx.settings.public_url.clone();
    url.set_path(path);
    url.set_query(Some(&format!("token={token}")));
    url.to_string()
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Sets a fresh session cookie and a fresh CSRF cookie (new ids at every sign-in and privilege change).
fn session_cookies(state: &AppState, token: &str) -> [(header::HeaderName, String); 2] {
    let s = &state.ctx.settings;
    let csrf_value = auth::random_secret();
    [
        (
            header::SET_COOKIE,
            session::cookie(s, session::cookie_name(s), token, s.session_absolute),
        ),
        (
            header::SET_COOKIE,
            session::cookie(
                s,
                csrf::cookie_name(s),
                &csrf_value,
                Duration::from_secs(12 * 3600),
            ),
        ),
    ]
}

async fn queue_email(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
    user_id: Option<Uuid>,
    to: &str,
    rendered: templates::Rendered,
    request_id: Option<String>,
) -> Result<Uuid> {
    let domain = state.ctx.mailer.message_id_domain();
    let (_, job) = outbox::queue(
        conn,
        &state.ctx.jobs,
        &domain,
        user_id,
        to,
        rendered,
        request_id,
    )
    .await
    .map_err(db_error)?;
    Ok(job)
}

async fn push(state: &AppState, job: Uuid) {
    state.ctx.jobs.push(backend::jobs::DEFAULT_QUEUE, job).await;
}

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

/// `POST /auth/signup`. Answers the same whether or not the address already has an account (no enumeration); an
/// existing owner gets an email about the attempt instead.
async fn sign_up(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(f): Form<SignUpForm>,
) -> Result {
    let db = &state.ctx.db;
    if let Err(retry) = rate_limit::check_signup(db, &meta.ip)
        .await
        .map_err(db_error)?
    {
        return Ok(too_many(retry));
    }
    let email = match users::parse_email(&f.email) {
        Ok(e) => e,
        Err(_) => return Ok(to("/signup?error=email")),
    };
    let Ok(display_name) = users::parse_display_name(&f.display_name) else {
        return Ok(to("/signup?error=display_name"));
    };
    if let Err(p) = password::check_policy(&f.password, &email) {
        return Ok(to(&format!("/signup?error={}", p.code())));
    }
    let hash = password::hash(f.password).await.map_err(hash_error)?;
    let mut tx = db.begin().await.map_err(db_error)?;
    let created = users::insert(&mut tx, &email, &display_name, &hash, Role::Trader)
        .await
        .map_err(db_error)?;
    let rid = request_id(&headers);
    let job = match created {
        Some(user_id) => {
            let token = email_token::create(&mut tx, user_id, Purpose::VerifyEmail)
                .await
                .map_err(db_error)?;
            let rendered =
                templates::verify(&link(&state, "/verify-email", &token)).map_err(internal)?;
            queue_email(&state, &mut tx, Some(user_id), &email, rendered, rid).await?
        }
        None => {
            // Tell the owner, at the address stored for the account (not the spelling just typed).
            let owner = users::find_for_signin(db, &email).await.map_err(db_error)?;
            let (owner_id, owner_email) =
                owner.map_or((None, email.clone()), |(u, _)| (Some(u.user_id), u.email));
            let mut url = state.ctx.settings.public_url.clone();
            url.set_path("/forgot-password");
            let rendered = templates::signup_existing(url.as_str()).map_err(internal)?;
            queue_email(&state, &mut tx, owner_id, &owner_email, rendered, rid).await?
        }
    };
    audit::record(
        &mut tx,
        &meta,
        Entry {
            user_id: created,
            event: event::SIGNUP,
            subject_email: Some(&email),
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    push(&state, job).await;
    Ok(to("/signin?ok=check_email"))
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /auth/signin`. Unknown account and wrong password take the same time and give the same answer.
async fn sign_in(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Form(f): Form<SignInForm>,
) -> Result {
    let ctx = &state.ctx;
    let email = f.email.trim().to_owned();
    if email.is_empty() || email.len() > 254 || f.password.chars().count() > password::MAX_CHARS {
        return Ok(to("/signin?error=invalid"));
    }
    let user = match signin::sign_in(&ctx.db, &email, f.password, &meta)
        .await
        .map_err(db_error)?
    {
        Check::Passed(user) => user,
        Check::Wrong => return Ok(to("/signin?error=invalid")),
        Check::Limited { retry_after_secs } => return Ok(too_many(retry_after_secs)),
        Check::Busy(b) => return Ok(busy(b)),
    };
    let new = session::create(&ctx.db, &ctx.keys, &ctx.settings, user.user_id, &meta)
        .await
        .map_err(internal)?;
    audit::record_now(
        &ctx.db,
        &meta,
        Entry {
            user_id: Some(user.user_id),
            event: event::SIGNIN_SUCCEEDED,
            subject_email: Some(&user.email),
            detail: json!({ "session": session::public_id(&new.session_id) }),
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    Ok((
        AppendHeaders(session_cookies(&state, &new.token)),
        Redirect::to(&redirect::after_signin(&ctx.settings.public_url, &f.next)),
    )
        .into_response())
}

/// `POST /auth/signout`: ends this session at once.
async fn sign_out(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: Option<SignedIn>,
) -> Result {
    let s = &state.ctx.settings;
    if let Some(SignedIn(user)) = user {
        if let Some(sid) = user.session_id() {
            session::revoke(&state.ctx.db, user.user_id, sid)
                .await
                .map_err(db_error)?;
        }
        audit::record_now(
            &state.ctx.db,
            &meta,
            Entry {
                user_id: Some(user.user_id),
                event: event::SIGNOUT,
                ..Entry::default()
            },
        )
        .await
        .map_err(db_error)?;
    }
    Ok((
        AppendHeaders([(
            header::SET_COOKIE,
            session::clear_cookie(s, session::cookie_name(s)),
        )]),
        Redirect::to("/signin?ok=signed_out"),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
}

/// `POST /auth/verify-email` (the emailed link opens a page with a confirm button: GET never changes state).
async fn verify_email(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: Option<SignedIn>,
    Form(f): Form<TokenForm>,
) -> Result {
    let mut tx = state.ctx.db.begin().await.map_err(db_error)?;
    let Some(user_id) = email_token::consume(&mut tx, f.token.trim(), Purpose::VerifyEmail)
        .await
        .map_err(db_error)?
    else {
        return Ok(to("/verify-email?error=invalid_token"));
    };
    users::mark_verified(&mut tx, user_id)
        .await
        .map_err(db_error)?;
    audit::record(
        &mut tx,
        &meta,
        Entry {
            user_id: Some(user_id),
            event: event::EMAIL_VERIFIED,
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(to(if user.is_some() {
        "/account?ok=verified"
    } else {
        "/signin?ok=verified"
    }))
}

/// `POST /account/verification`: sends a new verification link.
async fn resend_verification(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    SignedIn(user): SignedIn,
) -> Result {
    if user.email_verified {
        return Ok(to("/account?ok=verified"));
    }
    if let Err(retry) = rate_limit::check_email_request(&state.ctx.db, &user.email, &meta.ip)
        .await
        .map_err(db_error)?
    {
        return Ok(too_many(retry));
    }
    let mut tx = state.ctx.db.begin().await.map_err(db_error)?;
    let token = email_token::create(&mut tx, user.user_id, Purpose::VerifyEmail)
        .await
        .map_err(db_error)?;
    let rendered = templates::verify(&link(&state, "/verify-email", &token)).map_err(internal)?;
    let job = queue_email(
        &state,
        &mut tx,
        Some(user.user_id),
        &user.email,
        rendered,
        request_id(&headers),
    )
    .await?;
    audit::record(
        &mut tx,
        &meta,
        Entry {
            user_id: Some(user.user_id),
            event: event::VERIFICATION_REQUESTED,
            subject_email: Some(&user.email),
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    push(&state, job).await;
    Ok(to("/account?ok=verification_sent"))
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// `POST /auth/forgot-password`: the same answer whether or not the account exists.
async fn forgot_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(f): Form<ForgotForm>,
) -> Result {
    let db = &state.ctx.db;
    let Ok(email) = users::parse_email(&f.email) else {
        return Ok(to("/forgot-password?error=email"));
    };
    if let Err(retry) = rate_limit::check_email_request(db, &email, &meta.ip)
        .await
        .map_err(db_error)?
    {
        return Ok(too_many(retry));
    }
    let found = users::find_for_signin(db, &email).await.map_err(db_error)?;
    let mut tx = db.begin().await.map_err(db_error)?;
    let mut job = None;
    let mut user_id = None;
    if let Some((user, _)) = found.filter(|(u, _)| !u.disabled) {
        let token = email_token::create(&mut tx, user.user_id, Purpose::ResetPassword)
            .await
            .map_err(db_error)?;
        let rendered =
            templates::reset(&user.display_name, &link(&state, "/reset-password", &token))
                .map_err(internal)?;
        job = Some(
            queue_email(
                &state,
                &mut tx,
                Some(user.user_id),
                &user.email,
                rendered,
                request_id(&headers),
            )
            .await?,
        );
        user_id = Some(user.user_id);
    }
    audit::record(
        &mut tx,
        &meta,
        Entry {
            user_id,
            event: event::PASSWORD_RESET_REQUESTED,
            subject_email: Some(&email),
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    if let Some(job) = job {
        push(&state, job).await;
    }
    Ok(to("/forgot-password?ok=sent"))
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// `POST /auth/reset-password`: single use; ends every session and revokes every API token of the account
/// (whoever had access before the reset keeps none of it), audited and said in the notification mail.
async fn reset_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(f): Form<ResetForm>,
) -> Result {
    let db = &state.ctx.db;
    let token = f.token.trim();
    let Some(user_id) = email_token::peek(db, token, Purpose::ResetPassword)
        .await
        .map_err(db_error)?
    else {
        return Ok(to("/reset-password?error=invalid_token"));
    };
    let Some(user) = users::get(db, user_id).await.map_err(db_error)? else {
        return Ok(to("/reset-password?error=invalid_token"));
    };
    if let Err(p) = password::check_policy(&f.password, &user.email) {
        return Ok(to(&format!(
            "/reset-password?token={token}&error={}",
            p.code()
        )));
    }
    let hash = password::hash(f.password).await.map_err(hash_error)?;
    let mut tx = db.begin().await.map_err(db_error)?;
    if email_token::consume(&mut tx, token, Purpose::ResetPassword)
        .await
        .map_err(db_error)?
        != Some(user_id)
    {
        return Ok(to("/reset-password?error=invalid_token"));
    }
    users::set_password(&mut tx, user_id, &hash)
        .await
        .map_err(db_error)?;
    let ended = session::revoke_all(&mut *tx, user_id, None)
        .await
        .map_err(db_error)?;
    let tokens = api_token::revoke_all(&mut *tx, user_id)
        .await
        .map_err(db_error)?;
    let mut url = state.ctx.settings.public_url.clone();
    url.set_path("/forgot-password");
    let rendered = templates::password_changed(
        &user.display_name,
        url.as_str(),
        templates::PasswordChange {
            reset: true,
            everywhere: true,
            sessions_ended: ended,
            tokens_revoked: tokens,
        },
    )
    .map_err(internal)?;
    let job = queue_email(
        &state,
        &mut tx,
        Some(user_id),
        &user.email,
        rendered,
        request_id(&headers),
    )
    .await?;
    audit::record(
        &mut tx,
        &meta,
        Entry {
            user_id: Some(user_id),
            event: event::PASSWORD_RESET,
            detail: json!({ "sessions_ended": ended, "tokens_revoked": tokens }),
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    push(&state, job).await;
    Ok(to("/signin?ok=password_reset"))
}

#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    time_zone: String,
}

/// `POST /account/profile`: display name and time zone only (nothing else is assignable here).
async fn update_profile(
    State(state): State<AppState>,
    Meta(meta): Meta,
    SignedIn(user): SignedIn,
    Form(f): Form<ProfileForm>,
) -> Result {
    if !user.can_write() {
        return Ok(to("/account?error=read_only"));
    }
    let Ok(name) = users::parse_display_name(&f.display_name) else {
        return Ok(to("/account?error=display_name"));
    };
    let Ok(tz) = users::parse_time_zone(&f.time_zone) else {
        return Ok(to("/account?error=time_zone"));
    };
    users::update_profile(&state.ctx.db, user.user_id, &name, &tz)
        .await
        .map_err(db_error)?;
    audit::record_now(
        &state.ctx.db,
        &meta,
        Entry {
            user_id: Some(user.user_id),
            event: event::PROFILE_UPDATED,
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    Ok(to("/account?ok=profile"))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    sign_out_others: Option<String>,
}

/// `POST /account/password`: needs the current password; rotates this session; optionally ends the others.
async fn change_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    SignedIn(user): SignedIn,
    Form(f): Form<PasswordForm>,
) -> Result {
    let ctx = &state.ctx;
    match signin::confirm_password(
        &ctx.db,
        user.user_id,
        &user.email,
        f.current_password,
        &meta,
        "password_change",
    )
    .await
    .map_err(db_error)?
    {
        Check::Passed(()) => {}
        Check::Wrong => return Ok(to("/account?error=current_password#password")),
        Check::Limited { retry_after_secs } => return Ok(too_many(retry_after_secs)),
        Check::Busy(b) => return Ok(busy(b)),
    }
    if let Err(p) = password::check_policy(&f.new_password, &user.email) {
        return Ok(to(&format!("/account?error={}#password", p.code())));
    }
    let hash = password::hash(f.new_password).await.map_err(hash_error)?;
    let mut tx = ctx.db.begin().await.map_err(db_error)?;
    users::set_password(&mut tx, user.user_id, &hash)
        .await
        .map_err(db_error)?;
    let sign_out_others = f.sign_out_others.is_some();
    // The current session is always replaced (new id after a privilege change); the other sessions and the API
    // tokens only on request ("sign out everywhere").
    let mut tokens = 0;
    let ended = if sign_out_others {
        tokens = api_token::revoke_all(&mut *tx, user.user_id)
            .await
            .map_err(db_error)?;
        session::revoke_all(&mut *tx, user.user_id, None)
            .await
            .map_err(db_error)?
    } else {
        match user.session_id() {
            Some(sid) => u64::from(
                session::revoke(&mut *tx, user.user_id, sid)
                    .await
                    .map_err(db_error)?,
            ),
            None => 0,
        }
    };
    let mut url = ctx.settings.public_url.clone();
    url.set_path("/forgot-password");
    let rendered = templates::password_changed(
        &user.display_name,
        url.as_str(),
        templates::PasswordChange {
            reset: false,
            everywhere: sign_out_others,
            sessions_ended: ended,
            tokens_revoked: tokens,
        },
    )
    .map_err(internal)?;
    let job = queue_email(
        &state,
        &mut tx,
        Some(user.user_id),
        &user.email,
        rendered,
        request_id(&headers),
    )
    .await?;
    audit::record(
        &mut tx,
        &meta,
        Entry {
            user_id: Some(user.user_id),
            event: event::PASSWORD_CHANGED,
            detail: json!({
                "sign_out_others": sign_out_others,
                "sessions_ended": ended,
                "tokens_revoked": tokens,
            }),
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    push(&state, job).await;
    let new = session::create(&ctx.db, &ctx.keys, &ctx.settings, user.user_id, &meta)
        .await
        .map_err(internal)?;
    Ok((
        AppendHeaders(session_cookies(&state, &new.token)),
        Redirect::to("/account?ok=password"),
    )
        .into_response())
}

/// `POST /account/sessions/{public_id}/revoke`: only the owner's sessions are found (others: 404).
async fn revoke_session(
    State(state): State<AppState>,
    Meta(meta): Meta,
    SignedIn(user): SignedIn,
    Path(public_id): Path<String>,
) -> Result {
    let ctx = &state.ctx;
    let sessions = session::list(&ctx.db, &ctx.settings, user.user_id, user.session_id())
        .await
        .map_err(db_error)?;
    let Some(target) = sessions.into_iter().find(|s| s.public_id == public_id) else {
        return Ok(html_error(
            StatusCode::NOT_FOUND,
            "Not found",
            "That session does not exist or has already ended.",
        ));
    };
    session::revoke(&ctx.db, user.user_id, &target.session_id)
        .await
        .map_err(db_error)?;
    audit::record_now(
        &ctx.db,
        &meta,
        Entry {
            user_id: Some(user.user_id),
            event: event::SESSION_REVOKED,
            detail: json!({ "session": public_id }),
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    if target.current {
        let s = &ctx.settings;
        return Ok((
            AppendHeaders([(
                header::SET_COOKIE,
                session::clear_cookie(s, session::cookie_name(s)),
            )]),
            Redirect::to("/signin?ok=signed_out"),
        )
            .into_response());
    }
    Ok(to("/account?ok=session_revoked#sessions"))
}

#[derive(Deserialize)]
pub struct CreateTokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires_in_days: String,
    #[serde(default)]
    current_password: String,
}

/// `POST /account/tokens`: needs a confirmed email address and the current password (a session alone, e.g. a
/// stolen cookie, cannot mint lasting access). The secret is shown once, on the next page view (a short-lived
/// HttpOnly cookie carries it there; the page clears it).
async fn create_token(
    State(state): State<AppState>,
    Meta(meta): Meta,
    SignedIn(user): SignedIn,
    Form(f): Form<CreateTokenForm>,
) -> Result {
    if !user.can_write() {
        return Ok(to("/account?error=read_only#tokens"));
    }
    if !user.email_verified {
        return Ok(to("/account?error=token_unverified#tokens"));
    }
    let Ok(name) = api_token::parse_name(&f.name) else {
        return Ok(to("/account?error=token_name#tokens"));
    };
    let Some(scope) = Scope::parse(f.scope.trim()) else {
        return Ok(to("/account?error=token_scope#tokens"));
    };
    let expires = match f.expires_in_days.trim() {
        "" | "never" => None,
        d => match d.parse::<u32>() {
            Ok(n) if (1..=3650).contains(&n) => Some(n),
            _ => return Ok(to("/account?error=token_expiry#tokens")),
        },
    };
    match signin::confirm_password(
        &state.ctx.db,
        user.user_id,
        &user.email,
        f.current_password,
        &meta,
        "token_create",
    )
    .await
    .map_err(db_error)?
    {
        Check::Passed(()) => {}
        Check::Wrong => return Ok(to("/account?error=current_password#tokens")),
        Check::Limited { retry_after_secs } => return Ok(too_many(retry_after_secs)),
        Check::Busy(b) => return Ok(busy(b)),
    }
    let Some((info, secret)) =
        api_token::create(&state.ctx.db, user.user_id, &name, scope, expires)
            .await
            .map_err(db_error)?
    else {
        return Ok(to("/account?error=token_exists#tokens"));
    };
    audit::record_now(
        &state.ctx.db,
        &meta,
        Entry {
            user_id: Some(user.user_id),
            event: event::TOKEN_CREATED,
            detail: json!({ "token": info.api_token_id, "name": info.name, "scope": scope.as_str() }),
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    let cookie = api_token::flash_cookie(&state.ctx.settings, &secret, 120);
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie)]),
        Redirect::to("/account?ok=token_created#tokens"),
    )
        .into_response())
}

/// `POST /account/tokens/{id}/revoke`: only the owner's tokens are found (others: 404).
async fn revoke_token(
    State(state): State<AppState>,
    Meta(meta): Meta,
    SignedIn(user): SignedIn,
    Path(token_id): Path<String>,
) -> Result {
    let Ok(token_id) = token_id.parse::<Uuid>() else {
        return Ok(html_error(
            StatusCode::NOT_FOUND,
            "Not found",
            "That token does not exist.",
        ));
    };
    let Some(name) = api_token::revoke(&state.ctx.db, user.user_id, token_id)
        .await
        .map_err(db_error)?
    else {
        return Ok(html_error(
            StatusCode::NOT_FOUND,
            "Not found",
            "That token does not exist.",
        ));
    };
    audit::record_now(
        &state.ctx.db,
        &meta,
        Entry {
            user_id: Some(user.user_id),
            event: event::TOKEN_REVOKED,
            detail: json!({ "token": token_id, "name": name }),
            ..Entry::default()
        },
    )
    .await
    .map_err(db_error)?;
    Ok(to("/account?ok=token_revoked#tokens"))
}

/// Used by `vortex create-admin`: creates an admin account, or promotes an existing one.
///
/// # Errors
/// Policy violations (as text) and database errors.
pub async fn create_or_promote_admin(
    ctx: &backend::Ctx,
    email: &str,
    password: Option<String>,
) -> anyhow::Result<String> {
    let email = users::parse_email(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let meta = RequestMeta::new("cli", "vortex create-admin");
    if let Some((user, _)) = users::find_for_signin(&ctx.db, &email).await? {
        let mut tx = ctx.db.begin().await?;
        let old = users::set_role(&mut tx, user.user_id, Role::Admin).await?;
        // A privilege change ends existing sessions, so the new role starts with a fresh session.
        session::revoke_all(&mut *tx, user.user_id, None).await?;
        audit::record(
            &mut tx,
            &meta,
            Entry {
                user_id: Some(user.user_id),
                event: event::ROLE_CHANGED,
                detail: json!({ "from": old.map(Role::as_str), "to": "admin", "by": "cli" }),
                ..Entry::default()
            },
        )
        .await?;
        tx.commit().await?;
        return Ok(format!("promoted {email} to admin"));
    }
    let password = password.ok_or_else(|| {
        anyhow::anyhow!("no password given on stdin or in VORTEX_ADMIN_PASSWORD_FILE")
    })?;
    password::check_policy(&password, &email)
        .map_err(|p| anyhow::anyhow!("password: {}", p.message()))?;
    let hash = password::hash(password)
        .await
        .map_err(anyhow::Error::from)?;
    let mut tx = ctx.db.begin().await?;
    let user_id = users::insert(&mut tx, &email, "", &hash, Role::Admin)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("{email} was created concurrently; run the command again")
        })?;
    users::mark_verified(&mut tx, user_id).await?;
    audit::record(
        &mut tx,
        &meta,
        Entry {
            user_id: Some(user_id),
            event: event::ROLE_CHANGED,
            detail: json!({ "from": null, "to": "admin", "by": "cli" }),
            ..Entry::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(format!("created admin {email}"))
}
