//! A WebSocket connection on the loop (after its `101`): reading and decoding frames,
//! answering pings, the ping deadline, the close handshake, and the hand-off of messages
//! to the session (a short job on the pool) and of queued frames to the socket.
//!
//! The loop never runs the session: its events go to a worker in order, one job at a
//! time per connection. Reading stops while a batch of messages waits for the session
//! (so a client cannot queue more than one read's worth), and what the loop writes is
//! bounded by the connection's send limit (frames from `Sender`s, pongs, the close).

use std::io;

use log::{debug, trace};

use super::{After, Close, Conn, Deadline, Phase, Step, Transport};
use crate::event_loop::Ctx;
use crate::pool::{Job, WsDone, WsJob};
use crate::upgrade::Takeover;
use crate::ws::frame::{self, OpCode};
use crate::ws::session::Event;
use crate::ws::{CloseCode, Decoder, Message, Role, Sender, Session};

/// Reads per turn before a busy connection yields to the others.
const READS_PER_TURN: usize = 4;
/// The size of one read.
const READ_CHUNK: usize = 16 * 1024;
/// Most events decoded ahead of the session: one read of tiny frames could otherwise turn
/// 16 KiB on the wire into thousands of events (about 40 bytes each); past this the rest
/// of the read waits, undecoded, for the session to take the batch.
const MAX_BATCH: usize = 256;

/// One WebSocket connection's state on the loop.
pub(crate) struct WsConn {
    decoder: Decoder,
    /// The application's handle, shared with every clone the session gave out.
    sender: Sender,
    /// The session; `None` while a worker has it.
    session: Option<Box<dyn Session>>,
    /// Events decoded while the session was away, delivered when it is back.
    pending: Vec<Event>,
    /// Most bytes of frames the loop may hold unwritten (the send limit).
    limit: usize,
    ping_interval: std::time::Duration,
    /// A frame arrived since the ping deadline was last armed.
    heard: bool,
    /// A ping was sent and nothing came since.
    ping_out: bool,
    /// The server sent its close frame: the peer's answer (or the linger deadline) ends
    /// the connection.
    close_sent: bool,
    /// The peer's close arrived first, or a frame that broke the protocol: nothing more
    /// is read, and our close frame is due — once the session has handled the events
    /// that came before it. The session seals its `Sender` when it reaches the close
    /// (`session::deliver`); then what it queued is written, then this close. The linger
    /// deadline bounds a session that does not get there.
    answer_due: Option<Due>,
    /// Close once the write buffer is out, for this reason (the close handshake is done,
    /// or the peer broke the protocol).
    close_after_flush: Option<Close>,
    /// The session's `on_close` is queued (or delivered).
    told_close: bool,
    /// The session came back without itself: its `on_close` ran and it is gone.
    finished: bool,
    /// What the events waiting in `pending` hold, and what the batch at a worker holds
    /// (charged to the memory budget with the message in progress).
    pending_bytes: usize,
    away_bytes: usize,
    /// Messages completed so far, and their count at the last ping deadline when a
    /// message was in progress then: a message that makes no progress to completion for a
    /// whole interval is cut off (a stalled fragment must not hold memory for ever).
    completed: u64,
    stall_mark: Option<u64>,
    /// Bytes read but not decoded yet (the batch was full): at most one read.
    leftover: Vec<u8>,
}

/// The close frame the server owes (`WsConn::answer_due`) and why the connection ends
/// once it is out.
#[derive(Clone, Copy)]
struct Due {
    /// The code: the peer's, echoed (`None` answers an empty close with an empty one), or
    /// the decoder's for a protocol error.
    code: Option<CloseCode>,
    reason: &'static str,
    then: Close,
}

impl WsConn {
    /// Request bytes this connection holds: a message in progress.
    pub fn buffered(&self) -> usize {
        self.decoder.buffered() + self.pending_bytes + self.away_bytes + self.leftover.capacity()
    }

    fn push(&mut self, ev: Event) {
        self.pending_bytes += ev.size();
        self.pending.push(ev);
    }
}

impl<T: Transport> Conn<T> {
    fn ws(&mut self) -> &mut WsConn {
        match &mut self.phase {
            Phase::Ws(w) => w,
            _ => unreachable!("a WebSocket call on a connection in another phase"),
        }
    }

    /// Still a WebSocket: `ws_pump` may have moved the connection on to its lingering
    /// close (`ws_finish`), after which only `Phase::Closing`'s calls apply.
    fn is_ws(&self) -> bool {
        matches!(self.phase, Phase::Ws(_))
    }

    /// The `101` is written: the connection becomes a WebSocket served here. The bytes
    /// that came with or after the handshake are its first frames.
    pub(super) fn enter_ws(&mut self, ctx: &mut Ctx) -> Step {
        let Phase::Write(After::Upgrade(Takeover::WebSocket(start), ahead)) =
            std::mem::replace(&mut self.phase, Phase::Closing)
        else {
            unreachable!("enter_ws after a WebSocket 101")
        };
        if let Some(b) = self.rbuf.take() {
            ctx.bufs.put_read(b);
        }
        self.recharge(ctx);
        ctx.bufs.put_write(std::mem::take(&mut self.wbuf));
        self.wpos = 0;
        self.deadlines.read = None;
        self.deadlines.write = None;
        let sender = Sender::new(
            self.id,
            self.peer,
            start.send_queue_bytes,
            (self.token, self.gen_, ctx.notifier.clone()),
        );
        debug!("conn={} stage=upgraded to WebSocket", self.id);
        let stats = ctx.stats();
        stats.bump(&stats.upgrades, 1);
        stats.bump(&stats.ws_opened, 1);
        let ping = start.ping_interval;
        self.phase = Phase::Ws(Box::new(WsConn {
            decoder: Decoder::new(Role::Server, start.max_message),
            sender,
            session: Some(start.session),
            pending: vec![Event::Open],
            limit: start.send_queue_bytes,
            ping_interval: ping,
            heard: false,
            ping_out: false,
            close_sent: false,
            answer_due: None,
            close_after_flush: None,
            told_close: false,
            finished: false,
            pending_bytes: 0,
            away_bytes: 0,
            completed: 0,
            stall_mark: None,
            leftover: Vec::new(),
        }));
        self.arm(ctx, Deadline::Ping, ping);
        if ctx.draining {
            // Switched just as the drain began (its batch was at a worker): it goes too.
            self.ws_going_away(ctx)?;
        }
        if !ahead.is_empty() {
            self.ws().heard = true;
            let used = self.ws_decode(ctx, &ahead)?;
            self.ws().leftover.extend_from_slice(&ahead[used..]);
        }
        self.ws_dispatch(ctx);
        self.ws_pump(ctx)?;
        if !self.is_ws() {
            return Ok(());
        }
        // More may have arrived since the handshake was read (edge-triggered: no new
        // event would say so).
        self.ws_read(ctx, false)
    }

    /// The socket is readable: read, decode, hand the messages on.
    pub(super) fn ws_read(&mut self, ctx: &mut Ctx, hung_up: bool) -> Step {
        self.hup_seen |= hung_up;
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..READS_PER_TURN {
            if self.ws().answer_due.is_some() {
                // The peer closed: nothing after its close is read (what it sends is
                // discarded by the lingering close once our answer is out).
                return Ok(());
            }
            if !self.ws().leftover.is_empty() {
                // What an earlier read left undecoded goes first.
                let data = std::mem::take(&mut self.ws().leftover);
                let used = self.ws_decode(ctx, &data)?;
                let w = self.ws();
                w.leftover = data;
                w.leftover.drain(..used);
                self.ws_dispatch(ctx);
                self.ws_pump(ctx)?;
                if !self.is_ws() {
                    return Ok(());
                }
                if !self.ws().leftover.is_empty() || !self.ws().pending.is_empty() {
                    self.read_paused = true;
                    return Ok(());
                }
                if self.ws().leftover.capacity() > 0 {
                    self.ws().leftover = Vec::new();
                }
            }
            if !self.ws().pending.is_empty() {
                // The session has not taken the last messages yet: the rest waits in the
                // kernel (the client's own sends block) until it has.
                self.read_paused = true;
                return Ok(());
            }
            if self.peer_eof {
                return self.ws_eof();
            }
            match self.io.read(&mut buf) {
                Ok(0) => {
                    self.peer_eof = true;
                    return self.ws_eof();
                }
                Ok(n) => {
                    let stats = ctx.stats();
                    stats.bump(&stats.bytes_in, n as u64);
                    self.ws().heard = true;
                    let used = self.ws_decode(ctx, &buf[..n])?;
                    self.ws().leftover.extend_from_slice(&buf[used..n]);
                    self.recharge(ctx);
                    if self.charged > 0 && ctx.budget.held() > ctx.cfg.max_buffered_bytes {
                        self.ws_over_budget();
                    }
                    self.ws_dispatch(ctx);
                    self.ws_pump(ctx)?;
                    if !self.is_ws() {
                        return Ok(());
                    }
                    if !self.ws().leftover.is_empty() {
                        continue; // decoded at the top, or kept until the session is back
                    }
                    if n < buf.len() && !self.hup_seen && !self.io.eof_pending() {
                        return Ok(()); // drained: the next byte brings a new edge
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Close::IoError(e.kind())),
            }
        }
        // This connection had its share of the turn: it goes on next turn.
        self.read_paused = true;
        ctx.deferred_reads.push((self.token, self.gen_));
        Ok(())
    }

    /// The client closed its side: after our close frame that ends the handshake; without
    /// one, the connection dropped (the session hears 1006).
    fn ws_eof(&mut self) -> Step {
        if self.ws().close_sent {
            Err(Close::WsClosed)
        } else {
            Err(Close::PeerClosed)
        }
    }

    /// Reading was paused (a batch of messages was out, or the turn's share used).
    pub(super) fn ws_resume(&mut self, ctx: &mut Ctx) -> Step {
        if !self.is_ws() || !self.read_paused || !self.ws().pending.is_empty() {
            return Ok(());
        }
        self.read_paused = false;
        self.ws_read(ctx, false)
    }

    /// Decodes `data`: messages for the session, pings answered, a close answered or
    /// ended, a protocol error closed with its code.
    /// Returns how much of `data` was used: all of it, unless the batch for the session
    /// filled up (`MAX_BATCH`).
    fn ws_decode(&mut self, ctx: &mut Ctx, mut data: &[u8]) -> Result<usize, Close> {
        let id = self.id;
        let total = data.len();
        while !data.is_empty() {
            let w = self.ws();
            if w.pending.len() >= MAX_BATCH {
                break;
            }
            let (used, step) = w.decoder.decode(data);
            data = &data[used..];
            match step {
                None => break,
                Some(Ok(Message::Ping(payload))) => {
                    if w.close_sent {
                        continue;
                    }
                    frame::encode(&mut self.wbuf, true, OpCode::Pong, &payload, None);
                    // The buffer may hold a whole send queue taken from the senders
                    // (up to `limit`): the pongs get as much again.
                    let limit = self.ws().limit;
                    if self.wbuf.len() - self.wpos > 2 * limit {
                        // Pings faster than it reads our pongs.
                        return Err(Close::WsOverflow);
                    }
                }
                Some(Ok(Message::Pong(_))) => {}
                Some(Ok(Message::Close(c))) => {
                    let (code, reason) = c.unwrap_or((CloseCode::NO_STATUS, String::new()));
                    trace!("conn={id} WebSocket close from the peer: {code}");
                    if w.close_sent {
                        // Our close, answered: the handshake is done.
                        w.close_after_flush = Some(Close::WsClosed);
                    } else {
                        // Answered with its code (RFC 6455 §5.5.1) — but not yet: the
                        // messages before it were received, and what the session sends
                        // for them goes out first (§1.4: the closing handshake loses no
                        // data sent before it). The session hears the close after them.
                        let due = Due {
                            code: (code != CloseCode::NO_STATUS).then_some(code),
                            reason: "",
                            then: Close::WsClosed,
                        };
                        self.ws_close_due(ctx, due, code, reason);
                    }
                    // Nothing after a close is read.
                    return Ok(total);
                }
                Some(Ok(m)) => {
                    let stats = ctx.stats();
                    stats.bump(&stats.ws_messages_in, 1);
                    w.completed += 1;
                    if !w.close_sent {
                        w.push(Event::Message(m));
                    }
                }
                Some(Err(e)) => {
                    debug!("conn={id} WebSocket protocol error: {e}");
                    if w.close_sent {
                        w.close_after_flush = Some(Close::WsProtocolError);
                    } else {
                        // Failed from this frame on (RFC 6455 §7.1.7): nothing after it
                        // is read, and the close with the error's code goes out — after
                        // what the session sends for the messages decoded before it,
                        // which were whole and valid (Autobahn 3.2, 4.1.3, 5.15: "Echo
                        // for first message is received, but then connection is failed").
                        let due = Due {
                            code: Some(e.code()),
                            reason: e.reason(),
                            then: Close::WsProtocolError,
                        };
                        self.ws_close_due(ctx, due, e.code(), e.reason().to_string());
                    }
                    return Ok(total);
                }
            }
        }
        Ok(total - data.len())
    }

    /// Our close frame is due (the peer's close, or its protocol error): the session hears
    /// the close after the events before it, and the close frame goes out once it has
    /// handled them (`ws_pump`), or at the linger deadline.
    fn ws_close_due(&mut self, ctx: &mut Ctx, due: Due, code: CloseCode, reason: String) {
        let w = self.ws();
        w.answer_due = Some(due);
        w.told_close = true;
        w.push(Event::Close(code, reason));
        if w.session.is_some() && w.pending.len() == 1 {
            // The session is home and has handled everything before the close: its sends
            // are all queued; no later one is taken.
            w.sender.lock().closed = true;
        }
        // A session that does not get to the close is not waited for longer than this
        // (`ws_linger`).
        self.arm(ctx, Deadline::Linger, ctx.linger);
    }

    /// The messages in progress on all connections spent the memory budget
    /// (`max_buffered_bytes`), and this one holds part of it: it is closed with 1013 (try
    /// again later), as an HTTP request that needs memory then gets 503.
    fn ws_over_budget(&mut self) {
        debug!(
            "conn={} WebSocket message in progress over the memory budget: closing",
            self.id
        );
        let code = CloseCode(1013);
        let w = self.ws();
        if !w.close_sent {
            frame::encode_close(&mut self.wbuf, Some(code), "server busy", None);
            self.ws().close_sent = true;
            self.ws_tell_close(code, "server busy".into());
        }
        self.ws().close_after_flush = Some(Close::WsOverflow);
    }

    /// Queues the session's `on_close` (once) and refuses sends from here on.
    fn ws_tell_close(&mut self, code: CloseCode, reason: String) {
        let w = self.ws();
        if !w.told_close {
            w.told_close = true;
            w.push(Event::Close(code, reason));
        }
        w.sender.shut();
    }

    /// Hands the pending events to the session when it is home.
    fn ws_dispatch(&mut self, ctx: &mut Ctx) {
        let (token, gen_) = (self.token, self.gen_);
        let w = self.ws();
        if w.pending.is_empty() || w.session.is_none() {
            return;
        }
        w.sender.lock().at_worker = true;
        let job = WsJob {
            loop_id: ctx.loop_id,
            token,
            gen_,
            session: w.session.take().expect("checked"),
            sender: w.sender.clone(),
            events: std::mem::take(&mut w.pending),
        };
        w.away_bytes = std::mem::take(&mut w.pending_bytes);
        // `on_close` must not be lost to a full queue (a hub would keep a dead member).
        let closing = w.told_close;
        let sent = if closing {
            ctx.jobs.send_always(Job::Ws(job))
        } else {
            ctx.jobs.try_send(Job::Ws(job))
        };
        if let Err(e) = sent {
            let Job::Ws(job) = e.into_inner() else {
                unreachable!("a WebSocket job was sent")
            };
            let w = self.ws();
            w.sender.lock().at_worker = false;
            w.session = Some(job.session);
            w.pending = job.events;
            w.pending_bytes = std::mem::take(&mut w.away_bytes);
            ctx.stalled.push((token, gen_));
        }
    }

    /// The job queue had no room for this connection's events; it has now.
    pub(super) fn ws_stalled(&mut self, ctx: &mut Ctx) -> Step {
        self.ws_dispatch(ctx);
        self.ws_resume(ctx)
    }

    /// The session is back from a worker.
    pub fn on_ws_done(&mut self, ctx: &mut Ctx, done: WsDone) -> Step {
        let Phase::Ws(w) = &mut self.phase else {
            return Ok(());
        };
        w.finished = done.session.is_none();
        w.session = done.session;
        w.away_bytes = 0;
        let answer_due = w.answer_due.is_some();
        self.recharge(ctx);
        self.ws_dispatch(ctx);
        if answer_due {
            // The session may have reached the peer's close (its sealing notice is on
            // its way too; this is sooner).
            self.ws_pump(ctx)?;
        }
        self.ws_resume(ctx)
    }

    /// Writes what is buffered and, once it is out, takes the frames the senders queued;
    /// closes when the close handshake says so, or a sender found the queue full.
    pub fn ws_pump(&mut self, ctx: &mut Ctx) -> Step {
        if !matches!(self.phase, Phase::Ws(_)) {
            return Ok(());
        }
        loop {
            if !self.flush(ctx)? {
                return Ok(()); // WRITABLE brings us back
            }
            if let Some(reason) = self.ws().close_after_flush {
                // Our close frame is out: close, lingering if the client's input is
                // left unread (a reset would destroy the close frame on its way).
                return self.ws_finish(ctx, reason);
            }
            let Phase::Ws(w) = &mut self.phase else {
                unreachable!("checked above")
            };
            let mut out = w.sender.lock();
            if out.overflow {
                drop(out);
                debug!("conn={} WebSocket send queue full: closing", self.id);
                return Err(Close::WsOverflow);
            }
            out.notified = false;
            if let Some(due) = w.answer_due
                && out.closed
            {
                // The session reached the close (or closed, or the linger deadline
                // stopped waiting for it): no more frames come. What it queued goes
                // first, then our close; a close it queued itself is dropped — the
                // peer's close, or its error, decided the code.
                out.close = None;
                std::mem::swap(&mut self.wbuf, &mut out.buf);
                drop(out);
                self.wpos = 0;
                frame::encode_close(&mut self.wbuf, due.code, due.reason, None);
                w.answer_due = None;
                w.close_sent = true;
                w.close_after_flush = Some(due.then);
                // From here the write deadline bounds the rest, then the linger.
                self.deadlines.read = None;
                continue;
            }
            if w.close_sent || (out.buf.is_empty() && out.close.is_none()) {
                drop(out);
                if self.wbuf.capacity() > 0 {
                    // Idle: the buffer goes back to the loop's pool (a connection that
                    // waits for messages holds none).
                    ctx.bufs.put_write(std::mem::take(&mut self.wbuf));
                }
                return Ok(());
            }
            std::mem::swap(&mut self.wbuf, &mut out.buf);
            self.wpos = 0;
            let close = out.close.take();
            drop(out);
            if let Some((code, reason)) = close {
                // The application closes: our close frame goes after its last frames; the
                // peer's answer (or the linger deadline) ends the connection.
                frame::encode_close(&mut self.wbuf, Some(code), &reason, None);
                self.ws().close_sent = true;
                self.ws_tell_close(code, reason);
                self.ws_dispatch(ctx);
                self.arm(ctx, Deadline::Linger, ctx.linger);
            }
        }
    }

    /// Our close frame (and everything before it) is out: the connection ends for
    /// `reason`. The WebSocket state goes first (the session hears its close, if it has
    /// not yet), then the socket closes as an HTTP connection does after its last answer
    /// (`Conn::finish_as`): at once when the client sent nothing more, else a lingering
    /// close — a close with the client's input unread would make the kernel reset the
    /// connection, and a reset destroys what the client has not read yet (RFC 6455
    /// §7.1.1: the close frame must reach it; the server closes the TCP connection
    /// first). The lingering close is bounded as HTTP's is: the linger deadline, and a
    /// bounded amount of discarded input per turn.
    fn ws_finish(&mut self, ctx: &mut Ctx, reason: Close) -> Step {
        let Phase::Ws(w) = std::mem::replace(&mut self.phase, Phase::Closing) else {
            unreachable!("ws_finish on a WebSocket")
        };
        debug!(
            "conn={} WebSocket closed ({reason:?}): the close frame is out",
            self.id
        );
        self.release_ws(ctx, w);
        self.recharge(ctx);
        self.read_paused = false;
        ctx.bufs.put_write(std::mem::take(&mut self.wbuf));
        self.wpos = 0;
        self.finish_as(ctx, reason)
    }

    /// The linger deadline of a WebSocket: our close went unanswered (closed), or the
    /// session did not get to the close in time (the peer's, or its protocol error) — then
    /// it is not waited for: its sender is sealed (its later sends fail; it still hears
    /// the close), and what it queued goes out before our close frame.
    pub(super) fn ws_linger(&mut self, ctx: &mut Ctx) -> Step {
        let id = self.id;
        let w = self.ws();
        if w.answer_due.is_none() {
            return Err(Close::LingerTimeout);
        }
        debug!("conn={id} WebSocket session slow to reach the close: closing");
        w.sender.lock().closed = true;
        self.ws_pump(ctx)
    }

    /// The ping deadline: a client heard from lately is fine; a silent one gets a ping,
    /// and is disconnected if it stays silent for another interval.
    pub(super) fn ws_ping(&mut self, ctx: &mut Ctx) -> Step {
        let paused = self.read_paused;
        let w = self.ws();
        let every = w.ping_interval;
        if w.close_sent {
            // Our close frame is out or on its way: nothing may follow it (RFC 6455 §5.5.1);
            // the write or linger deadline ends the connection.
            self.arm(ctx, Deadline::Ping, every);
            return Ok(());
        }
        if w.decoder.is_mid_message() {
            if w.stall_mark == Some(w.completed) && !paused {
                debug!(
                    "conn={} WebSocket message stalled for a ping interval: closing",
                    self.id
                );
                return Err(Close::WsTimeout);
            }
            w.stall_mark = Some(w.completed);
        } else {
            w.stall_mark = None;
        }
        if w.heard || paused {
            // Heard from, or the server itself is not reading (the session has not taken
            // its messages yet): what the client sent waits unread, pongs included.
            w.heard = false;
            w.ping_out = false;
        } else if w.ping_out {
            debug!("conn={} WebSocket ping unanswered: closing", self.id);
            return Err(Close::WsTimeout);
        } else {
            w.ping_out = true;
            frame::encode(&mut self.wbuf, true, OpCode::Ping, b"", None);
        }
        self.arm(ctx, Deadline::Ping, every);
        self.ws_pump(ctx)
    }

    /// The server drains: close with 1001 (going away); the client's answer, or the
    /// linger deadline, ends the connection.
    pub fn ws_going_away(&mut self, ctx: &mut Ctx) -> Step {
        let Phase::Ws(w) = &mut self.phase else {
            return Ok(());
        };
        if w.close_sent || w.answer_due.is_some() {
            // Closing already (the peer's close is answered once its session got to it).
            return Ok(());
        }
        w.close_sent = true;
        // What the senders queued first goes first: take it (unless the loop's own buffer
        // is still being written, then it waits behind that — the limit bounds both).
        let mut out = w.sender.lock();
        out.closed = true;
        out.close = None;
        let queued = std::mem::take(&mut out.buf);
        drop(out);
        self.wbuf.extend_from_slice(&queued);
        frame::encode_close(
            &mut self.wbuf,
            Some(CloseCode::GOING_AWAY),
            "server shutting down",
            None,
        );
        self.ws_tell_close(CloseCode::GOING_AWAY, "server shutting down".into());
        self.ws_dispatch(ctx);
        self.arm(ctx, Deadline::Linger, ctx.linger);
        self.ws_pump(ctx)
    }

    /// The connection is torn down: the senders see it closed, and the session hears of
    /// it (1006 when no close was exchanged) — now if it is home, else when it comes
    /// back (`Ctx::ws_orphans`).
    pub(super) fn release_ws(&mut self, ctx: &mut Ctx, mut w: Box<WsConn>) {
        w.sender.shut();
        let stats = ctx.stats();
        stats.bump(&stats.ws_closed, 1);
        if w.finished {
            return; // its on_close ran
        }
        if !w.told_close {
            w.pending
                .push(Event::Close(CloseCode::ABNORMAL, String::new()));
        }
        if w.session.is_none() {
            let mut out = w.sender.lock();
            if out.at_worker {
                // The worker delivers it after its current job (`session::run_job`).
                out.orphan = Some(std::mem::take(&mut w.pending));
                return;
            }
        }
        match w.session.take() {
            Some(session) => {
                let job = WsJob {
                    loop_id: ctx.loop_id,
                    token: self.token,
                    gen_: self.gen_,
                    session,
                    sender: w.sender.clone(),
                    events: w.pending,
                };
                if let Err(e) = ctx.jobs.send_always(Job::Ws(job)) {
                    // No worker is left (the server is stopping): drop it here.
                    drop(e.into_inner());
                }
            }
            None => {
                ctx.ws_orphans
                    .insert((self.token, self.gen_), (w.sender.clone(), w.pending));
            }
        }
    }
}

/// A session came back for a connection that is gone: it gets what was left for it
/// (at least its `on_close`), unless it already had that.
pub(crate) fn orphan_done(ctx: &mut Ctx, done: WsDone) {
    let left = ctx.ws_orphans.remove(&(done.token, done.gen_));
    let Some(session) = done.session else {
        return; // its on_close ran
    };
    let (sender, events) = match left {
        Some(l) => l,
        None => return, // cannot happen: release_ws leaves an entry
    };
    let job = WsJob {
        loop_id: ctx.loop_id,
        token: done.token,
        gen_: done.gen_,
        session,
        sender,
        events,
    };
    if let Err(e) = ctx.jobs.send_always(Job::Ws(job)) {
        drop(e.into_inner());
    }
}
