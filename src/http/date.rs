//! Dates: this stage owns the IMF-fixdate text of the Date field (RFC 9110 §5.6.7,
//! §6.6.1) and its once-a-second cache, and parses the three HTTP-date formats a
//! recipient must accept (for the conditional request fields, `crate::conditional`).
//! It never reads a clock, touches a socket or a thread: the caller supplies the time.

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;

/// Latest representable instant, 9999-12-31T23:59:59Z: IMF-fixdate has a 4-digit year
/// (`year = 4DIGIT`, RFC 9110 §5.6.7); later times are clamped to it.
const MAX_SECS: u64 = 253_402_300_799;

const DAYS: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Formats an IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`;
/// always 29 bytes. Times after year 9999 are clamped to its last second.
pub fn format_imf_fixdate(unix_secs: u64, out: &mut [u8; 29]) {
    let secs = unix_secs.min(MAX_SECS);
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4).
    let wday = ((days + 4) % 7) as usize;

    out[0..3].copy_from_slice(DAYS[wday]);
    out[3..5].copy_from_slice(b", ");
    two(&mut out[5..7], day);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[month as usize - 1]);
    out[11] = b' ';
    two(&mut out[12..14], year / 100);
    two(&mut out[14..16], year % 100);
    out[16] = b' ';
    two(&mut out[17..19], sod / 3600);
    out[19] = b':';
    two(&mut out[20..22], sod / 60 % 60);
    out[22] = b':';
    two(&mut out[23..25], sod % 60);
    out[25..29].copy_from_slice(b" GMT");
}

#[inline]
fn two(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01 (non-negative here):
/// returns (year, month 1..=12, day 1..=31) in the proleptic Gregorian calendar.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Howard Hinnant's `days_from_civil`: days since 1970-01-01 (negative before) of a
/// proleptic Gregorian date; `month` 1..=12.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The digits of `s` as a number; `None` unless every byte is an ASCII digit.
fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn month_of(s: &[u8]) -> Option<i64> {
    MONTHS
        .iter()
        .position(|m| &m[..] == s)
        .map(|i| i as i64 + 1)
}

/// `HH:MM:SS` as seconds of the day; a leap second (`:60`) is accepted.
fn time_of_day(s: &[u8]) -> Option<i64> {
    if s.len() != 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&s[0..2])?, digits(&s[3..5])?, digits(&s[6..8])?);
    (h < 24 && m < 60 && sec <= 60).then_some(h * 3600 + m * 60 + sec)
}

fn instant(year: i64, month: i64, day: i64, secs_of_day: i64) -> Option<i64> {
    if !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + secs_of_day)
}

/// The year an RFC 850 date's two digits name: the one in the current century, unless
/// that is more than 50 years after `now_year`, then the century before (RFC 9110 §5.6.7).
fn full_year(two: i64, now_year: i64) -> i64 {
    let y = now_year - now_year.rem_euclid(100) + two;
    if y > now_year + 50 { y - 100 } else { y }
}

/// The year (UTC) of `unix_secs`.
fn year_of(unix_secs: i64) -> i64 {
    civil_from_days(unix_secs.max(0) as u64 / 86_400).0 as i64
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) in the three formats a recipient must accept —
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and ANSI C's asctime (`Sun Nov  6 08:49:37 1994`) —
/// to seconds since the Unix epoch (negative before 1970). `now_secs` places RFC 850's
/// two-digit year. Names and `GMT` are case-sensitive (`%s` in the grammar); the
/// day-name must be a day's name but is not checked against the date. Anything else
/// (other spacing, a day 31 in a 30-day month, an hour 24) is `None`.
pub fn parse_http_date(s: &[u8], now_secs: i64) -> Option<i64> {
    let day_name = |n: &[u8]| DAYS.iter().any(|d| &d[..] == n);
    if s.len() == 29 && s[3] == b',' {
        // IMF-fixdate: day-name "," SP 2DIGIT SP month SP 4DIGIT SP time SP "GMT"
        if !day_name(&s[0..3]) || s[4] != b' ' || s[7] != b' ' || s[11] != b' ' {
            return None;
        }
        if s[16] != b' ' || &s[25..29] != b" GMT" {
            return None;
        }
        let day = digits(&s[5..7])?;
        let month = month_of(&s[8..11])?;
        let year = digits(&s[12..16])?;
        return instant(year, month, day, time_of_day(&s[17..25])?);
    }
    if s.len() == 24 && s[3] == b' ' {
        // asctime: day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time SP 4DIGIT
        if !day_name(&s[0..3]) || s[7] != b' ' || s[10] != b' ' || s[19] != b' ' {
            return None;
        }
        let month = month_of(&s[4..7])?;
        let day = match s[8] {
            b' ' => digits(&s[9..10])?,
            _ => digits(&s[8..10])?,
        };
        let year = digits(&s[20..24])?;
        return instant(year, month, day, time_of_day(&s[11..19])?);
    }
    // rfc850-date: day-name-l "," SP 2DIGIT "-" month "-" 2DIGIT SP time SP "GMT"
    let comma = s.iter().position(|&b| b == b',')?;
    let (name, rest) = (&s[..comma], &s[comma..]);
    const LONG: [&[u8]; 7] = [
        b"Sunday",
        b"Monday",
        b"Tuesday",
        b"Wednesday",
        b"Thursday",
        b"Friday",
        b"Saturday",
    ];
    if !LONG.contains(&name) || rest.len() != 24 {
        return None;
    }
    // rest: ", 06-Nov-94 08:49:37 GMT"
    if &rest[0..2] != b", " || rest[4] != b'-' || rest[8] != b'-' || rest[11] != b' ' {
        return None;
    }
    if &rest[20..24] != b" GMT" {
        return None;
    }
    let day = digits(&rest[2..4])?;
    let month = month_of(&rest[5..8])?;
    let year = full_year(digits(&rest[9..11])?, year_of(now_secs));
    instant(year, month, day, time_of_day(&rest[12..20])?)
}

/// Caches the formatted date; re-formats only when the second changes. The caller
/// supplies the time (sans-I/O).
#[derive(Debug)]
pub struct DateCache {
    secs: Option<u64>,
    text: [u8; 29],
}

impl DateCache {
    /// An empty cache; the first [`DateCache::get`] formats.
    pub fn new() -> Self {
        DateCache {
            secs: None,
            text: [0; 29],
        }
    }

    /// The IMF-fixdate for `unix_secs`, formatted only if it differs from the last call.
    #[inline]
    pub fn get(&mut self, unix_secs: u64) -> &[u8; 29] {
        if self.secs != Some(unix_secs) {
            format_imf_fixdate(unix_secs, &mut self.text);
            self.secs = Some(unix_secs);
        }
        &self.text
    }
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(secs: u64) -> String {
        let mut out = [0u8; 29];
        format_imf_fixdate(secs, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn known_dates() {
        let table: &[(u64, &str)] = &[
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (59, "Thu, 01 Jan 1970 00:00:59 GMT"),
            (86_399, "Thu, 01 Jan 1970 23:59:59 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"), // RFC 9110 §5.6.7's example
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"), // 400-year leap day
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
            (1_709_251_200, "Fri, 01 Mar 2024 00:00:00 GMT"),
            (1_735_689_599, "Tue, 31 Dec 2024 23:59:59 GMT"),
            (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"),
            (4_107_456_000, "Sun, 28 Feb 2100 00:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"), // 2100 is not a leap year
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
            (MAX_SECS, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for &(secs, want) in table {
            assert_eq!(fmt(secs), want, "{secs}");
            assert_eq!(want.len(), IMF_FIXDATE_LEN);
        }
    }

    #[test]
    fn every_day_round_trips() {
        // Walk day by day from 1970 to 2400 and check the calendar advances correctly.
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for days in 1..(430 * 366) {
            let cur = civil_from_days(days);
            let (y, m, d) = prev;
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let month_len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            let next = if d < month_len[m as usize - 1] {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(cur, next, "day {days}");
            prev = cur;
        }
    }

    #[test]
    fn cache_reformats_on_new_second() {
        let mut c = DateCache::default();
        assert_eq!(c.get(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(c.get(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(c.get(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(c.get(1), b"Thu, 01 Jan 1970 00:00:01 GMT");
    }

    #[test]
    fn the_three_formats_parse_to_the_same_instant() {
        let now = 1_735_689_599; // 2024
        for s in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(s.as_bytes(), now), Some(784_111_777), "{s}");
        }
    }

    #[test]
    fn formatted_dates_parse_back() {
        for secs in [0, 59, 951_782_400, 1_709_251_199, 2_147_483_647, MAX_SECS] {
            assert_eq!(
                parse_http_date(fmt(secs).as_bytes(), 0),
                Some(secs as i64),
                "{secs}"
            );
        }
        // Before 1970 (a client may send one): negative seconds.
        assert_eq!(
            parse_http_date(b"Wed, 31 Dec 1969 23:59:59 GMT", 0),
            Some(-1)
        );
    }

    #[test]
    fn rfc850_years_more_than_50_years_ahead_are_the_century_before() {
        let now = 1_735_689_599; // 2024-12-31
        let year = |s: &str| {
            let t = parse_http_date(s.as_bytes(), now).unwrap();
            civil_from_days(t.div_euclid(86_400) as u64).0
        };
        assert_eq!(year("Thursday, 01-Jan-70 00:00:00 GMT"), 2070);
        assert_eq!(year("Thursday, 01-Jan-74 00:00:00 GMT"), 2074);
        assert_eq!(year("Thursday, 01-Jan-75 00:00:00 GMT"), 1975);
        assert_eq!(year("Thursday, 01-Jan-99 00:00:00 GMT"), 1999);
        assert_eq!(year("Thursday, 01-Jan-24 00:00:00 GMT"), 2024);
    }

    #[test]
    fn invalid_dates_are_none() {
        for s in [
            "",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT ",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 08-49-37 GMT",
            "Sun, 06 Nov 1994 +8:49:37 GMT",
            "Sun, 06 Nov 199x 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov  6 08:49:37 1994 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06 Nov 94 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 UTC",
            "Funday, 06-Nov-94 08:49:37 GMT",
            "1994-11-06T08:49:37Z",
            "784111777",
            "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(s.as_bytes(), 0), None, "{s:?}");
        }
        // A leap second is accepted (it is the next minute's first second).
        assert_eq!(
            parse_http_date(b"Sat, 31 Dec 2016 23:59:60 GMT", 0),
            Some(1_483_228_800)
        );
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for days in (0..(430 * 366)).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y as i64, m as i64, d as i64), days as i64);
        }
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
    }
}
