//! The event loop thread: owns its listener, its connections, its timer wheel and (loop 0
//! only) the signal pipe; turns readiness events, worker completions, connections handed
//! from another loop and deadlines into calls on `Conn`. With `loops` > 1 there are
//! several, sharing the workers and their job queue, `max_connections` and the memory
//! budget (`Loops`) and the stop (`Control`); a connection never moves once registered.
//!
//! It never runs user code and never blocks except in `poll`, whose timeout comes from
//! the timer wheel (or zero when completions are waiting).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, error, info, trace, warn};
use mio::{Events, Interest, Poll, Token};

use crate::budget::Budget;
use crate::buffers::Buffers;
use crate::config::Config;
use crate::conn::{Close, Conn, Sock, Transport};
use crate::http::date::DateCache;
use crate::http::parse::Limits;
use crate::listener::{self, Accepted};
use crate::pool::ReqMeta;
use crate::pool::{
    Completion, Completions, Job, JobQueue, LoopWake, Notifier, Reserve, STALL, drop_off_loop,
};
use crate::signal::SignalPipe;
use crate::telemetry::{self, Event, Stamp, Stats};
use crate::timer::{Tick, Wheel};
use crate::tls::Acceptor;
use crate::upgrade::{OnUpgrade, Upgraded};

thread_local! {
    /// Set when this thread runs an event loop (see `crate::__on_event_loop_thread`).
    pub(crate) static ON_LOOP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

const LISTENER: Token = Token(usize::MAX);
pub(crate) const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);

/// How long a lingering close waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(2);
/// Non-blocking polls (each after a yield) while batches are out, before sleeping.
const SPINS: u32 = 2;
/// How long accepting pauses after EMFILE/ENFILE before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often a draining loop whose listener waits for its backlog (at
/// `max_connections`) looks again for room to take it (`close_listener`).
const BACKLOG_RECHECK: Duration = Duration::from_millis(10);

/// What the loop shares with every `Conn` call: configuration, pools, the wheel, the
/// job queue and the cached clock.
pub(crate) struct Ctx {
    /// Which event loop this is (0 to `loops` − 1): its telemetry shard, and the loop a
    /// worker answers.
    pub loop_id: usize,
    pub cfg: Config,
    pub limits: Limits,
    /// Largest a read buffer may grow: a head, a body and framing slack.
    pub read_cap: usize,
    pub linger: Duration,
    pub wheel: Wheel<(usize, u32)>,
    /// The time of the current loop iteration (one clock read per wake-up).
    pub now: Instant,
    /// `now` in nanoseconds since the wheel's start: deadlines armed during the turn
    /// (`due_after`) are integer arithmetic.
    now_ns: u64,
    /// `now` as a telemetry stamp.
    now_stamp: Stamp,
    pub bufs: Buffers,
    /// When the buffer pools next give back what a past peak left in them.
    next_decay: Instant,
    pub jobs: JobQueue,
    pub notifier: Notifier,
    /// True once the drain started.
    pub draining: bool,
    /// Batches handed to workers and not back yet.
    pub outstanding: usize,
    /// Streams to pump again on the next turn (they used their share of this one).
    pub deferred: Vec<(usize, u32)>,
    /// Request bytes held by the connections of every loop (read buffers, bodies being
    /// decoded, batches at workers), bounded by `max_buffered_bytes`: one account for the
    /// whole server (`Loops::budget`).
    pub budget: Arc<Budget>,
    /// This loop's connections whose body reading waits for the budget.
    pub budget_waiters: Vec<(usize, u32)>,
    /// A connection gave bytes back while some loop waits for them (`budget_turn`).
    pub budget_freed: bool,
    /// `Budget::freed` when this loop's waiters last tried again.
    pub budget_seen: u64,
    /// Connections to read again on the next turn (room was made for them).
    pub deferred_reads: Vec<(usize, u32)>,
    /// Pulled streams and uploads whose next job found the queue full: retried when a
    /// worker reports back (the queue then has room), not by spinning.
    pub stalled: Vec<(usize, u32)>,
    /// Stage timings and counters; the loop writes only its own shard.
    pub tel: Arc<telemetry::Shared>,
    /// Idle connections to upstreams (`forward.rs`), and the registry their sockets are
    /// watched with.
    #[cfg(feature = "proxy")]
    pub upstreams: crate::conn::UpstreamPool,
    #[cfg(feature = "proxy")]
    registry: Option<mio::Registry>,
    /// Where upstream reads land before they are appended to their exchange's input
    /// (zeroed once, not per read; empty while a read uses it).
    #[cfg(feature = "proxy")]
    pub upstream_scratch: Vec<u8>,
    /// Upstreams to read again on the next turn: a relay takes `RELAY_TURN_BYTES` per
    /// readiness, so one fast download cannot hold the loop's turn.
    #[cfg(feature = "proxy")]
    pub deferred_upstreams: Vec<(usize, u32)>,
    /// The pool's "answers say `Connection: close`" flag (set at the first stop, before
    /// any drain delay): heads the loop encodes itself (`conn/forward.rs`) obey it too.
    #[cfg(feature = "proxy")]
    pub answers_close: Arc<std::sync::atomic::AtomicBool>,
    /// WebSocket connections closed while their session was on its way back from a
    /// worker, by (token, generation): what the session is still to hear (its `on_close`).
    #[cfg(feature = "ws")]
    pub ws_orphans: std::collections::HashMap<
        (usize, u32),
        (crate::ws::Sender, Vec<crate::ws::session::Event>),
    >,
    /// Wraps each accepted socket: plain TCP, or TLS (`crate::tls`).
    pub tls: Acceptor,
    date: DateCache,
}

impl Ctx {
    /// Whether upstream relays wait for the next turn (`deferred_upstreams`).
    #[inline]
    fn upstreams_deferred(&self) -> bool {
        #[cfg(feature = "proxy")]
        return !self.deferred_upstreams.is_empty();
        #[cfg(not(feature = "proxy"))]
        false
    }

    /// The loop's shared state for `cfg`, sending work to `jobs`, taking memory from
    /// `budget` (the server's, shared by its loops).
    pub fn new(
        loop_id: usize,
        cfg: Config,
        budget: Arc<Budget>,
        jobs: JobQueue,
        notifier: Notifier,
        now: Instant,
        tel: Arc<telemetry::Shared>,
    ) -> Ctx {
        let limits = Limits {
            max_head_bytes: cfg.max_head_bytes,
            max_headers: cfg.max_headers,
            max_uri_bytes: cfg.max_uri_bytes,
            // Bodies up to `max_upload_bytes` pass the head; those above `max_body_bytes`
            // are streamed (`conn` decides).
            max_body_bytes: cfg.max_body_bytes.max(cfg.max_upload_bytes),
        };
        let read_cap = (cfg.max_head_bytes * 2)
            .saturating_add(usize::try_from(cfg.max_body_bytes).unwrap_or(usize::MAX))
            .max(crate::buffers::READ_BUF);
        Ctx {
            loop_id,
            wheel: Wheel::new(cfg.timer_tick, now),
            linger: LINGER.min(cfg.read_timeout),
            cfg,
            limits,
            read_cap,
            now,
            now_ns: 0,
            next_decay: now + Duration::from_secs(1),
            now_stamp: tel.stamp(now),
            bufs: Buffers::default(),
            jobs,
            notifier,
            draining: false,
            outstanding: 0,
            deferred: Vec::new(),
            stalled: Vec::new(),
            budget,
            budget_waiters: Vec::new(),
            budget_freed: false,
            budget_seen: 0,
            deferred_reads: Vec::new(),
            tel,
            #[cfg(feature = "proxy")]
            upstreams: crate::conn::UpstreamPool::default(),
            #[cfg(feature = "proxy")]
            registry: None,
            #[cfg(feature = "proxy")]
            upstream_scratch: Vec::new(),
            #[cfg(feature = "proxy")]
            deferred_upstreams: Vec::new(),
            #[cfg(feature = "proxy")]
            answers_close: Arc::default(),
            #[cfg(feature = "ws")]
            ws_orphans: std::collections::HashMap::new(),
            tls: Acceptor::default(),
            date: DateCache::new(),
        }
    }

    /// Gives `n` bytes back to the budget; loops waiting for memory hear of it at the end
    /// of this turn (`budget_turn`).
    pub fn give_back(&mut self, n: usize) {
        if n > 0 {
            self.budget_freed |= self.budget.give(n);
        }
    }

    /// The end of a turn, for the memory budget: the other loops to wake (a bit each),
    /// since memory this one gave back may be what their connections wait for, and
    /// whether this loop's waiters read again (memory came back since they looked).
    pub fn budget_turn(&mut self) -> (u64, bool) {
        let me = self.loop_id;
        let mut wake = 0;
        if std::mem::take(&mut self.budget_freed) {
            wake = self.budget.take_waiting() & !(1 << me);
        }
        // Memory given back since the waiters last tried (here or on another loop): they
        // try again. Not this loop's `waiting` bit: another of its connections may have set
        // it again after the loop that gave memory back took it and woke this one.
        if self.budget_waiters.is_empty() {
            return (wake, false);
        }
        let freed = self.budget.freed();
        let resume = freed != self.budget_seen;
        self.budget_seen = freed;
        (wake, resume)
    }

    /// The stamp of this turn's clock (no clock read, no arithmetic).
    pub fn stamp(&self) -> Stamp {
        self.now_stamp
    }

    /// A pooled connection to `addr`, now serving the connection in `slot`.
    #[cfg(feature = "proxy")]
    pub fn take_upstream(
        &mut self,
        addr: std::net::SocketAddr,
        slot: usize,
        gen_: u32,
    ) -> Option<usize> {
        let registry = self.registry.as_ref()?;
        self.upstreams.take(registry, addr, self.now, slot, gen_)
    }

    /// Registers a new upstream connection for the connection in `slot`.
    #[cfg(feature = "proxy")]
    pub fn new_upstream(
        &mut self,
        sock: mio::net::TcpStream,
        slot: usize,
        gen_: u32,
    ) -> io::Result<usize> {
        let registry = self
            .registry
            .as_ref()
            .expect("upstream exchanges run on an event loop");
        self.upstreams.insert(registry, sock, slot, gen_)
    }

    #[cfg(feature = "proxy")]
    pub fn upstream_sock(&self, id: usize) -> &mio::net::TcpStream {
        self.upstreams.sock(id)
    }

    /// Keeps an idle upstream connection (at most `max` per address), or closes it.
    #[cfg(feature = "proxy")]
    pub fn put_upstream(&mut self, id: usize, addr: std::net::SocketAddr, max: usize) {
        if let Some(registry) = self.registry.as_ref() {
            self.upstreams.put(registry, id, addr, max, self.now);
        }
    }

    #[cfg(feature = "proxy")]
    pub fn close_upstream(&mut self, id: usize) {
        if let Some(registry) = self.registry.as_ref() {
            self.upstreams.close(registry, id);
        }
    }

    /// Closes the idle connections to `addr` (one turned out stale: the rest are as old).
    #[cfg(feature = "proxy")]
    pub fn forget_upstreams(&mut self, addr: std::net::SocketAddr) {
        if let Some(registry) = self.registry.as_ref() {
            self.upstreams.forget(registry, addr);
        }
    }

    /// The client connection an upstream socket's event is for (`None`: an idle one,
    /// handled here).
    #[cfg(feature = "proxy")]
    pub fn route_upstream(&mut self, id: usize, readable: bool) -> Option<(usize, u32)> {
        let registry = self.registry.as_ref()?;
        self.upstreams.route(registry, id, readable)
    }

    /// Sets this turn's time (one clock read per wake-up).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
        self.now_ns = self.wheel.nanos_of(now);
        self.now_stamp = self.tel.stamp(now);
        if now >= self.next_decay {
            self.next_decay = now + Duration::from_secs(1);
            self.bufs.decay();
        }
    }

    /// The wheel's tick at which a deadline `after` from this turn's time falls due
    /// (`Wheel::tick_of(now + after)`, without `Instant` arithmetic: twice a request).
    #[inline(never)]
    pub fn due_after(&self, after: Duration) -> crate::timer::Tick {
        self.wheel
            .tick_of_nanos(self.now_ns.saturating_add(crate::timer::nanos(after)))
    }

    /// This loop's counters.
    pub fn stats(&self) -> &Stats {
        &self.tel.loops[self.loop_id]
    }

    /// Stamps the requests whose answers were being written (`Conn::unwritten`): all
    /// out (`written`), or never to be (`None`: the connection closed).
    pub fn finish_unwritten(
        &mut self,
        mut reqs: Vec<ReqMeta>,
        conn_id: u64,
        written: Option<Stamp>,
    ) {
        for m in reqs.drain(..) {
            if m.trace.ran() {
                m.trace
                    .finish(&self.tel, &self.tel.loops[self.loop_id], conn_id, written);
            }
        }
        self.bufs.put_reqs(reqs);
    }

    /// The cached `Date` value (re-formatted at most once a second).
    pub fn date(&mut self) -> &[u8; 29] {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.date.get(secs)
    }
}

/// How the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoopExit {
    /// Every connection finished within `shutdown_timeout`.
    Drained,
    /// `shutdown_timeout` passed; the remaining connections were closed.
    Deadline,
    /// A second signal during the drain: everything was closed at once.
    Forced,
}

/// Commands from other threads (the server handle, the loop that reads the signals).
#[derive(Default)]
pub(crate) struct Control {
    /// `ServerHandle::shutdown()` was called, or the first signal arrived.
    pub stop: AtomicBool,
    /// A second signal: every loop closes everything at once.
    pub force: AtomicBool,
}

/// What the event loops of one server share.
pub(crate) struct Loops {
    /// Every loop's completion queue and waker: a stop reaches them all, and a
    /// connection can be handed to any (`spread`).
    pub loops: Arc<[Notifier]>,
    /// Open connections across the loops, against `max_connections`.
    pub live: AtomicUsize,
    /// The memory budget, `max_buffered_bytes` for the loops together.
    pub budget: Arc<Budget>,
    /// Runs once, when the first loop begins the drain (the shutdown hooks).
    pub on_drain: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// The pool watch (`EventLoop::watch_pool`): jobs finished when the queue was last seen
    /// waiting, and since when. One for all loops, so a stall is counted once, whichever
    /// loop is awake to see it (loop 0 may sleep while another loop's jobs wait).
    pub stall: Mutex<Option<(u64, Instant)>>,
    /// Whether `stall` is set (read without its lock on each turn).
    pub stall_set: AtomicBool,
    /// The loops paused at `max_connections` (a bit each; `loops` ≤ 64), and a count
    /// that picks which of them the next freed place goes to (`EventLoop::pass_place`).
    pub full: AtomicU64,
    pub turn: AtomicUsize,
    /// Loops still holding a descriptor of a listening socket the caller passed
    /// (`Server::from_listener`: one socket, a descriptor per loop), which may outlive the
    /// server (a supervisor's); 0 for a socket the server bound. The last loop to let go
    /// takes the drain's SYN filter off (`EventLoop::let_go_of_listener`).
    pub foreign_listener: AtomicUsize,
    /// `Server::from_listener` with several loops: the loop that accepts a connection
    /// from the one shared socket hands it to the loops in turn (`next`;
    /// `EventLoop::place`).
    pub spread: bool,
    pub next: AtomicUsize,
}

impl Loops {
    /// Wakes every loop (they look at [`Control`] on each turn).
    pub fn wake_all(&self) {
        for w in self.loops.iter() {
            w.force();
        }
    }
}

/// Why accepting is paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pause {
    /// `max_connections` reached: resume when one closes.
    Full,
    /// `Full`, and a place this loop freed went to another waiting loop in this turn:
    /// not taken back before that loop's turn (`Full` again at the end of this one).
    Passed,
    /// Out of descriptors: resume when one closes or after the back-off.
    Exhausted(Instant),
}

struct Slot {
    gen_: u32,
    conn: Option<Conn>,
}

/// The loop's own state.
pub(crate) struct EventLoop {
    poll: Poll,
    listener: Option<mio::net::TcpListener>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// This loop's open connections (the drain ends when none is left).
    live: usize,
    next_id: u64,
    /// `loops`: connection ids step by it, so each loop's are its own.
    id_step: u64,
    paused: Option<Pause>,
    /// State shared with the other loops.
    shared: Arc<Loops>,
    ctx: Ctx,
    completions: Arc<Completions>,
    /// What the last turn took from `completions` (kept for its capacity).
    inbox: Vec<Completion>,
    wake: Arc<LoopWake>,
    signals: Option<SignalPipe>,
    control: Arc<Control>,
    /// Shared with workers and `ServerState`: set when the drain starts.
    draining_flag: Arc<AtomicBool>,
    /// When the drain must end (then the rest is force-closed).
    drain_deadline: Option<Instant>,
    /// A stop was asked with `drain_delay`: until then the server serves on, not ready
    /// and closing each connection after its answer; then the drain begins.
    announced_until: Option<Instant>,
    /// The drain stopped new handshakes: when its listener closes (`close_listener`).
    listener_closes_at: Option<Instant>,
    /// How many connections the draining listener last waited for (`close_listener`
    /// looks every 10 ms and logs only a change).
    backlog_waited: u32,
    fired: Vec<((usize, u32), Tick)>,
    /// The pool's reserve workers, released when the running ones are stuck.
    reserve: Arc<Reserve>,
}

/// Everything `EventLoop::new` needs.
pub(crate) struct LoopParts {
    /// This loop's index, 0 to `loops` − 1; loop 0 reads the signals and watches the pool.
    pub loop_id: usize,
    pub loops: Arc<Loops>,
    pub poll: Poll,
    pub listener: mio::net::TcpListener,
    pub cfg: Config,
    pub jobs: JobQueue,
    pub completions: Arc<Completions>,
    pub wake: Arc<LoopWake>,
    pub notifier: Notifier,
    pub signals: Option<SignalPipe>,
    pub control: Arc<Control>,
    pub draining: Arc<AtomicBool>,
    pub reserve: Arc<Reserve>,
    pub tel: Arc<telemetry::Shared>,
    /// Plain TCP or TLS, for every connection this loop accepts.
    pub tls: Acceptor,
}

impl EventLoop {
    pub fn new(mut p: LoopParts) -> io::Result<Self> {
        p.poll
            .registry()
            .register(&mut p.listener, LISTENER, Interest::READABLE)?;
        let mut signals = p.signals;
        if let Some(s) = &mut signals {
            p.poll
                .registry()
                .register(&mut s.rx, SIGNALS, Interest::READABLE)?;
        }
        let budget = p.loops.budget.clone();
        let mut ctx = Ctx::new(
            p.loop_id,
            p.cfg,
            budget,
            p.jobs,
            p.notifier,
            Instant::now(),
            p.tel,
        );
        ctx.tls = p.tls;
        #[cfg(feature = "proxy")]
        {
            ctx.registry = Some(p.poll.registry().try_clone()?);
            ctx.answers_close = p.draining.clone();
        }
        Ok(EventLoop {
            poll: p.poll,
            listener: Some(p.listener),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            next_id: p.loop_id as u64 + 1,
            id_step: p.loops.loops.len().max(1) as u64,
            paused: None,
            shared: p.loops,
            ctx,
            completions: p.completions,
            inbox: Vec::new(),
            wake: p.wake,
            signals,
            control: p.control,
            draining_flag: p.draining,
            drain_deadline: None,
            announced_until: None,
            listener_closes_at: None,
            backlog_waited: 0,
            fired: Vec::new(),
            reserve: p.reserve,
        })
    }

    /// Runs until the drain completes (or is cut short: see [`LoopExit`]).
    pub fn run(&mut self) -> io::Result<LoopExit> {
        let exit = self.serve();
        // What its closed connections gave back may be what another loop waits for.
        self.settle_budget();
        self.let_go_of_listener();
        // Workers may still hold upload pieces of connections closed by the drain: what
        // comes back from now on is settled by the worker (`Completions::close`), what
        // came back already is settled here.
        for c in self.completions.close() {
            // Handed to this loop as a forced stop (or its deadline) ended it: closed
            // with the rest, its place given back.
            if matches!(c, Completion::Accepted(..)) {
                self.shared.live.fetch_sub(1, Ordering::AcqRel);
            }
            if let Completion::Piece(p) = c {
                self.ctx.jobs.abort_upload(p.sink);
            }
        }
        exit
    }

    fn serve(&mut self) -> io::Result<LoopExit> {
        // `Server::run` runs loop 0 on the caller's thread: the mark ends with the loop.
        struct Mark;
        impl Drop for Mark {
            fn drop(&mut self) {
                ON_LOOP.with(|on| on.set(false));
            }
        }
        ON_LOOP.with(|on| on.set(true));
        let _mark = Mark;
        let mut events = Events::with_capacity(1024);
        let mut spins = 0;
        loop {
            self.settle_budget();
            let mut timeout = self.poll_timeout();
            if self.ctx.outstanding > 0 && spins < SPINS {
                // Workers hold batches. Give them the core and look again without
                // sleeping: when they share a core with the loop this hands it over
                // directly, and the answers they write bring the clients' next requests
                // before the loop would have gone idle and been woken again. Bounded
                // (SPINS polls, then a real sleep), so a slow handler costs two yields.
                // Measured in docs/BENCHMARKS.md ("yield-poll").
                std::thread::yield_now();
                spins += 1;
                timeout = Some(Duration::ZERO);
            } else {
                self.wake.set_asleep(true);
                if !self.completions.is_empty()
                    || !self.ctx.deferred.is_empty()
                    || !self.ctx.deferred_reads.is_empty()
                    || self.ctx.budget_freed
                    || self.ctx.upstreams_deferred()
                {
                    self.wake.set_asleep(false);
                    timeout = Some(Duration::ZERO);
                }
            }
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error!("poll failed: {e}");
                    return Err(e);
                }
            }
            self.wake.set_asleep(false);
            if !events.is_empty() || !self.completions.is_empty() {
                spins = 0;
            }
            self.ctx.set_now(Instant::now());
            // Completions first: a batch the worker already wrote puts its connection back
            // to reading before that connection's next request is looked at.
            self.drain_completions();
            for (t, g) in std::mem::take(&mut self.ctx.deferred) {
                self.with_conn(t, Some(g), |c, ctx| c.pump_stream(ctx));
            }
            for (t, g) in std::mem::take(&mut self.ctx.deferred_reads) {
                self.with_conn(t, Some(g), |c, ctx| c.resume_reading(ctx));
            }
            #[cfg(feature = "proxy")]
            for (t, g) in std::mem::take(&mut self.ctx.deferred_upstreams) {
                self.with_conn(t, Some(g), |c, ctx| c.on_upstream(ctx, true, false));
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    SIGNALS => {
                        if self.on_signals() {
                            self.force_close_all(Close::ForcedStop);
                            return Ok(LoopExit::Forced);
                        }
                    }
                    #[cfg(feature = "proxy")]
                    Token(t) if t >= crate::conn::FORWARD_BASE => {
                        let (r, w) = (
                            ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                            ev.is_writable() || ev.is_error(),
                        );
                        if let Some((slot, g)) =
                            self.ctx.route_upstream(t - crate::conn::FORWARD_BASE, r)
                        {
                            self.with_conn(slot, Some(g), |c, ctx| c.on_upstream(ctx, r, w));
                        }
                    }
                    Token(t) => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            let hup = ev.is_read_closed() || ev.is_error();
                            self.with_conn(t, None, |c, ctx| c.on_readable(ctx, hup));
                        }
                        if ev.is_writable() {
                            self.with_conn(t, None, |c, ctx| c.on_writable(ctx));
                        }
                    }
                }
            }
            self.drain_completions();
            if self.control.force.load(Ordering::Acquire) {
                self.force_close_all(Close::ForcedStop);
                return Ok(LoopExit::Forced);
            }
            if self.control.stop.load(Ordering::Acquire) && !self.stop_requested() {
                info!("shutdown requested");
                self.request_drain();
                // `ServerHandle::shutdown` woke one loop: it wakes the others.
                self.shared.wake_all();
            }
            if let Some(at) = self.announced_until
                && self.ctx.now >= at
                && !self.ctx.draining
            {
                info!("drain delay over");
                self.begin_drain();
            }
            if self.listener_closes_at.is_some_and(|at| self.ctx.now >= at) {
                self.close_listener();
            }
            self.expire_deadlines();
            self.watch_pool();
            let resume = match self.paused {
                Some(Pause::Exhausted(at)) => self.ctx.now >= at,
                // Another loop's connection may have closed.
                Some(Pause::Full) => {
                    self.shared.live.load(Ordering::Relaxed) < self.ctx.cfg.max_connections
                }
                Some(Pause::Passed) => {
                    self.paused = Some(Pause::Full);
                    false
                }
                None => false,
            };
            if resume && !self.ctx.draining {
                self.paused = None;
                self.accept_all();
            }
            if self.ctx.draining {
                if self.live == 0
                    && self.listener_closes_at.is_none()
                    && self.completions.refuse_handed()
                {
                    info!("drained: every connection is closed");
                    self.settle_orphans();
                    return Ok(LoopExit::Drained);
                }
                if self.drain_deadline.is_some_and(|d| self.ctx.now >= d) {
                    warn!(
                        "shutdown timeout: force-closing {} connection(s)",
                        self.live
                    );
                    self.force_close_all(Close::ShutdownDeadline);
                    self.settle_orphans();
                    return Ok(LoopExit::Deadline);
                }
            }
        }
    }

    /// Memory came back, here or on another loop: the bodies that waited for it read on
    /// (those that still do not fit wait again), and the loops whose connections wait for
    /// what this one gave back are woken.
    fn settle_budget(&mut self) {
        let (wake, resume) = self.ctx.budget_turn();
        if wake != 0 {
            for (i, w) in self.shared.loops.iter().enumerate() {
                if wake >> i & 1 == 1 {
                    w.force();
                }
            }
        }
        if resume {
            for (t, g) in std::mem::take(&mut self.ctx.budget_waiters) {
                self.with_conn(t, Some(g), |c, ctx| c.resume_reading(ctx));
            }
        }
    }

    /// Before the loop returns: a WebSocket session on its way back from a worker when its
    /// connection closed still has its `on_close` to hear (sessions still at a worker hear
    /// it from that worker, `ws::session::run_job`). Waits a moment for those completions.
    fn settle_orphans(&mut self) {
        #[cfg(feature = "ws")]
        {
            let until = Instant::now() + Duration::from_millis(200);
            while !self.ctx.ws_orphans.is_empty() && Instant::now() < until {
                self.drain_completions();
                std::thread::yield_now();
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut t = self.ctx.wheel.next_timeout(now);
        let mut at_most = |d: Duration| t = Some(t.map_or(d, |x| x.min(d)));
        match self.paused {
            Some(Pause::Exhausted(at)) => at_most(at.saturating_duration_since(now)),
            // Full because of the other loops' connections too: look again each tick.
            Some(Pause::Full) if self.id_step > 1 => at_most(self.ctx.cfg.timer_tick),
            _ => {}
        }
        if let Some(d) = self.drain_deadline {
            at_most(d.saturating_duration_since(now));
        }
        if let Some(d) = self.announced_until.filter(|_| !self.ctx.draining) {
            at_most(d.saturating_duration_since(now));
        }
        if let Some(d) = self.listener_closes_at {
            at_most(d.saturating_duration_since(now));
        }
        if self.ctx.outstanding > 0 {
            // Workers do not wake the loop for a batch they wrote completely; look at
            // such completions at least once a tick so their connections' idle deadlines
            // are armed on time even when nothing else happens.
            at_most(self.ctx.cfg.timer_tick);
        }
        if !self.ctx.jobs.is_empty() {
            at_most(STALL); // see watch_pool
        }
        if !self.ctx.stalled.is_empty() {
            // A pull or upload piece waits for room in the queue: look again each tick.
            at_most(self.ctx.cfg.timer_tick);
        }
        t
    }

    /// Jobs are waiting and no worker finished one for `STALL`: the running workers are
    /// blocked in handlers, not busy, so one more comes out of the reserve. Every loop
    /// looks (the state is shared): the jobs may be any loop's, and loop 0 may be asleep.
    /// (The queue depth the metrics show is read from the queue when a snapshot is taken,
    /// `Telemetry::snapshot`.)
    fn watch_pool(&mut self) {
        let len = self.ctx.jobs.len();
        let waiting = len > 0;
        if !waiting && !self.shared.stall_set.load(Ordering::Relaxed) {
            return;
        }
        // A loop that finds another one looking leaves it to that one (no loop waits on
        // another for this; whoever holds it looks again within `STALL`).
        let mut stall = match self.shared.stall.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        if !waiting {
            *stall = None;
            self.shared.stall_set.store(false, Ordering::Relaxed);
            return;
        }
        self.shared.stall_set.store(true, Ordering::Relaxed);
        let finished = self.reserve.finished.load(Ordering::Relaxed);
        match *stall {
            Some((seen, since)) if seen == finished => {
                if self.ctx.now.saturating_duration_since(since) >= STALL {
                    if self.reserve.release_one() {
                        debug!(
                            "workers stuck for {STALL:?} with {} job(s) queued: releasing a reserve worker",
                            self.ctx.jobs.len()
                        );
                    }
                    *stall = Some((finished, self.ctx.now));
                }
            }
            _ => *stall = Some((finished, self.ctx.now)),
        }
    }

    /// Runs `f` on connection `t` (if it is still the same connection) and closes it
    /// when `f` says so.
    fn with_conn(
        &mut self,
        t: usize,
        gen_: Option<u32>,
        f: impl FnOnce(&mut Conn, &mut Ctx) -> Result<(), Close>,
    ) {
        let Some(slot) = self.slots.get_mut(t) else {
            return;
        };
        if gen_.is_some_and(|g| g != slot.gen_) {
            return;
        }
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        if let Err(reason) = f(conn, &mut self.ctx) {
            self.close(t, reason);
        }
    }

    // ------------------------------------------------------------------ accept

    fn accept_all(&mut self) {
        if self.paused.is_some() {
            return;
        }
        let me = 1u64 << self.ctx.loop_id;
        if self.shared.full.load(Ordering::Relaxed) & me != 0 {
            self.shared.full.fetch_and(!me, Ordering::Relaxed);
        }
        loop {
            let Some(l) = self.listener.as_ref() else {
                return;
            };
            // The place is taken before the accept, not counted after it: two loops
            // checking the count and then adding to it could both pass at `max` − 1.
            if self.shared.live.fetch_add(1, Ordering::AcqRel) >= self.ctx.cfg.max_connections {
                self.shared.live.fetch_sub(1, Ordering::AcqRel);
                self.shared.full.fetch_or(me, Ordering::Relaxed);
                warn!(
                    "max_connections ({}) reached: accepting paused",
                    self.ctx.cfg.max_connections
                );
                self.paused = Some(Pause::Full);
                return;
            }
            let accepted = listener::accept(l);
            if !matches!(accepted, Accepted::Conn(..)) {
                self.shared.live.fetch_sub(1, Ordering::AcqRel);
            }
            match accepted {
                Accepted::Conn(sock, peer) => self.place(sock, peer),
                Accepted::Drained => return,
                Accepted::Exhausted(e) => {
                    error!(
                        "accept: {e} ({} connections open): accepting paused for {ACCEPT_BACKOFF:?}",
                        self.live
                    );
                    self.paused = Some(Pause::Exhausted(self.ctx.now + ACCEPT_BACKOFF));
                    return;
                }
                Accepted::Skip(e) => debug!("accept: {e}"),
                Accepted::Broken(e) => {
                    // Retrying would spin the loop on the same error for good (and the
                    // stop with it). The open connections are served; the stop works.
                    error!(
                        "accept: {e}: the listening socket no longer accepts; no new connections ({} open are served)",
                        self.live
                    );
                    self.let_go_of_listener();
                    return;
                }
            }
        }
    }

    /// Where a connection accepted from the listener goes: here, or — from the one socket
    /// `Server::from_listener` shares between several loops, whose every connection
    /// wakes all of them and is taken by whichever accepts first — to the loops in turn,
    /// through the next one's completion queue (it registers it on its next turn, and
    /// it never moves again). A loop that has ended its drain refuses it: it stays here.
    fn place(&mut self, sock: mio::net::TcpStream, peer: std::net::SocketAddr) {
        let mut sock = Some((sock, peer));
        if self.shared.spread {
            let n = self.shared.loops.len();
            let k = self.shared.next.fetch_add(1, Ordering::Relaxed) % n;
            if k != self.ctx.loop_id {
                self.shared.loops[k].hand(&mut sock);
            }
        }
        if let Some((sock, peer)) = sock {
            self.add_conn(sock, peer);
        }
    }

    fn add_conn(&mut self, sock: mio::net::TcpStream, peer: std::net::SocketAddr) {
        // Plain, or TLS with the server's certificate.
        let mut sock = match self.ctx.tls.wrap(sock) {
            Ok(sock) => sock,
            Err(e) => {
                error!("starting TLS for a connection from {peer} failed: {e}");
                self.shared.live.fetch_sub(1, Ordering::AcqRel);
                return; // the drop closes the socket
            }
        };
        let t = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot {
                gen_: 0,
                conn: None,
            });
            self.slots.len() - 1
        });
        if let Err(e) = self.poll.registry().register(
            sock.tcp_mut(),
            Token(t),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            error!("registering a connection from {peer} failed: {e}");
            self.free.push(t);
            self.shared.live.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let id = self.next_id;
        self.next_id += self.id_step;
        let slot = &mut self.slots[t];
        let mut conn = Conn::new(Arc::new(sock), t, slot.gen_, id, peer);
        conn.req_start = self.ctx.stamp();
        self.ctx.stats().bump(&self.ctx.stats().accepted, 1);
        trace!("conn={id} stage=accepted from {peer}");
        // The TLS handshake's deadline, or the request head's.
        conn.arm_first_deadline(&mut self.ctx);
        slot.conn = Some(conn);
        self.live += 1; // `shared.live` counted it before the accept
        self.ctx.bufs.fit(self.live);
    }

    /// Closes connection `t`: at once, or — when a worker holds its batch and the right
    /// to write — once the batch is back (unless the server is stopping: `reason` is
    /// forced).
    fn close(&mut self, t: usize, reason: Close) {
        let Some(slot) = self.slots.get_mut(t) else {
            return;
        };
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        if !reason.is_forced() && conn.defer_close(reason) {
            return;
        }
        let mut conn = slot.conn.take().expect("checked above");
        slot.gen_ = slot.gen_.wrapping_add(1);
        debug!(
            "conn={} stage=closed reason={} ({}, {reason:?}) after {} request(s)",
            conn.id,
            telemetry::CLOSE_REASONS[reason.index()],
            conn.phase_name(),
            conn.served()
        );
        let upgrade = conn.take_upgrade().filter(|_| reason == Close::Upgraded);
        let (id, peer) = (conn.id, conn.peer);
        if let Some(reqs) = conn.take_unwritten() {
            self.ctx.finish_unwritten(reqs, id, None);
        }
        let stats = &self.ctx.tel.loops[self.ctx.loop_id];
        stats.bump(&stats.closed[reason.index()], 1);
        if reason == Close::Upgraded {
            stats.bump(&stats.upgrades, 1);
        }
        if self.ctx.tel.recording() {
            self.ctx.tel.push(Event::Closed {
                conn_id: id,
                at: self.ctx.stamp(),
                reason: telemetry::CLOSE_REASONS[reason.index()],
                requests: conn.served() as u64,
            });
        }
        // (A body cut off that only the close delimits was marked to close with a reset
        // where it was cut: `Conn::cut_off`, `fwd_relay_failed`.)
        if !reason.is_orderly() {
            // An answer may be cut off: no TLS close_notify to say it is complete.
            conn.mark_aborted();
        }
        let (io, right) = conn.release(&mut self.ctx);
        match (right, upgrade) {
            (Some(right), Some((f, read_ahead))) => {
                drop(right);
                self.hand_over(io, id, peer, f, read_ahead);
            }
            (Some(right), None) => {
                // Both halves are home: this drop closes the descriptor, which takes it
                // out of epoll; deregister first all the same, so no event can reach a
                // later occupant of the slot.
                drop(right);
                if let Some(mut sock) = Arc::into_inner(io) {
                    let _ = self.poll.registry().deregister(sock.tcp_mut());
                }
            }
            (None, _) => {
                // Forced while a worker still holds the right (a stuck handler at the
                // shutdown deadline): end the connection now; the descriptor closes when
                // the worker lets go of it.
                let _ = io.shutdown(std::net::Shutdown::Both);
            }
        }
        self.free.push(t);
        self.live -= 1;
        self.ctx.bufs.fit(self.live);
        self.shared.live.fetch_sub(1, Ordering::Relaxed);
        if self.paused.is_some() && !self.ctx.draining && !self.pass_place() {
            self.paused = None;
            self.accept_all();
        }
    }

    /// At `max_connections`, with other loops waiting for a place too: the place this
    /// close freed goes to the waiting loops in turn, this one included. Taken at once
    /// from this loop's own backlog, places would never reach another loop's while this
    /// one's stays full (each backlog is served in order; together they are not). True
    /// when another loop was woken to take it (it finds the room on that turn).
    fn pass_place(&mut self) -> bool {
        let me = self.ctx.loop_id;
        let waiting = self.shared.full.load(Ordering::Relaxed) | 1 << me;
        if !matches!(self.paused, Some(Pause::Full | Pause::Passed)) || waiting == 1 << me {
            return false;
        }
        let n = self.shared.loops.len();
        let t = self.shared.turn.fetch_add(1, Ordering::Relaxed);
        let next = (0..n)
            .map(|k| (t + k) % n)
            .find(|&i| (waiting >> i) & 1 == 1)
            .unwrap_or(me);
        if next == me {
            return false;
        }
        self.shared.loops[next].force();
        self.paused = Some(Pause::Passed);
        true
    }

    /// Gives an upgraded connection's socket to its callback (run on a worker): the loop
    /// stops watching it and forgets it.
    fn hand_over(
        &mut self,
        io: Arc<Sock>,
        id: u64,
        peer: std::net::SocketAddr,
        f: OnUpgrade,
        read_ahead: Vec<u8>,
    ) {
        // The answer was written with the right home, and the right is dropped: the
        // loop's handle is the socket's only owner.
        let Some(sock) = Arc::into_inner(io) else {
            error!("conn={id} upgrade: the socket is still shared; closing it");
            return;
        };
        // A blocking hand-over gives away a plain socket; TLS records only this process
        // can read and write.
        let Some(mut sock) = sock.into_plain() else {
            warn!(
                "conn={id} upgrade: a TLS connection cannot be handed over as a plain socket; closing it"
            );
            return;
        };
        let _ = self.poll.registry().deregister(&mut sock);
        let stream = std::net::TcpStream::from(sock);
        if let Err(e) = stream.set_nonblocking(false) {
            debug!("conn={id} upgrade: {e}");
            return;
        }
        debug!(
            "conn={id} upgraded: handed over with {} byte(s) read ahead",
            read_ahead.len()
        );
        let up = Upgraded {
            stream,
            read_ahead,
            peer,
        };
        if self.ctx.jobs.try_send(Job::Upgrade(f, up)).is_err() {
            warn!("conn={id} upgrade: worker queue full; closing the upgraded connection");
        }
    }

    /// Whether slot `t` still holds the connection of generation `g` (a completion may
    /// come back for a connection closed meanwhile, its slot perhaps reused).
    fn is_live(&self, t: usize, g: u32) -> bool {
        self.slots
            .get(t)
            .is_some_and(|s| s.gen_ == g && s.conn.is_some())
    }

    // ------------------------------------------------------------------ completions

    /// Handles the completions queued now, once: those that arrive meanwhile wait for the
    /// next turn (`serve` polls without sleeping while any wait). Taking the queue again
    /// until it stayed empty kept the loop from `poll` for as long as workers completed
    /// jobs that the completions themselves queued: 300 pulled streams whose sockets took
    /// everything held off a SIGTERM, new connections and every deadline for seconds
    /// (tests/exhaustion_review2.rs).
    fn drain_completions(&mut self) {
        let mut batch = std::mem::take(&mut self.inbox);
        self.completions.take_into(&mut batch);
        let any = !batch.is_empty();
        for c in batch.drain(..) {
            self.on_completion(c);
        }
        self.inbox = batch;
        // Workers took jobs, so the queue has room for pulls that found it full. Not only
        // after this loop's own completions: the jobs that filled the queue may have been
        // another loop's (or ones that answer nobody), so a stalled pull is also retried
        // whenever the queue has room (`poll_timeout` looks each tick while one waits).
        if any || (!self.ctx.stalled.is_empty() && !self.ctx.jobs.is_full()) {
            for (t, g) in std::mem::take(&mut self.ctx.stalled) {
                self.with_conn(t, Some(g), |c, ctx| c.retry_stalled(ctx));
            }
        }
    }

    /// What a worker (or a stream sender) reported.
    fn on_completion(&mut self, mut c: Completion) {
        {
            match c {
                // By reference: moving it out of `c` copied its 224 bytes (a `memcpy` a
                // request); what is left of it drops with `c`.
                Completion::Done(ref mut done) => {
                    self.ctx.outstanding -= 1;
                    let (t, g) = (done.token, done.gen_);
                    if !self.is_live(t, g) {
                        // The client left while its batch ran; the slot may be reused.
                        trace!("late completion for a closed connection dropped");
                        for m in done.reqs.drain(..).filter(|m| m.trace.ran()) {
                            let (tel, id) = (&self.ctx.tel, done.conn_id);
                            m.trace.finish(tel, &tel.loops[self.ctx.loop_id], id, None);
                        }
                        if let Some(b) = done.batch.take() {
                            self.ctx.bufs.put_read(b);
                        }
                        if let Some((s, _)) = done.stream.take() {
                            s.close(&self.ctx.jobs);
                            let stats = self.ctx.stats();
                            stats.bump(&stats.streams_ended, 1);
                        }
                        if let Some(u) = done.upload.take() {
                            self.ctx.jobs.abort_upload(u.sink);
                        }
                        return;
                    }
                    self.with_conn(t, Some(g), |c, ctx| c.on_done(ctx, done));
                }
                Completion::StreamReady { token, gen_ } => {
                    self.with_conn(token, Some(gen_), |c, ctx| c.pump_stream(ctx));
                }
                Completion::Piece(p) => {
                    self.ctx.outstanding -= 1;
                    if self.is_live(p.token, p.gen_) {
                        self.with_conn(p.token, Some(p.gen_), |c, ctx| c.on_piece(ctx, p));
                    } else {
                        // The uploader left while its piece was fed: the sink hears of it.
                        self.ctx.jobs.abort_upload(p.sink);
                    }
                }
                #[cfg(feature = "ws")]
                Completion::WsOutput { token, gen_ } => {
                    self.with_conn(token, Some(gen_), |c, ctx| c.ws_pump(ctx));
                }
                #[cfg(feature = "ws")]
                Completion::WsDone(d) => {
                    if self.is_live(d.token, d.gen_) {
                        self.with_conn(d.token, Some(d.gen_), |c, ctx| c.on_ws_done(ctx, d));
                    } else {
                        crate::conn::ws_orphan_done(&mut self.ctx, d);
                    }
                }
                #[cfg(feature = "proxy")]
                Completion::Forwarded(a) => {
                    self.with_conn(a.token, Some(a.gen_), |c, ctx| c.on_forwarded(ctx, a));
                }
                Completion::Pulled(p) => {
                    self.ctx.outstanding -= 1;
                    if self.is_live(p.token, p.gen_) {
                        self.with_conn(p.token, Some(p.gen_), |c, ctx| c.on_pulled(ctx, p));
                    } else if let Some(pull) = p.pull {
                        // The client left while its stream was pulled.
                        drop_off_loop(&self.ctx.jobs, Box::new(pull));
                    }
                }
                Completion::Accepted(sock, peer) => {
                    self.completions.took_handed();
                    self.add_conn(sock, peer);
                }
            }
        }
    }

    // ------------------------------------------------------------------ deadlines

    fn expire_deadlines(&mut self) {
        let now_tick = self.ctx.wheel.advance(self.ctx.now, &mut self.fired);
        let mut fired = std::mem::take(&mut self.fired);
        for ((t, g), tick) in fired.drain(..) {
            let Some(slot) = self.slots.get_mut(t) else {
                continue;
            };
            if slot.gen_ != g {
                continue;
            }
            let Some(conn) = slot.conn.as_mut() else {
                continue;
            };
            if conn.deadlines.filed != Some(tick) {
                continue; // a stale entry: the deadline was re-filed earlier since
            }
            conn.deadlines.filed = None;
            if let Some(kind) = conn.deadlines.take_due(now_tick) {
                trace!("conn={} deadline passed: {kind:?}", conn.id);
                let stats = &self.ctx.tel.loops[self.ctx.loop_id];
                stats.bump(&stats.deadlines[kind.index()], 1);
                self.with_conn(t, Some(g), |c, ctx| c.on_deadline(ctx, kind));
            }
            // What is still armed (moved later, beyond one rotation, or the other of the
            // read and write deadlines) is filed again.
            let slot = &mut self.slots[t];
            if slot.gen_ == g
                && let Some(conn) = slot.conn.as_mut()
                && conn.deadlines.filed.is_none()
                && let Some(due) = conn.deadlines.next_due()
            {
                self.ctx.wheel.insert(due.max(now_tick + 1), (t, g));
                conn.deadlines.filed = Some(due.max(now_tick + 1));
            }
        }
        self.fired = fired;
    }

    // ------------------------------------------------------------------ drain

    /// Reads the signal pipe: the first signal starts the drain; true when a second one
    /// asks to stop at once (the caller force-closes and returns; the library never exits
    /// the process, the binary decides).
    ///
    /// Signals are counted, not stops: the first signal after a stop asked from code
    /// (`ShutdownHandle::shutdown`) is a first signal — an orchestrator's one SIGTERM to an
    /// instance already draining itself must not cut its requests in flight.
    fn on_signals(&mut self) -> bool {
        let Some(s) = self.signals.as_mut() else {
            return false;
        };
        if s.take() == 0 {
            return false;
        }
        if s.is_second() {
            warn!("second signal: stopping at once");
            self.control.force.store(true, Ordering::Release);
            self.shared.wake_all();
            return true;
        }
        if self.stop_requested() {
            info!("signal received: already draining (a second signal stops at once)");
            return false;
        }
        info!("signal received: draining");
        self.request_drain();
        // The other loops follow (they see `stop` on their next turn).
        self.control.stop.store(true, Ordering::Release);
        self.shared.wake_all();
        false
    }

    /// Whether a stop was asked already (the drain, or the delay before it, runs).
    fn stop_requested(&self) -> bool {
        self.ctx.draining || self.announced_until.is_some()
    }

    /// The first stop: the drain, after `drain_delay` when one is set. Meanwhile the
    /// listener stays open and every connection is served, but the server says it is
    /// draining (`ServerState::is_draining`, so `/readyz` answers 503) and each batch's
    /// last answer says `Connection: close` (the workers see the same flag), so a load
    /// balancer stops picking this instance and retires its pooled connections after a
    /// response — never while a request is on its way.
    fn request_drain(&mut self) {
        let delay = self.ctx.cfg.drain_delay;
        if delay.is_zero() {
            return self.begin_drain();
        }
        self.draining_flag.store(true, Ordering::Release);
        self.announced_until = Some(self.ctx.now + delay);
        info!(
            "draining in {delay:?}: not ready, still serving, every answer says Connection: close"
        );
    }

    /// Closes every connection now (shutdown deadline, forced stop).
    fn force_close_all(&mut self, reason: Close) {
        for t in 0..self.slots.len() {
            self.close(t, reason);
        }
    }

    /// The signal pipe, handed back when the loop has returned so that the server keeps
    /// it registered (a second signal still forces the stop) until `run` returns.
    pub fn take_signals(&mut self) -> Option<SignalPipe> {
        self.signals.take()
    }

    /// When the drain must end, once it started.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.drain_deadline
    }

    /// Stops accepting, closes idle connections, lets the rest finish.
    fn begin_drain(&mut self) {
        self.ctx.draining = true;
        self.draining_flag.store(true, Ordering::Release);
        self.drain_deadline = Some(self.ctx.now + self.ctx.cfg.shutdown_timeout);
        let mut idle = 0;
        for t in 0..self.slots.len() {
            // A connection that has not sent its first request yet was opened to send one
            // (a proxy connects, then writes): closing it now would race that request. It
            // keeps its header deadline (`header_read_timeout`), as Go's `Shutdown` keeps
            // a new connection for 5 s; its request is answered with `Connection: close`.
            // One still in its TLS handshake gets no longer: `header_read_timeout` from
            // now at most, handshake and head together.
            self.with_conn(t, None, |c, ctx| {
                c.hurry_handshake(ctx);
                Ok(())
            });
            if !self.slots[t]
                .conn
                .as_ref()
                .is_some_and(|c| c.is_idle() && c.served() > 0)
            {
                continue;
            }
            // A request may already wait in the socket buffer (sent before the client
            // could know of the drain): read it first; it is answered, with
            // `Connection: close`, rather than reset by the close.
            self.with_conn(t, None, |c, ctx| c.on_readable(ctx, false));
            if self.slots[t].conn.as_ref().is_some_and(|c| c.is_idle()) {
                idle += 1;
                self.close(t, Close::Draining);
            }
        }
        // WebSockets are told the server is going away (1001); each closes when its client
        // answers, or at the linger deadline.
        #[cfg(feature = "ws")]
        for t in 0..self.slots.len() {
            self.with_conn(t, None, |c, ctx| c.ws_going_away(ctx));
        }
        // Closing the listener resets every connection the kernel completed but the loop
        // has not accepted yet — and a proxy may already have sent a request on one (a
        // POST it will not retry). Take them first: they are served, with
        // `Connection: close`, like the rest. Accepting may have been paused (at
        // `max_connections`, or out of descriptors): the idle connections just closed
        // made room; `accept_all` pauses again if there still is none.
        // No new handshake begins from here (`listener::stop_handshakes` drops new
        // SYNs); one under way — its client already counts itself connected and may
        // have written its request — completes within a round trip, so the listener
        // stays open (and accepting) one `HANDSHAKE_GRACE` longer, then closes
        // (`close_listener`).
        if let Some(l) = self.listener.as_ref() {
            crate::listener::stop_handshakes(l);
            let grace = crate::listener::HANDSHAKE_GRACE.min(self.ctx.cfg.shutdown_timeout);
            self.listener_closes_at = Some(self.ctx.now + grace);
        }
        self.paused = None;
        self.accept_all();
        let hook = self
            .shared
            .on_drain
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(f) = hook {
            f();
        }
        let busy = self
            .slots
            .iter()
            .filter_map(|s| s.conn.as_ref())
            .filter(|c| !c.is_closing())
            .count();
        info!(
            "draining: no new connections, {idle} idle connection(s) closed, {busy} finishing (deadline {:?})",
            self.ctx.cfg.shutdown_timeout
        );
    }

    /// Closes this loop's descriptor of the listening socket (new connects are refused
    /// once no loop holds one). A socket the caller passed may live on (a supervisor's,
    /// for the next instance): the last loop to let go of it takes the drain's SYN filter
    /// off first (`listener::resume_handshakes`), so the socket completes handshakes
    /// again for whoever serves it next.
    fn let_go_of_listener(&mut self) {
        let Some(mut l) = self.listener.take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut l);
        let last =
            self.shared
                .foreign_listener
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                == Ok(1);
        if last {
            crate::listener::resume_handshakes(&l);
        }
    }

    /// The end of the drain's `HANDSHAKE_GRACE`: takes the last connections whose
    /// handshakes were under way when new ones stopped, and closes the listener (a
    /// connect is refused from here on). At `max_connections` (or out of descriptors)
    /// with connections still in the backlog, it closes only once they are taken:
    /// closing would reset them, and each may carry a request already (a proxy's POST it
    /// will not retry). No new one joins them (the SYN filter), the connections being
    /// served free their places as they finish, and the drain's deadline bounds the wait;
    /// it looks again every `BACKLOG_RECHECK`.
    fn close_listener(&mut self) {
        self.listener_closes_at = None;
        self.paused = None;
        let before = self.live;
        self.accept_all();
        if self.paused.is_some()
            && let Some(l) = self.listener.as_ref()
        {
            let queued = crate::listener::backlog(l);
            if queued > 0 {
                if queued != std::mem::replace(&mut self.backlog_waited, queued) {
                    debug!(
                        "draining: {queued} connection(s) wait in the backlog at the limit: the listener stays open for them"
                    );
                }
                self.listener_closes_at = Some(self.ctx.now + BACKLOG_RECHECK);
                return;
            }
        }
        self.let_go_of_listener();
        debug!(
            "draining: listener closed ({} connection(s) accepted at its close)",
            self.live.saturating_sub(before)
        );
    }
}
