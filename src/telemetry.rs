//! What happened to each request, stage by stage, and the server's counters.
//!
//! Every request carries a [`Timeline`]: the loop stamps the stages it sees (accept,
//! first byte, head parsed, queued) from the clock it reads once per turn, so they cost
//! it no clock read, no allocation and no lock; the worker stamps the handler's start and
//! end (two clock reads, off the loop) and, when it writes the answers itself, the
//! moment they were written. Answers the loop writes (a full socket, a stream, an upload)
//! are stamped by the loop when their last byte is out.
//!
//! Counters live in per-thread shards (`Stats`): the loop's and one per worker, each
//! written by its own thread only (a relaxed load and store, no lock-prefixed
//! instruction, no shared cache line) and summed by [`Telemetry::snapshot`]. The request
//! counts by method, status class and route live in a small per-shard table whose keys
//! are set once (no lock to count).
//!
//! With [`Telemetry::record_requests`], each finished request also becomes an [`Event`]
//! in a bounded ring (a queue under a mutex held only to push or take one: the oldest
//! event is dropped when it is full),
//! which the lifecycle inspector reads. The records are built on the workers; the loop
//! only moves them (and sends one `Closed` event per connection).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::http::Method;

/// Nanoseconds since the server's clock epoch ([`Telemetry::wall_time`] converts them);
/// `0` means the stage was not reached or not recorded.
pub type Stamp = u64;

/// When each stage of one request happened. Stages a request did not go through are 0:
/// `accepted` is set on a connection's first request only, `written` stays 0 when the
/// connection ended before the answer was out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The connection was accepted (its first request only).
    pub accepted: Stamp,
    /// The loop read the request's first byte (the read that brought it).
    pub first_byte: Stamp,
    /// The loop parsed the complete head (and read the body, when it is buffered).
    pub head_parsed: Stamp,
    /// The loop queued the request's batch for a worker.
    pub queued: Stamp,
    /// A worker called the handler chain.
    pub handler_start: Stamp,
    /// The handler chain returned its response.
    pub handler_end: Stamp,
    /// The answer's last byte went to the socket (for a stream: its last chunk).
    pub written: Stamp,
}

/// The stages, in order, with their names as the trace (`stage=…`) and the inspector's
/// detail view use them. The metrics and `Server-Timing` measure the spans between them,
/// named in [`HISTOGRAMS`] (`parse`, `queue`, `handler`, `write`).
pub const STAGES: [&str; 7] = [
    "accepted",
    "first_byte",
    "head_parsed",
    "queued",
    "handler_start",
    "handler_end",
    "written",
];

impl Timeline {
    /// The stamps in the order of [`STAGES`].
    pub fn stamps(&self) -> [Stamp; 7] {
        [
            self.accepted,
            self.first_byte,
            self.head_parsed,
            self.queued,
            self.handler_start,
            self.handler_end,
            self.written,
        ]
    }
}

fn span(from: Stamp, to: Stamp) -> Option<Duration> {
    (from != 0 && to >= from).then(|| Duration::from_nanos(to - from))
}

impl Timeline {
    /// From the first byte to the parsed head (0 when both came in one read). It also
    /// holds a buffered body's arrival (`head_parsed` is stamped once the body is in) and,
    /// for a request pipelined behind others on its connection, the wait for their answers.
    pub fn parse(&self) -> Option<Duration> {
        span(self.first_byte, self.head_parsed)
    }
    /// From queued to the handler's start: the wait for a worker.
    pub fn queue_wait(&self) -> Option<Duration> {
        span(self.queued, self.handler_start)
    }
    /// The handler chain's own time.
    pub fn handler(&self) -> Option<Duration> {
        span(self.handler_start, self.handler_end)
    }
    /// From the handler's end to the last byte written (encoding and writing).
    pub fn write(&self) -> Option<Duration> {
        span(self.handler_end, self.written)
    }
}

/// One finished request, as the lifecycle inspector shows it. Never holds a body, and
/// the values of `Authorization`, `Proxy-Authorization` and `Cookie` are replaced by
/// `[redacted]`.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// The connection's id (as in every log line).
    pub conn_id: u64,
    /// The request's number on its connection, from 1.
    pub seq: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The method as sent.
    pub method: String,
    /// The path, still percent-encoded, without the query.
    pub path: String,
    /// The route pattern that matched, if the router found one.
    pub route: Option<Arc<str>>,
    /// The status sent.
    pub status: u16,
    /// The request's header fields as sent (sensitive values redacted).
    pub headers: Vec<(String, String)>,
    /// The stages.
    pub timeline: Timeline,
    /// For a streamed answer: when each of its first [`MAX_FLUSHES`] writes happened.
    pub flushes: Vec<Stamp>,
    /// For a streamed answer: how many writes it took in all.
    pub flush_count: u64,
    /// The answer was streamed.
    pub streamed: bool,
}

/// Writes of a streamed answer that a [`RequestRecord`] keeps a stamp of.
pub const MAX_FLUSHES: usize = 32;

/// What the request ring holds (see [`Telemetry::record_requests`]).
#[derive(Clone, Debug)]
pub enum Event {
    /// A request finished (its answer is written, or its connection ended first).
    Request(Box<RequestRecord>),
    /// A connection ended.
    Closed {
        /// The connection's id.
        conn_id: u64,
        /// When.
        at: Stamp,
        /// Why, as in the `h1_connections_closed_total` metric (`peer_closed`, `idle_timeout`…).
        reason: &'static str,
        /// Requests it served.
        requests: u64,
    },
}

/// Histogram bucket bounds, in nanoseconds (Prometheus `le`), shared by every stage.
pub const BUCKETS_NS: [u64; 20] = [
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Counters one thread writes and anybody reads: `store(load + n)` is enough for a
/// single writer, and costs no atomic read-modify-write.
fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Relaxed).wrapping_add(n), Relaxed);
}

/// A latency histogram with one writer.
#[derive(Default)]
pub(crate) struct Histogram {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    counts: [AtomicU64; BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKETS_NS.partition_point(|&b| b < ns);
        bump(&self.counts[i], 1);
        bump(&self.sum_ns, ns);
    }

    fn add_to(&self, h: &mut HistogramSnapshot) {
        for (c, a) in h.counts.iter_mut().zip(&self.counts) {
            *c += a.load(Relaxed);
        }
        h.sum += Duration::from_nanos(self.sum_ns.load(Relaxed));
    }
}

/// The stage histograms, in the order of [`HISTOGRAMS`].
pub(crate) const QUEUE: usize = 0;
pub(crate) const HANDLER: usize = 1;
pub(crate) const WRITE: usize = 2;
pub(crate) const PARSE: usize = 3;
/// Names of the stage histograms (`h1_stage_duration_seconds{stage=…}`).
pub const HISTOGRAMS: [&str; 4] = ["queue", "handler", "write", "parse"];

/// Why connections close, as metric labels, in the order of `Close::index`.
pub const CLOSE_REASONS: [&str; 20] = [
    "peer_closed",
    "peer_closed_mid_request",
    "io_error",
    "done",
    "idle_timeout",
    "header_timeout",
    "write_timeout",
    "linger_timeout",
    "draining",
    "shutdown_deadline",
    "forced_stop",
    "stream_aborted",
    "upgraded",
    "ws_closed",
    "ws_protocol_error",
    "ws_timeout",
    "ws_overflow",
    "upstream_failed",
    "tls_handshake_timeout",
    "tls_handshake_failed",
];

/// Deadlines, as metric labels, in the order of `Deadline::index`.
pub const DEADLINES: [&str; 8] = [
    "header",
    "body",
    "write",
    "idle",
    "linger",
    "ping",
    "upstream",
    "tls_handshake",
];

/// One request count's key.
struct Count {
    method: Method,
    class: u8,
    route: Option<Arc<str>>,
    n: u64,
}

/// One thread's counters (the loop's, or one worker's). Aligned so two threads' shards
/// never share a cache line.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Stats {
    pub accepted: AtomicU64,
    pub closed: [AtomicU64; CLOSE_REASONS.len()],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub shed: AtomicU64,
    pub deadlines: [AtomicU64; DEADLINES.len()],
    pub streams_started: AtomicU64,
    pub streams_ended: AtomicU64,
    pub upgrades: AtomicU64,
    /// WebSocket connections opened and closed on the loop, and the messages they read.
    pub ws_opened: AtomicU64,
    pub ws_closed: AtomicU64,
    pub ws_messages_in: AtomicU64,
    /// 1 while this worker runs a job.
    pub busy: AtomicU64,
    pub hist: [Histogram; HISTOGRAMS.len()],
    requests: Mutex<Vec<Count>>,
}

impl Stats {
    pub fn bump(&self, a: &AtomicU64, n: u64) {
        let _ = self;
        bump(a, n);
    }

    pub fn set(&self, a: &AtomicU64, v: u64) {
        let _ = self;
        a.store(v, Relaxed);
    }

    /// Counts one answered request.
    pub fn count_request(&self, method: Method, status: u16, route: Option<&Arc<str>>) {
        let class = (status / 100).min(9) as u8;
        let mut v = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let same_route = |c: &Count| match (&c.route, route) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || **a == **b,
            _ => false,
        };
        match v
            .iter_mut()
            .find(|c| c.method == method && c.class == class && same_route(c))
        {
            Some(c) => c.n += 1,
            None => v.push(Count {
                method,
                class,
                route: route.cloned(),
                n: 1,
            }),
        }
    }

    /// The histograms of the stages up to the handler's end (on the worker).
    pub fn observe_handler(&self, tl: &Timeline) {
        for (i, d) in [
            (QUEUE, tl.queue_wait()),
            (HANDLER, tl.handler()),
            (PARSE, tl.parse()),
        ] {
            if let Some(d) = d {
                self.hist[i].observe(d);
            }
        }
    }
}

/// A request count in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestCount {
    /// The method (`OTHER` for a method outside RFC 9110's list, to bound the labels).
    pub method: &'static str,
    /// The status class: 1 to 5.
    pub class: u8,
    /// The route pattern; `None` for answers the router made itself (404, 405, 301) or
    /// requests no router saw.
    pub route: Option<Arc<str>>,
    /// Requests answered.
    pub count: u64,
}

/// A histogram in a [`Snapshot`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations per bucket of [`BUCKETS_NS`] (not cumulative), then the `+Inf` one.
    pub counts: Vec<u64>,
    /// The sum of the observations.
    pub sum: Duration,
}

impl HistogramSnapshot {
    /// How many observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The server's counters at one moment, summed over the loop and the workers.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Time since the server was bound.
    pub uptime: Duration,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed, by reason (the order of [`CLOSE_REASONS`]).
    pub closed: Vec<(&'static str, u64)>,
    /// Connections open now (accepted − closed).
    pub open: u64,
    /// Requests answered, by method, status class and route.
    pub requests: Vec<RequestCount>,
    /// Stage latencies (the order of [`HISTOGRAMS`]).
    pub stages: Vec<(&'static str, HistogramSnapshot)>,
    /// Request bytes read.
    pub bytes_in: u64,
    /// Answer bytes written.
    pub bytes_out: u64,
    /// Requests refused with 503 because the job queue was full or the memory budget spent.
    pub shed: u64,
    /// Deadlines that fired, by kind (the order of [`DEADLINES`]).
    pub deadlines: Vec<(&'static str, u64)>,
    /// Jobs waiting for a worker.
    pub queue_depth: u64,
    /// Workers running a job now.
    pub busy_workers: u64,
    /// Workers configured.
    pub workers: u64,
    /// Streamed answers started and ended.
    pub streams_started: u64,
    /// See `streams_started`.
    pub streams_ended: u64,
    /// Connections that switched protocols (to an upgrade callback or a WebSocket).
    pub upgrades: u64,
    /// WebSocket connections the loop serves now (feature `ws`).
    pub websockets_open: u64,
    /// WebSocket messages (text and binary) read from clients.
    pub websocket_messages_in: u64,
    /// Request events dropped from the ring because nobody read them in time.
    pub events_dropped: u64,
}

/// The shared state behind a [`Telemetry`] handle.
pub(crate) struct Shared {
    pub epoch: Instant,
    wall: SystemTime,
    /// Workers stamp the handler's start and end (two clock reads per request): set by
    /// `record_stages` (or `server_timing`), or later by an inspector.
    stages: AtomicBool,
    /// Answers carry `Server-Timing`.
    pub server_timing: bool,
    /// One per event loop, written by that loop only.
    pub loops: Box<[Stats]>,
    /// One per worker, written by that worker only.
    pub workers: Box<[Stats]>,
    ring: OnceLock<Ring>,
    /// The job queue, whose length a snapshot reads (set when the server runs).
    pub queue: Mutex<QueueProbe>,
}

/// The job queue, without holding it (`JobQueue::probe`).
pub(crate) type QueueProbe = std::sync::Weak<crate::pool::chan::Chan<crate::pool::Job>>;

struct Ring {
    /// Oldest first; at most `capacity`. The lock is held for a push or a take, never
    /// while an event is built or dropped.
    events: Mutex<VecDeque<Event>>,
    capacity: usize,
    dropped: AtomicU64,
}

/// A handle on a server's stage timings and counters; cheap to clone, usable from any
/// thread (a `/metrics` handler, the inspector, a test). Get it from
/// [`Server::telemetry`](crate::Server::telemetry) before the server runs.
#[derive(Clone)]
pub struct Telemetry(pub(crate) Arc<Shared>);

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("workers", &self.0.workers.len())
            .field("recording", &self.0.ring.get().is_some())
            .finish()
    }
}

impl Telemetry {
    pub(crate) fn new(
        loops: usize,
        workers: usize,
        stages: bool,
        server_timing: bool,
    ) -> Telemetry {
        Telemetry(Arc::new(Shared {
            epoch: Instant::now(),
            wall: SystemTime::now(),
            stages: AtomicBool::new(stages || server_timing),
            server_timing,
            loops: (0..loops.max(1)).map(|_| Stats::default()).collect(),
            workers: (0..workers).map(|_| Stats::default()).collect(),
            ring: OnceLock::new(),
            queue: Mutex::default(),
        }))
    }

    /// Keeps the last `capacity` finished requests (and connection ends) as [`Event`]s for
    /// [`take_events`](Telemetry::take_events). Off until called; the first call sets the
    /// capacity. Recording builds one small record per request on the worker (its
    /// path, route and headers): an allocation per request, never on the loop. Without
    /// `Config::record_stages` a record holds the loop's stages alone (the inspector
    /// turns them on, [`record_stages`](Telemetry::record_stages)).
    pub fn record_requests(&self, capacity: usize) {
        self.0.ring.get_or_init(|| {
            let capacity = capacity.max(1);
            Ring {
                // Allocated whole now, so that a push never allocates.
                events: Mutex::new(VecDeque::with_capacity(capacity)),
                capacity,
                dropped: AtomicU64::new(0),
            }
        });
    }

    /// Turns on the workers' stamps (`handler_start`, `handler_end`, `written`), as
    /// `Config::record_stages` does, for a server already bound: the lifecycle inspector
    /// calls it, since it draws those stages.
    #[cfg_attr(not(feature = "inspect"), allow(dead_code))]
    pub(crate) fn record_stages(&self) {
        self.0.stages.store(true, Relaxed);
    }

    /// Whether requests are being recorded.
    pub fn is_recording(&self) -> bool {
        self.0.ring.get().is_some()
    }

    /// Takes up to `max` recorded events, oldest first.
    pub fn take_events(&self, max: usize) -> Vec<Event> {
        self.0
            .ring
            .get()
            .map(|r| {
                let mut q = r.events.lock().unwrap_or_else(|e| e.into_inner());
                let n = max.min(q.len());
                q.drain(..n).collect()
            })
            .unwrap_or_default()
    }

    /// The wall-clock time of a stamp.
    pub fn wall_time(&self, stamp: Stamp) -> SystemTime {
        self.0.wall + Duration::from_nanos(stamp)
    }

    /// The stamp of now.
    pub fn now(&self) -> Stamp {
        self.0.now()
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let s = &self.0;
        let all = || s.loops.iter().chain(s.workers.iter());
        let sum = |f: &dyn Fn(&Stats) -> &AtomicU64| all().map(|x| f(x).load(Relaxed)).sum();
        let mut snap = Snapshot {
            uptime: s.epoch.elapsed(),
            accepted: sum(&|x| &x.accepted),
            bytes_in: sum(&|x| &x.bytes_in),
            bytes_out: sum(&|x| &x.bytes_out),
            shed: sum(&|x| &x.shed),
            queue_depth: s
                .queue
                .lock()
                .map_or(0, |q| q.upgrade().map_or(0, |c| c.len())) as u64,
            busy_workers: sum(&|x| &x.busy),
            workers: s.workers.len() as u64,
            streams_started: sum(&|x| &x.streams_started),
            streams_ended: sum(&|x| &x.streams_ended),
            upgrades: sum(&|x| &x.upgrades),
            websockets_open: sum(&|x| &x.ws_opened).saturating_sub(sum(&|x| &x.ws_closed)),
            websocket_messages_in: sum(&|x| &x.ws_messages_in),
            events_dropped: s.ring.get().map_or(0, |r| r.dropped.load(Relaxed)),
            ..Snapshot::default()
        };
        snap.closed = CLOSE_REASONS
            .iter()
            .enumerate()
            .map(|(i, r)| (*r, sum(&|x| &x.closed[i])))
            .collect();
        let closed: u64 = snap.closed.iter().map(|c| c.1).sum();
        snap.open = snap.accepted.saturating_sub(closed);
        snap.deadlines = DEADLINES
            .iter()
            .enumerate()
            .map(|(i, r)| (*r, sum(&|x| &x.deadlines[i])))
            .collect();
        snap.stages = HISTOGRAMS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut h = HistogramSnapshot {
                    counts: vec![0; BUCKETS_NS.len() + 1],
                    sum: Duration::ZERO,
                };
                for x in all() {
                    x.hist[i].add_to(&mut h);
                }
                (*name, h)
            })
            .collect();
        for x in all() {
            let v = x.requests.lock().unwrap_or_else(|e| e.into_inner());
            for c in v.iter() {
                let method = method_label(c.method);
                match snap
                    .requests
                    .iter_mut()
                    .find(|r| r.method == method && r.class == c.class && r.route == c.route)
                {
                    Some(r) => r.count += c.n,
                    None => snap.requests.push(RequestCount {
                        method,
                        class: c.class,
                        route: c.route.clone(),
                        count: c.n,
                    }),
                }
            }
        }
        snap.requests.sort_by(|a, b| {
            (a.route.as_deref(), a.method, a.class).cmp(&(b.route.as_deref(), b.method, b.class))
        });
        snap
    }
}

fn method_label(m: Method) -> &'static str {
    match m {
        Method::Other => "OTHER",
        m => m.as_str(),
    }
}

impl Shared {
    /// Whether workers stamp the handler's start and end, and the write.
    pub fn stages(&self) -> bool {
        self.stages.load(Relaxed)
    }

    /// The stamp of now (a clock read).
    pub fn now(&self) -> Stamp {
        self.stamp(Instant::now())
    }

    /// The stamp of `t` (no clock read).
    pub fn stamp(&self, t: Instant) -> Stamp {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    pub fn recording(&self) -> bool {
        self.ring.get().is_some()
    }

    /// Puts an event in the ring, dropping the oldest when it is full.
    pub fn push(&self, ev: Event) {
        let Some(r) = self.ring.get() else { return };
        let mut q = r.events.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = if q.len() >= r.capacity {
            q.pop_front()
        } else {
            None
        };
        q.push_back(ev);
        drop(q);
        if oldest.is_some() {
            bump_shared(&r.dropped);
        }
        drop(oldest); // its strings are freed outside the lock
    }

    /// The worker shard for worker `i`.
    pub fn worker(&self, i: usize) -> &Stats {
        &self.workers[i % self.workers.len().max(1)]
    }
}

/// For counters several threads write.
fn bump_shared(a: &AtomicU64) {
    a.fetch_add(1, Relaxed);
}

/// What the engine keeps of one request until its answer is written: the stages so far
/// and what the metrics and the ring need.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub tl: Timeline,
    /// The request number on its connection, from 1.
    pub seq: u64,
    pub status: u16,
    /// Built on the worker when the ring is on.
    pub record: Option<Box<RequestRecord>>,
}

impl Trace {
    /// Whether a handler ran for it (requests handed back unrun have no end).
    pub fn ran(&self) -> bool {
        self.tl.handler_end != 0 || self.status != 0
    }

    /// A streamed answer's bytes went to the socket.
    pub fn note_flush(&mut self, at: Stamp) {
        if let Some(r) = &mut self.record {
            r.flush_count += 1;
            if r.flushes.len() < MAX_FLUSHES {
                r.flushes.push(at);
            }
        }
    }

    /// The answer is out (`Some`: its stamp, or 0 when the worker reads no clock) or never
    /// will be (`None`: the connection ended first): histograms, trace line, ring.
    pub fn finish(mut self, tel: &Shared, stats: &Stats, conn_id: u64, written: Option<Stamp>) {
        self.tl.written = written.unwrap_or(0);
        if let Some(d) = self.tl.write() {
            stats.hist[WRITE].observe(d);
        }
        if written.is_some() {
            log::trace!(
                "conn={conn_id} req={} stage=written status={}",
                self.seq,
                self.status
            );
        } else {
            log::trace!(
                "conn={conn_id} req={} not written (status {}): the connection ended first",
                self.seq,
                self.status
            );
        }
        if let Some(mut rec) = self.record.take() {
            if rec.streamed && rec.flush_count == 0 && self.tl.written != 0 {
                // A short stream goes out whole with its head, in one write.
                rec.flush_count = 1;
                rec.flushes.push(self.tl.written);
            }
            rec.timeline = self.tl;
            rec.status = self.status;
            tel.push(Event::Request(rec));
        }
    }
}

/// Values of these header fields are never recorded.
const REDACTED: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// Builds the ring's record of a request (on the worker).
pub(crate) fn record_of(req: &crate::Request, seq: u64) -> Box<RequestRecord> {
    let headers = req
        .headers()
        .map(|(n, v)| {
            let v = if REDACTED.iter().any(|r| n.eq_ignore_ascii_case(r)) {
                "[redacted]".to_string()
            } else {
                v.to_string()
            };
            (n.to_string(), v)
        })
        .collect();
    Box::new(RequestRecord {
        conn_id: req.conn_id(),
        seq,
        peer: req.peer_addr(),
        method: req.method_str().to_string(),
        path: req.path().to_string(),
        route: None,
        status: 0,
        headers,
        timeline: Timeline::default(),
        flushes: Vec::new(),
        flush_count: 0,
        streamed: false,
    })
}
