//! CSV candle reader. Pure: callers open files; this reads any `impl Read` or `&str`.
//!
//! Format: a header naming `timestamp,open,high,low,close,volume` in any order (names are
//! case-insensitive; `time`, `date`, `datetime` and `open_time` are accepted for `timestamp`;
//! other columns are ignored). Timestamps are candle **open** times: ISO 8601 with or without a
//! zone (no zone = UTC) or integer epoch milliseconds. Blank lines are skipped, CRLF and a UTF-8
//! BOM are accepted, fields may be wrapped in double quotes.

use std::io::Read;

use crate::candles::{CandleError, Candles, Gap, Timeframe};
use crate::time::parse_timestamp;

/// Largest input accepted (bytes), so a hostile upload cannot exhaust memory.
pub const MAX_CSV_BYTES: u64 = 2 << 30;

/// A CSV error. `line` is 1-based (the header is line 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CsvError {
    #[error("could not read the CSV input: {0}")]
    Io(String),
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("the CSV has a header but no data rows")]
    Empty,
    #[error("{0}")]
    Timeframe(String),
}

impl CsvError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        CsvError::Line {
            line,
            message: message.into(),
        }
    }

    /// The 1-based line number, when the error belongs to one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            CsvError::Line { line, .. } => Some(*line),
            _ => None,
        }
    }
}

const COLUMNS: [&str; 6] = ["timestamp", "open", "high", "low", "close", "volume"];

fn column_index(name: &str) -> Option<usize> {
    let n = name.trim().trim_matches('"').trim().to_ascii_lowercase();
    match n.as_str() {
        "timestamp" | "time" | "date" | "datetime" | "open_time" => Some(0),
        other => COLUMNS.iter().position(|c| *c == other),
    }
}

/// Reads candles from CSV text. With `timeframe = None` the timeframe is inferred as the
/// smallest step between consecutive timestamps (gaps only make steps larger). Every row is
/// validated (see [`Candles::validate`]); errors name the line. Gaps are returned, never fatal.
///
/// # Errors
/// [`CsvError`] with the line number and what is wrong.
pub fn read_candles<R: Read>(
    reader: R,
    timeframe: Option<Timeframe>,
) -> Result<(Candles, Vec<Gap>), CsvError> {
    let mut text = String::new();
    reader
        .take(MAX_CSV_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| CsvError::Io(e.to_string()))?;
    if text.len() as u64 > MAX_CSV_BYTES {
        return Err(CsvError::Io(format!(
            "input larger than {MAX_CSV_BYTES} bytes"
        )));
    }
    parse_candles(&text, timeframe)
}

/// [`read_candles`] over a string.
///
/// # Errors
/// See [`read_candles`].
pub fn parse_candles(
    text: &str,
    timeframe: Option<Timeframe>,
) -> Result<(Candles, Vec<Gap>), CsvError> {
    let parsed = parse(text, timeframe, false)?;
    Ok((parsed.candles, parsed.gaps))
}

/// What a lenient read ([`parse_candles_skipping_bad_rows`]) returns: the good rows, their gaps, and one
/// error per rejected line.
#[derive(Debug, Clone, PartialEq)]
pub struct LenientRead {
    pub candles: Candles,
    pub gaps: Vec<Gap>,
    pub rejected: Vec<CsvError>,
}

/// Like [`parse_candles`], but a bad data row is reported in `rejected` (with its line) and skipped instead of
/// failing the whole input. Header problems, an input without any good row, and an uninferable timeframe are
/// still errors.
///
/// # Errors
/// See [`read_candles`].
pub fn parse_candles_skipping_bad_rows(
    text: &str,
    timeframe: Option<Timeframe>,
) -> Result<LenientRead, CsvError> {
    parse(text, timeframe, true)
}

fn parse(text: &str, timeframe: Option<Timeframe>, lenient: bool) -> Result<LenientRead, CsvError> {
    let mut rejected = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_line, header)) = lines.next() else {
        return Err(CsvError::at(
            1,
            "empty input: expected a header `timestamp,open,high,low,close,volume`",
        ));
    };
    let mut map: [Option<usize>; 6] = [None; 6];
    let mut ncols = 0;
    for (pos, name) in header.split(',').enumerate() {
        ncols += 1;
        if let Some(k) = column_index(name) {
            if map[k].is_some() {
                return Err(CsvError::at(
                    header_line,
                    format!("column `{}` appears twice in the header", COLUMNS[k]),
                ));
            }
            map[k] = Some(pos);
        }
    }
    let mut idx = [0usize; 6];
    for k in 0..6 {
        idx[k] = map[k].ok_or_else(|| {
            CsvError::at(
                header_line,
                format!(
                    "the header has no `{}` column (expected timestamp,open,high,low,close,volume)",
                    COLUMNS[k]
                ),
            )
        })?;
    }

    // Parse everything first (the timeframe may have to be inferred from the timestamps).
    let mut rows_line: Vec<usize> = Vec::new();
    let mut time = Vec::new();
    let mut cols: [Vec<f64>; 5] = Default::default();
    let mut fields: Vec<&str> = Vec::with_capacity(ncols);
    let mut values = [0f64; 5];
    for (line, raw) in lines {
        fields.clear();
        fields.extend(raw.split(','));
        let row = (|| {
            if fields.len() != ncols {
                return Err(CsvError::at(
                    line,
                    format!(
                        "expected {ncols} fields like the header, found {}",
                        fields.len()
                    ),
                ));
            }
            let field = |k: usize| fields[idx[k]].trim().trim_matches('"').trim();
            let t = parse_timestamp(field(0))
                .map_err(|e| CsvError::at(line, format!("timestamp: {e}")))?;
            for k in 1..6 {
                let s = field(k);
                values[k - 1] = s.parse().map_err(|_| {
                    CsvError::at(line, format!("{}: `{s}` is not a number", COLUMNS[k]))
                })?;
            }
            Ok(t)
        })();
        match row {
            Ok(t) => {
                time.push(t);
                for (col, v) in cols.iter_mut().zip(values) {
                    col.push(v);
                }
                rows_line.push(line);
            }
            Err(e) if lenient => rejected.push(e),
            Err(e) => return Err(e),
        }
    }
    if time.is_empty() {
        return match rejected.into_iter().next() {
            Some(first) => Err(first),
            None => Err(CsvError::Empty),
        };
    }
    let tf = match timeframe {
        Some(tf) => tf,
        None => infer_timeframe(&time, &rows_line, lenient)?,
    };
    let [open, high, low, close, volume] = cols;
    let candles = Candles {
        timeframe: tf,
        time,
        open,
        high,
        low,
        close,
        volume,
    };
    let mut keep = Vec::with_capacity(candles.len());
    let mut prev = None;
    for (row, &line) in rows_line.iter().enumerate() {
        match candles.validate_row(row, prev) {
            Ok(()) => {
                keep.push(row);
                prev = Some(candles.time[row]);
            }
            Err(e) if lenient => rejected.push(CsvError::at(line, strip_row(&e))),
            Err(e) => return Err(CsvError::at(line, strip_row(&e))),
        }
    }
    let candles = if keep.len() == candles.len() {
        candles
    } else {
        let mut kept = Candles::with_capacity(tf, keep.len());
        for row in keep {
            let b = candles.bar(row);
            kept.push(candles.time[row], b.open, b.high, b.low, b.close, b.volume);
        }
        kept
    };
    if candles.is_empty() {
        return match rejected.into_iter().next() {
            Some(first) => Err(first),
            None => Err(CsvError::Empty),
        };
    }
    rejected.sort_by_key(|e| e.line());
    let gaps = candles.gaps();
    Ok(LenientRead {
        candles,
        gaps,
        rejected,
    })
}

/// The message of a row error without its "row N (time): " prefix (the line number replaces it).
fn strip_row(e: &CandleError) -> String {
    let s = e.to_string();
    match s.split_once("): ") {
        Some((head, rest)) if head.starts_with("row ") => {
            let time = head.split_once(" (").map_or("", |(_, t)| t);
            format!("{rest} (at {time})")
        }
        _ => s,
    }
}

fn infer_timeframe(time: &[i64], lines: &[usize], lenient: bool) -> Result<Timeframe, CsvError> {
    let mut min_step: Option<i64> = None;
    for (i, w) in time.windows(2).enumerate() {
        let d = w[1] - w[0];
        if d <= 0 && lenient {
            // Reported as a row error by the validation that follows.
            continue;
        }
        if d <= 0 {
            return Err(CsvError::at(
                lines[i + 1],
                "timestamp is not after the previous row's",
            ));
        }
        min_step = Some(min_step.map_or(d, |m| m.min(d)));
    }
    let Some(step) = min_step else {
        return Err(CsvError::Timeframe(
            "cannot infer the timeframe from a single row: pass it explicitly".into(),
        ));
    };
    Timeframe::from_millis(step).ok_or_else(|| {
        CsvError::Timeframe(format!(
            "cannot infer the timeframe: the smallest step between rows is {} s, which is not one of 1m 5m 15m 30m 1h 4h 1d 1w",
            step / 1000
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_any_column_order_and_infers_timeframe() {
        let csv = "volume,close,timestamp,open,low,high\r\n\
                   5,1.5,2018-01-10T04:55:00Z,1,0.5,2\r\n\
                   \r\n\
                   6,1.6,2018-01-10T05:00:00,1.5,1.4,1.7\r\n\
                   7,1.7,1515560700000,1.6,1.5,1.8\r\n";
        let (c, gaps) = read_candles(csv.as_bytes(), None).unwrap();
        assert_eq!(c.timeframe, Timeframe::M5);
        assert_eq!(c.len(), 3);
        assert_eq!(c.close, vec![1.5, 1.6, 1.7]);
        assert_eq!(c.time[2] - c.time[1], 300_000);
        assert!(gaps.is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let bad = "timestamp,open,high,low,close,volume\n\
                   2018-01-10T04:55:00Z,1,2,0.5,1.5,5\n\
                   2018-01-10T05:00:00Z,1,0.9,0.5,1.5,5\n";
        let e = parse_candles(bad, None).unwrap_err();
        assert_eq!(e.line(), Some(3), "{e}");
        assert!(e.to_string().contains("high 0.9 is below"), "{e}");
        let e = parse_candles("timestamp,open,high,low,close\n", None).unwrap_err();
        assert!(e.to_string().contains("no `volume` column"), "{e}");
        let e = parse_candles(
            "timestamp,open,high,low,close,volume\n2018-13-01,1,1,1,1,1\n",
            None,
        )
        .unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e =
            parse_candles("timestamp,open,high,low,close,volume\nx,1,1,1,1\n", None).unwrap_err();
        assert!(e.to_string().contains("expected 6 fields"), "{e}");
        let e = parse_candles(
            "timestamp,open,high,low,close,volume\n0,1,1,1,abc,1\n",
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("close: `abc` is not a number"),
            "{e}"
        );
        assert!(matches!(
            parse_candles("timestamp,open,high,low,close,volume\n", None),
            Err(CsvError::Empty)
        ));
    }

    #[test]
    fn weekend_gaps_are_reported_not_fatal() {
        // Friday, Saturday missing, Sunday missing, Monday.
        let csv = "timestamp,open,high,low,close,volume\n\
                   2024-01-05,1,1,1,1,1\n2024-01-08,1,1,1,1,1\n2024-01-09,1,1,1,1,1\n";
        let (c, gaps) = parse_candles(csv, None).unwrap();
        assert_eq!(c.timeframe, Timeframe::D1);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].missing, 2);
    }

    #[test]
    fn a_lenient_read_keeps_the_good_rows_and_names_the_bad_lines() {
        let csv = "timestamp,open,high,low,close,volume\n\
                   2018-01-10T04:55:00Z,1,2,0.5,1.5,5\n\
                   2018-01-10T05:00:00Z,1,0.9,0.5,1.5,5\n\
                   2018-01-10T05:05:00Z,1,2,0.5,x,5\n\
                   2018-01-10T05:10:00Z,1,2,0.5,1.5,5\n\
                   2018-01-10T05:10:00Z,1,2,0.5,1.5,5\n";
        let read = parse_candles_skipping_bad_rows(csv, None).unwrap();
        assert_eq!(read.candles.len(), 2);
        let lines: Vec<_> = read.rejected.iter().filter_map(CsvError::line).collect();
        assert_eq!(lines, vec![3, 4, 6]);
        assert_eq!(read.gaps.len(), 1);
        // Strict reading fails on a bad line (fields are parsed before candles are validated).
        assert_eq!(parse_candles(csv, None).unwrap_err().line(), Some(4));
    }
}
