//! Upstream selection of the reverse proxy: this stage owns the table of path prefixes
//! (longest match wins), each prefix's upstreams taken in round robin, and passive health
//! — an upstream that refused a connection is passed over until its cool-down ends.
//! It never does I/O and never reads a clock itself: every health decision takes `now`,
//! and the state shared between workers is atomics behind an `Arc`.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::client::Url;

/// The instant health times are measured from (process-wide, so an `AtomicU64` of
/// milliseconds can hold an `Instant`).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis_since_epoch(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_millis() as u64
}

/// One upstream server: where it is, and what the proxy has learnt about it.
#[derive(Debug)]
pub struct Upstream {
    /// `http://host[:port][/base]` as configured.
    url: Url,
    /// The path every forwarded target is put under (`/` for none), without a query.
    base: String,
    /// Milliseconds since [`epoch`] until which the upstream is passed over; 0 (or a
    /// time passed) when healthy. Written by whichever worker saw the outcome.
    down_until_ms: AtomicU64,
    /// Connection attempts made to it (forwarded requests plus refused attempts).
    attempts: AtomicU64,
    /// Attempts that failed to connect.
    refusals: AtomicU64,
    /// The address a host name resolved to, the first time it was needed (the proxy's
    /// I/O fills it; nothing here looks a name up).
    resolved: OnceLock<std::net::SocketAddr>,
}

impl Upstream {
    /// An upstream at `url` (`http://host[:port][/base-path]`; no query).
    pub fn new(url: &str) -> Result<Upstream, String> {
        let parsed = Url::parse(url).map_err(|e| format!("upstream {url:?}: {e}"))?;
        if parsed.target().contains('?') {
            return Err(format!(
                "upstream {url:?}: a query is not allowed in an upstream URL"
            ));
        }
        Ok(Upstream {
            base: parsed.target().to_string(),
            url: parsed,
            down_until_ms: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
            resolved: OnceLock::new(),
        })
    }

    /// The address its host name resolved to, once it has been (an IP literal never is).
    pub(crate) fn resolved(&self) -> Option<std::net::SocketAddr> {
        self.resolved.get().copied()
    }

    /// Keeps the address its host name resolved to, for the life of the process (nginx,
    /// without a `resolver`, resolves upstream names once too).
    pub(crate) fn remember(&self, addr: std::net::SocketAddr) {
        let _ = self.resolved.set(addr);
    }

    /// `host[:port]`, as sent in `Host` when the client's is not preserved.
    pub fn authority(&self) -> &str {
        self.url.authority()
    }

    /// `host:port` with the port always present: how logs and errors name it.
    pub fn name(&self) -> String {
        self.url.upstream()
    }

    /// The request-target sent upstream for an incoming one (`/path?query`): the
    /// upstream's base path joined with it by a single slash (Go's `singleJoiningSlash`).
    pub fn target_for(&self, target: &str) -> String {
        join_path(&self.base, target)
    }

    /// True while the upstream is in its cool-down after a refusal.
    pub fn is_down(&self, now: Instant) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) > millis_since_epoch(now)
    }

    /// Records a refused (or timed-out) connection: passed over for `cooldown` from `now`.
    pub fn mark_refused(&self, now: Instant, cooldown: Duration) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        let until = millis_since_epoch(now) + cooldown.as_millis().max(1) as u64;
        self.down_until_ms.store(until, Ordering::Relaxed);
    }

    /// Records a connection that worked: healthy again at once.
    pub fn mark_ok(&self) {
        self.down_until_ms.store(0, Ordering::Relaxed);
    }

    /// Counts an attempt (for [`UpstreamStatus`]).
    pub fn count_attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot for status pages and tests.
    pub fn status(&self, now: Instant) -> UpstreamStatus {
        UpstreamStatus {
            url: self.url.to_string(),
            healthy: !self.is_down(now),
            attempts: self.attempts.load(Ordering::Relaxed),
            refusals: self.refusals.load(Ordering::Relaxed),
        }
    }
}

/// What the proxy knows about one upstream now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamStatus {
    /// The upstream's URL as configured.
    pub url: String,
    /// False while it is passed over after a refusal.
    pub healthy: bool,
    /// Connection attempts made to it.
    pub attempts: u64,
    /// Attempts that could not connect.
    pub refusals: u64,
}

/// `base` + `target` with exactly one slash between them.
fn join_path(base: &str, target: &str) -> String {
    let base = base.strip_suffix('/').unwrap_or(base);
    if target.starts_with('/') {
        format!("{base}{target}")
    } else {
        format!("{base}/{target}")
    }
}

/// A path prefix and the upstreams that serve it.
#[derive(Debug)]
pub struct Route {
    /// The prefix, `/` or a path without a trailing slash (`/api/users`).
    prefix: String,
    upstreams: Vec<Arc<Upstream>>,
    /// Round-robin cursor: the next request starts at `next % upstreams.len()`.
    next: AtomicUsize,
}

impl Route {
    /// `prefix` (must start with `/`; a trailing slash is ignored) served by `upstreams`
    /// (at least one).
    pub fn new(prefix: &str, upstreams: Vec<Upstream>) -> Result<Route, String> {
        if !prefix.starts_with('/') {
            return Err(format!("prefix {prefix:?} must start with '/'"));
        }
        if upstreams.is_empty() {
            return Err(format!("prefix {prefix:?} has no upstream"));
        }
        let trimmed = prefix.trim_end_matches('/');
        Ok(Route {
            prefix: if trimmed.is_empty() {
                "/".to_string()
            } else {
                trimmed.to_string()
            },
            upstreams: upstreams.into_iter().map(Arc::new).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// The prefix as matched (`/` or without trailing slash).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Its upstreams, in configured order.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// True when `path` is the prefix or below it at a segment boundary: `/api/users`
    /// matches `/api/users` and `/api/users/7`, not `/api/usersx` (unlike seed 000's
    /// `strings.HasPrefix`, which would).
    pub fn matches(&self, path: &str) -> bool {
        if self.prefix == "/" {
            return path.starts_with('/');
        }
        match path.strip_prefix(self.prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// The order in which this request tries the upstreams: round robin from the cursor
    /// (which moves by one per request), healthy ones first, then those in cool-down
    /// (when every upstream is down, trying one beats refusing outright: its cool-down may
    /// be stale). Each upstream appears once.
    pub fn candidates(&self, now: Instant) -> Vec<Arc<Upstream>> {
        let n = self.upstreams.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let ring = (0..n).map(|i| &self.upstreams[(start + i) % n]);
        let (up, down): (Vec<_>, Vec<_>) = ring.partition(|u| !u.is_down(now));
        up.into_iter().chain(down).cloned().collect()
    }
}

/// The routes, longest prefix first.
#[derive(Debug, Default)]
pub struct Table {
    routes: Vec<Route>,
}

impl Table {
    /// A table of `routes`; two routes with the same prefix are an error.
    pub fn new(mut routes: Vec<Route>) -> Result<Table, String> {
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(a.prefix.cmp(&b.prefix))
        });
        if let Some(w) = routes.windows(2).find(|w| w[0].prefix == w[1].prefix) {
            return Err(format!("prefix {:?} is configured twice", w[0].prefix));
        }
        Ok(Table { routes })
    }

    /// The route with the longest prefix that matches `path`.
    pub fn route(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path))
    }

    /// Every route, longest prefix first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.routes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} -> ", r.prefix)?;
            for (j, u) in r.upstreams.iter().enumerate() {
                if j > 0 {
                    f.write_str(" | ")?;
                }
                write!(f, "{}", u.url)?;
            }
        }
        Ok(())
    }
}

/// Parses a gateway's route list: `prefix=url[|url...]` entries separated by commas,
/// e.g. `/api/users=http://127.0.0.1:9001,/api/orders=http://127.0.0.1:9002|http://127.0.0.1:9003`.
/// The error says which entry is wrong and why.
pub fn parse_routes(spec: &str) -> Result<Table, String> {
    let mut routes = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((prefix, urls)) = entry.split_once('=') else {
            return Err(format!("{entry:?} is not prefix=url[|url...]"));
        };
        let upstreams = urls
            .split('|')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(Upstream::new)
            .collect::<Result<Vec<_>, _>>()?;
        routes.push(Route::new(prefix.trim(), upstreams)?);
    }
    if routes.is_empty() {
        return Err("no route (expected prefix=url[|url...], comma-separated)".to_string());
    }
    Table::new(routes)
}

#[cfg(test)]
#[path = "upstreams_tests.rs"]
mod tests;
