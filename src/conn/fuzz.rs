//! The connection state machine driven by an arbitrary byte script, for the `conn` fuzz
//! target (`fuzz/`) and the corpus replay test (`src/fuzz_harness.rs`).
//!
//! The input is decoded into a configuration and a script of steps, each one thing the
//! client, the kernel, the workers or the clock does. Between steps, and at the end, the
//! harness checks what must hold whatever the client does: no panic (debug assertions are
//! on in fuzz builds), the read buffer within `read_cap`, a chunked body within
//! `max_body_bytes`, an idle connection holding no read buffer, the memory budget's books
//! balanced (and all given back at the close), and every byte written a well-formed
//! sequence of HTTP/1.1 responses: nothing after an answer that says `Connection: close`,
//! nothing after our side was shut.
//!
//! The format: three bytes of configuration (`config`), then steps until the input ends
//! (2000 at most), each one byte — low nibble the kind, high nibble `arg` — plus what the
//! kind takes:
//!
//! | kind | step |
//! |---|---|
//! | 0 | bytes arrive: a length byte (+ 256 × `arg`), then that many bytes |
//! | 1 | a read says `WouldBlock` |
//! | 2 | EOF (for good) |
//! | 3 | a read fails: reset, interrupted, broken pipe, timed out (`arg`) |
//! | 4 | readable event (`arg` odd: without the hang-up flag epoll would add) |
//! | 5 | writable event |
//! | 6 | write room: unlimited, or the next byte × 1, 64 or 4096 (`arg`) |
//! | 7 | the worker runs `arg` queued jobs (0: all) |
//! | 8 | the loop takes the workers' completions |
//! | 9 | time passes: the next byte × 1 ms, 10 ms, 100 ms or 1 s (`arg`); deadlines fire |
//! | 10 | the loop's deferred work (streams, paused reads, budget waiters) |
//! | 11 | the drain starts |
//! | 12 | other connections hold 0, 16 KiB or half the budget (`arg`) |
//! | 13 | a whole loop turn: completions, deferred work, readable, writable, completions |
//! | 14 | channel streams' producers send a chunk (`arg` × 37 + 1 bytes) |
//! | 15 | channel streams' producers finish |
//!
//! At the end the client reads everything, then closes; the connection must get to its
//! end within a bounded number of loop turns and deadlines.
//!
//! Not a test of itself: `conn/tests.rs` has the deterministic cases.

use std::collections::VecDeque;
use std::net::Shutdown;
use std::sync::Mutex;
use std::time::Instant;

use crate::pool::chan::Receiver;

use super::*;
use crate::config::Config;
use crate::handler::Handler;
use crate::http::date::DateCache;
use crate::pool::{Completion, Completions, Job, LoopWake, Notifier, PoolShared, run};
use crate::request::Request;
use crate::response::Response;
use crate::upload::BodySink;

/// What a read of the scripted socket returns next.
enum R {
    Data(Vec<u8>),
    Block,
    Eof,
    Err(io::ErrorKind),
}

/// A scripted socket: reads follow the script, writes go to `written` while there is
/// `room` (`None`: unlimited).
#[derive(Default)]
struct Script {
    reads: Mutex<VecDeque<R>>,
    written: Mutex<Vec<u8>>,
    room: Mutex<Option<usize>>,
    /// Bytes written when our side was shut for writing.
    shut_at: Mutex<Option<usize>>,
}

impl Transport for Script {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut reads = self.reads.lock().unwrap();
        match reads.pop_front() {
            None | Some(R::Block) => Err(io::ErrorKind::WouldBlock.into()),
            Some(R::Eof) => {
                reads.push_front(R::Eof);
                Ok(0)
            }
            Some(R::Err(kind)) => Err(kind.into()),
            Some(R::Data(d)) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                if n < d.len() {
                    reads.push_front(R::Data(d[n..].to_vec()));
                }
                Ok(n)
            }
        }
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut room = self.room.lock().unwrap();
        let n = room.map_or(buf.len(), |r| r.min(buf.len()));
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if let Some(r) = room.as_mut() {
            *r -= n;
        }
        let mut w = self.written.lock().unwrap();
        assert!(
            self.shut_at.lock().unwrap().is_none(),
            "a write after our side was shut"
        );
        w.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            let len = self.written.lock().unwrap().len();
            self.shut_at.lock().unwrap().get_or_insert(len);
        }
        Ok(())
    }
}

/// Takes bytes off the front of the fuzz input; zeros once it is used up.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The configuration the first three bytes of the input pick: limits small enough for
/// the script to reach them.
fn config(i: &mut Input) -> Config {
    let (a, b, c) = (i.byte(), i.byte(), i.byte());
    let max_head_bytes = [16 * 1024, 256, 1024, 4096][usize::from(a & 3)];
    let max_body_bytes = [64 * 1024, 0, 16, 1000][usize::from(a >> 2 & 3)];
    let max_upload_bytes = [0, 0, 4096, 1 << 20][usize::from(a >> 4 & 3)];
    let cfg = Config {
        workers: 1,
        queue_depth: 16,
        max_head_bytes,
        max_headers: [64, 2, 8, 256][usize::from(b & 3)],
        max_uri_bytes: [8 * 1024, 1, 16, 200][usize::from(b >> 2 & 3)].min(max_head_bytes),
        max_body_bytes,
        max_upload_bytes: if max_upload_bytes > max_body_bytes {
            max_upload_bytes
        } else {
            0
        },
        max_requests_per_connection: [0, 0, 1, 3][usize::from(a >> 6)],
        max_batch: [64, 1, 2, 3][usize::from(b >> 4 & 3)],
        max_buffered_bytes: [64 << 20, 20 * 1024, 40 * 1024, 200 * 1024][usize::from(b >> 6)],
        stream_buffer_bytes: [256 * 1024, 1, 100, 4096][usize::from(c & 3)],
        header_read_timeout: Duration::from_millis([5000, 50, 1000, 20][usize::from(c >> 2 & 3)]),
        read_timeout: Duration::from_millis([30_000, 50, 1000, 20][usize::from(c >> 4 & 3)]),
        write_timeout: Duration::from_millis([10_000, 50, 1000, 20][usize::from(c >> 6)]),
        idle_timeout: Duration::from_millis(2000),
        timer_tick: Duration::from_millis(10),
        ..Config::default()
    };
    debug_assert!(cfg.validate().is_ok(), "{cfg:?}");
    cfg
}

/// The application: what it answers depends on the path's second byte, so the script
/// reaches every kind of answer (a fixed body, a large one, a pulled stream, a failing
/// one, a channel stream, a close, an upload sink). Each answer names its request's method, so the checker
/// knows which answers have no body (HEAD).
fn app(req: &mut Request) -> Response {
    let path = req.path().as_bytes();
    let kind = path.get(1).copied().unwrap_or(b'/');
    let n = path.len();
    let r = match kind {
        b's' => Response::stream((0..n % 4).map(move |i| vec![b's'; i * 100 + n])),
        b'S' => Response::try_stream([Ok(vec![b'x'; n]), Err("producer failed")]),
        b'b' => Response::text("b".repeat(70_000 + n)),
        b'c' => Response::text("closing").with_header("Connection", "close"),
        b'e' => Response::error(404, "not here"),
        b'C' => {
            // A channel stream: one chunk now; the script sends more and ends it.
            let (r, tx) = Response::channel();
            let _ = tx.try_send(vec![b'C'; n]);
            SENDERS.with(|s| s.borrow_mut().push(tx));
            r
        }
        b'u' | b'U' if req.streamed_body_len().is_some() => {
            Response::read_body(Sink(0, kind == b'U', req.method_str().to_string()))
        }
        _ => Response::text(format!(
            "{} {} {}",
            req.method_str(),
            req.path(),
            req.body().len()
        )),
    };
    r.with_header("X-Fuzz-Method", req.method_str().to_string())
}

thread_local! {
    /// The producing ends of the channel streams the application started (the worker runs
    /// on the harness's thread): the script sends on them and drops them.
    static SENDERS: std::cell::RefCell<Vec<crate::StreamSender>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// Counts an upload; the refusing kind answers 413 once past 1000 bytes. Its answers
/// name the request's method too.
struct Sink(u64, bool, String);

impl BodySink for Sink {
    fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
        self.0 += piece.len() as u64;
        if self.1 && self.0 > 1000 {
            return Err(Response::error(413, "enough").with_header("X-Fuzz-Method", self.2.clone()));
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Response {
        Response::text(format!("{}", self.0)).with_header("X-Fuzz-Method", self.2)
    }
}

/// The loop, a worker and the clock around one scripted connection.
struct Harness {
    ctx: Ctx,
    jobs: Receiver<Job>,
    completions: Arc<Completions>,
    shared: PoolShared,
    date: DateCache,
    io: Arc<Script>,
    /// `None` once the loop closed it.
    conn: Option<Conn<Script>>,
    /// Bytes other (imaginary) connections hold of the budget.
    others: usize,
    fired: Vec<((usize, u32), Tick)>,
    _poll: mio::Poll,
}

impl Harness {
    fn new(cfg: Config) -> Self {
        let poll = mio::Poll::new().expect("epoll");
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).expect("eventfd");
        let completions = Arc::new(Completions::default());
        let notifier = Notifier::new(completions.clone(), Arc::new(LoopWake::new(waker)));
        let (job_tx, jobs) = crate::pool::JobQueue::new(cfg.queue_depth);
        let tel = crate::telemetry::Telemetry::new(1, 1, true, false);
        let shared = PoolShared {
            notifiers: Arc::new([notifier.clone()]),
            draining: Arc::default(),
            skipped: Default::default(),
            stream_buffer_bytes: cfg.stream_buffer_bytes,
            reserve: Arc::default(),
            tel: tel.0.clone(),
            tls: false,
        };
        let budget = Arc::new(crate::budget::Budget::new(cfg.max_buffered_bytes));
        let mut ctx = Ctx::new(0, cfg, budget, job_tx, notifier, Instant::now(), tel.0);
        let io = Arc::new(Script::default());
        let mut conn = Conn::new(io.clone(), 0, 0, 1, ([127, 0, 0, 1], 9).into());
        let header = ctx.cfg.header_read_timeout;
        conn.arm(&mut ctx, Deadline::Header, header);
        Harness {
            ctx,
            jobs,
            completions,
            shared,
            date: DateCache::new(),
            io,
            conn: Some(conn),
            others: 0,
            fired: Vec::new(),
            _poll: poll,
        }
    }

    /// What the loop does with a step's outcome (`EventLoop::close`).
    fn outcome(&mut self, step: Step) {
        let Err(reason) = step else { return };
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if !reason.is_forced() && conn.defer_close(reason) {
            return; // on_done closes it, with this reason, when the batch is back
        }
        let mut conn = self.conn.take().expect("checked above");
        if let Some(reqs) = conn.take_unwritten() {
            self.ctx.finish_unwritten(reqs, 1, None);
        }
        let _ = conn.release(&mut self.ctx);
        assert_eq!(
            self.ctx.budget.held(),
            self.others,
            "a closed connection gave back all it held"
        );
    }

    /// Runs `f` on the connection if it is open (`EventLoop::with_conn`).
    fn with_conn(&mut self, f: impl FnOnce(&mut Conn<Script>, &mut Ctx) -> Step) {
        if let Some(c) = self.conn.as_mut() {
            let step = f(c, &mut self.ctx);
            self.outcome(step);
        }
    }

    fn readable(&mut self, hup: Option<bool>) {
        // epoll reports the FIN or the error with the readiness (EPOLLRDHUP/ERR).
        let hup = hup.unwrap_or_else(|| {
            (self.io.reads.lock().unwrap().iter()).any(|r| matches!(r, R::Eof | R::Err(_)))
        });
        self.with_conn(|c, ctx| c.on_readable(ctx, hup));
    }

    /// Runs up to `max` queued jobs as a worker would.
    fn work(&mut self, max: usize) -> usize {
        let mut ran = 0;
        while ran < max {
            let Some(job) = self.jobs.try_recv() else {
                break;
            };
            ran += 1;
            let app: &dyn Handler = &app;
            let stats = self.shared.tel.worker(0);
            run(job, &mut self.date, &self.shared, app, stats);
        }
        ran
    }

    /// Hands the workers' completions to the loop (`EventLoop::drain_completions`).
    fn complete(&mut self) -> usize {
        let mut n = 0;
        for c in self.completions.take_all() {
            n += 1;
            if !is_unaccounted(&c) {
                self.ctx.outstanding -= 1;
            }
            let Some(conn) = self.conn.as_mut() else {
                // The connection is gone: what the completion carries is let go.
                match c {
                    Completion::Done(mut d) => {
                        if let Some(b) = d.batch.take() {
                            self.ctx.bufs.put_read(b);
                        }
                        if let Some((s, _)) = d.stream.take() {
                            s.close(&self.ctx.jobs);
                        }
                        if let Some(u) = d.upload.take() {
                            self.ctx.jobs.abort_upload(u.sink);
                        }
                    }
                    Completion::Piece(p) => {
                        self.ctx.jobs.abort_upload(p.sink);
                    }
                    Completion::Pulled(p) => {
                        if let Some(pull) = p.pull {
                            crate::pool::drop_off_loop(&self.ctx.jobs, Box::new(pull));
                        }
                    }
                    Completion::StreamReady { .. } => {}
                    #[cfg(feature = "ws")]
                    Completion::WsDone(d) => crate::conn::ws_orphan_done(&mut self.ctx, d),
                    #[cfg(feature = "ws")]
                    Completion::WsOutput { .. } => {}
                    #[cfg(feature = "proxy")]
                    Completion::Forwarded(_) => {}
                    Completion::Accepted(..) => {}
                }
                continue;
            };
            let step = match c {
                Completion::Done(mut d) => conn.on_done(&mut self.ctx, &mut d),
                Completion::Pulled(p) => conn.on_pulled(&mut self.ctx, p),
                Completion::StreamReady { .. } => conn.pump_stream(&mut self.ctx),
                Completion::Piece(p) => conn.on_piece(&mut self.ctx, p),
                #[cfg(feature = "ws")]
                Completion::WsDone(d) => conn.on_ws_done(&mut self.ctx, d),
                #[cfg(feature = "ws")]
                Completion::WsOutput { .. } => conn.ws_pump(&mut self.ctx),
                #[cfg(feature = "proxy")]
                Completion::Forwarded(a) => conn.on_forwarded(&mut self.ctx, a),
                Completion::Accepted(..) => unreachable!("one loop: nothing is handed to it"),
            };
            // A close deferred while the batch was out comes back as this step's error.
            self.outcome(step);
        }
        if n > 0 {
            for _ in std::mem::take(&mut self.ctx.stalled) {
                self.with_conn(|c, ctx| c.retry_stalled(ctx));
            }
        }
        n
    }

    /// Work the loop put off to its next turn.
    fn deferred_work(&mut self) {
        for _ in std::mem::take(&mut self.ctx.deferred) {
            self.with_conn(|c, ctx| c.pump_stream(ctx));
        }
        for _ in std::mem::take(&mut self.ctx.deferred_reads) {
            self.with_conn(|c, ctx| c.resume_reading(ctx));
        }
        if self.ctx.budget_turn().1 {
            for _ in std::mem::take(&mut self.ctx.budget_waiters) {
                self.with_conn(|c, ctx| c.resume_reading(ctx));
            }
        }
    }

    /// Time passes; due deadlines fire (`EventLoop::expire_deadlines`).
    fn advance(&mut self, by: Duration) {
        let now = self.ctx.now + by;
        self.ctx.set_now(now);
        let now_tick = self.ctx.wheel.advance(now, &mut self.fired);
        let fired = std::mem::take(&mut self.fired);
        for (_, tick) in fired {
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            if conn.deadlines.filed != Some(tick) {
                continue;
            }
            conn.deadlines.filed = None;
            if let Some(kind) = conn.deadlines.take_due(now_tick) {
                let step = conn.on_deadline(&mut self.ctx, kind);
                self.outcome(step);
            }
            if let Some(conn) = self.conn.as_mut()
                && conn.deadlines.filed.is_none()
                && let Some(due) = conn.deadlines.next_due()
            {
                self.ctx.wheel.insert(due.max(now_tick + 1), (0, 0));
                conn.deadlines.filed = Some(due.max(now_tick + 1));
            }
        }
    }

    /// What must hold between any two steps.
    fn check(&self) {
        let Some(c) = self.conn.as_ref() else {
            assert_eq!(self.ctx.budget.held(), self.others);
            return;
        };
        assert_eq!(
            self.ctx.budget.held(),
            c.charged + self.others,
            "the budget's books: held is what the connection is charged for"
        );
        if let Some(b) = c.rbuf.as_ref() {
            assert!(b.len <= b.bytes.len());
            assert!(
                b.bytes.len() <= self.ctx.read_cap,
                "read buffer of {} bytes, read_cap {}",
                b.bytes.len(),
                self.ctx.read_cap
            );
        }
        if let Phase::ReadBody(r) = &c.phase
            && let BodyProgress::Chunked {
                decoder, resume_at, ..
            } = &r.body
        {
            assert!(decoder.decoded_len() <= self.ctx.cfg.max_body_bytes);
            // Decoded in place: the data right behind the head, the buffer ending there
            // (the framing consumed was dropped).
            let b = c
                .rbuf
                .as_ref()
                .expect("a body being read is in the read buffer");
            assert_eq!(
                *resume_at,
                r.head.len as usize + decoder.decoded_len() as usize,
                "a chunked body's decoded data ends where its raw bytes resume"
            );
            assert_eq!(b.len, *resume_at, "no raw chunked bytes left undecoded");
        }
        if matches!(c.phase, Phase::Idle) {
            assert!(c.rbuf.is_none(), "an idle connection holds no read buffer");
        }
        assert!(c.wpos <= c.wbuf.len());
    }
}

/// Runs one script. Panics when an invariant is broken.
pub(crate) fn run_script(data: &[u8]) {
    let mut i = Input(data);
    let cfg = config(&mut i);
    let mut h = Harness::new(cfg);
    SENDERS.with(|s| s.borrow_mut().clear());
    let mut steps = 0;
    while !i.is_empty() && steps < 2000 {
        steps += 1;
        let op = i.byte();
        let (kind, arg) = (op & 0x0f, usize::from(op >> 4));
        match kind {
            0 => {
                let n = usize::from(i.byte()) + arg * 256;
                let d = i.bytes(n).to_vec();
                if !d.is_empty() {
                    h.io.reads.lock().unwrap().push_back(R::Data(d));
                }
            }
            1 => h.io.reads.lock().unwrap().push_back(R::Block),
            2 => h.io.reads.lock().unwrap().push_back(R::Eof),
            3 => {
                let kind = [
                    io::ErrorKind::ConnectionReset,
                    io::ErrorKind::Interrupted,
                    io::ErrorKind::BrokenPipe,
                    io::ErrorKind::TimedOut,
                ][arg & 3];
                h.io.reads.lock().unwrap().push_back(R::Err(kind));
            }
            // A readiness event: with the FIN seen as epoll would report it, or without.
            4 => h.readable(if arg & 1 == 0 { None } else { Some(false) }),
            5 => h.with_conn(|c, ctx| c.on_writable(ctx)),
            6 => {
                let b = usize::from(i.byte());
                *h.io.room.lock().unwrap() = match arg & 3 {
                    0 => None,
                    1 => Some(b),
                    2 => Some(b * 64),
                    _ => Some(b * 4096),
                };
            }
            7 => {
                h.work(if arg == 0 { usize::MAX } else { arg });
            }
            8 => {
                h.complete();
            }
            9 => {
                let b = u64::from(i.byte());
                let ms = b * [1, 10, 100, 1000][arg & 3];
                h.advance(Duration::from_millis(ms));
            }
            10 => h.deferred_work(),
            11 => h.ctx.draining = true,
            12 => {
                // Other connections take or give back part of the budget.
                let want = [0, 16 * 1024, h.ctx.cfg.max_buffered_bytes / 2][arg % 3];
                h.ctx.give_back(h.others);
                h.ctx.budget.take(want);
                h.others = want;
            }
            // The loop's turn: what a wake-up does, in its order.
            13 => {
                h.complete();
                h.deferred_work();
                h.readable(None);
                h.with_conn(|c, ctx| c.on_writable(ctx));
                h.complete();
            }
            14 => SENDERS.with(|s| {
                for tx in s.borrow().iter() {
                    let _ = tx.try_send(vec![b'c'; arg * 37 + 1]);
                }
            }),
            _ => SENDERS.with(|s| s.borrow_mut().clear()), // the producers finish
        }
        h.check();
    }
    SENDERS.with(|s| s.borrow_mut().clear());
    let written = h.finish();
    check_responses(&written);
}

impl Harness {
    /// The end of a script: the client reads everything, then closes; the workers finish.
    /// Whatever the script did, the connection must get somewhere. Returns what was
    /// written.
    fn finish(mut self) -> Vec<u8> {
        let h = &mut self;
        *h.io.room.lock().unwrap() = None;
        for _ in 0..64 {
            h.work(usize::MAX);
            h.complete();
            h.deferred_work();
            h.with_conn(|c, ctx| c.on_writable(ctx));
            h.check();
        }
        {
            let mut reads = h.io.reads.lock().unwrap();
            reads.retain(|r| !matches!(r, R::Block));
            reads.push_back(R::Eof);
        }
        for _ in 0..64 {
            h.readable(None);
            h.work(usize::MAX);
            h.complete();
            h.deferred_work();
            h.check();
            if h.conn.is_none() {
                break;
            }
        }
        if h.conn.is_some() {
            // Still open (a deferred close, a stall): the loop's deadlines end it.
            for _ in 0..8 {
                h.advance(Duration::from_secs(60));
                h.work(usize::MAX);
                h.complete();
                h.check();
            }
        }
        if let Some(conn) = h.conn.take()
            && !matches!(conn.phase, Phase::Dispatched(_))
        {
            let _ = conn.release(&mut h.ctx);
            assert_eq!(h.ctx.budget.held(), h.others);
        }
        h.io.written.lock().unwrap().clone()
    }
}

/// What the `conn_split` target compares: the answers written when the client's bytes
/// arrive in one read, and in reads of the sizes the input gives.
///
/// The first three bytes are the configuration (as for `run_script`, the memory budget
/// aside: a budget can rightly refuse a burst that it lets through piece by piece), one
/// byte how many sizes follow (0–15), one byte per size (1–256 bytes); the rest is what
/// the client sends. Each run reads, runs the worker and writes until nothing moves after
/// each read, then the client closes. Both outputs pass `check_responses`, and must
/// agree: the same answers from the application, in the same order, with the same
/// bodies (the Date header aside). The engine's error answer that may end either is not
/// compared (see `summary`), nor its status (which limit a head breaks first can depend
/// on how much of it has arrived), nor `100 Continue` (sent only when the body is not
/// there yet).
pub(crate) fn run_split(data: &[u8]) {
    let mut i = Input(data);
    let mut cfg = config(&mut i);
    cfg.max_buffered_bytes = 64 << 20;
    let k = usize::from(i.byte() & 15);
    let mut sizes: Vec<usize> = i.bytes(k).iter().map(|&b| usize::from(b) + 1).collect();
    if sizes.is_empty() {
        sizes.push(1);
    }
    let client = i.0;
    let whole = drive(cfg.clone(), client, &[usize::MAX]);
    let split = drive(cfg, client, &sizes);
    let (a, b) = (check_responses(&whole), check_responses(&split));
    assert_eq!(
        summary(&a),
        summary(&b),
        "one read vs reads of {sizes:?}:\n{}\n---\n{}",
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(&split)
    );
}

/// `client` arriving in reads of `sizes` (cycled), the loop and the worker settling after
/// each; then EOF. Returns what was written.
fn drive(cfg: Config, client: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut h = Harness::new(cfg);
    SENDERS.with(|s| s.borrow_mut().clear());
    let mut rest = client;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, more) = rest.split_at(size.min(rest.len()));
        rest = more;
        h.io.reads
            .lock()
            .unwrap()
            .push_back(R::Data(piece.to_vec()));
        h.readable(Some(false));
        for _ in 0..16 {
            let moved = h.work(usize::MAX) + h.complete();
            h.deferred_work();
            h.with_conn(|c, ctx| c.on_writable(ctx));
            h.readable(Some(false));
            h.check();
            if moved == 0 {
                break;
            }
        }
    }
    SENDERS.with(|s| s.borrow_mut().clear());
    h.finish()
}

/// (status, method, body, complete).
type Compared<'a> = (u16, Option<Vec<u8>>, &'a [u8], bool);

/// The answers as `conn_split` compares them: (status, method, body, complete) for the
/// application's; the engine's errors as status 0.
fn summary(answers: &[Answer]) -> Vec<Compared<'_>> {
    let mut s: Vec<Compared> = answers
        .iter()
        .filter(|a| a.code >= 200)
        .map(|a| match &a.method {
            None if a.code >= 400 => (0, None, &[][..], true),
            m => (a.code, m.clone(), &a.body[..], a.complete),
        })
        .collect();
    // An engine error last, or not: a head that turns bad in a line that never ends
    // before the client closes, in a way the head reader does not judge byte by byte (the
    // request line's shape past its 34th byte: `HeadRead::lex`), is refused at once when
    // the line came in the read that ended the line before, and ends silently when it
    // dribbled in. The application's answers before it must agree all the same.
    if s.last().is_some_and(|a| a.0 == 0) {
        s.pop();
    }
    s
}

/// One response as `check_responses` read it.
#[derive(Debug)]
pub(crate) struct Answer {
    code: u16,
    /// The request's method, for the application's answers (`X-Fuzz-Method`).
    method: Option<Vec<u8>>,
    /// Decoded.
    body: Vec<u8>,
    /// False for one cut short (the last).
    complete: bool,
}

/// Every byte written is a sequence of well-formed HTTP/1.1 responses (the last one may
/// be cut short: the connection closed mid-write), and nothing follows a response that
/// says `Connection: close` or whose body runs to the close.
pub(crate) fn check_responses(mut w: &[u8]) -> Vec<Answer> {
    use crate::http::decode::ChunkedDecoder;
    let mut finals = 0;
    let mut answers = Vec::new();
    while !w.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut res = httparse::Response::new(&mut headers);
        let n = match res.parse(w) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                assert!(w.len() < 1 << 16, "an endless response head");
                answers.push(Answer {
                    code: 0,
                    method: None,
                    body: Vec::new(),
                    complete: false,
                });
                return answers;
            }
            Err(e) => panic!(
                "malformed response head ({e}) after {finals} answer(s): {:?}",
                String::from_utf8_lossy(&w[..w.len().min(200)])
            ),
        };
        assert_eq!(res.version, Some(1), "HTTP/1.1 responses only");
        assert!(w.starts_with(b"HTTP/1.1 "));
        let code = res.code.expect("a status code");
        assert!((100..=599).contains(&code), "status {code}");
        let field = |name: &str| {
            res.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
                .collect::<Vec<_>>()
        };
        let (cl, te, conn, method) = (
            field("content-length"),
            field("transfer-encoding"),
            field("connection"),
            field("x-fuzz-method"),
        );
        assert!(cl.len() <= 1, "one Content-Length at most");
        assert!(
            cl.is_empty() || te.is_empty(),
            "Content-Length with Transfer-Encoding"
        );
        let close = conn
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"close") || v.eq_ignore_ascii_case(b"upgrade"));
        let mut answer = Answer {
            code,
            method: method.first().map(|m| m.to_vec()),
            body: Vec::new(),
            complete: true,
        };
        w = &w[n..];
        if code < 200 {
            assert!(cl.is_empty() && te.is_empty(), "a 1xx with a body");
            answers.push(answer);
            continue;
        }
        finals += 1;
        let bodyless = method.first() == Some(&&b"HEAD"[..]) || code == 204 || code == 304;
        if !bodyless {
            if !te.is_empty() {
                assert!(
                    te.len() == 1 && te[0] == b"chunked",
                    "Transfer-Encoding {te:?}"
                );
                let mut d = ChunkedDecoder::new();
                match d.decode(w, &mut answer.body, u64::MAX) {
                    Ok((used, true)) => w = &w[used..],
                    // Cut off: the producer failed or the connection closed mid-body.
                    Ok((_, false)) => {
                        answer.complete = false;
                        answers.push(answer);
                        return answers;
                    }
                    Err(e) => panic!("a malformed chunked body: {e:?}"),
                }
            } else if let Some(v) = cl.first() {
                let len: usize = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("a numeric Content-Length");
                if w.len() < len {
                    answer.body = w.to_vec();
                    answer.complete = false; // cut off
                    answers.push(answer);
                    return answers;
                }
                answer.body = w[..len].to_vec();
                w = &w[len..];
            } else {
                // Delimited by the close (an HTTP/1.0 stream): the rest is its body.
                assert!(
                    close,
                    "a body delimited by the close without Connection: close"
                );
                answer.body = w.to_vec();
                answers.push(answer);
                return answers;
            }
        }
        answers.push(answer);
        if close {
            assert!(
                w.is_empty(),
                "{} byte(s) written after an answer with Connection: close",
                w.len()
            );
        }
    }
    answers
}

/// Completions the loop does not count in `outstanding` (no job of a batch, pull or
/// upload piece is behind them).
fn is_unaccounted(c: &Completion) -> bool {
    match c {
        Completion::StreamReady { .. } => true,
        #[cfg(feature = "ws")]
        Completion::WsDone(_) | Completion::WsOutput { .. } => true,
        #[cfg(feature = "proxy")]
        Completion::Forwarded(_) => true,
        _ => false,
    }
}
