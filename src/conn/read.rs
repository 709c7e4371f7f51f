//! Reading one connection: fill the read buffer, find and parse request heads, follow
//! bodies, and dispatch every complete request as one batch — or answer a protocol error.
//!
//! Runs on the loop thread; never blocks, never runs user code, never writes except the
//! loop's own short answers (`100 Continue`, an error, a `503`).

use std::io;
use std::sync::Arc;

use log::{debug, trace};

use super::{
    After, BodyProgress, BodyRead, Close, Conn, Deadline, HeadRead, InFlight, Phase, Step,
    Transport,
};
use crate::error::Error;
use crate::event_loop::Ctx;
use crate::http::decode::ChunkedDecoder;
use crate::http::encode::{self, BodyFraming, ConnectionField};
use crate::http::parse::{self, Framing};
use crate::http::{Span, Version};
use crate::pool::{BatchJob, Job, ReqMeta};
use crate::request::BodyRef;
use crate::telemetry::{Timeline, Trace};

/// Reads of 4 KiB a lingering close discards per loop turn (256 KiB).
const DISCARD_READS_PER_TURN: usize = 64;

impl<T: Transport> Conn<T> {
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

    pub(super) fn read_step(&mut self, ctx: &mut Ctx, hung_up: bool) -> Step {
        match &self.phase {
            Phase::Closing => return self.discard_input(ctx),
            #[cfg(feature = "ws")]
            Phase::Ws(_) => return self.ws_read(ctx, hung_up),
            #[cfg(feature = "proxy")]
            Phase::Forward(_) => {
                // Requests pipelined behind the forwarded one wait in the buffer; a
                // client that leaves ends the exchange (as nginx does by default).
                self.fill(ctx, hung_up)?;
                if let Phase::Forward(f) = &self.phase
                    && f.relays_body()
                {
                    return self.fwd_pump_body(ctx);
                }
                return if self.peer_eof {
                    Err(Close::PeerClosedMidRequest)
                } else {
                    Ok(())
                };
            }
            Phase::Dispatched(f) if f.close.is_some() => return Ok(()),
            _ => {}
        }
        if !self.io.is_ready() && !self.drive_handshake(ctx)? {
            return Ok(()); // the TLS handshake goes on (conn/handshake.rs)
        }
        let n = self.fill(ctx, hung_up)?;
        match &mut self.phase {
            Phase::Idle | Phase::ReadHead(_) | Phase::ReadBody(_) => {
                if matches!(self.phase, Phase::Idle) && (n > 0 || self.io.input_pending()) {
                    // The header deadline counts from the first byte of a request — over
                    // TLS, from its first record's first byte, which yields no plaintext
                    // until the record is complete.
                    self.phase = Phase::ReadHead(HeadRead::default());
                    self.arm(ctx, Deadline::Header, ctx.cfg.header_read_timeout);
                }
                self.process(ctx)
            }
            Phase::Dispatched(f) => {
                if self.peer_eof {
                    // The client sent its FIN after its requests were handed over. A FIN
                    // is only a half-close: the client may still read (RFC 9112 §9.6),
                    // and clients that send, shut down their write side and then read
                    // are common (http-garden's round trip, `nc -N`, scripted clients).
                    // So the batch is run and answered whether it is still queued or
                    // already running; its handlers see the cancellation (Go's
                    // `r.Context().Done()`), and the loop closes once the answers are
                    // written. A client that is gone for good resets the connection on
                    // the first write, and a reset (not a FIN) skips a queued batch.
                    debug!(
                        "conn={} client half-closed while its request is queued or running: cancelling, still answering",
                        self.id
                    );
                    f.signal.mark_loop_waiting();
                    f.cancel.cancel();
                } else if n > 0 {
                    f.signal.mark_loop_waiting();
                }
                Ok(())
            }
            // A client that half-closes may still read (RFC 9112 §9.6): the stream goes
            // on; if it is gone for good, the next write fails and closes.
            Phase::Upload(u) => {
                if n > 0 && u.sink.is_some() && u.remaining > 0 {
                    // The upload deadline counts from the last progress: a body larger
                    // than memory may rightly take longer than `read_timeout` in all.
                    // (While the sink works on a piece, no deadline runs: that time is
                    // the handler's, not the client's.)
                    self.arm(ctx, Deadline::Body, ctx.cfg.read_timeout);
                }
                self.pump_upload(ctx)
            }
            _ => Ok(()),
        }
    }

    /// Reads until the socket would block, a short read, the buffer cap or the memory
    /// budget.
    pub(super) fn fill(&mut self, ctx: &mut Ctx, hung_up: bool) -> Result<usize, Close> {
        let mut total = 0;
        // A verdict of an earlier read (taken then, or moot since) must not refuse a later
        // request.
        self.over_budget = false;
        if self.peer_eof {
            return Ok(0);
        }
        // Remembered: reading may stop at the buffer cap before the FIN is read, and no
        // new edge will announce it when reading resumes.
        self.hup_seen |= hung_up;
        let hung_up = self.hup_seen;
        let rbuf = self.rbuf.get_or_insert_with(|| ctx.bufs.take_read());
        let b = Arc::get_mut(rbuf).expect("the read buffer is owned by its connection");
        let was_empty = b.len == 0;
        // An upload reads a window at a time: the sink takes it before more is read.
        let windowed = match &self.phase {
            Phase::Upload(_) => true,
            #[cfg(feature = "proxy")]
            Phase::Forward(f) => f.windowed(),
            _ => false,
        };
        // A chunked body is decoded in the buffer (`process`), which holds the head, the
        // data decoded so far and, behind it, the raw bytes of the latest read.
        let chunked = matches!(&self.phase,
            Phase::ReadBody(r) if matches!(r.body, BodyProgress::Chunked { .. }));
        let cap = match &self.phase {
            _ if windowed => ctx.cfg.stream_buffer_bytes.min(ctx.read_cap),
            Phase::ReadBody(r) if chunked => chunked_cap(ctx, r.head.len),
            _ => ctx.read_cap,
        };
        let head_len = match &self.phase {
            Phase::ReadBody(r) => r.head.len,
            _ => 0,
        };
        if chunked && !self.grow_for_chunks(ctx, cap, head_len) {
            // Not even a window's growth is in the budget and the buffer is full: nothing
            // to read into. `after_read` refuses the body, or lets it wait while it holds
            // none of the budget (see there).
            self.read_paused = true;
            self.over_budget = true;
            return Ok(0);
        }
        let b = Arc::get_mut(self.rbuf.as_mut().expect("taken above"))
            .expect("the read buffer is owned by its connection");
        loop {
            if b.len == b.bytes.len() {
                if chunked {
                    // Raw chunked bytes fill the buffer: they are decoded (their framing
                    // dropped) before it grows, next turn (`drop_chunk_framing`), so the
                    // buffer grows for the body, not for its framing.
                    self.read_paused = true;
                    break;
                }
                if b.bytes.len() >= cap {
                    self.read_paused = true;
                    break;
                }
                let grown = (b.bytes.len() * 2).min(cap);
                let more = grown - b.bytes.len();
                if !ctx.budget.try_take_or_wait(more, ctx.loop_id) {
                    // The memory budget for all connections is spent: stop reading here
                    // (what was read stays); `after_read` decides to wait or refuse. This
                    // loop is marked waiting: memory given back on any loop wakes it.
                    self.read_paused = true;
                    self.over_budget = true;
                    break;
                }
                b.bytes.resize(grown, 0);
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
                    // A short read: the socket is drained, the next byte brings a new edge
                    // — unless the FIN, or a TLS close_notify behind this plaintext, is
                    // still to be read (no edge will announce either).
                    if b.len < b.bytes.len() && !hung_up && !self.io.eof_pending() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Close::IoError(e.kind())),
            }
        }
        if total > 0 {
            trace!("conn={} read {total} bytes", self.id);
            let stats = ctx.stats();
            stats.bump(&stats.bytes_in, total as u64);
            // The bytes start a new request: between requests, or (pipelined, sent in a
            // write of its own) while the requests before it are still at a worker, at an
            // upstream or being written. Its `parse` stage then also covers that wait: it is parsed
            // once the answers before it are out.
            let starts_request = match &self.phase {
                Phase::Idle | Phase::ReadHead(_) => true,
                Phase::Dispatched(f) => !f.body_follows,
                Phase::Write(After::KeepAlive) => true,
                Phase::Stream(s) => !s.close,
                // An exchange with an upstream whose request had no body to relay (the
                // client's was read whole): what comes meanwhile is the next request.
                #[cfg(feature = "proxy")]
                Phase::Forward(f) => !f.windowed(),
                _ => false,
            };
            if was_empty && starts_request {
                let now = ctx.stamp();
                if self.accept_lead_us == u32::MAX {
                    let lead = now.saturating_sub(self.req_start) / 1000;
                    self.accept_lead_us = lead.min(u64::from(u32::MAX - 1)) as u32;
                }
                self.req_start = now;
                trace!(
                    "conn={} req={} stage=first_byte",
                    self.id,
                    self.served() + 1
                );
            }
        } else if b.len == 0 {
            let b = self.rbuf.take().expect("just used");
            ctx.bufs.put_read(b);
        }
        Ok(total)
    }

    /// Discards what the client sends while our close lingers: a bounded amount per turn,
    /// so a client that floods cannot hold the loop (the rest waits for the next turn, and
    /// the linger deadline ends it all).
    pub(super) fn discard_input(&mut self, ctx: &mut Ctx) -> Step {
        let mut sink = [0u8; 4096];
        for _ in 0..DISCARD_READS_PER_TURN {
            match self.io.read(&mut sink) {
                Ok(0) => return Err(self.linger_as),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(self.linger_as),
            }
        }
        self.read_paused = true;
        ctx.deferred_reads.push((self.token, self.gen_));
        Ok(())
    }

    // ------------------------------------------------------------------ parsing

    /// Parses every complete request in the buffer and dispatches them as one batch, or
    /// answers a protocol error, or waits for more bytes.
    pub(super) fn process(&mut self, ctx: &mut Ctx) -> Step {
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
                    decoder, resume_at, ..
                } => {
                    // Decoded in place: the data moves down behind what is decoded so far
                    // (`write`), over the framing consumed.
                    let start = r.head.len as usize;
                    let write = start + decoder.decoded_len() as usize;
                    let max = ctx.cfg.max_body_bytes;
                    match decoder.decode_in_place(&mut b.bytes[..len], *resume_at, write, max) {
                        Ok((end, write, true)) => {
                            let Phase::ReadBody(r) =
                                std::mem::replace(&mut self.phase, Phase::Idle)
                            else {
                                unreachable!()
                            };
                            let span = Span {
                                start: start as u32,
                                end: write as u32,
                            };
                            front = Some((r.head, BodyRef::Span(span), end));
                        }
                        Ok((end, _, false)) => {
                            *resume_at = end;
                            self.drop_chunk_framing(ctx);
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
        let seen = Seen {
            id: self.id,
            served: self.served as usize,
            accepted_at: match self.accept_lead_us {
                u32::MAX => 0,
                us => self.req_start.saturating_sub(u64::from(us) * 1000).max(1),
            },
            req_start: self.req_start,
        };
        let mut reqs = ctx.bufs.take_reqs();
        let mut pos = 0;
        let mut failure = None;
        let mut next: Option<BodyRead> = None;
        // `b.bytes[..len]` is borrowed anew for each request: a chunked body is decoded in
        // place, inside the batch's buffer (only as its first request, see below). Only
        // bytes after its own head move, and the requests behind it are parsed from where
        // its raw bytes end, as they came.
        while pos < len && reqs.len() < ctx.cfg.max_batch {
            let (head, body, end) = if let Some(f) = front.take() {
                f
            } else {
                let fields_before = b.fields.len();
                let data = &b.bytes[..len];
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
                        let close =
                            Self::closes_after(ctx, &head, self.served as usize + reqs.len());
                        let trace = seen.trace(ctx, &head, &b.bytes[..len], reqs.len());
                        reqs.push(ReqMeta {
                            head,
                            body,
                            close,
                            end: end as u32,
                            trace,
                        });
                        pos = end;
                        break;
                    }
                    Framing::Length(n) => {
                        let end = body_start as u64 + n;
                        if (len as u64) < end {
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
                        if pos > 0 {
                            // A chunked body is decoded in place, over its own framing,
                            // and only as the first request of a batch: a worker runs
                            // that one always, while the requests behind it may be handed
                            // back to the loop as their raw bytes, to be parsed again
                            // (`Done::resume_at`: after a streamed answer or 256 KiB of
                            // answers) or handed to an upgrade as the new protocol's
                            // bytes — where a body decoded in place would be read as
                            // framing. So the batch ends before it; it is parsed once the
                            // requests before it are answered (the next batch's first).
                            b.fields.truncate(fields_before);
                            break;
                        }
                        let max = ctx.cfg.max_body_bytes;
                        let mut decoder = ChunkedDecoder::new();
                        let bytes = &mut b.bytes[..len];
                        match decoder.decode_in_place(bytes, body_start, body_start, max) {
                            Ok((end, write, true)) => {
                                let span = Span {
                                    start: body_start as u32,
                                    end: write as u32,
                                };
                                (head, BodyRef::Span(span), end)
                            }
                            Ok((end, _, false)) => {
                                next = Some(BodyRead {
                                    head,
                                    body: BodyProgress::Chunked {
                                        decoder,
                                        resume_at: end,
                                        edge_byte: false,
                                    },
                                });
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
            let close = Self::closes_after(ctx, &head, self.served as usize + reqs.len());
            let trace = seen.trace(ctx, &head, &b.bytes[..len], reqs.len());
            reqs.push(ReqMeta {
                head,
                body,
                close,
                end: end as u32,
                trace,
            });
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

    /// The keep-alive verdict for a request with `before` requests ahead of it on its
    /// connection: the client asked to close (or spoke HTTP/1.0 without keep-alive), the
    /// server is draining, or the connection reached `max_requests_per_connection`.
    fn closes_after(ctx: &Ctx, head: &parse::Head, before: usize) -> bool {
        let limit = ctx.cfg.max_requests_per_connection;
        !head.keep_alive || ctx.draining || (limit > 0 && before + 1 >= limit)
    }

    /// A head is parsed and its body is arriving: size the buffer for it, arm the body
    /// deadline, and say `100 Continue` when the client waits for it.
    pub(super) fn start_body(&mut self, ctx: &mut Ctx, r: BodyRead) -> Step {
        if let BodyProgress::Length { end } = r.body
            && !self.reserve(ctx, end)
        {
            // A new request whose body the memory budget cannot hold: refused before
            // anything was promised (no 100 Continue went out). A body more than the
            // whole budget could hold is refused for good (413): a retry would fail on an
            // idle server too. Otherwise the budget is held by others: 503.
            self.unread_input = true;
            // (No warning per request: a client could write the log full with them. The
            // start-up warning names the settings; `answer_error` logs it at debug.)
            if self.never_fits(ctx, end) {
                return self.answer_error(ctx, Error::BodyTooLarge);
            }
            return self.answer_503(ctx, BUDGET_SPENT);
        }
        let (expect, version) = (r.head.expect_continue, r.head.version);
        self.phase = Phase::ReadBody(Box::new(r));
        self.arm(ctx, Deadline::Body, ctx.cfg.read_timeout);
        if expect {
            self.send_continue(ctx, version);
        }
        self.drop_chunk_framing(ctx);
        self.after_read(ctx)
    }

    /// A chunked body being read: the decoder has consumed every raw byte read (it keeps
    /// its own state, down to one byte at a time) and moved the chunk data down behind
    /// the head (`ChunkedDecoder::decode_in_place`). The raw bytes it consumed beyond
    /// that — sizes, extensions, CRLFs — are dropped from the read buffer, which then
    /// ends where the decoded data does: the next read lands right behind it. So the
    /// buffer holds the head and the body decoded so far, and grows for that (`fill`,
    /// `grow_for_chunks`), not for the framing: a body under `max_body_bytes` (the
    /// decoder's limit) sent in small chunks is not refused for its framing. The head
    /// stays where it is: its spans point into the buffer.
    fn drop_chunk_framing(&mut self, ctx: &mut Ctx) {
        let Phase::ReadBody(r) = &mut self.phase else {
            return;
        };
        let BodyProgress::Chunked {
            decoder, resume_at, ..
        } = &mut r.body
        else {
            return;
        };
        let Some(rbuf) = self.rbuf.as_mut() else {
            return;
        };
        let b = Arc::get_mut(rbuf).expect("the read buffer is owned by its connection");
        let decoded_end = r.head.len as usize + decoder.decoded_len() as usize;
        if *resume_at > decoded_end {
            b.bytes.copy_within(*resume_at..b.len, decoded_end);
            b.len -= *resume_at - decoded_end;
            *resume_at = decoded_end;
        }
        if self.read_paused && !self.over_budget {
            // The read stopped at a full buffer, whose bytes are now decoded: no new edge
            // would come for the bytes already in the kernel, so read on next turn, into
            // the room the framing left or a grown buffer (`read_paused` stays set: it is
            // what `resume_reading` looks for).
            ctx.deferred_reads.push((self.token, self.gen_));
        }
    }

    /// Grows the read buffer to `end` bytes (a `Content-Length` body sits in it whole:
    /// sized once, not doubled as it arrives) if the memory budget allows it.
    pub(super) fn reserve(&mut self, ctx: &mut Ctx, end: usize) -> bool {
        let b = Arc::get_mut(self.rbuf.as_mut().expect("reading"))
            .expect("the read buffer is owned by its connection");
        if b.bytes.len() >= end {
            return true;
        }
        let more = end - b.bytes.len();
        if !ctx.budget.try_take(more) {
            return false;
        }
        b.bytes.resize(end, 0);
        self.charged += more;
        if self.over_budget {
            // The read stopped for want of room that is now there: read on, next turn
            // (`read_paused` stays set: it is what `resume_reading` looks for; no new edge
            // would come for the bytes already in the kernel).
            self.over_budget = false;
            ctx.deferred_reads.push((self.token, self.gen_));
        }
        true
    }

    /// Whether growing the read buffer to `end` bytes would pass `max_buffered_bytes`
    /// (the whole budget, every loop's) even with every other connection's memory given
    /// back.
    fn never_fits(&self, ctx: &Ctx, end: usize) -> bool {
        let len = self.rbuf.as_ref().map_or(0, |b| b.bytes.len());
        self.charged.saturating_add(end.saturating_sub(len)) > ctx.cfg.max_buffered_bytes
    }

    /// Makes room in the read buffer for a window of a chunked body's raw bytes behind
    /// the data decoded so far: doubles the buffer when the memory budget has room for
    /// that (as any read buffer grows, `fill`), else grows it by the window alone (up to
    /// `cap`). False when neither is in the budget and the buffer is full.
    fn grow_for_chunks(&mut self, ctx: &mut Ctx, cap: usize, head_len: u32) -> bool {
        let b = Arc::get_mut(self.rbuf.as_mut().expect("a body is being read"))
            .expect("the read buffer is owned by its connection");
        let now = b.bytes.len();
        let want = (b.len + CHUNKED_WINDOW).min(cap);
        if now >= want {
            return true;
        }
        let doubled = (now * 2).max(want).min(cap);
        let target = if ctx.budget.try_take(doubled - now) {
            doubled
        } else {
            // While it holds none of the budget it may wait for memory (`after_read`):
            // marked then, so that memory given back on any loop wakes it.
            let got = if may_wait_for_memory(now, head_len) {
                if ctx.budget.try_take_or_wait(want - now, ctx.loop_id) {
                    want - now
                } else {
                    0
                }
            } else {
                // What is left of the budget, if not a whole window: the rest of the body
                // may fit in it, as its `Content-Length` twin's would (refused only once
                // the budget is spent to the byte, `after_read`).
                ctx.budget.take_up_to(want - now)
            };
            if got == 0 {
                if b.len < now {
                    // Reads on into what room is left (the rest of the body may fit in it).
                    return true;
                }
                // Full of head and decoded data, the budget spent to the byte: its
                // `Content-Length` twin would be complete here, but the framing behind the
                // data is still to come. One byte past the budget, once per body, lets it
                // be read a byte a turn (the decoder drops each framing byte, as when one
                // byte of room was left); a data byte in it fills the buffer again, and the
                // body is refused as before (`after_read`).
                if let Phase::ReadBody(r) = &mut self.phase
                    && let BodyProgress::Chunked { edge_byte, .. } = &mut r.body
                    && !*edge_byte
                    && now < cap
                {
                    *edge_byte = true;
                    ctx.budget.take(1);
                    b.bytes.reserve_exact(1);
                    b.bytes.push(0);
                    self.charged += 1;
                    return true;
                }
                return false;
            }
            now + got
        };
        // Exactly: the budget is charged for the length (`recharge`), and a buffer grown
        // a window at a time must not hold twice that in capacity.
        b.bytes.reserve_exact(target - now);
        b.bytes.resize(target, 0);
        self.charged += target - now;
        true
    }

    /// After a read with no complete request: wait for more bytes, or for memory.
    pub(super) fn after_read(&mut self, ctx: &mut Ctx) -> Step {
        if std::mem::take(&mut self.over_budget) {
            if let Phase::ReadBody(r) = &self.phase
                && matches!(r.body, BodyProgress::Chunked { .. })
            {
                let b = self.rbuf.as_ref().expect("a body is being read");
                let want = (b.len + CHUNKED_WINDOW).min(chunked_cap(ctx, r.head.len));
                if may_wait_for_memory(b.bytes.len(), r.head.len) {
                    // Its buffer is still the first, uncharged one, too small for its
                    // large head and a window: it holds none of the memory others wait
                    // for, so it waits for memory as any accepted body does (nothing is
                    // dropped), within its read deadline.
                    debug!("conn={} memory budget spent: reading paused", self.id);
                    ctx.budget_waiters.push((self.token, self.gen_));
                } else if b.len < b.bytes.len() {
                    // The read stopped for room, and decoding made some (the framing is
                    // dropped): read on, next turn; the buffer grows then if it must.
                    ctx.deferred_reads.push((self.token, self.gen_));
                } else {
                    // A chunked body that holds part of the budget and needs more than
                    // the budget has room for is refused rather than left waiting:
                    // chunked bodies that each waited for memory held by the others'
                    // half-read bodies would wait for one another until their deadlines
                    // (`tests/exhaustion_review.rs`). As for a `Content-Length` body
                    // (`start_body`): 413 when the next window would take this connection
                    // alone past the whole budget (a retry cannot fit either), else 503.
                    self.unread_input = true;
                    if self.never_fits(ctx, want) {
                        return self.answer_error(ctx, Error::BodyTooLarge);
                    }
                    return self.answer_503(ctx, BUDGET_SPENT);
                }
            } else if matches!(self.phase, Phase::ReadBody(_)) {
                // A request already accepted: its body waits (nothing is dropped) until
                // other connections give memory back, within its read deadline.
                debug!("conn={} memory budget spent: reading paused", self.id);
                ctx.budget_waiters.push((self.token, self.gen_));
            } else {
                // A head that needs a larger buffer than the budget leaves.
                self.unread_input = true;
                return self.answer_503(ctx, BUDGET_SPENT);
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

    pub(super) fn send_continue(&mut self, ctx: &mut Ctx, version: Version) {
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
    pub(super) fn dispatch(&mut self, ctx: &mut Ctx, reqs: Vec<ReqMeta>, consumed: usize) -> Step {
        let mut batch = self.rbuf.take().expect("dispatching needs a buffer");
        let total = batch.len;
        // The bytes after the batch stay as they are: the next requests (RFC 9112 §2.2:
        // empty lines before them are skipped when they are parsed, `write_and_continue`),
        // or the body of a streamed upload, or a new protocol's first bytes after an
        // upgrade — which may well start with CR or LF.
        let leftover = consumed < total;
        if leftover {
            let mut rest = ctx.bufs.take_read();
            let r = Arc::get_mut(&mut rest).expect("fresh buffer");
            let left = &batch.bytes[consumed..total];
            if r.bytes.len() < left.len() {
                r.bytes.resize(left.len(), 0);
            }
            r.bytes[..left.len()].copy_from_slice(left);
            r.len = left.len();
            self.rbuf = Some(rest);
        }
        Arc::get_mut(&mut batch).expect("owned").len = consumed;
        self.served = self.served.saturating_add(reqs.len() as u32);
        let n = reqs.len();
        let (cancel, signal) = (ctx.bufs.take_cancel(), ctx.bufs.take_signal());
        if self.peer_eof {
            // The client sent its request(s) and closed (RFC 9112 §9.6 allows answering
            // a half-closed connection; Go cancels the request context all the same).
            cancel.cancel();
        }
        let more = batch.bytes[consumed..total]
            .iter()
            .any(|&c| c != b'\r' && c != b'\n');
        if more || self.read_paused {
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
        let body_follows = matches!(reqs.last(), Some(r) if matches!(r.body, BodyRef::Streamed(_)));
        let job = BatchJob {
            right,
            loop_id: ctx.loop_id,
            token: self.token,
            gen_: self.gen_,
            conn_id: self.id,
            peer: self.peer,
            batch: Some(batch),
            reqs,
            cancel: Some(cancel.clone()),
            signal: signal.clone(),
            out: ctx.bufs.take_write(),
            queued_at: ctx.now,
        };
        // Logged before the send, so the line comes before the worker's; but not for a
        // batch the full queue refuses (with several loops, another may fill it between
        // the look and the send: rarely, a shed batch is logged as queued).
        if log::log_enabled!(log::Level::Trace) && !ctx.jobs.is_full() {
            let (first, last) = (self.served() - n + 1, self.served());
            let reqs = if n == 1 {
                format!("req={last}")
            } else {
                format!("req={first}..={last}")
            };
            trace!(
                "conn={} {reqs} stage=queued ({n} request(s) for a worker, queue depth {})",
                self.id,
                ctx.jobs.len()
            );
        }
        match ctx.jobs.try_send(Job::Batch(job)) {
            Ok(()) => {
                ctx.outstanding += 1;
                self.phase = Phase::Dispatched(InFlight {
                    signal,
                    cancel,
                    batch_bytes,
                    close: None,
                    body_follows,
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
                if let Some(b) = job.batch {
                    ctx.bufs.put_read(b);
                }
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
    pub(super) fn answer_503(&mut self, ctx: &mut Ctx, why: &str) -> Step {
        log::warn!("conn={} {why}: answering 503 and closing", self.id);
        let stats = ctx.stats();
        stats.bump(&stats.shed, 1);
        stats.count_request(crate::http::Method::Other, 503, None);
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
    pub(super) fn answer_error(&mut self, ctx: &mut Ctx, e: Error) -> Step {
        debug!("conn={} bad request: {e} -> {}", self.id, e.status());
        ctx.stats()
            .count_request(crate::http::Method::Other, e.status(), None);
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
}

/// What the loop knows of a connection when it parses a batch (its requests' first stages).
struct Seen {
    id: u64,
    served: usize,
    accepted_at: crate::telemetry::Stamp,
    req_start: crate::telemetry::Stamp,
}

impl Seen {
    /// The stages the loop saw of the `i`th request of the batch being parsed (the parse
    /// and the queueing happen in this turn).
    fn trace(&self, ctx: &Ctx, head: &parse::Head, data: &[u8], i: usize) -> Trace {
        let seq = (self.served + i + 1) as u64;
        let now = ctx.stamp();
        trace!(
            "conn={} req={seq} stage=head_parsed {} {}",
            self.id,
            head.method.as_str(),
            String::from_utf8_lossy(head.target.get(data))
        );
        Trace {
            tl: Timeline {
                accepted: if seq == 1 { self.accepted_at } else { 0 },
                // Requests behind the first of a batch came in the same read (or earlier).
                first_byte: if i == 0 && self.req_start != 0 {
                    self.req_start
                } else {
                    now
                },
                head_parsed: now,
                queued: now,
                ..Timeline::default()
            },
            seq,
            ..Trace::default()
        }
    }
}

/// Room for raw chunked bytes behind the decoded data while a chunked body is read: the
/// read buffer is grown to have at least this much free before a read (`grow_for_chunks`).
const CHUNKED_WINDOW: usize = 4096;

/// The most a read buffer holding a chunked body grows to: its head, the largest body
/// `max_body_bytes` allows and a window of raw bytes behind it (within `read_cap`).
fn chunked_cap(ctx: &Ctx, head_len: u32) -> usize {
    let max_body = usize::try_from(ctx.cfg.max_body_bytes).unwrap_or(usize::MAX);
    (head_len as usize)
        .saturating_add(max_body)
        .saturating_add(CHUNKED_WINDOW)
        .max(crate::buffers::READ_BUF)
        .min(ctx.read_cap)
}

/// Whether a chunked body whose buffer of `len` bytes must grow may wait for memory: its
/// buffer is still the connection's first, which the memory budget does not charge
/// (`Conn::recharge`), and its head (`head_len` bytes) is so large that this buffer cannot
/// also hold a window of raw bytes behind it. Such a body holds none of the memory others
/// wait for. One behind a smaller head has filled its first buffer with body data: it is
/// refused when the budget is spent (`after_read`), as its `Content-Length` twin is — left
/// waiting, a client that sent it whole at once got 408 at its read deadline, its
/// connection held meanwhile, behind any client that held the budget.
fn may_wait_for_memory(len: usize, head_len: u32) -> bool {
    len <= crate::buffers::READ_BUF && head_len as usize + CHUNKED_WINDOW > crate::buffers::READ_BUF
}

/// Why a request is refused with 503 when memory for it is not in the budget.
const BUDGET_SPENT: &str = "buffered request bytes at max_buffered_bytes";
