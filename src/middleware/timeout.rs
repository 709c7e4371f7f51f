//! Handler deadlines: the `Timeout` middleware runs the rest of the chain on a runner
//! thread and answers `503` itself when that takes longer than its limit.
//!
//! It never kills or waits for a handler past the deadline: the late handler sees its
//! request cancelled ([`Request::is_cancelled`]) and its eventual answer is dropped.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, error, warn};

use super::concurrency::WarnThrottle;
use super::{Middleware, Next, OwnedNext};
use crate::handler::Handler;
use crate::request::Request;
use crate::response::Response;
use crate::status;

/// The default cap on runner threads of one `Timeout`.
const DEFAULT_MAX_RUNNERS: usize = 256;
/// How long an idle runner waits for work before its thread exits.
const RUNNER_IDLE_EXIT: Duration = Duration::from_secs(30);

/// What the rest of the chain produced: a response, or the payload of its panic.
type Outcome = std::thread::Result<Response>;

/// One request to run on a runner.
struct Job {
    /// The request, moved out of the worker's `&mut Request`.
    req: Request,
    /// The rest of the chain.
    rest: OwnedNext,
    /// Where the worker waits for the request back and the outcome.
    reply: Sender<(Request, Outcome)>,
    /// When the worker started waiting, for the late-result log line.
    started: Instant,
}

/// Runner counts shared by the pool and its threads.
///
/// Invariant: the runners blocked waiting for a job = `idle` + jobs queued in the channel.
/// A submitter claims an idle runner by decrementing `idle` before sending; a runner
/// counts itself idle again when its job is done.
#[derive(Debug, Default)]
struct Counts {
    /// Runners free to take a job that no submitter has claimed yet.
    idle: AtomicUsize,
    /// Runner threads alive.
    alive: AtomicUsize,
}

/// Middleware that gives the rest of the chain `limit` to answer; late, it answers
/// `503` with "handler timeout" and cancels the request.
///
/// Use it for the whole server (in the top stack) or for one route, by registering a
/// stack as the route's handler:
///
/// ```
/// use h1server::middleware::{Stack, Timeout};
/// use h1server::{testing::TestRequest, Request, Response};
/// use std::time::Duration;
///
/// let report = Stack::new(|_: &mut Request| Response::text("done"))
///     .with(Timeout::new(Duration::from_secs(5)));
/// assert_eq!(TestRequest::get("/report").run(&report).status(), 200);
/// ```
///
/// A streamed response is returned as soon as the handler returns it; producing the
/// body is not under this deadline (the write deadline covers it).
///
/// # How it works
///
/// A worker cannot be interrupted, so the request is moved (with
/// `std::mem::replace(req, Request::placeholder())`) to a runner thread together with the
/// rest of the chain ([`Next::to_owned`]), and the worker waits on a channel with
/// `recv_timeout`. In time, the request is put back and the response returned. Late, the
/// worker sets the request's cancellation flag, answers `503 handler timeout` and goes
/// on; the runner finishes whenever the handler returns and discards the result.
///
/// Runners form an elastic pool owned by each `Timeout` value: an idle runner is reused,
/// a new thread starts only when none is idle, idle runners exit after 30 s, and at most
/// [`max_runners`](Timeout::max_runners) exist. Past that cap (handlers that ignore
/// cancellation and pile up) requests are answered `503` at once instead of starting
/// threads without bound.
///
/// A panic in the rest of the chain is caught on the runner and re-raised on the worker
/// with [`std::panic::resume_unwind`], after the request is put back, so an outer
/// `Recovery` (or the worker pool) logs and answers it exactly as without a timeout. A
/// panic after the deadline is logged here, since nobody waits for it.
///
/// # Warning
/// While the deadline runs, and after it expired, `req` holds a placeholder: middleware
/// outside a `Timeout` must read what it needs from the request before calling `next`.
/// An expiry cancels only this request (`Request::cancel_flag` is per request), not the
/// other requests pipelined in the same batch.
pub struct Timeout {
    /// The handler deadline.
    limit: Duration,
    /// Feeds jobs to the runners; dropping it (with the `Timeout`) lets idle runners exit.
    jobs: Sender<Job>,
    /// Cloned into every new runner.
    jobs_rx: Receiver<Job>,
    /// Idle and alive runners.
    counts: Arc<Counts>,
    /// The most runner threads alive at once.
    max_runners: usize,
    /// How long an idle runner lingers (30 s; shorter in tests).
    idle_exit: Duration,
    /// Keeps a flood of timeouts from flooding the log.
    log: WarnThrottle,
}

impl Timeout {
    /// Handlers get `limit` to return a response.
    pub fn new(limit: Duration) -> Self {
        let (jobs, jobs_rx) = crossbeam_channel::unbounded();
        Timeout {
            limit,
            jobs,
            jobs_rx,
            counts: Arc::default(),
            max_runners: DEFAULT_MAX_RUNNERS,
            idle_exit: RUNNER_IDLE_EXIT,
            log: WarnThrottle::new(),
        }
    }

    /// At most this many runner threads (default 256, at least 1). Runners still busy
    /// with requests that timed out count too; when all are busy, requests get `503` at
    /// once.
    pub fn max_runners(mut self, max_runners: usize) -> Self {
        self.max_runners = max_runners.max(1);
        self
    }

    /// The deadline.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Runner threads alive now, busy or idle (for metrics and tests).
    pub fn runners(&self) -> usize {
        self.counts.alive.load(Ordering::Acquire)
    }

    /// Runner threads waiting for work now.
    pub fn idle_runners(&self) -> usize {
        self.counts.idle.load(Ordering::Acquire)
    }

    /// Hands `job` to an idle runner, or to a new one within the cap; gives it back
    /// (boxed: a rare path, and it keeps the `Result` small) when neither is possible.
    fn submit(&self, job: Job) -> Result<(), Box<Job>> {
        let claimed = self
            .counts
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !claimed {
            let max = self.max_runners;
            let room = self
                .counts
                .alive
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .is_ok();
            if !room {
                return Err(Box::new(job));
            }
            // The new runner starts out waiting without counting itself idle: the job
            // sent below is its claim (any waiting runner may take it; the count holds).
            let (rx, counts, idle_exit) =
                (self.jobs_rx.clone(), self.counts.clone(), self.idle_exit);
            let spawned = std::thread::Builder::new()
                .name("h1-timeout".into())
                .spawn(move || run_runner(rx, counts, idle_exit));
            if let Err(e) = spawned {
                self.counts.alive.fetch_sub(1, Ordering::AcqRel);
                error!("timeout middleware: cannot start a runner thread: {e}");
                return Err(Box::new(job));
            }
        }
        // We own a receiver (`jobs_rx`), so the channel is never disconnected here.
        self.jobs.send(job).map_err(|e| Box::new(e.into_inner()))
    }
}

/// A runner thread: takes jobs until it has been idle for `idle_exit` (and can give up
/// an unclaimed idle slot) or the `Timeout` is gone.
fn run_runner(rx: Receiver<Job>, counts: Arc<Counts>, idle_exit: Duration) {
    loop {
        match rx.recv_timeout(idle_exit) {
            Ok(job) => run_job(job, &counts),
            Err(RecvTimeoutError::Timeout) => {
                let gave_up = counts
                    .idle
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok();
                if gave_up {
                    break;
                }
                // Every idle slot is claimed: a job is on its way to the waiting runners.
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    counts.alive.fetch_sub(1, Ordering::AcqRel);
}

/// Runs one job and delivers its outcome, or logs it when the worker stopped waiting.
fn run_job(job: Job, counts: &Counts) {
    let Job {
        mut req,
        rest,
        reply,
        started,
    } = job;
    let outcome = catch_unwind(AssertUnwindSafe(|| rest.call(&mut req)));
    // Idle again before delivering: a submitter may queue the next job right away.
    counts.idle.fetch_add(1, Ordering::AcqRel);
    if let Err(e) = reply.send((req, outcome)) {
        let (req, outcome) = e.into_inner();
        match outcome {
            Ok(resp) => debug!(
                "conn={} {} {}: late response {} after {:?} discarded (the client got 503)",
                req.conn_id(),
                req.method_str(),
                req.path(),
                resp.status(),
                started.elapsed()
            ),
            Err(p) => error!(
                "conn={} handler panicked on {} {} after its deadline: {}",
                req.conn_id(),
                req.method_str(),
                req.path(),
                panic_message(&*p)
            ),
        }
    }
}

/// The text of a panic payload, when it has one.
fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("?")
}

impl Middleware for Timeout {
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        // Kept for after the deadline, when the request is away on its runner.
        let cancel = req.cancel_flag();
        let conn_id = req.conn_id();
        let (reply, outcome) = crossbeam_channel::bounded(1);
        let job = Job {
            req: std::mem::replace(req, Request::placeholder()),
            rest: next.to_owned(),
            reply,
            started: Instant::now(),
        };
        if let Err(job) = self.submit(job) {
            *req = job.req;
            match self.log.should_warn() {
                Some(quiet) => warn!(
                    "conn={} all {} timeout runners busy: 503 to {} {} \
                     ({quiet} more since the last warning)",
                    req.conn_id(),
                    self.max_runners,
                    req.method_str(),
                    req.path()
                ),
                None => debug!("conn={} timeout runners busy: 503", req.conn_id()),
            }
            return Response::error(status::SERVICE_UNAVAILABLE, "handler timeout\n");
        }
        match outcome.recv_timeout(self.limit) {
            Ok((back, Ok(resp))) => {
                *req = back;
                resp
            }
            Ok((back, Err(panic))) => {
                *req = back;
                std::panic::resume_unwind(panic)
            }
            Err(RecvTimeoutError::Timeout) => {
                cancel.cancel();
                match self.log.should_warn() {
                    Some(quiet) => warn!(
                        "conn={} handler exceeded its {:?} deadline: 503, request cancelled \
                         ({quiet} more since the last warning)",
                        conn_id, self.limit
                    ),
                    None => debug!("conn={} handler deadline passed: 503", conn_id),
                }
                Response::error(status::SERVICE_UNAVAILABLE, "handler timeout\n")
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Cannot happen: the runner catches panics and always replies.
                error!("timeout middleware: a runner dropped its job without replying");
                Response::error(status::SERVICE_UNAVAILABLE, "handler timeout\n")
            }
        }
    }
}

impl std::fmt::Debug for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .field("max_runners", &self.max_runners)
            .field("runners", &self.runners())
            .field("idle_runners", &self.idle_runners())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::Stack;
    use crate::testing::TestRequest;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;

    const BOUND: Duration = Duration::from_secs(10);

    fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < BOUND {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        cond()
    }

    #[test]
    fn a_handler_in_time_answers_and_the_request_comes_back() {
        let app = Stack::new(|req: &mut Request| {
            req.set_header("X-Seen", "runner");
            Response::text(format!("hi {}", req.path()))
        })
        .with(Timeout::new(BOUND));
        let mut req = TestRequest::post("/in-time").body("abc").build();
        let resp = app.call(&mut req);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body_bytes(), b"hi /in-time");
        assert_eq!(req.path(), "/in-time");
        assert_eq!(req.body(), b"abc");
        assert_eq!(req.header("X-Seen"), Some("runner"));
    }

    #[test]
    fn expired_handler_gets_503_and_its_request_is_cancelled() {
        let (saw_cancel, rx) = mpsc::channel();
        let app = Stack::new(move |req: &mut Request| {
            let t0 = Instant::now();
            while !req.is_cancelled() && t0.elapsed() < BOUND {
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = saw_cancel.send(req.is_cancelled());
            Response::text("late")
        })
        .with(Timeout::new(Duration::from_millis(30)));
        let mut req = TestRequest::get("/slow").build();
        let flag = req.cancel_flag();
        let resp = app.call(&mut req);
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.body_bytes(), b"handler timeout\n");
        assert!(flag.is_cancelled());
        assert_eq!(rx.recv_timeout(BOUND), Ok(true));
    }

    #[test]
    fn idle_runners_are_reused() {
        let t = Arc::new(Timeout::new(BOUND));
        let app = Stack::new(|_: &mut Request| Response::text("ok")).with_arc(t.clone());
        for _ in 0..20 {
            assert_eq!(TestRequest::get("/").run(&app).status(), 200);
        }
        assert_eq!(t.runners(), 1);
        assert_eq!(t.idle_runners(), 1);
    }

    #[test]
    fn past_the_runner_cap_requests_get_503_at_once_without_running() {
        let release = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let (r, c) = (release.clone(), calls.clone());
        let t = Arc::new(Timeout::new(Duration::from_millis(20)).max_runners(1));
        let app = Stack::new(move |_: &mut Request| {
            c.fetch_add(1, Ordering::SeqCst);
            let t0 = Instant::now();
            while !r.load(Ordering::SeqCst) && t0.elapsed() < BOUND {
                std::thread::sleep(Duration::from_millis(2));
            }
            Response::text("ok")
        })
        .with_arc(t.clone());
        // The only runner is stuck past its deadline…
        assert_eq!(TestRequest::get("/").run(&app).status(), 503);
        // …so the next request is refused without running.
        assert_eq!(TestRequest::get("/").run(&app).status(), 503);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(t.runners(), 1);
        release.store(true, Ordering::SeqCst);
        assert!(wait_until(|| t.idle_runners() == 1));
        // Unblocked handlers answer in time again.
        assert_eq!(TestRequest::get("/").run(&app).status(), 200);
    }

    #[test]
    fn a_panic_is_resumed_on_the_caller_with_the_request_back_and_the_runner_survives() {
        let t = Arc::new(Timeout::new(BOUND));
        let app = Stack::new(|req: &mut Request| {
            if req.path() == "/boom" {
                panic!("handler bug");
            }
            Response::text("ok")
        })
        .with_arc(t.clone());
        let mut req = TestRequest::get("/boom").build();
        let caught = catch_unwind(AssertUnwindSafe(|| app.call(&mut req)));
        let payload = caught.expect_err("the panic reaches the caller");
        assert_eq!(panic_message(&*payload), "handler bug");
        assert_eq!(req.path(), "/boom");
        assert_eq!(TestRequest::get("/").run(&app).status(), 200);
        assert_eq!(t.runners(), 1);
    }

    #[test]
    fn idle_runners_exit_and_the_pool_grows_again() {
        let mut t = Timeout::new(BOUND);
        t.idle_exit = Duration::from_millis(20);
        let t = Arc::new(t);
        let app = Stack::new(|_: &mut Request| Response::text("ok")).with_arc(t.clone());
        assert_eq!(TestRequest::get("/").run(&app).status(), 200);
        assert!(wait_until(|| t.runners() == 0));
        assert_eq!(t.idle_runners(), 0);
        assert_eq!(TestRequest::get("/").run(&app).status(), 200);
    }

    #[test]
    fn dropping_the_timeout_stops_its_idle_runners() {
        let t = Timeout::new(BOUND);
        let counts = t.counts.clone();
        let app = Stack::new(|_: &mut Request| Response::text("ok")).with(t);
        for _ in 0..3 {
            assert_eq!(TestRequest::get("/").run(&app).status(), 200);
        }
        assert_eq!(counts.alive.load(Ordering::SeqCst), 1);
        drop(app);
        assert!(wait_until(|| counts.alive.load(Ordering::SeqCst) == 0));
    }

    #[test]
    fn concurrent_requests_each_get_a_runner() {
        let t = Arc::new(Timeout::new(BOUND));
        let app = Arc::new(
            Stack::new(|_: &mut Request| {
                std::thread::sleep(Duration::from_millis(20));
                Response::text("ok")
            })
            .with_arc(t.clone()),
        );
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let app = app.clone();
                std::thread::spawn(move || {
                    (0..5)
                        .map(|_| TestRequest::get("/").run(&*app).status())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for th in threads {
            assert!(th.join().unwrap().iter().all(|&s| s == 200));
        }
        assert!(t.runners() <= 4, "{} runners for 4 callers", t.runners());
    }
}
