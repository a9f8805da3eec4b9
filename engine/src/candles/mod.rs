//! Columnar OHLCV candles with a timeframe: validation, gap detection and resampling.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::time::format_iso;

/// Candle timeframe. Candles are keyed by their UTC **open** time, aligned to the timeframe
/// (weeks start on Monday 00:00 UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Timeframe {
    M1,
    M5,
    M15,
    M30,
    H1,
    H4,
    D1,
    W1,
}

impl Timeframe {
    /// Every supported timeframe, smallest first.
    pub const ALL: [Timeframe; 8] = [
        Timeframe::M1,
        Timeframe::M5,
        Timeframe::M15,
        Timeframe::M30,
        Timeframe::H1,
        Timeframe::H4,
        Timeframe::D1,
        Timeframe::W1,
    ];

    /// Parses `1m 5m 15m 30m 1h 4h 1d 1w` (case-insensitive, surrounding spaces ignored).
    ///
    /// # Errors
    /// [`CandleError::UnknownTimeframe`] for anything else.
    pub fn parse(text: &str) -> Result<Self, CandleError> {
        let t = text.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|tf| tf.as_str() == t)
            .ok_or(CandleError::UnknownTimeframe(text.to_string()))
    }

    /// Canonical label, e.g. `"5m"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Timeframe::M1 => "1m",
            Timeframe::M5 => "5m",
            Timeframe::M15 => "15m",
            Timeframe::M30 => "30m",
            Timeframe::H1 => "1h",
            Timeframe::H4 => "4h",
            Timeframe::D1 => "1d",
            Timeframe::W1 => "1w",
        }
    }

    /// Length of one candle in milliseconds.
    pub fn millis(self) -> i64 {
        const MIN: i64 = 60_000;
        match self {
            Timeframe::M1 => MIN,
            Timeframe::M5 => 5 * MIN,
            Timeframe::M15 => 15 * MIN,
            Timeframe::M30 => 30 * MIN,
            Timeframe::H1 => 60 * MIN,
            Timeframe::H4 => 240 * MIN,
            Timeframe::D1 => 1440 * MIN,
            Timeframe::W1 => 7 * 1440 * MIN,
        }
    }

    /// The timeframe whose length is exactly `ms`, if any.
    pub fn from_millis(ms: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|tf| tf.millis() == ms)
    }

    /// Offset of the alignment grid: weeks are aligned to Monday (1970-01-05), others to the epoch.
    fn grid_offset(self) -> i64 {
        if self == Timeframe::W1 {
            4 * crate::time::DAY_MS
        } else {
            0
        }
    }

    /// Open time of the candle of this timeframe that contains `ms`.
    pub fn floor(self, ms: i64) -> i64 {
        let off = self.grid_offset();
        (ms - off).div_euclid(self.millis()) * self.millis() + off
    }

    /// Whether `ms` is a valid open time for this timeframe.
    pub fn is_aligned(self, ms: i64) -> bool {
        self.floor(ms) == ms
    }

    /// Candles of this timeframe per 365-day year (used to annualise per-bar statistics).
    pub fn periods_per_year(self) -> f64 {
        365.0 * crate::time::DAY_MS as f64 / self.millis() as f64
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Timeframe {
    type Err = CandleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Timeframe {
    type Error = CandleError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Timeframe> for String {
    fn from(tf: Timeframe) -> String {
        tf.as_str().to_string()
    }
}

/// Price field of a candle, used in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Open,
    High,
    Low,
    Close,
    Volume,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Open => "open",
            Field::High => "high",
            Field::Low => "low",
            Field::Close => "close",
            Field::Volume => "volume",
        })
    }
}

/// A validation or conversion error. `row` is the 0-based index of the candle in the series;
/// `time` is its open time, rendered as ISO 8601 in messages.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum CandleError {
    #[error("unknown timeframe `{0}` (expected one of 1m 5m 15m 30m 1h 4h 1d 1w)")]
    UnknownTimeframe(String),
    #[error("column lengths differ: time has {time} rows but {field} has {len}")]
    ColumnLength {
        field: Field,
        time: usize,
        len: usize,
    },
    #[error("row {row} ({}): {field} is not a finite number", format_iso(*time))]
    NonFinite { row: usize, time: i64, field: Field },
    #[error("row {row} ({}): {field} {value} is not positive", format_iso(*time))]
    NonPositivePrice {
        row: usize,
        time: i64,
        field: Field,
        value: f64,
    },
    #[error("row {row} ({}): high {high} is below max(open, close) = {body}", format_iso(*time))]
    HighBelowBody {
        row: usize,
        time: i64,
        high: f64,
        body: f64,
    },
    #[error("row {row} ({}): low {low} is above min(open, close) = {body}", format_iso(*time))]
    LowAboveBody {
        row: usize,
        time: i64,
        low: f64,
        body: f64,
    },
    #[error("row {row} ({}): volume {volume} is negative", format_iso(*time))]
    NegativeVolume { row: usize, time: i64, volume: f64 },
    #[error(
        "row {row} ({}): timestamp is not after the previous row ({})",
        format_iso(*time),
        format_iso(*previous)
    )]
    NotIncreasing {
        row: usize,
        time: i64,
        previous: i64,
    },
    #[error("row {row} ({}): timestamp is not aligned to the {timeframe} grid", format_iso(*time))]
    Misaligned {
        row: usize,
        time: i64,
        timeframe: Timeframe,
    },
    #[error("cannot resample {from} candles to {to}: the target must be a larger multiple")]
    Resample { from: Timeframe, to: Timeframe },
}

/// A run of missing candles: open times `from..=to` (both missing), `missing` candles in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub from: i64,
    pub to: i64,
    pub missing: usize,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} missing candle(s) from {} to {}",
            self.missing,
            format_iso(self.from),
            format_iso(self.to)
        )
    }
}

/// One candle, as passed to streaming indicators.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Bar {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// Columnar OHLCV series. All columns have the same length; `time[i]` is the UTC open time of
/// candle `i` in epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candles {
    pub timeframe: Timeframe,
    pub time: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
}

impl Candles {
    /// An empty series.
    pub fn new(timeframe: Timeframe) -> Self {
        Self::with_capacity(timeframe, 0)
    }

    /// An empty series with room for `n` candles.
    pub fn with_capacity(timeframe: Timeframe, n: usize) -> Self {
        Self {
            timeframe,
            time: Vec::with_capacity(n),
            open: Vec::with_capacity(n),
            high: Vec::with_capacity(n),
            low: Vec::with_capacity(n),
            close: Vec::with_capacity(n),
            volume: Vec::with_capacity(n),
        }
    }

    /// Appends one candle (not validated; call [`Candles::validate`]).
    pub fn push(&mut self, time: i64, open: f64, high: f64, low: f64, close: f64, volume: f64) {
        self.time.push(time);
        self.open.push(open);
        self.high.push(high);
        self.low.push(low);
        self.close.push(close);
        self.volume.push(volume);
    }

    /// Number of candles (length of the `time` column).
    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// Whether there are no candles.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    /// Candle `i` as a [`Bar`]. Panics if `i` is out of range (like slice indexing).
    pub fn bar(&self, i: usize) -> Bar {
        Bar {
            open: self.open[i],
            high: self.high[i],
            low: self.low[i],
            close: self.close[i],
            volume: self.volume[i],
        }
    }

    fn check_lengths(&self) -> Result<(), CandleError> {
        let n = self.time.len();
        for (field, len) in [
            (Field::Open, self.open.len()),
            (Field::High, self.high.len()),
            (Field::Low, self.low.len()),
            (Field::Close, self.close.len()),
            (Field::Volume, self.volume.len()),
        ] {
            if len != n {
                return Err(CandleError::ColumnLength {
                    field,
                    time: n,
                    len,
                });
            }
        }
        Ok(())
    }

    /// Checks one row against the candle invariants (and against the previous row's time).
    ///
    /// # Errors
    /// The first problem found in the row.
    pub fn validate_row(&self, row: usize, previous_time: Option<i64>) -> Result<(), CandleError> {
        let time = self.time[row];
        let (o, h, l, c, v) = (
            self.open[row],
            self.high[row],
            self.low[row],
            self.close[row],
            self.volume[row],
        );
        for (field, value) in [
            (Field::Open, o),
            (Field::High, h),
            (Field::Low, l),
            (Field::Close, c),
            (Field::Volume, v),
        ] {
            if !value.is_finite() {
                return Err(CandleError::NonFinite { row, time, field });
            }
            if field != Field::Volume && value <= 0.0 {
                return Err(CandleError::NonPositivePrice {
                    row,
                    time,
                    field,
                    value,
                });
            }
        }
        if v < 0.0 {
            return Err(CandleError::NegativeVolume {
                row,
                time,
                volume: v,
            });
        }
        if h < o.max(c) {
            return Err(CandleError::HighBelowBody {
                row,
                time,
                high: h,
                body: o.max(c),
            });
        }
        if l > o.min(c) {
            return Err(CandleError::LowAboveBody {
                row,
                time,
                low: l,
                body: o.min(c),
            });
        }
        if let Some(previous) = previous_time
            && time <= previous
        {
            return Err(CandleError::NotIncreasing {
                row,
                time,
                previous,
            });
        }
        if !self.timeframe.is_aligned(time) {
            return Err(CandleError::Misaligned {
                row,
                time,
                timeframe: self.timeframe,
            });
        }
        Ok(())
    }

    /// Validates the whole series: equal column lengths, finite positive prices, `high >=
    /// max(open, close)`, `low <= min(open, close)`, non-negative volume, strictly increasing
    /// timestamps aligned to the timeframe. Gaps are not errors (see [`Candles::gaps`]).
    ///
    /// # Errors
    /// The first problem found, with its row and time.
    pub fn validate(&self) -> Result<(), CandleError> {
        self.check_lengths()?;
        for row in 0..self.len() {
            let prev = if row > 0 {
                Some(self.time[row - 1])
            } else {
                None
            };
            self.validate_row(row, prev)?;
        }
        Ok(())
    }

    /// Missing candles, as ranges of open times. Assumes increasing, aligned timestamps
    /// (pairs that are not increasing are skipped).
    pub fn gaps(&self) -> Vec<Gap> {
        let step = self.timeframe.millis();
        self.time
            .windows(2)
            .filter_map(|w| {
                let d = w[1] - w[0];
                (d > step).then(|| {
                    let missing = ((d / step) - 1) as usize;
                    Gap {
                        from: w[0] + step,
                        to: w[1] - step,
                        missing: missing.max(1),
                    }
                })
            })
            .collect()
    }

    /// Aggregates into a larger timeframe: open = first, high = max, low = min, close = last,
    /// volume = sum, keyed by the target's aligned open time. Buckets that are only partly
    /// covered (series edges, gaps) are emitted from the candles present; buckets with no
    /// candle at all are not invented.
    ///
    /// # Errors
    /// [`CandleError::Resample`] unless `to` is a whole multiple of (or equal to) the timeframe.
    pub fn resample(&self, to: Timeframe) -> Result<Candles, CandleError> {
        let from = self.timeframe;
        if to.millis() < from.millis() || to.millis() % from.millis() != 0 {
            return Err(CandleError::Resample { from, to });
        }
        let mut out =
            Candles::with_capacity(to, self.len() / (to.millis() / from.millis()) as usize + 1);
        let mut i = 0;
        let n = self.len();
        while i < n {
            let bucket = to.floor(self.time[i]);
            let (o, mut h, mut l, mut c, mut v) = (
                self.open[i],
                self.high[i],
                self.low[i],
                self.close[i],
                self.volume[i],
            );
            i += 1;
            while i < n && to.floor(self.time[i]) == bucket {
                h = h.max(self.high[i]);
                l = l.min(self.low[i]);
                c = self.close[i];
                v += self.volume[i];
                i += 1;
            }
            out.push(bucket, o, h, l, c, v);
        }
        Ok(out)
    }

    /// The candles whose open time is in `from..to` (epoch ms; `None` = unbounded).
    pub fn between(&self, from: Option<i64>, to: Option<i64>) -> Candles {
        let start = from.map_or(0, |f| self.time.partition_point(|&t| t < f));
        let end = to.map_or(self.len(), |t| self.time.partition_point(|&x| x < t));
        self.slice(start..end.max(start))
    }

    /// A copy of a range of rows.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Candles {
        let r = range.start.min(self.len())..range.end.min(self.len());
        Candles {
            timeframe: self.timeframe,
            time: self.time[r.clone()].to_vec(),
            open: self.open[r.clone()].to_vec(),
            high: self.high[r.clone()].to_vec(),
            low: self.low[r.clone()].to_vec(),
            close: self.close[r.clone()].to_vec(),
            volume: self.volume[r].to_vec(),
        }
    }

    /// Content fingerprint identifying the exact data a result was computed from: 128 bits
    /// (hex, prefixed `vx128:`) over the timeframe, the length and every column's bits, in
    /// four independent multiply-xor lanes (several GB/s, so it is cheap even for 10 M bars).
    /// Not cryptographic: it detects changed data, it does not resist a forger.
    pub fn content_hash(&self) -> String {
        const K: [u64; 4] = [
            0x9E37_79B9_7F4A_7C15,
            0xC2B2_AE3D_27D4_EB4F,
            0x1656_67B1_9E37_79F9,
            0xD6E8_FEB8_6659_FD93,
        ];
        fn mix<T: Copy>(lanes: &mut [u64; 4], words: &[T], bits: impl Fn(T) -> u64) {
            let [mut a, mut b, mut c, mut d] = *lanes;
            let mut chunks = words.chunks_exact(4);
            for w in &mut chunks {
                a = (a ^ bits(w[0])).wrapping_mul(K[0]).rotate_left(31);
                b = (b ^ bits(w[1])).wrapping_mul(K[1]).rotate_left(31);
                c = (c ^ bits(w[2])).wrapping_mul(K[2]).rotate_left(31);
                d = (d ^ bits(w[3])).wrapping_mul(K[3]).rotate_left(31);
            }
            for (k, &w) in chunks.remainder().iter().enumerate() {
                a = (a ^ bits(w) ^ (k as u64 + 1))
                    .wrapping_mul(K[0])
                    .rotate_left(29);
            }
            *lanes = [a, b, c, d];
        }
        let mut lanes = K;
        let tf = self.timeframe.millis() as u64;
        mix(&mut lanes, &[tf, self.len() as u64], |w| w);
        mix(&mut lanes, &self.time, |t| t as u64);
        for col in [&self.open, &self.high, &self.low, &self.close, &self.volume] {
            mix(&mut lanes, col, f64::to_bits);
        }
        let fin = |a: u64, b: u64| {
            let mut h = a ^ b.rotate_left(17);
            h ^= h >> 33;
            h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
            h ^= h >> 33;
            h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
            h ^ (h >> 33)
        };
        let hi = fin(lanes[0], lanes[1]) ^ fin(lanes[2], lanes[3]).rotate_left(7);
        let lo = fin(lanes[1], lanes[2]) ^ fin(lanes[3], lanes[0]).rotate_left(11);
        format!("vx128:{hi:016x}{lo:016x}")
    }
}

#[cfg(test)]
mod tests;
