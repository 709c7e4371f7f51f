//! A connection whose answer comes from an upstream (`crate::forward`): the loop connects
//! (or takes a pooled connection), writes the request, reads the answer's head with the
//! client's sans-I/O core, turns it into the client's head (itself when no user hook is
//! set, else in a short job on a worker), and relays the body — reading the upstream only while the client keeps up. No worker waits
//! on the upstream at any point.
//!
//! Upstream sockets live in the loop's `UpstreamPool`, registered under `FORWARD_BASE + id`
//! from connect to close; the pool routes a busy one's events to the connection it serves,
//! and keeps it idle after the exchange when the answer allows reuse (else closes it).

use std::io;
use std::time::Instant;

use log::{debug, trace};
use mio::{Interest, Token};

use super::{After, Close, Conn, Deadline, Phase, Step, Transport};
use crate::client::{ClientConn, Event};
use crate::event_loop::Ctx;
use crate::forward::{Exchange, ExchangeError, Relay, Respond};
use crate::http::encode::{self, BodyFraming, ConnectionField};
use crate::pool::{ForwardJob, ForwardStart, Forwarded, Job};

/// Upstream sockets' tokens: `FORWARD_BASE + id` in the `UpstreamPool` (connection tokens are slot indices;
/// the loop's own tokens sit at the top of the range).
pub(crate) const FORWARD_BASE: usize = usize::MAX / 2;

/// One read from the upstream.
const READ_CHUNK: usize = 16 * 1024;
/// What one readiness of an upstream relays before the loop moves on: a fast upstream
/// and a fast client would otherwise keep the relay reading for as long as the body
/// lasts, and 300 relays filling their clients' sockets made one turn of seconds
/// (`tests/exhaustion_review2.rs`).
const RELAY_TURN_BYTES: usize = 256 * 1024;

/// Interim (1xx) answers relayed to the client per exchange; later ones are dropped (the
/// head timeout still ends an upstream that sends nothing else).
const MAX_INTERIM: u8 = 8;

/// Where an exchange is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// A new connection is being made.
    Connecting,
    /// The request is being written.
    Sending,
    /// The head is written and carries the client's `Expect: 100-continue`: waiting for
    /// the upstream's `100` (or its final answer, or the continue timeout).
    Continue,
    /// The client's body is relayed to the upstream (`Fwd::upload`).
    Body,
    /// Waiting for the answer's head.
    Head,
    /// A worker turns the head (or the failure) into the client's answer.
    AtWorker,
    /// The body is relayed.
    Relay(Relay),
}

/// An exchange in progress.
pub(crate) struct Fwd {
    ex: Box<Exchange>,
    /// `None` while a worker has it (and after).
    respond: Option<Box<dyn Respond>>,
    /// The upstream connection (its id in the loop's `UpstreamPool`).
    up: Option<usize>,
    /// The connection came from the pool (a failure before any answer byte may be its
    /// staleness: retried once on a fresh one, for an idempotent request).
    reused: bool,
    retried: bool,
    stage: Stage,
    sent: usize,
    /// Which of the exchange's attempts (address and request) is being made.
    attempt: usize,
    cc: ClientConn,
    /// Upstream bytes read and not yet consumed.
    input: Vec<u8>,
    /// Body bytes decoded from `input`, about to be written to the client.
    body: Vec<u8>,
    up_eof: bool,
    /// Some byte of an answer arrived on this connection (a failure is then no stale
    /// pooled connection's: not retried).
    answered: bool,
    /// Interim answers relayed to the client so far (at most `MAX_INTERIM`).
    interim: u8,
    /// Bytes of the client's answer (its head, then the relayed body) appended to `wbuf`
    /// so far: while they are all still unwritten, a failure can still change the answer.
    answer_bytes: usize,
    /// Reading the upstream waits for the client to take what is buffered.
    paused: bool,
    method: crate::http::Method,
    version: crate::http::Version,
    /// Close the client connection after the answer.
    close: bool,
    /// The client's body on its way upstream, until all of it is sent (or the upstream
    /// answered before it).
    upload: Option<Uploading>,
    /// The upstream answered while the (buffered) request was still being written: the
    /// rest goes on being written as the upstream takes it, beside its answer (RFC 9112
    /// §9.5: a client stops sending only for an upstream that refuses the body and
    /// closes; one may answer first and read the body after). Given up at a write error.
    sends_rest: bool,
}

/// How far the client's body has come (`Stage::Continue`, `Stage::Body`).
#[derive(Clone, Copy, Debug)]
struct Uploading {
    /// Body bytes still to take from the client and write upstream.
    remaining: u64,
    /// The client waits for `100 Continue` before it sends the body.
    client_expects: bool,
}

impl Fwd {
    /// The exchange relays a client's body: the client is read a window at a time.
    pub(crate) fn windowed(&self) -> bool {
        self.ex.upload.is_some()
    }

    /// The client's body is being relayed now: what the client sends goes upstream.
    pub(crate) fn relays_body(&self) -> bool {
        self.stage == Stage::Body
    }

    /// The connection is up: the request goes out, and the answer's decoder starts now,
    /// not once the request is written. RFC 9112 §9.6: a client sending a body "SHOULD
    /// ... monitor the connection for an error status code"; an upstream that refuses a
    /// body answers at once and may neither read the rest nor close, and its answer
    /// announces itself only by an edge the loop must not ignore.
    fn start_sending(&mut self) {
        self.stage = Stage::Sending;
        self.cc = ClientConn::new(self.ex.limits);
        let expect_continue = self.ex.upload.is_some_and(|u| u.expect_continue);
        let head_request = self.head_request();
        self.cc.expect_response(head_request, expect_continue);
    }

    /// Writes what is left of the request (this attempt's head, then the body shared by
    /// the attempts, together when both fit) until it is all written (`Ok(true)`) or the
    /// socket is full (`Ok(false)`).
    fn write_request(&mut self, sock: &mio::net::TcpStream) -> io::Result<bool> {
        let head = &self.ex.attempts[self.attempt].1;
        let body = &self.ex.body;
        let total = head.len() + body.len();
        while self.sent < total {
            let written = if self.sent < head.len() {
                let bufs = [io::IoSlice::new(&head[self.sent..]), io::IoSlice::new(body)];
                io::Write::write_vectored(&mut &*sock, &bufs)
            } else {
                io::Write::write(&mut &*sock, &body[self.sent - head.len()..])
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Writes more of a request the upstream already answered (`sends_rest`). A failure
    /// ends it quietly: the answer is what the client gets, and the connection, whose
    /// request was not all sent, is not reused (`fwd_answered_early`).
    fn write_rest(&mut self, ctx: &mut Ctx, id: u64) {
        if let Some(up) = self.up {
            match self.write_request(ctx.upstream_sock(up)) {
                Ok(false) => return,
                Ok(true) => {}
                Err(e) => debug!("conn={id} the rest of the request not sent: {e}"),
            }
        }
        self.sends_rest = false;
    }

    /// The request of this attempt, as written upstream, is a HEAD: its answer has no
    /// body whatever its head says (RFC 9112 §6.3 item 1). Read from the bytes sent, not
    /// the client's method: a director may have changed it, and an answer read with the
    /// wrong method waits for a body that never comes (or takes the next answer's bytes
    /// for one).
    fn head_request(&self) -> bool {
        self.ex.attempts[self.attempt].1.starts_with(b"HEAD ")
    }
}

impl<T: Transport> Conn<T> {
    fn fwd(&mut self) -> &mut Fwd {
        match &mut self.phase {
            Phase::Forward(f) => f,
            _ => unreachable!("an exchange call on a connection in another phase"),
        }
    }

    /// The handler asked for an upstream's answer: start the exchange.
    pub(super) fn start_forward(&mut self, ctx: &mut Ctx, start: ForwardStart) -> Step {
        let ForwardStart {
            mut ex,
            method,
            version,
            close,
            client_expects,
        } = start;
        let upload = ex.upload.map(|u| Uploading {
            remaining: u.len,
            client_expects,
        });
        let respond = std::mem::replace(&mut ex.respond, Box::new(Gone));
        let limits = ex.limits;
        self.phase = Phase::Forward(Box::new(Fwd {
            ex,
            respond: Some(respond),
            up: None,
            reused: false,
            retried: false,
            stage: Stage::Connecting,
            sent: 0,
            attempt: 0,
            cc: ClientConn::new(limits),
            // From the loop's pool, and back to it when the exchange ends.
            input: ctx.bufs.take_write(),
            body: ctx.bufs.take_write(),
            up_eof: false,
            answered: false,
            interim: 0,
            answer_bytes: 0,
            paused: false,
            method,
            version,
            close,
            upload,
            sends_rest: false,
        }));
        // The answers before this one go out meanwhile.
        self.flush(ctx)?;
        self.fwd_connect(ctx)
    }

    /// Takes a pooled connection to the upstream, or starts a new one.
    fn fwd_connect(&mut self, ctx: &mut Ctx) -> Step {
        let (slot, gen_) = (self.token, self.gen_);
        let f = self.fwd();
        let addr = f.ex.attempts[f.attempt].0;
        // A relayed body cannot be sent again: it never goes on a pooled connection that
        // may turn out closed.
        let pooled = match f.ex.upload {
            None => ctx.take_upstream(addr, slot, gen_),
            Some(_) => None,
        };
        let (sock, reused) = match pooled {
            Some(id) => (id, true),
            None => match mio::net::TcpStream::connect(addr) {
                Ok(s) => match ctx.new_upstream(s, slot, gen_) {
                    Ok(id) => (id, false),
                    Err(e) => return self.fwd_fail(ctx, ExchangeError::Io(e)),
                },
                Err(e) => return self.fwd_fail(ctx, ExchangeError::Connect(e)),
            },
        };
        let f = self.fwd();
        f.up = Some(sock);
        f.reused = reused;
        f.sent = 0;
        if reused {
            f.start_sending();
        } else {
            f.stage = Stage::Connecting;
        }
        let timeout = if reused {
            f.ex.header_timeout
        } else {
            f.ex.connect_timeout
        };
        trace!(
            "conn={} upstream {addr}: {}",
            self.id,
            if reused {
                "pooled connection"
            } else {
                "connecting"
            }
        );
        self.arm(ctx, Deadline::Upstream, timeout);
        if reused {
            return self.fwd_write(ctx);
        }
        Ok(())
    }

    /// An event on the upstream socket.
    pub fn on_upstream(&mut self, ctx: &mut Ctx, readable: bool, writable: bool) -> Step {
        if !matches!(self.phase, Phase::Forward(_)) {
            return Ok(());
        }
        let stage = self.fwd().stage;
        if stage == Stage::Connecting && (writable || readable) {
            let f = self.fwd();
            let sock = ctx.upstream_sock(f.up.expect("connecting"));
            match sock.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fwd_fail(ctx, ExchangeError::Connect(e)),
            }
            match sock.peer_addr() {
                Ok(_) => {
                    f.start_sending();
                    let t = f.ex.header_timeout;
                    self.arm(ctx, Deadline::Upstream, t);
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return self.fwd_fail(ctx, ExchangeError::Connect(e)),
            }
        }
        let (stage, sends_rest) = (self.fwd().stage, self.fwd().sends_rest);
        match stage {
            Stage::Sending => self.fwd_write(ctx)?,
            Stage::Body if writable => self.fwd_pump_body(ctx)?,
            _ if writable && sends_rest => {
                let id = self.id;
                self.fwd().write_rest(ctx, id);
            }
            _ => {}
        }
        if readable {
            self.fwd_read(ctx)?;
        }
        Ok(())
    }

    /// Writes the request.
    fn fwd_write(&mut self, ctx: &mut Ctx) -> Step {
        let f = self.fwd();
        match f.write_request(ctx.upstream_sock(f.up.expect("sending"))) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return self.fwd_write_failed(ctx, e),
        }
        let f = self.fwd();
        match f.ex.upload {
            None => {
                f.stage = Stage::Head;
                trace!("conn={} upstream request written", self.id);
                Ok(())
            }
            Some(u) if u.expect_continue => {
                f.stage = Stage::Continue;
                trace!("conn={} upstream head written: waiting for 100", self.id);
                self.arm(ctx, Deadline::Upstream, u.continue_timeout);
                Ok(())
            }
            Some(_) => self.fwd_body_go(ctx),
        }
    }

    /// Writing the request failed. An upstream that refuses a body answers (a `413`) and
    /// closes without reading the rest, so the write fails with that answer already in
    /// the socket (RFC 9112 §9.6: the client "SHOULD ... monitor the connection for an
    /// error status code" while it sends a body): what it sent is read first, and that
    /// answer is the client's. Without one, the failure is (a pooled connection found
    /// closed is replaced once, `fwd_fail`).
    fn fwd_write_failed(&mut self, ctx: &mut Ctx, e: io::Error) -> Step {
        debug!("conn={} writing the request upstream failed: {e}", self.id);
        let f = self.fwd();
        // The upstream did not take the whole request: its connection carries no other.
        // (The answer's decoder has been reading since sending began: what it took of an
        // answer already is kept.)
        f.cc.forbid_reuse();
        f.stage = Stage::Head;
        if f.upload.take().is_some() {
            // A streamed body not taken yet: it must never be read as requests.
            f.close = true;
            self.unread_input = true;
        }
        self.fwd_answer_or_fail(ctx, e)
    }

    /// A write upstream failed: what the upstream sent is read, and its answer (if a head
    /// came) is the client's; without one the exchange fails with `e`.
    fn fwd_answer_or_fail(&mut self, ctx: &mut Ctx, e: io::Error) -> Step {
        self.fwd_read(ctx)?;
        match &self.phase {
            Phase::Forward(f) if f.stage == Stage::Head => self.fwd_fail(ctx, ExchangeError::Io(e)),
            _ => Ok(()),
        }
    }

    /// The upstream wants the body (it said `100`, or it was not asked): the client is
    /// told to send it when it waits for that, and what it sent is relayed.
    fn fwd_body_go(&mut self, ctx: &mut Ctx) -> Step {
        let f = self.fwd();
        f.stage = Stage::Body;
        let (t, version) = (f.ex.read_timeout, f.version);
        let tell = f
            .upload
            .as_mut()
            .is_some_and(|u| std::mem::take(&mut u.client_expects));
        trace!("conn={} relaying the request body upstream", self.id);
        self.arm(ctx, Deadline::Upstream, t);
        if tell {
            self.send_continue(ctx, version);
        }
        self.fwd_pump_body(ctx)
    }

    /// Writes the client's body bytes read so far to the upstream, reading the client on
    /// as the upstream takes them: at most a window of the body is held (the read
    /// buffer, capped at `stream_buffer_bytes`), and neither side is read or written
    /// faster than the other allows.
    pub(super) fn fwd_pump_body(&mut self, ctx: &mut Ctx) -> Step {
        let step = self.fwd_pump_body_inner(ctx);
        self.recharge(ctx);
        step
    }

    fn fwd_pump_body_inner(&mut self, ctx: &mut Ctx) -> Step {
        loop {
            let Phase::Forward(f) = &mut self.phase else {
                return Ok(());
            };
            if f.stage != Stage::Body {
                return Ok(());
            }
            let remaining = f.upload.as_ref().map_or(0, |u| u.remaining);
            if remaining == 0 {
                f.upload = None;
                f.stage = Stage::Head;
                let t = f.ex.header_timeout;
                trace!("conn={} upstream request written (body relayed)", self.id);
                self.arm(ctx, Deadline::Upstream, t);
                // The answer may be in already.
                return self.fwd_process(ctx);
            }
            let avail = self.rbuf.as_ref().map_or(0, |b| b.len);
            let take = (avail as u64).min(remaining) as usize;
            if take == 0 {
                if self.peer_eof {
                    return Err(Close::PeerClosedMidRequest);
                }
                if self.read_paused {
                    // The window had filled up; there is room again.
                    self.read_paused = false;
                    if self.fill(ctx, false)? > 0 {
                        continue;
                    }
                    if self.peer_eof {
                        return Err(Close::PeerClosedMidRequest);
                    }
                }
                // The client's next bytes bring us back; it has the server's read timeout
                // to send them, from its last progress (as any streamed upload).
                self.arm(ctx, Deadline::Upstream, ctx.cfg.read_timeout);
                return Ok(());
            }
            let sock = ctx.upstream_sock(f.up.expect("relaying the body"));
            let rbuf = self.rbuf.as_ref().expect("bytes are buffered");
            match io::Write::write(&mut &*sock, &rbuf.bytes[..take]) {
                Ok(0) => return self.fwd_body_failed(ctx, io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    if let Some(u) = f.upload.as_mut() {
                        u.remaining -= n as u64;
                    }
                    f.sent += n;
                    self.consume_read(ctx, n);
                    if self.read_paused && self.buffered() == 0 {
                        self.read_paused = false;
                        self.fill(ctx, false)?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The upstream's writability brings us back, within its write timeout
                    // (from its last progress).
                    let t = f.ex.write_timeout;
                    self.arm(ctx, Deadline::Upstream, t);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fwd_body_failed(ctx, e),
            }
        }
    }

    /// Writing the body upstream failed: an upstream that refuses a body answers (a 413)
    /// and closes, so what it sent is read first — that answer is the client's; without
    /// one, the client gets the failure's. Either way its connection closes after the
    /// answer (the rest of its body is not read).
    fn fwd_body_failed(&mut self, ctx: &mut Ctx, e: io::Error) -> Step {
        debug!("conn={} writing the body upstream failed: {e}", self.id);
        let f = self.fwd();
        f.upload = None;
        f.stage = Stage::Head;
        f.close = true;
        self.unread_input = true;
        self.fwd_answer_or_fail(ctx, e)
    }

    /// The upstream answered before it had the whole request (or instead of `100`): that
    /// answer is the client's. The rest of a buffered request is still written as the
    /// upstream takes it (`Fwd::sends_rest`: it may read the body after answering); the
    /// rest of a relayed body is not sent, and its client is closed after the answer (the
    /// rest of its body is not read). Either way the connection carries no other request
    /// (whatever the answer says).
    fn fwd_answered_early(&mut self, status: u16) {
        let id = self.id;
        let f = self.fwd();
        debug!(
            "conn={id} upstream answered {status} before the whole request: not sending the rest"
        );
        f.cc.forbid_reuse();
        if f.stage == Stage::Sending && f.upload.is_none() {
            // A buffered request: the rest is written as the upstream takes it.
            f.sends_rest = true;
        }
        if f.upload.take().is_some() {
            f.close = true;
            self.unread_input = true;
        }
    }

    /// Reads the upstream and acts on what arrived.
    fn fwd_read(&mut self, ctx: &mut Ctx) -> Step {
        // The loop's scratch buffer (a re-entrant call, from an exchange that ended and
        // started the next one, gets a fresh one).
        let mut buf = std::mem::take(&mut ctx.upstream_scratch);
        if buf.len() < READ_CHUNK {
            buf = vec![0u8; READ_CHUNK];
        }
        let step = self.fwd_read_into(ctx, &mut buf);
        ctx.upstream_scratch = buf;
        step
    }

    fn fwd_read_into(&mut self, ctx: &mut Ctx, buf: &mut [u8]) -> Step {
        let mut taken = 0;
        loop {
            if taken >= RELAY_TURN_BYTES {
                // This readiness had its share: the rest is read on the next turn (no new
                // edge comes for bytes already there), after the loop's other work.
                ctx.deferred_upstreams.push((self.token, self.gen_));
                return Ok(());
            }
            // The exchange may have ended (and the connection moved on) in the last pass.
            let Phase::Forward(f) = &mut self.phase else {
                return Ok(());
            };
            if f.paused
                || f.up_eof
                || !matches!(
                    f.stage,
                    Stage::Sending | Stage::Continue | Stage::Body | Stage::Head | Stage::Relay(_)
                )
            {
                return Ok(());
            }
            let sock = ctx.upstream_sock(f.up.expect("reading"));
            match io::Read::read(&mut &*sock, buf) {
                Ok(0) => f.up_eof = true,
                Ok(n) => {
                    f.answered = true;
                    f.input.extend_from_slice(&buf[..n]);
                    taken += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fwd_io_error(ctx, e),
            }
            self.fwd_process(ctx)?;
        }
    }

    /// Decodes what was read: the head goes to a worker, body bytes to the client.
    fn fwd_process(&mut self, ctx: &mut Ctx) -> Step {
        loop {
            let Phase::Forward(f) = &mut self.phase else {
                return Ok(());
            };
            if !matches!(
                f.stage,
                Stage::Sending | Stage::Continue | Stage::Body | Stage::Head | Stage::Relay(_)
            ) {
                return Ok(());
            }
            let eof = f.up_eof;
            let polled = f.cc.poll(&f.input, eof, &mut f.body);
            let (used, ev) = match polled {
                Ok(r) => r,
                Err(e) => {
                    if !matches!(f.stage, Stage::Relay(_)) {
                        let e = if f.input.is_empty() && eof {
                            ExchangeError::Io(io::ErrorKind::UnexpectedEof.into())
                        } else {
                            ExchangeError::Protocol(e)
                        };
                        return self.fwd_fail(ctx, e);
                    }
                    debug!("conn={} upstream body failed: {e}", self.id);
                    return self.fwd_relay_failed(ctx, 502);
                }
            };
            f.input.drain(..used);
            match ev {
                Event::NeedMore => {
                    if matches!(f.stage, Stage::Relay(_)) {
                        let t = f.ex.read_timeout;
                        self.arm(ctx, Deadline::Upstream, t);
                        // What this read relayed (and a head decided just before it) goes
                        // out in one write.
                        self.flush(ctx)?;
                    }
                    return Ok(());
                }
                // A `100` comes only when the request carried the client's `Expect`: the
                // loop tells the client itself when the body goes (`fwd_body_go`).
                Event::Informational(head) if head.status == 100 => {
                    if f.stage == Stage::Continue {
                        self.fwd_body_go(ctx)?;
                    }
                }
                Event::Informational(head) => self.fwd_interim(ctx, &head)?,
                Event::Head(head) => {
                    if matches!(f.stage, Stage::Sending | Stage::Continue | Stage::Body) {
                        self.fwd_answered_early(head.status);
                    }
                    self.deadlines.read = None;
                    if let Some(answer) = self.fwd_head_on_loop(ctx, &head) {
                        // No user code to run: decided here, without a worker's round trip.
                        return self.on_forwarded(ctx, answer);
                    }
                    let f = self.fwd();
                    f.stage = Stage::AtWorker;
                    return self.fwd_job(ctx, Ok(head));
                }
                Event::Data(_) => {
                    self.fwd_relay_body(ctx)?;
                    let f = self.fwd();
                    if f.paused {
                        return Ok(());
                    }
                }
                Event::End { reusable } => return self.fwd_end(ctx, reusable),
            }
        }
    }

    /// An interim answer (a `102`, a `103` with the `Link` fields to preload), before the
    /// final one. RFC 9110 §15.2: "A proxy MUST forward 1xx responses unless the proxy
    /// itself requested the generation of the 1xx response" — rewritten as a final head is
    /// (hop-by-hop fields removed, `Respond::interim_fields`); and "A server MUST NOT send
    /// a 1xx response to an HTTP/1.0 client": dropped for one. At most `MAX_INTERIM` per
    /// exchange, and none while the client's unwritten bytes are at `stream_buffer_bytes`:
    /// a storm of them cannot grow the buffer.
    fn fwd_interim(&mut self, ctx: &mut Ctx, head: &crate::client::ResponseHead) -> Step {
        let pending = self.wbuf.len() - self.wpos;
        let Phase::Forward(f) = &mut self.phase else {
            unreachable!("relaying an interim answer")
        };
        if f.version == crate::http::Version::Http10
            || f.interim >= MAX_INTERIM
            || pending >= ctx.cfg.stream_buffer_bytes
        {
            trace!("conn={} upstream {}: not relayed", self.id, head.status);
            return Ok(());
        }
        let Some(fields) = f
            .respond
            .as_ref()
            .and_then(|r| r.interim_fields(f.attempt, head))
        else {
            return Ok(());
        };
        f.interim += 1;
        trace!("conn={} relaying the upstream's {}", self.id, head.status);
        encode::write_head(
            &mut self.wbuf,
            head.status,
            ctx.date(),
            fields.iter().map(|(n, v)| (&**n, v.as_bytes())),
            BodyFraming::None,
            ConnectionField::Omit,
        );
        self.flush(ctx).map(drop)
    }

    /// Appends the decoded body bytes to the client's buffer in its framing; pauses the
    /// upstream when the client falls behind.
    fn fwd_relay_body(&mut self, ctx: &mut Ctx) -> Step {
        let Phase::Forward(f) = &mut self.phase else {
            unreachable!("relaying")
        };
        let Stage::Relay(relay) = f.stage else {
            f.body.clear();
            return Ok(());
        };
        let before = self.wbuf.len();
        match relay {
            Relay::Chunked if !f.body.is_empty() => encode::write_chunk(&mut self.wbuf, &f.body),
            Relay::Raw => self.wbuf.extend_from_slice(&f.body),
            _ => {}
        }
        f.answer_bytes += self.wbuf.len() - before;
        f.body.clear();
        // Written when this read's events are done (`fwd_process`), or now when the
        // client is that far behind.
        if self.wbuf.len() - self.wpos >= ctx.cfg.stream_buffer_bytes {
            self.flush(ctx)?;
            if self.wbuf.len() - self.wpos >= ctx.cfg.stream_buffer_bytes {
                self.fwd().paused = true;
            }
        }
        Ok(())
    }

    /// The upstream's body failed (invalid, cut off, stalled). Once a byte of the client's
    /// answer went out its status cannot change: the connection is cut, the body without
    /// its last chunk, so the client can tell it is incomplete — and with a reset, for the
    /// client whose body is close-delimited (HTTP/1.0), to which an orderly close would say
    /// the truncated body is complete (RFC 9112 §8: such a response "is considered
    /// complete unless an error was indicated by the underlying connection"; nginx sends
    /// it a FIN). Until then the answer is
    /// still the gateway's error, in place of the unwritten head and body bytes: `502`
    /// (RFC 9110 §15.6.3: "received an invalid response from an inbound server") or `504`
    /// for a body that stopped coming (§15.6.5), and the connection closes after it.
    fn fwd_relay_failed(&mut self, ctx: &mut Ctx, status: u16) -> Step {
        let unwritten = self.wbuf.len() - self.wpos;
        if unwritten < self.fwd().answer_bytes {
            // An HTTP/1.0 client's relayed body may end with the close: it must not take
            // the cut for that end (a reset; TLS: no close_notify). An HTTP/1.1 client's is
            // chunked or has a length, which say it is incomplete: an orderly close, which
            // does not throw away the complete answers before it still in the kernel.
            if self.fwd().version == crate::http::Version::Http10 {
                self.reset_on_close();
            }
            return Err(Close::UpstreamFailed);
        }
        let Phase::Forward(f) = std::mem::replace(&mut self.phase, Phase::Closing) else {
            unreachable!("relaying")
        };
        debug!(
            "conn={} nothing of the answer went out: {status} instead",
            self.id
        );
        self.wbuf.truncate(self.wbuf.len() - f.answer_bytes);
        self.release_forward(ctx, f);
        let reason = encode::reason(status).as_bytes();
        encode::write_head(
            &mut self.wbuf,
            status,
            ctx.date(),
            [("Content-Type", &b"text/plain; charset=utf-8"[..])],
            BodyFraming::Length(reason.len() as u64 + 1),
            ConnectionField::Close,
        );
        self.wbuf.extend_from_slice(reason);
        self.wbuf.push(b'\n');
        self.unread_input = true;
        self.deadlines.read = None;
        self.phase = Phase::Write(After::Close);
        self.write_and_continue(ctx)
    }

    /// The answer's body ended: the upstream connection goes back to the pool (when it
    /// may carry another request) and the client's connection goes on.
    fn fwd_end(&mut self, ctx: &mut Ctx, reusable: bool) -> Step {
        let Phase::Forward(mut f) = std::mem::replace(&mut self.phase, Phase::Write(After::Close))
        else {
            unreachable!("ending an exchange")
        };
        if f.stage == Stage::Relay(Relay::Chunked) {
            encode::write_last_chunk(&mut self.wbuf);
        }
        if let Some(up) = f.up.take() {
            if reusable && f.input.is_empty() && !f.up_eof {
                ctx.put_upstream(up, f.ex.attempts[f.attempt].0, f.ex.max_idle);
            } else {
                ctx.close_upstream(up);
            }
        }
        ctx.bufs.put_write(std::mem::take(&mut f.input));
        ctx.bufs.put_write(std::mem::take(&mut f.body));
        self.deadlines.read = None;
        trace!("conn={} upstream answer relayed", self.id);
        self.phase = Phase::Write(if f.close {
            After::Close
        } else {
            After::KeepAlive
        });
        self.write_and_continue(ctx)
    }

    /// The exchange failed before the head: a pooled connection that was stale is
    /// replaced once (idempotent requests); otherwise a worker writes the error answer.
    fn fwd_io_error(&mut self, ctx: &mut Ctx, e: io::Error) -> Step {
        let f = self.fwd();
        match f.stage {
            Stage::Relay(_) => {
                debug!("conn={} upstream failed mid-body: {e}", self.id);
                self.fwd_relay_failed(ctx, 502)
            }
            _ => self.fwd_fail(ctx, ExchangeError::Io(e)),
        }
    }

    fn fwd_fail(&mut self, ctx: &mut Ctx, e: ExchangeError) -> Step {
        let id = self.id;
        let f = self.fwd();
        if let Some(up) = f.up.take() {
            ctx.close_upstream(up);
        }
        if f.reused && !f.retried && f.ex.idempotent && !f.answered && !e.is_timeout() {
            debug!("conn={id} pooled upstream connection failed ({e}): retrying on a new one");
            f.retried = true;
            f.input.clear();
            f.up_eof = false;
            return self.fwd_connect_fresh(ctx);
        }
        if e.is_connect() && !f.answered && f.sent == 0 {
            if let Some(r) = f.respond.as_ref() {
                r.refused(f.attempt);
            }
            if f.attempt + 1 < f.ex.attempts.len() {
                debug!(
                    "conn={id} upstream {} refused ({e}): trying the next",
                    f.ex.attempts[f.attempt].0
                );
                f.attempt += 1;
                f.retried = false;
                return self.fwd_connect(ctx);
            }
        }
        debug!("conn={id} upstream {}: {e}", f.ex.attempts[f.attempt].0);
        if f.upload.take().is_some() {
            // The client's body was not all taken: what is left of it must never be read
            // as requests. The connection closes after the error's answer.
            f.close = true;
            self.unread_input = true;
        }
        let f = self.fwd();
        f.stage = Stage::AtWorker;
        self.deadlines.read = None;
        self.fwd_job(ctx, Err(e))
    }

    fn fwd_connect_fresh(&mut self, ctx: &mut Ctx) -> Step {
        let f = self.fwd();
        let addr = f.ex.attempts[f.attempt].0;
        ctx.forget_upstreams(addr);
        self.fwd_connect(ctx)
    }

    /// The client's head for `head`, when the exchange's decider can give it without user
    /// code (no response hook, nobody waiting for the status).
    fn fwd_head_on_loop(
        &mut self,
        ctx: &mut Ctx,
        head: &crate::client::ResponseHead,
    ) -> Option<Forwarded> {
        let (token, gen_) = (self.token, self.gen_);
        let f = self.fwd();
        if !f.ex.on_status.is_empty() || head.status < 200 {
            return None;
        }
        let lh = f.respond.as_ref()?.head_on_loop(f.attempt, head)?;
        let mut fields = lh.fields;
        // Headers the handler's middleware set replace the upstream's of the same name.
        for (n, v) in &f.ex.extra_headers {
            fields.retain(|(m, _)| !m.eq_ignore_ascii_case(n));
            fields.push((
                std::borrow::Cow::Borrowed(&**n),
                std::borrow::Cow::Borrowed(&**v),
            ));
        }
        let length = crate::pool::relayed_length(head, f.method);
        // While the server drains, every answer says `Connection: close`.
        let draining = ctx.answers_close.load(std::sync::atomic::Ordering::Acquire);
        let (method, version, close) = (f.method, f.version, f.close || draining);
        let mut out = ctx.bufs.take_write();
        let date = *ctx.date();
        let (relay, close) = crate::pool::encode_forward_fields(
            &mut out,
            lh.status,
            fields.iter().map(|(n, v)| (&**n, v.as_bytes())),
            length,
            method,
            version,
            close,
            &date,
        );
        ctx.stats().count_request(method, lh.status, None);
        Some(Forwarded {
            token,
            gen_,
            out,
            relay: Some(relay),
            close,
        })
    }

    /// Hands the head (or the failure) to a worker.
    fn fwd_job(
        &mut self,
        ctx: &mut Ctx,
        what: Result<crate::client::ResponseHead, ExchangeError>,
    ) -> Step {
        let (token, gen_) = (self.token, self.gen_);
        let f = self.fwd();
        let job = ForwardJob {
            loop_id: ctx.loop_id,
            token,
            gen_,
            respond: f
                .respond
                .take()
                .expect("the exchange's answer is decided once"),
            what,
            attempt: f.attempt,
            extra_headers: std::mem::take(&mut f.ex.extra_headers),
            on_status: std::mem::take(&mut f.ex.on_status),
            method: f.method,
            version: f.version,
            close: f.close,
        };
        // Not refused for a full queue: the request was accepted, and its answer must
        // come (one such job per exchange).
        if let Err(e) = ctx.jobs.send_always(Job::Forward(job)) {
            drop(e.into_inner());
            return Err(Close::UpstreamFailed);
        }
        Ok(())
    }

    /// The worker decided the client's answer.
    pub fn on_forwarded(&mut self, ctx: &mut Ctx, a: Forwarded) -> Step {
        if !matches!(self.phase, Phase::Forward(_)) {
            return Ok(());
        }
        self.fwd().answer_bytes = a.out.len();
        if self.wbuf.is_empty() {
            let old = std::mem::replace(&mut self.wbuf, a.out);
            self.wpos = 0;
            ctx.bufs.put_write(old);
        } else {
            self.wbuf.extend_from_slice(&a.out);
            ctx.bufs.put_write(a.out);
        }
        let f = self.fwd();
        f.close = a.close;
        match a.relay {
            // No body (HEAD, 204, 304) still ends through the client core, which knows
            // whether the connection may carry another request (`Connection: close`).
            Some(relay) if f.up.is_some() => {
                f.stage = Stage::Relay(relay);
                let t = f.ex.read_timeout;
                self.arm(ctx, Deadline::Upstream, t);
                // Body bytes may have come with the head: the head goes out with them, in
                // one write (`fwd_process` writes when it has decoded what was read).
                self.fwd_process(ctx)?;
                self.fwd_read(ctx)
            }
            _ => {
                // A complete answer (an error page, or a hook's refusal): the upstream's
                // body is not read; its connection cannot be reused.
                let f = self.fwd();
                if let Some(up) = f.up.take() {
                    ctx.close_upstream(up);
                }
                let close = f.close;
                self.deadlines.read = None;
                self.phase = Phase::Write(if close {
                    After::Close
                } else {
                    After::KeepAlive
                });
                self.write_and_continue(ctx)
            }
        }
    }

    /// The client's socket took bytes: relay on if the upstream was paused for it.
    pub(super) fn fwd_writable(&mut self, ctx: &mut Ctx) -> Step {
        self.flush(ctx)?;
        let pending = self.wbuf.len() - self.wpos;
        let f = self.fwd();
        if f.paused && pending < ctx.cfg.stream_buffer_bytes / 2 {
            f.paused = false;
            self.fwd_process(ctx)?;
            return self.fwd_read(ctx);
        }
        Ok(())
    }

    /// The upstream deadline: no connection, no head, or no body progress in time.
    pub(super) fn fwd_deadline(&mut self, ctx: &mut Ctx) -> Step {
        let buffered = self.buffered();
        let f = self.fwd();
        match f.stage {
            Stage::Connecting => self.fwd_fail(ctx, ExchangeError::ConnectTimeout),
            // No word from the upstream: the body goes anyway (as curl and Go's client do).
            Stage::Continue => self.fwd_body_go(ctx),
            Stage::Body if buffered > 0 => {
                // The upstream takes no more of the body.
                let f = self.fwd();
                f.close = true;
                self.unread_input = true;
                self.fwd_fail(ctx, ExchangeError::Io(io::ErrorKind::TimedOut.into()))
            }
            Stage::Body => {
                // The client sends no more of its body: the upstream's connection goes
                // (its request is unfinished), and the client is answered as any slow body.
                let Phase::Forward(f) = std::mem::replace(&mut self.phase, Phase::Closing) else {
                    unreachable!("checked above")
                };
                self.release_forward(ctx, f);
                self.answer_error(ctx, crate::error::Error::BodyTimeout)
            }
            Stage::Sending | Stage::Head => self.fwd_fail(ctx, ExchangeError::HeaderTimeout),
            Stage::Relay(_) if f.paused => {
                // The client is the slow one: its write deadline governs.
                let t = f.ex.read_timeout;
                self.arm(ctx, Deadline::Upstream, t);
                Ok(())
            }
            Stage::Relay(_) => {
                debug!("conn={} upstream body stalled", self.id);
                self.fwd_relay_failed(ctx, 504)
            }
            Stage::AtWorker => Ok(()),
        }
    }

    /// The connection is torn down mid-exchange: the upstream socket goes (never back to
    /// the pool: its answer is unfinished), and the answer's decider is dropped on a
    /// worker.
    pub(super) fn release_forward(&mut self, ctx: &mut Ctx, mut f: Box<Fwd>) {
        if let Some(up) = f.up.take() {
            ctx.close_upstream(up);
        }
        ctx.bufs.put_write(std::mem::take(&mut f.input));
        ctx.bufs.put_write(std::mem::take(&mut f.body));
        // (`f.ex.respond` is only the `Gone` stand-in left by `start_forward`.)
        if let Some(r) = f.respond.take() {
            crate::pool::drop_off_loop(&ctx.jobs, Box::new(r));
        }
    }
}

/// Stands in for a decider already taken.
struct Gone;

impl Respond for Gone {
    fn head(
        self: Box<Self>,
        _attempt: usize,
        _head: &crate::client::ResponseHead,
    ) -> Result<crate::Response, crate::Response> {
        Err(crate::Response::error(502, ""))
    }
    fn error(self: Box<Self>, _attempt: usize, _err: ExchangeError) -> crate::Response {
        crate::Response::error(502, "")
    }
    fn refused(&self, _attempt: usize) {}
}

/// The loop's upstream connections: the busy ones (each serving one client connection's
/// exchange) and the idle ones kept per address. Each stays registered with the poll from
/// its connect to its close, under `FORWARD_BASE + id`, so reusing one costs no
/// registration, only a read that must find nothing ([`quiet`], also done when it is put
/// back); an idle one that turns readable was closed (or spoken to) by its upstream and is
/// dropped.
#[derive(Default)]
pub(crate) struct UpstreamPool {
    conns: Vec<Option<UpConn>>,
    free: Vec<usize>,
    idle: std::collections::HashMap<std::net::SocketAddr, Vec<usize>>,
}

struct UpConn {
    sock: mio::net::TcpStream,
    state: UpState,
}

enum UpState {
    Idle {
        addr: std::net::SocketAddr,
        since: Instant,
    },
    Busy {
        slot: usize,
        gen_: u32,
    },
}

/// How long a pooled upstream connection is kept unused.
const IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(60);

impl UpstreamPool {
    /// Registers a new connection for the client connection in `slot` (generation `gen_`).
    pub fn insert(
        &mut self,
        registry: &mio::Registry,
        mut sock: mio::net::TcpStream,
        slot: usize,
        gen_: u32,
    ) -> io::Result<usize> {
        let id = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if let Err(e) = registry.register(
            &mut sock,
            Token(FORWARD_BASE + id),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.free.push(id);
            return Err(e);
        }
        self.conns[id] = Some(UpConn {
            sock,
            state: UpState::Busy { slot, gen_ },
        });
        Ok(id)
    }

    /// An idle connection to `addr`, now serving `slot`; `None` when there is none.
    pub fn take(
        &mut self,
        registry: &mio::Registry,
        addr: std::net::SocketAddr,
        now: Instant,
        slot: usize,
        gen_: u32,
    ) -> Option<usize> {
        loop {
            let id = self.idle.get_mut(&addr)?.pop()?;
            let Some(c) = self.conns[id].as_mut() else {
                continue;
            };
            match c.state {
                // Looked at once more: an EOF or bytes that came while it was idle may
                // not have been seen yet (its event may come later in this very turn).
                UpState::Idle { since, .. }
                    if now.saturating_duration_since(since) <= IDLE_FOR && quiet(&c.sock) =>
                {
                    c.state = UpState::Busy { slot, gen_ };
                    return Some(id);
                }
                _ => self.close(registry, id),
            }
        }
    }

    pub fn sock(&self, id: usize) -> &mio::net::TcpStream {
        &self.conns[id]
            .as_ref()
            .expect("a live upstream connection")
            .sock
    }

    /// The exchange on `id` is over and the connection may carry another: kept idle for
    /// `addr` (at most `max`), or closed. Kept only when nothing is left in its socket:
    /// the read loop stops where the answer ends, so an EOF or bytes that came in the same
    /// readable edge are still unseen, and no new event will announce them.
    pub fn put(
        &mut self,
        registry: &mio::Registry,
        id: usize,
        addr: std::net::SocketAddr,
        max: usize,
        now: Instant,
    ) {
        let list = self.idle.entry(addr).or_default();
        match self.conns[id].as_mut() {
            Some(c) if list.len() < max && quiet(&c.sock) => {
                c.state = UpState::Idle { addr, since: now };
                list.push(id);
            }
            _ => self.close(registry, id),
        }
    }

    pub fn close(&mut self, registry: &mio::Registry, id: usize) {
        if let Some(mut c) = self.conns[id].take() {
            let _ = registry.deregister(&mut c.sock);
            if let UpState::Idle { addr, .. } = c.state
                && let Some(list) = self.idle.get_mut(&addr)
            {
                list.retain(|&i| i != id);
            }
            self.free.push(id);
        }
    }

    /// Closes the idle connections to `addr` (one turned out stale: the rest are as old).
    pub fn forget(&mut self, registry: &mio::Registry, addr: std::net::SocketAddr) {
        for id in self.idle.remove(&addr).unwrap_or_default() {
            self.close(registry, id);
        }
    }

    /// An event on connection `id`: the client connection it serves, or `None` for an
    /// idle one — which, when readable, is looked at and closed if its upstream closed it
    /// or sent what nobody asked for.
    pub fn route(
        &mut self,
        registry: &mio::Registry,
        id: usize,
        readable: bool,
    ) -> Option<(usize, u32)> {
        let c = self.conns.get(id)?.as_ref()?;
        match c.state {
            UpState::Busy { slot, gen_ } => Some((slot, gen_)),
            UpState::Idle { .. } => {
                if readable && !quiet(&c.sock) {
                    self.close(registry, id);
                }
                None
            }
        }
    }
}

/// True when an upstream connection between exchanges has nothing to say: a read finds
/// no byte and no EOF. A connection the upstream closed (RFC 9112 §9.3: a client must
/// expect an asynchronous close) must not carry a request, and bytes after a complete
/// answer are no answer to anything: read as the next request's, they would put every
/// response after them out of step (RFC 9112 §6.3). Either way it cannot be reused. (On
/// the edge-triggered socket a read that would block lets the next event come as usual.)
fn quiet(sock: &mio::net::TcpStream) -> bool {
    let mut probe = [0u8; 1];
    loop {
        match io::Read::read(&mut &*sock, &mut probe) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
}
