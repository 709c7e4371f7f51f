//! Circuit breaking: this module owns the per-upstream state machine closed → open →
//! half-open that makes calls to an upstream failing again and again fail fast instead.
//! It never does I/O or sleeps; it is told each outcome and answers "go" or "not now".
//!
//! A [`Client`](super::Client) built with `ClientBuilder::breaker` keeps one [`Breaker`]
//! per `host:port`; a [`Breaker`] also works alone around any fallible call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{info, warn};

/// When a breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker (at least 1).
    pub failure_threshold: u32,
    /// How long it stays open before one probe call is let through.
    pub open_for: Duration,
}

impl BreakerPolicy {
    /// Opens after `failure_threshold` consecutive failures, for `open_for`.
    pub fn new(failure_threshold: u32, open_for: Duration) -> Self {
        BreakerPolicy {
            failure_threshold: failure_threshold.max(1),
            open_for,
        }
    }
}

/// What a breaker lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Every call goes through; this many consecutive failures so far.
    Closed {
        /// Consecutive failures (a success resets them).
        failures: u32,
    },
    /// Calls fail fast until the time is up.
    Open {
        /// Time left before the next probe.
        retry_in: Duration,
    },
    /// One probe call is in flight; its outcome closes or re-opens the breaker, and other
    /// calls fail fast meanwhile.
    HalfOpen,
}

/// Permission for one call, from [`Breaker::try_acquire`]; hand it back with the outcome
/// to [`Breaker::record`].
#[derive(Debug)]
#[must_use = "report the call's outcome with Breaker::record"]
pub struct Permit {
    /// True for the half-open probe: only its outcome decides the next state.
    probe: bool,
}

/// A circuit breaker for one upstream.
///
/// * **Closed**: calls go through; `failure_threshold` failures in a row open it.
/// * **Open**: [`try_acquire`](Breaker::try_acquire) fails at once (with the time left)
///   for `open_for`.
/// * **Half-open**: then one call — the probe — goes through. Its success closes the
///   breaker; its failure opens it for another `open_for`. A probe that never reports
///   (its caller panicked) is replaced after `open_for`.
///
/// Outcomes of calls admitted before the breaker opened are ignored once it is open, so
/// a slow success cannot close a breaker that tripped after it started.
///
/// ```
/// use std::time::Duration;
/// use h1server::client::{Breaker, BreakerPolicy, BreakerState};
///
/// let b = Breaker::new("db:5432", BreakerPolicy::new(2, Duration::from_secs(30)));
/// for _ in 0..2 {
///     let permit = b.try_acquire().unwrap();
///     b.record(permit, false);
/// }
/// assert!(matches!(b.state(), BreakerState::Open { .. }));
/// assert!(b.try_acquire().is_err()); // fails fast for 30 s
/// ```
#[derive(Debug)]
pub struct Breaker {
    upstream: String,
    policy: BreakerPolicy,
    state: Mutex<Inner>,
}

#[derive(Clone, Copy, Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_since: Instant },
}

impl Breaker {
    /// A closed breaker for `upstream` (the name used in logs and errors).
    pub fn new(upstream: impl Into<String>, policy: BreakerPolicy) -> Self {
        Breaker {
            upstream: upstream.into(),
            policy,
            state: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    /// The upstream this breaker guards.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        let now = Instant::now();
        match *self.lock() {
            Inner::Closed { failures } => BreakerState::Closed { failures },
            Inner::Open { until } if until > now => BreakerState::Open {
                retry_in: until - now,
            },
            // Open past its time: the next call is the probe.
            Inner::Open { .. } => BreakerState::Open {
                retry_in: Duration::ZERO,
            },
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Lets a call through (`Ok`), or says how long until the next probe (`Err`).
    pub fn try_acquire(&self) -> Result<Permit, Duration> {
        let now = Instant::now();
        let mut st = self.lock();
        match *st {
            Inner::Closed { .. } => Ok(Permit { probe: false }),
            Inner::Open { until } if now < until => Err(until - now),
            Inner::HalfOpen { probe_since }
                if now.duration_since(probe_since) < self.policy.open_for =>
            {
                Err(self.policy.open_for - now.duration_since(probe_since))
            }
            Inner::Open { .. } | Inner::HalfOpen { .. } => {
                *st = Inner::HalfOpen { probe_since: now };
                info!("client: breaker for {} half-open: probing", self.upstream);
                Ok(Permit { probe: true })
            }
        }
    }

    /// Reports the outcome of the call `permit` let through.
    pub fn record(&self, permit: Permit, success: bool) {
        let now = Instant::now();
        let mut st = self.lock();
        match (*st, permit.probe, success) {
            (Inner::Closed { .. }, _, true) => *st = Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, _, false) => {
                let failures = failures + 1;
                if failures >= self.policy.failure_threshold {
                    warn!(
                        "client: breaker for {} open after {failures} consecutive failures; failing fast for {} ms",
                        self.upstream,
                        self.policy.open_for.as_millis()
                    );
                    *st = Inner::Open {
                        until: now + self.policy.open_for,
                    };
                } else {
                    *st = Inner::Closed { failures };
                }
            }
            (Inner::HalfOpen { .. }, true, true) => {
                info!(
                    "client: breaker for {} closed: the probe succeeded",
                    self.upstream
                );
                *st = Inner::Closed { failures: 0 };
            }
            (Inner::HalfOpen { .. }, true, false) => {
                warn!(
                    "client: breaker for {} open again: the probe failed",
                    self.upstream
                );
                *st = Inner::Open {
                    until: now + self.policy.open_for,
                };
            }
            // A call admitted before the breaker opened: its outcome is stale.
            _ => {}
        }
    }

    /// Hands back the permit of a call whose outcome says nothing of the upstream's
    /// health (a limit of ours was hit): closed, the failures counted so far stay as they
    /// are; a half-open probe ends without a verdict, and the next call probes at once.
    pub(crate) fn release(&self, permit: Permit) {
        let mut st = self.lock();
        if permit.probe && matches!(*st, Inner::HalfOpen { .. }) {
            *st = Inner::Open {
                until: Instant::now(),
            };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A call's outcome still to be reported: its breaker and permit, carried by the response
/// until its body ends or fails (`response.rs`), so that each call counts once, when it
/// is over — a reset or a timeout in the body is a failure as much as one before the head.
#[derive(Debug)]
pub(crate) struct Pending {
    breaker: Arc<Breaker>,
    permit: Permit,
}

impl Pending {
    pub(crate) fn new(breaker: Arc<Breaker>, permit: Permit) -> Self {
        Pending { breaker, permit }
    }

    /// The half-open state's one test call: every other call waits for its outcome.
    pub(crate) fn is_probe(&self) -> bool {
        self.permit.probe
    }

    /// Reports the outcome: `Some(success)`, or `None` for one that does not count
    /// ([`Breaker::release`]).
    pub(crate) fn settle(self, outcome: Option<bool>) {
        match outcome {
            Some(success) => self.breaker.record(self.permit, success),
            None => self.breaker.release(self.permit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(n: u32, open_ms: u64) -> Breaker {
        Breaker::new("u:1", BreakerPolicy::new(n, Duration::from_millis(open_ms)))
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(3, 60_000);
        for outcome in [false, false, true, false, false] {
            b.record(b.try_acquire().unwrap(), outcome);
        }
        assert_eq!(b.state(), BreakerState::Closed { failures: 2 });
        b.record(b.try_acquire().unwrap(), false);
        assert!(
            matches!(b.state(), BreakerState::Open { retry_in } if retry_in > Duration::from_secs(59))
        );
        assert!(b.try_acquire().unwrap_err() > Duration::from_secs(59));
    }

    #[test]
    fn half_open_probe_closes_or_reopens() {
        let b = breaker(1, 20);
        b.record(b.try_acquire().unwrap(), false);
        assert!(b.try_acquire().is_err());
        std::thread::sleep(Duration::from_millis(30));
        let probe = b.try_acquire().expect("the probe goes through");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.try_acquire().is_err(), "one probe at a time");
        b.record(probe, false);
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        std::thread::sleep(Duration::from_millis(30));
        let probe = b.try_acquire().unwrap();
        b.record(probe, true);
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
    }

    #[test]
    fn released_permits_count_neither_way() {
        let b = breaker(2, 20);
        b.record(b.try_acquire().unwrap(), false);
        b.release(b.try_acquire().unwrap());
        assert_eq!(b.state(), BreakerState::Closed { failures: 1 });
        b.record(b.try_acquire().unwrap(), false);
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        std::thread::sleep(Duration::from_millis(30));
        // A probe that ends without a verdict: the next call probes at once.
        b.release(b.try_acquire().expect("the probe"));
        let probe = b.try_acquire().expect("the next probe, without waiting");
        b.record(probe, true);
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
    }

    #[test]
    fn stale_outcomes_and_lost_probes() {
        let b = breaker(1, 20);
        let early = b.try_acquire().unwrap();
        b.record(b.try_acquire().unwrap(), false);
        // Admitted while closed, reporting after the trip: ignored.
        b.record(early, true);
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        std::thread::sleep(Duration::from_millis(30));
        // A probe whose caller never reports (it panicked).
        drop(b.try_acquire().unwrap());
        std::thread::sleep(Duration::from_millis(30));
        // The lost probe is replaced after open_for.
        let probe = b.try_acquire().expect("a new probe");
        b.record(probe, true);
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
        assert_eq!(BreakerPolicy::new(0, Duration::ZERO).failure_threshold, 1);
    }
}
