//! `vortex indicator`: print indicator series for a CSV file as CSV (no server needed).

use std::path::PathBuf;

use clap::Args;

use super::run_strategy::{bad, load_csv};

#[derive(Debug, Args)]
pub struct IndicatorArgs {
    /// Candle file.
    #[arg(long)]
    pub csv: PathBuf,
    /// Indicator expressions, e.g. 'rsi(close, 14)' 'macd(close, 12, 26, 9)'.
    #[arg(required = true)]
    pub expressions: Vec<String>,
}

/// `vortex indicator --csv FILE EXPR…`: prints `timestamp,<columns>` CSV (empty cells during warm-up).
pub fn indicator(args: &IndicatorArgs) -> anyhow::Result<()> {
    let candles = load_csv(&args.csv, None, None, None)?;
    let mut columns: Vec<(String, Vec<f64>)> = Vec::new();
    for expr in &args.expressions {
        let cols = engine::strategy::eval_series(expr, &candles).map_err(|diags| {
            let text: Vec<String> = diags.iter().map(|d| d.render(expr)).collect();
            bad(format!("`{expr}`:\n{}", text.join("\n")))
        })?;
        columns.extend(cols);
    }
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let header: Vec<String> = columns
        .iter()
        .map(|(n, _)| format!("\"{}\"", n.replace('"', "\"\"")))
        .collect();
    writeln!(out, "timestamp,{}", header.join(","))?;
    for (i, t) in candles.time.iter().enumerate() {
        let ts = chrono::DateTime::from_timestamp_millis(*t).map_or_else(
            || t.to_string(),
            |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        write!(out, "{ts}")?;
        for (_, col) in &columns {
            let v = col[i];
            if v.is_finite() {
                write!(out, ",{v}")?;
            } else {
                write!(out, ",")?;
            }
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}
