//! The client role of one HTTP/1.1 connection, sans-I/O: this stage owns encoding a
//! request head and turning the response bytes that follow into events — interim 1xx,
//! the head, body pieces, the end — with RFC 9112 §6.3 framing and §9.3 persistence.
//! It never touches a socket, a clock or a thread, and holds no input buffer: the driver
//! owns the bytes, feeds them in and drops what each call consumed, so a blocking driver
//! (`client/driver.rs`) and an event loop can both run it.

use std::mem::MaybeUninit;

use super::error::ClientError;
use crate::error::Error as WireError;
use crate::http::Version;
use crate::http::decode::ChunkedDecoder;
use crate::http::encode::BodyFraming;
use crate::http::encode_request::write_request_head;
use crate::http::parse::{HeadScan, MAX_HEADERS_CAP, list, parse_content_length};

/// Limits applied to each response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest response head (status line, fields, empty line) accepted, counting the
    /// interim (1xx) heads before it; past it the response is
    /// [`ClientError::HeadTooLarge`]. The driver never buffers more than this
    /// plus one read.
    pub max_head_bytes: usize,
    /// Most field lines in one head (capped at 256).
    pub max_headers: usize,
    /// Largest response body, in decoded bytes; past it [`ClientError::BodyTooLarge`].
    pub max_body_bytes: u64,
}

impl Default for Limits {
    /// 64 KiB head, 100 fields, 16 MiB body.
    fn default() -> Self {
        Limits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

/// How a response's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    /// No body: a response to HEAD, a 1xx, 204 or 304 (§6.3 items 1–2), or a 101 / a 2xx
    /// to CONNECT, after which the connection is no longer HTTP.
    None,
    /// `Content-Length` bytes (§6.3 item 6).
    Length(u64),
    /// `Transfer-Encoding: chunked` (§6.3 item 4).
    Chunked,
    /// Everything until the server closes the connection (§6.3 item 8): the connection
    /// cannot be reused.
    CloseDelimited,
}

/// A parsed response head, owned (its bytes may be dropped from the input at once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code, 100–999.
    pub status: u16,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The reason phrase as sent (lossy UTF-8; may be empty).
    pub reason: String,
    /// The fields in order, names as sent, values as bytes (OWS trimmed by httparse).
    pub headers: Vec<(String, Vec<u8>)>,
    /// How the body that follows is delimited.
    pub body: BodyLength,
}

impl ResponseHead {
    /// The first value of the field `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of the field `name` (case-insensitive), as bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every UTF-8 value of the field `name` (case-insensitive), in order (`Set-Cookie`).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// What [`ClientConn::poll`] found in the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing more can be decoded: read more (or report EOF) and call again.
    NeedMore,
    /// An interim response (RFC 9110 §15.2): 102, 103, ... — and 100 when the request
    /// carried `Expect: 100-continue` (otherwise 100 is skipped). The final head follows.
    Informational(ResponseHead),
    /// The final response head. For 101 (and a 2xx to CONNECT) the connection belongs to
    /// the new protocol after it: the bytes after it are not HTTP.
    Head(ResponseHead),
    /// This many body bytes were appended to the caller's body buffer.
    Data(usize),
    /// The response is complete; `reusable` says whether another request may follow on
    /// this connection (RFC 9112 §9.3).
    End {
        /// True when the connection may carry another request.
        reusable: bool,
    },
}

/// One client connection's protocol state: write a request with
/// [`write_request`](ClientConn::write_request), then feed the response with
/// [`poll`](ClientConn::poll) until [`Event::End`].
///
/// # Warning
///
/// While the head is incomplete, `poll` consumes nothing and the caller must hand in the
/// same bytes again with more appended (never fewer, never moved): the search for the
/// head's end resumes where it stopped. After every call, drop the consumed bytes from
/// the front of the input. The caller enforces nothing itself: a head past
/// `max_head_bytes` is refused as soon as the buffered bytes exceed it, so reading at most
/// one chunk between calls bounds the buffer by the limit plus one read.
#[derive(Debug)]
pub struct ClientConn {
    phase: Phase,
    limits: Limits,
    /// Where the search for the end of the current head stopped.
    scan: HeadScan,
    /// What the request in flight asked for: it decides framing (HEAD, CONNECT),
    /// persistence (`Connection: close`) and whether 100 and 101 are expected.
    sent: Sent,
    /// The response's own persistence verdict (RFC 9112 §9.3), known at its head.
    keep_alive: bool,
    /// True once any byte of the response arrived (an interim one included): EOF before
    /// that is [`ClientError::ConnectionClosed`], the stale-connection case.
    answered: bool,
    /// Bytes of the interim (1xx) heads of the current response so far: with the final
    /// head they must fit in `max_head_bytes`, so a 1xx storm ends at the head limit.
    interim_bytes: usize,
}

/// Facts about the request in flight.
#[derive(Clone, Copy, Debug, Default)]
struct Sent {
    head: bool,
    connect: bool,
    close: bool,
    expect_continue: bool,
    upgrade: bool,
}

/// Where the connection is in its request/response cycle.
#[derive(Debug)]
enum Phase {
    /// No request in flight: ready for one.
    Idle,
    /// A request was written; the (rest of the) response head is awaited.
    Head,
    /// Inside a body.
    Body(Body),
    /// After a 101 or a 2xx to CONNECT: the bytes are another protocol's.
    Upgraded,
    /// After an error or a response that ends the connection: nothing more.
    Closed,
}

/// A body's progress.
#[derive(Debug)]
enum Body {
    /// `remaining` bytes still to come (0: the response has no body).
    Length {
        remaining: u64,
    },
    Chunked(ChunkedDecoder),
    /// Until EOF; `received` so far, against the body limit.
    Close {
        received: u64,
    },
}

impl ClientConn {
    /// A fresh connection, ready for its first request.
    pub fn new(limits: Limits) -> Self {
        ClientConn {
            phase: Phase::Idle,
            limits,
            scan: HeadScan::new(),
            sent: Sent::default(),
            keep_alive: false,
            answered: false,
            interim_bytes: 0,
        }
    }

    /// True when no request is in flight and the connection may carry one.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    /// Marks the request in flight as ending the connection, as if it had said
    /// `Connection: close`: its response, however it ends, leaves the connection unusable
    /// (e.g. a final answer to `Expect: 100-continue` that came before the body was sent).
    pub(crate) fn forbid_reuse(&mut self) {
        self.sent.close = true;
    }

    /// True after a 101 (or a 2xx to CONNECT): the connection now speaks another protocol.
    pub fn is_upgraded(&self) -> bool {
        matches!(self.phase, Phase::Upgraded)
    }

    /// Appends a request head to `out` (see `http::encode_request::write_request_head` for what
    /// is validated and which fields are owned) and starts waiting for its response. The
    /// body, if any, is the caller's to append: `framing` says how (`Length` bytes, or
    /// chunks from `http::encode::write_chunk`).
    pub fn write_request(
        &mut self,
        method: &str,
        target: &str,
        host: &str,
        headers: &[(&str, &[u8])],
        framing: BodyFraming,
        out: &mut Vec<u8>,
    ) -> Result<(), ClientError> {
        if !self.is_idle() {
            return Err(ClientError::InvalidRequest(
                "the connection is not idle (a response is still being read)",
            ));
        }
        write_request_head(out, method, target, host, headers.iter().copied(), framing)
            .map_err(|e| ClientError::InvalidRequest(e.as_str()))?;
        let mut sent = Sent {
            head: method == "HEAD",
            connect: method == "CONNECT",
            ..Sent::default()
        };
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("connection") {
                for opt in list(value) {
                    sent.close |= opt.eq_ignore_ascii_case(b"close");
                    sent.upgrade |= opt.eq_ignore_ascii_case(b"upgrade");
                }
            } else if name.eq_ignore_ascii_case("expect") {
                sent.expect_continue |=
                    list(value).any(|e| e.eq_ignore_ascii_case(b"100-continue"));
            }
        }
        self.sent = sent;
        self.answered = false;
        self.interim_bytes = 0;
        self.scan = HeadScan::new();
        self.phase = Phase::Head;
        Ok(())
    }

    /// Starts waiting for the answer to a request the caller encoded and sent itself (the
    /// event loop's upstream exchanges): `head_request` for HEAD (its answer has no body).
    /// The request carried no `Connection: close`, `Expect` or `Upgrade`.
    #[cfg(feature = "proxy")]
    pub(crate) fn expect_response(&mut self, head_request: bool, expect_continue: bool) {
        self.sent = Sent {
            head: head_request,
            expect_continue,
            ..Sent::default()
        };
        self.answered = false;
        self.interim_bytes = 0;
        self.scan = HeadScan::new();
        self.phase = Phase::Head;
    }

    /// Decodes what it can from `input` (the bytes received and not yet consumed), with
    /// `eof` true once the server closed its side. Returns how many bytes of `input` were
    /// consumed — drop them before the next call — and what was found. Body bytes are
    /// appended to `body` (at most `input.len()` per call).
    ///
    /// After an error the connection is unusable (every later call fails).
    pub fn poll(
        &mut self,
        input: &[u8],
        eof: bool,
        body: &mut Vec<u8>,
    ) -> Result<(usize, Event), ClientError> {
        let result = self.step(input, eof, body);
        if result.is_err() {
            self.phase = Phase::Closed;
        }
        result
    }

    fn step(
        &mut self,
        input: &[u8],
        eof: bool,
        out: &mut Vec<u8>,
    ) -> Result<(usize, Event), ClientError> {
        let limit = self.limits.max_body_bytes;
        let too_large = ClientError::BodyTooLarge { limit };
        match &mut self.phase {
            Phase::Idle if !input.is_empty() => Err(ClientError::Protocol(
                "the server sent bytes with no request outstanding",
            )),
            Phase::Idle if eof => Err(ClientError::ConnectionClosed),
            Phase::Idle => Ok((0, Event::NeedMore)),
            Phase::Head => self.head(input, eof),
            Phase::Body(Body::Length { remaining: 0 }) => Ok((0, self.finish(false))),
            Phase::Body(Body::Length { remaining }) => {
                let n = (input.len() as u64).min(*remaining) as usize;
                if n == 0 {
                    return if eof {
                        Err(ClientError::Protocol(
                            "the connection closed before the end of the body",
                        ))
                    } else {
                        Ok((0, Event::NeedMore))
                    };
                }
                out.extend_from_slice(&input[..n]);
                *remaining -= n as u64;
                Ok((n, Event::Data(n)))
            }
            Phase::Body(Body::Chunked(dec)) => {
                if dec.is_done() {
                    return Ok((0, self.finish(false)));
                }
                let before = out.len();
                let (used, done) = dec.decode(input, out, limit).map_err(|e| match e {
                    WireError::BodyTooLarge => too_large,
                    _ => ClientError::Protocol("invalid chunked body"),
                })?;
                let added = out.len() - before;
                if added > 0 {
                    Ok((used, Event::Data(added)))
                } else if done {
                    Ok((used, self.finish(false)))
                } else if eof {
                    Err(ClientError::Protocol(
                        "the connection closed before the last chunk",
                    ))
                } else {
                    Ok((used, Event::NeedMore))
                }
            }
            Phase::Body(Body::Close { received }) => {
                if input.is_empty() {
                    return Ok((
                        0,
                        if eof {
                            self.finish(true)
                        } else {
                            Event::NeedMore
                        },
                    ));
                }
                *received += input.len() as u64;
                if *received > limit {
                    return Err(too_large);
                }
                out.extend_from_slice(input);
                Ok((input.len(), Event::Data(input.len())))
            }
            Phase::Upgraded => Err(ClientError::Protocol(
                "the connection switched protocols; it is no longer HTTP",
            )),
            Phase::Closed => Err(ClientError::Protocol("the connection is closed")),
        }
    }

    /// The response is complete: back to Idle when the connection persists.
    fn finish(&mut self, close_delimited: bool) -> Event {
        // RFC 9112 §9.3: a connection persists unless the response (or the request) said
        // `close`, the response was HTTP/1.0 without keep-alive, or EOF ended its body.
        let reusable = self.keep_alive && !self.sent.close && !close_delimited;
        self.phase = if reusable { Phase::Idle } else { Phase::Closed };
        Event::End { reusable }
    }

    /// Looks for the (next) response head in `input`; skips a 100 nobody asked for.
    fn head(&mut self, input: &[u8], eof: bool) -> Result<(usize, Event), ClientError> {
        let limit = self.limits.max_head_bytes;
        self.answered |= !input.is_empty();
        let mut off = 0;
        loop {
            // Interim heads count against the limit with the final one (as Go's
            // MaxResponseHeaderBytes does since 1.24): an endless run of small 1xx
            // responses is a head that never ends.
            let max = limit.saturating_sub(self.interim_bytes);
            let buf = &input[off..];
            // The start is judged on the bytes the limit lets in, as many as a head that
            // arrives a byte at a time has when it passes the limit: whether a wrong start
            // or the limit is the verdict does not depend on the pieces.
            check_start(&buf[..buf.len().min(max.saturating_add(1))])?;
            let Some(n) = self.scan.scan(buf) else {
                if buf.len() > max {
                    return Err(ClientError::HeadTooLarge { limit });
                }
                if eof {
                    return Err(if !self.answered {
                        ClientError::ConnectionClosed
                    } else {
                        ClientError::Protocol("the connection closed inside the response head")
                    });
                }
                return Ok((off, Event::NeedMore));
            };
            if n > max {
                return Err(ClientError::HeadTooLarge { limit });
            }
            let (status, version, reason, headers) =
                parse_response(&buf[..n], self.limits.max_headers)?;
            self.scan = HeadScan::new();
            off += n;
            if (100..200).contains(&status) && status != 101 {
                self.interim_bytes += n;
                if frames_a_body(&headers) {
                    // Its body, sent after it, would be read as the next head: see
                    // `frames_a_body`.
                    self.forbid_reuse();
                }
            }
            match status {
                // RFC 9110 §15.2.1: a client that did not send `Expect: 100-continue`
                // "can simply discard this interim response".
                100 if !self.sent.expect_continue => continue,
                101 => {
                    // RFC 9110 §15.2.2: sent "in response to a client's request that
                    // includes an Upgrade header field".
                    if !self.sent.upgrade {
                        return Err(ClientError::Protocol(
                            "101 Switching Protocols to a request that asked for no upgrade",
                        ));
                    }
                    self.phase = Phase::Upgraded;
                    let head = ResponseHead {
                        status,
                        version,
                        reason,
                        headers,
                        body: BodyLength::None,
                    };
                    return Ok((off, Event::Head(head)));
                }
                100..=199 => {
                    let head = ResponseHead {
                        status,
                        version,
                        reason,
                        headers,
                        body: BodyLength::None,
                    };
                    return Ok((off, Event::Informational(head)));
                }
                _ => {}
            }
            let (body, keep_alive) = self.framing(status, version, &headers)?;
            self.keep_alive = keep_alive;
            self.phase = match body {
                BodyLength::None if self.sent.connect && (200..300).contains(&status) => {
                    Phase::Upgraded
                }
                BodyLength::None => Phase::Body(Body::Length { remaining: 0 }),
                BodyLength::Length(n) => Phase::Body(Body::Length { remaining: n }),
                BodyLength::Chunked => Phase::Body(Body::Chunked(ChunkedDecoder::new())),
                BodyLength::CloseDelimited => Phase::Body(Body::Close { received: 0 }),
            };
            let head = ResponseHead {
                status,
                version,
                reason,
                headers,
                body,
            };
            return Ok((off, Event::Head(head)));
        }
    }

    /// The body's framing (RFC 9112 §6.3) and whether the connection persists (§9.3).
    fn framing(
        &self,
        status: u16,
        version: Version,
        headers: &[(String, Vec<u8>)],
    ) -> Result<(BodyLength, bool), ClientError> {
        let mut length: Option<u64> = None;
        let mut length_invalid = false;
        let mut te_seen = false;
        let mut te_chunked_last = false;
        // Codings other than one final `chunked`: none is decoded here.
        let mut te_other = false;
        let (mut close, mut keep_alive) = (false, false);
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("content-length") {
                // RFC 9110 §8.6: a list of identical values may be taken as one; any
                // other repetition, or a value that is not 1*DIGIT, is invalid.
                let mut any = false;
                for v in list(value) {
                    any = true;
                    match parse_content_length(v) {
                        Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                        _ => length_invalid = true,
                    }
                }
                length_invalid |= !any;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                te_seen = true;
                for coding in list(value) {
                    // §6.1: chunked "MUST NOT" be applied more than once, and is last.
                    te_other |= te_chunked_last;
                    te_chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                    te_other |= !te_chunked_last;
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for opt in list(value) {
                    close |= opt.eq_ignore_ascii_case(b"close");
                    keep_alive |= opt.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with
        // "keep-alive".
        let persist = !close && (version == Version::Http11 || keep_alive);
        // §6.3 item 1: "Any response to a HEAD request and any response with a 1xx
        // (Informational), 204 (No Content), or 304 (Not Modified) status code is always
        // terminated by the first empty line after the header fields". Item 2: a 2xx to
        // CONNECT switches to tunnel mode.
        if self.sent.head
            || status == 204
            || status == 304
            || (self.sent.connect && (200..300).contains(&status))
        {
            let out_of_step = status == 204 && frames_a_body(headers);
            return Ok((BodyLength::None, persist && !out_of_step));
        }
        if te_seen {
            // §6.1: a client that receives an HTTP/1.0 message with Transfer-Encoding
            // "MUST treat the message as if the framing is faulty".
            if version == Version::Http10 {
                return Err(ClientError::Protocol(
                    "Transfer-Encoding in an HTTP/1.0 response",
                ));
            }
            // §6.3 item 3: both present "ought to be handled as an error" — it is how
            // responses are smuggled, so it is one here, whatever the values.
            if length.is_some() || length_invalid {
                return Err(ClientError::Protocol(
                    "both Transfer-Encoding and Content-Length",
                ));
            }
            // §6.3 item 4 would read a non-chunked coding until close; no other coding
            // is decoded here, so its bytes could not be handed over as content.
            if te_other || !te_chunked_last {
                return Err(ClientError::Protocol(
                    "a transfer coding other than chunked",
                ));
            }
            return Ok((BodyLength::Chunked, persist));
        }
        // §6.3 item 5: an invalid Content-Length "MUST" be treated as an unrecoverable
        // error by a user agent.
        if length_invalid {
            return Err(ClientError::Protocol("invalid Content-Length"));
        }
        match length {
            Some(n) if n > self.limits.max_body_bytes => Err(ClientError::BodyTooLarge {
                limit: self.limits.max_body_bytes,
            }),
            Some(n) => Ok((BodyLength::Length(n), persist)),
            // §6.3 item 8: "the message body length is determined by the number of
            // octets received prior to the server closing the connection".
            None => Ok((BodyLength::CloseDelimited, false)),
        }
    }
}

/// True when a head that ends at its empty line whatever it says — a 1xx or a 204 (RFC
/// 9112 §6.3 item 1) — frames a body all the same: a Transfer-Encoding, or a
/// Content-Length other than 0, which RFC 9110 §8.6 and RFC 9112 §6.1 forbid there. Its
/// sender believes a body follows and sends it; bytes that arrive with the head are seen
/// as left over, but bytes written apart arrive once the connection looks clean, and
/// would answer the next request sent on it. So the connection is not reused.
/// (`Content-Length: 0` on a 204 is common and harmless; on a 304 or a response to HEAD
/// both fields are allowed and describe the representation, not a body.)
fn frames_a_body(headers: &[(String, Vec<u8>)]) -> bool {
    headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("transfer-encoding")
            || (name.eq_ignore_ascii_case("content-length")
                && parse_content_length(value) != Some(0))
    })
}

/// Refuses a peer that is not speaking HTTP/1.x as soon as its first bytes show it,
/// instead of buffering up to the head limit (empty lines before it are allowed, as
/// httparse skips them).
fn check_start(buf: &[u8]) -> Result<(), ClientError> {
    let start = buf
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(buf.len());
    let seen = &buf[start..];
    let want = b"HTTP/1.";
    let n = seen.len().min(want.len());
    if seen[..n] != want[..n] {
        return Err(ClientError::Protocol("not an HTTP/1.x response"));
    }
    Ok(())
}

/// Where the minor digit of an `HTTP/1.d ` status line is (after any empty lines).
fn minor_digit_at(bytes: &[u8]) -> Option<usize> {
    let start = bytes.iter().position(|&c| c != b'\r' && c != b'\n')?;
    let line = &bytes[start..];
    (line.len() > 8 && line.starts_with(b"HTTP/1.") && line[7].is_ascii_digit() && line[8] == b' ')
        .then_some(start + 7)
}

type Parsed = (u16, Version, String, Vec<(String, Vec<u8>)>);

/// Parses one complete response head with httparse (strict settings: no obs-fold, no
/// whitespace before a colon, RFC 9112 §5.1–5.2).
fn parse_response(bytes: &[u8], max_headers: usize) -> Result<Parsed, ClientError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let mut resp = httparse::Response::new(&mut []);
    let max = max_headers.clamp(1, MAX_HEADERS_CAP);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        bytes,
        &mut slots[..max],
    );
    match parsed {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(ClientError::Protocol("malformed response head"));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ClientError::Protocol(
                "more header fields than max_response_headers",
            ));
        }
        // RFC 9110 §2.5: a higher HTTP/1 minor version is processed as HTTP/1.1.
        Err(httparse::Error::Version) if minor_digit_at(bytes).is_some() => {
            let mut copy = bytes.to_vec();
            copy[minor_digit_at(bytes).unwrap_or_default()] = b'1';
            return parse_response(&copy, max_headers);
        }
        Err(httparse::Error::Version) => {
            return Err(ClientError::Protocol("not an HTTP/1.x response"));
        }
        Err(httparse::Error::Status) => {
            return Err(ClientError::Protocol("malformed status line"));
        }
        Err(_) => return Err(ClientError::Protocol("malformed response head")),
    }
    let version = match resp.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let status = resp.code.unwrap_or(0);
    // RFC 9110 §15: status-code is three digits, 100..=599 registered, up to 999 allowed
    // (treated as the x00 of their class); below 100 it is no status at all.
    if status < 100 {
        return Err(ClientError::Protocol("status code below 100"));
    }
    let reason = String::from_utf8_lossy(resp.reason.unwrap_or_default().as_bytes()).into_owned();
    let headers = resp
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    Ok((status, version, reason, headers))
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
