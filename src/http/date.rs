//! Date formatting: this stage owns the IMF-fixdate text of the Date field (RFC 9110
//! §5.6.7, §6.6.1) and its once-a-second cache.
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
}
