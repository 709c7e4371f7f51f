//! Starting and stopping: binds the listener, starts the worker pool and the event loop,
//! and walks the lifecycle Running → Draining → Stopped.
//!
//! Nothing here handles a request; it wires the threads together and joins them.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use mio::Poll;

use crate::config::Config;
use crate::event_loop::{Control, EventLoop, LoopExit, LoopParts, Loops, WAKER};
use crate::handler::Handler;
use crate::pool::{Completions, JobQueue, LoopWake, Notifier, PoolShared, Reserve, spawn_workers};
use crate::signal::SignalPipe;
use crate::telemetry::Telemetry;

type Hook = Box<dyn FnOnce() + Send + 'static>;
type Task = (String, Box<dyn FnOnce(ShutdownToken) + Send + 'static>);

/// A signal that fires once, when the server starts draining: background tasks and
/// stream producers watch it to wind down (Go's `Shutdown` context).
#[derive(Clone, Default)]
pub struct ShutdownToken(Arc<(Mutex<bool>, Condvar)>);

impl ShutdownToken {
    /// A token that has not fired.
    pub fn new() -> Self {
        Self::default()
    }
    /// Fires the token (idempotent).
    pub fn trigger(&self) {
        let (m, c) = &*self.0;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        c.notify_all();
    }
    /// True once the drain has started.
    pub fn is_triggered(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Sleeps up to `d`, returning early (with `true`) when the token fires. Use it as the
    /// sleep in a background loop: `while !token.wait_timeout(tick) { work() }`.
    pub fn wait_timeout(&self, d: Duration) -> bool {
        let (m, c) = &*self.0;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = c
            .wait_timeout_while(g, d, |fired| !*fired)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }
}

impl std::fmt::Debug for ShutdownToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownToken")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

/// What the application can observe of the server's lifecycle (for `/readyz`).
#[derive(Clone, Debug, Default)]
pub struct ServerState {
    draining: Arc<AtomicBool>,
    shutdown: ShutdownToken,
}

impl ServerState {
    /// True from the moment the drain starts: readiness probes should fail from then on.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
    /// The token that fires when the drain starts.
    pub fn shutdown_token(&self) -> ShutdownToken {
        self.shutdown.clone()
    }
}

/// Why [`Server::bind`] or [`Server::from_listener`] could not make a server: a
/// configuration value it cannot use, or the socket.
///
/// Its `Display` is the inner error's message and [`source`](std::error::Error::source)
/// returns the inner error. `?` turns it into a `Box<dyn Error>`, and into an
/// [`io::Error`] (kind `InvalidInput` for a config error, which stays reachable through
/// [`io::Error::get_ref`]).
///
/// ```
/// use h1server::{BindError, Config, Server};
/// let cfg = Config { workers: 0, ..Config::default() };
/// match Server::bind(cfg) {
///     Err(BindError::Config(e)) => assert_eq!(e.source, "workers"),
///     other => panic!("expected a config error, got {:?}", other.err()),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BindError {
    /// [`Config::validate`] rejected a field; the error names it and its value.
    Config(crate::ConfigError),
    /// Binding the address or setting up the listener failed (a busy port, no permission);
    /// the message names the address.
    Io(io::Error),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Config(e) => e.fmt(f),
            BindError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BindError::Config(e) => Some(e),
            BindError::Io(e) => Some(e),
        }
    }
}

impl From<crate::ConfigError> for BindError {
    fn from(e: crate::ConfigError) -> Self {
        BindError::Config(e)
    }
}

impl From<io::Error> for BindError {
    fn from(e: io::Error) -> Self {
        BindError::Io(e)
    }
}

impl From<BindError> for io::Error {
    fn from(e: BindError) -> Self {
        match e {
            BindError::Config(e) => io::Error::new(io::ErrorKind::InvalidInput, e),
            BindError::Io(e) => e,
        }
    }
}

/// A bound server, not yet running.
pub struct Server {
    cfg: Config,
    /// One per event loop (`cfg.loops`).
    listeners: Vec<mio::net::TcpListener>,
    /// The listening socket is the caller's (`from_listener`): it may outlive the server,
    /// so the drain's SYN filter comes off it at the end (`EventLoop::let_go_of_listener`).
    foreign_listener: bool,
    addr: SocketAddr,
    hooks: Vec<Hook>,
    tasks: Vec<Task>,
    signals: Option<bool>,
    state: ServerState,
    telemetry: Telemetry,
    /// Plain TCP, or TLS with the certificate read at bind time.
    tls: crate::tls::Acceptor,
    /// Made at bind time, so a [`ShutdownHandle`] exists before `run`/`spawn`: the stop
    /// flags, and loop 0's poll with the waker that wakes it.
    control: Arc<Control>,
    wake: Arc<LoopWake>,
    poll: Poll,
}

impl Server {
    /// Validates `cfg` and binds its address (port 0 picks a free port; see
    /// [`Server::local_addr`]). Errors here are the operator's: a bad value
    /// ([`BindError::Config`], naming the field), a busy port ([`BindError::Io`]).
    pub fn bind(cfg: Config) -> Result<Server, BindError> {
        cfg.validate()?;
        let listeners = crate::listener::bind_group(cfg.addr, cfg.loops).map_err(|e| {
            error!("cannot listen on {}: {e}", cfg.addr);
            io::Error::new(e.kind(), format!("cannot listen on {}: {e}", cfg.addr))
        })?;
        Server::with_listeners(listeners, cfg)
    }

    /// Serves a socket the caller already bound and put in the listening state: socket
    /// activation (a descriptor passed by systemd or another supervisor), a port a test
    /// picked, a socket with options of its own. The listener is set non-blocking here; a
    /// socket that is not listening is refused ([`BindError::Io`], `InvalidInput`).
    ///
    /// `cfg` is validated as [`bind`](Server::bind) does, but its `addr` is replaced by
    /// the listener's own address ([`local_addr`](Server::local_addr)). The listen backlog
    /// stays what the caller set (`std::net::TcpListener::bind` uses 128; `bind` uses a
    /// deeper one). With `loops` > 1 every loop watches this one socket (each through a
    /// duplicate of the descriptor): whichever accepts a connection hands it to the loops
    /// in turn, so they share the connections evenly (docs/ARCHITECTURE.md).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use h1server::{Config, Request, Response, Server};
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let server = Server::from_listener(listener, Config::default())?;
    /// println!("listening on {}", server.local_addr());
    /// server.run(|_: &mut Request| Response::text("hi"))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_listener(
        listener: std::net::TcpListener,
        cfg: Config,
    ) -> Result<Server, BindError> {
        cfg.validate()?;
        crate::listener::ensure_listening(&listener)?;
        listener.set_nonblocking(true)?;
        let mut listeners = Vec::with_capacity(cfg.loops);
        for _ in 1..cfg.loops {
            listeners.push(mio::net::TcpListener::from_std(listener.try_clone()?));
        }
        listeners.insert(0, mio::net::TcpListener::from_std(listener));
        let mut server = Server::with_listeners(listeners, cfg)?;
        server.foreign_listener = true;
        Ok(server)
    }

    fn with_listeners(
        listeners: Vec<mio::net::TcpListener>,
        mut cfg: Config,
    ) -> Result<Server, BindError> {
        // The certificate and key are read now: a bad file fails the start, not the
        // first connection.
        let tls = crate::tls::Acceptor::from_config(&cfg)?;
        let addr = listeners[0].local_addr()?;
        cfg.addr = addr;
        let telemetry =
            Telemetry::new(cfg.loops, cfg.workers, cfg.record_stages, cfg.server_timing);
        let (wake, poll) = new_poll()?;
        Ok(Server {
            control: Arc::new(Control::default()),
            wake,
            poll,
            telemetry,
            cfg,
            listeners,
            foreign_listener: false,
            addr,
            hooks: Vec::new(),
            tasks: Vec::new(),
            signals: None,
            state: ServerState::default(),
            tls,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers a function to run when the drain starts (Go's `RegisterOnShutdown`).
    /// Hooks run on their own thread, in registration order, while connections drain;
    /// `run`/`join` waits for them before returning.
    pub fn on_shutdown(mut self, hook: impl FnOnce() + Send + 'static) -> Self {
        self.hooks.push(Box::new(hook));
        self
    }

    /// Registers a background task (a queue consumer, a notification dispatcher…) that
    /// starts with the server and receives the shutdown token: it should return soon after
    /// the token fires. Tasks are joined during the drain, within `shutdown_timeout`; one
    /// still running then is logged and left behind.
    pub fn spawn_task(
        mut self,
        name: impl Into<String>,
        task: impl FnOnce(ShutdownToken) + Send + 'static,
    ) -> Self {
        self.tasks.push((name.into(), Box::new(task)));
        self
    }

    /// Whether SIGINT/SIGTERM start the drain. Default: yes for [`run`](Server::run),
    /// no for [`spawn`](Server::spawn) (embedders and tests stop it from code).
    ///
    /// # Warning
    /// signal-hook cannot restore the default action: once a server that handled signals
    /// has stopped, SIGINT/SIGTERM no longer end the process by themselves. A program that
    /// keeps running after `run` returns should install its own handling.
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.signals = Some(yes);
        self
    }

    /// The lifecycle state the application can watch.
    pub fn state(&self) -> ServerState {
        self.state.clone()
    }

    /// The server's stage timings and counters (for `/metrics`, the inspector, tests).
    pub fn telemetry(&self) -> Telemetry {
        self.telemetry.clone()
    }

    /// A handle that stops this server from code, whichever way it is then started: the
    /// way to stop [`run`](Server::run) (which blocks its caller) from another thread or
    /// from a handler, as Go's `Shutdown` stops `ListenAndServe`.
    ///
    /// ```
    /// use h1server::{Config, Request, Response, Server};
    /// let server = Server::bind(Config { addr: "127.0.0.1:0".parse()?, ..Config::default() })?
    ///     .handle_signals(false);
    /// let stop = server.shutdown_handle();
    /// let app = move |_: &mut Request| {
    ///     stop.shutdown(); // the answer still goes out, with `Connection: close`
    ///     Response::text("bye")
    /// };
    /// # server.shutdown_handle().shutdown();
    /// server.run(app)?; // returns once the drain is over
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            control: self.control.clone(),
            wake: self.wake.clone(),
            draining: self.state.draining.clone(),
        }
    }

    /// Serves `app` on this thread until SIGINT/SIGTERM (or another stop) and the drain
    /// complete. A requested stop is not an error: it returns `Ok(())`.
    pub fn run(self, app: impl Handler) -> io::Result<()> {
        let signals = self.signals.unwrap_or(true);
        self.serve(app, signals)
    }

    /// Serves `app` on a new thread and returns a handle to stop and join it.
    pub fn spawn(self, app: impl Handler) -> io::Result<ServerHandle> {
        let signals = self.signals.unwrap_or(false);
        let addr = self.addr;
        let state = self.state.clone();
        let telemetry = self.telemetry.clone();
        let stop = self.shutdown_handle();
        let thread = std::thread::Builder::new()
            .name("h1-loop".into())
            .spawn(move || self.serve(app, signals))?;
        Ok(ServerHandle {
            addr,
            stop,
            state,
            telemetry,
            thread,
        })
    }

    fn serve(self, app: impl Handler, signals: bool) -> io::Result<()> {
        let (control, wake, poll) = (self.control, self.wake, self.poll);
        let cfg = self.cfg;
        let n = self.listeners.len();
        // Loop 0 runs on this thread with the poll the caller made (its waker is the
        // handle's); the others get theirs here.
        let mut polls = vec![(wake, poll)];
        for _ in 1..n {
            polls.push(new_poll()?);
        }
        let (mut notifiers, mut done_rxs) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (w, _) in &polls {
            let queue = Arc::new(Completions::default());
            notifiers.push(Notifier::new(queue.clone(), w.clone()));
            done_rxs.push(queue);
        }
        // Every loop's, for the workers to answer any and the loops to wake each other.
        let every: Arc<[Notifier]> = notifiers.clone().into();
        let (job_tx, job_rx) = JobQueue::new(cfg.queue_depth);
        if let Ok(mut q) = self.telemetry.0.queue.lock() {
            *q = job_tx.probe();
        }
        let reserve = Arc::new(Reserve::default());
        let shared = Arc::new(PoolShared {
            notifiers: every.clone(),
            draining: self.state.draining.clone(),
            skipped: Default::default(),
            stream_buffer_bytes: cfg.stream_buffer_bytes,
            reserve: reserve.clone(),
            tel: self.telemetry.0.clone(),
            tls: self.tls.is_tls(),
        });
        let mut signals = if signals {
            Some(SignalPipe::install()?)
        } else {
            None
        };
        // Shared with the pool's reserve, which starts its workers when first needed.
        let workers: Arc<Mutex<ThreadGroup>> = Arc::default();
        spawn_workers(&workers, cfg.workers, job_rx, shared, Arc::new(app))?;
        let mut tasks = ThreadGroup::default();
        for (name, task) in self.tasks {
            let token = self.state.shutdown.clone();
            tasks.spawn(format!("h1-task-{name}"), move || task(token))?;
        }
        let hooks: Arc<Mutex<ThreadGroup>> = Arc::default();
        let on_drain = {
            let (list, token, hooks) = (self.hooks, self.state.shutdown.clone(), hooks.clone());
            Box::new(move || {
                token.trigger();
                if list.is_empty() {
                    return;
                }
                let mut g = hooks.lock().unwrap_or_else(|e| e.into_inner());
                let run_all = move || {
                    for h in list {
                        if catch_unwind(AssertUnwindSafe(h)).is_err() {
                            error!("a shutdown hook panicked");
                        }
                    }
                };
                if let Err(e) = g.spawn("h1-shutdown-hooks".into(), run_all) {
                    error!("cannot start the shutdown hooks thread: {e}");
                }
            }) as Box<dyn FnOnce() + Send>
        };
        let loops = Arc::new(Loops {
            loops: every,
            live: Default::default(),
            budget: Arc::new(crate::budget::Budget::new(cfg.max_buffered_bytes)),
            on_drain: Mutex::new(Some(on_drain)),
            stall: Mutex::new(None),
            stall_set: AtomicBool::new(false),
            full: Default::default(),
            turn: Default::default(),
            foreign_listener: AtomicUsize::new(if self.foreign_listener { n } else { 0 }),
            spread: self.foreign_listener && n > 1,
            next: Default::default(),
        });
        warn_if_bodies_cannot_fit(&cfg);
        info!(
            "listening on {}://{} ({} event loop{}, {} workers, queue depth {}, max {} connections)",
            if self.tls.is_tls() { "https" } else { "http" },
            self.addr,
            n,
            if n == 1 { "" } else { "s" },
            cfg.workers,
            cfg.queue_depth,
            cfg.max_connections
        );
        let shutdown_timeout = cfg.shutdown_timeout;
        let mut els = Vec::with_capacity(n);
        let parts = self
            .listeners
            .into_iter()
            .zip(polls)
            .zip(notifiers)
            .zip(done_rxs);
        for (i, (((listener, (wake, poll)), notifier), completions)) in parts.enumerate() {
            els.push(EventLoop::new(LoopParts {
                loop_id: i,
                loops: loops.clone(),
                poll,
                listener,
                cfg: cfg.clone(),
                jobs: job_tx.clone(),
                completions,
                wake,
                notifier,
                signals: if i == 0 { signals.take() } else { None },
                control: control.clone(),
                draining: self.state.draining.clone(),
                reserve: reserve.clone(),
                tel: self.telemetry.0.clone(),
                tls: self.tls.clone(),
            })?);
        }
        drop(job_tx); // the loops hold the queue's senders: it closes when they are gone
        let mut el = els.remove(0);
        // The other loops, each on its own thread; what each ended with comes back here.
        let ended: Arc<Mutex<Vec<LoopEnd>>> = Arc::default();
        let mut others = ThreadGroup::default();
        for (i, mut other) in els.into_iter().enumerate() {
            let ended = ended.clone();
            let spawned = others.spawn(format!("h1-loop-{}", i + 1), move || {
                let r = other.run();
                let deadline = other.drain_deadline();
                drop(other);
                ended
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((r, deadline));
            });
            if let Err(e) = spawned {
                error!("cannot start event loop {}: {e}", i + 1);
                control.force.store(true, Ordering::Release);
                loops.wake_all();
            }
        }
        let result = el.run();
        if result.is_err() {
            // Loop 0 failed: the others must not serve on without it.
            control.force.store(true, Ordering::Release);
            loops.wake_all();
        }
        self.state.shutdown.trigger();
        // Whatever handlers do, `run` returns by the drain deadline + 1 s: the threads that
        // have not finished by then are named and left behind. The signal pipe stays
        // registered until then, so a second signal still cuts the wait short.
        let mut signals = el.take_signals();
        let grace = if shutdown_timeout.is_zero() {
            Duration::ZERO
        } else {
            JOIN_GRACE
        };
        let mut deadline = el.drain_deadline();
        drop(el); // its job sender goes: once the other loops' go too, workers exit
        let mut forced = matches!(result, Ok(LoopExit::Forced));
        // The other loops drain at the same time (they saw the same stop) and end by
        // their own deadlines; a second signal meanwhile closes everything at once. They
        // are waited for with `JOIN_GRACE` even when `shutdown_timeout` is 0: a loop runs
        // no handler and ends within a turn of the stop, and one left behind would still
        // hold its listener — completing handshakes — after `run` returned.
        let others_until =
            deadline.unwrap_or_else(Instant::now) + cfg.drain_delay + shutdown_timeout + JOIN_GRACE;
        while others.wait_until(others_until, signals.as_mut()) {
            forced = true;
            control.force.store(true, Ordering::Release);
            loops.wake_all();
        }
        others.join_finished("event loop", others_until);
        // Whether another loop had to force-close connections at its deadline.
        let mut late = false;
        for (r, d) in ended.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            match r {
                Ok(LoopExit::Forced) => forced = true,
                Ok(LoopExit::Deadline) => late = true,
                Ok(LoopExit::Drained) => {}
                Err(e) => error!("an event loop failed: {e}"),
            }
            deadline = deadline.max(d);
        }
        let until = (deadline.unwrap_or_else(Instant::now) + grace).max(Instant::now());
        reserve.close(); // starts no more workers and lets the parked ones go
        let mut threads = std::mem::take(&mut *workers.lock().unwrap_or_else(|e| e.into_inner()));
        for (what, group) in [("worker", &mut threads), ("background task", &mut tasks)] {
            if !forced {
                forced = group.wait_until(until, signals.as_mut());
            }
            group.join_finished(what, until);
        }
        let mut hooks = std::mem::take(&mut *hooks.lock().unwrap_or_else(|e| e.into_inner()));
        if !forced {
            forced = hooks.wait_until(until, signals.as_mut());
        }
        hooks.join_finished("shutdown hook", until);
        drop(signals);
        match result {
            Ok(_) if forced => {
                info!("stopped (forced)");
                Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "forced stop: a second signal arrived during the drain",
                ))
            }
            Ok(exit) => {
                let exit = if late { LoopExit::Deadline } else { exit };
                info!("stopped ({exit:?})");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// How an event loop ended, and its drain deadline.
type LoopEnd = (io::Result<LoopExit>, Option<Instant>);

/// How long after the drain deadline `run` waits for worker, task and hook threads.
const JOIN_GRACE: Duration = Duration::from_secs(1);

/// Threads the server started and must join on the way out, with a count of those still
/// running so the wait can have a deadline (a `JoinHandle` alone cannot be waited on with
/// one).
#[derive(Default)]
pub(crate) struct ThreadGroup {
    handles: Vec<JoinHandle<()>>,
    left: Arc<(Mutex<usize>, Condvar)>,
}

/// Counts a thread as finished when it ends, however it ends.
struct Finished(Arc<(Mutex<usize>, Condvar)>);

impl Drop for Finished {
    fn drop(&mut self) {
        let (m, c) = &*self.0;
        *m.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        c.notify_all();
    }
}

impl ThreadGroup {
    /// Starts `f` on a thread named `name`; a panic in it is logged.
    pub fn spawn(&mut self, name: String, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        self.spawn_boxed(name, Box::new(f))
    }

    /// `spawn`'s body, compiled once: std's thread start-up is large, and inlined into a
    /// copy per closure type (workers, tasks, hooks) it cost 7 KB of binary.
    #[inline(never)]
    fn spawn_boxed(&mut self, name: String, f: Box<dyn FnOnce() + Send>) -> io::Result<()> {
        *self.left.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let done = Finished(self.left.clone());
        let thread_name = name.clone();
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let _done = done;
            if catch_unwind(AssertUnwindSafe(f)).is_err() {
                error!("thread {thread_name} panicked");
            }
        });
        // On failure the closure (and `done` with it) was dropped: the count is right.
        self.handles.push(spawned?);
        Ok(())
    }

    /// Waits until every thread has finished or `until` passes. Returns true when a
    /// second signal arrived meanwhile (a forced stop: stop waiting).
    fn wait_until(&self, until: Instant, mut signals: Option<&mut SignalPipe>) -> bool {
        let (m, c) = &*self.left;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            if *g == 0 || now >= until {
                return false;
            }
            if signals
                .as_mut()
                .is_some_and(|s| s.take() > 0 && s.is_second())
            {
                log::warn!("second signal: not waiting for the remaining threads");
                return true;
            }
            let slice = (until - now).min(Duration::from_millis(50));
            g = c
                .wait_timeout(g, slice)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Joins the threads that have finished and names (and leaves behind) the others.
    fn join_finished(&mut self, what: &str, until: Instant) {
        // A thread counts itself out just before it ends: when all have, joining them
        // only waits for their last instructions.
        let all_returned = *self.left.0.lock().unwrap_or_else(|e| e.into_inner()) == 0;
        for h in self.handles.drain(..) {
            if all_returned || h.is_finished() {
                let _ = h.join();
            } else {
                log::warn!(
                    "{what} thread {} still running at the shutdown deadline ({:?} late): leaving it behind",
                    h.thread().name().unwrap_or("?"),
                    Instant::now().saturating_duration_since(until),
                );
            }
        }
    }
}

fn new_poll() -> io::Result<(Arc<LoopWake>, Poll)> {
    let poll = Poll::new()?;
    let waker = mio::Waker::new(poll.registry(), WAKER)?;
    Ok((Arc::new(LoopWake::new(waker)), poll))
}

/// Stops a server from code: the graceful drain, as the first SIGTERM starts it. Cheap to
/// clone, `Send` and `Sync`: hand it to a handler, a background task, another thread.
/// From [`Server::shutdown_handle`] (before `run` or `spawn`) or
/// [`ServerHandle::shutdown_handle`].
#[derive(Clone)]
pub struct ShutdownHandle {
    control: Arc<Control>,
    wake: Arc<LoopWake>,
    /// The server's draining flag (`ServerState::is_draining`, and the workers'
    /// "answers say `Connection: close`").
    draining: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// Starts the graceful drain and returns at once (`run`/`join` return when it is
    /// over). Idempotent; callable from any thread, a handler included, before the server
    /// serves and after it stopped (then it does nothing). A second call does not force
    /// the stop (a second signal does): the drain ends by `shutdown_timeout` anyway.
    pub fn shutdown(&self) {
        // Draining from this call on, not from the loop's next turn: readiness fails at
        // once, and an answer encoded after this (the answer of a handler that called it)
        // says `Connection: close`, as the drain will close its connection.
        self.draining.store(true, Ordering::Release);
        self.control.stop.store(true, Ordering::Release);
        self.wake.force();
    }
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("requested", &self.control.stop.load(Ordering::Acquire))
            .finish()
    }
}

/// A running server started with [`Server::spawn`].
///
/// Dropping it does not stop the server (its thread goes on serving, detached): stop it
/// with [`shutdown`](ServerHandle::shutdown) (or a [`ShutdownHandle`] kept from it) and
/// [`join`](ServerHandle::join) it.
#[must_use = "dropping a ServerHandle leaves the server running, detached; shutdown() and join() it"]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: ShutdownHandle,
    state: ServerState,
    telemetry: Telemetry,
    thread: JoinHandle<io::Result<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts the graceful drain (as SIGTERM would) and returns at once; `join` waits.
    /// See [`ShutdownHandle::shutdown`].
    pub fn shutdown(&self) {
        self.stop.shutdown();
    }

    /// A handle that stops this server, to keep where the `ServerHandle` cannot go.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// The lifecycle state.
    pub fn state(&self) -> ServerState {
        self.state.clone()
    }

    /// The server's stage timings and counters.
    pub fn telemetry(&self) -> Telemetry {
        self.telemetry.clone()
    }

    /// Waits until the server has stopped.
    pub fn join(self) -> io::Result<()> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the event loop thread panicked")))
    }
}

/// Warns when a body `max_body_bytes` allows can never be read: a buffered body is held
/// whole within `max_buffered_bytes` (beyond the first read buffer; one budget for all
/// loops), so a larger one is answered `413` even on an idle server, though
/// `max_body_bytes` allows it. Not refused by `validate`: a small budget is a legitimate
/// test of the shedding itself; a deployment should not have one.
fn warn_if_bodies_cannot_fit(cfg: &Config) {
    let most = cfg.max_buffered_bytes as u64 + crate::buffers::READ_BUF as u64;
    if cfg.max_body_bytes > most {
        warn!(
            "max_body_bytes ({}) is more than max_buffered_bytes ({}) + the first {} KiB \
             read buffer: a body over {most} bytes is answered 413 even when the server is \
             idle; raise max_buffered_bytes or lower max_body_bytes",
            cfg.max_body_bytes,
            cfg.max_buffered_bytes,
            crate::buffers::READ_BUF / 1024,
        );
    }
}
