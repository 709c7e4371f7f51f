//! Request-head parsing: this stage owns turning the bytes of one request head into a
//! [`Head`] of spans, enforcing the RFC 9112 message-framing rules and the configured
//! size limits.
//! It never touches a socket, a clock or a thread, never copies the head and never
//! allocates except by pushing into the caller's `fields` Vec.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::{Method, Span, Version};
use crate::error::Error;

// Not used by conn/ yet (wiring it in is a separate change); the allow keeps the lint
// quiet in a build where `http` is private to the crate.
pub use super::head_scan::HeadScan;

/// Limits applied while parsing (copied from the server Config).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest accepted head, from the first byte (leading empty lines included) through
    /// the empty line that ends it.
    pub max_head_bytes: usize,
    /// Most field lines accepted in one head (capped at [`MAX_HEADERS_CAP`]).
    pub max_headers: usize,
    /// Longest accepted request-target.
    pub max_uri_bytes: usize,
    /// Largest accepted body, in decoded bytes.
    pub max_body_bytes: u64,
}

impl Default for Limits {
    /// 16 KiB head, 100 fields, 8 KiB request-target, 1 MiB body.
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Hard cap for `max_headers` (size of the on-stack httparse array).
pub const MAX_HEADERS_CAP: usize = 256;

/// Longest method token answered with anything but 501 (RFC 9110 §9.1). The longest
/// registered method (IANA HTTP Method Registry) is `UPDATEREDIRECTREF`, 17 bytes; a
/// longer token can never be routed, so it is refused as soon as its 33rd byte arrives
/// instead of being buffered up to `max_head_bytes` or `max_uri_bytes` (431 / 414).
pub const MAX_METHOD_BYTES: usize = 32;

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: neither Content-Length nor Transfer-Encoding (RFC 9112 §6.3 item 7:
    /// "the message body length is zero").
    None,
    /// Exactly this many bytes follow the head (RFC 9112 §6.3 item 6).
    Length(u64),
    /// The body uses the chunked transfer coding (RFC 9112 §6.3 item 4, §7.1).
    Chunked,
}

/// A parsed request head; every [`Span`] is absolute into the `buf` passed to
/// [`parse_head`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The method, classified.
    pub method: Method,
    /// The method token as sent.
    pub method_span: Span,
    /// The request-target as sent (RFC 9112 §3.2).
    pub target: Span,
    /// The target up to (excluding) the first `?`. For absolute-form `http://h/p?q` it is
    /// the `/p` part (a `/` inside `://` when the path is empty); for `*` it is `*`; for
    /// authority-form (`CONNECT h:443`) it is the whole target.
    pub path: Span,
    /// The part after the first `?` (possibly empty), if there is a `?`.
    pub query: Option<Span>,
    /// The protocol version.
    pub version: Version,
    /// Indices into the `fields` Vec given to [`parse_head`]: (name span, value span),
    /// values trimmed of OWS (RFC 9112 §5.1).
    pub fields: Range<u32>,
    /// How the body is delimited.
    pub framing: Framing,
    /// What the request asks for: HTTP/1.1 unless a Connection field lists `close`,
    /// HTTP/1.0 only if it lists `keep-alive` (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// Bytes the head occupies from `start`, including skipped leading empty lines and
    /// the final empty line.
    pub len: u32,
}

/// Parses one request head starting at `buf[start..]`.
///
/// `Ok(None)` means incomplete: the caller reads more and calls again. Even then this
/// fails with [`Error::MethodTooLong`] once the method token is longer than
/// [`MAX_METHOD_BYTES`], with [`Error::UriTooLong`] once the unfinished request line is
/// longer than [`request_line_cap`], and with [`Error::HeadTooLarge`] once
/// `buf.len() - start` exceeds `max_head_bytes`.
///
/// The verdict does not depend on how much of the buffer has arrived: a head is judged
/// on its first `max_head_bytes + 1` bytes (and a request line on its first
/// `request_line_cap + 1`), which is what a call on an unfinished head sees when that
/// limit is passed. So a fault further on never overrides a limit passed before it, and
/// the answer is the same whether the bytes came in one read or one by one.
///
/// For a complete head: a target longer than `max_uri_bytes` is [`Error::UriTooLong`], a
/// head longer than `max_head_bytes` is [`Error::HeadTooLarge`], more than `max_headers`
/// fields is [`Error::TooManyHeaders`], a Content-Length above `max_body_bytes` is
/// [`Error::BodyTooLarge`].
///
/// `fields` is appended to (never cleared); [`Head::fields`] indexes the appended range.
/// On error nothing stays appended.
pub fn parse_head(
    buf: &[u8],
    start: usize,
    limits: &Limits,
    fields: &mut Vec<(Span, Span)>,
) -> Result<Option<Head>, Error> {
    let b = verdict_window(buf.get(start..).unwrap_or_default(), limits);
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
    // Uninitialised slots: httparse writes only the ones it fills, so there is no
    // per-call 8 KiB memset of EMPTY_HEADERs.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(b, &mut slots[..max_headers]) {
        Ok(httparse::Status::Complete(n)) => n,
        // RFC 9110 §9.1: a method that is not implemented SHOULD get 501. Checked before
        // every other verdict on an unfinished or invalid head, so that the answer to an
        // overlong method does not depend on how the bytes were split into reads.
        _ if method_too_long(b) => return Err(Error::MethodTooLong),
        Ok(httparse::Status::Partial) => return incomplete(b, limits),
        Err(httparse::Error::Version) => match version_error(b, limits)? {
            // RFC 9110 §2.5: a higher minor version of HTTP/1 is processed as HTTP/1.1,
            // the highest this server implements. The head is parsed from a copy of its
            // bytes with that one digit changed; its spans, moved by `start`, then
            // describe `buf`. Only the head is copied: not the requests before it in
            // `buf`, nor the bodies and requests behind it in `b` (up to
            // `max_head_bytes` of them), or a buffer full of small pipelined heads would
            // cost a quadratic amount of copying. Its end is found as the loop finds it
            // (`HeadScan`, where httparse ends every head it accepts); a head that has
            // not ended yet is all of `b`.
            Some(minor_at) => {
                let first = fields.len();
                let end = HeadScan::new().scan(b).unwrap_or(b.len()).max(minor_at + 1);
                let mut copy = b[..end].to_vec();
                copy[minor_at] = b'1';
                let mut head = parse_head(&copy, 0, limits, fields)?;
                if head.is_none() && end < b.len() {
                    // Not expected: httparse wants more than the head the scan found.
                    // Judge the whole window, as for any unfinished head.
                    copy = b.to_vec();
                    copy[minor_at] = b'1';
                    head = parse_head(&copy, 0, limits, fields)?;
                }
                if let Some(h) = &mut head {
                    if start.saturating_add(h.len as usize) > u32::MAX as usize {
                        fields.truncate(first);
                        return Err(Error::HeadTooLarge);
                    }
                    let by = start as u32;
                    for s in [&mut h.method_span, &mut h.target, &mut h.path]
                        .into_iter()
                        .chain(h.query.as_mut())
                    {
                        *s = s.shifted(by);
                    }
                    for (n, v) in &mut fields[first..] {
                        (*n, *v) = (n.shifted(by), v.shifted(by));
                    }
                }
                return Ok(head);
            }
            None => return Ok(None),
        },
        Err(httparse::Error::TooManyHeaders) => return Err(Error::TooManyHeaders),
        // RFC 9112 §5.1: "A server MUST reject, with a response status code of 400 (Bad
        // Request), any received request message that contains whitespace between a
        // header field name and colon."
        Err(httparse::Error::HeaderName) => match bad_field_name(b) {
            BadName::BeforeColon => return Err(Error::WhitespaceBeforeColon),
            // `name 1*WS` is all of the line so far: the colon may still come (and make
            // it the 400 above), so the verdict waits for the line.
            BadName::Unfinished => return incomplete(b, limits),
            BadName::Other => return Err(Error::MalformedHead),
        },
        // Bad tokens, bare CR, obs-fold (RFC 9112 §5.2: a server MUST either reject it
        // with 400 or replace it), CTLs in values, a bad request line (RFC 9112 §3).
        Err(_) => return Err(Error::MalformedHead),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(Error::MalformedHead);
    };
    if method.len() > MAX_METHOD_BYTES {
        return Err(Error::MethodTooLong); // RFC 9110 §9.1, as above
    }
    // RFC 9112 §3: "A server that receives a request-target longer than any URI it
    // wishes to parse MUST respond with a 414 (URI Too Long) status code."
    if target.len() > limits.max_uri_bytes {
        return Err(Error::UriTooLong);
    }
    // request-target = origin-form / absolute-form / authority-form / asterisk-form (RFC
    // 9112 §3.2), all built from RFC 3986 characters (§2: unreserved, reserved,
    // pct-encoded), which are visible ASCII. httparse lets through any valid UTF-8 (it
    // rejects controls, SP and DEL), so non-ASCII is caught here; the check does not lean
    // on that and tests the whole 0x21..=0x7E range. RFC 9112 §3: "Recipients of an
    // invalid request-line SHOULD respond with either a 400 (Bad Request) error or a 301
    // (Moved Permanently) redirect with the request-target properly encoded."
    // A fragment is not part of any form (RFC 9112 §3.2: origin-form is absolute-path
    // ["?" query], and "#" is neither a pchar nor allowed in a query, RFC 3986 §3.3-3.5).
    // A "%" in the path must begin a pct-encoded triplet (below).
    if !is_valid_target(target.as_bytes()) {
        return Err(Error::InvalidTarget);
    }
    // Absolute-form: its authority stands for Host (RFC 9112 §3.2.2), so it must be one
    // Host could carry, and not empty (RFC 9110 §4.2.1: an http(s) URI with an empty host
    // is invalid). That also refuses userinfo, which RFC 9110 §4.2.4 says a recipient
    // "SHOULD ... treat its presence as an error" (it is used to phish). Authority-form
    // (CONNECT) has no userinfo either.
    if !(target.starts_with('/') || target == "*") {
        // Not origin-form or asterisk-form (which is `*` alone, RFC 9112 §3.2.4): an
        // absolute-URI (`scheme ":" …`, RFC 3986 §4.3), or authority-form, which only
        // CONNECT uses (RFC 9112 §3.2.3). `GET a/b` and `GET *x` are neither (Go:
        // "invalid URI for request", 400).
        if method != "CONNECT" && !has_scheme(target.as_bytes()) {
            return Err(Error::InvalidTarget);
        }
        let valid = match absolute_authority(target.as_bytes()) {
            Some(a) => !a.is_empty() && is_valid_host(a),
            None => !target.contains('@'),
        };
        if !valid {
            return Err(Error::InvalidTarget);
        }
    }
    // RFC 9112 §3.2.4: "The asterisk-form of request-target is only used for a
    // server-wide OPTIONS request".
    if target == "*" && method != "OPTIONS" {
        return Err(Error::AsteriskFormNotOptions);
    }
    // RFC 9110 §9.3.6: for CONNECT "the request-target consists of only the host and port
    // number of the tunnel destination" (RFC 9112 §3.2.3: authority-form), and "A server
    // MUST reject a CONNECT request that targets an empty or invalid port number". A
    // CONNECT with a path is no tunnel request: were it routed (a gateway forwards it)
    // and answered 2xx, its client would send tunnel bytes next, and this connection
    // would read them as requests nobody in front of it saw.
    if method == "CONNECT" && !is_authority_form(target.as_bytes()) {
        return Err(Error::InvalidTarget);
    }
    if len > limits.max_head_bytes || start.saturating_add(len) > u32::MAX as usize {
        return Err(Error::HeadTooLarge);
    }
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };

    let base = buf.as_ptr() as usize;
    let span = |s: &[u8]| {
        // httparse hands back sub-slices of `b`, itself a sub-slice of `buf`.
        let at = (s.as_ptr() as usize).wrapping_sub(base) as u32;
        Span {
            start: at,
            end: at + s.len() as u32,
        }
    };

    let first = fields.len();
    fields.reserve(req.headers.len());
    let mut scan = Scan::default();
    for h in req.headers.iter() {
        fields.push((span(h.name.as_bytes()), span(h.value)));
        if let Err(e) = scan.field(h.name.as_bytes(), h.value) {
            fields.truncate(first);
            return Err(e);
        }
    }
    let framing = match scan.finish(version, target.as_bytes(), limits) {
        Ok(f) => f,
        Err(e) => {
            fields.truncate(first);
            return Err(e);
        }
    };

    let target_span = span(target.as_bytes());
    let (path, query) = split_target(target.as_bytes(), target_span.start);
    Ok(Some(Head {
        method: Method::from_bytes(method.as_bytes()),
        method_span: span(method.as_bytes()),
        target: target_span,
        path,
        query,
        version,
        fields: first as u32..fields.len() as u32,
        framing,
        keep_alive: match version {
            Version::Http11 => !scan.conn_close,
            Version::Http10 => scan.conn_keep_alive && !scan.conn_close,
        },
        // RFC 9110 §10.1.1: "A server that receives a 100-continue expectation in an
        // HTTP/1.0 request MUST ignore that expectation."
        expect_continue: scan.expect_continue && version == Version::Http11,
        len: len as u32,
    }))
}

/// Returns the value of the first field named `name` (ASCII case-insensitive, RFC 9110
/// §5.1: "Field names are case-insensitive").
pub fn find_field<'a>(buf: &'a [u8], fields: &[(Span, Span)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(n, _)| n.get(buf).eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.get(buf))
}

/// What the framing- and connection-relevant fields said, gathered in one pass.
#[derive(Default)]
struct Scan {
    hosts: u32,
    /// The Host value was empty: only `finish` knows the target form that makes it
    /// invalid (origin-form, asterisk-form).
    host_empty: bool,
    content_length: Option<u64>,
    te_seen: bool,
    te_last_chunked: bool,
    te_chunked_not_last: bool,
    te_other: bool,
    conn_close: bool,
    conn_keep_alive: bool,
    expect_continue: bool,
}

impl Scan {
    #[inline]
    fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status
                // code to any HTTP/1.1 request message that lacks a Host header field and
                // to any request message that contains more than one Host header field
                // line or a Host header field with an invalid field value."
                self.hosts += 1;
                if self.hosts > 1 {
                    return Err(Error::DuplicateHost);
                }
                if !is_valid_host(value) {
                    return Err(Error::InvalidHost);
                }
                self.host_empty = value.is_empty();
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                // RFC 9110 §10.1.1: "The Expect field value is case-insensitive."
                self.expect_continue |=
                    list(value).any(|e| e.eq_ignore_ascii_case(b"100-continue"));
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                // RFC 9110 §7.6.1: Connection = #connection-option, case-insensitive.
                for opt in list(value) {
                    if opt.eq_ignore_ascii_case(b"close") {
                        self.conn_close = true;
                    } else if opt.eq_ignore_ascii_case(b"keep-alive") {
                        self.conn_keep_alive = true;
                    }
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                // RFC 9112 §6.3 item 5: "If a message is received without
                // Transfer-Encoding and with an invalid Content-Length header field, then
                // the message framing is invalid and the recipient MUST treat it as an
                // unrecoverable error". A repeated field or a list is treated as invalid:
                // the RFC's exception for a list of identical values is not taken.
                if self.content_length.is_some() {
                    return Err(Error::InvalidContentLength);
                }
                self.content_length =
                    Some(parse_content_length(value).ok_or(Error::InvalidContentLength)?);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                // RFC 9112 §6.1: Transfer-Encoding = #transfer-coding, possibly over
                // several field lines (RFC 9112 §7: "All transfer-coding names are
                // case-insensitive").
                self.te_seen = true;
                for coding in list(value) {
                    // RFC 9112 §6.1: "A sender MUST NOT apply the chunked transfer coding
                    // more than once to a message body."
                    if self.te_last_chunked {
                        self.te_chunked_not_last = true;
                    }
                    self.te_last_chunked = coding.eq_ignore_ascii_case(b"chunked");
                    if !self.te_last_chunked {
                        self.te_other = true;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&self, version: Version, target: &[u8], limits: &Limits) -> Result<Framing, Error> {
        if version == Version::Http11 && self.hosts == 0 {
            return Err(Error::MissingHost); // RFC 9112 §3.2
        }
        // An empty Host is what a client sends when the target URI has no authority (RFC
        // 9112 §3.2). For origin-form and asterisk-form the authority comes from Host alone
        // (§3.3), and an http(s) URI needs a non-empty one (RFC 9110 §4.2.1: "A recipient
        // that processes such a URI reference MUST reject it as invalid"); RFC 9112 §3.3:
        // "If the target URI's authority component is empty and its URI scheme requires a
        // non-empty authority [...], the server can reject the request". So it is "a Host
        // header field with an invalid field value" (§3.2: 400), on HTTP/1.0 as well. An
        // absolute-form target carries its own authority and Host is ignored (§3.2.2);
        // authority-form (CONNECT) is its own authority: both keep an empty Host.
        if self.host_empty && matches!(target.first(), Some(b'/' | b'*')) {
            return Err(Error::InvalidHost);
        }
        if self.te_seen {
            // RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message
            // containing a Transfer-Encoding header field MUST treat the message as if the
            // framing is faulty".
            if version == Version::Http10 {
                return Err(Error::TransferEncodingInHttp10);
            }
            // RFC 9112 §6.1: "A server MAY reject a request that contains both
            // Content-Length and Transfer-Encoding [...] the server MUST close the
            // connection after responding to such a request".
            if self.content_length.is_some() {
                return Err(Error::ContentLengthWithTransferEncoding);
            }
            // RFC 9112 §6.3 item 4: "If a Transfer-Encoding header field is present in a
            // request and the chunked transfer coding is not the final encoding, [...]
            // the server MUST respond with the 400 (Bad Request) status code".
            if !self.te_last_chunked || self.te_chunked_not_last {
                return Err(Error::TransferEncodingNotChunkedLast);
            }
            // RFC 9112 §6.1: a coding the server does not understand SHOULD get 501;
            // chunked is the only one implemented.
            if self.te_other {
                return Err(Error::UnknownTransferEncoding);
            }
            return Ok(Framing::Chunked);
        }
        match self.content_length {
            Some(n) if n > limits.max_body_bytes => Err(Error::BodyTooLarge),
            Some(n) => Ok(Framing::Length(n)),
            // RFC 9112 §6.3 item 7: no Content-Length, no Transfer-Encoding: length zero.
            None => Ok(Framing::None),
        }
    }
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6): no sign, no hex, no whitespace inside,
/// no empty value, no list; overflow past u64 is rejected.
#[inline]
pub(crate) fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

/// The non-empty elements of a `#element` list, OWS-trimmed (RFC 9110 §5.6.1: "a
/// recipient MUST parse and ignore a reasonable number of empty list elements").
#[inline]
pub(crate) fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&c| c == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

#[inline]
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The authority of an absolute-form target ("scheme://authority/path?query"), up to
/// the path or the query; `None` for any other form.
pub(crate) fn absolute_authority(target: &[u8]) -> Option<&[u8]> {
    let i = target.windows(3).position(|w| w == b"://")?;
    let rest = &target[i + 3..];
    let end = rest
        .iter()
        .position(|&c| matches!(c, b'/' | b'?'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// `authority-form = uri-host ":" port` (RFC 9112 §3.2.3) with a host and a port number
/// (RFC 9110 §9.3.6: CONNECT needs both).
fn is_authority_form(target: &[u8]) -> bool {
    let Some(colon) = target.iter().rposition(|&c| c == b':') else {
        return false;
    };
    let (host, port) = (&target[..colon], &target[colon + 1..]);
    !host.is_empty()
        && is_valid_host(target)
        && std::str::from_utf8(port)
            // Port 0 names no destination a tunnel could reach: an invalid port.
            .is_ok_and(|p| {
                p.bytes().all(|c| c.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n != 0)
            })
}

/// Whether `target` begins with a URI scheme and its colon: `scheme = ALPHA *( ALPHA /
/// DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
fn has_scheme(target: &[u8]) -> bool {
    let Some(colon) = target.iter().position(|&c| c == b':') else {
        return false;
    };
    let scheme = &target[..colon];
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// Splits a request-target (RFC 9112 §3.2) into path and query spans; `base` is the
/// absolute offset of `target` in the parsed buffer.
fn split_target(target: &[u8], base: u32) -> (Span, Option<Span>) {
    let end = base + target.len() as u32;
    let (before_q, query) = match target.iter().position(|&c| c == b'?') {
        Some(i) => (
            &target[..i],
            Some(Span {
                start: base + i as u32 + 1,
                end,
            }),
        ),
        None => (target, None),
    };
    let before_end = base + before_q.len() as u32;
    let path = match before_q.first() {
        // origin-form (RFC 9112 §3.2.1) and asterisk-form (§3.2.4).
        Some(b'/') | Some(b'*') | None => Span {
            start: base,
            end: before_end,
        },
        // absolute-form (RFC 9112 §3.2.2): "scheme://authority" then the path.
        _ => match before_q.windows(3).position(|w| w == b"://") {
            Some(i) => {
                let auth = i + 3;
                match before_q[auth..].iter().position(|&c| c == b'/') {
                    Some(j) => Span {
                        start: base + (auth + j) as u32,
                        end: before_end,
                    },
                    // Empty path: point at the '/' of "://" so `path` still reads "/".
                    None => Span {
                        start: base + i as u32 + 1,
                        end: base + i as u32 + 2,
                    },
                }
            }
            // authority-form (RFC 9112 §3.2.3) or anything else: the whole thing.
            None => Span {
                start: base,
                end: before_end,
            },
        },
    };
    (path, query)
}

/// Index of the request line: RFC 9112 §2.2: "a server that is expecting to receive and
/// parse a request-line SHOULD ignore at least one empty line (CRLF) received prior to
/// the request-line". Skips CRLF and bare LF empty lines, as httparse does; a lone CR
/// is left in place (httparse rejects it).
pub(crate) fn request_line_start(b: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match &b[i..] {
            [b'\r', b'\n', ..] => i += 2,
            [b'\n', ..] => i += 1,
            _ => return i,
        }
    }
}

/// True when the request line starts with more than [`MAX_METHOD_BYTES`] tchars: a
/// method token (RFC 9110 §9.1: `method = token`) too long to be routed, whether or not
/// the rest of the line has arrived.
fn method_too_long(b: &[u8]) -> bool {
    let line = &b[request_line_start(b)..];
    line.get(..=MAX_METHOD_BYTES)
        .is_some_and(|m| m.iter().all(|&c| is_tchar(c)))
}

/// Longest request line (without its LF) that may still hold a target of
/// `max_uri_bytes`: the longest method routed ([`MAX_METHOD_BYTES`]), two spaces,
/// `HTTP/1.1` and a CR. An unfinished line longer than this is `414` at once; a shorter
/// one is waited for, since its head may be valid.
pub(crate) fn request_line_cap(limits: &Limits) -> usize {
    const OVERHEAD: usize = MAX_METHOD_BYTES + " ".len() + " HTTP/1.1".len() + "\r".len();
    limits.max_uri_bytes.saturating_add(OVERHEAD)
}

/// True when the request line in `b` is longer than [`request_line_cap`] (its LF, if
/// any, is further on).
fn line_too_long(b: &[u8], limits: &Limits) -> bool {
    let line = &b[request_line_start(b)..];
    let cap = request_line_cap(limits);
    line.len() > cap && !line[..=cap].contains(&b'\n')
}

/// The part of `b` a verdict is based on: what an unfinished head has when it first
/// passes a limit — `max_head_bytes + 1` bytes, or a request line of
/// `request_line_cap + 1` bytes — or all of `b` when the head ends before. The loop
/// parses an unfinished head at those points (`conn::HeadRead::worth_parsing`); judging
/// a head that arrived whole on the same bytes gives it the same answer (a fault after
/// the limit does not turn a `414`/`431` into a `400` or `505`, and a 32-byte method
/// with a target at the limit is not `414` by chance of the reads).
fn verdict_window<'a>(b: &'a [u8], limits: &Limits) -> &'a [u8] {
    let mut end = b.len().min(limits.max_head_bytes.saturating_add(1));
    if line_too_long(&b[..end], limits) {
        end = request_line_start(&b[..end]) + request_line_cap(limits) + 1;
    }
    &b[..end]
}

/// The limit checks that apply while a head is still incomplete.
fn incomplete(b: &[u8], limits: &Limits) -> Result<Option<Head>, Error> {
    if line_too_long(b, limits) {
        return Err(Error::UriTooLong);
    }
    if b.len() > limits.max_head_bytes {
        return Err(Error::HeadTooLarge);
    }
    Ok(None)
}

/// httparse accepts only HTTP/1.0 and HTTP/1.1; tells a well-formed other version from
/// garbage (400). `HTTP-version = HTTP-name "/" DIGIT "." DIGIT` (RFC 9112 §2.3),
/// HTTP-name case-sensitive. Another major version is 505 (RFC 9110 §15.6.6: the status
/// is about "the major version of HTTP that was used"); `HTTP/1.2` to `HTTP/1.9` give
/// `Ok(Some(at))`, the offset in `b` of the minor digit, to be read as HTTP/1.1 (RFC 9110
/// §2.5, as nginx and Go do); `Ok(None)` means the version is still arriving.
fn version_error(b: &[u8], limits: &Limits) -> Result<Option<usize>, Error> {
    const PATTERN: &[u8; 8] = b"HTTP/0.0";
    let line_at = request_line_start(b);
    let line = &b[line_at..];
    let mut spaces = line.iter().enumerate().filter(|&(_, &c)| c == b' ');
    let Some((sp, _)) = spaces.nth(1) else {
        return Err(Error::MalformedHead);
    };
    let rest = &line[sp + 1..];
    let eol = rest.iter().position(|&c| c == b'\r' || c == b'\n');
    let tok = &rest[..eol.unwrap_or(rest.len())];
    let fits = |tok: &[u8]| {
        tok.len() <= PATTERN.len()
            && tok.iter().zip(PATTERN).all(|(&c, &p)| match p {
                b'0' => c.is_ascii_digit(),
                _ => c == p,
            })
    };
    if tok.len() == PATTERN.len() && fits(tok) {
        if tok.starts_with(b"HTTP/1.") {
            // 1.0 and 1.1 never get here: httparse takes them.
            Ok(Some(line_at + sp + 1 + PATTERN.len() - 1))
        } else if eol.is_none() {
            // "HTTP/2.0" and nothing after it yet: the next byte decides. A CR or LF
            // makes it another major version (505); anything else a token that is no
            // version (400), which is what the whole line gets. Answering 505 here made
            // `HTTP/2.0x` 505 when a read ended after its eighth byte and 400 when not.
            incomplete(b, limits).map(|_| None)
        } else {
            Err(Error::UnsupportedVersion)
        }
    } else if eol.is_none() && fits(tok) {
        // A prefix such as "HTTP/2": wait for the rest of the line.
        incomplete(b, limits).map(|_| None)
    } else {
        Err(Error::MalformedHead)
    }
}

/// What is wrong with the first field line that is not `token ":" ...`.
enum BadName {
    /// `token 1*WS ":" ...` (RFC 9112 §5.1).
    BeforeColon,
    /// `token 1*WS` and nothing after it yet: the line has not ended.
    Unfinished,
    /// Anything else.
    Other,
}

/// Classifies the first field line that is not `token ":" ...` (only called on an
/// httparse header-name error, so speed does not matter).
fn bad_field_name(b: &[u8]) -> BadName {
    let b = &b[request_line_start(b)..];
    let name_len = |line: &[u8]| line.iter().take_while(|&&c| is_tchar(c)).count();
    let mut lines = b.split(|&c| c == b'\n').skip(1).peekable(); // after the request line
    while let Some(line) = lines.next() {
        // No LF after the last piece: it is still arriving (a CR is not its end yet).
        let unfinished = lines.peek().is_none();
        let line = match line.strip_suffix(b"\r") {
            Some(l) if !unfinished => l,
            _ => line,
        };
        let n = name_len(line);
        if n > 0 && line.get(n) == Some(&b':') {
            continue;
        }
        let rest = &line[n..];
        let ws = rest
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        return if n > 0 && ws > 0 && rest.get(ws) == Some(&b':') {
            BadName::BeforeColon
        } else if n > 0 && ws == rest.len() && unfinished {
            BadName::Unfinished
        } else {
            BadName::Other
        };
    }
    BadName::Other
}

const fn byte_table(chars: &[u8], ranges: &[(u8, u8)]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] = true;
        i += 1;
    }
    let mut r = 0;
    while r < ranges.len() {
        let mut c = ranges[r].0;
        while c <= ranges[r].1 {
            t[c as usize] = true;
            c += 1;
        }
        r += 1;
    }
    t
}

/// `tchar` (RFC 9110 §5.6.2): "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" /
/// "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
static TCHAR: [bool; 256] = byte_table(
    b"!#$%&'*+-.^_`|~",
    &[(b'0', b'9'), (b'a', b'z'), (b'A', b'Z')],
);

/// True for a `tchar` (RFC 9110 §5.6.2).
#[inline]
pub fn is_tchar(c: u8) -> bool {
    TCHAR[c as usize]
}

/// The bytes a request-target may hold with no further look (visible ASCII, RFC 3986 §2),
/// less `#` (never valid, see `is_valid_target`), `%` (which needs its two hex digits)
/// and `?` (where the query starts).
static TARGET_PLAIN: [bool; 256] = {
    let mut t = byte_table(b"", &[(0x21, 0x7e)]);
    t[b'#' as usize] = false;
    t[b'%' as usize] = false;
    t[b'?' as usize] = false;
    t
};

/// True when every byte of `target` is visible ASCII other than `#`, and every `%` before
/// the query begins `pct-encoded = "%" HEXDIG HEXDIG` (RFC 3986 §2.1; a path is made of
/// pchars, §3.3). An invalid escape in the path makes the request line invalid (RFC 9112
/// §3: 400), and nginx and Go's net/http both refuse it; in the query both pass it to the
/// application (`?q=100%` is common from forms and address bars), and so does this.
/// One table look-up a byte for a target with neither `%` nor `?`.
fn is_valid_target(target: &[u8]) -> bool {
    let mut i = 0;
    while i < target.len() {
        let c = target[i];
        if !TARGET_PLAIN[c as usize] {
            match c {
                b'%' => {
                    let hex = |j: usize| target.get(j).is_some_and(u8::is_ascii_hexdigit);
                    if !(hex(i + 1) && hex(i + 2)) {
                        return false;
                    }
                    i += 2;
                }
                b'?' => {
                    return target[i..]
                        .iter()
                        .all(|&c| matches!(c, 0x21..=0x7e) && c != b'#');
                }
                _ => return false,
            }
        }
        i += 1;
    }
    true
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )` (RFC 3986 §3.2.2) without the
/// `%` of pct-encoded, which `is_valid_host` checks with its two digits. IPv4address is a
/// reg-name too, as far as the bytes go.
static REG_NAME_CHARS: [bool; 256] = byte_table(
    b"-._~!$&'()*+,;=",
    &[(b'0', b'9'), (b'a', b'z'), (b'A', b'Z')],
);

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2), `uri-host = IP-literal / IPv4address /
/// reg-name`, `port = *DIGIT` (RFC 3986 §3.2.2, §3.2.3). An empty value passes: whether
/// it is allowed depends on the target's form (`Scan::finish`). RFC 9112 §3.2: a request
/// with "a Host header field with an invalid field value" MUST get 400. One pass, one
/// table look-up a byte for the usual `name[:port]`.
pub(crate) fn is_valid_host(v: &[u8]) -> bool {
    let mut i = 0;
    if let [b'[', rest @ ..] = v {
        // IP-literal = "[" ( IPv6address / IPvFuture ) "]"
        let Some(close) = rest.iter().position(|&c| c == b']') else {
            return false;
        };
        if !is_ip_literal(&rest[..close]) {
            return false;
        }
        i = close + 2;
    } else {
        loop {
            i += v[i..]
                .iter()
                .position(|&c| !REG_NAME_CHARS[c as usize])
                .unwrap_or(v.len() - i);
            if v.get(i) != Some(&b'%') {
                break;
            }
            // pct-encoded = "%" HEXDIG HEXDIG (RFC 3986 §2.1)
            match v.get(i + 1..i + 3) {
                Some([a, b]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        }
    }
    match &v[i..] {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// The inside of an IP-literal: an IPv6 address (RFC 4291 §2.2 text forms, as std parses
/// them) or `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn is_ip_literal(lit: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = lit {
        let Some(dot) = rest.iter().position(|&c| c == b'.') else {
            return false;
        };
        let (ver, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !ver.is_empty()
            && ver.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&c| REG_NAME_CHARS[c as usize] || c == b':');
    }
    std::str::from_utf8(lit).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
