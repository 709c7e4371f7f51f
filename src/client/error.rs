//! Client errors: this module owns [`ClientError`], the one enum naming what failed in a
//! call — the URL, the connection, a deadline, a limit, the peer's framing, the breaker —
//! and whether a retry may help.
//! It never performs I/O or logs; the driver and the core construct these values.

use std::fmt;
use std::io;
use std::time::Duration;

/// Which deadline ran out (see `docs/CLIENT.md`, "Timeouts").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// `connect_timeout`: the TCP handshake did not finish.
    Connect,
    /// `write_timeout`: the request could not be written (the peer does not read).
    Write,
    /// `response_header_timeout`: the request was sent but the response head did not
    /// arrive in time.
    ResponseHeader,
    /// `read_timeout`: a read of the response body waited longer than this.
    Read,
    /// The call's total `timeout` (or its `deadline`): connect, retries, backoff and body
    /// together. Reported whenever it, not a shorter per-step limit, was the one that
    /// expired.
    Total,
}

impl TimeoutKind {
    fn as_str(self) -> &'static str {
        match self {
            TimeoutKind::Connect => "connect_timeout",
            TimeoutKind::Write => "write_timeout",
            TimeoutKind::ResponseHeader => "response_header_timeout",
            TimeoutKind::Read => "read_timeout",
            TimeoutKind::Total => "the total timeout",
        }
    }
}

/// What went wrong in a client call. `Display` gives one line naming the step and, where
/// there is one, the upstream (`host:port`).
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://host[:port][/path][?query]` (the reason says which part).
    InvalidUrl(&'static str),
    /// An `https://` URL: TLS is not implemented (feature `tls`, issue #8).
    TlsNotSupported,
    /// The request cannot be encoded without letting a byte escape its field: a method
    /// that is not a token, a header name that is not a token, a value with CR, LF, NUL or
    /// another control character (the reason says which).
    InvalidRequest(&'static str),
    /// The body could not be serialised as JSON (`RequestBuilder::json`) or the response
    /// body is not the JSON asked for (`ClientResponse::json`).
    #[cfg(feature = "json")]
    Json(serde_json::Error),
    /// No TCP connection to the upstream: the name did not resolve, or every address
    /// refused or was unreachable. The request was not sent, so it is always safe to retry.
    Connect {
        /// `host:port` as in the URL.
        upstream: String,
        /// The last error seen.
        source: io::Error,
    },
    /// A deadline expired; [`TimeoutKind`] says which.
    Timeout {
        /// The deadline that expired.
        which: TimeoutKind,
    },
    /// The server closed the connection (EOF or reset) after the request was sent and
    /// before any byte of the response. On a pooled connection to an idempotent request
    /// this has already been retried once on a fresh connection.
    ConnectionClosed,
    /// Reading or writing the socket failed after the connection was made (a reset in
    /// the middle of a body, a broken pipe while writing).
    Io(io::Error),
    /// The response head is longer than `max_response_head_bytes`.
    HeadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The response body is (or announced to be) longer than `max_response_body_bytes`.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The response is not valid HTTP/1.x, or its framing is ambiguous (RFC 9112 §6.3):
    /// the reason says what (a bad status line, both Transfer-Encoding and Content-Length,
    /// an invalid Content-Length, a bad chunk, a body cut short, ...). The connection is
    /// closed, never reused.
    Protocol(&'static str),
    /// The upstream's circuit breaker is open after repeated failures: the call failed
    /// fast without touching the network.
    BreakerOpen {
        /// `host:port`.
        upstream: String,
        /// When the breaker lets the next probe through.
        retry_in: Duration,
    },
}

impl ClientError {
    /// True for errors where the request was certainly not sent (connection refused or
    /// unreachable, connect timeout): the only errors the retry policy retries.
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Timeout {
                    which: TimeoutKind::Connect
                }
        )
    }

    /// True for any expired deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout { .. })
    }

    /// True when the error says something about the upstream's health (the breaker
    /// counts these): connect failures, timeouts, resets, protocol errors. Mistakes on
    /// our side (a bad URL or header, a limit, JSON) and an open breaker are not.
    pub(crate) fn is_upstream_failure(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Timeout { .. }
                | ClientError::ConnectionClosed
                | ClientError::Io(_)
                | ClientError::Protocol(_)
        )
    }

    /// What a call ending in this error tells the breaker: a failure of the upstream, or
    /// nothing at all (`None`: a mistake or a limit of ours counts neither way).
    pub(crate) fn breaker_outcome(&self) -> Option<bool> {
        self.is_upstream_failure().then_some(false)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            ClientError::TlsNotSupported => {
                f.write_str("https: TLS not supported (feature tls, issue #8)")
            }
            ClientError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            #[cfg(feature = "json")]
            ClientError::Json(e) => write!(f, "JSON: {e}"),
            ClientError::Connect { upstream, source } => {
                write!(f, "cannot connect to {upstream}: {source}")
            }
            ClientError::Timeout { which } => write!(f, "timed out: {}", which.as_str()),
            ClientError::ConnectionClosed => {
                f.write_str("the server closed the connection before answering")
            }
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
            ClientError::HeadTooLarge { limit } => {
                write!(f, "response head larger than {limit} bytes")
            }
            ClientError::BodyTooLarge { limit } => {
                write!(f, "response body larger than {limit} bytes")
            }
            ClientError::Protocol(why) => write!(f, "invalid response: {why}"),
            ClientError::BreakerOpen { upstream, retry_in } => write!(
                f,
                "circuit breaker open for {upstream} after repeated failures (next probe in {} ms)",
                retry_in.as_millis()
            ),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect { source, .. } => Some(source),
            ClientError::Io(e) => Some(e),
            #[cfg(feature = "json")]
            ClientError::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ClientError> for io::Error {
    /// For `?` in functions returning `io::Result` (a body reader's `read`): timeouts
    /// become `TimedOut`, an I/O error keeps its kind, the rest `InvalidData` / `Other`.
    fn from(e: ClientError) -> io::Error {
        match e {
            ClientError::Io(e) => e,
            ClientError::Timeout { .. } => io::Error::new(io::ErrorKind::TimedOut, e),
            ClientError::ConnectionClosed => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            ClientError::Protocol(_)
            | ClientError::BodyTooLarge { .. }
            | ClientError::HeadTooLarge { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
            e => io::Error::other(e),
        }
    }
}
