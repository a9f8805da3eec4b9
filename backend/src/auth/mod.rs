//! Accounts and access control (OWASP ASVS L2): the data layer and checks the actions in `crate::account` use.
//!
//! * Passwords: argon2id (m = 19 MiB, t = 2, p = 1), hashed off the async threads within a process-wide limit;
//!   unknown accounts are checked against a dummy hash so timing does not reveal which emails exist
//!   ([`password`]).
//! * Browser sessions: an HS256 JWT in an `HttpOnly; SameSite=Lax` cookie (`__Host-` + `Secure` over HTTPS)
//!   naming a `user_session` row that is checked on every request, so sign-out, revocation and password changes
//!   take effect at once; idle and absolute timeouts are enforced by the row ([`session`]).
//! * CSRF: a signed double-submit token (HMAC of a random cookie) on every state-changing browser request,
//!   plus a Fetch-Metadata/Origin check ([`csrf`]).
//! * API tokens for the REST API, stored as SHA-256 hashes; never accepted as a browser session and the session
//!   cookie is never accepted by the API ([`api_token`]).
//! * Rate limits on password checks (reserved before argon2 runs, keyed on account + client, progressive delay),
//!   sign-up and email-sending requests ([`rate_limit`], [`signin`]); one process-wide limit on concurrent
//!   argon2 work ([`password`]).
//! * Post-sign-in redirects stay on this site ([`redirect`]).
//! * The audit trail ([`audit`]).

pub mod api_token;
pub mod audit;
pub mod csrf;
pub mod email_token;
pub mod password;
pub mod rate_limit;
pub mod redirect;
pub mod session;
pub mod signin;
pub mod totp;
pub mod users;

use hmac::{KeyInit, Mac};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::settings::Settings;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Trader,
    /// Read-only access.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Trader => "trader",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "trader" => Some(Self::Trader),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    ReadWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "read_write",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "read_write" | "read-write" => Some(Self::ReadWrite),
            _ => None,
        }
    }
}

/// How the current request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A browser session (the `user_session` row's id).
    Session(String),
    /// An API token.
    ApiToken { token_id: Uuid, scope: Scope },
}

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub email_verified: bool,
    pub time_zone: String,
    pub credential: Credential,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this request may change data: viewers and read-scoped API tokens may not.
    pub fn can_write(&self) -> bool {
        self.role != Role::Viewer
            && !matches!(
                self.credential,
                Credential::ApiToken {
                    scope: Scope::Read,
                    ..
                }
            )
    }

    pub fn session_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session(s) => Some(s),
            Credential::ApiToken { .. } => None,
        }
    }
}

/// Where a request came from, for the audit trail and rate limits.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: String,
    pub user_agent: String,
}

impl RequestMeta {
    pub fn new(ip: impl Into<String>, user_agent: &str) -> Self {
        // User agents are attacker-controlled: bounded and without control characters.
        let ua: String = user_agent
            .chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect();
        Self {
            ip: ip.into(),
            user_agent: ua,
        }
    }
}

/// Keys derived from `JWT_SECRET` with domain separation, so the session-signing key, the CSRF key and the
/// two-factor secrets' key are different keys even though the operator manages one secret.
#[derive(Clone)]
pub struct AuthKeys {
    pub(crate) jwt_encoding: jsonwebtoken::EncodingKey,
    pub(crate) jwt_decoding: jsonwebtoken::DecodingKey,
    pub(crate) csrf: [u8; 32],
    /// Signs one-click unsubscribe tokens (`notify::unsubscribe`).
    pub(crate) unsubscribe: [u8; 32],
    /// Encrypts two-factor (TOTP) secrets at rest ([`totp::seal`]).
    pub(crate) totp: [u8; 32],
}

fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl AuthKeys {
    pub fn from_settings(settings: &Settings) -> Self {
        let secret = settings.jwt_secret.expose_secret().as_bytes();
        let jwt = derive(secret, "vortex/session-jwt/v1");
        Self {
            jwt_encoding: jsonwebtoken::EncodingKey::from_secret(&jwt),
            jwt_decoding: jsonwebtoken::DecodingKey::from_secret(&jwt),
            csrf: derive(secret, "vortex/csrf/v1"),
            unsubscribe: derive(
                settings
                    .unsubscribe_secret
                    .as_ref()
                    .map_or(secret, |s| s.expose_secret().as_bytes()),
                "vortex/unsubscribe/v1",
            ),
            totp: derive(secret, "vortex/totp-secret/v1"),
        }
    }
}

/// 32 random bytes from the OS CSPRNG, hex encoded (256 bits; CR4).
pub fn random_secret() -> String {
    crate::settings::random_token(32)
}

/// SHA-256 of a high-entropy secret (API tokens, email tokens). A fast hash is right for random secrets.
pub fn sha256(value: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(value.as_bytes()).to_vec()
}

/// Constant-time equality (CR5).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
