//! The email outbox: queueing (a row plus a `send_email` job) and the status updates of delivery.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::delivery as send_email;
use super::{OutgoingEmail, templates::Rendered};
use crate::jobs::{JobQueue, MAIL_QUEUE};

/// Queues a rendered email inside the caller's transaction. Returns `(email_id, job_id)`; push the job with
/// [`JobQueue::push`] after committing (if the push is lost, the reconciler delivers it).
///
/// # Errors
/// Database errors.
pub async fn queue(
    conn: &mut PgConnection,
    jobs: &JobQueue,
    message_id_domain: &str,
    user_id: Option<Uuid>,
    to: &str,
    rendered: Rendered,
    request_id: Option<String>,
) -> sqlx::Result<(Uuid, Uuid)> {
    let email_id = Uuid::new_v4();
    sqlx::query!(
        r#"insert into email_outbox (email_id, user_id, to_address, template, subject, body_text, body_html, message_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8)"#,
        email_id,
        user_id,
        to,
        rendered.template,
        &rendered.subject,
        &rendered.text,
        &rendered.html,
        format!("<email-{email_id}@{message_id_domain}>"),
    )
    .execute(&mut *conn)
    .await?;
    let mut job = jobs.new_job(
        MAIL_QUEUE,
        send_email::KIND,
        serde_json::to_value(send_email::SendEmail { email_id }).unwrap_or_default(),
    );
    job.request_id = request_id;
    let job_id = jobs.insert(conn, &job).await?.unwrap_or(email_id);
    Ok((email_id, job_id))
}

/// The message to send, unless it was sent already.
///
/// # Errors
/// Database errors.
pub async fn pending(db: &PgPool, email_id: Uuid) -> sqlx::Result<Option<OutgoingEmail>> {
    let row = sqlx::query!(
        r#"select to_address, subject, body_text, body_html, message_id, mail_class, headers
           from email_outbox where email_id = $1 and status in ('queued', 'failed')"#,
        email_id,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| OutgoingEmail {
        to: r.to_address,
        subject: r.subject,
        text: r.body_text,
        html: r.body_html,
        message_id: r.message_id,
        subscription: r.mail_class == "subscription",
        headers: headers_from_json(&r.headers),
        // Inline images are not stored: their sender adds them (drawn again from the event, the same bytes).
        inline: Vec::new(),
    }))
}

/// The `headers` column (`{"List-Id": "…"}`) as name/value pairs, in name order.
pub fn headers_from_json(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// What replaces the secret of a one-time link (`token=<64 hex digits>`) once its email has been sent.
pub const REDACTED_TOKEN: &str = "token=redacted";

/// Records a successful delivery, and removes the secrets of one-time links (verification, password reset)
/// from the stored bodies: once sent, the outbox must not be a second place to read a live link from (backups,
/// admins, a database leak).
///
/// # Errors
/// Database errors.
pub async fn mark_sent(conn: &mut PgConnection, email_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        r#"update email_outbox set status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = null,
               body_text = regexp_replace(body_text, 'token=[0-9a-fA-F]{64}', $2, 'g'),
               body_html = regexp_replace(body_html, 'token=[0-9a-fA-F]{64}', $2, 'g')
           where email_id = $1"#,
        email_id,
        REDACTED_TOKEN,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed attempt (`final` = no more retries).
///
/// # Errors
/// Database errors.
pub async fn mark_failed(
    conn: &mut PgConnection,
    email_id: Uuid,
    error: &str,
    is_final: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"update email_outbox set attempts = attempts + 1, last_error = left($2, 2000),
               status = case when $3 then 'failed' else status end
           where email_id = $1 and status <> 'sent'"#,
        email_id,
        error,
        is_final,
    )
    .execute(conn)
    .await?;
    Ok(())
}
