//! One connection's life on the event loop: read, parse a batch of pipelined requests,
//! dispatch it, write the answers in order, then keep alive or close.
//!
//! Every method here runs on the loop thread and must never block or run user code:
//! sockets are non-blocking, handlers run on workers (`pool.rs`), and each method returns
//! either `Ok(())` (the connection lives on) or `Err(Close)` for the loop to tear it down.
//! The socket is reached only through the [`Transport`] seam, so `tests.rs` drives every
//! phase from byte scripts.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use log::{debug, trace};

use crate::error::Error;
use crate::event_loop::Ctx;
use crate::http::decode::ChunkedDecoder;
use crate::http::encode::{self, BodyFraming, ConnectionField};
use crate::http::parse::{self, Framing, Head, HeadScan};
use crate::http::{Span, Version};
use crate::pool::{BatchJob, BatchSignal, Job, ReqMeta, StreamFraming};
use crate::request::{Batch, BodyRef, CancelFlag};
use crate::stream::StreamSrc;
use crate::timer::Tick;
use crate::upgrade::OnUpgrade;
use crate::upload::Sink;

#[cfg(test)]
mod tests;
mod transport;
mod write;

pub(crate) use transport::{Transport, WriteRight};

/// Where a connection is in its request cycle (see docs/LIFECYCLE.md). Each phase carries
/// the state only it needs.
pub(crate) enum Phase {
    /// Keep-alive between requests: no buffers held, the idle deadline runs.
    Idle,
    /// Waiting for a complete request head; the header deadline runs.
    ReadHead(HeadRead),
    /// The head at the front of the buffer is parsed and its body is arriving; the body
    /// deadline runs.
    ReadBody(Box<BodyRead>),
    /// A batch is at a worker (with the right to write, when the loop had nothing of its
    /// own to write); no read deadline (handler time is not the client's fault).
    Dispatched(InFlight),
    /// Answers are being written; the write deadline runs while the socket is full.
    Write(After),
    /// A streamed body is being relayed.
    Stream(Box<Streaming>),
    /// A request body larger than memory goes to its handler's sink piece by piece; the
    /// body deadline runs (re-armed on progress).
    Upload(Box<Upload>),
    /// Answered and closing: our side is shut, input is discarded until the peer closes
    /// (so an unread request body cannot turn our close into a reset that destroys the
    /// answer in flight, RFC 9112 §9.6).
    Closing,
}

/// A request head on its way: the search for its end resumes where it stopped, and the
/// head is parsed once it is complete — a head dribbled a byte at a time costs one scan of
/// each byte, not one parse per read. Before that, `parse_head` runs only for its early
/// verdicts: on the first bytes (an overlong method is 501 at its 33rd byte), once on the
/// completed request line (a bad line is refused without waiting for the rest), and past
/// the limits (414, 431).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeadRead {
    end: HeadScan,
    /// Bytes already looked at for the end of the request line.
    seen: usize,
    /// The request line (or an empty line before it) has ended.
    line_done: bool,
}

impl HeadRead {
    /// Whether `buf` (the head so far) is worth a `parse_head` now.
    fn worth_parsing(&mut self, buf: &[u8], limits: &parse::Limits) -> bool {
        let ended = self.end.scan(buf).is_some();
        let mut line_ended = false;
        if !self.line_done && buf[self.seen..].contains(&b'\n') {
            self.line_done = true;
            line_ended = true;
        }
        self.seen = buf.len();
        ended
            || line_ended
            || buf.len() > limits.max_head_bytes
            || (!self.line_done
                && (buf.len() <= parse::MAX_METHOD_BYTES + 1
                    || buf.len() > limits.max_uri_bytes + 32))
    }
}

/// A request whose head is parsed and whose body is still arriving.
pub(crate) struct BodyRead {
    /// Parsed once; its fields stay at the front of the buffer's field list.
    head: Head,
    body: BodyProgress,
}

/// How far a body has come.
enum BodyProgress {
    /// A `Content-Length` body: complete when the buffer holds `end` bytes.
    Length { end: usize },
    /// A chunked body, decoded as it arrives so a large body is decoded once.
    Chunked {
        decoder: ChunkedDecoder,
        body: Vec<u8>,
        /// Offset in the read buffer where decoding resumes.
        resume_at: usize,
    },
}

/// A batch at a worker.
pub(crate) struct InFlight {
    /// Shared with the worker: "the loop waits for this batch", "the connection is gone".
    signal: BatchSignal,
    /// The batch's cancellation flag (set when the client leaves).
    cancel: CancelFlag,
    /// Size of the read buffer the batch took along (still charged to the budget).
    batch_bytes: usize,
    /// A close the loop wanted meanwhile (the client reset): it happens when the batch,
    /// and with it the right to write, comes back.
    close: Option<Close>,
}

/// What happens once the answers are written.
pub(crate) enum After {
    /// Read the next request (or idle).
    KeepAlive,
    /// Close (an answer said `Connection: close`, an error, the drain).
    Close,
    /// Hand the connection to an upgrade callback with the bytes read past the request.
    Upgrade(OnUpgrade, Vec<u8>),
}

/// A streamed response body in progress.
pub(crate) struct Streaming {
    /// Where the pieces come from; `None` while a pull job has the producer.
    src: Option<StreamSrc>,
    framing: StreamFraming,
    /// Close once the body has ended.
    close: bool,
}

/// A request body on its way to a [`BodySink`](crate::BodySink).
pub(crate) struct Upload {
    /// The sink; `None` while a worker feeds it a piece.
    sink: Option<Sink>,
    /// Body bytes not yet handed to the sink.
    remaining: u64,
    method: crate::http::Method,
    version: Version,
    /// Close after the answer.
    close: bool,
}

/// Which deadline fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    Header,
    Body,
    Write,
    Idle,
    Linger,
}

/// A connection's deadlines: reading and writing are timed apart (a body may be read
/// while a `100 Continue` waits to be written), and the wheel holds one entry for the
/// earlier of them, re-filed lazily.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    /// The read-side deadline (header, body, idle or linger) and when it falls due.
    read: Option<(Tick, Deadline)>,
    /// When the pending output must have been written.
    write: Option<Tick>,
    /// The tick of this connection's newest wheel entry; entries with another tick are
    /// stale.
    pub filed: Option<Tick>,
}

impl Deadlines {
    /// The earliest tick either deadline falls due.
    pub fn next_due(&self) -> Option<Tick> {
        match (self.read.map(|r| r.0), self.write) {
            (Some(r), Some(w)) => Some(r.min(w)),
            (r, w) => r.or(w),
        }
    }

    /// Takes the deadline that is due at `now` (the write one first), if any.
    pub fn take_due(&mut self, now: Tick) -> Option<Deadline> {
        if self.write.is_some_and(|w| w <= now) {
            self.write = None;
            return Some(Deadline::Write);
        }
        match self.read {
            Some((due, kind)) if due <= now => {
                self.read = None;
                Some(kind)
            }
            _ => None,
        }
    }
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

impl Close {
    /// Closes that cannot wait for a batch to come back (the server is stopping).
    pub fn is_forced(self) -> bool {
        matches!(self, Close::ShutdownDeadline | Close::ForcedStop)
    }
}

/// A connection owned by the loop.
pub(crate) struct Conn<T: Transport = mio::net::TcpStream> {
    /// The loop's half of the socket: reading, shutting down, and (in `event_loop.rs`)
    /// registering and closing it.
    io: Arc<T>,
    /// The right to write the socket; `None` while a dispatched batch carries it.
    right: Option<WriteRight>,
    /// Slot index; the mio token is derived from it.
    pub token: usize,
    /// Bumped each time the slot is reused, so a late completion for the previous
    /// occupant is recognised and dropped.
    pub gen_: u32,
    /// Connection id for logs (unique per server run).
    pub id: u64,
    pub peer: SocketAddr,
    phase: Phase,
    /// Read buffer; `None` while idle so idle connections hold no memory. It is an
    /// `Arc<Batch>` so dispatching moves it to the worker without copying.
    rbuf: Option<Arc<Batch>>,
    /// Answers waiting to be written, from `wpos`.
    wbuf: Vec<u8>,
    wpos: usize,
    /// The read and write deadlines.
    pub deadlines: Deadlines,
    /// Requests taken from this connection so far (for `max_requests_per_connection`).
    served: usize,
    /// The client half-closed (read returned 0).
    peer_eof: bool,
    /// Reading stopped before the socket was drained (buffer cap, memory budget, a
    /// batch out); resume later. Edge-triggered: no new event will say so.
    read_paused: bool,
    /// A readiness event reported the peer's FIN (read it even after a short read).
    hup_seen: bool,
    /// The last read stopped because the memory budget did not allow a larger buffer.
    over_budget: bool,
    /// Input was left unread (an error answered mid-request): linger before closing.
    unread_input: bool,
    /// Bytes of request data this connection is charged for in `Ctx::held` (its read
    /// buffer, a chunked body being decoded, the batch at a worker).
    charged: usize,
}

pub(crate) type Step = Result<(), Close>;

impl<T: Transport> Conn<T> {
    pub fn new(io: Arc<T>, token: usize, gen_: u32, id: u64, peer: SocketAddr) -> Self {
        let right = WriteRight::new(io.clone());
        Conn {
            io,
            right: Some(right),
            token,
            gen_,
            id,
            peer,
            phase: Phase::ReadHead(HeadRead::default()),
            rbuf: None,
            wbuf: Vec::new(),
            wpos: 0,
            deadlines: Deadlines::default(),
            served: 0,
            peer_eof: false,
            read_paused: false,
            hup_seen: false,
            over_budget: false,
            unread_input: false,
            charged: 0,
        }
    }

    /// The phase, for the loop's drain accounting and logs.
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Idle => "idle",
            Phase::ReadHead(_) => "read-head",
            Phase::ReadBody(_) => "read-body",
            Phase::Dispatched(_) => "dispatched",
            Phase::Write(_) => "write",
            Phase::Stream(_) => "stream",
            Phase::Upload(_) => "upload",
            Phase::Closing => "closing",
        }
    }

    /// Arms a deadline `after` from now; the wheel is only touched when it falls due
    /// earlier than the entry already filed.
    pub fn arm(&mut self, ctx: &mut Ctx, kind: Deadline, after: Duration) {
        let due = ctx.wheel.tick_of(ctx.now + after);
        match kind {
            Deadline::Write => self.deadlines.write = Some(due),
            _ => self.deadlines.read = Some((due, kind)),
        }
        if self.deadlines.filed.is_none_or(|f| due < f) {
            ctx.wheel.insert(due, (self.token, self.gen_));
            self.deadlines.filed = Some(due);
        }
    }

    fn buffered(&self) -> usize {
        self.rbuf.as_ref().map_or(0, |b| b.len)
    }

    /// True when the connection holds nothing in flight (drain may close it at once).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::ReadHead(_)) && self.buffered() == 0
    }

    /// True once the connection only waits for the client to close (drain accounting).
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing)
    }

    /// Brings this connection's share of the loop's memory budget up to date.
    pub fn recharge(&mut self, ctx: &mut Ctx) {
        let mut now = self.rbuf.as_ref().map_or(0, |b| b.bytes.len());
        match &self.phase {
            Phase::ReadBody(r) => {
                if let BodyProgress::Chunked { body, .. } = &r.body {
                    now += body.capacity();
                }
            }
            Phase::Dispatched(f) => now += f.batch_bytes,
            _ => {}
        }
        if now < self.charged {
            ctx.held -= self.charged - now;
            ctx.budget_freed |= !ctx.budget_waiters.is_empty();
        } else {
            ctx.held += now - self.charged;
        }
        self.charged = now;
    }

    /// Reading was paused for the memory budget: try again (memory came back).
    pub fn resume_reading(&mut self, ctx: &mut Ctx) -> Step {
        if !self.read_paused || !matches!(self.phase, Phase::ReadHead(_) | Phase::ReadBody(_)) {
            return Ok(());
        }
        self.read_paused = false;
        self.on_readable(ctx, false)
    }

    /// The loop wants this connection closed. While a batch is out the close waits for
    /// it (the worker holds the right to write, and its answer is owed to nobody now):
    /// the batch is marked so a worker that has not started it skips it, and its
    /// handlers see the cancellation. True when the close must wait.
    pub fn defer_close(&mut self, reason: Close) -> bool {
        let Phase::Dispatched(f) = &mut self.phase else {
            return false;
        };
        if f.close.is_none() {
            debug!(
                "conn={} closing once its batch is back: {reason:?}",
                self.id
            );
            f.signal.mark_conn_closed();
            f.cancel.cancel();
            f.close = Some(reason);
        }
        true
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
        match &self.phase {
            Phase::Closing => return self.discard_input(),
            Phase::Dispatched(f) if f.close.is_some() => return Ok(()),
            _ => {}
        }
        let n = self.fill(ctx, hung_up)?;
        match &mut self.phase {
            Phase::Idle | Phase::ReadHead(_) | Phase::ReadBody(_) => {
                if n > 0 && matches!(self.phase, Phase::Idle) {
                    // The header deadline counts from the first byte of a request.
                    self.phase = Phase::ReadHead(HeadRead::default());
                    self.arm(ctx, Deadline::Header, ctx.cfg.header_read_timeout);
                }
                self.process(ctx)
            }
            Phase::Dispatched(f) => {
                if self.peer_eof {
                    // The client hung up after its requests were handed over: a handler
                    // already running sees the cancellation (Go's `r.Context().Done()`)
                    // and its answer is still written; a batch still queued is not run
                    // at all (as nginx treats a client that closes while its request
                    // waits: 499).
                    debug!(
                        "conn={} client closed while its request is queued or running: cancelling",
                        self.id
                    );
                    f.signal.mark_conn_closed();
                    f.cancel.cancel();
                } else if n > 0 {
                    f.signal.mark_loop_waiting();
                }
                Ok(())
            }
            Phase::Stream(_) if self.peer_eof => Err(Close::PeerClosed),
            Phase::Upload(_) => {
                if n > 0 {
                    // The upload deadline counts from the last progress: a body larger
                    // than memory may rightly take longer than `read_timeout` in all.
                    self.arm(ctx, Deadline::Body, ctx.cfg.read_timeout);
                }
                self.pump_upload(ctx)
            }
            _ => Ok(()),
        }
    }

    /// Hands the buffered body bytes to the sink when it is free (one piece out at a
    /// time: reading stops at the window until the sink has taken the piece).
    pub fn pump_upload(&mut self, ctx: &mut Ctx) -> Step {
        let Phase::Upload(u) = &mut self.phase else {
            return Ok(());
        };
        if u.sink.is_none() {
            return Ok(()); // a piece is out: its return brings us back
        }
        let avail = self.rbuf.as_ref().map_or(0, |b| b.len);
        let take = (avail as u64).min(u.remaining) as usize;
        if take == 0 {
            return if self.peer_eof {
                Err(Close::PeerClosedMidRequest)
            } else {
                Ok(())
            };
        }
        if ctx.jobs.is_full() {
            ctx.stalled.push((self.token, self.gen_));
            return Ok(());
        }
        let rbuf = self.rbuf.as_mut().expect("bytes are buffered");
        let b = Arc::get_mut(rbuf).expect("the read buffer is owned by its connection");
        let mut piece = ctx.bufs.take_write();
        piece.extend_from_slice(&b.bytes[..take]);
        b.bytes.copy_within(take..b.len, 0);
        b.len -= take;
        if b.len == 0 {
            let b = self.rbuf.take().expect("just used");
            ctx.bufs.put_read(b);
        }
        u.remaining -= take as u64;
        let last = u.remaining == 0;
        let job = crate::pool::UploadJob {
            token: self.token,
            gen_: self.gen_,
            conn_id: self.id,
            sink: u.sink.take().expect("checked above"),
            piece,
            last,
            method: u.method,
            version: u.version,
            close: u.close,
        };
        if ctx.jobs.try_send(Job::Upload(job)).is_err() {
            unreachable!("only the loop sends, and the queue had room");
        }
        ctx.outstanding += 1;
        if last {
            self.deadlines.read = None; // the body is in: handler time is not the client's
        }
        if self.read_paused {
            // Room in the window again.
            self.read_paused = false;
            return self.on_readable(ctx, false);
        }
        Ok(())
    }

    /// A sink took its piece and waits for the next.
    pub fn on_piece(&mut self, ctx: &mut Ctx, p: crate::pool::Piece) -> Step {
        ctx.bufs.put_write(p.buf);
        let Phase::Upload(u) = &mut self.phase else {
            let _ = ctx.jobs.try_send(Job::UploadAbort(p.sink));
            return Ok(());
        };
        u.sink = Some(p.sink);
        self.pump_upload(ctx)
    }

    /// Leaves an upload early: its sink hears of it (on a worker), and the rest of the
    /// body stays unread.
    fn abort_upload(&mut self, ctx: &mut Ctx) {
        if let Phase::Upload(u) = &mut self.phase {
            if u.remaining > 0 {
                self.unread_input = true;
            }
            if let Some(sink) = u.sink.take() {
                let _ = ctx.jobs.try_send(Job::UploadAbort(sink));
            }
        }
    }

    /// Reads until the socket would block, a short read, the buffer cap or the memory
    /// budget.
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
        // An upload reads a window at a time: the sink takes it before more is read.
        let cap = if matches!(self.phase, Phase::Upload(_)) {
            ctx.cfg.stream_buffer_bytes.min(ctx.read_cap)
        } else {
            ctx.read_cap
        };
        loop {
            if b.len == b.bytes.len() {
                if b.bytes.len() >= cap {
                    self.read_paused = true;
                    break;
                }
                let grown = (b.bytes.len() * 2).min(cap);
                let more = grown - b.bytes.len();
                if ctx.held + more > ctx.cfg.max_buffered_bytes {
                    // The memory budget for all connections is spent: stop reading here
                    // (what was read stays); `after_read` decides to wait or refuse.
                    self.read_paused = true;
                    self.over_budget = true;
                    break;
                }
                b.bytes.resize(grown, 0);
                ctx.held += more;
                self.charged += more;
            }
            match self.io.read(&mut b.bytes[b.len..]) {
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
            match self.io.read(&mut sink) {
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
        let len = b.len;
        // A body in progress at the front: advance it; nothing else is parsed until it
        // is complete (a request behind it cannot be answered before it anyway).
        let mut front = None;
        match &mut self.phase {
            Phase::ReadBody(r) => match &mut r.body {
                BodyProgress::Length { end } => {
                    if len < *end {
                        return self.after_read(ctx);
                    }
                    let end = *end;
                    let Phase::ReadBody(r) = std::mem::replace(&mut self.phase, Phase::Idle) else {
                        unreachable!()
                    };
                    let start = r.head.len;
                    let span = Span {
                        start,
                        end: end as u32,
                    };
                    front = Some((r.head, BodyRef::Span(span), end));
                }
                BodyProgress::Chunked {
                    decoder,
                    body,
                    resume_at,
                } => {
                    let max = ctx.cfg.max_body_bytes;
                    match decoder.decode(&b.bytes[*resume_at..len], body, max) {
                        Ok((used, true)) => {
                            let end = *resume_at + used;
                            let Phase::ReadBody(r) =
                                std::mem::replace(&mut self.phase, Phase::Idle)
                            else {
                                unreachable!()
                            };
                            let BodyProgress::Chunked { body, .. } = r.body else {
                                unreachable!()
                            };
                            front = Some((r.head, BodyRef::Owned(body), end));
                        }
                        Ok((used, false)) => {
                            *resume_at += used;
                            if len >= ctx.read_cap {
                                return self.answer_error(ctx, Error::BodyTooLarge);
                            }
                            return self.after_read(ctx);
                        }
                        Err(e) => return self.answer_error(ctx, e),
                    }
                }
            },
            Phase::ReadHead(h) => {
                if !h.worth_parsing(&b.bytes[..len], &ctx.limits) {
                    return self.after_read(ctx);
                }
                b.fields.clear();
            }
            _ => b.fields.clear(),
        }
        let data = &b.bytes[..len];
        let mut reqs = ctx.bufs.take_reqs();
        let mut pos = 0;
        let mut failure = None;
        let mut next: Option<BodyRead> = None;
        while pos < data.len() && reqs.len() < ctx.cfg.max_batch {
            let (head, body, end) = if let Some(f) = front.take() {
                f
            } else {
                let fields_before = b.fields.len();
                let head = match parse::parse_head(data, pos, &ctx.limits, &mut b.fields) {
                    Ok(Some(h)) => h,
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                let body_start = pos + head.len as usize;
                match head.framing {
                    Framing::None | Framing::Length(0) => (head, BodyRef::Empty, body_start),
                    Framing::Length(n) if n > ctx.cfg.max_body_bytes => {
                        // Larger than memory (and within `max_upload_bytes`, or the
                        // parser had refused it): the handler gets the head alone, and
                        // the body, if it asks, piece by piece. Nothing is parsed behind it.
                        let (body, end) = (BodyRef::Streamed(n), body_start);
                        trace!("conn={} body of {n} bytes to be streamed", self.id);
                        let close = !head.keep_alive || ctx.draining;
                        reqs.push(ReqMeta { head, body, close });
                        pos = end;
                        break;
                    }
                    Framing::Length(n) => {
                        let end = body_start as u64 + n;
                        if (data.len() as u64) < end {
                            if pos == 0 {
                                next = Some(BodyRead {
                                    head,
                                    body: BodyProgress::Length { end: end as usize },
                                });
                            } else {
                                b.fields.truncate(fields_before);
                            }
                            break;
                        }
                        let span = Span {
                            start: body_start as u32,
                            end: end as u32,
                        };
                        (head, BodyRef::Span(span), end as usize)
                    }
                    Framing::Chunked => {
                        let mut decoder = ChunkedDecoder::new();
                        let mut body = Vec::new();
                        let max = ctx.cfg.max_body_bytes;
                        match decoder.decode(&data[body_start..], &mut body, max) {
                            Ok((used, true)) => (head, BodyRef::Owned(body), body_start + used),
                            Ok((used, false)) => {
                                if pos == 0 {
                                    if data.len() >= ctx.read_cap {
                                        failure = Some(Error::BodyTooLarge);
                                        break;
                                    }
                                    next = Some(BodyRead {
                                        head,
                                        body: BodyProgress::Chunked {
                                            decoder,
                                            body,
                                            resume_at: body_start + used,
                                        },
                                    });
                                } else {
                                    b.fields.truncate(fields_before);
                                }
                                break;
                            }
                            Err(e) => {
                                failure = Some(e);
                                break;
                            }
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
            // A failure behind complete requests is answered after them, in order: its
            // bytes stay in the buffer and are parsed again then.
            return self.dispatch(ctx, reqs, pos);
        }
        ctx.bufs.put_reqs(reqs);
        if let Some(e) = failure {
            return self.answer_error(ctx, e);
        }
        if let Some(r) = next {
            return self.start_body(ctx, r);
        }
        self.after_read(ctx)
    }

    /// A head is parsed and its body is arriving: size the buffer for it, arm the body
    /// deadline, and say `100 Continue` when the client waits for it.
    fn start_body(&mut self, ctx: &mut Ctx, r: BodyRead) -> Step {
        if let BodyProgress::Length { end } = r.body
            && !self.reserve(ctx, end)
        {
            // A new request whose body the memory budget cannot hold: refused before
            // anything was promised (no 100 Continue went out).
            self.unread_input = true;
            return self.answer_503(ctx, "buffered request bytes at max_buffered_bytes");
        }
        let (expect, version) = (r.head.expect_continue, r.head.version);
        self.phase = Phase::ReadBody(Box::new(r));
        self.arm(ctx, Deadline::Body, ctx.cfg.read_timeout);
        if expect {
            self.send_continue(ctx, version);
        }
        self.after_read(ctx)
    }

    /// Grows the read buffer to `end` bytes (a `Content-Length` body sits in it whole:
    /// sized once, not doubled as it arrives) if the memory budget allows it.
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
            // The read stopped for want of room that is now there: read on.
            self.over_budget = false;
            self.read_paused = false;
            ctx.deferred_reads.push((self.token, self.gen_));
        }
        true
    }

    /// After a read with no complete request: wait for more bytes, or for memory.
    fn after_read(&mut self, ctx: &mut Ctx) -> Step {
        if std::mem::take(&mut self.over_budget) {
            if matches!(self.phase, Phase::ReadBody(_)) {
                // A request already accepted: its body waits (nothing is dropped) until
                // other connections give memory back, within its read deadline.
                debug!("conn={} memory budget spent: reading paused", self.id);
                ctx.budget_waiters.push((self.token, self.gen_));
            } else {
                // A head that needs a larger buffer than the budget leaves.
                self.unread_input = true;
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
        if version == Version::Http10 {
            return;
        }
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
        Arc::get_mut(&mut batch).expect("owned").len = consumed;
        self.served += reqs.len();
        let n = reqs.len();
        let (cancel, signal) = (ctx.bufs.take_cancel(), ctx.bufs.take_signal());
        if self.peer_eof {
            // The client sent its request(s) and closed (RFC 9112 §9.6 allows answering
            // a half-closed connection; Go cancels the request context all the same).
            cancel.cancel();
        }
        if leftover || self.read_paused {
            // More requests wait behind this batch: ask the worker to wake us when it is
            // done, rather than let them sit until the loop's next turn.
            signal.mark_loop_waiting();
        }
        self.deadlines.read = None;
        // Nothing of ours is pending on the socket, so the worker may write the answers
        // itself: the right to write travels with the batch.
        let right = if self.wpos == self.wbuf.len() {
            self.right.take()
        } else {
            None
        };
        let batch_bytes = batch.bytes.len();
        let job = BatchJob {
            right,
            token: self.token,
            gen_: self.gen_,
            conn_id: self.id,
            peer: self.peer,
            batch,
            reqs,
            cancel: cancel.clone(),
            signal: signal.clone(),
            out: ctx.bufs.take_write(),
            queued_at: ctx.now,
        };
        trace!(
            "conn={} queueing {n} request(s) for a worker (queue depth {})",
            self.id,
            ctx.jobs.len()
        );
        match ctx.jobs.try_send(Job::Batch(job)) {
            Ok(()) => {
                ctx.outstanding += 1;
                self.phase = Phase::Dispatched(InFlight {
                    signal,
                    cancel,
                    batch_bytes,
                    close: None,
                });
                self.recharge(ctx);
                Ok(())
            }
            Err(e) => {
                // Overload is shed here, before any handler runs.
                let Job::Batch(job) = e.into_inner() else {
                    unreachable!("a batch was sent")
                };
                if let Some(r) = job.right {
                    self.right = Some(r);
                }
                ctx.bufs.put_read(job.batch);
                ctx.bufs.put_reqs(job.reqs);
                ctx.bufs.put_write(job.out);
                ctx.bufs.put_cancel(cancel);
                ctx.bufs.put_signal(signal);
                // The requests behind it stay unanswered, so the close lingers.
                self.unread_input |= n > 1 || leftover;
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
        self.deadlines.read = None;
        self.phase = Phase::Write(After::Close);
        self.write_and_continue(ctx)
    }

    /// Answers a protocol error with its status and closes (the framing is unknown).
    fn answer_error(&mut self, ctx: &mut Ctx, e: Error) -> Step {
        debug!("conn={} bad request: {e} -> {}", self.id, e.status());
        self.abort_upload(ctx);
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
        self.unread_input = true;
        self.deadlines.read = None;
        self.phase = Phase::Write(After::Close);
        self.write_and_continue(ctx)
    }

    // ------------------------------------------------------------------ deadlines

    /// A deadline passed.
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
        match std::mem::replace(&mut self.phase, Phase::Closing) {
            Phase::Write(After::Upgrade(f, ahead)) => Some((f, ahead)),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// Tears the connection's state down and gives back its halves: the loop's socket
    /// handle and the right to write (`None` when a batch still has it — only a forced
    /// close gets here then).
    pub fn release(mut self, ctx: &mut Ctx) -> (Arc<T>, Option<WriteRight>) {
        match std::mem::replace(&mut self.phase, Phase::Closing) {
            Phase::Dispatched(f) => f.signal.mark_conn_closed(),
            Phase::Stream(s) => {
                if let Some(src) = s.src {
                    src.close();
                }
            }
            Phase::Upload(u) => {
                if let Some(sink) = u.sink {
                    let _ = ctx.jobs.try_send(Job::UploadAbort(sink));
                }
            }
            _ => {}
        }
        if let Some(b) = self.rbuf.take() {
            ctx.bufs.put_read(b);
        }
        ctx.bufs.put_write(std::mem::take(&mut self.wbuf));
        self.recharge(ctx);
        (self.io, self.right)
    }
}
