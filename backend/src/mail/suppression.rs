//! Addresses the relay rejected permanently (`mail_suppression`): no subscription mail goes to them until the
//! mark is cleared (docs/design/notifications.md §5, "SMTP results"). Addresses are stored lower-cased.

use sqlx::PgConnection;

/// Whether `address` is marked undeliverable.
///
/// # Errors
/// Database errors.
pub async fn is_suppressed(conn: &mut PgConnection, address: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from mail_suppression where address = lower($1)) as "x!""#,
        address,
    )
    .fetch_one(conn)
    .await
}

/// Marks `address` undeliverable after a permanent rejection (the first rejection's code and text are kept).
/// Returns whether the mark is new.
///
/// # Errors
/// Database errors.
pub async fn record_rejection(
    conn: &mut PgConnection,
    address: &str,
    smtp_code: Option<u16>,
    smtp_message: &str,
) -> sqlx::Result<bool> {
    let new = sqlx::query!(
        r#"insert into mail_suppression (address, reason, smtp_code, smtp_message)
           values (lower($1), 'rejected', $2, left($3, 2000))
           on conflict (address) do nothing"#,
        address,
        smtp_code.map(i32::from),
        smtp_message,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    // Mail still waiting for the address will not be accepted either.
    sqlx::query!(
        r#"update email_outbox set status = 'suppressed', last_error = 'address rejected permanently'
           where lower(to_address) = lower($1) and status = 'queued'"#,
        address,
    )
    .execute(conn)
    .await?;
    Ok(new)
}
