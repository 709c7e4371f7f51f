//! Table-driven tests for `parse_head`: each row is raw request bytes and the outcome.
//! They never touch a socket, a clock or a thread.

use super::*;
use crate::error::Error::{self, *};

const LIMITS: Limits = Limits {
    max_head_bytes: 1024,
    max_headers: 16,
    max_uri_bytes: 64,
    max_body_bytes: 1000,
};

fn parse(buf: &[u8]) -> Result<Option<Head>, Error> {
    let mut fields = Vec::new();
    parse_head(buf, 0, &LIMITS, &mut fields)
}

/// (name, request bytes, expected error, expected status).
const REJECT: &[(&str, &[u8], Error, u16)] = &[
    // Request line (RFC 9112 §3).
    ("bad method token", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("empty target", b"GET  HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("http/0.9 line", b"GET /\r\n\r\n", MalformedHead, 400),
    // Methods longer than MAX_METHOD_BYTES (32) are 501 (RFC 9110 §9.1), complete or not,
    // before any other verdict on the line; a non-token byte within the first 33 is 400.
    ("method 33", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\nHost: a\r\n\r\n", MethodTooLong, 501),
    ("method 33 incomplete", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", MethodTooLong, 501),
    ("method 33 no host", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\n\r\n", MethodTooLong, 501),
    ("method 33 bad target", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA /\x01 HTTP/1.1\r\n\r\n", MethodTooLong, 501),
    ("method 33 version 2.0", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/2.0\r\n\r\n", MethodTooLong, 501),
    ("method 34 then junk", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA(", MethodTooLong, 501),
    ("method 33 leading CRLF", b"\r\n\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", MethodTooLong, 501),
    ("method 33 tchars", b"!#$%&'*+-.^_`|~0123456789abcdefgh / HTTP/1.1\r\nHost: a\r\n\r\n", MethodTooLong, 501),
    ("method 32 then junk", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA( / HTTP/1.1\r\n\r\n", MalformedHead, 400),
    ("method after bare CR", b"\rAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", MalformedHead, 400),
    // Request-target bytes: visible ASCII only (RFC 9112 §3.2, RFC 3986 §2).
    ("utf-8 in path", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("utf-8 in query", b"GET /?q=\xe2\x82\xac HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    // RFC 3986 §2.1, §3.3: a `%` in the path begins `"%" HEXDIG HEXDIG` (RFC 9112 §3: 400).
    ("% then non-hex in path", b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("% then one hex digit in path", b"GET /a%4g HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("% ending the path", b"GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("% one digit then the query", b"GET /a%4?b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("%% in path", b"GET /%%41 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("bad escape in an absolute-form path", b"GET http://h/%zz HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    ("# after a query %", b"GET /?%#x HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("4-byte utf-8", b"GET /\xf0\x9f\x98\x80 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("utf-8 authority", b"GET http://h\xc3\xa9/ HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("utf-8 target 1.0", b"GET /\xc3\xa9 HTTP/1.0\r\n\r\n", InvalidTarget, 400),
    ("fragment", b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("fragment in query", b"GET /a?q=1#b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("userinfo absolute", b"GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    ("userinfo authority", b"CONNECT u@h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", InvalidTarget, 400),
    ("empty absolute authority", b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    ("quote in absolute authority", b"GET http://a\"b/ HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    ("bad port in absolute authority", b"GET http://h:x/ HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    // RFC 9112 §3.2: neither origin-form nor an absolute-URI; authority-form is CONNECT's.
    ("relative path target", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("bare name target", b"GET h.example HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("scheme starting with a digit", b"GET 1h://h/ HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("empty scheme", b"GET :x HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("dot-segment target", b"POST .. HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("asterisk and more", b"OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("latin-1 byte", b"GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("byte 0x80", b"GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("byte 0xff", b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("DEL in target", b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("NUL in target", b"GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("control in target", b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("tab in target", b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("ESC in target", b"GET /\x1b[0m HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    // Asterisk-form is for OPTIONS only (RFC 9112 §3.2.4); methods are case-sensitive.
    ("GET *", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", AsteriskFormNotOptions, 400),
    ("HEAD *", b"HEAD * HTTP/1.1\r\nHost: a\r\n\r\n", AsteriskFormNotOptions, 400),
    ("POST *", b"POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", AsteriskFormNotOptions, 400),
    ("CONNECT *", b"CONNECT * HTTP/1.1\r\nHost: a\r\n\r\n", AsteriskFormNotOptions, 400),
    // RFC 9110 §9.3.6: CONNECT takes the authority-form, with a port.
    ("CONNECT origin-form", b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("CONNECT absolute-form", b"CONNECT http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
    ("CONNECT without a port", b"CONNECT h HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    ("CONNECT empty port", b"CONNECT h: HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    ("CONNECT port past 65535", b"CONNECT h:65536 HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    ("CONNECT port 0", b"CONNECT h:0 HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    ("CONNECT no host", b"CONNECT :443 HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    ("CONNECT IPv6 without a port", b"CONNECT [::1] HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget, 400),
    ("options *", b"options * HTTP/1.1\r\nHost: a\r\n\r\n", AsteriskFormNotOptions, 400),
    ("PROPFIND * 1.0", b"PROPFIND * HTTP/1.0\r\n\r\n", AsteriskFormNotOptions, 400),
    ("space in target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("lowercase name", b"GET / http/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("bare CR ends line", b"GET / HTTP/1.1\rHost: a\r\n\r\n", MalformedHead, 400),
    ("version 1.10", b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("version 2.00", b"GET / HTTP/2.00\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("version HTTP/2", b"GET / HTTP/2\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("version x.1", b"GET / HTTP/x.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("version HTTPS", b"GET / HTTPS/1.1\r\nHost: a\r\n\r\n", MalformedHead, 400),
    // RFC 9110 §15.6.6: well-formed but unsupported versions.
    ("version 2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", UnsupportedVersion, 505),
    ("version 1.2 without Host", b"GET / HTTP/1.2\r\n\r\n", MissingHost, 400),
    ("version 3.0", b"GET / HTTP/3.0\r\n\r\n", UnsupportedVersion, 505),
    ("version 0.9", b"GET / HTTP/0.9\r\n\r\n", UnsupportedVersion, 505),
    ("version 2.0, then a CR", b"GET / HTTP/2.0\r", UnsupportedVersion, 505),
    // Field lines (RFC 9112 §5).
    ("space in name", b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n", MalformedHead, 400),
    ("ws before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", WhitespaceBeforeColon, 400),
    ("tab before colon", b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", WhitespaceBeforeColon, 400),
    (
        "ws before colon later",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A  : b\r\n\r\n",
        WhitespaceBeforeColon,
        400,
    ),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", MalformedHead, 400),
    ("obs-fold tab", b"GET / HTTP/1.1\r\nX: b\r\n\tc\r\nHost: a\r\n\r\n", MalformedHead, 400),
    ("ws first line", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", MalformedHead, 400),
    ("bare CR in value", b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", MalformedHead, 400),
    ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", MalformedHead, 400),
    ("no colon", b"GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", MalformedHead, 400),
    ("empty name", b"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", MalformedHead, 400),
    // Host (RFC 9112 §3.2).
    ("missing host", b"GET / HTTP/1.1\r\nX: a\r\n\r\n", MissingHost, 400),
    ("duplicate host", b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", DuplicateHost, 400),
    ("duplicate host 1.0", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", DuplicateHost, 400),
    ("host with space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", InvalidHost, 400),
    ("host with tab", b"GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", InvalidHost, 400),
    ("host with slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", InvalidHost, 400),
    ("host with DEL", b"GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", MalformedHead, 400),
    ("empty host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", InvalidHost, 400),
    ("blank host", b"GET / HTTP/1.1\r\nHost: \t \r\n\r\n", InvalidHost, 400),
    ("empty host 1.0", b"GET / HTTP/1.0\r\nHost:\r\n\r\n", InvalidHost, 400),
    ("empty host asterisk", b"OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n", InvalidHost, 400),
    ("empty host, CL", b"POST /a HTTP/1.1\r\nHost:\r\nContent-Length: 1\r\n\r\nx", InvalidHost, 400),
    ("host obs-text", b"GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", InvalidHost, 400),
    // Content-Length (RFC 9110 §8.6, RFC 9112 §6.3 item 5).
    ("cl plus", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", InvalidContentLength, 400),
    ("cl minus", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", InvalidContentLength, 400),
    ("cl hex", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", InvalidContentLength, 400),
    ("cl empty", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", InvalidContentLength, 400),
    ("cl blank", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  \r\n\r\n", InvalidContentLength, 400),
    ("cl inner sp", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", InvalidContentLength, 400),
    ("cl list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n", InvalidContentLength, 400),
    ("cl list sp", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", InvalidContentLength, 400),
    (
        "cl overflow",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
        InvalidContentLength,
        400,
    ),
    (
        "cl twice same",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
        InvalidContentLength,
        400,
    ),
    (
        "cl twice differ",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        InvalidContentLength,
        400,
    ),
    ("cl too big", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", BodyTooLarge, 413),
    (
        "cl u64 max",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
        BodyTooLarge,
        413,
    ),
    // Transfer-Encoding (RFC 9112 §6.1, §6.3).
    (
        "cl and te",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ContentLengthWithTransferEncoding,
        400,
    ),
    (
        "te and cl",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        ContentLengthWithTransferEncoding,
        400,
    ),
    ("te gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", TransferEncodingNotChunkedLast, 400),
    ("te identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", TransferEncodingNotChunkedLast, 400),
    ("te empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", TransferEncodingNotChunkedLast, 400),
    (
        "te chunked, gzip",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        TransferEncodingNotChunkedLast,
        400,
    ),
    (
        "te chunked twice",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        TransferEncodingNotChunkedLast,
        400,
    ),
    (
        "te chunked twice fields",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        TransferEncodingNotChunkedLast,
        400,
    ),
    (
        "te chunked param",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
        TransferEncodingNotChunkedLast,
        400,
    ),
    (
        "te chunkedx",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n",
        TransferEncodingNotChunkedLast,
        400,
    ),
    (
        "te gzip, chunked",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        UnknownTransferEncoding,
        501,
    ),
    (
        "te gzip then chunked fields",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        UnknownTransferEncoding,
        501,
    ),
    (
        "te in 1.0",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        TransferEncodingInHttp10,
        400,
    ),
    (
        "te and cl in 1.0",
        b"POST / HTTP/1.0\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        TransferEncodingInHttp10,
        400,
    ),
    // Limits.
    (
        "target too long",
        b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n",
        UriTooLong,
        414,
    ),
    (
        "target too long, no eol yet",
        b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        UriTooLong,
        414,
    ),
    (
        "too many headers",
        b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\nI: 1\r\nJ: 1\r\nK: 1\r\nL: 1\r\nM: 1\r\nN: 1\r\nO: 1\r\nP: 1\r\n\r\n",
        TooManyHeaders,
        431,
    ),
];

#[test]
fn rejects() {
    for &(name, input, err, status) in REJECT {
        let mut fields = vec![(Span::default(), Span::default())];
        assert_eq!(
            parse_head(input, 0, &LIMITS, &mut fields),
            Err(err),
            "{name}"
        );
        assert_eq!(err.status(), status, "{name}");
        assert_eq!(fields.len(), 1, "{name}: fields left appended on error");
    }
}

#[test]
fn head_too_large() {
    let mut head = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    while head.len() < LIMITS.max_head_bytes {
        head.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    // Incomplete and already over the limit (checked before the field count).
    let mut lim = LIMITS;
    lim.max_headers = 100;
    assert_eq!(
        parse_head(&head, 0, &lim, &mut Vec::new()),
        Err(HeadTooLarge)
    );
    // Complete but over the limit.
    head.extend_from_slice(b"\r\n");
    assert_eq!(
        parse_head(&head, 0, &lim, &mut Vec::new()),
        Err(HeadTooLarge)
    );
    // Endless leading empty lines count too.
    let crlfs = b"\r\n".repeat(LIMITS.max_head_bytes);
    assert_eq!(parse(&crlfs), Err(HeadTooLarge));
}

/// Every method length around the cap, with the head complete and with only the method
/// sent so far; and a method far longer than every limit is still 501, not 414 or 431.
#[test]
fn method_longer_than_the_cap_is_501_complete_or_not() {
    for n in 1..=MAX_METHOD_BYTES + 3 {
        let method = "M".repeat(n);
        let head = format!("{method} / HTTP/1.1\r\nHost: a\r\n\r\n");
        let (complete, partial) = (parse(head.as_bytes()), parse(method.as_bytes()));
        if n <= MAX_METHOD_BYTES {
            assert!(matches!(complete, Ok(Some(_))), "{n}: {complete:?}");
            assert_eq!(partial, Ok(None), "{n}");
        } else {
            assert_eq!(complete, Err(MethodTooLong), "{n}");
            assert_eq!(partial, Err(MethodTooLong), "{n}");
        }
    }
    let huge = "A".repeat(100_000);
    assert!(huge.len() > LIMITS.max_head_bytes && huge.len() > LIMITS.max_uri_bytes);
    assert_eq!(parse(huge.as_bytes()), Err(MethodTooLong));
    let huge_head = format!("{huge} / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(parse(huge_head.as_bytes()), Err(MethodTooLong));
}

#[test]
fn max_headers_is_capped() {
    let mut head = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for _ in 0..MAX_HEADERS_CAP {
        head.extend_from_slice(b"X: 1\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let lim = Limits {
        max_head_bytes: 1 << 20,
        max_headers: usize::MAX,
        ..LIMITS
    };
    assert_eq!(
        parse_head(&head, 0, &lim, &mut Vec::new()),
        Err(TooManyHeaders)
    );
    let lim = Limits {
        max_headers: 0,
        ..lim
    };
    assert_eq!(
        parse_head(b"GET / HTTP/1.0\r\n\r\n", 0, &lim, &mut Vec::new()).map(|h| h.is_some()),
        Ok(true)
    );
}

/// Expected shape of an accepted head.
struct Want {
    method: Method,
    path: &'static [u8],
    query: Option<&'static [u8]>,
    version: Version,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
    /// Bytes after the head (body); the head length is the rest.
    body: usize,
    nfields: usize,
}

const fn want(path: &'static [u8], body: usize, nfields: usize) -> Want {
    Want {
        method: Method::Get,
        path,
        query: None,
        version: Version::Http11,
        framing: Framing::None,
        keep_alive: true,
        expect_continue: false,
        body,
        nfields,
    }
}

const H10: Version = Version::Http10;

#[rustfmt::skip]
const ACCEPT: &[(&str, &[u8], Want)] = &[
    ("wrk", b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8090\r\n\r\n", want(b"/plaintext", 0, 1)),
    // RFC 9112 §2.2: "a recipient MAY recognize a single LF as a line terminator" in the
    // head (not in a chunked body, see decode.rs), mixed with CRLF in any way.
    ("bare LF lines", b"GET / HTTP/1.1\nHost: a\n\n", want(b"/", 0, 1)),
    ("bare LF request line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", want(b"/", 0, 1)),
    ("bare LF empty line", b"GET / HTTP/1.1\r\nHost: a\r\n\n", want(b"/", 0, 1)),
    ("CRLF empty line", b"GET / HTTP/1.1\nHost: a\n\r\n", want(b"/", 0, 1)),
    ("bare LF fields", b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\nY: 2\n\r\n", want(b"/", 0, 3)),
    ("leading LFs, LF head", b"\n\r\n\nGET / HTTP/1.0\n\n", Want { version: H10, keep_alive: false, ..want(b"/", 0, 0) }),
    ("bare LF, CL body", b"POST / HTTP/1.1\nHost: a\nContent-Length: 2\n\nhi", Want { method: Method::Post, framing: Framing::Length(2), ..want(b"/", 2, 2) }),
    ("bare LF, chunked", b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n0\r\n\r\n", Want { method: Method::Post, framing: Framing::Chunked, ..want(b"/", 5, 2) }),
    ("leading CRLFs", b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", want(b"/", 0, 1)),
    ("leading LF", b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", want(b"/", 0, 1)),
    ("1.0 no host", b"GET /x HTTP/1.0\r\n\r\n", Want { version: H10, keep_alive: false, ..want(b"/x", 0, 0) }),
    // RFC 9110 §2.5: a higher HTTP/1 minor version is processed as HTTP/1.1.
    ("version 1.2", b"GET /x HTTP/1.2\r\nHost: a\r\n\r\n", want(b"/x", 0, 1)),
    ("version 1.9, leading CRLF, chunked", b"\r\nPOST /x?y HTTP/1.9\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Want { method: Method::Post, framing: Framing::Chunked, query: Some(b"y"), ..want(b"/x", 5, 2) }),
    ("empty host absolute", b"GET http://h/p HTTP/1.1\r\nHost:\r\n\r\n", want(b"/p", 0, 1)),
    ("empty host authority", b"CONNECT h:443 HTTP/1.1\r\nHost:\r\n\r\n", Want { method: Method::Connect, ..want(b"h:443", 0, 1) }),
    ("ipv6 host", b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", want(b"/", 0, 1)),
    ("HOST upper", b"GET / HTTP/1.1\r\nHOST: a\r\n\r\n", want(b"/", 0, 1)),
    ("query", b"GET /a/b?c=d&e HTTP/1.1\r\nHost: a\r\n\r\n", Want { query: Some(b"c=d&e"), ..want(b"/a/b", 0, 1) }),
    ("pct-encoded utf-8", b"GET /caf%C3%A9?q=%E2%82%AC HTTP/1.1\r\nHost: a\r\n\r\n", Want { query: Some(b"q=%E2%82%AC"), ..want(b"/caf%C3%A9", 0, 1) }),
    // `%` in the path must begin an escape (below); in the query it may stand alone.
    ("every visible ascii but #", b"GET /!\"$&'()*+,-./09:;<=>?%@AZ[\\]^_`az{|}~ HTTP/1.1\r\nHost: a\r\n\r\n", Want { query: Some(b"%@AZ[\\]^_`az{|}~"), ..want(b"/!\"$&'()*+,-./09:;<=>", 0, 1) }),
    ("pct-encoded in every case", b"GET /%2f%2F%aA%09?%zz HTTP/1.1\r\nHost: a\r\n\r\n", Want { query: Some(b"%zz"), ..want(b"/%2f%2F%aA%09", 0, 1) }),
    ("@ in an absolute-form path", b"GET http://h/a@b?c@d HTTP/1.1\r\nHost: h\r\n\r\n", Want { query: Some(b"c@d"), ..want(b"/a@b", 0, 1) }),
    ("empty query", b"GET /a? HTTP/1.1\r\nHost: a\r\n\r\n", Want { query: Some(b""), ..want(b"/a", 0, 1) }),
    ("asterisk", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Want { method: Method::Options, ..want(b"*", 0, 1) }),
    ("asterisk 1.0", b"OPTIONS * HTTP/1.0\r\n\r\n", Want { method: Method::Options, version: H10, keep_alive: false, ..want(b"*", 0, 0) }),
    ("asterisk in path", b"GET /* HTTP/1.1\r\nHost: a\r\n\r\n", want(b"/*", 0, 1)),
    ("asterisk authority", b"CONNECT *.a:443 HTTP/1.1\r\nHost: a\r\n\r\n", Want { method: Method::Connect, ..want(b"*.a:443", 0, 1) }),
    ("absolute", b"GET http://h:1/p/q?x HTTP/1.1\r\nHost: h\r\n\r\n", Want { query: Some(b"x"), ..want(b"/p/q", 0, 1) }),
    ("absolute no path", b"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", want(b"/", 0, 1)),
    ("absolute query only", b"GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n", Want { query: Some(b"x"), ..want(b"/", 0, 1) }),
    ("authority", b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", Want { method: Method::Connect, ..want(b"h:443", 0, 1) }),
    ("IPv6 authority", b"CONNECT [::1]:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", Want { method: Method::Connect, ..want(b"[::1]:443", 0, 1) }),
    ("absolute-uri of another scheme", b"GET urn:x:y HTTP/1.1\r\nHost: a\r\n\r\n", want(b"urn:x:y", 0, 1)),
    ("scheme with + - .", b"GET a+b-c.d://h/p HTTP/1.1\r\nHost: a\r\n\r\n", want(b"/p", 0, 1)),
    ("other method", b"PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n", Want { method: Method::Other, ..want(b"/", 0, 1) }),
    ("method 32", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\nHost: a\r\n\r\n", Want { method: Method::Other, ..want(b"/", 0, 1) }),
    // Framing (RFC 9112 §6.3).
    ("cl 0", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", Want { method: Method::Post, framing: Framing::Length(0), ..want(b"/", 0, 2) }),
    ("cl 5 + body", b"POST / HTTP/1.1\r\nHost: a\r\ncontent-length:  5 \r\n\r\nhello", Want { method: Method::Post, framing: Framing::Length(5), ..want(b"/", 5, 2) }),
    ("cl leading zeros", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0007\r\n\r\n", Want { method: Method::Post, framing: Framing::Length(7), ..want(b"/", 0, 2) }),
    ("cl max body", b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n", Want { method: Method::Put, framing: Framing::Length(1000), ..want(b"/", 0, 2) }),
    ("cl 1.0", b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", Want { method: Method::Post, version: H10, keep_alive: false, framing: Framing::Length(3), ..want(b"/", 3, 1) }),
    ("te chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Want { method: Method::Post, framing: Framing::Chunked, ..want(b"/", 5, 2) }),
    ("te CHUNKED", b"POST / HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING: Chunked\r\n\r\n", Want { method: Method::Post, framing: Framing::Chunked, ..want(b"/", 0, 2) }),
    ("te empty elems", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n", Want { method: Method::Post, framing: Framing::Chunked, ..want(b"/", 0, 2) }),
    // Connection (RFC 9112 §9.3) and Expect (RFC 9110 §10.1.1).
    ("close", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", Want { keep_alive: false, ..want(b"/", 0, 2) }),
    ("Close in list", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", Want { keep_alive: false, ..want(b"/", 0, 2) }),
    ("close 2nd field", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: close\r\n\r\n", Want { keep_alive: false, ..want(b"/", 0, 3) }),
    ("closed is not close", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", want(b"/", 0, 2)),
    ("1.1 keep-alive", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", want(b"/", 0, 2)),
    ("1.0 keep-alive", b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", Want { version: H10, ..want(b"/", 0, 1) }),
    ("1.0 ka list", b"GET / HTTP/1.0\r\nConnection: foo,keep-alive\r\n\r\n", Want { version: H10, ..want(b"/", 0, 1) }),
    ("1.0 ka then close", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", Want { version: H10, keep_alive: false, ..want(b"/", 0, 2) }),
    ("expect", b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", Want { method: Method::Put, expect_continue: true, framing: Framing::Length(1), ..want(b"/", 0, 3) }),
    ("expect case", b"GET / HTTP/1.1\r\nHost: a\r\nexpect: 100-Continue\r\n\r\n", Want { expect_continue: true, ..want(b"/", 0, 2) }),
    ("expect other", b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", want(b"/", 0, 2)),
    ("expect 1.0 ignored", b"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", Want { version: H10, keep_alive: false, ..want(b"/", 0, 1) }),
];

#[test]
fn accepts() {
    for (name, input, w) in ACCEPT {
        let mut fields = Vec::new();
        let h = match parse_head(input, 0, &LIMITS, &mut fields) {
            Ok(Some(h)) => h,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(h.method, w.method, "{name}");
        assert_eq!(h.path.get(input), w.path, "{name}");
        assert_eq!(h.query.map(|q| q.get(input)), w.query, "{name}");
        assert_eq!(h.version, w.version, "{name}");
        assert_eq!(h.framing, w.framing, "{name}");
        assert_eq!(h.keep_alive, w.keep_alive, "{name}");
        assert_eq!(h.expect_continue, w.expect_continue, "{name}");
        assert_eq!(h.len as usize, input.len() - w.body, "{name}");
        assert_eq!(h.fields, 0..w.nfields as u32, "{name}");
        assert_eq!(fields.len(), w.nfields, "{name}");
        if h.method != Method::Other {
            assert_eq!(
                h.method_span.get(input),
                h.method.as_str().as_bytes(),
                "{name}"
            );
        }
        let target = h.target.get(input);
        assert!(!target.is_empty(), "{name}");
        assert!(
            h.target.start <= h.path.start && h.path.end <= h.target.end,
            "{name}"
        );
    }
}

#[test]
fn every_proper_prefix_is_incomplete() {
    for (name, input, w) in ACCEPT {
        for cut in 0..input.len() - w.body {
            let r = parse(&input[..cut]);
            assert_eq!(r, Ok(None), "{name} cut at {cut}");
        }
    }
    // A version that may still become well-formed waits for more bytes.
    assert_eq!(parse(b"GET / HTTP/2"), Ok(None));
    assert_eq!(parse(b"GET / HTTP/2."), Ok(None));
    // All eight bytes of one, and nothing after: a CR or LF next makes it another major
    // version (505), any other byte a token that is no version (400).
    assert_eq!(parse(b"GET / HTTP/2.0"), Ok(None));
}

/// `HeadScan` finds the end of every accepted head exactly where `parse_head` does, and
/// at the same moment: for every prefix, one scanner fed prefix after prefix and a
/// fresh one both say "complete" exactly when `parse_head` does, with the same length.
#[test]
fn head_scan_agrees_with_parse_head_on_every_prefix() {
    for (name, input, _) in ACCEPT {
        let mut resumed = HeadScan::new();
        for cut in 0..=input.len() {
            let prefix = &input[..cut];
            let parsed = parse(prefix).unwrap().map(|h| h.len as usize);
            assert_eq!(resumed.scan(prefix), parsed, "{name} cut at {cut}");
            assert_eq!(HeadScan::new().scan(prefix), parsed, "{name} cut at {cut}");
        }
    }
}

#[test]
fn field_values_and_find_field() {
    let input: &[u8] = b"GET / HTTP/1.1\r\nHost:  example.com \r\nX-Empty:\r\nX-Tab:\t a\tb \t\r\nx-dup: 1\r\nX-Dup: 2\r\n\r\n";
    let mut fields = Vec::new();
    let h = parse_head(input, 0, &LIMITS, &mut fields).unwrap().unwrap();
    let table: &[(&str, Option<&[u8]>)] = &[
        ("host", Some(b"example.com")),
        ("HOST", Some(b"example.com")),
        ("x-empty", Some(b"")),
        ("x-tab", Some(b"a\tb")),
        ("X-DUP", Some(b"1")),
        ("missing", None),
    ];
    for &(name, value) in table {
        assert_eq!(find_field(input, &fields, name), value, "{name}");
    }
    let names: Vec<&[u8]> = fields.iter().map(|(n, _)| n.get(input)).collect();
    assert_eq!(
        names,
        [&b"Host"[..], b"X-Empty", b"X-Tab", b"x-dup", b"X-Dup"]
    );
    assert_eq!(h.target.get(input), b"/");
    assert_eq!(h.method_span.get(input), b"GET");
}

#[test]
fn pipelined_spans_are_absolute_and_fields_append() {
    pipelined_spans(
        b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n\
        POST /two?q HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc\
        GET /three HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n",
    );
    // A head read as HTTP/1.1 from a copy (RFC 9110 §2.5) gets spans into `buf` too.
    pipelined_spans(
        b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n\
        POST /two?q HTTP/1.2\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc\
        GET /three HTTP/1.7\r\nHost: c\r\nConnection: close\r\n\r\n",
    );
}

fn pipelined_spans(buf: &[u8]) {
    // (method, path, body length, host)
    type Row = (&'static [u8], &'static [u8], usize, &'static [u8]);
    let want: &[Row] = &[
        (b"GET", b"/one", 0, b"a"),
        (b"POST", b"/two", 3, b"b"),
        (b"GET", b"/three", 0, b"c"),
    ];
    let mut fields = Vec::new();
    let mut at = 0;
    let mut prev_end = 0;
    for &(method, path, body, host) in want {
        let h = parse_head(buf, at, &LIMITS, &mut fields).unwrap().unwrap();
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.method_span.get(buf), method);
        assert_eq!(h.path.get(buf), path);
        assert_eq!(h.query.map(|q| q.get(buf)), (body > 0).then_some(&b"q"[..]));
        assert!(h.target.get(buf).starts_with(path));
        assert_eq!(h.fields.start, prev_end, "appended, not cleared");
        prev_end = h.fields.end;
        let mine = &fields[h.fields.start as usize..h.fields.end as usize];
        assert_eq!(find_field(buf, mine, "host"), Some(host));
        at += h.len as usize + body;
    }
    assert_eq!(at, buf.len());
    assert_eq!(parse_head(buf, at, &LIMITS, &mut fields), Ok(None));
    assert_eq!(parse_head(buf, at + 10, &LIMITS, &mut fields), Ok(None));
}

#[test]
fn list_and_trim_helpers() {
    let table: &[(&[u8], &[&[u8]])] = &[
        (b"", &[]),
        (b" , ,", &[]),
        (b"a", &[b"a"]),
        (b" a ,\tb\t, c", &[b"a", b"b", b"c"]),
        (b"a b,c", &[b"a b", b"c"]),
    ];
    for &(input, want) in table {
        let got: Vec<&[u8]> = list(input).collect();
        assert_eq!(got, want, "{input:?}");
    }
    let cl: &[(&[u8], Option<u64>)] = &[
        (b"0", Some(0)),
        (b"18446744073709551615", Some(u64::MAX)),
        (b"18446744073709551616", None),
        (b"99999999999999999999", None),
        (b"1a", None),
        (b"", None),
    ];
    for &(input, want) in cl {
        assert_eq!(parse_content_length(input), want, "{input:?}");
    }
}

/// Mutated requests (bytes flipped, cut, duplicated, spliced) never panic the parser or
/// the chunked decoder, every span they return lies inside the buffer, and `HeadScan`
/// agrees with `parse_head` on where each head ends: a poor man's fuzzer with a fixed
/// seed, so a failure reproduces.
#[test]
fn mutated_input_never_panics_and_spans_stay_in_bounds() {
    use crate::http::decode::ChunkedDecoder;
    let seeds: &[&[u8]] = &[
        b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\n",
        b"\r\nGET http://h/p HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let limits = Limits {
        max_head_bytes: 512,
        max_headers: 8,
        max_uri_bytes: 64,
        max_body_bytes: 64,
    };
    let alphabet = b" \r\n\t:;,=/?%0aAfF-+\x00\x7f\xff";
    let (mut parsed, mut chunked) = (0, 0);
    for round in 0..100_000 {
        let mut buf = seeds[round % seeds.len()].to_vec();
        for _ in 0..1 + rand(4) {
            if buf.is_empty() {
                break;
            }
            let at = rand(buf.len());
            match rand(4) {
                0 => buf[at] = alphabet[rand(alphabet.len())],
                1 => buf.truncate(at),
                2 => {
                    let end = (at + rand(16)).min(buf.len());
                    let piece = buf[at..end].to_vec();
                    buf.splice(at..at, piece);
                }
                _ => buf.insert(at, alphabet[rand(alphabet.len())]),
            }
        }
        // Where HeadScan sees an end, parse_head never waits for more bytes: it accepts
        // a head of exactly that length or rejects it.
        if let Some(n) = HeadScan::new().scan(&buf) {
            match parse_head(&buf[..n], 0, &limits, &mut Vec::new()) {
                Ok(Some(h)) => assert_eq!(h.len as usize, n, "{buf:?}"),
                Ok(None) => panic!("HeadScan ended a head parse_head waits on: {buf:?}"),
                Err(_) => {}
            }
        }
        let mut fields = Vec::new();
        if let Ok(Some(head)) = parse_head(&buf, 0, &limits, &mut fields) {
            let spans = [head.method_span, head.target, head.path]
                .into_iter()
                .chain(head.query)
                .chain(fields.iter().flat_map(|(n, v)| [*n, *v]));
            for s in spans {
                assert!(s.start <= s.end && s.end as usize <= buf.len(), "{buf:?}");
            }
            assert!(head.len as usize <= buf.len());
            assert_eq!(
                HeadScan::new().scan(&buf),
                Some(head.len as usize),
                "{buf:?}"
            );
            parsed += 1;
            if head.framing == Framing::Chunked {
                chunked += 1;
                let mut out = Vec::new();
                let _ = ChunkedDecoder::new().decode(&buf[head.len as usize..], &mut out, 64);
            }
        }
    }
    // The mutations must leave enough valid heads for the span checks to mean something.
    assert!(
        parsed > 10_000 && chunked > 1_000,
        "{parsed} parsed, {chunked} chunked"
    );
}

#[test]
fn host_values_follow_uri_host_and_port() {
    // RFC 9110 §7.2, RFC 3986 §3.2.2-3.2.3: uri-host [ ":" port ].
    let good: &[&[u8]] = &[
        b"",
        b"a",
        b"example.com",
        b"example.com:",
        b"example.com:8080",
        b"127.0.0.1:80",
        b"[::1]",
        b"[::1]:443",
        b"[2001:db8::7]",
        b"[::ffff:192.0.2.1]:8",
        b"[v1.fe80::a+en1]",
        b"caf%C3%A9.example",
        b"a_b~c-d!$&'()*+,;=",
    ];
    for h in good {
        assert!(
            is_valid_host(h),
            "refused: {:?}",
            String::from_utf8_lossy(h)
        );
    }
    let bad: &[&[u8]] = &[
        b"a:abc",
        b"a:1:2",
        b"[::1",
        b"::1",
        b"a]b",
        b"a[b",
        b"%zz",
        b"%4",
        b"a%",
        b"example.com:80:",
        b"[::1]x",
        b"[::1]:8a",
        b"[]",
        b"[fe80::1%25eth0]",
        b"[1.2.3.4]",
        b"[v1.]",
        b"[v.x]",
        b"a b",
        b"a/b",
        b"u@h",
    ];
    for h in bad {
        assert!(
            !is_valid_host(h),
            "accepted: {:?}",
            String::from_utf8_lossy(h)
        );
    }
}

/// The loop parses an unfinished head at some reads (its first bytes, the end of the
/// request line, past a limit) and a whole head once: for the answer not to depend on how
/// the bytes were split, every prefix must be either incomplete (`Ok(None)`) or given the
/// whole head's verdict, the same error.
#[test]
fn every_prefix_is_incomplete_or_gets_the_whole_heads_verdict() {
    let method30 = "M".repeat(30);
    let target_at_limit = format!("/{}", "t".repeat(LIMITS.max_uri_bytes - 1));
    let long_target = format!("/{}", "t".repeat(200));
    let pad = "p".repeat(300);
    let big = format!("X-A: {pad}\r\nX-B: {pad}\r\nX-C: {pad}\r\nX-D: {pad}\r\n");
    let heads: Vec<String> = vec![
        format!("{method30} {target_at_limit} HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("\r\n{method30} {target_at_limit} HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("GET {long_target} HTTP/2.0\r\nHost: a\r\n\r\n"),
        format!("GET {long_target} HTTP/1.1\r\nBad Name: x\r\n\r\n"),
        format!("GET {long_target}\x01 HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: a\r\n{big}Bad Name: x\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: a\r\n{big}X-E : x\r\n\r\n"),
        format!("GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n{big}\r\n"),
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: a\r\nX-A b: c\r\n\r\n".into(),
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n".into(),
        "GET / HTTP/1.10\r\nHost: a\r\n\r\n".into(),
        // Eight bytes of another major version, then a byte that makes them no version
        // (the attack review of the request line's version look: 505 at the eighth byte,
        // 400 whole).
        "GET / HTTP/2.0x\r\nHost: a\r\n\r\n".into(),
        format!("GET {long_target} HTTP/2.00\r\nHost: a\r\n\r\n"),
        "GET / HTTP/2.0 \r\nHost: a\r\n\r\n".into(),
        "GET / HTTP/3.1/\r\nHost: a\r\n\r\n".into(),
        "GET / HTTP/0.9x\r\nHost: a\r\n\r\n".into(),
        "GET / HTTP/2.0\t\r\nHost: a\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n".into(),
        // What the loop now parses for as each field line ends (`conn::HeadRead`): one
        // line too many, obs-fold, a bare CR, a control byte.
        format!(
            "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
            "X-F: f\r\n".repeat(LIMITS.max_headers)
        ),
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n folded\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\rX-B: c\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n".into(),
    ];
    let mut failures = Vec::new();
    for head in &heads {
        let whole = parse(head.as_bytes()).map(|h| h.map(|h| h.len));
        for k in 1..head.len() {
            let part = parse(&head.as_bytes()[..k]).map(|h| h.map(|h| h.len));
            if part != Ok(None) && part != whole {
                failures.push(format!(
                    "{:?}: whole {whole:?}, first {k} bytes {part:?}",
                    &head[..head.len().min(60)]
                ));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
