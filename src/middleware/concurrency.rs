//! Concurrency limiting: at most `max` requests inside the rest of the chain at once;
//! the others are answered `503 Service Unavailable` with `Retry-After` at once.
//!
//! It never queues or waits for a slot and never calls the rest of the chain for a
//! refused request. Also home of [`WarnThrottle`], which the limit middleware share so a
//! flood of refusals cannot flood the log.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;
use crate::status;

/// Middleware that lets at most `max` requests run the rest of the chain at the same
/// time; past that it answers `503` with `Retry-After` (default 1 s) without calling it.
///
/// The slot is held while the rest of the chain runs and released when it returns or
/// panics. A streamed body produced after the handler returned does not hold a slot.
///
/// ```
/// use h1server::middleware::{ConcurrencyLimit, Stack};
/// use h1server::{testing::TestRequest, Request, Response};
/// use std::time::Duration;
///
/// let app = Stack::new(|_: &mut Request| Response::text("ok"))
///     .with(ConcurrencyLimit::new(64).retry_after(Duration::from_secs(2)));
/// assert_eq!(TestRequest::get("/").run(&app).status(), 200);
/// ```
#[derive(Debug)]
pub struct ConcurrencyLimit {
    /// The most requests allowed inside at once.
    max: usize,
    /// Requests inside right now (each holds a [`Permit`]).
    in_flight: AtomicUsize,
    /// The `Retry-After` of a refusal, rounded up to whole seconds (at least 1).
    retry_after_secs: u64,
    /// Keeps a flood of 503s from flooding the log.
    log: WarnThrottle,
}

/// One request's slot; dropping it (also while unwinding) frees the slot.
#[derive(Debug)]
struct Permit<'a>(&'a AtomicUsize);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConcurrencyLimit {
    /// At most `max` requests at once (0 refuses every request).
    pub fn new(max: usize) -> Self {
        ConcurrencyLimit {
            max,
            in_flight: AtomicUsize::new(0),
            retry_after_secs: 1,
            log: WarnThrottle::new(),
        }
    }

    /// The `Retry-After` sent with a refusal (default 1 s), in whole seconds rounded up,
    /// at least 1 (RFC 9110 §10.2.3).
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        let secs = retry_after
            .as_secs()
            .saturating_add(u64::from(retry_after.subsec_nanos() > 0));
        self.retry_after_secs = secs.max(1);
        self
    }

    /// The configured maximum.
    pub fn max(&self) -> usize {
        self.max
    }

    /// How many requests are inside the rest of the chain right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// A slot, unless all `max` are taken.
    fn try_acquire(&self) -> Option<Permit<'_>> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(&self.in_flight))
    }
}

impl Middleware for ConcurrencyLimit {
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        let Some(_permit) = self.try_acquire() else {
            match self.log.should_warn() {
                Some(quiet) => warn!(
                    "conn={} concurrency limit of {} reached: 503 to {} {} \
                     ({quiet} more since the last warning)",
                    req.conn_id(),
                    self.max,
                    req.method_str(),
                    req.path()
                ),
                None => debug!(
                    "conn={} concurrency limit of {} reached: 503",
                    req.conn_id(),
                    self.max
                ),
            }
            return Response::error(status::SERVICE_UNAVAILABLE, "Server busy: retry later.\n")
                .with_header("Retry-After", self.retry_after_secs.to_string());
        };
        next.run(req)
    }
}

/// Rate-limits a "limit hit" log line: the first hit and then at most one every
/// [`WarnThrottle::INTERVAL`] are worth a `warn!` (with how many were quiet since), the
/// rest a `debug!`. Lock-free.
#[derive(Debug)]
pub(super) struct WarnThrottle {
    /// The origin of `next_warn_ms`.
    epoch: Instant,
    /// Milliseconds after `epoch` before which no other warning is logged.
    next_warn_ms: AtomicU64,
    /// Hits since the last warning.
    quiet: AtomicU64,
}

impl WarnThrottle {
    /// The shortest time between two warnings.
    pub(super) const INTERVAL: Duration = Duration::from_secs(10);

    pub(super) fn new() -> Self {
        WarnThrottle {
            epoch: Instant::now(),
            next_warn_ms: AtomicU64::new(0),
            quiet: AtomicU64::new(0),
        }
    }

    /// Records one hit: `Some(hits not warned about since the last warning)` when this one
    /// should be logged at `warn!`, `None` when at `debug!`.
    pub(super) fn should_warn(&self) -> Option<u64> {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_warn_ms.load(Ordering::Relaxed);
        let next = now_ms.saturating_add(Self::INTERVAL.as_millis() as u64);
        if now_ms >= due
            && self
                .next_warn_ms
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.quiet.swap(0, Ordering::Relaxed))
        } else {
            self.quiet.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::Stack;
    use crate::testing::TestRequest;
    use std::sync::Arc;

    #[test]
    fn slots_are_refused_past_max_and_freed_on_drop() {
        let lim = ConcurrencyLimit::new(2);
        let a = lim.try_acquire().expect("first");
        let b = lim.try_acquire().expect("second");
        assert!(lim.try_acquire().is_none());
        assert_eq!(lim.in_flight(), 2);
        drop(a);
        let c = lim.try_acquire().expect("a slot was freed");
        drop((b, c));
        assert_eq!(lim.in_flight(), 0);
    }

    #[test]
    fn a_zero_limit_refuses_everything() {
        assert!(ConcurrencyLimit::new(0).try_acquire().is_none());
    }

    #[test]
    fn a_request_over_the_limit_gets_503_with_retry_after_and_next_is_not_called() {
        // The handler re-enters the same stack: the inner request finds the slot taken.
        let lim = Arc::new(ConcurrencyLimit::new(1).retry_after(Duration::from_millis(1500)));
        let inner: Arc<std::sync::OnceLock<Stack>> = Arc::default();
        let slot = inner.clone();
        let app = Stack::new(move |req: &mut Request| {
            if req.path() == "/outer" {
                let resp = TestRequest::get("/inner").run(slot.get().unwrap());
                return Response::text(format!(
                    "{} {}",
                    resp.status(),
                    resp.header("Retry-After").unwrap_or("-")
                ));
            }
            Response::text("inner ran")
        })
        .with_arc(lim.clone());
        let _ = inner.set(app.clone());
        let resp = TestRequest::get("/outer").run(&app);
        assert_eq!(resp.body_bytes(), b"503 2");
        assert_eq!(lim.in_flight(), 0);
        assert_eq!(
            TestRequest::get("/inner").run(&app).body_bytes(),
            b"inner ran"
        );
    }

    #[test]
    fn the_slot_is_released_when_the_handler_panics() {
        let lim = Arc::new(ConcurrencyLimit::new(1));
        let app = Stack::new(|_: &mut Request| -> Response { panic!("handler bug") })
            .with_arc(lim.clone());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            TestRequest::get("/").run(&app)
        }));
        assert!(caught.is_err());
        assert_eq!(lim.in_flight(), 0);
        assert!(lim.try_acquire().is_some());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(ConcurrencyLimit::new(1).retry_after_secs, 1);
        let secs = |d| ConcurrencyLimit::new(1).retry_after(d).retry_after_secs;
        assert_eq!(secs(Duration::ZERO), 1);
        assert_eq!(secs(Duration::from_secs(3)), 3);
        assert_eq!(secs(Duration::from_millis(3001)), 4);
        assert_eq!(secs(Duration::MAX), u64::MAX);
    }

    #[test]
    fn the_warn_throttle_warns_first_then_counts_the_quiet_hits() {
        let t = WarnThrottle::new();
        assert_eq!(t.should_warn(), Some(0));
        assert_eq!(t.should_warn(), None);
        assert_eq!(t.should_warn(), None);
        // Pretend the interval passed.
        t.next_warn_ms.store(0, Ordering::Relaxed);
        assert_eq!(t.should_warn(), Some(2));
    }
}
