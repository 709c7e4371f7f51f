//! One connection's life on the event loop: read, parse a batch of pipelined requests,
//! dispatch it, write the answers in order, then keep alive or close.
//!
//! Every method here runs on the loop thread and must never block or run user code:
//! sockets are non-blocking, handlers run on workers (`pool.rs`), and each method returns
//! either `Ok(())` (the connection lives on) or `Err(Close)` for the loop to tear it down.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use log::{debug, trace};
use mio::net::TcpStream;

use crate::error::Error;
use crate::event_loop::Ctx;
use crate::http::decode::ChunkedDecoder;
use crate::http::encode::{self, BodyFraming, ConnectionField};
use crate::http::parse::{self, Framing};
use crate::http::{Span, Version};
use crate::pool::{BatchJob, Job, ReqMeta, StreamFraming};
use crate::request::{Batch, BodyRef, CancelFlag};
use crate::stream::StreamSrc;
use crate::timer::Tick;
use crate::upgrade::OnUpgrade;

mod write;
pub(crate) use write::write_direct;

/// Where a connection is in its request cycle (see docs/LIFECYCLE.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for a complete request head; the header deadline runs.
    ReadHead,
    /// A head is parsed, its body is still arriving; the body deadline runs.
    ReadBody,
    /// A batch is at a worker; no deadline (handler time is not the client's fault).
    Dispatched,
    /// Answers are being written; the write deadline runs while the socket is full.
    Write,
    /// A streamed body is being relayed from its producer.
    Stream,
    /// Keep-alive between requests: no buffers held, the idle deadline runs.
    Idle,
    /// Answered and closing: our side is shut, input is discarded until the peer closes
    /// (so an unread request body cannot turn our close into a reset that destroys the
    /// answer in flight, RFC 9112 §9.6).
    Closing,
}

/// Which deadline is armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    Header,
    Body,
    Write,
    Idle,
    Linger,
}

/// Why a connection ends (logged at debug).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Close {
    /// The client closed its side with nothing pending.
    PeerClosed,
    /// The client closed in the middle of a request.
    PeerClosedMidRequest,
    /// A read or write failed (reset, broken pipe).
    IoError(io::ErrorKind),
    /// We answered and the connection was not to be kept (close requested, HTTP/1.0,
    /// an error status, draining, max requests).
    Done,
    /// Keep-alive connection idle past `idle_timeout`.
    IdleTimeout,
    /// No complete head within `header_read_timeout`.
    HeaderTimeout,
    /// The response could not be written within `write_timeout`.
    WriteTimeout,
    /// The lingering close ran out of time.
    LingerTimeout,
    /// The server is draining and the connection had nothing in flight.
    Draining,
    /// The shutdown deadline passed.
    ShutdownDeadline,
    /// A second signal stopped the server at once.
    ForcedStop,
    /// A streamed body's producer failed: closed without the final chunk.
    StreamAborted,
    /// The answer switched protocols: the connection was handed to its upgrade callback.
    Upgraded,
}

/// Progress of a chunked body at the front of the read buffer, kept across reads so a
/// large body is decoded once, not again on every read.
struct ChunkProgress {
    decoder: ChunkedDecoder,
    body: Vec<u8>,
    /// Absolute offset in the read buffer where decoding resumes.
    resume_at: usize,
}

/// A streamed response body in progress.
pub(crate) struct Streaming {
    /// Where the pieces come from; `None` while a pull job has the producer.
    src: Option<StreamSrc>,
    framing: StreamFraming,
}

/// A connection owned by the loop.
pub(crate) struct Conn {
    /// Shared with a worker while a batch is dispatched: the worker writes the answers
    /// straight to the socket (see docs/ARCHITECTURE.md, "who writes").
    pub sock: Arc<TcpStream>,
    /// Slot index; the mio token is derived from it.
    pub token: usize,
    /// Bumped each time the slot is reused, so a late completion for the previous
    /// occupant is recognised and dropped.
    pub gen_: u32,
    /// Connection id for logs (unique per server run).
    pub id: u64,
    pub peer: SocketAddr,
    pub phase: Phase,
    /// Read buffer; `None` while idle so idle connections hold no memory. It is an
    /// `Arc<Batch>` so dispatching moves it to the worker without copying.
    rbuf: Option<Arc<Batch>>,
    /// Answers waiting to be written, from `wpos`.
    wbuf: Vec<u8>,
    wpos: usize,
    /// The live deadline: the tick it falls due and what it guards.
    pub deadline: Option<(Tick, Deadline)>,
    /// The tick of this connection's newest wheel entry; entries with another tick are stale.
    pub filed: Option<Tick>,
    /// Requests taken from this connection so far (for `max_requests_per_connection`).
    served: usize,
    /// Set while a batch is at a worker, so a disconnect can cancel it.
    cancel: Option<CancelFlag>,
    /// Close once `wbuf` is written.
    close_after: bool,
    /// The client half-closed (read returned 0).
    peer_eof: bool,
    /// Reading stopped at the buffer cap before the socket was drained; resume later.
    read_paused: bool,
    /// A readiness event reported the peer's FIN (read it even after a short read).
    hup_seen: bool,
    /// Input was left unread (an error answered mid-request): linger before closing.
    unread_input: bool,
    /// The streamed body being relayed.
    stream: Option<Streaming>,
    /// Chunked body progress for the request at the front of the buffer.
    chunk: Option<ChunkProgress>,
    /// `100 Continue` already sent for the request at the front of the buffer.
    continue_sent: bool,
    /// The last read stopped because the memory budget did not allow a larger buffer.
    over_budget: bool,
    /// The parsed head of the request at the front of the buffer while its
    /// `Content-Length` body arrives: a byte of body costs a length check, not a re-parse
    /// of the head. Its fields stay in the buffer's field list.
    pending: Option<parse::Head>,
    /// Bytes of request data this connection is charged for in `Ctx::held` (its read
    /// buffer, a chunked body being decoded, the batch at a worker).
    charged: usize,
    /// Size of the read buffer handed to a worker with the batch (still charged).
    batch_bytes: usize,
    /// An answer that switches protocols is being written: then the connection goes to
    /// this callback, with the bytes read past the upgrading request.
    upgrade: Option<(OnUpgrade, Vec<u8>)>,
}

type Step = Result<(), Close>;

impl Conn {
    pub fn new(sock: Arc<TcpStream>, token: usize, gen_: u32, id: u64, peer: SocketAddr) -> Self {
        Conn {
            sock,
            token,
            gen_,
            id,
            peer,
            phase: Phase::ReadHead,
            rbuf: None,
            wbuf: Vec::new(),
            wpos: 0,
            deadline: None,
            filed: None,
            served: 0,
            cancel: None,
            close_after: false,
            peer_eof: false,
            read_paused: false,
            hup_seen: false,
            unread_input: false,
            stream: None,
            chunk: None,
            continue_sent: false,
            over_budget: false,
            pending: None,
            charged: 0,
            batch_bytes: 0,
            upgrade: None,
        }
    }

    /// Brings this connection's share of the loop's memory budget up to date.
    pub(crate) fn recharge(&mut self, ctx: &mut Ctx) {
        let now = self.rbuf.as_ref().map_or(0, |b| b.bytes.len())
            + self.chunk.as_ref().map_or(0, |c| c.body.capacity())
            + self.batch_bytes;
        if now < self.charged {
            ctx.held -= self.charged - now;
            ctx.budget_freed |= !ctx.budget_waiters.is_empty();
        } else {
            ctx.held += now - self.charged;
        }
        self.charged = now;
    }

    /// Reading was paused for the memory budget: try again (budget freed).
    pub fn resume_reading(&mut self, ctx: &mut Ctx) -> Step {
        if !self.read_paused || !matches!(self.phase, Phase::ReadHead | Phase::ReadBody) {
            return Ok(());
        }
        self.read_paused = false;
        self.on_readable(ctx, false)
    }

    /// Arms the single deadline of this connection `after` from now; the wheel is only
    /// touched when the new deadline is earlier than the entry already filed.
    pub fn arm(&mut self, ctx: &mut Ctx, kind: Deadline, after: std::time::Duration) {
        let due = ctx.wheel.tick_of(ctx.now + after);
        self.deadline = Some((due, kind));
        if self.filed.is_none_or(|f| due < f) {
            ctx.wheel.insert(due, (self.token, self.gen_));
            self.filed = Some(due);
        }
    }

    fn disarm(&mut self) {
        self.deadline = None;
    }

    fn buffered(&self) -> usize {
        self.rbuf.as_ref().map_or(0, |b| b.len)
    }

    /// True when the connection holds nothing in flight (drain may close it at once).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::ReadHead) && self.buffered() == 0
    }

    // ------------------------------------------------------------------ reading

    /// The socket is readable (or hung up).
    ///
    /// `hung_up`: the event also reported the peer's FIN (or an error). A short read
    /// then does not mean the socket is drained — the EOF is still to be read, and being
    /// edge-triggered, no further event would announce it.
    pub fn on_readable(&mut self, ctx: &mut Ctx, hung_up: bool) -> Step {
        let step = self.read_step(ctx, hung_up);
        self.recharge(ctx);
        step
    }

    fn read_step(&mut self, ctx: &mut Ctx, hung_up: bool) -> Step {
        if self.phase == Phase::Closing {
            return self.discard_input();
        }
        let n = self.fill(ctx, hung_up)?;
        match self.phase {
            Phase::Idle | Phase::ReadHead | Phase::ReadBody => {
                if n > 0 && self.phase == Phase::Idle {
                    // The header deadline counts from the first byte of a request.
                    self.phase = Phase::ReadHead;
                    self.arm(ctx, Deadline::Header, ctx.cfg.header_read_timeout);
                }
                self.process(ctx)
            }
            Phase::Dispatched => {
                if let Some(c) = &self.cancel {
                    if self.peer_eof {
                        // The client hung up after its requests were handed over: a
                        // handler already running sees the cancellation (Go's
                        // `r.Context().Done()`) and its answer is still written; a batch
                        // still queued is not run at all (as nginx treats a client that
                        // closes while its request waits: 499).
                        debug!(
                            "conn={} client closed while its request is queued or running: cancelling",
                            self.id
                        );
                        c.mark_conn_closed();
                    } else if n > 0 {
                        c.mark_loop_waiting();
                    }
                }
                Ok(())
            }
            Phase::Stream if self.peer_eof => Err(Close::PeerClosed),
            _ => Ok(()),
        }
    }

    /// Reads until the socket would block, a short read, or the buffer cap.
    fn fill(&mut self, ctx: &mut Ctx, hung_up: bool) -> Result<usize, Close> {
        let mut total = 0;
        if self.peer_eof {
            return Ok(0);
        }
        // Remembered: reading may stop at the buffer cap before the FIN is read, and no
        // new edge will announce it when reading resumes.
        self.hup_seen |= hung_up;
        let hung_up = self.hup_seen;
        let rbuf = self.rbuf.get_or_insert_with(|| ctx.bufs.take_read());
        let b = Arc::get_mut(rbuf).expect("the read buffer is owned by its connection");
        loop {
            if b.len == b.bytes.len() {
                if b.bytes.len() >= ctx.read_cap {
                    self.read_paused = true;
                    break;
                }
                let grown = (b.bytes.len() * 2).min(ctx.read_cap);
                let more = grown - b.bytes.len();
                if ctx.held + more > ctx.cfg.max_buffered_bytes {
                    // The memory budget for all connections is spent: stop reading here
                    // (what was read stays); `process` decides whether to wait or refuse.
                    self.read_paused = true;
                    self.over_budget = true;
                    break;
                }
                b.bytes.resize(grown, 0);
                ctx.held += more;
                self.charged += more;
            }
            match (&*self.sock).read(&mut b.bytes[b.len..]) {
                Ok(0) => {
                    self.peer_eof = true;
                    break;
                }
                Ok(n) => {
                    b.len += n;
                    total += n;
                    if b.len < b.bytes.len() && !hung_up {
                        break; // short read: the socket is drained, the next byte brings a new edge
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Close::IoError(e.kind())),
            }
        }
        if total > 0 {
            trace!("conn={} read {total} bytes", self.id);
        } else if b.len == 0 {
            let b = self.rbuf.take().expect("just used");
            ctx.bufs.put_read(b);
        }
        Ok(total)
    }

    fn discard_input(&mut self) -> Step {
        let mut sink = [0u8; 4096];
        loop {
            match (&*self.sock).read(&mut sink) {
                Ok(0) => return Err(Close::Done),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Close::Done),
            }
        }
    }

    // ------------------------------------------------------------------ parsing

    /// Parses every complete request in the buffer and dispatches them as one batch, or
    /// answers a protocol error, or waits for more bytes.
    fn process(&mut self, ctx: &mut Ctx) -> Step {
        let Some(rbuf) = self.rbuf.as_mut() else {
            return if self.peer_eof {
                Err(Close::PeerClosed)
            } else {
                Ok(())
            };
        };
        let b = Arc::get_mut(rbuf).expect("the read buffer is owned by its connection");
        if let Some(h) = &self.pending
            && let Framing::Length(n) = h.framing
            && (b.len as u64) < u64::from(h.len) + n
        {
            // Still inside the body of the head parsed earlier: nothing to parse.
            return self.after_read(ctx);
        }
        let data = &b.bytes[..b.len];
        let mut reqs = ctx.bufs.take_reqs();
        let pending = self.pending.take();
        if pending.is_none() {
            b.fields.clear();
        }
        let mut pos = 0;
        let mut failure = None;
        let mut body_pending = false;
        let mut want_continue = None;
        let mut reserve_to = None;
        let mut pending = pending;
        while pos < data.len() && reqs.len() < ctx.cfg.max_batch {
            let fields_before = b.fields.len();
            let parsed = match pending.take() {
                Some(h) => Ok(Some(h)),
                None => parse::parse_head(data, pos, &ctx.limits, &mut b.fields),
            };
            let head = match parsed {
                Ok(Some(h)) => h,
                Ok(None) => {
                    b.fields.truncate(fields_before);
                    break;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let body_start = pos + head.len as usize;
            let (body, end) = match head.framing {
                Framing::None => (BodyRef::Empty, body_start),
                Framing::Length(0) => (BodyRef::Empty, body_start),
                Framing::Length(n) => {
                    let end = body_start as u64 + n;
                    if (data.len() as u64) < end {
                        body_pending = true;
                        if pos == 0 {
                            if head.expect_continue {
                                want_continue = Some(head.version);
                            }
                            // The whole body will sit in this buffer: size it (and charge
                            // the budget) once, now, rather than doubling as it arrives.
                            reserve_to = Some(end as usize);
                            self.pending = Some(head);
                        } else {
                            b.fields.truncate(fields_before);
                        }
                        break;
                    }
                    let span = Span {
                        start: body_start as u32,
                        end: end as u32,
                    };
                    (BodyRef::Span(span), end as usize)
                }
                Framing::Chunked => {
                    let (mut prog, from) = match self.chunk.take() {
                        Some(p) if pos == 0 => {
                            let at = p.resume_at;
                            (p, at)
                        }
                        _ => (
                            ChunkProgress {
                                decoder: ChunkedDecoder::new(),
                                body: Vec::new(),
                                resume_at: body_start,
                            },
                            body_start,
                        ),
                    };
                    match prog.decoder.decode(
                        &data[from..],
                        &mut prog.body,
                        ctx.limits.max_body_bytes,
                    ) {
                        Ok((used, true)) => (BodyRef::Owned(prog.body), from + used),
                        Ok((used, false)) => {
                            body_pending = true;
                            b.fields.truncate(fields_before);
                            if pos == 0 {
                                if data.len() >= ctx.read_cap {
                                    failure = Some(Error::BodyTooLarge);
                                    break;
                                }
                                if head.expect_continue {
                                    want_continue = Some(head.version);
                                }
                                prog.resume_at = from + used;
                                self.chunk = Some(prog);
                            }
                            break;
                        }
                        Err(e) => {
                            if reqs.is_empty() {
                                failure = Some(e);
                            }
                            break;
                        }
                    }
                }
            };
            trace!(
                "conn={} parsed {} {}",
                self.id,
                head.method.as_str(),
                String::from_utf8_lossy(head.target.get(data))
            );
            let limit = ctx.cfg.max_requests_per_connection;
            let close = !head.keep_alive
                || ctx.draining
                || (limit > 0 && self.served + reqs.len() + 1 >= limit);
            reqs.push(ReqMeta { head, body, close });
            pos = end;
            if close {
                break;
            }
        }
        if !reqs.is_empty() {
            self.pending = None;
            return self.dispatch(ctx, reqs, pos);
        }
        ctx.bufs.put_reqs(reqs);
        if let Some(e) = failure {
            self.pending = None;
            return self.answer_error(ctx, e);
        }
        if let Some(end) = reserve_to
            && !self.reserve(ctx, end)
        {
            // A new request whose body the memory budget cannot hold: refused before
            // anything was promised (no 100 Continue went out).
            self.pending = None;
            return self.answer_503(ctx, "buffered request bytes at max_buffered_bytes");
        }
        if let Some(version) = want_continue {
            self.send_continue(ctx, version);
        }
        if body_pending && self.phase != Phase::ReadBody {
            self.phase = Phase::ReadBody;
            self.arm(ctx, Deadline::Body, ctx.cfg.read_timeout);
        }
        self.after_read(ctx)
    }

    /// Grows the read buffer to `end` bytes if the memory budget allows it.
    fn reserve(&mut self, ctx: &mut Ctx, end: usize) -> bool {
        let b = Arc::get_mut(self.rbuf.as_mut().expect("reading"))
            .expect("the read buffer is owned by its connection");
        if b.bytes.len() >= end {
            return true;
        }
        let more = end - b.bytes.len();
        if ctx.held + more > ctx.cfg.max_buffered_bytes {
            return false;
        }
        b.bytes.resize(end, 0);
        ctx.held += more;
        self.charged += more;
        if self.over_budget {
            // The read stopped for want of room that is now there.
            self.over_budget = false;
            self.read_paused = false;
            ctx.deferred_reads.push((self.token, self.gen_));
        }
        true
    }

    /// After a read with no complete request: wait for more bytes, or for memory.
    fn after_read(&mut self, ctx: &mut Ctx) -> Step {
        if std::mem::take(&mut self.over_budget) {
            if self.phase == Phase::ReadBody {
                // A request already accepted: its body waits (nothing is dropped) until
                // other connections give memory back, within its read deadline.
                debug!("conn={} memory budget spent: reading paused", self.id);
                ctx.budget_waiters.push((self.token, self.gen_));
            } else {
                // A head that needs a larger buffer than the budget leaves.
                return self.answer_503(ctx, "buffered request bytes at max_buffered_bytes");
            }
        }
        if self.peer_eof {
            return Err(if self.buffered() > 0 {
                Close::PeerClosedMidRequest
            } else {
                Close::PeerClosed
            });
        }
        Ok(())
    }

    fn send_continue(&mut self, ctx: &mut Ctx, version: Version) {
        // RFC 9110 §10.1.1: a server that receives 100-continue in an HTTP/1.0 request
        // MUST ignore it. We only get here when the body is acceptable (a too-large
        // Content-Length was answered 413 at once by the parser).
        if self.continue_sent || version == Version::Http10 {
            return;
        }
        self.continue_sent = true;
        trace!("conn={} 100 Continue", self.id);
        self.wbuf.extend_from_slice(encode::CONTINUE_100);
        // Best effort: if it does not fit now, it goes out with the answer.
        if let Err(c) = self.flush(ctx) {
            debug!("conn={} writing 100 Continue failed: {c:?}", self.id);
        }
    }

    /// Hands the complete requests to a worker; bytes after them stay for later.
    fn dispatch(&mut self, ctx: &mut Ctx, reqs: Vec<ReqMeta>, consumed: usize) -> Step {
        let mut batch = self.rbuf.take().expect("dispatching needs a buffer");
        let total = batch.len;
        self.batch_bytes = batch.bytes.len();
        // RFC 9112 §2.2: empty lines before a request are ignored; a stray CRLF after the
        // last request must not count as the start of another (nor hold a buffer).
        let mut rest_at = consumed;
        while rest_at < total && matches!(batch.bytes[rest_at], b'\r' | b'\n') {
            rest_at += 1;
        }
        let leftover = rest_at < total;
        if leftover {
            let mut rest = ctx.bufs.take_read();
            let r = Arc::get_mut(&mut rest).expect("fresh buffer");
            let left = &batch.bytes[rest_at..total];
            if r.bytes.len() < left.len() {
                r.bytes.resize(left.len(), 0);
            }
            r.bytes[..left.len()].copy_from_slice(left);
            r.len = left.len();
            self.rbuf = Some(rest);
        }
        // Chunk progress is only kept for a request at the front of the buffer, and such a
        // request is never behind complete ones, so nothing is pending here.
        debug_assert!(self.chunk.is_none());
        Arc::get_mut(&mut batch).expect("owned").len = consumed;
        self.served += reqs.len();
        self.continue_sent = false;
        let n = reqs.len();
        let cancel = ctx.bufs.take_cancel();
        if self.peer_eof {
            // The client sent its request(s) and closed (RFC 9112 §9.6 allows answering
            // a half-closed connection; Go cancels the request context all the same).
            cancel.cancel();
        }
        if leftover || self.read_paused {
            // More requests wait behind this batch: ask the worker to wake us when it is
            // done, rather than let them sit until the loop's next turn.
            cancel.mark_loop_waiting();
        }
        self.cancel = Some(cancel.clone());
        self.phase = Phase::Dispatched;
        self.disarm();
        // Nothing of ours is pending on the socket, so the worker may write the answers
        // itself; the loop writes nothing to this connection until the batch is back.
        let direct = self.wpos == self.wbuf.len();
        let job = BatchJob {
            sock: direct.then(|| self.sock.clone()),
            token: self.token,
            gen_: self.gen_,
            conn_id: self.id,
            peer: self.peer,
            batch,
            reqs,
            cancel,
            out: ctx.bufs.take_write(),
            queued_at: ctx.now,
        };
        trace!(
            "conn={} queueing {n} request(s) for a worker (queue depth {})",
            self.id,
            ctx.jobs.len()
        );
        let sent = ctx.jobs.try_send(Job::Batch(job));
        self.recharge(ctx);
        match sent {
            Ok(()) => {
                ctx.outstanding += 1;
                Ok(())
            }
            Err(e) => {
                // Overload is shed here, before any handler runs.
                let Job::Batch(mut job) = e.into_inner() else {
                    unreachable!("a batch was sent")
                };
                job.sock = None;
                ctx.bufs.put_read(job.batch);
                ctx.bufs.put_reqs(job.reqs);
                ctx.bufs.put_write(job.out);
                self.batch_bytes = 0;
                self.cancel = None;
                // The requests behind it stay unanswered, so the close lingers.
                self.unread_input |= n > 1;
                self.answer_503(ctx, "worker queue full")
            }
        }
    }

    /// Sheds load: one `503` with `Retry-After`, then close (RFC 9112 §9.6: nothing may
    /// follow an answer with close). The request never reaches a handler.
    fn answer_503(&mut self, ctx: &mut Ctx, why: &str) -> Step {
        log::warn!("conn={} {why}: answering 503 and closing", self.id);
        encode::write_head(
            &mut self.wbuf,
            503,
            ctx.date(),
            [
                ("Content-Type", &b"text/plain; charset=utf-8"[..]),
                ("Retry-After", &b"1"[..]),
            ],
            BodyFraming::Length(20),
            ConnectionField::Close,
        );
        self.wbuf.extend_from_slice(b"Service Unavailable\n");
        self.chunk = None;
        self.pending = None;
        self.unread_input |= self.phase == Phase::ReadBody || self.buffered() > 0;
        self.close_after = true;
        self.phase = Phase::Write;
        self.write_and_continue(ctx)
    }

    /// Answers a protocol error with its status and closes (the framing is unknown).
    fn answer_error(&mut self, ctx: &mut Ctx, e: Error) -> Step {
        self.pending = None;
        debug!("conn={} bad request: {e} -> {}", self.id, e.status());
        let msg = e.message().as_bytes();
        encode::write_head(
            &mut self.wbuf,
            e.status(),
            ctx.date(),
            [("Content-Type", &b"text/plain; charset=utf-8"[..])],
            BodyFraming::Length(msg.len() as u64),
            ConnectionField::Close,
        );
        self.wbuf.extend_from_slice(msg);
        self.chunk = None;
        self.unread_input = true;
        self.close_after = true;
        self.phase = Phase::Write;
        self.write_and_continue(ctx)
    }

    // ------------------------------------------------------------------ deadlines

    /// The armed deadline passed.
    pub fn on_deadline(&mut self, ctx: &mut Ctx, kind: Deadline) -> Step {
        match kind {
            Deadline::Idle => Err(Close::IdleTimeout),
            Deadline::Write => Err(Close::WriteTimeout),
            Deadline::Linger => Err(Close::LingerTimeout),
            Deadline::Header if self.buffered() == 0 => Err(Close::HeaderTimeout),
            Deadline::Header => self.answer_error(ctx, Error::HeaderTimeout),
            Deadline::Body => self.answer_error(ctx, Error::BodyTimeout),
        }
    }

    /// The upgrade callback and read-ahead, once the switching answer is written.
    pub fn take_upgrade(&mut self) -> Option<(OnUpgrade, Vec<u8>)> {
        self.upgrade.take()
    }

    /// Tears the connection's shared state down (the loop then drops the socket).
    pub fn release(&mut self, ctx: &mut Ctx) {
        if let Some(c) = self.cancel.take() {
            c.mark_conn_closed();
        }
        if let Some(src) = self.stream.take().and_then(|s| s.src) {
            src.close();
        }
        if let Some(b) = self.rbuf.take() {
            ctx.bufs.put_read(b);
        }
        ctx.bufs.put_write(std::mem::take(&mut self.wbuf));
        self.chunk = None;
        self.pending = None;
        self.batch_bytes = 0;
        self.recharge(ctx);
    }
}
