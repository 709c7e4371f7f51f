//! Responses: this module owns what a call hands back — the head, and the body read whole
//! ([`ClientResponse::bytes`], `text`, `json`) or streamed ([`BodyReader`]) — and putting
//! the connection back into the pool once its body has ended.
//! It never reads past the response's framing, never holds more than one read of
//! undelivered body bytes, and never returns a connection with bytes left unread.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::breaker::Pending;
use super::conn::{BodyLength, ResponseHead};
use super::driver::{Connection, Deadline};
use super::error::{ClientError, TimeoutKind};
use super::pool::Pool;
use crate::http::Version;

/// A response: its head, and a body not read yet.
///
/// Read the body whole with [`bytes`](Self::bytes), [`text`](Self::text) or
/// [`json`](Self::json), or stream it with [`into_reader`](Self::into_reader). The
/// connection returns to the pool when the body has been read to its end; dropping a
/// response before that closes it. Responses without a body (HEAD, 204, 304) and bodies
/// that arrived with the head release it at once.
#[derive(Debug)]
pub struct ClientResponse {
    head: ResponseHead,
    body: BodyReader,
}

impl ClientResponse {
    pub(crate) fn new(
        head: ResponseHead,
        conn: Connection,
        pool: Arc<Pool>,
        read_timeout: Duration,
        total: Option<Instant>,
    ) -> Self {
        let mut body = BodyReader {
            conn: Some(conn),
            pool,
            pending: Vec::new(),
            pos: 0,
            done: false,
            failure: None,
            read_timeout,
            total,
            outcome: None,
        };
        // Decode what came with the head: a response that is already whole gives its
        // connection back now, whether or not the caller reads the body.
        let _ = body.refill(false);
        ClientResponse { head, body }
    }

    /// Reports the call's outcome to its breaker when the body is over: a success at its
    /// end, a failure when it fails as the upstream's fault (reset, read timeout, bad
    /// framing); a limit of ours counts neither way.
    pub(crate) fn watch(&mut self, pending: Pending) {
        let body = &mut self.body;
        body.outcome = Some(pending);
        if body.done {
            body.settle(Some(true));
        } else if let Some(e) = &body.failure {
            let outcome = e.breaker_outcome();
            body.settle(outcome);
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.head.status)
    }

    /// HTTP/1.0 or HTTP/1.1, as the server answered.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The reason phrase (informative only; may be empty).
    pub fn reason(&self) -> &str {
        &self.head.reason
    }

    /// The first value of the header `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// Every UTF-8 value of the header `name`, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.head.header_values(name)
    }

    /// Every field, in order, names as sent and values as bytes.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.head
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The whole head, with the body's framing.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The body's length when the server announced it (`Content-Length`; 0 for
    /// responses without a body).
    pub fn content_length(&self) -> Option<u64> {
        match self.head.body {
            BodyLength::None => Some(0),
            BodyLength::Length(n) => Some(n),
            BodyLength::Chunked | BodyLength::CloseDelimited => None,
        }
    }

    /// Reads the whole body (at most `max_response_body_bytes`).
    pub fn bytes(mut self) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        if let Some(n) = self.content_length() {
            out.reserve(n.min(1 << 20) as usize);
        }
        loop {
            let chunk = self.body.available();
            out.extend_from_slice(chunk);
            let n = chunk.len();
            self.body.pos += n;
            if !self.body.refill(true)? {
                return Ok(out);
            }
        }
    }

    /// Reads the whole body as text (invalid UTF-8 is replaced by U+FFFD).
    pub fn text(self) -> Result<String, ClientError> {
        let bytes = self.bytes()?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads the whole body and deserialises it from JSON.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, ClientError> {
        let bytes = self.bytes()?;
        serde_json::from_slice(&bytes).map_err(ClientError::Json)
    }

    /// The body as a stream (`impl Read`): each `read` waits at most `read_timeout`,
    /// and never past the call's total deadline.
    pub fn into_reader(self) -> BodyReader {
        self.body
    }

    /// For a `101 Switching Protocols`: the socket, now speaking the new protocol, and
    /// the bytes the server sent after the head. Any other response comes back as `Err`.
    pub fn into_upgraded(mut self) -> Result<(TcpStream, Vec<u8>), Box<ClientResponse>> {
        let upgraded = self
            .body
            .conn
            .as_ref()
            .is_some_and(|c| c.core.is_upgraded());
        match self.body.conn.take() {
            Some(conn) if upgraded => Ok(conn.into_upgraded()),
            conn => {
                self.body.conn = conn;
                Err(Box::new(self))
            }
        }
    }
}

/// A response body being streamed; `read` returns 0 at its end, after which the
/// connection is back in the pool.
///
/// A failed read (a timeout, a reset, bad chunking, the body limit) is an `io::Error`
/// whose inner error is the [`ClientError`] (`e.into_inner()` and `downcast`); the
/// connection is closed and every later read fails too.
#[derive(Debug)]
pub struct BodyReader {
    /// The connection until the body ends (then pooled) or fails (then closed).
    conn: Option<Connection>,
    pool: Arc<Pool>,
    /// Decoded body bytes not handed out yet; `pos` is how many were.
    pending: Vec<u8>,
    pos: usize,
    /// True once the body ended.
    done: bool,
    /// An error found while decoding eagerly, for the next read to report.
    failure: Option<ClientError>,
    read_timeout: Duration,
    total: Option<Instant>,
    /// The call's outcome, for its breaker, until the body is over (`ClientResponse::watch`).
    outcome: Option<Pending>,
}

impl BodyReader {
    /// Reports the call's outcome to its breaker, once.
    fn settle(&mut self, outcome: Option<bool>) {
        if let Some(p) = self.outcome.take() {
            p.settle(outcome);
        }
    }

    fn available(&self) -> &[u8] {
        &self.pending[self.pos..]
    }

    /// Decodes the next piece into `pending` — with `io`, reading the socket once if
    /// need be; without, everything already buffered — and returns whether more may
    /// follow. Pools the connection at the end of the body, closes it on an error.
    fn refill(&mut self, io: bool) -> Result<bool, ClientError> {
        if self.pos < self.pending.len() {
            return Ok(true);
        }
        self.pending.clear();
        self.pos = 0;
        if self.done {
            return Ok(false);
        }
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(ClientError::Protocol("the body failed earlier"));
        };
        if conn.core.is_upgraded() {
            self.done = true;
            self.settle(Some(true));
            return Ok(false);
        }
        let deadline = io.then(|| Deadline::new(self.read_timeout, TimeoutKind::Read, self.total));
        loop {
            let before = self.pending.len();
            match conn.read_body(&mut self.pending, deadline) {
                Ok(true) => {
                    self.done = true;
                    self.settle(Some(true));
                    if let Some(conn) = self.conn.take() {
                        self.pool.put(conn);
                    }
                    return Ok(!self.pending.is_empty());
                }
                // Without I/O, keep decoding while the buffered bytes give more.
                Ok(false) if !io && self.pending.len() > before => {}
                Ok(false) => return Ok(true),
                Err(e) => {
                    if let Some(conn) = self.conn.take() {
                        conn.close();
                    }
                    self.settle(e.breaker_outcome());
                    if io {
                        return Err(e);
                    }
                    // Found while decoding eagerly: reported at the first read.
                    self.failure = Some(e);
                    return Ok(true);
                }
            }
        }
    }
}

impl Drop for BodyReader {
    /// A body dropped before its end, nothing of what was read having failed: the call
    /// counts as a success (its head and body came in good order as far as they went).
    fn drop(&mut self) {
        self.settle(Some(true));
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.available().is_empty() {
            if !self.refill(true)? {
                return Ok(0);
            }
        }
        let src = self.available();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        self.pos += n;
        Ok(n)
    }
}
