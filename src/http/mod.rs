//! The sans-I/O HTTP/1.1 protocol core: this module owns the small types shared by the
//! parsing, decoding and encoding stages (byte spans, methods, versions).
//! Nothing under it ever touches a socket, a clock or a thread: callers hand in bytes
//! (and the current time, for dates) and get bytes or parsed views back.

pub mod date;
pub mod decode;
pub mod encode;
pub mod encode_request;
mod head_scan;
pub mod parse;
pub mod urlencoded;

/// A byte range `[start, end)` into the buffer that was parsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte of the range (absolute index into the parsed buffer).
    pub start: u32,
    /// One past the last byte of the range.
    pub end: u32,
}

impl Span {
    /// The bytes this span covers in `buf` (the buffer it was parsed from).
    ///
    /// Panics if the span is out of bounds for `buf`, i.e. when it is used with a
    /// different buffer than the one it was produced from.
    #[inline]
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }

    /// The same range `by` bytes further on.
    pub(crate) fn shifted(self, by: u32) -> Span {
        Span {
            start: self.start + by,
            end: self.end + by,
        }
    }

    /// Number of bytes covered.
    #[inline]
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// True when the span covers no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Request method (RFC 9110 §9). Methods are case-sensitive (RFC 9110 §9.1), so
/// `get` is [`Method::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET (RFC 9110 §9.3.1).
    Get,
    /// HEAD (RFC 9110 §9.3.2).
    Head,
    /// POST (RFC 9110 §9.3.3).
    Post,
    /// PUT (RFC 9110 §9.3.4).
    Put,
    /// DELETE (RFC 9110 §9.3.5).
    Delete,
    /// PATCH (RFC 5789).
    Patch,
    /// OPTIONS (RFC 9110 §9.3.7).
    Options,
    /// CONNECT (RFC 9110 §9.3.6).
    Connect,
    /// TRACE (RFC 9110 §9.3.8).
    Trace,
    /// Any other method token; `Request::method_str` gives it as sent.
    Other,
}

impl Method {
    /// Classifies a method token, case-sensitively (RFC 9110 §9.1: "The method token is
    /// case-sensitive").
    #[inline]
    pub fn from_bytes(b: &[u8]) -> Method {
        match b {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"PATCH" => Method::Patch,
            b"OPTIONS" => Method::Options,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            _ => Method::Other,
        }
    }

    /// The method name; `"OTHER"` for [`Method::Other`].
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other => "OTHER",
        }
    }
}

/// The HTTP versions a request is read as (RFC 9112 §2.3). `HTTP/1.2` to `HTTP/1.9` are read
/// as HTTP/1.1 (RFC 9110 §2.5); another major version is rejected with 505.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_round_trip() {
        let table: &[(&[u8], Method, &str)] = &[
            (b"GET", Method::Get, "GET"),
            (b"HEAD", Method::Head, "HEAD"),
            (b"POST", Method::Post, "POST"),
            (b"PUT", Method::Put, "PUT"),
            (b"DELETE", Method::Delete, "DELETE"),
            (b"PATCH", Method::Patch, "PATCH"),
            (b"OPTIONS", Method::Options, "OPTIONS"),
            (b"CONNECT", Method::Connect, "CONNECT"),
            (b"TRACE", Method::Trace, "TRACE"),
            (b"get", Method::Other, "OTHER"),
            (b"PROPFIND", Method::Other, "OTHER"),
            (b"", Method::Other, "OTHER"),
        ];
        for &(bytes, m, s) in table {
            assert_eq!(Method::from_bytes(bytes), m);
            assert_eq!(m.as_str(), s);
        }
    }

    #[test]
    fn span_basics() {
        let buf = b"hello world";
        let s = Span { start: 6, end: 11 };
        assert_eq!(s.get(buf), b"world");
        assert_eq!(s.len(), 5);
        assert!(!s.is_empty());
        assert!(Span::default().is_empty());
        assert_eq!(Span::default().get(buf), b"");
    }
}
