//! Delivers one email from the outbox. SMTP cannot be exactly-once: the row is marked sent right after the
//! server's `250`, in the job's completing transaction, and the deterministic `Message-ID` identifies the rare
//! duplicate after a crash in between.
//!
//! Failures are classified ([`super::classify`]): transient ones are retried with back-off; a permanent
//! rejection of the address marks it undeliverable ([`super::suppression`]) and, like any other permanent
//! refusal, fails the message at once.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{SendErrorKind, suppression};
use crate::jobs::{JobCtx, JobError, JobKind, MAIL_QUEUE};
use crate::mail::outbox;

pub const KIND: &str = "send_email";

pub const JOB: JobKind = JobKind::new(KIND, MAIL_QUEUE, |job| Box::pin(run(job)));

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendEmail {
    pub email_id: Uuid,
}

pub(crate) async fn run(job: &JobCtx) -> Result<(), JobError> {
    let SendEmail { email_id } = job.payload()?;
    let Some(email) = outbox::pending(&job.ctx.db, email_id).await? else {
        tracing::info!(%email_id, "email already sent or gone; nothing to do");
        return Ok(());
    };
    match job.ctx.mailer.send(&email).await {
        Ok(()) => {
            let mut tx = job.ctx.db.begin().await?;
            outbox::mark_sent(&mut tx, email_id).await?;
            job.complete(tx).await?;
            tracing::info!(%email_id, message_id = %email.message_id, "email sent");
            Ok(())
        }
        Err(e) if e.kind != SendErrorKind::Transient => {
            let mut tx = job.ctx.db.begin().await?;
            if e.kind == SendErrorKind::RejectedAddress {
                suppression::record_rejection(&mut tx, &email.to, e.smtp_code, &e.message).await?;
            }
            outbox::mark_failed(&mut tx, email_id, &e.message, true).await?;
            job.complete(tx).await?;
            tracing::warn!(%email_id, error = %e, "email refused permanently; not retried");
            Ok(())
        }
        Err(e) => {
            let is_final = job.job.attempt >= job.job.max_attempts;
            let message = format!("{e:#}");
            let mut conn = job.ctx.db.acquire().await?;
            outbox::mark_failed(&mut conn, email_id, &message, is_final).await?;
            Err(JobError::Retry(anyhow::anyhow!(
                "sending email {email_id}: {message}"
            )))
        }
    }
}
