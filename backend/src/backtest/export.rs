//! Streamed exports of a finished run: the trades CSV and the full result JSON are written from a database
//! cursor as the client reads them, so an export's memory is a few chunks whatever the number of trades (the
//! HTML report, which must be one document, lists a bounded number of trades: see [`super::report`]).
//!
//! The rows are read by a task that sends ~64 KiB chunks through a two-slot channel: the cursor advances only
//! as fast as the client downloads, and a client that goes away ends the task (and frees the connection) at
//! the next chunk. A database error half-way ends the body with an error, so the client sees a broken download
//! rather than a silently short file.

use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Error, runs};

/// The body of a streamed export: text chunks, or the error that ended it.
pub type Chunks = BoxStream<'static, Result<String, std::io::Error>>;

/// Bytes gathered before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;

/// The trades of one of the user's finished runs as CSV (exactly [`runs::trades_csv`] of all its trades).
/// `hold` is kept until the stream ends (e.g. a concurrency permit).
///
/// # Errors
/// [`Error::NotFound`] (no such run of this user, or not finished), database errors; checked before the
/// stream starts.
pub async fn trades_csv(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    hold: impl Send + 'static,
) -> Result<Chunks, Error> {
    runs::result(db, user, id).await?;
    let names = runs::value_names(db, id).await?;
    Ok(stream_trades(
        db.clone(),
        id,
        names,
        runs::TRADES_CSV_HEADER.to_owned(),
        String::new(),
        |t, _, out| {
            runs::push_trade_csv_line(out, t);
            Ok(())
        },
        hold,
    ))
}

/// The run, its settings, result, every trade and the strategy source as one JSON document (the same bytes
/// as building the whole `serde_json::Value` would give: keys in order, trades by `seq`).
///
/// # Errors
/// As [`trades_csv`].
pub async fn result_json(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    hold: impl Send + 'static,
) -> Result<Chunks, Error> {
    let run = runs::get(db, user, id).await?;
    let result = runs::result(db, user, id).await?;
    let source = sqlx::query_scalar!(
        "select source from strategy_version where strategy_version_id = $1",
        run.strategy_version_id,
    )
    .fetch_one(db)
    .await?;
    // Everything but the trades, as the document's head: `serde_json` orders object keys, and "trades" sorts
    // last, so the head is the document up to the trades array.
    let head = json!({
        "format": "vortex-backtest-result/1",
        "run": run,
        "strategy_source": source,
        "result": result,
    })
    .to_string();
    let head = format!("{},\"trades\":[", head.strip_suffix('}').unwrap_or(&head));
    let names = runs::value_names(db, id).await?;
    Ok(stream_trades(
        db.clone(),
        id,
        names,
        head,
        "]}".to_owned(),
        |t, first, out| {
            if !first {
                out.push(',');
            }
            let v = serde_json::to_string(&SortedTrade::from(t)).map_err(std::io::Error::other)?;
            out.push_str(&v);
            Ok(())
        },
        hold,
    ))
}

/// A trade as `serde_json::Value` would write it (object keys in alphabetical order), written straight out
/// without building the `Value`.
#[derive(serde::Serialize)]
struct SortedTrade<'a> {
    bars_held: i32,
    entry_price: f64,
    entry_rule: &'a str,
    entry_time: &'a chrono::DateTime<chrono::Utc>,
    entry_values: &'a [(String, Option<f64>)],
    exit_price: f64,
    exit_reason: &'a str,
    exit_rule: Option<&'a str>,
    exit_time: &'a chrono::DateTime<chrono::Utc>,
    exit_values: &'a [(String, Option<f64>)],
    fees: f64,
    pnl: f64,
    return_pct: f64,
    seq: i32,
    units: f64,
}

impl<'a> From<&'a runs::TradeRow> for SortedTrade<'a> {
    fn from(t: &'a runs::TradeRow) -> Self {
        Self {
            bars_held: t.bars_held,
            entry_price: t.entry_price,
            entry_rule: &t.entry_rule,
            entry_time: &t.entry_time,
            entry_values: &t.entry_values,
            exit_price: t.exit_price,
            exit_reason: &t.exit_reason,
            exit_rule: t.exit_rule.as_deref(),
            exit_time: &t.exit_time,
            exit_values: &t.exit_values,
            fees: t.fees,
            pnl: t.pnl,
            return_pct: t.return_pct,
            seq: t.seq,
            units: t.units,
        }
    }
}

/// Streams `head`, then `line(trade, is_first, buffer)` for every trade of run `id` in `seq` order, then `tail`.
fn stream_trades(
    db: PgPool,
    id: Uuid,
    names: runs::ValueNames,
    head: String,
    tail: String,
    line: impl Fn(&runs::TradeRow, bool, &mut String) -> std::io::Result<()> + Send + 'static,
    hold: impl Send + 'static,
) -> Chunks {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(2);
    tokio::spawn(async move {
        let _hold = hold;
        let mut chunks = crate::backtest::trade_chunks::stream(&db, id);
        let mut buf = head;
        let mut first = true;
        loop {
            match chunks.try_next().await {
                Ok(Some(chunk)) => {
                    for row in chunk.records() {
                        let piece = line(&row.into_row(&names), first, &mut buf);
                        first = false;
                        if let Err(e) = piece {
                            tracing::error!(error = %e, backtest_run_id = %id, "export failed");
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                        if buf.len() >= CHUNK_BYTES
                            && tx.send(Ok(std::mem::take(&mut buf))).await.is_err()
                        {
                            return; // the client went away
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, backtest_run_id = %id, "export failed");
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            }
        }
        buf.push_str(&tail);
        let _ = tx.send(Ok(buf)).await;
    });
    // A receiver keeps answering `None` once closed, so the stream may be polled after its end (a body
    // wrapper that polls once more must not panic, as `unfold` would).
    let mut rx = rx;
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sorted_trade_writes_the_bytes_of_its_json_value() {
        use chrono::TimeZone;
        let at = chrono::Utc.timestamp_millis_opt(1_515_560_100_000).unwrap();
        for (pnl, exit_rule) in [(-1.25, None), (f64::NAN, Some("exit long when \"q\" < 1"))] {
            let t = runs::TradeRow {
                seq: 3,
                entry_time: at,
                exit_time: at,
                entry_price: 0.1,
                exit_price: 1e-9,
                units: 1e21,
                fees: 0.0,
                pnl,
                return_pct: f64::INFINITY,
                bars_held: 2,
                exit_reason: "exit signal".into(),
                entry_rule: "entry long when a > b".into(),
                entry_values: vec![("a".into(), Some(0.5)), ("b".into(), None)],
                exit_rule: exit_rule.map(str::to_owned),
                exit_values: vec![("q".into(), Some(-3.0))],
            };
            assert_eq!(
                serde_json::to_string(&SortedTrade::from(&t)).unwrap(),
                serde_json::to_value(&t).unwrap().to_string()
            );
        }
    }
}
