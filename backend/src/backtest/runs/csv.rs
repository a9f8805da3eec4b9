//! A run's trades as CSV (one row per trade; times in RFC 3339 UTC; spreadsheet formulas defused).

use super::TradeRow;

/// The trades as CSV (one row per trade; times in RFC 3339 UTC).
pub fn trades_csv(trades: &[TradeRow]) -> String {
    let mut out = String::from(TRADES_CSV_HEADER);
    for t in trades {
        out.push_str(&trade_csv_line(t));
    }
    out
}

/// The first line of [`trades_csv`].
pub const TRADES_CSV_HEADER: &str = "seq,entry_time,exit_time,entry_price,exit_price,units,fees,pnl,return_pct,bars_held,exit_reason,entry_rule,exit_rule\n";

/// One trade's line of [`trades_csv`] (with its newline).
pub fn trade_csv_line(t: &TradeRow) -> String {
    let row = [
        t.seq.to_string(),
        t.entry_time.to_rfc3339(),
        t.exit_time.to_rfc3339(),
        t.entry_price.to_string(),
        t.exit_price.to_string(),
        t.units.to_string(),
        t.fees.to_string(),
        t.pnl.to_string(),
        t.return_pct.to_string(),
        t.bars_held.to_string(),
        t.exit_reason.clone(),
        t.entry_rule.clone(),
        t.exit_rule.clone().unwrap_or_default(),
    ];
    let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
    let mut out = cells.join(",");
    out.push('\n');
    out
}

/// Quotes a CSV cell when needed, and defuses spreadsheet formulas (a cell starting with `=`, `+`, `-`, `@`
/// that is not a number gets a leading `'`).
fn csv_cell(c: &str) -> String {
    let mut c = c.to_owned();
    if c.starts_with(['=', '+', '-', '@', '\t', '\r']) && c.parse::<f64>().is_err() {
        c.insert(0, '\'');
    }
    if c.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(csv_cell("-1.5"), "-1.5");
        assert_eq!(csv_cell("rsi < 30"), "rsi < 30");
    }
}
