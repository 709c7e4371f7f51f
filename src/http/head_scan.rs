//! Head-end scanning: this stage owns finding where a request head ends in a buffer that
//! grows a few bytes at a time, resuming where the previous look stopped, so that the
//! caller runs `parse_head` (and httparse) once per head instead of once per read.
//! It never parses or validates the head (that stays `parse_head`'s job), and never
//! touches a socket, a clock or a thread. Re-exported as `http::parse::HeadScan`.

/// Resumable search for the empty line that ends a request head (RFC 9112 §2.1:
/// `HTTP-message = start-line CRLF *( field-line CRLF ) CRLF [ message-body ]`).
///
/// Line terminators are CRLF or a bare LF (RFC 9112 §2.2: "a recipient MAY recognize a
/// single LF as a line terminator and ignore any preceding CR"), mixed in any way, as
/// httparse accepts them: the head ends at the first LF that is followed by `LF` or by
/// `CR LF`, counting only LFs after the request line has begun. Empty lines before the
/// request line (any run of CR and LF) are skipped, not taken as the end (RFC 9112 §2.2:
/// a server "SHOULD ignore at least one empty line (CRLF) received prior to the
/// request-line").
///
/// For every head `parse_head` accepts, [`HeadScan::scan`] returns `Some(n)` with `n`
/// equal to [`Head::len`](super::parse::Head::len), at the same read at which
/// `parse_head` first stops returning `Ok(None)`.
///
/// Use: keep one `HeadScan` per request being read, call [`HeadScan::scan`] after each
/// read, and run `parse_head` once it returns `Some` (see the test
/// `three_reads_one_parse` below; not a doc example, as `http` may leave the public API).
///
/// # Warning
///
/// * `buf` must start at the request's first byte (the `&buf[start..]` that `parse_head`
///   parses from `start`), and between calls it may only grow at the end: the bytes
///   already scanned must not change or move. For the next request, or after the buffer
///   is compacted, start over with [`HeadScan::new`].
/// * `None` only says that the empty line has not arrived; nothing is validated and no
///   limit is applied. The caller still owes `parse_head`'s early verdicts on an
///   unfinished head: call it at least once the unfinished head exceeds
///   `max_head_bytes` (it then answers 501 for an overlong method, 414 for an overlong
///   request line, 431 otherwise, or 400 if the start is malformed); calling it on the
///   first bytes of each request also rejects a garbage start at once.
/// * `Some(n)` says where the head would end, not that it is valid: `parse_head` still
///   decides (a malformed head may well contain an empty line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadScan {
    /// Where the next scan resumes. Before the request line: the first byte not yet
    /// skipped. After it: the first byte not yet examined, or the LF whose next one or
    /// two bytes had not arrived yet (so a terminator split across reads, such as
    /// `\r\n` | `\r\n`, is found without re-reading the rest of the head).
    pos: usize,
    /// True once a byte other than CR or LF has been seen: from then on an empty line
    /// ends the head; before, it is one of the empty lines skipped ahead of the request.
    in_head: bool,
}

impl HeadScan {
    /// A scanner positioned at the first byte of a request.
    pub const fn new() -> Self {
        HeadScan {
            pos: 0,
            in_head: false,
        }
    }

    /// Scans the bytes of `buf` not seen by earlier calls; returns the index just past
    /// the empty line that ends the head, or `None` if it has not arrived yet. Once it
    /// returns `Some(n)`, later calls with the same (or a longer) `buf` return `Some(n)`.
    /// Work per call is the number of new bytes, plus at most two re-read.
    pub fn scan(&mut self, buf: &[u8]) -> Option<usize> {
        let mut i = self.pos.min(buf.len());
        if !self.in_head {
            // RFC 9112 §2.2: empty lines before the request line are skipped.
            while i < buf.len() && matches!(buf[i], b'\r' | b'\n') {
                i += 1;
            }
            self.pos = i;
            if i == buf.len() {
                return None;
            }
            self.in_head = true;
        }
        loop {
            let Some(at) = buf[i..].iter().position(|&c| c == b'\n') else {
                // No LF in buf[i..]: a terminator can only begin at a later byte.
                self.pos = buf.len();
                return None;
            };
            let lf = i + at;
            // This LF ends a line; the line after it is empty if it is LF or CR LF.
            match &buf[lf + 1..] {
                [b'\n', ..] => {
                    self.pos = lf;
                    return Some(lf + 2);
                }
                [b'\r', b'\n', ..] => {
                    self.pos = lf;
                    return Some(lf + 3);
                }
                // Not all there yet: come back to this LF when more bytes arrive.
                [] | [b'\r'] => {
                    self.pos = lf;
                    return None;
                }
                // The next line has content (or a bare CR, for httparse to reject).
                _ => i = lf + 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, bytes, index just past the head's empty line, if it is there).
    const ROWS: &[(&str, &[u8], Option<usize>)] = &[
        ("crlf", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Some(27)),
        ("bare lf", b"GET / HTTP/1.1\nHost: a\n\n", Some(24)),
        ("lf then crlf", b"GET / HTTP/1.1\nHost: a\n\r\n", Some(25)),
        ("crlf then lf", b"GET / HTTP/1.1\r\nHost: a\r\n\n", Some(26)),
        ("no fields crlf", b"GET / HTTP/1.0\r\n\r\n", Some(18)),
        ("no fields lf", b"GET / HTTP/1.0\n\n", Some(16)),
        (
            "body follows",
            b"POST / HTTP/1.1\r\nA: 1\r\n\r\nx\r\n\r\n",
            Some(25),
        ),
        (
            "next head follows",
            b"GET / HTTP/1.0\n\nGET / HTTP/1.0\n\n",
            Some(16),
        ),
        ("leading crlfs", b"\r\n\r\nGET / HTTP/1.0\r\n\r\n", Some(22)),
        ("leading mixed", b"\n\r\n\nGET / HTTP/1.0\n\n", Some(20)),
        ("only empty lines", b"\r\n\r\n\n\n\r\n", None),
        ("empty", b"", None),
        ("request line only", b"GET / HTTP/1.1\r\n", None),
        ("fields, no end", b"GET / HTTP/1.1\r\nHost: a\r\n", None),
        ("end cut after CR", b"GET / HTTP/1.1\r\nHost: a\r\n\r", None),
        (
            "CR CR LF is no empty line",
            b"GET / HTTP/1.1\n\r\r\nA: 1\n\n",
            Some(24),
        ),
        ("bare CR, no end", b"GET / HTTP/1.1\n\r\r\n", None),
        (
            "space line is no empty line",
            b"GET / HTTP/1.1\r\n \r\nA: 1\r\n\r\n",
            Some(27),
        ),
        ("lone CR first", b"\rGET / HTTP/1.0\r\n\r\n", Some(19)),
    ];

    #[test]
    fn finds_the_end_in_one_call() {
        for &(name, buf, want) in ROWS {
            assert_eq!(HeadScan::new().scan(buf), want, "{name}");
        }
    }

    /// Every two-way split: the first call sees `buf[..k]`, the second all of `buf`.
    #[test]
    fn every_split_point_agrees() {
        for &(name, buf, want) in ROWS {
            for k in 0..=buf.len() {
                let mut s = HeadScan::new();
                let first = s.scan(&buf[..k]);
                let early = want.filter(|&n| n <= k);
                assert_eq!(first, early, "{name} split {k}: first call");
                assert_eq!(s.scan(buf), want, "{name} split {k}: second call");
                assert_eq!(s.scan(buf), want, "{name} split {k}: repeated");
            }
        }
    }

    /// One byte at a time: `None` until the empty line is complete, then `Some` for good.
    #[test]
    fn byte_by_byte() {
        for &(name, buf, want) in ROWS {
            let mut s = HeadScan::new();
            for k in 0..=buf.len() {
                let early = want.filter(|&n| n <= k);
                assert_eq!(s.scan(&buf[..k]), early, "{name} at {k}");
            }
        }
    }

    /// The intended use: httparse runs once, on the read that completes the head.
    #[test]
    fn three_reads_one_parse() {
        use crate::http::parse::{Limits, parse_head};
        let (mut buf, mut fields, mut scan) = (Vec::new(), Vec::new(), HeadScan::new());
        let reads: [&[u8]; 3] = [b"GET / HTTP/1.1\r\nHo", b"st: a\r\n\r", b"\nnext"];
        let mut ends = Vec::new();
        for read in reads {
            buf.extend_from_slice(read);
            if let Some(end) = scan.scan(&buf) {
                let head = parse_head(&buf, 0, &Limits::default(), &mut fields);
                assert_eq!(head.unwrap().unwrap().len as usize, end);
                ends.push(end);
            }
        }
        assert_eq!(ends, [27]);
    }

    /// The scan resumes instead of starting over: a long head fed in pieces is read
    /// about once, whatever the piece size.
    #[test]
    fn resumes_where_it_stopped() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..100 {
            head.extend_from_slice(b"X-Field: some value\r\n");
        }
        head.extend_from_slice(b"\r\n");
        for piece in [1, 2, 3, 5, 64] {
            let mut s = HeadScan::new();
            let mut got = None;
            for end in (piece..head.len() + piece).step_by(piece) {
                let end = end.min(head.len());
                got = s.scan(&head[..end]);
                assert!(
                    s.pos + 2 >= end || got.is_some(),
                    "piece {piece}: pos {}",
                    s.pos
                );
            }
            assert_eq!(got, Some(head.len()), "piece {piece}");
        }
    }
}
