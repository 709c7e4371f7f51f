//! Request encoding, the client role of `encode.rs`: this stage owns the bytes of every
//! request head the client (`client/`) sends (RFC 9112 §3).
//! It never touches a socket, and never writes a method, target, host or header that
//! would let a byte escape its field: it refuses the whole head instead.

use super::encode::{BodyFraming, write_decimal};
use super::parse::is_tchar;

/// Why [`write_request_head`] refused a request head: the part that would have let a
/// caller inject bytes into the request (request smuggling, header injection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestHeadError {
    /// The method is not a `token` (RFC 9110 §9.1: `method = token`).
    Method,
    /// The request-target is empty or has a byte outside visible ASCII (0x21..=0x7E):
    /// a space, CR or LF would end the request line early (RFC 9112 §3.2).
    Target,
    /// The Host value is empty or has a byte outside `uri-host [ ":" port ]` (RFC 9112
    /// §3.2, RFC 3986 §3.2.2).
    Host,
    /// A field name is not a `token` (RFC 9110 §5.1).
    HeaderName,
    /// A field value holds a control character other than HTAB (RFC 9110 §5.5: CR, LF
    /// and NUL "are invalid and dangerous"; the other controls are not `field-vchar`).
    HeaderValue,
}

impl RequestHeadError {
    /// A short static description.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestHeadError::Method => "the method is not a token",
            RequestHeadError::Target => {
                "the request-target is empty or has a byte outside visible ASCII"
            }
            RequestHeadError::Host => "the Host value is empty or has a forbidden byte",
            RequestHeadError::HeaderName => "a header name is not a token",
            RequestHeadError::HeaderValue => {
                "a header value holds a control character (CR, LF, NUL, ...)"
            }
        }
    }
}

/// Appends a complete HTTP/1.1 request head (RFC 9112 §3): the request line, `Host`, the
/// caller's headers in order, the framing field and the empty line. The client role's
/// counterpart of [`write_head`](super::encode::write_head).
///
/// Nothing is written unless everything is valid: the method must be a token, the target
/// visible ASCII (origin-form `/path?query`, `*`, or absolute-form for a proxy), the host
/// `uri-host [ ":" port ]` bytes, every header name a token and every value free of
/// control characters but HTAB; otherwise `out` is left as it was and the error names
/// the part. User headers named Host, Content-Length or Transfer-Encoding (any case) are
/// skipped: the host is an argument and the framing belongs to the caller's body
/// (RFC 9112 §6.1, §6.2: a request carries one or the other, never both).
/// [`BodyFraming::None`] writes neither (a request without content, RFC 9110 §8.6: "A
/// user agent SHOULD NOT send a Content-Length header field when the request message does
/// not contain content and the method semantics do not anticipate such data").
pub fn write_request_head<'h>(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    framing: BodyFraming,
) -> Result<(), RequestHeadError> {
    let start = out.len();
    let result = request_head(out, method, target, host, headers, framing);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn request_head<'h>(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    framing: BodyFraming,
) -> Result<(), RequestHeadError> {
    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(RequestHeadError::Method);
    }
    if target.is_empty() || !target.bytes().all(|c| (0x21..=0x7e).contains(&c)) {
        return Err(RequestHeadError::Target);
    }
    if host.is_empty() || !super::parse::is_valid_host(host.as_bytes()) {
        return Err(RequestHeadError::Host);
    }
    out.reserve(64 + method.len() + target.len() + host.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        let n = name.as_bytes();
        if n.is_empty() || !n.iter().all(|&c| is_tchar(c)) {
            return Err(RequestHeadError::HeaderName);
        }
        // field-value = *field-content; field-vchar = VCHAR / obs-text, plus SP and HTAB
        // inside (RFC 9110 §5.5).
        if value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
            return Err(RequestHeadError::HeaderValue);
        }
        if request_owned(n) {
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        BodyFraming::None => {}
        BodyFraming::Length(len) => {
            out.extend_from_slice(b"Content-Length: ");
            write_decimal(out, len);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Header names [`write_request_head`] writes itself.
#[inline]
fn request_owned(name: &[u8]) -> bool {
    match name.len() {
        4 => name.eq_ignore_ascii_case(b"host"),
        14 => name.eq_ignore_ascii_case(b"content-length"),
        17 => name.eq_ignore_ascii_case(b"transfer-encoding"),
        _ => false,
    }
}

#[cfg(test)]
#[path = "encode_request_tests.rs"]
mod tests;
