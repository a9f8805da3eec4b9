//! UTC timestamp helpers: epoch milliseconds <-> ISO 8601, with no clock and no allocation-heavy
//! date library. Civil-date arithmetic uses Howard Hinnant's `days_from_civil` algorithm.

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) for days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (with `.mmm` when there are milliseconds).
pub fn format_iso(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let rem = ms.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1000;
    let milli = rem % 1000;
    let (hh, mm, ss) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if milli == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{milli:03}Z")
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize, what: &str) -> Result<i64, String> {
        if self.pos + n > self.s.len() {
            return Err(format!("expected {n} digits for {what}"));
        }
        let mut v: i64 = 0;
        for i in 0..n {
            let c = self.s[self.pos + i];
            if !c.is_ascii_digit() {
                return Err(format!("expected {n} digits for {what}"));
            }
            v = v * 10 + i64::from(c - b'0');
        }
        self.pos += n;
        Ok(v)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
}

/// Parses a timestamp: epoch milliseconds (an integer) or ISO 8601
/// `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH:MM|±HHMM|±HH]`. No zone means UTC.
///
/// # Errors
/// A human-readable reason when the text is not a valid timestamp.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty timestamp".into());
    }
    let b = t.as_bytes();
    let all_digits = b
        .iter()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || (i == 0 && *c == b'-' && b.len() > 1));
    if all_digits {
        return t
            .parse::<i64>()
            .map_err(|_| format!("epoch milliseconds `{t}` out of range"));
    }
    parse_iso(t).map_err(|e| format!("invalid timestamp `{t}`: {e}"))
}

fn parse_iso(t: &str) -> Result<i64, String> {
    let mut c = Cursor {
        s: t.as_bytes(),
        pos: 0,
    };
    let year = c.digits(4, "the year")?;
    if !c.eat(b'-') {
        return Err("expected `-` after the year".into());
    }
    let month = c.digits(2, "the month")? as u32;
    if !c.eat(b'-') {
        return Err("expected `-` after the month".into());
    }
    let day = c.digits(2, "the day")? as u32;
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} is not 1..12"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!("day {day} does not exist in {year:04}-{month:02}"));
    }
    let mut ms = days_from_civil(year, month, day) * DAY_MS;
    if c.peek().is_none() {
        return Ok(ms);
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err("expected `T` or a space between date and time".into());
    }
    let hh = c.digits(2, "the hour")?;
    if !c.eat(b':') {
        return Err("expected `:` after the hour".into());
    }
    let mm = c.digits(2, "the minute")?;
    let mut ss = 0;
    let mut frac_ms = 0;
    if c.eat(b':') {
        ss = c.digits(2, "the second")?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.pos;
            let mut scale = 100;
            while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                frac_ms += i64::from(d - b'0') * scale;
                scale /= 10;
                c.pos += 1;
            }
            if c.pos == start {
                return Err("expected digits after the decimal point".into());
            }
        }
    }
    if hh > 23 || mm > 59 || ss > 60 {
        return Err(format!("time {hh:02}:{mm:02}:{ss:02} is out of range"));
    }
    ms += ((hh * 60 + mm) * 60 + ss) * 1000 + frac_ms;
    match c.peek() {
        None => Ok(ms),
        Some(b'Z' | b'z') => {
            c.pos += 1;
            if c.peek().is_some() {
                return Err("unexpected text after `Z`".into());
            }
            Ok(ms)
        }
        Some(sign @ (b'+' | b'-')) => {
            c.pos += 1;
            let oh = c.digits(2, "the zone hours")?;
            let mut om = 0;
            if c.peek().is_some() {
                c.eat(b':');
                om = c.digits(2, "the zone minutes")?;
            }
            if c.peek().is_some() {
                return Err("unexpected text after the zone offset".into());
            }
            if oh > 23 || om > 59 {
                return Err("zone offset out of range".into());
            }
            let off = (oh * 60 + om) * 60_000;
            Ok(if sign == b'+' { ms - off } else { ms + off })
        }
        Some(_) => Err("unexpected text after the time (expected `Z` or an offset)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for ms in [
            0,
            1_515_560_100_000,
            -86_400_000,
            951_782_400_000,
            4_102_444_800_123,
        ] {
            assert_eq!(parse_timestamp(&format_iso(ms)).unwrap(), ms);
        }
    }

    #[test]
    fn zones_and_forms() {
        let z = parse_timestamp("2018-01-10T04:55:00Z").unwrap();
        assert_eq!(z, 1_515_560_100_000);
        assert_eq!(parse_timestamp("2018-01-10T04:55:00").unwrap(), z);
        assert_eq!(parse_timestamp("2018-01-10 04:55").unwrap(), z);
        assert_eq!(parse_timestamp("2018-01-10T06:55:00+02:00").unwrap(), z);
        assert_eq!(parse_timestamp("2018-01-10T00:55:00-0400").unwrap(), z);
        assert_eq!(parse_timestamp("1515560100000").unwrap(), z);
        assert_eq!(
            parse_timestamp("2018-01-10").unwrap(),
            z - (4 * 60 + 55) * 60_000
        );
        assert!(parse_timestamp("2018-02-30").is_err());
        assert!(parse_timestamp("2018-01-10T25:00").is_err());
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("").is_err());
    }
}
