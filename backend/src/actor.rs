//! Who is acting, and how: the first argument of every backend action.
//!
//! A surface (form handler, REST handler, server function, CLI command, job) builds an [`Actor`] from what it
//! knows (the signed-in user or token, the request's metadata and id) and passes it to the action; the action
//! asks the actor for the permission it needs ([`Actor::reader`], [`Actor::writer`], [`Actor::runner`],
//! [`Actor::admin`]) and records the audit entry with [`Actor::audit`] in the same transaction as its effect.
//! No surface checks a permission itself.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    auth::{AuthUser, RequestMeta, audit},
    error::{Error, Result},
};

/// The surface an action was called from (recorded in audit entries and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// A browser form post or page script.
    Web,
    /// The REST API (`/api/v1`).
    Api,
    /// A Leptos server function.
    ServerFn,
    /// The `vortex` command line (an operator with shell access).
    Cli,
    /// A background job.
    Job,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Web => "web",
            Surface::Api => "api",
            Surface::ServerFn => "server_fn",
            Surface::Cli => "cli",
            Surface::Job => "job",
        }
    }
}

/// Who acts.
#[derive(Debug, Clone)]
pub enum Who {
    /// Nobody signed in (sign-up, sign-in, password reset).
    Anonymous,
    /// A signed-in user (session cookie or API token; the credential decides whether it may write).
    User(AuthUser),
    /// The operator or the system itself (CLI commands, jobs): every permission, audited as such.
    System,
}

/// Who is acting, from where, in which request.
#[derive(Debug, Clone)]
pub struct Actor {
    pub who: Who,
    pub surface: Surface,
    /// Client address and user agent (empty for the CLI and jobs).
    pub meta: RequestMeta,
    /// The request id (`x-request-id`) or job id, attached to jobs enqueued and to logs.
    pub request_id: Option<String>,
}

impl Actor {
    /// A signed-in user acting through a surface.
    pub fn user(
        user: AuthUser,
        surface: Surface,
        meta: RequestMeta,
        request_id: Option<String>,
    ) -> Self {
        Self {
            who: Who::User(user),
            surface,
            meta,
            request_id,
        }
    }

    /// Nobody signed in.
    pub fn anonymous(surface: Surface, meta: RequestMeta, request_id: Option<String>) -> Self {
        Self {
            who: Who::Anonymous,
            surface,
            meta,
            request_id,
        }
    }

    /// The operator at the command line, or a job.
    pub fn system(surface: Surface) -> Self {
        Self {
            who: Who::System,
            surface,
            meta: RequestMeta::new(surface.as_str(), ""),
            request_id: None,
        }
    }

    /// The signed-in user, if any.
    pub fn auth_user(&self) -> Option<&AuthUser> {
        match &self.who {
            Who::User(u) => Some(u),
            _ => None,
        }
    }

    /// The acting user's id, if a user acts.
    pub fn user_id(&self) -> Option<Uuid> {
        self.auth_user().map(|u| u.user_id)
    }

    /// May read their own data: any signed-in user.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for anonymous or system actors (system actors act for a named user through
    /// the dedicated operator actions instead).
    pub fn reader(&self) -> Result<&AuthUser> {
        self.auth_user().ok_or(Error::Unauthenticated)
    }

    /// May change their own data: not a viewer, not a read-only API token.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`], or [`Error::Forbidden`] saying why.
    pub fn writer(&self) -> Result<&AuthUser> {
        let user = self.reader()?;
        if user.role == crate::auth::Role::Viewer {
            return Err(Error::Forbidden(
                "read-only account: your account can look at strategies and runs but not change them".into(),
            ));
        }
        if !user.can_write() {
            return Err(Error::Forbidden(
                "this API token is read-only; create a read-write token to change data".into(),
            ));
        }
        Ok(user)
    }

    /// May start work that costs resources or sends mail (backtests, traces, tokens): a writer whose email
    /// address is confirmed.
    ///
    /// # Errors
    /// As [`Actor::writer`], or [`Error::EmailUnconfirmed`].
    pub fn runner(&self) -> Result<&AuthUser> {
        let user = self.writer()?;
        if !user.email_verified {
            return Err(Error::EmailUnconfirmed);
        }
        Ok(user)
    }

    /// May change their own notification settings and read marks: any signed-in user with a session or a
    /// read-write token, viewers included (their notifications are theirs; [`Actor::writer`] would refuse
    /// them).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`], or [`Error::Forbidden`] for a read-only API token.
    pub fn settings_writer(&self) -> Result<&AuthUser> {
        let user = self.reader()?;
        if matches!(
            user.credential,
            crate::auth::Credential::ApiToken {
                scope: crate::auth::Scope::Read,
                ..
            }
        ) {
            return Err(Error::Forbidden(
                "this API token is read-only; create a read-write token to change data".into(),
            ));
        }
        Ok(user)
    }

    /// An administrator (or the operator at the command line).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] or [`Error::Forbidden`].
    pub fn admin(&self) -> Result<Option<&AuthUser>> {
        match &self.who {
            Who::System => Ok(None),
            Who::User(u) if u.is_admin() => Ok(Some(u)),
            Who::User(_) => Err(Error::Forbidden("admins only".into())),
            Who::Anonymous => Err(Error::Unauthenticated),
        }
    }

    /// An administrator allowed to change things: a read-only API token of an admin may read admin data but
    /// not act on other users (send them messages, clear their marks).
    ///
    /// # Errors
    /// As [`Actor::admin`]; [`Error::Forbidden`] for a read-only token.
    pub fn admin_writer(&self) -> Result<Option<&AuthUser>> {
        let admin = self.admin()?;
        if let Some(u) = admin
            && matches!(
                u.credential,
                crate::auth::Credential::ApiToken {
                    scope: crate::auth::Scope::Read,
                    ..
                }
            )
        {
            return Err(Error::Forbidden(
                "this API token is read-only; create a read-write token to change data".into(),
            ));
        }
        Ok(admin)
    }

    /// Records an audit entry for this actor in the caller's transaction, so the entry exists if and only if
    /// the effect committed. `subject` is the user the event is about (defaults to the actor); the surface is
    /// added to `detail`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit(
        &self,
        conn: &mut PgConnection,
        event: &str,
        subject: Option<Uuid>,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.audit_email(conn, event, subject, None, detail).await
    }

    /// [`Actor::audit`] with the email address the event is about (sign-up, reset and verification requests,
    /// sign-ins: the per-address limits count these).
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit_email(
        &self,
        conn: &mut PgConnection,
        event: &str,
        subject: Option<Uuid>,
        subject_email: Option<&str>,
        mut detail: serde_json::Value,
    ) -> Result<()> {
        if let serde_json::Value::Object(map) = &mut detail {
            map.insert("surface".into(), self.surface.as_str().into());
        } else if detail.is_null() {
            detail = serde_json::json!({ "surface": self.surface.as_str() });
        }
        let actor_id = self.user_id();
        audit::record(
            conn,
            &self.meta,
            audit::Entry {
                user_id: subject.or(actor_id),
                actor_id,
                event,
                subject_email,
                detail,
            },
        )
        .await?;
        Ok(())
    }
}
