//! The admin action that adds candles from an uploaded CSV file (candles are shared by every user).

use crate::{
    Actor, Ctx,
    backtest::Error,
    market::csv_import::{ImportError, ImportOptions, ImportReport, parse_text, store_parsed},
};

/// Whether the actor may upload candles at all: checked before the request body is read.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] (not an admin).
pub fn admit(actor: &Actor) -> Result<(), Error> {
    actor.admin().map(|_| ())
}

/// Stores the candles of `text` (all or nothing unless `opts.skip_bad_rows`) and records
/// `market_data_uploaded` in the same transaction.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`]; the import's own refusal as `Ok(Err(..))` so the
/// surface can show the line-precise CSV problem; database errors.
pub async fn import_csv(
    actor: &Actor,
    ctx: &Ctx,
    text: &str,
    file_name: &str,
    bytes: u64,
    opts: &ImportOptions,
) -> Result<Result<ImportReport, ImportError>, Error> {
    admit(actor)?;
    let parsed = match parse_text(text, file_name, opts) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let mut tx = ctx.db.begin().await?;
    let report = match store_parsed(&mut tx, parsed, file_name, opts).await {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    actor
        .audit(
            &mut tx,
            "market_data_uploaded",
            None,
            serde_json::json!({ "file": file_name, "bytes": bytes, "rows": report.rows,
                "written": report.written, "rejected": report.rejected.len() }),
        )
        .await?;
    tx.commit().await?;
    Ok(Ok(report))
}
