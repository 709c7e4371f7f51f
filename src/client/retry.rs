//! Retry policy: this module owns when a failed attempt may be tried again and how long
//! to wait first — exponential backoff with full jitter, or the server's `Retry-After`.
//! It never sleeps, sends or logs; `call.rs` asks it and does those.
//!
//! The jitter comes from a per-thread xorshift64* generator seeded from the standard
//! library's per-process random `RandomState` keys, the thread id and the clock: spreading
//! retries needs no cryptographic quality, and no `rand` dependency.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When and how a call is retried. Off by default ([`RetryPolicy::never`]); turn it on
/// for a client with `ClientBuilder::retry` or for one request with
/// `RequestBuilder::retry`.
///
/// An attempt is retried only when all of these hold:
///
/// * the request is idempotent — GET, HEAD, OPTIONS, PUT, DELETE, TRACE (RFC 9110 §9.2.2)
///   — or carries an `Idempotency-Key`;
/// * it failed to connect (refused, unreachable, `connect_timeout`: the request was never
///   sent), or was answered `429` or `5xx`;
/// * attempts are left (`max_attempts` counts the first one);
/// * the wait fits before the call's total deadline (the deadline is never passed to
///   retry: the last answer or error is returned instead).
///
/// The wait is the response's `Retry-After` when it has one (delay-seconds or an
/// HTTP-date, RFC 9110 §10.2.3) — unless it is longer than `max_retry_after`, and then
/// there is no retry — and otherwise a random time in `[0, min(max_delay, base_delay ×
/// 2^(n-1))]` before retry `n` ("full jitter").
///
/// ```
/// use std::time::Duration;
/// use h1server::client::RetryPolicy;
///
/// let policy = RetryPolicy::exponential(4)       // 1 attempt + up to 3 retries
///     .base_delay(Duration::from_millis(50))
///     .max_delay(Duration::from_secs(2));
/// assert_eq!(policy.max_attempts(), 4);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// [`RetryPolicy::never`].
    fn default() -> Self {
        RetryPolicy::never()
    }
}

impl RetryPolicy {
    /// One attempt, no retry (the client's default).
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }

    /// Up to `max_attempts` attempts in all (at least 1), with a base delay of 100 ms,
    /// capped at 5 s, and `Retry-After` honoured up to 30 s.
    pub fn exponential(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            ..RetryPolicy::never()
        }
    }

    /// The cap of the first retry's random wait; each later retry doubles it.
    pub fn base_delay(mut self, d: Duration) -> Self {
        self.base_delay = d;
        self
    }

    /// The largest cap any retry's random wait may have.
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// The longest `Retry-After` waited for; a longer one ends the retries (the response
    /// is returned as it is).
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The longest `Retry-After` honoured.
    pub(crate) fn retry_after_cap(&self) -> Duration {
        self.max_retry_after
    }

    /// The random wait before retry number `retry` (1 for the second attempt).
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(32);
        let cap = self
            .base_delay
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_delay);
        jitter_below(cap)
    }
}

/// True for the methods RFC 9110 §9.2.2 defines as idempotent.
pub(crate) fn is_idempotent_method(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
    )
}

/// True for the statuses worth another attempt: 429 and every 5xx.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// `Retry-After = HTTP-date / delay-seconds` (RFC 9110 §10.2.3), as a wait from `now`. A
/// date in the past is a wait of zero. Only the IMF-fixdate form of HTTP-date is read
/// (the obsolete RFC 850 and asctime forms give `None`, and backoff is used instead).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_imf_fixdate(v)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7) as seconds since the Unix epoch.
fn parse_imf_fixdate(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let day = num(5..7)?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| s.get(8..11) == Some(m))? as u64 + 1;
    let year = num(12..16)?;
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    let (h, m, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`), for years from 1970 on.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A uniformly random duration in `[0, cap]`, at nanosecond resolution.
pub(crate) fn jitter_below(cap: Duration) -> Duration {
    let nanos = cap.as_nanos().min(u128::from(u64::MAX)) as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(random_u64() % (nanos + 1).max(1))
}

thread_local! {
    /// This thread's xorshift64* state; 0 until first use.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// The next number of this thread's xorshift64* generator (Vigna, 2016).
pub(crate) fn random_u64() -> u64 {
    RNG.with(|cell| {
        let mut x = cell.get();
        if x == 0 {
            let mut h = RandomState::new().build_hasher();
            std::thread::current().id().hash(&mut h);
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                .hash(&mut h);
            x = h.finish() | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        cell.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_values() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let table: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("3", Some(3)),
            (" 120 ", Some(120)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(0)),
            ("Sun, 06 Nov 1994 08:49:47 GMT", Some(10)),
            ("Sun, 06 Nov 1994 09:49:37 GMT", Some(3600)),
            ("Mon, 07 Nov 1994 08:49:37 GMT", Some(86_400)),
            ("Sat, 05 Nov 1994 08:49:37 GMT", Some(0)),
            (
                "Wed, 01 Mar 2000 00:00:00 GMT",
                Some(951_868_800 - 784_111_777),
            ),
            ("", None),
            ("-1", None),
            ("1.5", None),
            ("soon", None),
            ("Sunday, 06-Nov-94 08:49:37 GMT", None),
            ("Sun Nov  6 08:49:37 1994", None),
            ("Sun, 06 Foo 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 25:49:37 GMT", None),
            ("Sun, 6 Nov 1994 08:49:37 GMT", None),
        ];
        for &(v, want) in table {
            assert_eq!(
                parse_retry_after(v, now),
                want.map(Duration::from_secs),
                "{v:?}"
            );
        }
    }

    #[test]
    fn epoch_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            days_from_civil(1994, 11, 6) * 86_400 + 8 * 3600 + 49 * 60 + 37,
            784_111_777
        );
        assert_eq!(
            days_from_civil(2000, 2, 29) + 1,
            days_from_civil(2000, 3, 1)
        );
    }

    #[test]
    fn backoff_stays_under_its_doubling_cap() {
        let p = RetryPolicy::exponential(10)
            .base_delay(Duration::from_millis(10))
            .max_delay(Duration::from_millis(70));
        for retry in 1..=10u32 {
            let cap = Duration::from_millis((10u64 << (retry - 1)).min(70));
            let mut max_seen = Duration::ZERO;
            for _ in 0..200 {
                let d = p.backoff(retry);
                assert!(d <= cap, "retry {retry}: {d:?} > {cap:?}");
                max_seen = max_seen.max(d);
            }
            // Full jitter spreads over the range: 200 draws reach its upper half.
            assert!(max_seen > cap / 2, "retry {retry}: {max_seen:?}");
        }
        assert_eq!(RetryPolicy::never().max_attempts(), 1);
        assert_eq!(RetryPolicy::exponential(0).max_attempts(), 1);
        assert_eq!(jitter_below(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn idempotency_and_statuses() {
        for m in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] {
            assert!(is_idempotent_method(m));
        }
        for m in ["POST", "PATCH", "CONNECT", "get", "PROPFIND"] {
            assert!(!is_idempotent_method(m));
        }
        for s in [429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(s));
        }
        for s in [200, 301, 400, 404, 408, 428, 600] {
            assert!(!is_retryable_status(s));
        }
    }
}
