//! WebSocket connections served by the event loop: the application's [`Session`] per
//! connection, the [`Sender`] that queues frames to it from any thread, and the
//! [`Upgrader`] that checks a handshake (and its `Origin`) and answers it.
//!
//! After the `101`, the connection never reaches a worker as a whole: the event loop reads
//! and decodes its frames, answers pings, closes it when it stops answering ours, and
//! hands each batch of complete messages to the pool as one short job that calls the
//! session. A connection costs its decoder and, only while there is traffic, its buffers —
//! no thread. Sending never blocks: frames are encoded into a per-connection queue whose
//! size is bounded ([`Upgrader::send_queue_bytes`]); a client that stops reading until the
//! queue is full is disconnected, never buffered without limit.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::frame::{self, OpCode};
use super::handshake::{self, HandshakeError};
use super::{CloseCode, Message};
use crate::pool::{Completion, Notifier};
use crate::request::Request;
use crate::response::Response;

/// What the application does with one WebSocket connection.
///
/// Its methods run on a worker, one call at a time and in order for a connection (a
/// session is never called from two threads at once; it moves to the worker with the
/// messages and back), so it may keep per-connection state in `self` without a lock.
/// Each call must be short: a broadcast is one [`Sender::send`] per member, never a
/// blocking wait. Pings, pongs and the close handshake are the engine's; a session sees
/// only text and binary messages.
///
/// ```
/// use h1server::ws::{Message, Sender, Session, Upgrader};
/// use h1server::{Request, Response};
///
/// /// Sends every message back.
/// struct Echo;
///
/// impl Session for Echo {
///     fn on_message(&mut self, ws: &Sender, msg: Message) {
///         let _ = ws.send(msg);
///     }
/// }
///
/// fn echo(req: &mut Request) -> Response {
///     Upgrader::new().upgrade(req, Echo)
/// }
/// # let _ = echo;
/// ```
pub trait Session: Send + 'static {
    /// The `101` is written: the connection is open. The default does nothing.
    fn on_open(&mut self, ws: &Sender) {
        let _ = ws;
    }

    /// A complete text or binary message ([`Message::Text`] or [`Message::Binary`]).
    fn on_message(&mut self, ws: &Sender, msg: Message);

    /// The connection ended; the last call, made once, whatever ended it: `code` is the
    /// peer's close code ([`CloseCode::NO_STATUS`] for a close frame without one), the code
    /// the server closed with (a protocol error, [`CloseCode::GOING_AWAY`] when it stops,
    /// [`Sender::close`]), or [`CloseCode::ABNORMAL`] when the connection dropped without a
    /// close handshake (reset, unanswered pings, a full send queue). `ws` refuses sends
    /// from here on. The default does nothing.
    fn on_close(&mut self, ws: &Sender, code: CloseCode, reason: &str) {
        let _ = (ws, code, reason);
    }
}

/// Why [`Sender::send`] did not queue a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closed or closing: nothing more can be sent.
    Closed,
    /// The send queue was full: the client does not read what it is sent. The connection
    /// is closed (the frame was not queued); a hub should forget this member.
    Full,
    /// The message alone is larger than the send queue can ever hold (its bound:
    /// [`Upgrader::send_queue_bytes`], at least `max_message` + 14): it was not queued,
    /// and the connection is closed with [`CloseCode::TOO_BIG`] (1009) after what was
    /// queued before it.
    TooBig,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed => "the WebSocket is closed",
            SendError::Full => "the WebSocket's send queue is full: the client does not read",
            SendError::TooBig => "the message is larger than the WebSocket's send queue",
        })
    }
}

impl std::error::Error for SendError {}

/// Queues messages to one WebSocket connection, from any thread: cheap to clone, never
/// blocks. Frames are encoded at once into the connection's send queue, which the event
/// loop writes when the socket has room.
#[derive(Clone)]
pub struct Sender {
    shared: Arc<Shared>,
}

/// What the senders and the loop share about one connection.
pub(crate) struct Shared {
    out: Mutex<Out>,
    /// The connection's id (as in the server's logs and `Request::conn_id`).
    id: u64,
    peer: SocketAddr,
    /// Most bytes the queue may hold.
    limit: usize,
    /// Where to say the queue has frames: the connection's slot and its loop.
    route: (usize, u32, Notifier),
}

/// The send queue.
#[derive(Default)]
pub(crate) struct Out {
    /// Encoded frames not yet taken by the loop.
    pub buf: Vec<u8>,
    /// No more sends: a close frame is queued, the loop closed the connection, or the
    /// queue overflowed.
    pub closed: bool,
    /// The close frame an application queued ([`Sender::close`]): its code and reason.
    pub close: Option<(CloseCode, String)>,
    /// A send found the queue full: the loop drops the connection.
    pub overflow: bool,
    /// The loop was told there is something to take and has not taken it yet.
    pub notified: bool,
    /// The session is at a worker (set by the loop when it sends a job, cleared by the
    /// worker when the job is done).
    pub at_worker: bool,
    /// The connection ended while the session was at a worker: what it is still to hear
    /// (its close last). The worker delivers it, so it is never lost, even when the loop
    /// has stopped.
    pub orphan: Option<Vec<Event>>,
    /// The session panicked: it gets nothing more but its close.
    pub poisoned: bool,
}

impl Sender {
    pub(crate) fn new(
        id: u64,
        peer: SocketAddr,
        limit: usize,
        route: (usize, u32, Notifier),
    ) -> Sender {
        Sender {
            shared: Arc::new(Shared {
                out: Mutex::new(Out::default()),
                id,
                peer,
                limit,
                route,
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Out> {
        self.shared
            .out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a message: [`Message::Text`] and [`Message::Binary`] as data frames,
    /// [`Message::Ping`] and [`Message::Pong`] (at most 125 bytes, or `Closed` is not
    /// what you get: the payload is cut to 125), and [`Message::Close`] as
    /// [`close`](Self::close) does.
    pub fn send(&self, msg: Message) -> Result<(), SendError> {
        match msg {
            Message::Text(s) => self.frame(OpCode::Text, s.as_bytes()),
            Message::Binary(b) => self.frame(OpCode::Binary, &b),
            Message::Ping(p) => self.frame(OpCode::Ping, &p[..p.len().min(125)]),
            Message::Pong(p) => self.frame(OpCode::Pong, &p[..p.len().min(125)]),
            Message::Close(c) => {
                let (code, reason) = c.unwrap_or((CloseCode::NORMAL, String::new()));
                self.close(code, &reason);
                Ok(())
            }
        }
    }

    /// Queues a text message.
    pub fn text(&self, text: &str) -> Result<(), SendError> {
        self.frame(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn binary(&self, data: &[u8]) -> Result<(), SendError> {
        self.frame(OpCode::Binary, data)
    }

    /// Starts the close handshake with `code` (one valid on the wire, else 1000 is sent)
    /// and `reason` (cut to 123 bytes at a character boundary): queued after what was
    /// sent before; later sends fail. The connection closes when the client answers,
    /// or 2 s later. Closing twice does nothing.
    pub fn close(&self, code: CloseCode, reason: &str) {
        let code = if code.is_valid() {
            code
        } else {
            CloseCode::NORMAL
        };
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut out = self.lock();
        if out.closed {
            return;
        }
        out.closed = true;
        out.close = Some((code, reason[..end].to_string()));
        self.notify(&mut out);
    }

    /// True once nothing more can be sent (closed or closing).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The connection's id: unique for the server's run, the same as in its logs and in
    /// [`Request::conn_id`](crate::Request::conn_id) — a key for a hub's member table.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer
    }

    fn frame(&self, op: OpCode, payload: &[u8]) -> Result<(), SendError> {
        let mut out = self.lock();
        if out.closed {
            return Err(if out.overflow {
                SendError::Full
            } else {
                SendError::Closed
            });
        }
        let size = frame::MAX_HEADER.saturating_add(payload.len());
        if size > self.shared.limit {
            // No client, however fast, makes room for it: not an overflow but a message
            // too big for this connection. What was queued goes out, then a close 1009
            // (the loop's close path, as for `close`) — not a drop without a close frame.
            out.closed = true;
            out.close = Some((CloseCode::TOO_BIG, "message too big to send".into()));
            self.notify(&mut out);
            return Err(SendError::TooBig);
        }
        if out.buf.len() + size > self.shared.limit {
            out.closed = true;
            out.overflow = true;
            out.buf = Vec::new();
            self.notify(&mut out);
            return Err(SendError::Full);
        }
        frame::encode(&mut out.buf, true, op, payload, None);
        self.notify(&mut out);
        Ok(())
    }

    /// Tells the loop once per batch of sends: a notice in flight covers everything queued
    /// until the loop takes the queue.
    fn notify(&self, out: &mut Out) {
        if !out.notified {
            out.notified = true;
            let (token, gen_, n) = &self.shared.route;
            n.send(Completion::WsOutput {
                token: *token,
                gen_: *gen_,
            });
        }
    }

    /// The session reaches its close (on a worker, before `on_close`): sends fail from
    /// now on. What it queued stays, for the loop to write before a close answer still
    /// due (the peer closed first); the loop is told.
    pub(crate) fn seal(&self) {
        let mut out = self.lock();
        if !out.closed {
            out.closed = true;
            self.notify(&mut out);
        }
    }

    /// The loop's side: marks the connection gone (sends fail from now on).
    pub(crate) fn shut(&self) {
        let mut out = self.lock();
        out.closed = true;
        out.buf = Vec::new();
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("id", &self.shared.id)
            .field("peer", &self.shared.peer)
            .finish()
    }
}

/// Which pages may open a WebSocket (RFC 6455 §10.2: a browser sends the page's origin,
/// and only the server can refuse another site's page). A request without `Origin` (not
/// from a browser) passes every policy but [`Origins::allow`]'s list.
#[derive(Clone, Default)]
pub enum Origins {
    /// The `Origin`'s host (and port) must be the request's `Host` (gorilla/websocket's
    /// default `CheckOrigin`). The default.
    #[default]
    SameOrigin,
    /// Only these origins (`scheme://host[:port]`, compared without regard to case), and
    /// requests without `Origin`.
    List(Vec<String>),
    /// Any origin: for APIs whose clients are not browsers, or that authenticate each
    /// connection otherwise.
    Any,
    /// A callback decides.
    Check(Arc<dyn Fn(&Request) -> bool + Send + Sync>),
}

impl Origins {
    /// An allow-list of origins, such as `["https://example.com"]`.
    pub fn allow<I, S>(origins: I) -> Origins
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Origins::List(origins.into_iter().map(Into::into).collect())
    }

    /// A callback that decides (true: allowed).
    pub fn check(f: impl Fn(&Request) -> bool + Send + Sync + 'static) -> Origins {
        Origins::Check(Arc::new(f))
    }

    /// Whether `req` may open a WebSocket.
    pub fn allows(&self, req: &Request) -> bool {
        let origin = req.header("origin").map(str::trim);
        match self {
            Origins::Any => true,
            Origins::Check(f) => f(req),
            Origins::List(list) => {
                origin.is_none_or(|o| list.iter().any(|a| a.trim().eq_ignore_ascii_case(o)))
            }
            Origins::SameOrigin => {
                let Some(origin) = origin else {
                    return true;
                };
                // `scheme://host[:port]`, nothing after; compared with `Host` as gorilla
                // does (host and port, any case) — or with an absolute-form target's
                // authority, which overrides Host (RFC 9112 §3.2.2).
                let Some((_, authority)) = origin.split_once("://") else {
                    return false;
                };
                req.host()
                    .is_some_and(|h| h.eq_ignore_ascii_case(authority))
            }
        }
    }
}

impl fmt::Debug for Origins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origins::SameOrigin => f.write_str("SameOrigin"),
            Origins::List(l) => f.debug_tuple("List").field(l).finish(),
            Origins::Any => f.write_str("Any"),
            Origins::Check(_) => f.write_str("Check(..)"),
        }
    }
}

/// Checks a WebSocket handshake and answers it (gorilla/websocket's `Upgrader`): the
/// origin policy, the limits and deadlines of the connections it opens.
///
/// Defaults: same-origin, messages up to 64 KiB, a send queue of 256 KiB, a ping every
/// 30 s (a client that answers nothing for two intervals is disconnected), no
/// subprotocol. The send queue always holds at least one message of `max_message`
/// (`max_message` + 14 bytes), so a session can answer any message it accepts.
#[derive(Clone, Debug)]
pub struct Upgrader {
    origins: Origins,
    max_message: usize,
    send_queue_bytes: usize,
    ping_interval: Duration,
    protocols: Vec<String>,
}

impl Default for Upgrader {
    fn default() -> Self {
        Upgrader::new()
    }
}

impl Upgrader {
    /// An upgrader with the defaults.
    pub fn new() -> Upgrader {
        Upgrader {
            origins: Origins::SameOrigin,
            max_message: 64 * 1024,
            send_queue_bytes: 256 * 1024,
            ping_interval: Duration::from_secs(30),
            protocols: Vec::new(),
        }
    }

    /// Which pages may connect (a refused origin gets 403 before the upgrade).
    pub fn origins(mut self, origins: Origins) -> Self {
        self.origins = origins;
        self
    }

    /// The largest message a client may send, all fragments together; a larger one closes
    /// the connection with 1009.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes.max(1);
        self
    }

    /// The most bytes of frames waiting to be written to one client; a send that would
    /// pass it fails with [`SendError::Full`] and disconnects the client. The bound used
    /// is at least [`max_message`](Self::max_message) + 14 (one largest message and its
    /// frame header), whichever is set last: an echo of a message the connection accepted
    /// always fits an empty queue. A single message larger than the bound fails with
    /// [`SendError::TooBig`] and closes the connection with 1009.
    pub fn send_queue_bytes(mut self, bytes: usize) -> Self {
        self.send_queue_bytes = bytes.max(frame::MAX_HEADER + 125);
        self
    }

    /// How often the server pings a client it has not heard from; one that stays silent
    /// for two intervals is disconnected. At least 10 ms.
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.ping_interval = every.max(Duration::from_millis(10));
        self
    }

    /// The subprotocols this endpoint speaks, in its order of preference: the first one
    /// the client also offers is picked (`Sec-WebSocket-Protocol`).
    pub fn protocols<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = names.into_iter().map(Into::into).collect();
        self
    }

    /// Answers `req`: `403` for a refused origin, `400` or `426` for a bad handshake
    /// ([`HandshakeError::response`]), else the `101` after which `session` serves the
    /// connection on the event loop.
    pub fn upgrade(&self, req: &Request, session: impl Session) -> Response {
        self.upgrade_with(req, |_| session)
    }

    /// As [`upgrade`](Self::upgrade), making the session once the handshake is accepted
    /// (it is given the subprotocol picked, if any).
    pub fn upgrade_with<S: Session>(
        &self,
        req: &Request,
        make: impl FnOnce(Option<&str>) -> S,
    ) -> Response {
        if !self.origins.allows(req) {
            return Response::error(403, "WebSocket origin not allowed\n");
        }
        let mut accept = match handshake::check(req) {
            Ok(a) => a,
            Err(e) => return rejection(e),
        };
        if let Some(p) = self
            .protocols
            .iter()
            .find(|p| accept.protocols().iter().any(|o| o == *p))
            .cloned()
        {
            accept.select_protocol(&p);
        }
        let session = make(accept.selected_protocol());
        let mut resp = accept.response();
        resp.upgrade = Some(crate::upgrade::Takeover::WebSocket(Box::new(Start {
            session: Box::new(session),
            max_message: self.max_message,
            send_queue_bytes: self.queue_bound(),
            ping_interval: self.ping_interval,
        })));
        resp
    }
}

impl Upgrader {
    /// The send queue's bound for a connection: `send_queue_bytes`, raised to hold one
    /// message of `max_message` (and its largest frame header), so that answering a
    /// message the server accepted never fails for its size alone.
    fn queue_bound(&self) -> usize {
        self.send_queue_bytes
            .max(self.max_message.saturating_add(frame::MAX_HEADER))
    }
}

fn rejection(e: HandshakeError) -> Response {
    e.response()
}

/// What a `101` carries to the loop: the session and its connection's settings.
pub(crate) struct Start {
    pub session: Box<dyn Session>,
    pub max_message: usize,
    pub send_queue_bytes: usize,
    pub ping_interval: Duration,
}

/// What a job tells a session, in order.
pub(crate) enum Event {
    Open,
    Message(Message),
    Close(CloseCode, String),
}

impl Event {
    /// What it holds in memory (charged to the server's budget while it waits).
    pub fn size(&self) -> usize {
        std::mem::size_of::<Event>()
            + match self {
                Event::Message(Message::Text(t)) => t.capacity(),
                Event::Message(Message::Binary(b)) => b.capacity(),
                _ => 0,
            }
    }
}

/// Runs one job's events on a worker, then — if the connection ended meanwhile — what it
/// left for the session (its close). Returns the session when it is to be called again.
pub(crate) fn run_job(
    mut session: Box<dyn Session>,
    ws: &Sender,
    events: &mut Vec<Event>,
) -> Option<Box<dyn Session>> {
    let mut closed = deliver(&mut session, ws, events);
    if !closed {
        let orphan = {
            let mut out = ws.lock();
            out.at_worker = false;
            out.orphan.take()
        };
        if let Some(mut rest) = orphan {
            closed = deliver(&mut session, ws, &mut rest);
        }
    }
    if !closed {
        return Some(session);
    }
    // Its `Drop` is user code: caught like its callbacks.
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(session)));
    if dropped.is_err() {
        log::error!("conn={} dropping a WebSocket session panicked", ws.id());
    }
    None
}

/// Calls `session` for each event (on a worker); a panic is caught and logged, and the
/// connection is closed with 1011; a session that panicked hears nothing more but its
/// close. Returns whether the close event was delivered.
pub(crate) fn deliver(
    session: &mut Box<dyn Session>,
    ws: &Sender,
    events: &mut Vec<Event>,
) -> bool {
    let mut closed = false;
    for ev in events.drain(..) {
        if !matches!(ev, Event::Close(..)) && ws.lock().poisoned {
            continue;
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match ev {
            Event::Open => session.on_open(ws),
            Event::Message(m) => session.on_message(ws, m),
            Event::Close(code, reason) => {
                closed = true;
                // Everything before the close is handled: nothing it sends from here is
                // taken (the loop may now answer a peer's close after the queue).
                ws.seal();
                session.on_close(ws, code, &reason);
            }
        }));
        if r.is_err() {
            log::error!("conn={} a WebSocket session panicked", ws.id());
            ws.lock().poisoned = true;
            ws.close(CloseCode::INTERNAL, "");
        }
    }
    closed
}
