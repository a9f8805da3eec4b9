//! What the modules that change a paper run's gates share, so neither depends on the other: the kill
//! switches (`paper::kill`) and the plan gates of an over-quota user (`plans::overage`).
//!
//! Every `paper_advance` step reads the gates of its runs under [`LOCK_KEY`] held shared; a change takes it
//! exclusively ([`lock_for_change`]), so it waits for the steps in flight and applies from every affected
//! run's next candle. [`runs_changed`] tells the runs' live pages (`LISTEN paper_run`) on commit.

use sqlx::PgConnection;
use uuid::Uuid;

/// The advisory lock key shared by the steps and taken exclusively by gate changes.
pub const LOCK_KEY: i64 = 0x7061_7065_725f_6b73; // "paper_ks"

/// Takes the gate lock exclusively until the transaction ends (waits for the steps in flight).
///
/// # Errors
/// Database errors.
pub async fn lock_for_change(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("select pg_advisory_xact_lock($1)", LOCK_KEY)
        .execute(conn)
        .await?;
    Ok(())
}

/// Tells listeners (`LISTEN paper_run`) that these runs changed, when the transaction commits.
///
/// # Errors
/// Database errors.
pub async fn runs_changed(conn: &mut PgConnection, runs: &[String]) -> sqlx::Result<()> {
    if !runs.is_empty() {
        sqlx::query!(
            "select pg_notify('paper_run', id) from unnest($1::text[]) as id",
            runs
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// [`runs_changed`] for run ids.
///
/// # Errors
/// Database errors.
pub async fn run_ids_changed(conn: &mut PgConnection, runs: &[Uuid]) -> sqlx::Result<()> {
    let ids: Vec<String> = runs.iter().map(Uuid::to_string).collect();
    runs_changed(conn, &ids).await
}
