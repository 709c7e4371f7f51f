//! Rate limiting: token buckets, one per client IP or one for everyone, that answer
//! `429 Too Many Requests` with `Retry-After` once a client has spent its burst.
//!
//! It never calls the rest of the chain for a request over the limit, never starts a
//! thread, and never grows past `max_clients` buckets: idle buckets are swept
//! opportunistically while requests arrive, and the least recently seen go when it is full.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::concurrency::WarnThrottle;
use super::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;
use crate::status;

/// A token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens available at `last` (fractional: the refill is continuous).
    tokens: f64,
    /// When `tokens` was last brought up to date; also "last seen", for eviction.
    last: Instant,
}

/// The budget every bucket of one limiter follows.
#[derive(Clone, Copy, Debug)]
struct Rate {
    /// Tokens gained per second.
    per_sec: f64,
    /// Capacity of a bucket, as a float for the math.
    burst: f64,
}

impl Rate {
    /// A full bucket, as a client never seen before gets.
    fn full(&self, now: Instant) -> Bucket {
        Bucket {
            tokens: self.burst,
            last: now,
        }
    }

    /// Refills `b` up to `now`, then takes one token: `Ok(whole tokens left)`, or
    /// `Err(time until one token is available)` when the bucket holds less than one.
    fn take(&self, b: &mut Bucket, now: Instant) -> Result<u32, Duration> {
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(b.tokens as u32)
        } else {
            let wait = (1.0 - b.tokens) / self.per_sec;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
        }
    }

    /// How long an empty bucket takes to fill up: a bucket idle this long equals no bucket.
    fn refill_time(&self) -> Duration {
        Duration::try_from_secs_f64(self.burst / self.per_sec).unwrap_or(Duration::MAX)
    }
}

/// `Retry-After` delay-seconds for a wait: whole seconds rounded up, at least 1.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0));
    secs.max(1)
}

/// The per-client buckets, bounded in number.
#[derive(Debug)]
struct Clients {
    /// One bucket per client key (see [`client_key`]).
    map: HashMap<IpAddr, Bucket>,
    /// Never more buckets than this (`max_clients`).
    max: usize,
    /// A bucket unused this long is dropped at the next sweep (`idle_ttl`).
    idle_ttl: Duration,
    /// When the next opportunistic sweep is due: sweeping on a schedule instead of on
    /// every request keeps the lock short; there is no background thread.
    next_sweep: Instant,
    /// Keeps a flood of new clients from flooding the log with evictions.
    log: WarnThrottle,
}

impl Clients {
    fn new(now: Instant) -> Self {
        Clients {
            map: HashMap::new(),
            max: 10_000,
            idle_ttl: Duration::from_secs(600),
            next_sweep: now,
            log: WarnThrottle::new(),
        }
    }

    /// After this long unused, a bucket is dropped: `idle_ttl`, or sooner when the bucket
    /// has refilled completely by then (forgetting it changes nothing).
    fn forget_after(&self, rate: &Rate) -> Duration {
        self.idle_ttl.min(rate.refill_time())
    }

    /// Takes a token from `key`'s bucket (creating it full if new).
    fn take(&mut self, rate: &Rate, key: IpAddr, now: Instant) -> Result<u32, Duration> {
        if now >= self.next_sweep {
            self.sweep(rate, now);
        }
        if let Some(b) = self.map.get_mut(&key) {
            return rate.take(b, now);
        }
        if self.map.len() >= self.max {
            self.make_room(rate, now);
        }
        let mut b = rate.full(now);
        let verdict = rate.take(&mut b, now);
        self.map.insert(key, b);
        verdict
    }

    /// Drops every bucket idle for longer than [`forget_after`](Clients::forget_after).
    fn sweep(&mut self, rate: &Rate, now: Instant) {
        let forget = self.forget_after(rate);
        let before = self.map.len();
        self.map
            .retain(|_, b| now.saturating_duration_since(b.last) < forget);
        let interval = (forget / 2).clamp(Duration::from_millis(100), Duration::from_secs(60));
        self.next_sweep = now + interval;
        if self.map.len() < before {
            debug!(
                "rate limit: swept {} idle client bucket(s), {} left",
                before - self.map.len(),
                self.map.len()
            );
        }
    }

    /// Called when the table is full: sweeps, and when nothing was idle evicts the least
    /// recently seen eighth of the buckets (at least one), so the following new clients
    /// are inserted without another scan.
    fn make_room(&mut self, rate: &Rate, now: Instant) {
        self.sweep(rate, now);
        if self.map.len() < self.max {
            return;
        }
        let n = (self.max / 8).clamp(1, self.map.len());
        let mut by_age: Vec<(Instant, IpAddr)> =
            self.map.iter().map(|(k, b)| (b.last, *k)).collect();
        by_age.select_nth_unstable(n - 1);
        for (_, key) in &by_age[..n] {
            self.map.remove(key);
        }
        match self.log.should_warn() {
            Some(quiet) => warn!(
                "rate limit: all {} client buckets in use (max_clients); evicted the {n} least \
                 recently seen ({quiet} more evictions since the last warning)",
                self.max
            ),
            None => debug!("rate limit: table full; evicted the {n} least recently seen"),
        }
    }
}

/// What the limiter counts requests against.
#[derive(Debug)]
enum Scope {
    /// One bucket shared by every client.
    Global(Mutex<Bucket>),
    /// One bucket per client IP.
    PerIp(Mutex<Clients>),
}

/// Middleware that limits request rates with token buckets: `burst` requests at once,
/// then `rate_per_sec` on average, per client IP ([`per_ip`](RateLimit::per_ip)) or for
/// the whole server ([`global`](RateLimit::global)).
///
/// Over the limit it answers `429 Too Many Requests` with `Retry-After` (whole seconds
/// until a token is back, at least 1) and never calls the rest of the chain.
///
/// Clients are keyed by `req.peer_addr().ip()`; IPv6 clients by their /64 prefix (one
/// subscriber usually owns a whole /64, so per-address buckets would be free to dodge),
/// IPv4-mapped IPv6 addresses as the IPv4 address. Memory is bounded by
/// [`max_clients`](RateLimit::max_clients).
///
/// # The bucket math
///
/// A bucket holds at most `burst` tokens and gains `rate_per_sec` tokens per second,
/// continuously (a fraction of a token is kept). A request takes one token; when less than
/// one is left it is refused, and `Retry-After` says how long until one token is back,
/// rounded up to whole seconds and at least 1 (RFC 9110 §10.2.3: "delay-seconds", a
/// non-negative integer). A new client starts with a full bucket, so a bucket that has been
/// idle long enough to refill completely carries no information and may be forgotten.
///
/// ```
/// use h1server::middleware::{RateLimit, Stack};
/// use h1server::{testing::TestRequest, Request, Response};
///
/// let app = Stack::new(|_: &mut Request| Response::text("ok"))
///     .with(RateLimit::per_ip(1.0, 2));
/// assert_eq!(TestRequest::get("/").run(&app).status(), 200);
/// assert_eq!(TestRequest::get("/").run(&app).status(), 200);
/// let refused = TestRequest::get("/").run(&app);
/// assert_eq!(refused.status(), 429);
/// assert_eq!(refused.header("Retry-After"), Some("1"));
/// ```
pub struct RateLimit {
    /// Refill rate and capacity.
    rate: Rate,
    /// The bucket(s) and their lock.
    scope: Scope,
    /// Key clients by the last `X-Forwarded-For` address (only behind a trusted proxy).
    trust_forwarded_for: bool,
    /// Keeps a flood of 429s from flooding the log.
    log: WarnThrottle,
}

impl RateLimit {
    /// One bucket per client IP: `burst` requests at once, then `rate_per_sec` per second.
    ///
    /// # Panics
    /// When `rate_per_sec` is not a positive finite number or `burst` is 0 (a limiter that
    /// refuses everything is a configuration mistake).
    pub fn per_ip(rate_per_sec: f64, burst: u32) -> Self {
        Self::build(
            rate_per_sec,
            burst,
            Scope::PerIp(Mutex::new(Clients::new(Instant::now()))),
        )
    }

    /// One bucket for all clients together: the server as a whole accepts `burst` requests
    /// at once, then `rate_per_sec` per second. The `max_clients`, `idle_ttl` and
    /// `trust_forwarded_for` settings do not apply.
    ///
    /// # Panics
    /// As [`per_ip`](RateLimit::per_ip).
    pub fn global(rate_per_sec: f64, burst: u32) -> Self {
        let rate = Self::check(rate_per_sec, burst);
        Self::build(
            rate_per_sec,
            burst,
            Scope::Global(Mutex::new(rate.full(Instant::now()))),
        )
    }

    fn check(rate_per_sec: f64, burst: u32) -> Rate {
        assert!(
            rate_per_sec.is_finite() && rate_per_sec > 0.0,
            "RateLimit: rate_per_sec must be a positive number, not {rate_per_sec}"
        );
        assert!(burst > 0, "RateLimit: burst must be at least 1");
        Rate {
            per_sec: rate_per_sec,
            burst: f64::from(burst),
        }
    }

    fn build(rate_per_sec: f64, burst: u32, scope: Scope) -> Self {
        RateLimit {
            rate: Self::check(rate_per_sec, burst),
            scope,
            trust_forwarded_for: false,
            log: WarnThrottle::new(),
        }
    }

    fn clients_mut(&mut self) -> Option<&mut Clients> {
        match &mut self.scope {
            Scope::PerIp(m) => Some(m.get_mut().unwrap_or_else(PoisonError::into_inner)),
            Scope::Global(_) => None,
        }
    }

    /// At most this many client buckets are kept (default 10 000, at least 1). When the
    /// table is full and no bucket is idle, the least recently seen are evicted (and those
    /// clients start again with a full burst).
    pub fn max_clients(mut self, max_clients: usize) -> Self {
        if let Some(c) = self.clients_mut() {
            c.max = max_clients.max(1);
        }
        self
    }

    /// A client unseen for this long is forgotten (default 10 minutes). Buckets that have
    /// refilled completely are forgotten sooner, since that changes nothing.
    pub fn idle_ttl(mut self, idle_ttl: Duration) -> Self {
        if let Some(c) = self.clients_mut() {
            c.idle_ttl = idle_ttl;
        }
        self
    }

    /// Key clients by the first address of `X-Forwarded-For` instead of the peer address
    /// (default false). Falls back to the peer address when the header is missing or not
    /// an IP address.
    ///
    /// # Warning
    /// The first address is whatever the client wrote unless the proxy in front replaces
    /// the header (rather than appending to it): turn this on only behind such a proxy,
    /// or any client can pick its own bucket.
    pub fn trust_forwarded_for(mut self, trust: bool) -> Self {
        self.trust_forwarded_for = trust;
        self
    }

    /// How many client buckets are held right now (0 for a global limiter).
    pub fn tracked_clients(&self) -> usize {
        match &self.scope {
            Scope::PerIp(m) => lock(m).map.len(),
            Scope::Global(_) => 0,
        }
    }

    /// The bucket key of `req`'s client.
    fn client_key(&self, req: &Request) -> IpAddr {
        let forwarded = if self.trust_forwarded_for {
            forwarded_for(req)
        } else {
            None
        };
        normalise(forwarded.unwrap_or_else(|| req.peer_addr().ip()))
    }

    /// Takes a token for `req` at `now`.
    fn take(&self, req: &Request, now: Instant) -> Result<u32, Duration> {
        match &self.scope {
            Scope::Global(m) => self.rate.take(&mut lock(m), now),
            Scope::PerIp(m) => {
                let key = self.client_key(req);
                lock(m).take(&self.rate, key, now)
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last address of `X-Forwarded-For`: the one the trusted proxy in front of us
/// appended (nginx `$proxy_add_x_forwarded_for`, load balancers). Everything left of it
/// was written by the client and could be chosen freely to get a fresh bucket per
/// request. An `address:port` form is accepted too.
fn forwarded_for(req: &Request) -> Option<IpAddr> {
    let last = req
        .header_values("x-forwarded-for")
        .last()?
        .rsplit(',')
        .next()?
        .trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The bucket key of an address: IPv4 as is (also when IPv4-mapped), IPv6 by its /64.
fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
        },
    }
}

impl Middleware for RateLimit {
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        match self.take(req, Instant::now()) {
            Ok(_) => next.run(req),
            Err(wait) => {
                let secs = retry_after_secs(wait);
                match self.log.should_warn() {
                    Some(quiet) => warn!(
                        "conn={} rate limit hit by {}: 429 to {} {} (Retry-After {secs}; \
                         {quiet} more 429s since the last warning)",
                        req.conn_id(),
                        self.client_key(req),
                        req.method_str(),
                        req.path()
                    ),
                    None => debug!(
                        "conn={} rate limit hit by {}: 429",
                        req.conn_id(),
                        self.client_key(req)
                    ),
                }
                Response::error(
                    status::TOO_MANY_REQUESTS,
                    "Too many requests: slow down and retry later.\n",
                )
                .with_header("Retry-After", secs.to_string())
            }
        }
    }
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("rate_per_sec", &self.rate.per_sec)
            .field("burst", &self.rate.burst)
            .field("global", &matches!(self.scope, Scope::Global(_)))
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestRequest;

    const RATE: Rate = Rate {
        per_sec: 2.0,
        burst: 3.0,
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_new_bucket_allows_the_burst_then_refuses_with_the_wait_for_one_token() {
        let t0 = Instant::now();
        let mut b = RATE.full(t0);
        assert_eq!(RATE.take(&mut b, t0), Ok(2));
        assert_eq!(RATE.take(&mut b, t0), Ok(1));
        assert_eq!(RATE.take(&mut b, t0), Ok(0));
        // Empty: one token takes 1 / 2 per second = 500 ms.
        assert_eq!(RATE.take(&mut b, t0), Err(ms(500)));
        // 200 ms later, 0.4 token is back: 300 ms to go.
        let wait = RATE.take(&mut b, t0 + ms(200)).unwrap_err();
        assert!((wait.as_secs_f64() - 0.3).abs() < 1e-9, "{wait:?}");
        assert!(RATE.take(&mut b, t0 + ms(500)).is_ok());
    }

    #[test]
    fn refill_is_continuous_and_capped_at_the_burst() {
        let t0 = Instant::now();
        let mut b = RATE.full(t0);
        for _ in 0..3 {
            RATE.take(&mut b, t0).unwrap();
        }
        // An hour later the bucket holds 3 tokens, not 7200.
        assert_eq!(RATE.take(&mut b, t0 + Duration::from_secs(3600)), Ok(2));
        assert_eq!(RATE.refill_time(), ms(1500));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(ms(1)), 1);
        assert_eq!(retry_after_secs(ms(1000)), 1);
        assert_eq!(retry_after_secs(ms(1001)), 2);
        assert_eq!(retry_after_secs(Duration::MAX), u64::MAX);
        // A tiny rate makes the wait overflow a Duration: it saturates.
        let tiny = Rate {
            per_sec: 1e-300,
            burst: 1.0,
        };
        let t0 = Instant::now();
        let mut b = Bucket {
            tokens: 0.0,
            last: t0,
        };
        assert_eq!(tiny.take(&mut b, t0), Err(Duration::MAX));
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    #[test]
    fn memory_stays_bounded_with_many_client_ips() {
        let t0 = Instant::now();
        let mut c = Clients::new(t0);
        c.max = 1000;
        for i in 0..100_000u32 {
            // All active at once (nothing idle): eviction must still hold the bound.
            c.take(&RATE, ip(i), t0 + Duration::from_micros(u64::from(i)))
                .unwrap();
            assert!(c.map.len() <= 1000);
        }
        // The most recent clients are still tracked; the oldest were evicted.
        assert!(c.map.contains_key(&ip(99_999)));
        assert!(!c.map.contains_key(&ip(0)));
    }

    #[test]
    fn idle_buckets_are_swept_after_the_ttl() {
        let slow = Rate {
            per_sec: 0.001,
            burst: 5.0,
        }; // refills in 5000 s, so only the ttl applies
        let t0 = Instant::now();
        let mut c = Clients::new(t0);
        c.idle_ttl = Duration::from_secs(60);
        c.take(&slow, ip(1), t0).unwrap();
        c.take(&slow, ip(2), t0 + Duration::from_secs(50)).unwrap();
        c.take(&slow, ip(3), t0 + Duration::from_secs(90)).unwrap();
        assert!(!c.map.contains_key(&ip(1)), "idle 90 s > 60 s ttl");
        assert!(c.map.contains_key(&ip(2)));
        assert!(c.map.contains_key(&ip(3)));
    }

    #[test]
    fn a_fully_refilled_bucket_is_forgotten_before_the_ttl() {
        let t0 = Instant::now();
        let mut c = Clients::new(t0);
        c.take(&RATE, ip(1), t0).unwrap();
        c.take(&RATE, ip(2), t0 + Duration::from_secs(2)).unwrap();
        // ip 1 had refilled after 1.5 s: the same as absent.
        assert_eq!(c.map.len(), 1);
    }

    #[test]
    fn when_full_and_nothing_is_idle_the_least_recently_seen_go() {
        let t0 = Instant::now();
        let mut c = Clients::new(t0);
        c.max = 8;
        for i in 0..8 {
            c.take(&RATE, ip(i), t0 + ms(u64::from(i))).unwrap();
        }
        // ip 0 comes back, so ip 1 is now the least recently seen.
        c.take(&RATE, ip(0), t0 + ms(10)).unwrap();
        c.take(&RATE, ip(100), t0 + ms(11)).unwrap();
        assert_eq!(c.map.len(), 8);
        assert!(c.map.contains_key(&ip(0)));
        assert!(!c.map.contains_key(&ip(1)));
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_mapped_ipv4_is_ipv4() {
        let a = normalise(addr("2001:db8:1:2:aaaa::1"));
        assert_eq!(a, normalise(addr("2001:db8:1:2:bbbb::9")));
        assert_ne!(a, normalise(addr("2001:db8:1:3::1")));
        assert_eq!(normalise(addr("::ffff:192.0.2.7")), addr("192.0.2.7"));
    }

    fn ok(_: &mut Request) -> Response {
        Response::text("ok")
    }

    #[test]
    fn over_the_limit_answers_429_with_retry_after_without_calling_next() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let app = crate::middleware::Stack::new(move |_: &mut Request| {
            seen.fetch_add(1, Ordering::SeqCst);
            Response::text("ok")
        })
        .with(RateLimit::per_ip(0.5, 1));
        assert_eq!(TestRequest::get("/").run(&app).status(), 200);
        let resp = TestRequest::get("/").run(&app);
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.header("Retry-After"), Some("2"));
        assert!(!resp.body_bytes().is_empty());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn each_peer_ip_has_its_own_bucket() {
        let app = crate::middleware::Stack::new(ok).with(RateLimit::per_ip(1.0, 1));
        let a = SocketAddr::from(([10, 0, 0, 1], 1000));
        let b = SocketAddr::from(([10, 0, 0, 2], 1000));
        assert_eq!(TestRequest::get("/").peer(a).run(&app).status(), 200);
        assert_eq!(TestRequest::get("/").peer(a).run(&app).status(), 429);
        assert_eq!(TestRequest::get("/").peer(b).run(&app).status(), 200);
    }

    fn addr(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let lim = RateLimit::per_ip(1.0, 1);
        let xff = |v: &str| TestRequest::get("/").header("X-Forwarded-For", v).build();
        // The client wrote "203.0.113.9"; our proxy appended the address it saw.
        let req = xff("203.0.113.9, 198.51.100.7");
        assert_eq!(lim.client_key(&req), addr("127.0.0.1"));
        let lim = lim.trust_forwarded_for(true);
        assert_eq!(
            lim.client_key(&req),
            addr("198.51.100.7"),
            "the proxy's entry, not the client's claim"
        );
        assert_eq!(
            lim.client_key(&xff("198.51.100.4:5555")),
            addr("198.51.100.4")
        );
        assert_eq!(lim.client_key(&xff("unknown")), addr("127.0.0.1"));
    }

    #[test]
    #[should_panic(expected = "rate_per_sec")]
    fn a_zero_rate_is_refused() {
        let _ = RateLimit::per_ip(0.0, 1);
    }

    #[test]
    #[should_panic(expected = "burst")]
    fn a_zero_burst_is_refused() {
        let _ = RateLimit::global(1.0, 0);
    }
}
