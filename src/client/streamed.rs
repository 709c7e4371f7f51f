//! Streamed request bodies: this module owns a request whose body the caller writes piece
//! by piece after the head ([`StreamedRequest`]), with the optional wait for
//! `100 Continue` (RFC 9110 §10.1.1) — what a reverse proxy needs to pass an upload of any
//! size through in constant memory.
//! It never buffers the body (each piece goes to the socket before `write` returns), never
//! retries (a streamed body cannot be sent twice), and never waits past a deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::debug;

use super::ClientInner;
use super::ResponseHead;
use super::call::Prepared;
use super::driver::{self, Connection, Deadline};
use super::error::{ClientError, TimeoutKind};
use super::pool::Pool;
use super::response::ClientResponse;

/// What [`StreamedRequest::await_continue`] found.
#[derive(Debug)]
pub enum Continue {
    /// The server said `100 Continue`, or did not answer within the wait (RFC 9110
    /// §10.1.1: a client "ought not wait for an indefinite period"): send the body.
    SendBody(StreamedRequest),
    /// The server answered before the body was sent (a `417`, `413`, `401`...): this
    /// is its final response; the body must not be sent.
    Answered(ClientResponse),
}

/// A request whose head is sent and whose body of a declared length the caller writes:
/// [`write`](Self::write) each piece, then [`finish`](Self::finish) for the response.
/// Made by [`RequestBuilder::send_streamed`](super::RequestBuilder::send_streamed).
/// Dropped before `finish`, its connection is closed.
#[derive(Debug)]
pub struct StreamedRequest {
    conn: Connection,
    pool: Arc<Pool>,
    /// Body bytes still owed to the server (the declared length minus those written).
    remaining: u64,
    write_timeout: Duration,
    response_header_timeout: Duration,
    read_timeout: Duration,
    /// The call's total deadline.
    total: Option<Instant>,
    /// The final answer's head, received while a [`write`](Self::write) was stalled or
    /// failed: [`early_response`](Self::early_response) returns it.
    early: Option<ResponseHead>,
}

impl ClientInner {
    /// Connects (always a fresh connection) and writes the head of a streamed request.
    pub(crate) fn start_streamed(
        self: &Arc<Self>,
        req: Prepared,
    ) -> Result<StreamedRequest, ClientError> {
        req.validate()?;
        let s = &self.settings;
        let remaining = req.streamed_len.unwrap_or(0);
        let mut conn = driver::connect(&req.url, s.connect_timeout, req.total, s.limits)?;
        let mut head = Vec::new();
        conn.core.write_request(
            &req.method,
            req.url.target(),
            &req.host,
            &req.header_pairs(),
            req.framing(),
            &mut head,
        )?;
        conn.send(
            &head,
            Deadline::new(s.write_timeout, TimeoutKind::Write, req.total),
        )?;
        debug!(
            "client conn={}: {} {} head sent, {remaining} body bytes to stream",
            conn.id, req.method, req.url
        );
        Ok(StreamedRequest {
            conn,
            pool: Arc::clone(&self.pool),
            remaining,
            write_timeout: s.write_timeout,
            response_header_timeout: s.response_header_timeout,
            read_timeout: s.read_timeout,
            total: req.total,
            early: None,
        })
    }
}

impl StreamedRequest {
    /// For a request sent with `Expect: 100-continue`: waits at most `wait` (and never
    /// past the call's deadline) for the server's `100 Continue` or its final answer.
    /// Without the expectation the server sends no `100`, so this waits the whole `wait`.
    pub fn await_continue(mut self, wait: Duration) -> Result<Continue, ClientError> {
        let deadline = Deadline::new(wait, TimeoutKind::ResponseHeader, self.total);
        match self.conn.read_continue_or_head(deadline) {
            Ok(None) => Ok(Continue::SendBody(self)),
            Err(ClientError::Timeout {
                which: TimeoutKind::ResponseHeader,
            }) => {
                debug!(
                    "client conn={}: no 100 Continue within {} ms; sending the body",
                    self.conn.id,
                    wait.as_millis()
                );
                Ok(Continue::SendBody(self))
            }
            Ok(Some(head)) => {
                // The body was never sent: the server may still expect it, so the
                // connection must not carry another request (RFC 9110 §10.1.1).
                self.conn.core.forbid_reuse();
                Ok(Continue::Answered(ClientResponse::new(
                    head,
                    self.conn,
                    self.pool,
                    self.read_timeout,
                    self.total,
                )))
            }
            Err(e) => {
                self.conn.close();
                Err(e)
            }
        }
    }

    /// Body bytes still to write.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Writes the next piece of the body (each write waits at most `write_timeout`). More
    /// bytes than the declared length is [`ClientError::InvalidRequest`], nothing written.
    ///
    /// While a write makes no progress it watches for the server's answer (RFC 9112 §9.6:
    /// a server that refuses a body — a `413` — answers before reading it, and may never
    /// read it nor close): once a final answer has come, the write stops and fails with
    /// [`ClientError::Io`] of kind `ConnectionAborted` (or with the error of a write the
    /// server's close failed), and [`early_response`](Self::early_response) returns that
    /// answer at once.
    pub fn write(&mut self, piece: &[u8]) -> Result<(), ClientError> {
        if piece.len() as u64 > self.remaining {
            return Err(ClientError::InvalidRequest(
                "more body bytes than the declared Content-Length",
            ));
        }
        if self.early.is_some() {
            return Err(answered_early());
        }
        let sent = self.conn.send_more_watching(
            piece,
            Deadline::new(self.write_timeout, TimeoutKind::Write, self.total),
        )?;
        if let Some(head) = sent {
            self.early = Some(head);
            return Err(answered_early());
        }
        self.remaining -= piece.len() as u64;
        Ok(())
    }

    /// After a failed [`write`](Self::write): the server's final answer, when it sent one
    /// before closing its side (RFC 9110 §15.5.14: a server may refuse a body it has not
    /// read — a `413` — and close), waiting at most `wait` for it. The connection is never
    /// pooled afterwards. `Err` when no answer came (the write's error is then the one
    /// to report).
    pub fn early_response(mut self, wait: Duration) -> Result<ClientResponse, ClientError> {
        self.conn.core.forbid_reuse();
        let head = match self.early.take() {
            Some(head) => Ok(head),
            None => {
                self.conn
                    .read_head(Deadline::new(wait, TimeoutKind::ResponseHeader, self.total))
            }
        };
        match head {
            Ok(head) => Ok(ClientResponse::new(
                head,
                self.conn,
                self.pool,
                self.read_timeout,
                self.total,
            )),
            Err(e) => {
                self.conn.close();
                Err(e)
            }
        }
    }

    /// Once the whole body is written: waits for the response head (at most
    /// `response_header_timeout`) and returns the response, its body to be read as from
    /// [`RequestBuilder::send`](super::RequestBuilder::send). Called with body bytes
    /// still owed, it fails with [`ClientError::InvalidRequest`] and closes the connection
    /// — unless a [`write`](Self::write) failed because the server answered first: then it
    /// returns that answer, as [`early_response`](Self::early_response) does.
    pub fn finish(mut self) -> Result<ClientResponse, ClientError> {
        if self.early.is_some() {
            return self.early_response(Duration::ZERO);
        }
        if self.remaining > 0 {
            self.conn.close();
            return Err(ClientError::InvalidRequest(
                "the body ended before its declared Content-Length",
            ));
        }
        let head = self.conn.read_head(Deadline::new(
            self.response_header_timeout,
            TimeoutKind::ResponseHeader,
            self.total,
        ));
        match head {
            Ok(head) => Ok(ClientResponse::new(
                head,
                self.conn,
                self.pool,
                self.read_timeout,
                self.total,
            )),
            Err(e) => {
                self.conn.close();
                Err(e)
            }
        }
    }
}

/// A body write stopped because the server's final answer came first.
fn answered_early() -> ClientError {
    ClientError::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "the server answered before the whole body was sent (see early_response)",
    ))
}
