//! A run's trades as stored: columnar chunks of up to [`MAX_PER_CHUNK`] trades (`backtest_trade_chunk`, see
//! its migration), written with one binary `COPY` and read back chunk by chunk. A row per trade cost a heap
//! tuple, a primary-key entry and ~330 bytes each; a chunk costs one of each for a few dozen trades.
//!
//! Readers: [`stream`] (every trade in order, for the exports), [`page`] (one sorted page, for the results
//! page and the API). The `backtest_trade` view shows the same trades row by row to SQL.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use engine::backtest::Trade;
use futures::{Stream, TryStreamExt};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::backtest::finite;
use crate::backtest::runs::TradeRecord;
use crate::pgcopy::BinaryRows;

/// A chunk's size target: small enough to stay whole in a heap page (the table's `toast_tuple_target` is
/// 8160), big enough that a run of 27k trades is a few hundred rows.
const CHUNK_BYTES: usize = 6 * 1024;
/// At most this many trades per chunk, whatever their size.
pub(crate) const MAX_PER_CHUNK: usize = 256;

/// Writes the trades of run `run_id` (seq 1, 2, … in the order given) by binary `COPY`, in ~1 MiB pieces.
///
/// # Errors
/// Database errors.
pub(crate) async fn write(
    tx: &mut PgConnection,
    run_id: Uuid,
    trades: &[Trade],
) -> sqlx::Result<()> {
    const PIECE: usize = 1 << 20;
    if trades.is_empty() {
        return Ok(());
    }
    let mut copy = tx
        .copy_in_raw(
            "copy backtest_trade_chunk (backtest_run_id, first_seq, n, entry_time, exit_time, entry_price, \
             exit_price, units, fees, pnl, return_pct, bars_held, exit_reason, rules, entry_rule, exit_rule, \
             entry_ends, entry_vals, exit_ends, exit_vals) from stdin (format binary)",
        )
        .await?;
    let mut rows = BinaryRows::with_capacity(PIECE + (PIECE >> 2));
    let mut start = 0;
    while start < trades.len() {
        let end = chunk_end(trades, start);
        write_chunk(&mut rows, run_id, start, &trades[start..end]);
        start = end;
        if rows.len() >= PIECE {
            copy.send(rows.take_rows()).await?;
        }
    }
    copy.send(rows.finish()).await?;
    copy.finish().await?;
    Ok(())
}

/// The end (exclusive) of the chunk that starts at trade `start`: about [`CHUNK_BYTES`] as stored, at least
/// one trade, at most [`MAX_PER_CHUNK`].
fn chunk_end(trades: &[Trade], start: usize) -> usize {
    let mut bytes = 0;
    let mut end = start;
    let mut rules: Vec<&str> = Vec::new();
    while end < trades.len() && end - start < MAX_PER_CHUNK {
        let t = &trades[end];
        let mut size =
            96 + t.exit_reason.label().len() + 8 * (t.entry_values.len() + t.exit_values.len());
        for rule in std::iter::once(&*t.entry_rule).chain(t.exit_rule.as_deref()) {
            if !rules.contains(&rule) {
                rules.push(rule);
                size += 8 + rule.len();
            }
        }
        if end > start && bytes + size > CHUNK_BYTES {
            break;
        }
        bytes += size;
        end += 1;
    }
    end
}

/// One `backtest_trade_chunk` row: trades `first` (0-based index in the run) and on.
fn write_chunk(rows: &mut BinaryRows, run_id: Uuid, first: usize, trades: &[Trade]) {
    let mut rules: Vec<&str> = Vec::new();
    let entry_rule: Vec<i32> = trades
        .iter()
        .map(|t| rule_index(&mut rules, &t.entry_rule))
        .collect();
    let exit_rule: Vec<Option<i32>> = trades
        .iter()
        .map(|t| t.exit_rule.as_deref().map(|r| rule_index(&mut rules, r)))
        .collect();
    let ends = |side: fn(&Trade) -> &[Named]| -> Vec<Option<i32>> {
        let mut end = 0usize;
        trades
            .iter()
            .map(|t| {
                end += side(t).len();
                Some(i32::try_from(end).unwrap_or(i32::MAX))
            })
            .collect()
    };
    let entry_ends = ends(|t| t.entry_values.as_slice());
    let exit_ends = ends(|t| t.exit_values.as_slice());
    let int = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let float = |f: fn(&Trade) -> f64| trades.iter().map(move |t| Some(f(t)));
    rows.row(20)
        .uuid(run_id)
        .int4(int(first + 1))
        .int4(int(trades.len()))
        .timestamptz_millis_array(trades.iter().map(|t| t.entry_time))
        .timestamptz_millis_array(trades.iter().map(|t| t.exit_time))
        .float8_array(float(|t| t.entry_price))
        .float8_array(float(|t| t.exit_price))
        .float8_array(float(|t| t.units))
        .float8_array(float(|t| t.fees))
        .float8_array(float(|t| t.pnl))
        .float8_array(float(|t| t.return_pct))
        .int4_array(trades.iter().map(|t| Some(int(t.bars_held))))
        .text_array(trades.iter().map(|t| Some(t.exit_reason.label())))
        .text_array(rules.iter().map(|r| Some(*r)))
        .int4_array(entry_rule.into_iter().map(Some))
        .int4_array(exit_rule.into_iter())
        .int4_array(entry_ends.into_iter())
        .float8_array(ExactFlatten::new(trades.iter().map(|t| &t.entry_values)))
        .int4_array(exit_ends.into_iter())
        .float8_array(ExactFlatten::new(trades.iter().map(|t| &t.exit_values)));
}

/// The 1-based place of `rule` in the chunk's `rules`, added if new.
fn rule_index<'a>(rules: &mut Vec<&'a str>, rule: &'a str) -> i32 {
    let at = rules.iter().position(|r| *r == rule).unwrap_or_else(|| {
        rules.push(rule);
        rules.len() - 1
    });
    i32::try_from(at + 1).unwrap_or(i32::MAX)
}

/// A rule value with its name, as the engine gives it.
type Named = (std::sync::Arc<str>, f64);

/// The values of every trade of a chunk, one after the other, with their total count (the array header
/// comes before the elements).
struct ExactFlatten<'a> {
    rest: usize,
    inner: std::iter::Flatten<std::vec::IntoIter<&'a Vec<Named>>>,
}

impl<'a> ExactFlatten<'a> {
    fn new(sides: impl Iterator<Item = &'a Vec<Named>>) -> Self {
        let sides: Vec<_> = sides.collect();
        Self {
            rest: sides.iter().map(|s| s.len()).sum(),
            inner: sides.into_iter().flatten(),
        }
    }
}

impl Iterator for ExactFlatten<'_> {
    type Item = Option<f64>;
    fn next(&mut self) -> Option<Self::Item> {
        let (_, v) = self.inner.next()?;
        self.rest -= 1;
        Some(finite(*v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.rest, Some(self.rest))
    }
}

impl ExactSizeIterator for ExactFlatten<'_> {}

/// One stored chunk, as read.
pub(crate) struct Chunk {
    pub first_seq: i32,
    pub entry_time: Vec<DateTime<Utc>>,
    pub exit_time: Vec<DateTime<Utc>>,
    pub entry_price: Vec<f64>,
    pub exit_price: Vec<f64>,
    pub units: Vec<f64>,
    pub fees: Vec<f64>,
    pub pnl: Vec<f64>,
    pub return_pct: Vec<f64>,
    pub bars_held: Vec<i32>,
    pub exit_reason: Vec<String>,
    pub rules: Vec<String>,
    pub entry_rule: Vec<i32>,
    pub exit_rule: Vec<Option<i32>>,
    pub entry_ends: Vec<i32>,
    pub entry_vals: Vec<Option<f64>>,
    pub exit_ends: Vec<i32>,
    pub exit_vals: Vec<Option<f64>>,
}

impl Chunk {
    /// The number of trades (the table's check makes every column this long).
    pub fn len(&self) -> usize {
        self.entry_time.len()
    }

    /// Trade `i` of the chunk (0-based) as a record; anything missing (which the table's checks rule out)
    /// reads as an empty or not-a-number field rather than failing the whole answer.
    pub fn record(&self, i: usize) -> TradeRecord {
        let rule = |r: Option<i32>| -> Option<String> {
            let at = usize::try_from(r?.checked_sub(1)?).ok()?;
            self.rules.get(at).cloned()
        };
        let values = |ends: &[i32], vals: &[Option<f64>]| -> Vec<Option<f64>> {
            let end_at = |j: usize| usize::try_from(ends.get(j).copied().unwrap_or(0)).unwrap_or(0);
            let lo = if i == 0 { 0 } else { end_at(i - 1) }.min(vals.len());
            let hi = end_at(i).clamp(lo, vals.len());
            vals[lo..hi].to_vec()
        };
        let float = |v: &[f64]| v.get(i).copied().unwrap_or(f64::NAN);
        let time = |v: &[DateTime<Utc>]| v.get(i).copied().unwrap_or_default();
        TradeRecord {
            seq: self
                .first_seq
                .saturating_add(i32::try_from(i).unwrap_or(i32::MAX)),
            entry_time: time(&self.entry_time),
            exit_time: time(&self.exit_time),
            entry_price: float(&self.entry_price),
            exit_price: float(&self.exit_price),
            units: float(&self.units),
            fees: float(&self.fees),
            pnl: float(&self.pnl),
            return_pct: float(&self.return_pct),
            bars_held: self.bars_held.get(i).copied().unwrap_or(0),
            exit_reason: self.exit_reason.get(i).cloned().unwrap_or_default(),
            entry_rule: rule(self.entry_rule.get(i).copied()).unwrap_or_default(),
            entry_vals: values(&self.entry_ends, &self.entry_vals),
            exit_rule: rule(self.exit_rule.get(i).copied().flatten()),
            exit_vals: values(&self.exit_ends, &self.exit_vals),
        }
    }

    /// Every trade of the chunk, in order.
    pub fn records(&self) -> impl Iterator<Item = TradeRecord> + '_ {
        (0..self.len()).map(|i| self.record(i))
    }
}

/// The chunks of run `run` in order; with `only`, just the chunks starting at those seqs.
fn chunks<'a>(
    db: &'a PgPool,
    run: Uuid,
    only: Option<&'a [i32]>,
) -> impl Stream<Item = sqlx::Result<Chunk>> + Send + 'a {
    sqlx::query_as!(
        Chunk,
        r#"select first_seq, entry_time, exit_time, entry_price, exit_price, units, fees, pnl, return_pct,
                  bars_held, exit_reason, rules, entry_rule, exit_rule as "exit_rule: Vec<Option<i32>>",
                  entry_ends, entry_vals as "entry_vals: Vec<Option<f64>>", exit_ends,
                  exit_vals as "exit_vals: Vec<Option<f64>>"
           from backtest_trade_chunk
           where backtest_run_id = $1 and ($2::int[] is null or first_seq = any($2))
           order by first_seq"#,
        run,
        only as Option<&[i32]>,
    )
    .fetch(db)
}

/// Every chunk of run `run`, in `seq` order (for streaming every trade).
pub(crate) fn stream(
    db: &PgPool,
    run: Uuid,
) -> impl Stream<Item = sqlx::Result<Chunk>> + Send + '_ {
    chunks(db, run, None)
}

/// One page of run `run`'s trades: ordered by `sort` (one of [`super::runs::TRADE_SORTS`]; ascending unless
/// `desc`), ties by `seq`; `limit` trades after skipping `offset`.
///
/// By `seq`, the page is worked out from the chunks' first seqs and sizes (the key's index); by any other
/// column, Postgres orders that column's values of every chunk (a top-N sort in its own bounded memory, in
/// its own order for numbers, times and the collation for text) and answers the page's seqs. Then only the
/// chunks that hold the page are read.
///
/// # Errors
/// Database errors; an unknown `sort` is a protocol error (callers check it against `TRADE_SORTS`).
pub(crate) async fn page(
    db: &PgPool,
    run: Uuid,
    sort: &str,
    desc: bool,
    limit: usize,
    offset: usize,
) -> sqlx::Result<Vec<TradeRecord>> {
    let spans: Vec<(i32, i32)> = sqlx::query_as(
        "select first_seq, n from backtest_trade_chunk where backtest_run_id = $1 order by first_seq",
    )
    .bind(run)
    .fetch_all(db)
    .await?;
    let wanted: Vec<i32> = match sort {
        "seq" => {
            let seqs = |&(first, n): &(i32, i32)| (0..n).map(move |i| first.saturating_add(i));
            if desc {
                spans
                    .iter()
                    .rev()
                    .flat_map(|s| seqs(s).rev())
                    .skip(offset)
                    .take(limit)
                    .collect()
            } else {
                spans
                    .iter()
                    .flat_map(seqs)
                    .skip(offset)
                    .take(limit)
                    .collect()
            }
        }
        "entry_time" | "exit_time" | "pnl" | "return_pct" | "bars_held" | "exit_reason" => {
            let dir = if desc { "desc" } else { "asc" };
            sqlx::query_scalar(&format!(
                "select (c.first_seq + u.i - 1)::int as seq
                   from backtest_trade_chunk c cross join lateral unnest(c.{sort}) with ordinality u(v, i)
                  where c.backtest_run_id = $1
                  order by u.v {dir}, seq limit $2 offset $3"
            ))
            .bind(run)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(db)
            .await?
        }
        other => {
            return Err(sqlx::Error::Protocol(format!(
                "cannot sort trades by {other}"
            )));
        }
    };
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // The chunk holding each wanted trade: the last chunk starting at or before its seq.
    let holding = |seq: i32| {
        let at = spans.partition_point(|(first, _)| *first <= seq);
        spans
            .get(at.saturating_sub(1))
            .map_or(1, |(first, _)| *first)
    };
    let needed: Vec<i32> = wanted
        .iter()
        .map(|s| holding(*s))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Each wanted seq with its place on the page, by seq: a chunk's trades are one range of it.
    let mut by_seq: Vec<(i32, usize)> = wanted.iter().copied().zip(0..).collect();
    by_seq.sort_unstable();
    let mut found: Vec<Option<TradeRecord>> = (0..wanted.len()).map(|_| None).collect();
    let mut read = chunks(db, run, Some(&needed));
    while let Some(chunk) = read.try_next().await? {
        let first = chunk.first_seq;
        let end = first.saturating_add(i32::try_from(chunk.len()).unwrap_or(i32::MAX));
        let from = by_seq.partition_point(|(s, _)| *s < first);
        for &(seq, slot) in by_seq[from..].iter().take_while(|(s, _)| *s < end) {
            if let Ok(i) = usize::try_from(seq - first) {
                found[slot] = Some(chunk.record(i));
            }
        }
    }
    Ok(found.into_iter().flatten().collect())
}
