//! A run's trades as CSV (one row per trade; times in RFC 3339 UTC; spreadsheet formulas defused).

use super::TradeRow;
use crate::csv::cell as csv_cell;

/// The trades as CSV (one row per trade; times in RFC 3339 UTC).
pub fn trades_csv(trades: &[TradeRow]) -> String {
    let mut out = String::from(TRADES_CSV_HEADER);
    for t in trades {
        push_trade_csv_line(&mut out, t);
    }
    out
}

/// The first line of [`trades_csv`].
pub const TRADES_CSV_HEADER: &str = "seq,entry_time,exit_time,entry_price,exit_price,units,fees,pnl,return_pct,bars_held,exit_reason,entry_rule,exit_rule\n";

/// One trade's line of [`trades_csv`] (with its newline).
pub fn trade_csv_line(t: &TradeRow) -> String {
    let mut out = String::with_capacity(160);
    push_trade_csv_line(&mut out, t);
    out
}

/// Appends [`trade_csv_line`] to `out`. Numbers and times go in as they are (they never need quoting, and a
/// number is not a formula); the text cells through [`csv_cell`].
pub fn push_trade_csv_line(out: &mut String, t: &TradeRow) {
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "{},{},{},{},{},{},{},{},{},{},",
        t.seq,
        t.entry_time.to_rfc3339(),
        t.exit_time.to_rfc3339(),
        t.entry_price,
        t.exit_price,
        t.units,
        t.fees,
        t.pnl,
        t.return_pct,
        t.bars_held,
    );
    out.push_str(&csv_cell(&t.exit_reason));
    out.push(',');
    out.push_str(&csv_cell(&t.entry_rule));
    out.push(',');
    out.push_str(&csv_cell(t.exit_rule.as_deref().unwrap_or_default()));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_every_field_through_csv_cell() {
        use chrono::TimeZone;
        let at = chrono::Utc.timestamp_millis_opt(1_515_560_100_000).unwrap();
        for (pnl, reason, rule, exit) in [
            (-12.5, "exit signal", "entry long when a > b", None),
            (
                f64::NAN,
                "stop, loss",
                "=cmd()",
                Some("exit long when \"x\""),
            ),
            (f64::NEG_INFINITY, "@x", "+1", Some("-a")),
        ] {
            let t = TradeRow {
                seq: 7,
                entry_time: at,
                exit_time: at,
                entry_price: 0.1,
                exit_price: 1e-7,
                units: 123_456.789,
                fees: 0.0,
                pnl,
                return_pct: -0.0,
                bars_held: 3,
                exit_reason: reason.into(),
                entry_rule: rule.into(),
                entry_values: vec![],
                exit_rule: exit.map(str::to_owned),
                exit_values: vec![],
            };
            let cells = [
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
            let want = cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(",")
                + "\n";
            assert_eq!(trade_csv_line(&t), want);
        }
    }
}
