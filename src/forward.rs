//! Upstream exchanges the event loop performs for a handler: the handler (on a worker)
//! decides where a request goes and encodes it; the loop connects (or takes a pooled
//! connection), writes the request, reads the answer's head with the client's sans-I/O
//! core, and relays the body to the client — so a request waiting for a slow upstream
//! holds no worker, only its connection's state on the loop. What the answer's head
//! becomes (header policy, user hooks, error pages) is decided on a worker, in short jobs
//! ([`Respond`]).
//!
//! The reverse proxy (`crate::proxy`) is the user of this. Nothing here touches a socket:
//! `conn/forward.rs` is the loop's side.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::client::{ClientError, Limits, ResponseHead};
use crate::response::Response;

/// One upstream exchange, as a handler asks for it ([`Response::forward`]).
pub(crate) struct Exchange {
    /// Where to connect, in order, and the request head as it goes to each (it names the
    /// upstream): a refused connection moves to the next before anything was sent.
    pub attempts: Vec<(SocketAddr, Vec<u8>)>,
    /// The request body, the same for every attempt (sent after the head; empty for none).
    pub body: Vec<u8>,
    /// The client's body still to come (a body over `max_body_bytes`): the loop relays it
    /// from the client's socket to the upstream's as it arrives, after the head.
    pub upload: Option<UploadBody>,
    /// Safe to send again on a fresh connection when a pooled one turns out closed.
    pub idempotent: bool,
    pub connect_timeout: Duration,
    /// From the request written to the answer's head.
    pub header_timeout: Duration,
    /// Between two reads of the answer's body.
    pub read_timeout: Duration,
    /// For the upstream to take more of a relayed request body.
    pub write_timeout: Duration,
    /// Idle connections to keep for this address (on this loop).
    pub max_idle: usize,
    pub limits: Limits,
    /// Turns the upstream's head (or failure) into the client's answer, on a worker.
    pub respond: Box<dyn Respond>,
    /// Headers the handler's middleware set on its answer (a request id, CORS): they
    /// replace the upstream's of the same name in the client's answer.
    pub extra_headers: Vec<(
        std::borrow::Cow<'static, str>,
        std::borrow::Cow<'static, str>,
    )>,
    /// Called with the client's final status once it is decided (the access log's line
    /// waits for it), on a worker.
    pub on_status: Vec<Box<dyn FnOnce(u16) + Send>>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("attempts", &self.attempts.len())
            .finish()
    }
}

/// A request body relayed from the client to the upstream by the loop, never held whole:
/// the client is read a window at a time, and only as fast as the upstream takes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UploadBody {
    /// Its `Content-Length` (the head sent upstream says the same).
    pub len: u64,
    /// The head sent upstream carries `Expect: 100-continue` (the client's): the body
    /// waits for the upstream's `100` — or its final answer, which then is the client's
    /// and the body is never read — for at most `continue_timeout`, then goes anyway.
    pub expect_continue: bool,
    pub continue_timeout: Duration,
}

/// What the client is answered, decided on a worker once the upstream answered or failed.
pub(crate) trait Respond: Send + 'static {
    /// The upstream's final head. `Ok(response)`: its status and headers are the client's
    /// answer and the upstream's body is relayed after them (the response's own body is
    /// ignored; framing is the engine's). `Err(response)`: that complete answer instead,
    /// and the upstream's body is not read.
    fn head(self: Box<Self>, attempt: usize, head: &ResponseHead) -> Result<Response, Response>;
    /// The exchange failed before a head arrived (on `attempt`, the last one tried): the
    /// answer (502, 504, ...).
    fn error(self: Box<Self>, attempt: usize, err: ExchangeError) -> Response;
    /// The client's head, decided on the event loop when no user code is involved (no
    /// response hook): `None` sends the head to a worker ([`head`](Self::head)). Engine
    /// code only, quick, never blocking; the fields borrow from `head` (and `self`) where
    /// they pass through, since the loop encodes them at once.
    fn head_on_loop<'h>(&'h self, attempt: usize, head: &'h ResponseHead) -> Option<LoopHead<'h>> {
        let _ = (attempt, head);
        None
    }
    /// The fields of an interim (1xx) answer from the upstream, rewritten for the client
    /// (the engine adds `Date`); `None`: it is not forwarded. Runs on the event loop:
    /// engine code only, quick, never blocking; no user hook sees an interim answer.
    fn interim_fields<'h>(
        &'h self,
        attempt: usize,
        head: &'h ResponseHead,
    ) -> Option<Vec<(Cow<'h, str>, Cow<'h, str>)>> {
        let _ = (attempt, head);
        None
    }
    /// Attempt `attempt`'s connection was refused (the next is tried, if any). Runs on the
    /// event loop: engine code only, quick, never blocking (passive health marks).
    fn refused(&self, attempt: usize);
}

/// The client's head as the loop decides it ([`Respond::head_on_loop`]): the status and
/// the fields, in order (the engine adds `Date` and the framing).
pub(crate) struct LoopHead<'h> {
    pub status: u16,
    pub fields: Vec<(Cow<'h, str>, Cow<'h, str>)>,
}

/// Why an exchange failed before the upstream's head.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// The connection could not be made (refused, unreachable).
    Connect(io::Error),
    /// No connection within the connect timeout.
    ConnectTimeout,
    /// No head within the header timeout after the request was written.
    HeaderTimeout,
    /// Reading or writing failed (reset, closed before the head).
    Io(io::Error),
    /// The upstream's answer was not valid HTTP/1.1.
    Protocol(ClientError),
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Connect(e) => write!(f, "connect: {e}"),
            ExchangeError::ConnectTimeout => f.write_str("connect timed out"),
            ExchangeError::HeaderTimeout => f.write_str("no response head in time"),
            ExchangeError::Io(e) => write!(f, "{e}"),
            ExchangeError::Protocol(e) => write!(f, "{e}"),
        }
    }
}

impl ExchangeError {
    /// True for the timeouts (answered 504; the rest 502).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ExchangeError::ConnectTimeout | ExchangeError::HeaderTimeout
        )
    }

    /// True when the upstream refused or could not be reached (passive health).
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            ExchangeError::Connect(_) | ExchangeError::ConnectTimeout
        )
    }
}

/// How the upstream's body goes to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relay {
    /// Byte for byte (a `Content-Length` body, or an HTTP/1.0 client's close-delimited
    /// one).
    Raw,
    /// Re-chunked (the upstream's body is chunked or close-delimited; the client speaks
    /// HTTP/1.1).
    Chunked,
    /// No body (HEAD, 1xx/204/304).
    None,
}
