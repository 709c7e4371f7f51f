//! Response encoding: this stage owns the bytes of every response head and chunk the
//! server writes, always as HTTP/1.1 (RFC 9112 §4), with framing owned by the engine —
//! and, in the client role (`client/`), the request heads it sends (RFC 9112 §3).
//! It never touches a socket, a clock or a thread (the date is handed in), and never
//! lets a caller-supplied header, method or target split the message.

use std::borrow::Cow;

use super::parse::is_tchar;

/// How the response body is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No Content-Length or Transfer-Encoding at all (1xx, 204, 304 and HEAD-like cases;
    /// RFC 9110 §8.6, §15).
    None,
    /// `Content-Length: N` (RFC 9110 §8.6).
    Length(u64),
    /// `Transfer-Encoding: chunked` (RFC 9112 §7.1).
    Chunked,
}

/// The Connection field the server adds (RFC 9112 §9.3, §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionField {
    /// No Connection field.
    Omit,
    /// `Connection: keep-alive` (for HTTP/1.0 clients that asked for it).
    KeepAlive,
    /// `Connection: close`: the server closes after this response (RFC 9112 §9.6).
    Close,
    /// `Connection: Upgrade`: the connection switches protocols after this response
    /// (RFC 9110 §7.8).
    Upgrade,
}

/// The "100 Continue" interim response (RFC 9110 §15.2.1).
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

macro_rules! statuses {
    ($($code:literal => $reason:literal,)*) => {
        /// The reason phrase of a registered status code (RFC 9110 §15), `"Unknown"`
        /// otherwise.
        pub fn reason(status: u16) -> &'static str {
            match status {
                $($code => $reason,)*
                _ => "Unknown",
            }
        }

        /// Pre-encoded status lines for the registered codes.
        fn known_status_line(status: u16) -> Option<&'static [u8]> {
            match status {
                $($code => Some(concat!("HTTP/1.1 ", $code, " ", $reason, "\r\n").as_bytes()),)*
                _ => None,
            }
        }

        #[cfg(test)]
        const KNOWN: &[u16] = &[$($code),*];
    };
}

// The IANA HTTP Status Code Registry, 100–511 (RFC 9110 §15 and the RFCs it cites).
statuses! {
    100 => "Continue",
    101 => "Switching Protocols",
    102 => "Processing",
    103 => "Early Hints",
    200 => "OK",
    201 => "Created",
    202 => "Accepted",
    203 => "Non-Authoritative Information",
    204 => "No Content",
    205 => "Reset Content",
    206 => "Partial Content",
    207 => "Multi-Status",
    208 => "Already Reported",
    226 => "IM Used",
    300 => "Multiple Choices",
    301 => "Moved Permanently",
    302 => "Found",
    303 => "See Other",
    304 => "Not Modified",
    305 => "Use Proxy",
    307 => "Temporary Redirect",
    308 => "Permanent Redirect",
    400 => "Bad Request",
    401 => "Unauthorized",
    402 => "Payment Required",
    403 => "Forbidden",
    404 => "Not Found",
    405 => "Method Not Allowed",
    406 => "Not Acceptable",
    407 => "Proxy Authentication Required",
    408 => "Request Timeout",
    409 => "Conflict",
    410 => "Gone",
    411 => "Length Required",
    412 => "Precondition Failed",
    413 => "Content Too Large",
    414 => "URI Too Long",
    415 => "Unsupported Media Type",
    416 => "Range Not Satisfiable",
    417 => "Expectation Failed",
    421 => "Misdirected Request",
    422 => "Unprocessable Content",
    423 => "Locked",
    424 => "Failed Dependency",
    425 => "Too Early",
    426 => "Upgrade Required",
    428 => "Precondition Required",
    429 => "Too Many Requests",
    431 => "Request Header Fields Too Large",
    451 => "Unavailable For Legal Reasons",
    500 => "Internal Server Error",
    501 => "Not Implemented",
    502 => "Bad Gateway",
    503 => "Service Unavailable",
    504 => "Gateway Timeout",
    505 => "HTTP Version Not Supported",
    506 => "Variant Also Negotiates",
    507 => "Insufficient Storage",
    508 => "Loop Detected",
    510 => "Not Extended",
    511 => "Network Authentication Required",
}

/// The status line `"HTTP/1.1 NNN Reason\r\n"`: a static slice for registered codes,
/// `"HTTP/1.1 NNN Unknown\r\n"` (allocated) for other codes in 100..=999. A code outside
/// that range cannot be a `status-code = 3DIGIT` (RFC 9112 §4) and becomes 500.
pub fn status_line(status: u16) -> Cow<'static, [u8]> {
    if let Some(line) = known_status_line(status) {
        return Cow::Borrowed(line);
    }
    if !(100..=999).contains(&status) {
        return Cow::Borrowed(b"HTTP/1.1 500 Internal Server Error\r\n");
    }
    let mut line = Vec::with_capacity(22);
    line.extend_from_slice(b"HTTP/1.1 ");
    write_decimal(&mut line, u64::from(status));
    line.extend_from_slice(b" Unknown\r\n");
    Cow::Owned(line)
}

/// True when a response with this status may carry content: false for 1xx, 204 and 304
/// (RFC 9110 §6.4.1: "All 1xx (Informational), 204 (No Content), and 304 (Not Modified)
/// responses do not include content").
pub fn status_has_body(status: u16) -> bool {
    !((100..200).contains(&status) || status == 204 || status == 304)
}

/// Appends a complete response head: status line, `Date: <date>` (the 29-byte
/// IMF-fixdate), the user headers in order, the framing field, the Connection field and
/// the empty line.
///
/// User headers named Content-Length, Transfer-Encoding, Connection or Date (any case)
/// are skipped: the engine owns framing and the date. So is, without panicking, any
/// header whose name is not a token or whose value contains CR, LF or NUL (response
/// splitting guard, RFC 9110 §5.5: "Field values containing CR, LF, or NUL characters
/// are invalid and dangerous"). [`BodyFraming::None`] writes no framing field, even for
/// a 200. For 1xx and 204 no framing field is ever written (RFC 9110 §8.6: "A server
/// MUST NOT send a Content-Length header field in any response with a status code of 1xx
/// (Informational) or 204 (No Content)"; RFC 9112 §6.1 says the same of
/// Transfer-Encoding).
pub fn write_head<'h>(
    out: &mut Vec<u8>,
    status: u16,
    date: &[u8],
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    framing: BodyFraming,
    connection: ConnectionField,
) {
    debug_assert_eq!(date.len(), 29, "date must be an IMF-fixdate");
    out.reserve(128);
    out.extend_from_slice(&status_line(status));
    // RFC 9110 §6.6.1: "An origin server with a clock [...] MUST generate a Date header
    // field in all 2xx (Successful), 3xx (Redirection), and 4xx (Client Error) responses".
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if engine_owned(name.as_bytes()) || !valid_field(name.as_bytes(), value) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    let forbidden = (100..200).contains(&status) || status == 204;
    match framing {
        _ if forbidden => {}
        BodyFraming::None => {}
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            write_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    match connection {
        ConnectionField::Omit => {}
        ConnectionField::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ConnectionField::Close => out.extend_from_slice(b"Connection: close\r\n"),
        ConnectionField::Upgrade => out.extend_from_slice(b"Connection: Upgrade\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Header names the engine writes itself.
#[inline]
fn engine_owned(name: &[u8]) -> bool {
    match name.len() {
        4 => name.eq_ignore_ascii_case(b"date"),
        10 => name.eq_ignore_ascii_case(b"connection"),
        14 => name.eq_ignore_ascii_case(b"content-length"),
        17 => name.eq_ignore_ascii_case(b"transfer-encoding"),
        _ => false,
    }
}

/// `field-name = token` (RFC 9110 §5.1) and a value without CR, LF or NUL (§5.5).
#[inline]
fn valid_field(name: &[u8], value: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&c| is_tchar(c)) && clean_value(value)
}

/// True when `value` holds no CR, LF or NUL: the bytes that would end the field (or the
/// head) early and let a value smuggle in fields of its own. Eight bytes at a time: 30
/// instructions a request fewer than the byte-wise look under callgrind, for one
/// `Content-Type` (docs/BENCHMARKS.md, fc5b1d2).
fn clean_value(value: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Some byte of `x` is 0 (exact: a borrow only reaches bytes above a zero byte).
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let mut words = value.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        if zero_in(x)
            || zero_in(x ^ (ONES * u64::from(b'\r')))
            || zero_in(x ^ (ONES * u64::from(b'\n')))
        {
            return false;
        }
    }
    !words
        .remainder()
        .iter()
        .any(|&c| matches!(c, b'\r' | b'\n' | 0))
}

/// Appends one chunk, `<hex len>\r\n<data>\r\n` (RFC 9112 §7.1); empty data writes
/// nothing (an empty chunk would be the last-chunk).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = data.len() as u64;
    while n > 0 {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
    }
    out.reserve(digits.len() - i + data.len() + 4);
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last-chunk and an empty trailer section, `0\r\n\r\n` (RFC 9112 §7.1).
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

/// Appends the decimal digits of `n` without allocating (itoa-style).
pub fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    // The digits are written left-aligned and all 20 bytes appended, then the tail cut:
    // a copy of constant length is two vector stores, where a copy of `len` digits is a
    // call to `memcpy`. No faster than a pipelined A/B could show, but 520 bytes smaller
    // than the loop `memcpy` needed (docs/BENCHMARKS.md, "Footprint").
    let len = {
        let (mut m, mut len) = (n, 1);
        while m >= 10 {
            m /= 10;
            len += 1;
        }
        len
    };
    let mut digits = [0u8; 20];
    for d in digits[..len].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let end = out.len() + len;
    out.extend_from_slice(&digits);
    out.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; 29] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    /// The word-at-a-time look agrees with the byte-wise one for every byte value at every
    /// place in values of every length up to 24 (three words and a remainder), over a
    /// background of bytes next to the ones it looks for (0x01, 0x0b, 0x0c, 0x0e, 0xff),
    /// where a borrow between bytes would show a wrong answer.
    #[test]
    fn a_value_is_clean_exactly_when_no_byte_is_cr_lf_or_nul() {
        let bytewise = |v: &[u8]| !v.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0));
        for fill in [b'a', 0x01, 0x0b, 0x0c, 0x0e, 0x09, 0xff, 0x80] {
            for len in 0..=24 {
                let base = vec![fill; len];
                assert_eq!(
                    clean_value(&base),
                    bytewise(&base),
                    "fill {fill:#x} len {len}"
                );
                for at in 0..len {
                    for b in 0..=255u8 {
                        let mut v = base.clone();
                        v[at] = b;
                        assert_eq!(
                            clean_value(&v),
                            bytewise(&v),
                            "{b:#x} at {at} of {len}, fill {fill:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn status_lines() {
        let table: &[(u16, &[u8], &str, bool)] = &[
            (100, b"HTTP/1.1 100 Continue\r\n", "Continue", true),
            (200, b"HTTP/1.1 200 OK\r\n", "OK", true),
            (204, b"HTTP/1.1 204 No Content\r\n", "No Content", true),
            (404, b"HTTP/1.1 404 Not Found\r\n", "Not Found", true),
            (
                413,
                b"HTTP/1.1 413 Content Too Large\r\n",
                "Content Too Large",
                true,
            ),
            (
                505,
                b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
                "HTTP Version Not Supported",
                true,
            ),
            (
                511,
                b"HTTP/1.1 511 Network Authentication Required\r\n",
                "Network Authentication Required",
                true,
            ),
            (299, b"HTTP/1.1 299 Unknown\r\n", "Unknown", false),
            (999, b"HTTP/1.1 999 Unknown\r\n", "Unknown", false),
            (
                99,
                b"HTTP/1.1 500 Internal Server Error\r\n",
                "Unknown",
                true,
            ),
            (
                1000,
                b"HTTP/1.1 500 Internal Server Error\r\n",
                "Unknown",
                true,
            ),
        ];
        for &(code, line, why, borrowed) in table {
            let got = status_line(code);
            assert_eq!(&*got, line, "{code}");
            assert_eq!(reason(code), why, "{code}");
            assert_eq!(matches!(got, Cow::Borrowed(_)), borrowed, "{code}");
        }
        for &code in KNOWN {
            let line = status_line(code);
            assert!(matches!(line, Cow::Borrowed(_)), "{code}");
            let want = format!("HTTP/1.1 {code} {}\r\n", reason(code));
            assert_eq!(&*line, want.as_bytes());
        }
        assert_eq!(
            &status_line(100)[..],
            &CONTINUE_100[..CONTINUE_100.len() - 2]
        );
    }

    #[test]
    fn has_body() {
        let table: &[(u16, bool)] = &[
            (100, false),
            (101, false),
            (199, false),
            (200, true),
            (204, false),
            (205, true),
            (304, false),
            (404, true),
            (500, true),
        ];
        for &(code, want) in table {
            assert_eq!(status_has_body(code), want, "{code}");
        }
    }

    fn head(status: u16, hs: &[(&str, &[u8])], f: BodyFraming, c: ConnectionField) -> String {
        let mut out = b"prefix|".to_vec();
        write_head(&mut out, status, DATE, hs.iter().copied(), f, c);
        // Lossy: a kept value may hold obs-text.
        let s = String::from_utf8_lossy(&out);
        s.strip_prefix("prefix|").expect("appends").to_owned()
    }

    #[test]
    fn heads() {
        use BodyFraming as B;
        use ConnectionField as C;
        let d = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";
        let ct: (&str, &[u8]) = ("Content-Type", b"text/plain");
        type Row<'a> = (&'a str, u16, &'a [(&'a str, &'a [u8])], B, C, String);
        let table: &[Row] = &[
            (
                "length",
                200,
                &[ct],
                B::Length(13),
                C::Omit,
                format!(
                    "HTTP/1.1 200 OK\r\n{d}Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                ),
            ),
            (
                "chunked close",
                200,
                &[],
                B::Chunked,
                C::Close,
                format!(
                    "HTTP/1.1 200 OK\r\n{d}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                ),
            ),
            (
                "none on 200",
                200,
                &[],
                B::None,
                C::KeepAlive,
                format!("HTTP/1.1 200 OK\r\n{d}Connection: keep-alive\r\n\r\n"),
            ),
            (
                "204 drops length",
                204,
                &[],
                B::Length(0),
                C::Omit,
                format!("HTTP/1.1 204 No Content\r\n{d}\r\n"),
            ),
            (
                "101 drops chunked",
                101,
                &[("Upgrade", b"x")],
                B::Chunked,
                C::Omit,
                format!("HTTP/1.1 101 Switching Protocols\r\n{d}Upgrade: x\r\n\r\n"),
            ),
            (
                "304 keeps length",
                304,
                &[],
                B::Length(7),
                C::Omit,
                format!("HTTP/1.1 304 Not Modified\r\n{d}Content-Length: 7\r\n\r\n"),
            ),
            (
                "case and order kept",
                200,
                &[
                    ("x-B", b"2"),
                    ("X-a", b""),
                    ("Set-Cookie", b"a=1"),
                    ("Set-Cookie", b"b=2"),
                ],
                B::Length(0),
                C::Omit,
                format!(
                    "HTTP/1.1 200 OK\r\n{d}x-B: 2\r\nX-a: \r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n"
                ),
            ),
            (
                "engine-owned skipped",
                200,
                &[
                    ("content-length", b"99"),
                    ("Transfer-Encoding", b"gzip"),
                    ("CONNECTION", b"upgrade"),
                    ("date", b"x"),
                    ct,
                ],
                B::Length(1),
                C::Close,
                format!(
                    "HTTP/1.1 200 OK\r\n{d}Content-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"
                ),
            ),
            (
                "splitting guard",
                200,
                &[
                    ("X-A", b"a\r\nSet-Cookie: evil=1"),
                    ("X-B", b"a\nb"),
                    ("X-C", b"a\0"),
                    ("X D", b"1"),
                    ("", b"1"),
                    ("X:E", b"1"),
                    ("X\r\nY", b"1"),
                    ("X-\u{e9}", b"1"),
                    ("X-Ok", b"v\t\x7fw\xff"),
                    ct,
                ],
                B::Length(0),
                C::Omit,
                format!(
                    "HTTP/1.1 200 OK\r\n{d}X-Ok: v\t\u{7f}w\u{fffd}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
                ),
            ),
            (
                "unknown status",
                299,
                &[],
                B::Length(0),
                C::Omit,
                format!("HTTP/1.1 299 Unknown\r\n{d}Content-Length: 0\r\n\r\n"),
            ),
        ];
        for (name, status, hs, f, c, want) in table {
            assert_eq!(head(*status, hs, *f, *c), *want, "{name}");
        }
    }

    #[test]
    fn chunks() {
        let table: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"a", b"1\r\na\r\n"),
            (&[b'x'; 15], b"f\r\nxxxxxxxxxxxxxxx\r\n"),
            (&[b'y'; 16], b"10\r\nyyyyyyyyyyyyyyyy\r\n"),
        ];
        for &(data, want) in table {
            let mut out = Vec::new();
            write_chunk(&mut out, data);
            assert_eq!(out, want);
        }
        let mut out = Vec::new();
        write_chunk(&mut out, &[0u8; 4096]);
        assert!(out.starts_with(b"1000\r\n"));
        write_last_chunk(&mut out);
        assert!(out.ends_with(b"\r\n0\r\n\r\n"));
        // What write_chunk produces decodes back.
        let mut dec = super::super::decode::ChunkedDecoder::new();
        let mut body = Vec::new();
        assert_eq!(dec.decode(&out, &mut body, u64::MAX), Ok((out.len(), true)));
        assert_eq!(body, vec![0u8; 4096]);
    }

    #[test]
    fn decimals() {
        let table: &[(u64, &str)] = &[
            (0, "0"),
            (7, "7"),
            (9, "9"),
            (10, "10"),
            (99, "99"),
            (100, "100"),
            (9_999_999_999_999_999_999, "9999999999999999999"),
            (10_000_000_000_000_000_000, "10000000000000000000"),
            (1234567890, "1234567890"),
            (u64::MAX, "18446744073709551615"),
        ];
        for &(n, want) in table {
            let mut out = b"x".to_vec();
            write_decimal(&mut out, n);
            assert_eq!(out, [b"x", want.as_bytes()].concat());
        }
    }
}
