//! The blocking driver: this stage owns one client connection's socket — connecting with
//! a deadline, writing a request, reading until the core (`conn.rs`) has a head or a body
//! piece, and telling a live idle connection from one the server closed.
//! It never interprets HTTP itself (the core does) and never waits past the deadline it
//! was given: every read and write runs under a socket timeout cut to the earlier of the
//! step's own limit and the call's total deadline.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use log::{debug, trace};

use super::conn::{ClientConn, Event, Limits, ResponseHead};
use super::error::{ClientError, TimeoutKind};
use super::url::Url;

/// How much one read asks for: the buffer is at most `max_head_bytes` plus this.
const READ_CHUNK: usize = 16 * 1024;

/// How long a request write that makes no progress waits before it looks for an answer
/// the server sent early (RFC 9112 §9.6 / RFC 9110 §15.5.14: a server refusing a body
/// answers before reading it, and may never read it).
const STALLED_WRITE_CHECK: Duration = Duration::from_millis(50);

/// Where a pooled connection goes back: the lower-cased host and the port.
pub(crate) type PoolKey = (String, u16);

/// Numbers connections in log lines (`client conn=N`).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The deadline of one step (connect, write, head, a body read) under the call's total.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    /// When this step's own limit expires.
    step: Instant,
    /// Which limit `step` is, for the error.
    kind: TimeoutKind,
    /// The call's total deadline, if any.
    total: Option<Instant>,
}

impl Deadline {
    /// `limit` from now for a step of `kind`, under the call's `total`.
    pub(crate) fn new(limit: Duration, kind: TimeoutKind, total: Option<Instant>) -> Self {
        let now = Instant::now();
        Deadline {
            step: now
                .checked_add(limit)
                .unwrap_or(now + Duration::from_secs(86_400 * 365)),
            kind,
            total,
        }
    }

    /// Which limit ends first.
    fn binding(&self) -> (Instant, TimeoutKind) {
        match self.total {
            Some(t) if t <= self.step => (t, TimeoutKind::Total),
            _ => (self.step, self.kind),
        }
    }

    /// The time left, or the timeout error when there is none (a zero socket timeout
    /// would mean "no timeout" to the OS).
    fn left(&self) -> Result<Duration, ClientError> {
        let (at, which) = self.binding();
        match at.checked_duration_since(Instant::now()) {
            Some(d) if d >= Duration::from_millis(1) => Ok(d),
            _ => Err(ClientError::Timeout { which }),
        }
    }

    /// The error for a socket operation that timed out.
    fn expired(&self) -> ClientError {
        ClientError::Timeout {
            which: self.binding().1,
        }
    }
}

/// One TCP connection with its protocol state and its unconsumed input.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    pub(crate) core: ClientConn,
    /// Received and not yet consumed by the core: at most `max_head_bytes` + one read.
    buf: Vec<u8>,
    /// True once the server's side is closed (read returned 0).
    eof: bool,
    /// Response bytes received since the last request was written: 0 when a failure
    /// happened "before any response byte" (the stale-connection rule).
    received: u64,
    pub(crate) key: PoolKey,
    /// Requests written on this connection; above 1 it was reused.
    pub(crate) requests: u32,
    /// For log lines.
    pub(crate) id: u64,
}

/// Opens a connection to the URL's host, trying each resolved address in turn.
///
/// # Warning
///
/// Name resolution (`getaddrinfo`) is not bounded by the deadline: use addresses, or a
/// resolver that answers quickly, where that matters.
pub(crate) fn connect(
    url: &Url,
    connect_timeout: Duration,
    total: Option<Instant>,
    limits: Limits,
) -> Result<Connection, ClientError> {
    let upstream = url.upstream();
    let addrs: Vec<SocketAddr> = (url.host(), url.port())
        .to_socket_addrs()
        .map_err(|source| ClientError::Connect {
            upstream: upstream.clone(),
            source,
        })?
        .collect();
    let deadline = Deadline::new(connect_timeout, TimeoutKind::Connect, total);
    let mut last = ClientError::Connect {
        upstream: upstream.clone(),
        source: io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address"),
    };
    for addr in addrs {
        let left = deadline.left()?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => {
                // Requests are written whole; Nagle would only delay the last segment.
                let _ = stream.set_nodelay(true);
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                debug!("client conn={id} connected to {addr} ({upstream})");
                return Ok(Connection {
                    stream,
                    core: ClientConn::new(limits),
                    buf: Vec::new(),
                    eof: false,
                    received: 0,
                    key: (url.host().to_string(), url.port()),
                    requests: 0,
                    id,
                });
            }
            Err(e) if is_timeout(&e) => last = deadline.expired(),
            Err(source) => {
                last = ClientError::Connect {
                    upstream: upstream.clone(),
                    source,
                }
            }
        }
    }
    Err(last)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

impl Connection {
    /// True when an idle connection cannot carry a request: the server closed it (EOF or
    /// reset), or sent bytes nobody asked for (a `408` before closing). One non-blocking
    /// peek, no byte consumed.
    pub(crate) fn is_stale(&self) -> bool {
        if self.eof || !self.buf.is_empty() || !self.core.is_idle() {
            return true;
        }
        if self.stream.set_nonblocking(true).is_err() {
            return true;
        }
        let mut probe = [0u8; 1];
        let alive = matches!(self.stream.peek(&mut probe), Err(ref e) if e.kind() == io::ErrorKind::WouldBlock);
        !(alive && self.stream.set_nonblocking(false).is_ok())
    }

    /// True when the connection may go back to the pool: the response ended with the
    /// connection persistent and nothing unread behind it.
    pub(crate) fn is_reusable(&self) -> bool {
        self.core.is_idle() && self.buf.is_empty() && !self.eof
    }

    /// Writes a whole request (head and body, already encoded).
    pub(crate) fn send(&mut self, bytes: &[u8], deadline: Deadline) -> Result<(), ClientError> {
        self.requests += 1;
        self.received = 0;
        self.send_more(bytes, deadline)
    }

    /// Writes a whole request (head and body, already encoded) while watching for an
    /// answer that comes before its end. RFC 9112 §9.6: a client "SHOULD monitor the
    /// network connection for an error response while it is transmitting the request";
    /// one that sees the server is not taking the body "SHOULD immediately cease
    /// transmitting the body and close its side of the connection". So when the write
    /// stalls (the server stopped reading) or fails (it closed, often a reset), a final
    /// response head already received is returned (`Ok(Some)`), the rest of the request
    /// unsent and the connection never reused. A server still reading gets the whole
    /// request (`Ok(None)`), even if it answered early.
    pub(crate) fn send_watching(
        &mut self,
        bytes: &[u8],
        deadline: Deadline,
    ) -> Result<Option<ResponseHead>, ClientError> {
        self.requests += 1;
        self.received = 0;
        self.send_more_watching(bytes, deadline)
    }

    /// Writes more bytes of the request in flight (a streamed body's next piece) while
    /// watching for an early answer, as [`send_watching`](Self::send_watching) does.
    pub(crate) fn send_more_watching(
        &mut self,
        bytes: &[u8],
        deadline: Deadline,
    ) -> Result<Option<ResponseHead>, ClientError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let left = deadline.left()?;
            self.stream
                .set_write_timeout(Some(left.min(STALLED_WRITE_CHECK)))
                .map_err(ClientError::Io)?;
            match self.stream.write(rest) {
                Ok(0) => return self.answer_after_failed_write(ClientError::ConnectionClosed),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    if let Some(head) = self.early_answer()? {
                        return Ok(Some(head));
                    }
                    if deadline.left().is_err() {
                        return Err(deadline.expired());
                    }
                }
                Err(e) if is_closed(&e) => {
                    return self.answer_after_failed_write(ClientError::ConnectionClosed);
                }
                Err(e) => return self.answer_after_failed_write(ClientError::Io(e)),
            }
        }
        trace!("client conn={} wrote {} bytes", self.id, bytes.len());
        Ok(None)
    }

    /// While a write is stalled: decodes what the server sent so far, without waiting.
    /// A final head ends the request (its connection is not reused); interim responses
    /// are skipped; `None` when no final head is there yet.
    fn early_answer(&mut self) -> Result<Option<ResponseHead>, ClientError> {
        let mut sink = Vec::new();
        loop {
            match self.poll(&mut sink)? {
                Event::NeedMore => {
                    if !self.fill_now()? {
                        return Ok(None);
                    }
                }
                Event::Informational(h) => {
                    debug!("client conn={} interim response {}", self.id, h.status);
                }
                Event::Head(h) => {
                    debug!(
                        "client conn={} answered {} before the end of the request; the rest is not sent",
                        self.id, h.status
                    );
                    self.core.forbid_reuse();
                    return Ok(Some(h));
                }
                Event::Data(_) | Event::End { .. } => {
                    return Err(ClientError::Protocol("body before the response head"));
                }
            }
        }
    }

    /// The write failed (the server closed or reset the connection): the answer it sent
    /// before, when there is one (already in the socket's buffer: no wait beyond the
    /// write's deadline); else the write's error.
    fn answer_after_failed_write(
        &mut self,
        error: ClientError,
    ) -> Result<Option<ResponseHead>, ClientError> {
        self.core.forbid_reuse();
        let mut sink = Vec::new();
        loop {
            match self.poll(&mut sink) {
                Ok(Event::NeedMore) => match self.fill_now() {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return Err(error),
                },
                Ok(Event::Informational(_)) => {}
                Ok(Event::Head(h)) => {
                    debug!(
                        "client conn={} answered {} and closed before the end of the request",
                        self.id, h.status
                    );
                    return Ok(Some(h));
                }
                // Nothing (or nothing valid) came before the close: the write's error
                // says what happened (and keeps the stale-connection retry's verdict).
                Ok(Event::Data(_) | Event::End { .. }) | Err(_) => return Err(error),
            }
        }
    }

    /// Reads once without waiting: `Ok(true)` when bytes (or EOF) arrived.
    fn fill_now(&mut self) -> Result<bool, ClientError> {
        if self.eof {
            return Ok(false);
        }
        self.stream.set_nonblocking(true).map_err(ClientError::Io)?;
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let r = loop {
            match self.stream.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        self.buf.truncate(len + *r.as_ref().unwrap_or(&0));
        self.stream
            .set_nonblocking(false)
            .map_err(ClientError::Io)?;
        match r {
            Ok(0) => {
                self.eof = true;
                Ok(true)
            }
            Ok(n) => {
                self.received += n as u64;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if is_closed(&e) && self.received == 0 => Err(ClientError::ConnectionClosed),
            Err(e) => Err(ClientError::Io(e)),
        }
    }

    /// Writes more bytes of the request in flight (a streamed body's next piece).
    pub(crate) fn send_more(
        &mut self,
        bytes: &[u8],
        deadline: Deadline,
    ) -> Result<(), ClientError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let left = deadline.left()?;
            self.stream
                .set_write_timeout(Some(left))
                .map_err(ClientError::Io)?;
            match self.stream.write(rest) {
                Ok(0) => return Err(ClientError::ConnectionClosed),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(deadline.expired()),
                // Nothing of the response can have been read yet.
                Err(e) if is_closed(&e) => return Err(ClientError::ConnectionClosed),
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
        trace!("client conn={} wrote {} bytes", self.id, bytes.len());
        Ok(())
    }

    /// True when no byte of the current response has arrived.
    pub(crate) fn nothing_received(&self) -> bool {
        self.received == 0
    }

    /// Reads until the final response head; interim responses are logged and skipped.
    pub(crate) fn read_head(&mut self, deadline: Deadline) -> Result<ResponseHead, ClientError> {
        let mut sink = Vec::new();
        loop {
            match self.poll(&mut sink)? {
                Event::NeedMore => self.fill(deadline)?,
                Event::Informational(h) => {
                    debug!("client conn={} interim response {}", self.id, h.status);
                }
                Event::Head(h) => return Ok(h),
                Event::Data(_) | Event::End { .. } => {
                    return Err(ClientError::Protocol("body before the response head"));
                }
            }
        }
    }

    /// Reads until `100 Continue` or the final head, whichever comes first (for a request
    /// sent with `Expect: 100-continue`); other interim responses are skipped.
    pub(crate) fn read_continue_or_head(
        &mut self,
        deadline: Deadline,
    ) -> Result<Option<ResponseHead>, ClientError> {
        let mut sink = Vec::new();
        loop {
            match self.poll(&mut sink)? {
                Event::NeedMore => self.fill(deadline)?,
                Event::Informational(h) if h.status == 100 => return Ok(None),
                Event::Informational(h) => {
                    debug!("client conn={} interim response {}", self.id, h.status);
                }
                Event::Head(h) => return Ok(Some(h)),
                Event::Data(_) | Event::End { .. } => {
                    return Err(ClientError::Protocol("body before the response head"));
                }
            }
        }
    }

    /// Appends the next body piece to `out`: `Ok(true)` once the body has ended. With
    /// `deadline` None only the bytes already buffered are decoded (`Ok(false)` when they
    /// are used up).
    pub(crate) fn read_body(
        &mut self,
        out: &mut Vec<u8>,
        deadline: Option<Deadline>,
    ) -> Result<bool, ClientError> {
        loop {
            match self.poll(out)? {
                Event::NeedMore => match deadline {
                    Some(d) => self.fill(d)?,
                    None => return Ok(false),
                },
                Event::Data(_) => return Ok(false),
                Event::End { reusable } => {
                    trace!(
                        "client conn={} response ended, reusable={reusable}",
                        self.id
                    );
                    return Ok(true);
                }
                Event::Head(_) | Event::Informational(_) => {
                    return Err(ClientError::Protocol("a second head inside a body"));
                }
            }
        }
    }

    /// One step of the core over the buffered bytes.
    fn poll(&mut self, out: &mut Vec<u8>) -> Result<Event, ClientError> {
        let (used, ev) = self.core.poll(&self.buf, self.eof, out)?;
        self.buf.drain(..used);
        Ok(ev)
    }

    /// Reads once (at most [`READ_CHUNK`] bytes) into the buffer.
    fn fill(&mut self, deadline: Deadline) -> Result<(), ClientError> {
        loop {
            let left = deadline.left()?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(ClientError::Io)?;
            let len = self.buf.len();
            self.buf.resize(len + READ_CHUNK, 0);
            let r = self.stream.read(&mut self.buf[len..]);
            self.buf.truncate(len + *r.as_ref().unwrap_or(&0));
            match r {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.received += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(deadline.expired()),
                Err(e) if is_closed(&e) && self.received == 0 => {
                    return Err(ClientError::ConnectionClosed);
                }
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }

    /// The socket and the bytes read past a 101's head, for the protocol that follows.
    pub(crate) fn into_upgraded(self) -> (TcpStream, Vec<u8>) {
        (self.stream, self.buf)
    }

    /// Closes both directions now (the drop would too; this says so in the log).
    pub(crate) fn close(self) {
        debug!("client conn={} closed", self.id);
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
