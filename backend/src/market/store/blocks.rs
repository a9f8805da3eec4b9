//! The candle block cache: closed ranges of one series kept as compressed columns in `candle_block`, so a long
//! load reads a few rows of bytes instead of one row per candle (a year of 1-minute candles: 15 blocks instead
//! of 525,600 rows).
//!
//! `candle` stays the truth; a block is a copy that can be deleted at any time (`truncate candle_block`): the
//! next load rebuilds it. A block covers a fixed window of [`SPAN_MS`] aligned to the epoch and is only kept
//! once the window has ended. Every change of `candle` (insert, update, delete, truncate; by the application
//! or by hand) removes the blocks of the windows it touches through statement triggers that first lock the
//! series' coverage row, and a block is only built holding that row shared
//! ([`super::load_candles`]), so a block never outlives a change of its candles.
//!
//! Format 1 (all integers little-endian): `VXCB`, the format byte, the candle count `n` (u32), then six columns
//! (open time, open, high, low, close, volume), each as its compressed length (u32) and an LZ4 block of `8·n`
//! bytes. Before compression a column is made compressible: open times become differences to the previous one
//! (mostly the timeframe), prices the XOR of their bits with the previous price's bits (neighbouring prices
//! share sign, exponent and leading mantissa bits: zero bytes), and the bytes are regrouped by significance (all
//! first bytes, then all second bytes…), so the zero bytes form runs LZ4 removes. Decoding reverses each step
//! exactly: the cache gives back the stored bits.

use crate::market::{Candles, Timeframe};

/// A block's window: 2³¹ ms (≈ 24.9 days; 35,791 one-minute candles, 1.7 MB of columns before compression).
pub const SPAN_MS: i64 = 1 << 31;
/// The block format written; blocks of another format are ignored (and replaced when next built).
pub const FORMAT: i16 = 1;
const MAGIC: &[u8; 4] = b"VXCB";
const HEADER: usize = 4 + 1 + 4;

/// The start of the window holding `ms`.
pub fn block_start(ms: i64) -> i64 {
    ms.div_euclid(SPAN_MS) * SPAN_MS
}

/// The most candles of `timeframe` a window can hold.
fn max_candles(timeframe: Timeframe) -> usize {
    usize::try_from(SPAN_MS / timeframe.millis().max(1) + 1).unwrap_or(usize::MAX)
}

/// Encodes candles (one window's, in time order) as a format-1 block.
pub fn encode(c: &Candles) -> Vec<u8> {
    let n = c.len();
    let mut out = Vec::with_capacity(HEADER + 6 * (4 + n * 8) / 2);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT as u8);
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    let mut words = vec![0u64; n];
    let mut plain = vec![0u8; n * 8];
    let mut packed = vec![0u8; lz4_flex::block::get_maximum_output_size(n * 8)];
    let mut column = |words: &[u64], out: &mut Vec<u8>| {
        shuffle(words, &mut plain);
        // The output is sized for the worst case, so compressing cannot fail.
        let len = lz4_flex::block::compress_into(&plain, &mut packed).unwrap_or(0);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&packed[..len]);
    };
    let mut prev = 0i64;
    for (w, &t) in words.iter_mut().zip(&c.time) {
        *w = t.wrapping_sub(prev) as u64;
        prev = t;
    }
    column(&words, &mut out);
    for values in [&c.open, &c.high, &c.low, &c.close, &c.volume] {
        let mut prev = 0u64;
        for (w, v) in words.iter_mut().zip(values.iter()) {
            let bits = v.to_bits();
            *w = bits ^ prev;
            prev = bits;
        }
        column(&words, &mut out);
    }
    out
}

/// Why a stored block was not used (it is then ignored and rebuilt from `candle`).
#[derive(Debug, thiserror::Error)]
#[error("candle block: {0}")]
pub struct BlockError(&'static str);

/// Decodes a format-1 block of `timeframe` that should cover the window starting at `start`, appending the
/// candles with `from <= open time < to` to `into`. Everything is checked: a block that is damaged, of another
/// format, too large for its window or out of order is an error, never a panic or a huge allocation.
///
/// # Errors
/// [`BlockError`] saying what is wrong.
pub fn decode_into(
    bytes: &[u8],
    timeframe: Timeframe,
    start: i64,
    from: i64,
    to: i64,
    into: &mut Candles,
) -> Result<(), BlockError> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err(BlockError("no block header"));
    }
    if i16::from(bytes[4]) != FORMAT {
        return Err(BlockError("another format"));
    }
    let n = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize;
    if n > max_candles(timeframe) {
        return Err(BlockError("more candles than the window holds"));
    }
    let mut at = HEADER;
    let mut plain = vec![0u8; n * 8];
    let mut columns: [Vec<u64>; 6] = Default::default();
    for column in &mut columns {
        let Some(len) = bytes.get(at..at + 4) else {
            return Err(BlockError("truncated"));
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        at += 4;
        let Some(packed) = bytes.get(at..at.saturating_add(len)) else {
            return Err(BlockError("truncated"));
        };
        at += len;
        match lz4_flex::block::decompress_into(packed, &mut plain) {
            Ok(m) if m == n * 8 => {}
            _ => return Err(BlockError("a damaged column")),
        }
        *column = vec![0u64; n];
        unshuffle(&plain, column);
    }
    if at != bytes.len() {
        return Err(BlockError("bytes after the last column"));
    }
    // Open times: running sums of the differences, strictly increasing, inside the window.
    let mut prev = 0i64;
    let mut time = Vec::with_capacity(n);
    for &d in &columns[0] {
        let t = prev.wrapping_add(d as i64);
        if (!time.is_empty() && t <= prev) || t < start || t >= start + SPAN_MS {
            return Err(BlockError("open times out of order or outside the window"));
        }
        time.push(t);
        prev = t;
    }
    let lo = time.partition_point(|&t| t < from);
    let hi = time.partition_point(|&t| t < to);
    if lo >= hi {
        return Ok(());
    }
    into.time.extend_from_slice(&time[lo..hi]);
    let targets = [
        &mut into.open,
        &mut into.high,
        &mut into.low,
        &mut into.close,
        &mut into.volume,
    ];
    for (target, xored) in targets.into_iter().zip(&columns[1..]) {
        let mut prev = 0u64;
        target.reserve(hi - lo);
        for (i, &x) in xored.iter().enumerate().take(hi) {
            prev ^= x;
            if i >= lo {
                target.push(f64::from_bits(prev));
            }
        }
    }
    Ok(())
}

/// Byte `k` of word `i` goes to `plain[k·n + i]`.
fn shuffle(words: &[u64], plain: &mut [u8]) {
    let n = words.len();
    for (i, w) in words.iter().enumerate() {
        for (k, b) in w.to_le_bytes().into_iter().enumerate() {
            plain[k * n + i] = b;
        }
    }
}

fn unshuffle(plain: &[u8], words: &mut [u64]) {
    let n = words.len();
    for (i, w) in words.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        for (k, byte) in b.iter_mut().enumerate() {
            *byte = plain[k * n + i];
        }
        *w = u64::from_le_bytes(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(start: i64, n: usize, tf: Timeframe) -> Candles {
        let mut c = Candles::with_capacity(tf, n);
        let mut price = 43_251.12_f64;
        let mut t = start.div_euclid(tf.millis()) * tf.millis() + tf.millis();
        for i in 0..n {
            // Prices of two decimals that wander, volumes with fractions, a gap now and then.
            price += ((i * 7919) % 13) as f64 * 0.01 - 0.06;
            c.push(
                t,
                price,
                price + 1.5,
                price - 0.75,
                price + 0.01,
                0.1 * i as f64 + 1e-9,
            );
            t += tf.millis() * if i % 97 == 5 { 3 } else { 1 };
        }
        c
    }

    fn window(c: &Candles, start: i64) -> Candles {
        let mut w = Candles::new(c.timeframe);
        for i in 0..c.len() {
            if block_start(c.time[i]) == start {
                w.push(
                    c.time[i],
                    c.open[i],
                    c.high[i],
                    c.low[i],
                    c.close[i],
                    c.volume[i],
                );
            }
        }
        w
    }

    fn bits(c: &Candles) -> Vec<[u64; 6]> {
        (0..c.len())
            .map(|i| {
                [
                    c.time[i] as u64,
                    c.open[i].to_bits(),
                    c.high[i].to_bits(),
                    c.low[i].to_bits(),
                    c.close[i].to_bits(),
                    c.volume[i].to_bits(),
                ]
            })
            .collect()
    }

    #[test]
    fn a_block_gives_back_the_same_bits_and_slices_by_time() {
        let start = block_start(1_700_000_000_000) + SPAN_MS;
        let all = sample(start, 30_000, Timeframe::M1);
        let w = window(&all, start);
        let bytes = encode(&w);
        assert!(
            bytes.len() < w.len() * 48 * 3 / 4,
            "compresses: {} bytes",
            bytes.len()
        );
        let mut back = Candles::new(Timeframe::M1);
        decode_into(&bytes, Timeframe::M1, start, i64::MIN, i64::MAX, &mut back).unwrap();
        assert_eq!(bits(&back), bits(&w));
        let (from, to) = (w.time[100], w.time[2000]);
        let mut part = Candles::new(Timeframe::M1);
        decode_into(&bytes, Timeframe::M1, start, from, to, &mut part).unwrap();
        let expected: Vec<_> = bits(&w)
            .into_iter()
            .filter(|r| (r[0] as i64) >= from && (r[0] as i64) < to)
            .collect();
        assert_eq!(bits(&part), expected);
    }

    #[test]
    fn special_values_survive() {
        let start = 0;
        let mut c = Candles::new(Timeframe::H1);
        for (i, v) in [0.0, -0.0, f64::MIN_POSITIVE, 1e308, 5e-324, 1.0, f64::MAX]
            .into_iter()
            .enumerate()
        {
            c.push(i as i64 * 3_600_000, v, v, v, v, v);
        }
        let mut back = Candles::new(Timeframe::H1);
        decode_into(
            &encode(&c),
            Timeframe::H1,
            start,
            i64::MIN,
            i64::MAX,
            &mut back,
        )
        .unwrap();
        assert_eq!(bits(&back), bits(&c));
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let start = 0;
        let w = window(&sample(start, 3_000, Timeframe::M5), start);
        let good = encode(&w);
        let mut sink = Candles::new(Timeframe::M5);
        // Every truncation and a flipped byte at every position of the header and the first column.
        for len in 0..good.len().min(600) {
            assert!(
                decode_into(
                    &good[..len],
                    Timeframe::M5,
                    start,
                    i64::MIN,
                    i64::MAX,
                    &mut sink
                )
                .is_err()
            );
        }
        for at in 0..good.len().min(600) {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            let _ = decode_into(
                &bad,
                Timeframe::M5,
                start,
                i64::MIN,
                i64::MAX,
                &mut Candles::new(Timeframe::M5),
            );
        }
        // A count beyond the window is refused before anything is allocated.
        let mut huge = good.clone();
        huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_into(&huge, Timeframe::M5, start, i64::MIN, i64::MAX, &mut sink).is_err());
        // The right bytes under the wrong window or timeframe.
        assert!(
            decode_into(
                &good,
                Timeframe::M5,
                start + SPAN_MS,
                i64::MIN,
                i64::MAX,
                &mut sink
            )
            .is_err()
        );
        assert!(decode_into(&good, Timeframe::H4, start, i64::MIN, i64::MAX, &mut sink).is_err());
        assert!(sink.is_empty());
    }
}
