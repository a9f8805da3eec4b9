//! Writing and reading candles. [`upsert_candles`] is the one writer of the `candle` table.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::blocks;
use super::coverage_upkeep::{count_range, lock_coverage, update_coverage};
use crate::market::{Candles, Timeframe, to_datetime, to_millis};
use crate::pgcopy::PG_EPOCH_US;

/// Rows per `insert … select from unnest(…)` statement: large enough to amortise the round trip, small enough
/// to keep one statement's parameters (6 arrays) well below a few MB.
const UPSERT_BATCH: usize = 20_000;

/// Upserts `candles` (already validated) of one series. Returns the number of rows written: new candles plus
/// candles whose values changed; re-storing identical candles writes (and counts) nothing. The series'
/// coverage (`market_coverage`, `market_gap`) is brought up to date in the same transaction: this is the one
/// writer of candles, so the coverage tables always describe them.
///
/// # Errors
/// Database errors.
pub async fn upsert_candles(
    conn: &mut PgConnection,
    instrument_id: i32,
    candles: &Candles,
) -> sqlx::Result<u64> {
    if candles.is_empty() {
        return Ok(0);
    }
    let (first, last) = (candles.time[0], candles.time[candles.len() - 1]);
    // Writers of one series take turns (the coverage row is the lock), so each sees the others' candles when
    // it brings the coverage up to date.
    lock_coverage(conn, instrument_id, candles.timeframe).await?;
    let before = count_range(conn, instrument_id, candles.timeframe, first, last).await?;
    let written = if candles.len() > COPY_THRESHOLD {
        upsert_candles_via_copy(conn, instrument_id, candles).await?
    } else {
        upsert_candles_batched(conn, instrument_id, candles).await?
    };
    let after = count_range(conn, instrument_id, candles.timeframe, first, last).await?;
    update_coverage(
        conn,
        instrument_id,
        candles.timeframe,
        first,
        last,
        after - before,
    )
    .await?;
    Ok(written)
}

async fn upsert_candles_batched(
    conn: &mut PgConnection,
    instrument_id: i32,
    candles: &Candles,
) -> sqlx::Result<u64> {
    let tf = candles.timeframe.as_str();
    let mut written = 0;
    let mut start = 0;
    while start < candles.len() {
        let end = (start + UPSERT_BATCH).min(candles.len());
        let times: Vec<DateTime<Utc>> = candles.time[start..end]
            .iter()
            .map(|&t| to_datetime(t))
            .collect();
        let done = sqlx::query!(
            r#"insert into candle (instrument_id, timeframe, open_time, open, high, low, close, volume)
               select $1, $2, t.* from unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[],
                                              $7::float8[], $8::float8[]) as t
               on conflict (instrument_id, timeframe, open_time) do update
                 set open = excluded.open, high = excluded.high, low = excluded.low,
                     close = excluded.close, volume = excluded.volume
                 where (candle.open, candle.high, candle.low, candle.close, candle.volume)
                       is distinct from
                       (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)"#,
            instrument_id,
            tf,
            &times,
            &candles.open[start..end],
            &candles.high[start..end],
            &candles.low[start..end],
            &candles.close[start..end],
            &candles.volume[start..end],
        )
        .execute(&mut *conn)
        .await?;
        written += done.rows_affected();
        start = end;
    }
    Ok(written)
}

/// Above this many candles, [`upsert_candles`] streams them with `COPY` into a temporary table and upserts from
/// there; into an empty range it inserts without `on conflict` (see the bench in docs/market-data.md).
const COPY_THRESHOLD: usize = 50_000;

async fn upsert_candles_via_copy(
    conn: &mut PgConnection,
    instrument_id: i32,
    candles: &Candles,
) -> sqlx::Result<u64> {
    use std::fmt::Write as _;
    // Runtime SQL in this function: the temporary table `candle_stage` does not exist when the macros check.
    sqlx::query(
        r#"create temp table if not exists candle_stage (
               open_ms bigint, open float8, high float8, low float8, close float8, volume float8)"#,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query("truncate candle_stage")
        .execute(&mut *conn)
        .await?;
    let mut copy = conn
        .copy_in_raw("copy candle_stage from stdin (format text)")
        .await?;
    let mut buf = String::with_capacity(1 << 20);
    for i in 0..candles.len() {
        // f64's Display is the shortest text that parses back to the same value.
        let _ = writeln!(
            buf,
            "{}\t{}\t{}\t{}\t{}\t{}",
            candles.time[i],
            candles.open[i],
            candles.high[i],
            candles.low[i],
            candles.close[i],
            candles.volume[i]
        );
        if buf.len() >= 1 << 20 {
            copy.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await?;
    }
    copy.finish().await?;
    // Nothing stored yet in this range (the usual first import): a plain insert, about twice as fast as the
    // upsert. Should another writer insert the same candles meanwhile, the primary key fails this transaction
    // and nothing is stored; a retry takes the upsert path.
    let (first, last) = (candles.time[0], candles.time[candles.len() - 1]);
    let overlap = sqlx::query_scalar!(
        r#"select exists(select 1 from candle where instrument_id = $1 and timeframe = $2
                                                   and open_time between $3 and $4) as "overlap!""#,
        instrument_id,
        candles.timeframe.as_str(),
        to_datetime(first),
        to_datetime(last),
    )
    .fetch_one(&mut *conn)
    .await?;
    let conflict = if overlap {
        r#"on conflict (instrument_id, timeframe, open_time) do update
             set open = excluded.open, high = excluded.high, low = excluded.low,
                 close = excluded.close, volume = excluded.volume
             where (candle.open, candle.high, candle.low, candle.close, candle.volume)
                   is distinct from
                   (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)"#
    } else {
        ""
    };
    let done = sqlx::query(&format!(
        r#"insert into candle (instrument_id, timeframe, open_time, open, high, low, close, volume)
           select $1, $2, timestamptz 'epoch' + open_ms * interval '1 millisecond', open, high, low, close, volume
           from candle_stage {conflict}"#
    ))
    .bind(instrument_id)
    .bind(candles.timeframe.as_str())
    .execute(&mut *conn)
    .await?;
    sqlx::query("truncate candle_stage")
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Loads the candles of one series with `from <= open_time < to` (either bound optional) into engine columns,
/// in one scan of the primary-key index. With `last`, only the newest `last` candles of that range.
///
/// A range from a given time that spans at least [`MIN_BLOCKS`] closed block windows holding candles is read
/// through the block cache ([`super::blocks`], [`load_cached`]). Otherwise the rows come as
/// `COPY … TO STDOUT (FORMAT binary)`: fixed-size tuples of big-endian numbers, decoded straight into the
/// columns (no per-row text, no per-row protocol round of the extended query). The bench is in
/// docs/market-data.md. Either way the result is the same candles, bit for bit.
///
/// # Errors
/// Database errors; a protocol error when the server sends rows of another shape.
pub async fn load_candles(
    pool: &PgPool,
    instrument_id: i32,
    timeframe: Timeframe,
    from: Option<i64>,
    to: Option<i64>,
    last: Option<i64>,
) -> sqlx::Result<Candles> {
    // Bounded ranges only (backtests, traces, charts); open-ended loads (paper trading's advance) read the rows.
    if let (Some(from), Some(to), None) = (from, to, last)
        && from < to
    {
        return load_cached(pool, instrument_id, timeframe, from, Some(to)).await;
    }
    copy_candles(pool, instrument_id, timeframe, from, to, last).await
}

/// A range is read through the block cache when it spans at least this many closed windows holding candles
/// (shorter ranges load as fast by COPY, and a cached window is decoded whole for a few candles).
pub const MIN_BLOCKS: i64 = 2;

/// The candles of `[from, to)` through the block cache, in one transaction on one connection holding the
/// series' coverage row shared (`for share skip locked`): while it is held no write of the series can commit
/// (writers hold that row exclusively, [`upsert_candles`] from the start, the triggers on `candle` before they
/// remove blocks), so every statement below reads the same candles and a block built here holds them. When
/// the row is missing (no write went through the application) or a write holds it, the range is one plain
/// COPY, read as of now and not cached.
///
/// The range is read as: the rows before the first cached window (by COPY; none unless `from` is inside the
/// series' first window or hand-inserted rows precede it), the closed windows between the series' first and
/// last stored candle (stored blocks, decoded; missing or unusable ones read by one COPY per run of
/// consecutive windows, split into windows and stored), then the rows after the last closed window (by COPY).
async fn load_cached(
    pool: &PgPool,
    instrument_id: i32,
    timeframe: Timeframe,
    from: i64,
    to: Option<i64>,
) -> sqlx::Result<Candles> {
    let mut held = CopyConnection {
        conn: pool.acquire().await?,
        finished: false,
    };
    // Should this future be dropped or fail half-way, the connection is closed (see `CopyConnection`), which
    // ends the transaction and releases the lock.
    let mut tx = sqlx::Connection::begin(&mut *held.conn).await?;
    let coverage = sqlx::query!(
        r#"select first_open, last_open from market_coverage
           where instrument_id = $1 and timeframe = $2 for share skip locked"#,
        instrument_id,
        timeframe.as_str(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    let to_or_max = to.unwrap_or(i64::MAX);
    let windows = coverage.and_then(|c| {
        let (first_open, last_open) = (to_millis(c.first_open?), to_millis(c.last_open?));
        // Closed windows overlapping [from, to) that hold stored candles.
        let first = blocks::block_start(from.max(first_open));
        let last = (blocks::block_start(Utc::now().timestamp_millis()) - blocks::SPAN_MS)
            .min(blocks::block_start(to_or_max.saturating_sub(1)))
            .min(blocks::block_start(last_open));
        (last >= first && (last - first) / blocks::SPAN_MS + 1 >= MIN_BLOCKS)
            .then_some((first, last))
    });
    let candles = match windows {
        None => copy_rows(&mut tx, instrument_id, timeframe, Some(from), to, None).await?,
        Some((first, last)) => {
            let mut out = copy_rows(
                &mut tx,
                instrument_id,
                timeframe,
                Some(from),
                Some(first),
                None,
            )
            .await?;
            let built = load_windows(
                &mut tx,
                instrument_id,
                timeframe,
                first,
                last,
                from,
                to_or_max,
                &mut out,
            )
            .await?;
            let tail_from = from.max(last + blocks::SPAN_MS);
            if tail_from < to_or_max {
                let tail =
                    copy_rows(&mut tx, instrument_id, timeframe, Some(tail_from), to, None).await?;
                append(&mut out, &tail, 0..tail.len());
            }
            if built > 0 {
                tracing::debug!(
                    instrument_id,
                    timeframe = timeframe.as_str(),
                    built,
                    "built candle blocks"
                );
            }
            out
        }
    };
    tx.commit().await?;
    held.finished = true;
    Ok(candles)
}

fn append(out: &mut Candles, more: &Candles, range: std::ops::Range<usize>) {
    out.time.extend_from_slice(&more.time[range.clone()]);
    out.open.extend_from_slice(&more.open[range.clone()]);
    out.high.extend_from_slice(&more.high[range.clone()]);
    out.low.extend_from_slice(&more.low[range.clone()]);
    out.close.extend_from_slice(&more.close[range.clone()]);
    out.volume.extend_from_slice(&more.volume[range]);
}

/// Appends the candles with `from <= open time < to` of the closed windows `first..=last` to `out`: stored
/// blocks decoded, the others read from `candle` (one COPY per run of consecutive windows) and stored. The
/// caller holds the series' coverage row shared. Returns the number of blocks built.
#[allow(clippy::too_many_arguments)]
async fn load_windows(
    conn: &mut PgConnection,
    instrument_id: i32,
    timeframe: Timeframe,
    first: i64,
    last: i64,
    from: i64,
    to: i64,
    out: &mut Candles,
) -> sqlx::Result<usize> {
    let stored = sqlx::query!(
        r#"select block_start, data from candle_block
           where instrument_id = $1 and timeframe = $2 and format = $3 and block_start between $4 and $5
           order by block_start"#,
        instrument_id,
        timeframe.as_str(),
        blocks::FORMAT,
        first,
        last,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut stored = stored.into_iter().peekable();
    let mut built = 0;
    // The first window of the current run of windows without a usable block.
    let mut missing_from: Option<i64> = None;
    let mut start = first;
    loop {
        let mut decoded = false;
        if start <= last {
            while let Some(row) = stored.next_if(|r| r.block_start <= start) {
                if row.block_start != start || decoded {
                    continue;
                }
                // Decoded into a scratch series first: a block that turns out unusable adds nothing.
                let mut part = Candles::new(timeframe);
                match blocks::decode_into(&row.data, timeframe, start, from, to, &mut part) {
                    Ok(()) => {
                        if let Some(run) = missing_from.take() {
                            built += build_windows(
                                conn,
                                instrument_id,
                                timeframe,
                                run,
                                start,
                                from,
                                to,
                                out,
                            )
                            .await?;
                        }
                        append(out, &part, 0..part.len());
                        decoded = true;
                    }
                    Err(e) => tracing::warn!(
                        instrument_id,
                        timeframe = timeframe.as_str(),
                        block_start = start,
                        error = %e,
                        "ignoring a stored candle block; rebuilding it"
                    ),
                }
            }
            if !decoded && missing_from.is_none() {
                missing_from = Some(start);
            }
        } else {
            if let Some(run) = missing_from.take() {
                built += build_windows(conn, instrument_id, timeframe, run, start, from, to, out)
                    .await?;
            }
            return Ok(built);
        }
        start += blocks::SPAN_MS;
    }
}

/// Reads the closed windows `[run, end)` from `candle` in one COPY, stores each as a block and appends the
/// candles inside `[from, to)` to `out`. Returns the number of blocks stored.
#[allow(clippy::too_many_arguments)]
async fn build_windows(
    conn: &mut PgConnection,
    instrument_id: i32,
    timeframe: Timeframe,
    run: i64,
    end: i64,
    from: i64,
    to: i64,
    out: &mut Candles,
) -> sqlx::Result<usize> {
    let rows = copy_rows(conn, instrument_id, timeframe, Some(run), Some(end), None).await?;
    let mut at = 0;
    let mut built = 0;
    let mut start = run;
    while start < end {
        let stop = rows.time.partition_point(|&t| t < start + blocks::SPAN_MS);
        let window = rows.slice(at..stop);
        // Rows closer than a millisecond apart (only a hand-made insert can do that) cannot be a block.
        if window.time.windows(2).all(|w| w[0] < w[1]) {
            sqlx::query!(
                r#"insert into candle_block (instrument_id, timeframe, block_start, format, candles, data)
                   values ($1, $2, $3, $4, $5, $6)
                   on conflict (instrument_id, timeframe, block_start) do update
                     set format = excluded.format, candles = excluded.candles, data = excluded.data,
                         built_at = now()"#,
                instrument_id,
                timeframe.as_str(),
                start,
                blocks::FORMAT,
                i32::try_from(window.len()).unwrap_or(i32::MAX),
                blocks::encode(&window),
            )
            .execute(&mut *conn)
            .await?;
            built += 1;
        }
        let lo = at + window.time.partition_point(|&t| t < from);
        let hi = at + window.time.partition_point(|&t| t < to);
        if lo < hi {
            append(out, &rows, lo..hi);
        }
        at = stop;
        start += blocks::SPAN_MS;
    }
    Ok(built)
}

/// [`load_candles`] without the cache: one `COPY` on a pooled connection.
async fn copy_candles(
    pool: &PgPool,
    instrument_id: i32,
    timeframe: Timeframe,
    from: Option<i64>,
    to: Option<i64>,
    last: Option<i64>,
) -> sqlx::Result<Candles> {
    let mut held = CopyConnection {
        conn: pool.acquire().await?,
        finished: false,
    };
    let candles = copy_rows(&mut held.conn, instrument_id, timeframe, from, to, last).await?;
    held.finished = true;
    Ok(candles)
}

/// The rows by binary COPY on `conn`. Dropped or failed half-read, the rows are left on the connection: the
/// caller's [`CopyConnection`] closes it then.
async fn copy_rows(
    conn: &mut PgConnection,
    instrument_id: i32,
    timeframe: Timeframe,
    from: Option<i64>,
    to: Option<i64>,
    last: Option<i64>,
) -> sqlx::Result<Candles> {
    use futures::TryStreamExt;
    // COPY takes no bind parameters: every value below is an integer or a timeframe's own fixed label.
    let mut filter = format!(
        "instrument_id = {instrument_id} and timeframe = '{}'",
        timeframe.as_str()
    );
    for (bound, op) in [(from, ">="), (to, "<")] {
        if let Some(ms) = bound {
            filter.push_str(&format!(
                " and open_time {op} timestamptz 'epoch' + {ms} * interval '1 millisecond'"
            ));
        }
    }
    let columns = "open_time, open, high, low, close, volume";
    let query = match last {
        // The newest candles by a backward index scan, then back in time order.
        Some(last) => format!(
            "select * from (select {columns} from candle where {filter} order by open_time desc limit {}) t \
             order by open_time",
            last.max(0)
        ),
        None => format!("select {columns} from candle where {filter} order by open_time"),
    };
    let mut decoder = CopyDecoder::new(timeframe);
    let mut failure = None;
    let mut stream = conn
        .copy_out_raw(&format!("copy ({query}) to stdout (format binary)"))
        .await?;
    while let Some(chunk) = stream.try_next().await? {
        // After a decoding error the rest is read (and dropped) so the connection stays usable.
        if failure.is_none()
            && let Err(e) = decoder.feed(&chunk)
        {
            failure = Some(e);
        }
    }
    drop(stream);
    match failure {
        Some(e) => Err(e),
        None => decoder.finish(),
    }
}

/// A connection running a `COPY … TO STDOUT`. A copy dropped half-read (an error, a cancelled future) leaves
/// its rows on the connection, and sqlx would hand that connection to the next query: unless the copy was read
/// to its end, the connection is closed instead of going back to the pool.
struct CopyConnection {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    finished: bool,
}

impl Drop for CopyConnection {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.close_on_drop();
        }
    }
}

/// Decodes PostgreSQL's binary COPY format for rows `(timestamptz, float8 × 5)` into candle columns. Bytes may
/// arrive split anywhere; a partial tuple is kept until the rest arrives.
struct CopyDecoder {
    candles: Candles,
    header_done: bool,
    trailer_seen: bool,
    carry: Vec<u8>,
}

/// One tuple: field count (2 bytes), then six fields of (length 4 bytes + 8 bytes).
const TUPLE_BYTES: usize = 2 + 6 * 12;
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

fn protocol(msg: &str) -> sqlx::Error {
    sqlx::Error::Protocol(format!("binary COPY of candles: {msg}"))
}

impl CopyDecoder {
    fn new(timeframe: Timeframe) -> Self {
        Self {
            candles: Candles::with_capacity(timeframe, 1024),
            header_done: false,
            trailer_seen: false,
            carry: Vec::new(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> sqlx::Result<()> {
        if self.carry.is_empty() {
            let used = self.consume(chunk)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.carry);
            buf.extend_from_slice(chunk);
            let used = self.consume(&buf)?;
            buf.drain(..used);
            self.carry = buf;
        }
        Ok(())
    }

    /// Decodes what `buf` holds completely; returns the bytes used.
    fn consume(&mut self, buf: &[u8]) -> sqlx::Result<usize> {
        let mut at = 0;
        if !self.header_done {
            // signature, flags (4), header extension length (4), extension
            if buf.len() < 19 {
                return Ok(0);
            }
            if &buf[..11] != SIGNATURE {
                return Err(protocol("no PGCOPY signature"));
            }
            let ext = u32::from_be_bytes([buf[15], buf[16], buf[17], buf[18]]) as usize;
            if buf.len() < 19 + ext {
                return Ok(0);
            }
            at = 19 + ext;
            self.header_done = true;
        }
        let be_i64 = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        let be_f64 = |b: &[u8]| f64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        let mut fields = [0u8; 6];
        while buf.len() - at >= 2 {
            if self.trailer_seen {
                return Err(protocol("data after the trailer"));
            }
            let count = i16::from_be_bytes([buf[at], buf[at + 1]]);
            if count == -1 {
                self.trailer_seen = true;
                at += 2;
                continue;
            }
            if count != 6 {
                return Err(protocol(&format!("a row of {count} fields (expected 6)")));
            }
            if buf.len() - at < TUPLE_BYTES {
                break;
            }
            let t = &buf[at + 2..at + TUPLE_BYTES];
            for (k, f) in fields.iter_mut().enumerate() {
                let len =
                    i32::from_be_bytes([t[k * 12], t[k * 12 + 1], t[k * 12 + 2], t[k * 12 + 3]]);
                *f = u8::from(len == 8);
            }
            if fields != [1; 6] {
                return Err(protocol("a null or wrongly sized field"));
            }
            let v = |k: usize| &t[k * 12 + 4..k * 12 + 12];
            let us = be_i64(v(0));
            self.candles.push(
                (us + PG_EPOCH_US).div_euclid(1000),
                be_f64(v(1)),
                be_f64(v(2)),
                be_f64(v(3)),
                be_f64(v(4)),
                be_f64(v(5)),
            );
            at += TUPLE_BYTES;
        }
        Ok(at)
    }

    fn finish(self) -> sqlx::Result<Candles> {
        if !self.header_done || !self.trailer_seen || !self.carry.is_empty() {
            return Err(protocol("the copy ended early"));
        }
        Ok(self.candles)
    }
}

/// The number of stored candles of a series with `from <= open_time < to`. Closed windows inside the range
/// whose block is cached count by the block's recorded size; the rest (the range's partial windows, windows
/// not cached yet, the open window) by the index. A year of 1-minute candles: two short index scans instead of
/// one over 525,600 entries. The count is of committed data at the time of each statement; a concurrent import
/// can make it off by what it adds, as any count is by the time it is used.
///
/// # Errors
/// Database errors.
pub async fn count_candles(
    pool: &PgPool,
    instrument_id: i32,
    timeframe: Timeframe,
    from: i64,
    to: i64,
) -> sqlx::Result<i64> {
    if from >= to {
        return Ok(0);
    }
    let span = blocks::SPAN_MS;
    // Whole windows inside [from, to) that have ended.
    let first = blocks::block_start(from.saturating_add(span - 1));
    let last = blocks::block_start(to.saturating_sub(span))
        .min(blocks::block_start(Utc::now().timestamp_millis()) - span);
    let cached: Vec<(i64, i32)> = if first <= last {
        sqlx::query!(
            r#"select block_start, candles from candle_block
               where instrument_id = $1 and timeframe = $2 and block_start between $3 and $4
                 and format = $5 and block_start % 2147483648 = 0
               order by block_start"#,
            instrument_id,
            timeframe.as_str(),
            first,
            last,
            blocks::FORMAT,
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .filter(|r| r.block_start >= from && r.block_start + span <= to)
        .map(|r| (r.block_start, r.candles))
        .collect()
    } else {
        Vec::new()
    };
    // The parts of [from, to) no cached window covers.
    let mut lo = Vec::new();
    let mut hi = Vec::new();
    let mut at = from;
    for &(start, _) in &cached {
        if at < start {
            lo.push(to_datetime(at));
            hi.push(to_datetime(start));
        }
        at = start + span;
    }
    if at < to {
        lo.push(to_datetime(at));
        hi.push(to_datetime(to));
    }
    let rest = sqlx::query_scalar!(
        r#"select count(*) as "n!" from unnest($3::timestamptz[], $4::timestamptz[]) r(lo, hi)
           cross join lateral (select 1 from candle
                               where instrument_id = $1 and timeframe = $2
                                 and open_time >= r.lo and open_time < r.hi) c"#,
        instrument_id,
        timeframe.as_str(),
        &lo,
        &hi,
    )
    .fetch_one(pool)
    .await?;
    Ok(rest + cached.iter().map(|&(_, n)| i64::from(n)).sum::<i64>())
}
