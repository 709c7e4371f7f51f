//! Fan-out: this module owns running N calls at once with a bound on how many run
//! together and one deadline for the whole (seed 004's aggregator: "fetches 5 APIs
//! concurrently with 2-second timeout").
//! It never waits past the deadline: calls still running then are reported as timed out
//! and left to finish on their own threads (each is handed the deadline, so a call made
//! with `RequestBuilder::deadline` ends there too), and calls not started are not started.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::warn;

use super::error::{ClientError, TimeoutKind};

/// How one call ended, as a worker reports it.
enum Outcome<T> {
    Done(Result<T, ClientError>),
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Runs `calls`, at most `max_concurrency` at a time, and returns their results in the
/// order of `calls`, within `timeout` of the start.
///
/// Each call gets the whole fan-out's deadline: pass it to
/// [`RequestBuilder::deadline`](super::RequestBuilder::deadline) so its request stops
/// there. At the deadline, a call that has not finished is
/// `Err(ClientError::Timeout { which: TimeoutKind::Total })`, and so is one that never
/// started; `fan_out` returns then, without waiting for the calls still running (their
/// threads end when the calls do). A call that panics makes `fan_out` panic with its
/// payload, as `std::thread::scope` would.
///
/// ```no_run
/// use std::time::Duration;
/// use h1server::client::{fan_out, Client};
///
/// let client = Client::new();
/// let urls = ["http://127.0.0.1:9001/a", "http://127.0.0.1:9002/b", "http://127.0.0.1:9003/c"];
/// let calls: Vec<_> = urls
///     .iter()
///     .map(|url| {
///         let (client, url) = (client.clone(), url.to_string());
///         move |deadline| client.get(&url).deadline(deadline).send()?.text()
///     })
///     .collect();
/// for (url, result) in urls.iter().zip(fan_out(calls, 2, Duration::from_secs(2))) {
///     match result {
///         Ok(text) => println!("{url}: {text}"),
///         Err(e) => println!("{url}: {e}"),
///     }
/// }
/// ```
pub fn fan_out<T, F>(
    calls: Vec<F>,
    max_concurrency: usize,
    timeout: Duration,
) -> Vec<Result<T, ClientError>>
where
    F: FnOnce(Instant) -> Result<T, ClientError> + Send + 'static,
    T: Send + 'static,
{
    let n = calls.len();
    let start = Instant::now();
    let deadline = start
        .checked_add(timeout)
        .unwrap_or(start + Duration::from_secs(86_400 * 365));
    let queue: Arc<Mutex<VecDeque<(usize, F)>>> =
        Arc::new(Mutex::new(calls.into_iter().enumerate().collect()));
    let (tx, rx) = mpsc::channel::<(usize, Outcome<T>)>();
    let mut spawned = 0;
    for w in 0..max_concurrency.clamp(1, n.max(1)) {
        let (queue, tx) = (Arc::clone(&queue), tx.clone());
        let worker = std::thread::Builder::new()
            .name(format!("h1-fan-out-{w}"))
            .spawn(move || work(&queue, &tx, deadline));
        match worker {
            Ok(_) => spawned += 1,
            Err(e) => {
                warn!("client: fan_out could not start worker {w}: {e}");
                break;
            }
        }
    }
    drop(tx);
    let mut results: Vec<Option<Result<T, ClientError>>> = (0..n).map(|_| None).collect();
    if spawned == 0 {
        // No thread to spare: run them here, one after another, under the same deadline.
        let (tx, rx) = mpsc::channel();
        work(&queue, &tx, deadline);
        drop(tx);
        for (i, outcome) in rx {
            results[i] = Some(unwrap_outcome(outcome));
        }
    } else {
        let mut received = 0;
        while received < n {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            match rx.recv_timeout(left) {
                Ok((i, outcome)) => {
                    results[i] = Some(unwrap_outcome(outcome));
                    received += 1;
                }
                Err(_) => break,
            }
        }
        // The deadline: nothing more starts.
        lock(&queue).clear();
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or(Err(ClientError::Timeout {
                which: TimeoutKind::Total,
            }))
        })
        .collect()
}

/// A worker: takes calls from the queue until it is empty or the deadline passed.
fn work<T, F>(
    queue: &Mutex<VecDeque<(usize, F)>>,
    tx: &mpsc::Sender<(usize, Outcome<T>)>,
    deadline: Instant,
) where
    F: FnOnce(Instant) -> Result<T, ClientError>,
{
    loop {
        let Some((i, call)) = lock(queue).pop_front() else {
            return;
        };
        if Instant::now() >= deadline {
            return;
        }
        let outcome = match panic::catch_unwind(AssertUnwindSafe(|| call(deadline))) {
            Ok(r) => Outcome::Done(r),
            Err(payload) => Outcome::Panicked(payload),
        };
        if tx.send((i, outcome)).is_err() {
            return; // fan_out returned: nobody is waiting.
        }
    }
}

fn unwrap_outcome<T>(o: Outcome<T>) -> Result<T, ClientError> {
    match o {
        Outcome::Done(r) => r,
        Outcome::Panicked(payload) => panic::resume_unwind(payload),
    }
}

fn lock<Q>(m: &Mutex<Q>) -> std::sync::MutexGuard<'_, Q> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Call = Box<dyn FnOnce(Instant) -> Result<u32, ClientError> + Send>;

    #[test]
    fn results_come_back_in_order_with_bounded_concurrency() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let calls: Vec<Call> = (0..8u32)
            .map(|i| {
                let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
                Box::new(move |_deadline: Instant| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    // Later calls finish first: order must come from the index.
                    std::thread::sleep(Duration::from_millis(u64::from(8 - i) * 3));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(i * 10)
                }) as Call
            })
            .collect();
        let got: Vec<u32> = fan_out(calls, 3, Duration::from_secs(20))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, (0..8).map(|i| i * 10).collect::<Vec<_>>());
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=3).contains(&peak), "peak {peak}");
    }

    #[test]
    fn the_deadline_bounds_the_whole() {
        let started = Arc::new(AtomicUsize::new(0));
        let calls: Vec<Call> = (0..4u32)
            .map(|i| {
                let started = Arc::clone(&started);
                Box::new(move |deadline: Instant| {
                    started.fetch_add(1, Ordering::SeqCst);
                    if i == 0 {
                        return Ok(0);
                    }
                    // A slow call that ignores its deadline.
                    std::thread::sleep(deadline - Instant::now() + Duration::from_millis(300));
                    Ok(i)
                }) as Call
            })
            .collect();
        let t0 = Instant::now();
        let got = fan_out(calls, 2, Duration::from_millis(300));
        let took = t0.elapsed();
        assert!(took < Duration::from_millis(1500), "{took:?}");
        assert_eq!(got[0].as_ref().unwrap(), &0);
        for r in &got[1..] {
            assert!(matches!(
                r,
                Err(ClientError::Timeout {
                    which: TimeoutKind::Total
                })
            ));
        }
        // Two workers: call 0, then call 1 on one, call 2 on the other; call 3 never starts.
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(started.load(Ordering::SeqCst), 3);
        assert!(fan_out(Vec::<Call>::new(), 4, Duration::from_secs(1)).is_empty());
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn a_panicking_call_panics_the_caller() {
        let calls: Vec<Call> = vec![Box::new(|_| panic!("boom"))];
        let _ = fan_out(calls, 1, Duration::from_secs(5));
    }
}
