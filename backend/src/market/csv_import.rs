//! CSV import in the shared format (`timestamp,open,high,low,close,volume`, see `data/README.md`), read by the
//! engine's CSV reader (the one parser and validator of candles).
//!
//! By default a file is all or nothing: the first malformed row fails the import with its line number and the
//! problem, and nothing from that file is stored. With `skip_bad_rows` the good rows are stored and every bad
//! row is reported. Either way the file's candles are written in one transaction, with idempotent upserts.
//!
//! Demo data: files named `BASE-QUOTE-TIMEFRAME.csv` (e.g. `ETH-BTC-5m.csv`) name their own instrument and
//! timeframe ([`FileName::parse`]); [`import_dir`] loads a whole folder such as `data/market`.

use std::path::{Path, PathBuf};

use engine::csv::{CsvError, parse_candles_skipping_bad_rows};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Pair, Timeframe, store};

/// Largest CSV accepted (bytes). A 1 M-candle file is about 70 MB.
pub const MAX_CSV_BYTES: u64 = 512 * 1024 * 1024;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub exchange: String,
    pub pair: Pair,
    /// `None`: inferred from the timestamps.
    pub timeframe: Option<Timeframe>,
    /// Store the good rows and report the bad ones instead of rejecting the file.
    pub skip_bad_rows: bool,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub instrument_id: i32,
    pub pair: Pair,
    pub timeframe: Timeframe,
    /// Valid rows read.
    pub rows: usize,
    /// Rows written (new or changed); 0 when the same file is imported again.
    pub written: u64,
    /// Rows rejected (only with `skip_bad_rows`), each naming its line.
    pub rejected: Vec<CsvError>,
    /// Missing candles inside the file's range.
    pub gaps: Vec<super::Gap>,
}

/// Why an import failed. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{source_name}: {error}")]
    Csv {
        source_name: String,
        error: CsvError,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("reading {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Imports CSV text. `source_name` names the input in errors and in the run record.
///
/// # Errors
/// [`ImportError`]; nothing is stored then.
pub async fn import_text(
    db: &PgPool,
    text: &str,
    source_name: &str,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let parsed = parse_text(text, source_name, opts)?;
    let mut tx = db.begin().await?;
    let report = store_parsed(&mut tx, parsed, source_name, opts).await?;
    tx.commit().await?;
    Ok(report)
}

/// CSV text read into candles, not stored yet.
pub struct Parsed {
    candles: engine::candles::Candles,
    rejected: Vec<CsvError>,
    gaps: Vec<super::Gap>,
}

/// Reads CSV text (all rows valid unless `opts.skip_bad_rows`).
///
/// # Errors
/// [`ImportError::Csv`] naming the first bad line.
pub fn parse_text(
    text: &str,
    source_name: &str,
    opts: &ImportOptions,
) -> Result<Parsed, ImportError> {
    let csv_err = |error| ImportError::Csv {
        source_name: source_name.to_owned(),
        error,
    };
    let parse_started = std::time::Instant::now();
    let read = parse_candles_skipping_bad_rows(text, opts.timeframe).map_err(csv_err)?;
    tracing::debug!(
        source_name,
        rows = read.candles.len(),
        parse_ms = parse_started.elapsed().as_millis() as u64,
        "CSV parsed"
    );
    if !opts.skip_bad_rows
        && let Some(first) = read.rejected.first()
    {
        return Err(csv_err(first.clone()));
    }
    Ok(Parsed {
        candles: read.candles,
        rejected: read.rejected,
        gaps: read.gaps,
    })
}

/// Stores parsed candles and their run record in the caller's transaction (which may add its own effects,
/// e.g. the audit entry of an upload, before committing).
///
/// # Errors
/// Database errors.
pub async fn store_parsed(
    tx: &mut sqlx::PgConnection,
    parsed: Parsed,
    source_name: &str,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let Parsed {
        candles,
        rejected,
        gaps,
    } = parsed;
    let tf = candles.timeframe;
    let instrument = store::ensure_instrument(&mut *tx, &opts.exchange, &opts.pair).await?;
    let written = store::upsert_candles(&mut *tx, instrument.instrument_id, &candles).await?;
    store::touch_series(&mut *tx, instrument.instrument_id, tf, None, written > 0).await?;
    let (first, last) = (candles.time[0], candles.time[candles.len() - 1]);
    let run_id = Uuid::new_v4();
    store::insert_run(
        &mut *tx,
        &store::NewRun {
            run_id,
            instrument_id: instrument.instrument_id,
            timeframe: tf,
            mode: "csv",
            source: &format!("csv:{source_name}"),
            from: first,
            to: last + tf.millis(),
            chunks_total: 1,
            candles_expected: i64::try_from(candles.len()).unwrap_or(i64::MAX),
        },
    )
    .await?;
    store::add_progress(&mut *tx, run_id, candles.len()).await?;
    Ok(ImportReport {
        instrument_id: instrument.instrument_id,
        pair: opts.pair.clone(),
        timeframe: tf,
        rows: candles.len(),
        written,
        rejected,
        gaps,
    })
}

/// Imports one file.
///
/// # Errors
/// [`ImportError`]; nothing is stored then.
pub async fn import_file(
    db: &PgPool,
    path: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let io = |error| ImportError::Io {
        path: path.to_owned(),
        error,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_CSV_BYTES {
        return Err(ImportError::Invalid(format!(
            "{}: {size} bytes is larger than the {MAX_CSV_BYTES}-byte limit",
            path.display()
        )));
    }
    let text = tokio::fs::read_to_string(path).await.map_err(io)?;
    let name = path.display().to_string();
    import_text(db, &text, &name, opts).await
}

/// Instrument and timeframe named by a file `BASE-QUOTE-TIMEFRAME.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub pair: Pair,
    pub timeframe: Timeframe,
}

impl FileName {
    /// Parses `ETH-BTC-5m.csv`.
    ///
    /// # Errors
    /// A message naming the expected shape.
    pub fn parse(path: &Path) -> Result<Self, String> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let shape =
            || format!("`{name}` is not named BASE-QUOTE-TIMEFRAME.csv (e.g. ETH-BTC-5m.csv)");
        let stem = name.strip_suffix(".csv").ok_or_else(shape)?;
        let mut parts = stem.split('-');
        let (Some(b), Some(q), Some(tf), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(shape());
        };
        Ok(Self {
            pair: Pair::new(super::Asset::parse(b)?, super::Asset::parse(q)?),
            timeframe: Timeframe::parse(tf).map_err(|e| format!("`{name}`: {e}"))?,
        })
    }
}

/// The `*.csv` files of `dir` named `BASE-QUOTE-TIMEFRAME.csv`, sorted, with their parsed names.
///
/// # Errors
/// When the folder cannot be read or a CSV file there is not named properly.
pub fn list_dir(dir: &Path) -> Result<Vec<(PathBuf, FileName)>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("csv") {
            let name = FileName::parse(&path)?;
            out.push((path, name));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_file_names_name_pair_and_timeframe() {
        let f = FileName::parse(Path::new("data/market/ETH-BTC-5m.csv")).unwrap();
        assert_eq!(f.pair.to_string(), "ETH/BTC");
        assert_eq!(f.timeframe, Timeframe::M5);
        for bad in [
            "ETH-BTC.csv",
            "ETH-BTC-7m.csv",
            "ETH-BTC-5m.txt",
            "A-B-C-5m.csv",
        ] {
            assert!(FileName::parse(Path::new(bad)).is_err(), "{bad}");
        }
        let all = list_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market")).unwrap();
        assert_eq!(all.len(), 14);
    }
}
