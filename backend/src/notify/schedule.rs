//! Time-zone and DST-safe schedule maths for digests and quiet hours (docs/design/notifications.md §4.6). Pure:
//! everything takes the current instant (clock time) and returns instants; nothing reads a clock.
//!
//! Local times that do not exist (the spring-forward gap) are read with the offset in force before the gap, so
//! 02:30 in New York on 14 March 2027 is 03:30 EDT (07:30Z): the schedule slips by the gap, never skips a day.
//! Local times that exist twice (the autumn overlap) take the earlier instant, so a digest at 01:30 on
//! 7 November 2027 goes out once, at the first 01:30.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// How often the digest goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Off,
    Daily,
    Weekly,
}

impl Frequency {
    pub const ALL: [Frequency; 3] = [Frequency::Off, Frequency::Daily, Frequency::Weekly];

    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Off => "off",
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// The time zone named `name` (an IANA name from the profile), UTC when it is unknown.
pub fn tz(name: &str) -> Tz {
    name.parse().unwrap_or(Tz::UTC)
}

/// The instant of the local time `local` in `tz`: the earlier one of an overlap; inside a gap, the instant the
/// local time names with the offset in force before the gap (the wall-clock time shifted by the gap).
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.to_utc(),
        LocalResult::Ambiguous(a, b) => a.min(b).to_utc(),
        LocalResult::None => {
            // The offset a day before (no zone changes its offset twice within a day).
            let before = tz
                .from_local_datetime(&(local - Duration::days(1)))
                .earliest()
                .map_or(0, |t| {
                    use chrono::Offset;
                    t.offset().fix().local_minus_utc()
                });
            (local - Duration::seconds(i64::from(before))).and_utc()
        }
    }
}

/// The first digest instant strictly after `after` for a digest `freq` at local time `at` (on ISO `weekday`,
/// Monday = 1, when weekly) in `tz`; `None` when digests are off.
pub fn next_digest(
    after: DateTime<Utc>,
    tz: Tz,
    freq: Frequency,
    weekday: u8,
    at: NaiveTime,
) -> Option<DateTime<Utc>> {
    if freq == Frequency::Off {
        return None;
    }
    // Start a day early: the local date of `after` may be ahead of the date whose digest is still to come.
    let start = after.with_timezone(&tz).date_naive() - Duration::days(1);
    (0..16)
        .map(|i| start + Duration::days(i))
        .filter(|d| {
            freq == Frequency::Daily || d.weekday().number_from_monday() == u32::from(weekday)
        })
        .map(|d| resolve_local(tz, d.and_time(at)))
        .find(|t| *t > after)
}

/// Whether `now` falls in the quiet hours `start`–`end` (local times in `tz`; the window may wrap midnight;
/// `start == end` is an empty window).
pub fn in_quiet(now: DateTime<Utc>, tz: Tz, start: NaiveTime, end: NaiveTime) -> bool {
    let t = now.with_timezone(&tz).time();
    match start.cmp(&end) {
        std::cmp::Ordering::Less => start <= t && t < end,
        std::cmp::Ordering::Greater => t >= start || t < end,
        std::cmp::Ordering::Equal => false,
    }
}

/// When the quiet hours that `now` falls in end: the next instant after `now` whose local time is `end`
/// (gap and overlap rules as [`resolve_local`]). Outside quiet hours: `now`.
pub fn quiet_end(now: DateTime<Utc>, tz: Tz, start: NaiveTime, end: NaiveTime) -> DateTime<Utc> {
    if !in_quiet(now, tz, start, end) {
        return now;
    }
    let today = now.with_timezone(&tz).date_naive();
    (0..3)
        .map(|i| resolve_local(tz, (today + Duration::days(i)).and_time(end)))
        .find(|t| *t > now)
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }
    fn hm(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }
    fn ny() -> Tz {
        tz("America/New_York")
    }

    /// Every digest after `from` until `n` of them, each computed from the previous one (as the tick does).
    fn series(from: &str, tz: Tz, freq: Frequency, weekday: u8, at: &str, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut t = z(from);
        for _ in 0..n {
            t = next_digest(t, tz, freq, weekday, hm(at)).unwrap();
            out.push(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        out
    }

    #[test]
    fn notif_schedule_daily_digests_follow_local_time_across_the_spring_gap() {
        // New York, 08:00: 13:00Z (EST) until 14 March 2027, then 12:00Z (EDT).
        assert_eq!(
            series(
                "2027-03-12T00:00:00Z",
                ny(),
                Frequency::Daily,
                1,
                "08:00",
                4
            ),
            [
                "2027-03-12T13:00:00Z",
                "2027-03-13T13:00:00Z",
                "2027-03-14T12:00:00Z",
                "2027-03-15T12:00:00Z"
            ]
        );
        // 02:30 does not exist on 14 March: read with the offset before the gap (03:30 EDT).
        assert_eq!(
            series(
                "2027-03-13T12:00:00Z",
                ny(),
                Frequency::Daily,
                1,
                "02:30",
                3
            ),
            [
                "2027-03-14T07:30:00Z",
                "2027-03-15T06:30:00Z",
                "2027-03-16T06:30:00Z"
            ]
        );
        // Tokyo has no DST: 08:00 JST is 23:00Z of the day before, every day.
        assert_eq!(
            series(
                "2027-03-12T00:00:00Z",
                tz("Asia/Tokyo"),
                Frequency::Daily,
                1,
                "08:00",
                3
            ),
            [
                "2027-03-12T23:00:00Z",
                "2027-03-13T23:00:00Z",
                "2027-03-14T23:00:00Z"
            ]
        );
    }

    #[test]
    fn notif_schedule_the_autumn_overlap_sends_once_at_the_first_instant() {
        // 01:30 exists twice on 7 November 2027 (EDT then EST): the first one, once.
        assert_eq!(
            series(
                "2027-11-06T12:00:00Z",
                ny(),
                Frequency::Daily,
                1,
                "01:30",
                3
            ),
            [
                "2027-11-07T05:30:00Z",
                "2027-11-08T06:30:00Z",
                "2027-11-09T06:30:00Z"
            ]
        );
        // Asked again between the two 01:30s, the next one is the following day's.
        assert_eq!(
            next_digest(
                z("2027-11-07T05:45:00Z"),
                ny(),
                Frequency::Daily,
                1,
                hm("01:30")
            ),
            Some(z("2027-11-08T06:30:00Z"))
        );
        assert_eq!(
            series(
                "2027-11-06T00:00:00Z",
                ny(),
                Frequency::Daily,
                1,
                "08:00",
                2
            ),
            ["2027-11-06T12:00:00Z", "2027-11-07T13:00:00Z"]
        );
    }

    #[test]
    fn notif_schedule_lord_howe_shifts_by_thirty_minutes() {
        // Australia/Lord_Howe: +10:30 in winter, +11 in summer; clocks go 02:00 → 02:30 on 3 October 2027.
        let lh = tz("Australia/Lord_Howe");
        assert_eq!(
            series("2027-10-01T00:00:00Z", lh, Frequency::Daily, 1, "08:00", 3),
            [
                "2027-10-01T21:30:00Z",
                "2027-10-02T21:00:00Z",
                "2027-10-03T21:00:00Z"
            ]
        );
        // 02:15 on the change day does not exist: 02:45 (+11) = 15:45Z.
        assert_eq!(
            next_digest(
                z("2027-10-02T00:00:00Z"),
                lh,
                Frequency::Daily,
                1,
                hm("02:15")
            ),
            Some(z("2027-10-02T15:45:00Z"))
        );
        // Back to +10:30 on 4 April 2027: 01:45 exists twice; the first (+11) is 14:45Z.
        assert_eq!(
            next_digest(
                z("2027-04-03T00:00:00Z"),
                lh,
                Frequency::Daily,
                1,
                hm("01:45")
            ),
            Some(z("2027-04-03T14:45:00Z"))
        );
    }

    #[test]
    fn notif_schedule_weekly_digests_keep_their_weekday_and_local_time_across_dst() {
        // Mondays (1) at 08:00 in New York: 8 March (EST, 13:00Z), then 15 and 22 March (EDT, 12:00Z).
        assert_eq!(
            series(
                "2027-03-03T00:00:00Z",
                ny(),
                Frequency::Weekly,
                1,
                "08:00",
                3
            ),
            [
                "2027-03-08T13:00:00Z",
                "2027-03-15T12:00:00Z",
                "2027-03-22T12:00:00Z"
            ]
        );
        // Sundays (7) in Tokyo: the local date decides, not the UTC one (Sunday 08:00 JST is Saturday 23:00Z).
        assert_eq!(
            series(
                "2027-03-12T00:00:00Z",
                tz("Asia/Tokyo"),
                Frequency::Weekly,
                7,
                "08:00",
                2
            ),
            ["2027-03-13T23:00:00Z", "2027-03-20T23:00:00Z"]
        );
        assert_eq!(
            next_digest(
                z("2027-03-12T00:00:00Z"),
                ny(),
                Frequency::Off,
                1,
                hm("08:00")
            ),
            None
        );
    }

    #[test]
    fn notif_schedule_quiet_windows_wrap_midnight() {
        let (s, e) = (hm("22:00"), hm("07:00"));
        // New York (EST, UTC-5) on 12 March 2027.
        for (at, quiet) in [
            ("2027-03-13T02:59:00Z", false), // 21:59
            ("2027-03-13T03:00:00Z", true),  // 22:00
            ("2027-03-13T05:00:00Z", true),  // 00:00
            ("2027-03-13T11:59:00Z", true),  // 06:59
            ("2027-03-13T12:00:00Z", false), // 07:00
        ] {
            assert_eq!(in_quiet(z(at), ny(), s, e), quiet, "{at}");
        }
        assert_eq!(
            quiet_end(z("2027-03-13T03:00:00Z"), ny(), s, e),
            z("2027-03-13T12:00:00Z")
        );
        assert_eq!(
            quiet_end(z("2027-03-13T06:00:00Z"), ny(), s, e),
            z("2027-03-13T12:00:00Z")
        );
        // Across the spring change the night is an hour shorter: 07:00 EDT is 11:00Z.
        assert_eq!(
            quiet_end(z("2027-03-14T03:00:00Z"), ny(), s, e),
            z("2027-03-14T11:00:00Z")
        );
        // Outside quiet hours the end is now.
        let now = z("2027-03-13T15:00:00Z");
        assert_eq!(quiet_end(now, ny(), s, e), now);
        // A window within one day, and an empty one.
        let (s2, e2) = (hm("12:00"), hm("13:30"));
        assert!(in_quiet(z("2027-03-13T17:10:00Z"), ny(), s2, e2));
        assert!(!in_quiet(z("2027-03-13T18:30:00Z"), ny(), s2, e2));
        assert_eq!(
            quiet_end(z("2027-03-13T17:10:00Z"), ny(), s2, e2),
            z("2027-03-13T18:30:00Z")
        );
        assert!(!in_quiet(now, ny(), s2, s2));
        // Tokyo, 23:00–06:00.
        let tokyo = tz("Asia/Tokyo");
        assert!(in_quiet(
            z("2027-03-12T15:00:00Z"),
            tokyo,
            hm("23:00"),
            hm("06:00")
        ));
        assert_eq!(
            quiet_end(z("2027-03-12T15:00:00Z"), tokyo, hm("23:00"), hm("06:00")),
            z("2027-03-12T21:00:00Z")
        );
        assert_eq!(tz("Not/AZone"), Tz::UTC);
    }
}
