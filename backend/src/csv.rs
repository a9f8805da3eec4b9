//! CSV cells for the downloads (trades, audit log): quoted when needed, spreadsheet formulas defused.

/// Quotes a CSV cell when needed, and defuses spreadsheet formulas (a cell starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return that is not a number gets a leading `'`).
pub fn cell(c: &str) -> String {
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
    use super::cell;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=cmd()"), "'=cmd()");
        assert_eq!(cell("-1.5"), "-1.5");
        assert_eq!(cell("rsi < 30"), "rsi < 30");
        assert_eq!(cell("@SUM(A1)\nx"), "\"'@SUM(A1)\nx\"");
    }
}
