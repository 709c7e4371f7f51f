//! The connection state machine driven from byte scripts through the `Transport` seam
//! (the way hyper tests its `Conn` with a mock I/O): partial reads, `WouldBlock`, EOF and
//! resets at every point, with a real worker pass (`pool::run_batch`) answering batches.

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

/// One step of what the client does, as the server's reads see it.
#[derive(Clone, Debug)]
enum R {
    Data(Vec<u8>),
    /// Nothing more for now.
    Block,
    /// The client closed its side.
    Eof,
    /// The connection was reset.
    Reset,
}

fn data(b: &[u8]) -> R {
    R::Data(b.to_vec())
}

/// A scripted socket: reads follow the script, writes go to `written` while there is
/// `room`.
#[derive(Default)]
struct Script {
    reads: Mutex<VecDeque<R>>,
    written: Mutex<Vec<u8>>,
    room: Mutex<Option<usize>>,
    shut: Mutex<Vec<Shutdown>>,
    /// While set, `write` takes every byte but keeps it, as TLS keeps records the socket
    /// did not take; `flush_pending` hands them over once it is cleared.
    hold: Mutex<bool>,
    pending: Mutex<Vec<u8>>,
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
            Some(R::Reset) => Err(io::ErrorKind::ConnectionReset.into()),
            Some(R::Data(d)) if d.is_empty() => {
                drop(reads);
                self.read(buf)
            }
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
        if *self.hold.lock().unwrap() {
            self.pending.lock().unwrap().extend_from_slice(buf);
            return Ok(buf.len());
        }
        let mut room = self.room.lock().unwrap();
        let n = room.map_or(buf.len(), |r| r.min(buf.len()));
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if let Some(r) = room.as_mut() {
            *r -= n;
        }
        self.written.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.shut.lock().unwrap().push(how);
        Ok(())
    }
    fn flush_pending(&self) -> io::Result<(usize, bool)> {
        let mut pending = self.pending.lock().unwrap();
        if *self.hold.lock().unwrap() {
            return Ok((0, pending.is_empty()));
        }
        let n = pending.len();
        self.written.lock().unwrap().append(&mut pending);
        Ok((n, true))
    }
}

/// Answers `METHOD PATH BODYLEN` (and records that a handler ran).
fn app(req: &mut Request) -> Response {
    Response::text(format!(
        "{} {} {}",
        req.method_str(),
        req.path(),
        req.body().len()
    ))
}

/// A connection on a scripted socket with the loop's context and an inline worker.
struct Harness {
    ctx: Ctx,
    jobs: Receiver<Job>,
    completions: Arc<Completions>,
    shared: PoolShared,
    io: Arc<Script>,
    conn: Conn<Script>,
    /// Where the connection's life ended, if it did.
    closed: Option<Close>,
    /// A close that waits for the batch out.
    deferred: Option<Close>,
    _poll: mio::Poll,
}

impl Harness {
    fn new(cfg: Config) -> Self {
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let completions = Arc::new(Completions::default());
        let notifier = Notifier::new(completions.clone(), Arc::new(LoopWake::new(waker)));
        let (job_tx, jobs) = crate::pool::JobQueue::new(16);
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
        let ctx = Ctx::new(0, cfg, budget, job_tx, notifier, Instant::now(), tel.0);
        let io = Arc::new(Script::default());
        let conn = Conn::new(io.clone(), 0, 0, 1, ([127, 0, 0, 1], 9).into());
        Harness {
            ctx,
            jobs,
            completions,
            shared,
            io,
            conn,
            closed: None,
            deferred: None,
            _poll: poll,
        }
    }

    fn default() -> Self {
        Self::new(Config::default())
    }

    /// More arrives: what was "nothing more for now" is over.
    fn script(&self, steps: impl IntoIterator<Item = R>) {
        let mut reads = self.io.reads.lock().unwrap();
        reads.retain(|r| !matches!(r, R::Block));
        reads.extend(steps);
    }

    /// What the loop does with a step's outcome.
    fn outcome(&mut self, step: Step) {
        if let Err(reason) = step {
            if self.conn.defer_close(reason) {
                self.deferred = Some(reason);
            } else if self.closed.is_none() {
                self.closed = Some(reason);
            }
        }
    }

    fn readable(&mut self) {
        if self.closed.is_none() {
            // epoll reports the FIN or the error with the readiness (EPOLLRDHUP/ERR).
            let hup =
                (self.io.reads.lock().unwrap().iter()).any(|r| matches!(r, R::Eof | R::Reset));
            let step = self.conn.on_readable(&mut self.ctx, hup);
            self.outcome(step);
        }
    }

    fn writable(&mut self) {
        if self.closed.is_none() {
            let step = self.conn.on_writable(&mut self.ctx);
            self.outcome(step);
        }
    }

    /// Runs every queued job as a worker would and hands the completions back.
    fn work(&mut self) -> usize {
        let mut ran = 0;
        while let Some(job) = self.jobs.try_recv() {
            ran += 1;
            let app: &dyn Handler = &app;
            let stats = self.shared.tel.worker(0);
            run(job, &mut DateCache::new(), &self.shared, app, stats);
        }
        for c in self.completions.take_all() {
            let step = match c {
                Completion::Done(mut d) => {
                    self.ctx.outstanding -= 1;
                    self.conn.on_done(&mut self.ctx, &mut d)
                }
                Completion::Pulled(p) => {
                    self.ctx.outstanding -= 1;
                    self.conn.on_pulled(&mut self.ctx, p)
                }
                Completion::StreamReady { .. } => {
                    self.ctx.outstanding -= 1;
                    self.conn.pump_stream(&mut self.ctx)
                }
                Completion::Piece(p) => {
                    self.ctx.outstanding -= 1;
                    self.conn.on_piece(&mut self.ctx, p)
                }
                #[cfg(feature = "ws")]
                Completion::WsDone(d) => self.conn.on_ws_done(&mut self.ctx, d),
                #[cfg(feature = "ws")]
                Completion::WsOutput { .. } => self.conn.ws_pump(&mut self.ctx),
                #[cfg(feature = "proxy")]
                Completion::Forwarded(a) => self.conn.on_forwarded(&mut self.ctx, a),
                Completion::Accepted(..) => unreachable!("one loop: nothing is handed to it"),
            };
            if let Some(reason) = self.deferred.take() {
                self.closed = Some(step.err().unwrap_or(reason));
            } else {
                self.outcome(step);
            }
        }
        ran
    }

    fn written(&self) -> String {
        String::from_utf8_lossy(&self.io.written.lock().unwrap()).into_owned()
    }

    /// The bodies of the answers written so far, in order.
    fn answers(&self) -> Vec<String> {
        self.written()
            .split("HTTP/1.1 ")
            .skip(1)
            .map(|a| a.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
            .collect()
    }
}

const PAIR: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
    POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
const CHUNKED: &[u8] = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
    3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn every_split_point_of_pipelined_requests_gives_every_answer_in_order() {
    let cases: [(&[u8], [&str; 2]); 2] = [
        (PAIR, ["GET /a 0", "POST /b 5"]),
        (CHUNKED, ["POST /c 5", "GET /d 0"]),
    ];
    for (input, want) in cases {
        for split in 0..=input.len() {
            let mut h = Harness::default();
            h.script([data(&input[..split]), R::Block]);
            h.readable();
            h.work();
            h.script([data(&input[split..]), R::Block]);
            h.readable();
            while h.work() > 0 {}
            assert_eq!(h.answers(), want, "split at {split}");
            assert_eq!(h.closed, None, "split at {split}");
            assert!(matches!(h.conn.phase, Phase::Idle), "split at {split}");
            assert!(h.conn.rbuf.is_none(), "an idle connection holds no buffer");
        }
    }
}

#[test]
fn a_request_dribbled_one_byte_per_read_is_answered_once() {
    for input in [PAIR, CHUNKED] {
        let mut h = Harness::default();
        for b in input {
            h.script([R::Data(vec![*b]), R::Block]);
            h.readable();
            h.work();
        }
        while h.work() > 0 {}
        assert_eq!(h.answers().len(), 2, "{}", h.written());
        assert_eq!(h.closed, None);
    }
}

#[test]
fn eof_at_every_point_closes_or_answers_the_half_closed_client() {
    let req = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    for k in 0..=req.len() {
        let mut h = Harness::default();
        h.script([data(&req[..k]), R::Eof]);
        h.readable();
        while h.work() > 0 {}
        match k {
            0 => assert_eq!(h.closed, Some(Close::PeerClosed)),
            k if k < req.len() => {
                assert_eq!(h.closed, Some(Close::PeerClosedMidRequest), "at {k}");
                assert_eq!(h.written(), "", "nothing is answered to half a request");
            }
            _ => {
                // Complete, then FIN: answered (RFC 9112 §9.6 allows it), then closed.
                assert_eq!(h.answers(), ["POST /b 5"]);
                assert_eq!(h.closed, Some(Close::PeerClosed));
            }
        }
    }
}

#[test]
fn a_reset_at_every_point_closes_without_answering() {
    for k in 0..PAIR.len() {
        let mut h = Harness::default();
        h.script([data(&PAIR[..k]), R::Reset]);
        h.readable();
        while h.work() > 0 {}
        assert_eq!(
            h.closed,
            Some(Close::IoError(io::ErrorKind::ConnectionReset)),
            "at {k}"
        );
        assert_eq!(h.written(), "", "at {k}");
    }
}

#[test]
fn a_reset_while_the_batch_is_out_waits_for_it_and_the_queued_batch_is_skipped() {
    let mut h = Harness::default();
    h.script([data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), R::Block]);
    h.readable();
    assert!(matches!(h.conn.phase, Phase::Dispatched(_)));
    assert!(
        h.conn.right.is_none(),
        "the batch carries the right to write"
    );
    h.script([R::Reset]);
    h.readable();
    assert_eq!(h.closed, None, "the close waits for the batch");
    assert_eq!(
        h.deferred,
        Some(Close::IoError(io::ErrorKind::ConnectionReset))
    );
    h.work();
    assert_eq!(
        h.written(),
        "",
        "the queued batch of a gone client is not run"
    );
    assert_eq!(
        h.closed,
        Some(Close::IoError(io::ErrorKind::ConnectionReset))
    );
    assert!(h.conn.right.is_some(), "the right came back with the batch");
}

#[test]
fn a_full_socket_arms_the_write_deadline_and_writable_finishes_the_answer() {
    let mut h = Harness::default();
    *h.io.room.lock().unwrap() = Some(10);
    h.script([data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), R::Block]);
    h.readable();
    h.work();
    assert_eq!(h.written().len(), 10);
    assert!(matches!(h.conn.phase, Phase::Write(_)));
    assert!(h.conn.deadlines.write.is_some(), "the write deadline runs");
    assert!(h.conn.deadlines.read.is_none());
    *h.io.room.lock().unwrap() = None;
    h.writable();
    assert_eq!(h.answers(), ["GET /a 0"]);
    assert!(h.conn.deadlines.write.is_none());
    assert!(matches!(h.conn.phase, Phase::Idle));
    assert!(matches!(h.conn.deadlines.read, Some((_, Deadline::Idle))));
}

#[test]
fn bad_input_is_answered_with_its_status_and_closed() {
    let rows: &[(&[u8], u16)] = &[
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
            413,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    ];
    for (input, status) in rows {
        for dribble in [false, true] {
            let mut h = Harness::default();
            if dribble {
                for b in *input {
                    h.script([R::Data(vec![*b]), R::Block]);
                    h.readable();
                }
            } else {
                h.script([data(input), R::Block]);
                h.readable();
            }
            assert_eq!(h.work(), 0, "no handler runs for bad input");
            let w = h.written();
            let text = String::from_utf8_lossy(input);
            assert!(
                w.starts_with(&format!("HTTP/1.1 {status} ")),
                "{text:?}: {w}"
            );
            assert!(w.contains("\r\nConnection: close\r\n"), "{text:?}: {w}");
            // Input was left unread: the close lingers (our side shut, input discarded).
            assert!(matches!(h.conn.phase, Phase::Closing), "{text:?}");
            assert_eq!(*h.io.shut.lock().unwrap(), [Shutdown::Write], "{text:?}");
        }
    }
}

#[test]
fn expect_continue_is_answered_before_the_body_and_the_head_is_kept() {
    let mut h = Harness::default();
    h.script([
        data(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"),
        R::Block,
    ]);
    h.readable();
    assert_eq!(h.written(), "HTTP/1.1 100 Continue\r\n\r\n");
    assert!(matches!(h.conn.phase, Phase::ReadBody(_)));
    assert!(matches!(h.conn.deadlines.read, Some((_, Deadline::Body))));
    for b in b"abc" {
        h.script([R::Data(vec![*b]), R::Block]);
        h.readable();
    }
    h.work();
    assert_eq!(h.answers(), ["", "POST /u 3"]);
}

#[test]
fn a_memory_budget_too_small_for_a_body_answers_413_before_100_continue() {
    let mut h = Harness::new(Config {
        max_buffered_bytes: 32 * 1024,
        ..Config::default()
    });
    h.script([
        data(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n"),
        R::Block,
    ]);
    h.readable();
    // The body is more than the whole budget: no retry can fit it (413, and no
    // `Retry-After`). A body that fits but finds the budget held is answered 503
    // (tests/memory_budget.rs).
    let w = h.written();
    assert!(w.starts_with("HTTP/1.1 413 "), "{w}");
    assert!(!w.contains("Retry-After"), "{w}");
    assert!(!w.contains("100 Continue"), "{w}");
    assert_eq!(h.work(), 0);
}

#[test]
fn a_pulled_stream_is_pulled_only_while_the_socket_takes_it() {
    let mut h = Harness::new(Config {
        stream_buffer_bytes: 64 * 1024,
        ..Config::default()
    });
    let app = |_: &mut Request| Response::stream(std::iter::repeat_with(|| vec![b'x'; 16 * 1024]));
    *h.io.room.lock().unwrap() = Some(0); // a client that reads nothing
    h.script([data(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n"), R::Block]);
    h.readable();
    let Some(Job::Batch(b)) = h.jobs.try_recv() else {
        panic!("a batch")
    };
    let stats = h.shared.tel.worker(0);
    run(Job::Batch(b), &mut DateCache::new(), &h.shared, &app, stats);
    h.work();
    // The worker produced up to the stream buffer with the head, the loop could write
    // nothing: no pull is asked for, so no worker is busy for this client.
    assert!(matches!(h.conn.phase, Phase::Stream(_)));
    assert_eq!(h.work(), 0, "no pull while the buffer is full");
    assert!(h.conn.deadlines.write.is_some(), "the write deadline runs");
    let buffered = h.conn.wbuf.len() - h.conn.wpos;
    assert!(buffered <= 64 * 1024 + 16 * 1024 + 512, "{buffered}");
    // The client reads: the loop pulls again.
    *h.io.room.lock().unwrap() = None;
    h.writable();
    assert_eq!(h.work(), 1, "a pull once the socket took the buffer");
}

#[test]
fn an_idle_connection_stays_small() {
    // 10 000 idle keep-alive connections are 10 000 of these (plus an Arc'd socket and at
    // most one wheel entry): the budget behind "KB per idle connection ≤ 0.5".
    assert!(
        std::mem::size_of::<Conn>() <= 256,
        "Conn grew to {} bytes",
        std::mem::size_of::<Conn>()
    );
}

#[test]
fn idle_slowloris_connections_do_not_spend_the_memory_budget() {
    // Budget 64 KiB; 20 clients each send one byte of a head and stall. Their first
    // buffers are bounded by max_connections, not charged: were they, they could spend the
    // budget and have every upload refused.
    let mut h = Harness::new(Config {
        max_buffered_bytes: 64 * 1024,
        ..Config::default()
    });
    let mut conns = Vec::new();
    for i in 0..20 {
        let io = Arc::new(Script::default());
        io.reads.lock().unwrap().extend([data(b"G"), R::Block]);
        let mut c = Conn::new(io, i + 1, 0, i as u64 + 2, ([127, 0, 0, 1], 9).into());
        assert!(c.on_readable(&mut h.ctx, false).is_ok());
        conns.push(c);
    }
    assert_eq!(h.ctx.budget.held(), 0);
    // And what they do hold beyond it comes back when they go.
    for c in conns {
        let _ = c.release(&mut h.ctx);
    }
    assert_eq!(h.ctx.budget.held(), 0);
}

#[test]
fn a_pause_for_the_budget_does_not_refuse_a_later_request() {
    let budget = 256 * 1024;
    let mut h = Harness::new(Config {
        max_buffered_bytes: budget,
        ..Config::default()
    });
    // Other connections hold nearly the whole budget.
    let others = budget - 24 * 1024;
    h.ctx.budget.take(others);
    // 1400 pipelined GETs (~39 KiB): reading pauses for the budget.
    let one = b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n";
    let many: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1400).collect();
    h.script([data(&many), R::Block]);
    h.readable();
    // The others leave: the budget is free again.
    h.ctx.give_back(others);
    while h.work() > 0 {}
    assert_eq!(h.answers().len(), 1400);
    assert!(matches!(h.conn.phase, Phase::Idle));
    // Much later, a request arrives in two reads: it is answered, not refused.
    h.script([data(b"GET /later HTTP/1.1\r\n"), R::Block]);
    h.readable();
    h.script([data(b"Host: x\r\n\r\n"), R::Block]);
    h.readable();
    while h.work() > 0 {}
    assert_eq!(h.answers().last().map(String::as_str), Some("GET /later 0"));
    // Every connection is answered and idle: nothing is still charged.
    let _ = std::mem::replace(
        &mut h.conn,
        Conn::new(h.io.clone(), 0, 1, 9, ([127, 0, 0, 1], 9).into()),
    )
    .release(&mut h.ctx);
    assert_eq!(h.ctx.budget.held(), 0);
}

#[test]
fn a_lingering_close_discards_a_flood_a_share_per_turn() {
    let mut h = Harness::default();
    // A bad request leaves the connection lingering (input unread)...
    h.script([data(b"GET / HTTP/1.1\r\n\r\n"), R::Block]);
    h.readable();
    assert!(matches!(h.conn.phase, Phase::Closing));
    // ...and the client floods: 1 MiB in 4 KiB reads.
    h.script(
        (0..256)
            .map(|_| R::Data(vec![b'f'; 4096]))
            .chain([R::Block]),
    );
    h.readable();
    assert_eq!(h.closed, None);
    assert_eq!(
        h.ctx.deferred_reads,
        [(0, 0)],
        "the rest waits for the next turn"
    );
    let left = h.io.reads.lock().unwrap().len();
    assert!(left > 1, "the whole flood was read in one turn");
    // Turn after turn, the rest is discarded; the client's close ends it.
    h.script([R::Eof]);
    for _ in 0..16 {
        h.ctx.deferred_reads.clear();
        let step = h.conn.resume_reading(&mut h.ctx);
        h.outcome(step);
    }
    assert_eq!(h.closed, Some(Close::Done));
}

#[test]
fn a_bare_cr_before_a_pipelined_request_is_refused_however_the_bytes_arrive() {
    // Found by the conn_split fuzz target: after an answer, the bytes left in the buffer
    // lost any leading CR and LF, so a bare CR before the next request line was skipped
    // when it came in the same read as the request before it, and refused (400) by
    // parse_head when it came later. RFC 9112 §2.2: a bare CR is invalid, not an empty
    // line; only CRLF and LF are skipped.
    let input: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\n\rPOST /p HTTP/1.1\r\nHost: x\r\n\r\n";
    for dribble in [false, true] {
        let mut h = Harness::default();
        if dribble {
            for b in input {
                h.script([R::Data(vec![*b]), R::Block]);
                h.readable();
                while h.work() > 0 {}
            }
        } else {
            h.script([data(input), R::Block]);
            h.readable();
            while h.work() > 0 {}
        }
        let w = h.written();
        assert_eq!(h.answers()[0], "GET /a 0", "dribbled: {dribble}");
        assert!(
            w.contains("HTTP/1.1 400 ") && !w.contains("POST /p"),
            "dribbled: {dribble}: {w}"
        );
    }
}

#[test]
fn a_crlf_after_a_request_is_skipped_even_split_across_reads() {
    // Whole empty lines still go, wherever the reads cut them (the CR alone stays until
    // its LF comes).
    for (first, second) in [
        (
            &b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\r"[..],
            &b"\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        ),
        (
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\r\n\n",
            b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
    ] {
        let mut h = Harness::default();
        h.script([data(first), R::Block]);
        h.readable();
        while h.work() > 0 {}
        h.script([data(second), R::Block]);
        h.readable();
        while h.work() > 0 {}
        assert_eq!(h.answers(), ["GET /a 0", "GET /b 0"]);
        assert_eq!(h.closed, None);
    }
}

#[test]
fn output_the_transport_still_holds_keeps_the_answer_unwritten_until_it_is_out() {
    // A TLS transport's `write` takes plaintext and may keep records the full socket did
    // not take: until `flush_pending` says they are out, the answer is not written — no
    // keep-alive turn, no close — and the write deadline runs for them.
    for close in [false, true] {
        let mut h = Harness::default();
        *h.io.hold.lock().unwrap() = true;
        let req = if close {
            &b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..]
        } else {
            &b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"[..]
        };
        h.script([data(req), R::Block]);
        h.readable();
        h.work();
        assert_eq!(h.closed, None, "close={close}: closed with output held");
        assert!(matches!(h.conn.phase, Phase::Write(_)), "close={close}");
        assert!(h.conn.deadlines.write.is_some(), "close={close}");
        assert_eq!(h.written(), "", "close={close}");
        // The socket has room again.
        *h.io.hold.lock().unwrap() = false;
        h.writable();
        assert_eq!(h.answers(), ["GET /a 0"], "close={close}");
        assert!(h.conn.deadlines.write.is_none(), "close={close}");
        if close {
            assert_eq!(h.closed, Some(Close::Done));
        } else {
            assert_eq!(h.closed, None);
            assert!(matches!(h.conn.phase, Phase::Idle));
        }
    }
}

#[test]
fn held_output_that_never_leaves_is_closed_at_the_write_deadline() {
    let mut h = Harness::default();
    *h.io.hold.lock().unwrap() = true;
    h.script([data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), R::Block]);
    h.readable();
    h.work();
    assert_eq!(h.closed, None);
    h.conn.deadlines.write = None; // taken by the wheel as it fires (`take_due`)
    let step = h.conn.on_deadline(&mut h.ctx, Deadline::Write);
    assert_eq!(step, Err(Close::WriteTimeout));
}

#[test]
fn empty_lines_dribbled_before_a_request_are_not_parsed_again_on_each_read() {
    // RFC 9112 §2.2 lets empty lines come before the request line. A client that sends
    // nothing else, a CRLF per read, was parsed on every read (the line after them was
    // "0 bytes long", under the method's length): each parse read all the empty lines
    // again, so N of them cost N²/2 — 10× the loop's CPU for 50 such clients. They are
    // now looked at once each, and the head is parsed when there is something to judge.
    let limits = crate::http::parse::Limits::default();
    let mut h = HeadRead::default();
    let mut buf = Vec::new();
    for _ in 0..1000 {
        for piece in [&b"\r"[..], b"\n", b"\n", b"\r\n"] {
            buf.extend_from_slice(piece);
            assert!(
                !h.worth_parsing(&buf, &limits),
                "parsed after {} bytes of empty lines",
                buf.len()
            );
        }
    }
    // The request line's first bytes are judged at once again (an overlong method is 501
    // at its 33rd byte), and so is a bare CR (400).
    buf.push(b'G');
    assert!(h.worth_parsing(&buf, &limits));
    let mut h = HeadRead::default();
    assert!(!h.worth_parsing(b"\r\n\r", &limits));
    assert!(h.worth_parsing(b"\r\n\rX", &limits));
    // Past max_head_bytes, the limit's verdict comes whatever the bytes are.
    let mut h = HeadRead::default();
    let flood = b"\r\n".repeat(limits.max_head_bytes / 2 + 1);
    assert!(h.worth_parsing(&flood, &limits));
}

#[test]
fn a_read_ending_in_an_empty_line_is_parsed_where_the_scan_would_find_an_end() {
    // `worth_parsing` says yes, without scanning, to a buffer that starts with the
    // request line and ends with LF LF or LF CR LF. Every such buffer over the bytes that
    // matter (a, CR, LF; up to 9 of them) is one where the scan finds an end, so the
    // shortcut never parses a head the scan would still wait on.
    let limits = crate::http::parse::Limits::default();
    let alphabet = [b'a', b'\r', b'\n'];
    let mut shortcuts = 0;
    for len in 1..=9u32 {
        for mut code in 0..3usize.pow(len) {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    let c = alphabet[code % 3];
                    code /= 3;
                    c
                })
                .collect();
            let shortcut = buf[0] == b'a' && (buf.ends_with(b"\n\n") || buf.ends_with(b"\n\r\n"));
            if shortcut {
                shortcuts += 1;
                assert!(HeadRead::default().worth_parsing(&buf, &limits));
                assert!(HeadScan::new().scan(&buf).is_some(), "{buf:?}");
            }
        }
    }
    assert!(shortcuts > 1000, "{shortcuts}");
}

#[test]
fn field_lines_are_judged_once_each_as_their_lf_arrives() {
    let limits = crate::http::parse::Limits {
        max_headers: 4,
        ..Default::default()
    };
    // The request line alone: parsed once, for its early verdict.
    let mut h = HeadRead::default();
    let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
    assert!(h.worth_parsing(&buf, &limits));
    // Good field lines, a byte at a time, then a line at a time: nothing to parse for.
    for line in ["Host: a\r\n", "X-A:\tb \r\n", "X-B: c\n", "X-C:\r\n"] {
        for &c in line.as_bytes() {
            buf.push(c);
            assert!(!h.worth_parsing(&buf, &limits), "{line:?} at {c:?}");
        }
    }
    assert_eq!(h.fields, 4);
    // The fifth ends: one too many, parse now (httparse says TooManyHeaders, 431).
    buf.extend_from_slice(b"X-D: d");
    assert!(!h.worth_parsing(&buf, &limits));
    buf.extend_from_slice(b"\r\n");
    assert!(h.worth_parsing(&buf, &limits));
    // A bad line is caught at its first bad byte, whether it came alone or with the rest
    // of the line, and whether its LF came with it or not; the lines before it are not
    // looked at again.
    for (bad, at) in [
        (&b"Bad Name: v\r\n"[..], 4),
        (b"X : v\r\n", 2),
        (b" folded\r\n", 0),
        (b"X-A: \x01\r\n", 5),
        (b"X-A: a\rb\r\n", 7),
    ] {
        // A byte at a time: a parse is asked for at the bad byte, not before.
        let mut h = HeadRead::default();
        let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        assert!(h.worth_parsing(&buf, &limits));
        for (i, &c) in bad.iter().enumerate().take(at + 1) {
            buf.push(c);
            assert_eq!(h.worth_parsing(&buf, &limits), i == at, "{bad:?} at {i}");
        }
        // In one read, with or without its LF.
        for end in [bad.len() - 1, bad.len()] {
            let mut h = HeadRead::default();
            let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
            assert!(h.worth_parsing(&buf, &limits));
            buf.extend_from_slice(&bad[..end]);
            assert!(h.worth_parsing(&buf, &limits), "{bad:?} up to {end}");
        }
    }
    // A line whose LF has not come is looked at byte by byte: valid bytes (a tab,
    // obs-text, a name followed by whitespace) never ask for a parse, however they are
    // dribbled; the first byte httparse refuses does, once.
    let mut h = HeadRead::default();
    let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
    assert!(h.worth_parsing(&buf, &limits));
    for &c in b"X-A:\tb \xe9\xff c\t"
        .iter()
        .chain(b"a".repeat(500).iter())
    {
        buf.push(c);
        assert!(!h.worth_parsing(&buf, &limits), "at {c:?}");
    }
    buf.push(0x01);
    assert!(h.worth_parsing(&buf, &limits), "a control byte");
    buf.extend_from_slice(b"\x01\x01");
    assert!(
        !h.worth_parsing(&buf, &limits),
        "judged once, then left to its LF"
    );
    let mut h = HeadRead::default();
    let mut buf = b"GET / HTTP/1.1\r\nX-A".to_vec();
    assert!(h.worth_parsing(&buf, &limits));
    for _ in 0..100 {
        buf.push(b' ');
        assert!(
            !h.worth_parsing(&buf, &limits),
            "a name, then whitespace: waits"
        );
    }
    buf.push(b':');
    assert!(
        h.worth_parsing(&buf, &limits),
        "whitespace before the colon"
    );
    // The same in the request line past its first 34 bytes.
    let mut h = HeadRead::default();
    let mut buf = b"GET /".to_vec();
    assert!(h.worth_parsing(&buf, &limits));
    buf.extend_from_slice(&[b'a'; 40]);
    assert!(
        h.worth_parsing(&buf, &limits),
        "the method's 33rd byte came"
    );
    buf.push(b'a');
    assert!(!h.worth_parsing(&buf, &limits));
    buf.push(b'\t');
    assert!(h.worth_parsing(&buf, &limits), "a tab in the target");
    // The lines that came in the request line's read count toward the limit.
    let mut h = HeadRead::default();
    let buf = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n".to_vec();
    assert!(h.worth_parsing(&buf, &limits));
    let mut more = buf.clone();
    more.extend_from_slice(b"E: 5\r\n");
    assert!(h.worth_parsing(&more, &limits));
}

#[test]
fn the_version_of_a_long_request_line_is_parsed_as_each_read_brings_some() {
    let limits = crate::http::parse::Limits::default();
    let mut h = HeadRead::default();
    let mut buf = b"GET /".to_vec();
    buf.extend_from_slice(&[b'a'; 60]);
    assert!(
        h.worth_parsing(&buf, &limits),
        "the method's 33rd byte came"
    );
    buf.push(b' ');
    assert!(
        !h.worth_parsing(&buf, &limits),
        "the space before the version"
    );
    // Each read that brings version bytes is parsed (httparse refuses a wrong one where
    // it stands), up to the byte after the version's eight, which settles it.
    for (i, &c) in b"HTTP/1.1x".iter().enumerate() {
        buf.push(c);
        assert!(h.worth_parsing(&buf, &limits), "version byte {i}");
    }
    buf.push(b'y');
    assert!(
        !h.worth_parsing(&buf, &limits),
        "settled: not parsed again before its LF"
    );
    // A CR after the version ends it: parsed (`HTTP/2.0` is 505 from here), then the
    // line waits for its LF.
    let mut h = HeadRead::default();
    let mut buf = b"GET /".to_vec();
    buf.extend_from_slice(&[b'a'; 60]);
    buf.extend_from_slice(b" HTTP/2.0");
    assert!(h.worth_parsing(&buf, &limits));
    buf.push(b'\r');
    assert!(h.worth_parsing(&buf, &limits), "a CR after the version");
    buf.push(b'x');
    assert!(h.worth_parsing(&buf, &limits), "a CR not followed by LF");
    buf.push(b'y');
    assert!(!h.worth_parsing(&buf, &limits), "judged: waits for the LF");
    // Spaces in the target zone: only the second one starts the version.
    let mut h = HeadRead::default();
    let mut buf = b"GET /".to_vec();
    buf.extend_from_slice(&[b'a'; 60]);
    assert!(h.worth_parsing(&buf, &limits));
    buf.extend_from_slice(b"bb");
    assert!(!h.worth_parsing(&buf, &limits), "more of the target");
}

#[test]
fn an_overlong_method_is_judged_whatever_the_reads_bring_with_its_33rd_byte() {
    // The early parse ran on a read only while the line had at most 34 bytes: a method
    // of 40 bytes in one read (or 20 + 20) was never judged before the header deadline.
    let limits = crate::http::parse::Limits::default();
    for cuts in [&[40][..], &[20, 40], &[2, 33, 40], &[34, 35, 40]] {
        let mut h = HeadRead::default();
        let line = [b'M'; 40];
        let mut parsed_past_33 = false;
        for &end in cuts {
            if h.worth_parsing(&line[..end], &limits) && end > 33 {
                parsed_past_33 = true;
            }
        }
        assert!(parsed_past_33, "reads ending at {cuts:?}");
    }
    // And once judged, not again on each later read.
    let mut h = HeadRead::default();
    assert!(h.worth_parsing(&[b'M'; 40], &limits));
    assert!(!h.worth_parsing(&[b'M'; 41], &limits));
}

#[test]
fn waiters_try_again_when_memory_came_back_though_their_loop_was_marked_waiting_again() {
    // Loop 0 (this harness) has a body waiting for memory, and is marked as waiting.
    let mut h = Harness::new(Config {
        max_buffered_bytes: 64 * 1024,
        ..Config::default()
    });
    h.ctx.budget_waiters.push((0, 0));
    assert!(!h.ctx.budget.try_take_or_wait(128 * 1024, 0));
    assert_eq!(h.ctx.budget_turn(), (0, false), "nothing came back yet");
    // Another loop gives memory back, takes the marks and wakes this loop ...
    h.ctx.budget.take(32 * 1024);
    assert!(
        h.ctx.budget.give(32 * 1024),
        "a loop waits: the giver wakes it"
    );
    assert_eq!(h.ctx.budget.take_waiting(), 1);
    // ... and before this loop looks, another of its connections finds no room either
    // and marks it again. The waiting body must still try again: nobody else will give
    // memory back to wake this loop a second time.
    assert!(!h.ctx.budget.try_take_or_wait(128 * 1024, 0));
    let (_, resume) = h.ctx.budget_turn();
    assert!(
        resume,
        "the memory that came back was never offered to the waiting body"
    );
    // Once offered, not again until more comes back.
    assert_eq!(h.ctx.budget_turn(), (0, false));
}

/// (b0543e2, from its attack review) When the loop takes a batch's `Done` — possibly while the worker
/// that pushed it has not yet returned from `run` — the batch's read buffer and its
/// cancel flag are held by nobody else (the worker let go of both before the push), on
/// the plain path, on a pipelined batch the worker hands back part of, and on the path
/// for a connection the loop already closed. The signal may still be shared (tolerated
/// by `Buffers::put_signal`); counted, not asserted. A race: with the flag let go of
/// after the push instead (dropped with the job when `run` returns), it fails within a
/// few hundred runs, not on every one.
#[test]
fn a_done_arrives_with_its_batch_and_cancel_flag_unshared() {
    let mut signal_shared = 0;
    for (round, (input, conn_closed)) in [
        (&b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"[..], false),
        (&b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n"[..], false),
        (&b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"[..], true),
    ]
    .into_iter()
    .enumerate()
    {
        for i in 0..200 {
            let mut h = Harness::default();
            h.script([data(input), R::Block]);
            h.readable();
            let Some(job) = h.jobs.try_recv() else {
                panic!("a batch")
            };
            if conn_closed {
                let Phase::Dispatched(f) = &h.conn.phase else {
                    panic!("dispatched")
                };
                f.signal.mark_conn_closed();
            }
            let Harness {
                conn,
                shared,
                completions,
                ..
            } = &mut h;
            let mut done = std::thread::scope(|s| {
                s.spawn(|| {
                    // `/s` streams: the worker stops there and hands `/c` back.
                    let app = |req: &mut Request| {
                        if req.path() == "/s" {
                            Response::stream(std::iter::once(b"x".to_vec()))
                        } else {
                            Response::text("ok")
                        }
                    };
                    let stats = shared.tel.worker(0);
                    run(job, &mut DateCache::new(), shared, &app, stats);
                });
                loop {
                    let mut got = None;
                    for c in completions.take_all() {
                        if let Completion::Done(d) = c {
                            got = Some(d);
                        }
                    }
                    let Some(mut d) = got else {
                        std::hint::spin_loop();
                        continue;
                    };
                    // Checked at once, while the worker may still be inside `run`.
                    let Phase::Dispatched(f) = &mut conn.phase else {
                        panic!("dispatched")
                    };
                    assert!(
                        f.cancel.try_reset(),
                        "round {round} iter {i}: the cancel flag is still shared"
                    );
                    let b = d.batch.as_mut().expect("the batch comes back");
                    assert!(
                        Arc::get_mut(b).is_some(),
                        "round {round} iter {i}: the batch buffer is still shared"
                    );
                    if !f.signal.try_reset() {
                        signal_shared += 1;
                    }
                    break d;
                }
            });
            h.ctx.outstanding -= 1;
            let step = h.conn.on_done(&mut h.ctx, &mut done);
            if !conn_closed {
                assert!(step.is_ok(), "round {round}: {step:?}");
            }
        }
    }
    eprintln!("signal still held by the worker at Done: {signal_shared} of 600");
}

/// (532c183, from its attack review) `Ctx::due_after` files a deadline at `tick_of(now + after)`, both
/// before the first `set_now` (the wheel starts at the `now` the context was made with)
/// and after turns of odd lengths; a duration past what an `Instant` holds saturates
/// instead of panicking.
#[test]
fn due_after_matches_tick_of_the_instant() {
    let mut h = Harness::default();
    let afters = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(10) - Duration::from_nanos(1),
        Duration::from_millis(10),
        Duration::from_millis(10) + Duration::from_nanos(1),
        Duration::from_secs(5),
        Duration::from_secs(8760 * 3600),
    ];
    for step in [
        0u64,
        1,
        9_999_999,
        10_000_000,
        3,
        123_456_789,
        7_777_777_777,
    ] {
        if step > 0 {
            let now = h.ctx.now + Duration::from_nanos(step);
            h.ctx.set_now(now);
        }
        for a in afters {
            assert_eq!(
                h.ctx.due_after(a),
                h.ctx.wheel.tick_of(h.ctx.now + a),
                "step {step} after {a:?}"
            );
        }
        let tick_ns = h.ctx.cfg.timer_tick.as_nanos() as u64;
        assert_eq!(h.ctx.due_after(Duration::MAX), u64::MAX.div_ceil(tick_ns));
    }
}
