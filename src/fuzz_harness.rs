//! The fuzz harnesses: one function per target in `fuzz/fuzz_targets/`, each taking the
//! fuzzer's bytes and panicking when an invariant breaks. They live in the crate (behind
//! the `fuzzing` feature, and in its own tests) so that the targets can reach the engine's
//! internals, and so that `cargo test` replays every file of `fuzz/corpus/` through them
//! on stable (the test at the bottom): the corpora are regression tests without nightly.
//! See docs/FUZZING.md.

use crate::error::Error;
use crate::http::Span;
use crate::http::decode::ChunkedDecoder;
use crate::http::parse::{Framing, Head, HeadScan, Limits, MAX_HEADERS_CAP, MAX_METHOD_BYTES};
use crate::http::{Method, parse::parse_head};

/// `head` target: the request-head parser on arbitrary bytes.
///
/// The first byte picks the limits, the second where parsing starts and how many fields
/// are already in the caller's list; the rest is the buffer. Checks: no panic; on an
/// error or "incomplete" nothing stays appended to the field list; "incomplete" only
/// within `max_head_bytes`; a parsed head lies inside the buffer, within every limit,
/// with every span inside the head; `HeadScan` finds the same end (and no end one byte
/// earlier); parsing again with the bytes after the head cut off, or changed, gives the
/// same head, and the head cut by one byte is not a complete head.
pub fn head(data: &[u8]) {
    let [a, b, buf @ ..] = data else { return };
    let limits = Limits {
        max_head_bytes: [16 * 1024, 64, 256, 4096][usize::from(a & 3)],
        max_headers: [100, 1, 3, MAX_HEADERS_CAP + 1][usize::from(a >> 2 & 3)],
        max_uri_bytes: [8 * 1024, 0, 1, 40][usize::from(a >> 4 & 3)],
        max_body_bytes: [1 << 20, 0, 10, u64::MAX][usize::from(a >> 6)],
    };
    let start = usize::from(b & 7);
    let junk = (Span { start: 1, end: 2 }, Span { start: 3, end: 4 });
    let mut fields = vec![junk; usize::from(b >> 3 & 3)];
    let before = fields.clone();
    let got = parse_head(buf, start, &limits, &mut fields);
    let h = match got {
        Err(e) => {
            assert_eq!(fields, before, "{e:?}: nothing stays appended on error");
            assert!((400..=599).contains(&e.status()));
            return;
        }
        Ok(None) => {
            assert_eq!(fields, before, "nothing appended while incomplete");
            assert!(
                buf.len().saturating_sub(start) <= limits.max_head_bytes,
                "incomplete past max_head_bytes"
            );
            return;
        }
        Ok(Some(h)) => h,
    };
    assert!(start <= buf.len());
    let len = h.len as usize;
    let end = start + len;
    assert!(len > 0 && end <= buf.len(), "head of {len} bytes");
    assert!(len <= limits.max_head_bytes);
    assert_eq!(
        fields[..before.len()],
        before[..],
        "earlier fields untouched"
    );
    let (lo, hi) = (h.fields.start as usize, h.fields.end as usize);
    assert_eq!((lo, hi), (before.len(), fields.len()));
    assert!(hi - lo <= limits.max_headers.min(MAX_HEADERS_CAP));
    let inside = |s: Span| {
        assert!(
            start as u32 <= s.start && s.start <= s.end && s.end as usize <= end,
            "{s:?} outside the head {start}..{end}"
        );
        s.get(buf)
    };
    let method = inside(h.method_span);
    assert!(!method.is_empty() && method.len() <= MAX_METHOD_BYTES);
    assert_eq!(Method::from_bytes(method), h.method);
    let target = inside(h.target);
    assert!(!target.is_empty() && target.len() <= limits.max_uri_bytes);
    assert!(target.iter().all(|c| (0x21..=0x7e).contains(c)));
    let path = inside(h.path);
    assert!(h.target.start <= h.path.start && h.path.end <= h.target.end);
    if let Some(q) = h.query {
        inside(q);
        assert!(h.path.end < q.start && q.end == h.target.end, "{path:?}");
        assert_eq!(buf[q.start as usize - 1], b'?');
    }
    for &(n, v) in &fields[lo..hi] {
        let name = inside(n);
        assert!(!name.is_empty());
        let value = inside(v);
        let ows = |c: Option<&u8>| matches!(c, Some(b' ' | b'\t'));
        assert!(!ows(value.first()) && !ows(value.last()), "OWS trimmed");
    }
    if let Framing::Length(n) = h.framing {
        assert!(n <= limits.max_body_bytes);
    }
    // The resumable scan agrees on where the head ends (see `HeadScan`).
    assert_eq!(HeadScan::new().scan(&buf[start..]), Some(len));
    assert_eq!(HeadScan::new().scan(&buf[start..end - 1]), None);
    let mut s = HeadScan::new();
    assert_eq!(s.scan(&buf[start..end - 1]), None);
    assert_eq!(s.scan(&buf[start..end]), Some(len), "resumed");
    // What follows the head does not change it.
    let again = |bytes: &[u8]| -> Result<Option<Head>, Error> {
        let mut f = Vec::new();
        let r = parse_head(bytes, start, &limits, &mut f);
        if let Ok(Some(g)) = &r {
            assert_eq!(f[..], fields[lo..hi]);
            assert_eq!(g.fields, 0..(hi - lo) as u32);
        }
        r.map(|o| {
            o.map(|g| Head {
                fields: h.fields.clone(),
                ..g
            })
        })
    };
    assert_eq!(
        again(&buf[..end]),
        Ok(Some(h.clone())),
        "cut after the head"
    );
    let mut more = buf[..end].to_vec();
    more.extend_from_slice(b"\r\nX");
    assert_eq!(
        again(&more),
        Ok(Some(h.clone())),
        "other bytes after the head"
    );
    assert!(
        !matches!(again(&buf[..end - 1]), Ok(Some(_))),
        "a complete head one byte short"
    );
}

/// `chunked` target: the chunked decoder fed the same bytes whole, one byte at a time and
/// split at arbitrary points must agree on everything — the decoded bytes, where the body
/// ends, and the error.
///
/// The first byte picks the body limit, the second how many split points follow (one
/// byte each: the size of the next piece); the rest is the body. Checks also: the decoded
/// length is the output's, within the limit; once done nothing more is consumed.
pub fn chunked(data: &[u8]) {
    let [a, b, rest @ ..] = data else { return };
    let max = [u64::MAX, 0, 5, 1 << 20, 100, 16, 4096, 1][usize::from(a & 7)];
    let k = usize::from(b & 15).min(rest.len());
    let (sizes, input) = rest.split_at(k);
    let whole = decode_in_pieces(input, max, &[usize::MAX]);
    let byte_by_byte = decode_in_pieces(input, max, &[1]);
    assert_eq!(whole, byte_by_byte, "whole vs one byte at a time");
    if !sizes.is_empty() {
        let mut sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();
        if sizes.iter().all(|&s| s == 0) {
            sizes.push(1); // some piece must bring a byte
        }
        let split = decode_in_pieces(input, max, &sizes);
        assert_eq!(whole, split, "whole vs split at {sizes:?}");
    }
    // In place (the data moved down over the framing it consumed): the same verdict, at
    // the same byte, and the same data.
    let mut buf = input.to_vec();
    match ChunkedDecoder::new().decode_in_place(&mut buf, 0, 0, max) {
        Ok((read, write, done)) => {
            assert_eq!(whole.1, Ok((read, done)), "in place vs decode");
            assert_eq!(buf[..write], whole.0[..], "in place: the data");
            assert_eq!(buf[read..], input[read..], "in place: the bytes after it");
        }
        Err(e) => assert_eq!(whole.1, Err(e), "in place vs decode"),
    }
    let (out, res) = whole;
    assert!(out.len() as u64 <= max);
    if let Ok((used, _)) = res {
        assert!(used <= input.len());
    }
}

/// Decodes `input` arriving in pieces of the given sizes (cycled; 0 means the call sees
/// no new byte; one at least must not be 0), each call getting the unconsumed rest of
/// what has arrived. Returns the output and (bytes consumed, done) or the error.
fn decode_in_pieces(
    input: &[u8],
    max: u64,
    sizes: &[usize],
) -> (Vec<u8>, Result<(usize, bool), Error>) {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let (mut pos, mut arrived) = (0, 0usize);
    for &size in sizes.iter().cycle() {
        arrived = arrived.saturating_add(size).min(input.len());
        let r = d.decode(&input[pos..arrived], &mut out, max);
        let (n, done) = match r {
            Ok(x) => x,
            Err(e) => return (out, Err(e)),
        };
        pos += n;
        assert!(pos <= arrived);
        assert_eq!(d.decoded_len(), out.len() as u64);
        assert_eq!(d.is_done(), done);
        if done {
            // Done for good: nothing more is consumed.
            assert_eq!(d.decode(&input[pos..], &mut out, max), Ok((0, true)));
            return (out, Ok((pos, true)));
        }
        assert_eq!(
            pos, arrived,
            "not done, so everything that arrived is consumed"
        );
        if arrived == input.len() {
            break;
        }
    }
    (out, Ok((pos, false)))
}

/// `conn` target: one connection driven through the `Transport` seam by a script decoded
/// from the input (reads of any size and bytes, `WouldBlock`, EOF, errors, write room,
/// workers, completions, time). See `conn/fuzz.rs` for the script and the checks.
pub fn conn(data: &[u8]) {
    crate::conn::fuzz::run_script(data);
}

/// `conn_split` target: the connection answers the same whether the client's bytes arrive
/// in one read or in reads of arbitrary sizes (a parser that disagrees with itself across
/// read boundaries is how requests get lost, doubled or smuggled). See
/// `conn/fuzz.rs::run_split`.
pub fn conn_split(data: &[u8]) {
    crate::conn::fuzz::run_split(data);
}

/// `ws` target: the WebSocket decoder (`ws/decode.rs`) on arbitrary bytes. One byte picks
/// the message limit and the role (a server's decoder requires masked frames, a client's
/// unmasked ones), one how many of the following bytes are piece sizes; the rest is what
/// the peer sent. Fed whole, one byte at a time and in the given pieces, the decoder must
/// give the same messages and the same error; no data message is over the limit, no control
/// payload over 125 bytes, and the bytes reported used never pass those given.
#[cfg(feature = "ws")]
pub fn ws(data: &[u8]) {
    use crate::ws::{Message, Role};
    let [a, b, rest @ ..] = data else { return };
    let max = [0usize, 1, 16, 125, 126, 1024, 65_536, 1 << 20][usize::from(a & 7)];
    let role = if a & 8 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let k = usize::from(b & 15).min(rest.len());
    let (sizes, input) = rest.split_at(k);
    let whole = ws_in_pieces(input, role, max, &[usize::MAX]);
    let byte_by_byte = ws_in_pieces(input, role, max, &[1]);
    assert_eq!(whole, byte_by_byte, "whole vs one byte at a time");
    if !sizes.is_empty() {
        let mut sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();
        if sizes.iter().all(|&s| s == 0) {
            sizes.push(1);
        }
        let split = ws_in_pieces(input, role, max, &sizes);
        assert_eq!(whole, split, "whole vs split at {sizes:?}");
    }
    for m in &whole.0 {
        match m {
            Message::Text(t) => assert!(t.len() <= max, "a text message over the limit"),
            Message::Binary(b) => assert!(b.len() <= max, "a binary message over the limit"),
            Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
            Message::Close(Some((_, reason))) => assert!(reason.len() <= 123),
            Message::Close(None) => {}
        }
    }
}

/// What the decoder made of `input` arriving in pieces of the given sizes (cycled).
#[cfg(feature = "ws")]
fn ws_in_pieces(
    input: &[u8],
    role: crate::ws::Role,
    max: usize,
    sizes: &[usize],
) -> (Vec<crate::ws::Message>, Option<crate::ws::ProtocolError>) {
    let mut d = crate::ws::Decoder::new(role, max);
    let mut messages = Vec::new();
    let (mut pos, mut arrived) = (0, 0usize);
    for &size in sizes.iter().cycle() {
        arrived = arrived.saturating_add(size).min(input.len());
        // Every message the bytes so far complete, then the next piece.
        loop {
            let (used, step) = d.decode(&input[pos..arrived]);
            assert!(pos + used <= arrived, "used more than it was given");
            pos += used;
            match step {
                Some(Ok(m)) => messages.push(m),
                Some(Err(e)) => return (messages, Some(e)),
                None => break,
            }
        }
        if arrived == input.len() {
            return (messages, None);
        }
    }
    unreachable!("the sizes cycle until the input has arrived")
}

/// `multipart` target: the `multipart/form-data` parser (`multipart/parser.rs`) fed the
/// same body whole, a byte at a time and in pieces of the fuzzer's sizes; every run must
/// match a whole-buffer reference reading of the body (the same parts, data and verdict),
/// within every limit, with nothing delivered after an error or the close delimiter, and
/// `parse_bytes` must read the same form. See `multipart/fuzz.rs` for the input format.
#[cfg(feature = "multipart")]
pub fn multipart(data: &[u8]) {
    crate::multipart::fuzz::run(data);
}

/// `client` target: an upstream's response bytes through the client's sans-I/O core
/// (`client/conn.rs`, which the blocking client and the gateway both read answers with),
/// fed whole, a byte at a time and in arbitrary pieces; every verdict is checked against
/// RFC 9112 §6.3 framing, the limits and a plain reference reading of the bytes. See
/// `client/fuzz.rs`.
#[cfg(feature = "client")]
pub fn client(data: &[u8]) {
    crate::client::fuzz::run(data);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every file of `fuzz/corpus/<target>/` through its harness: the seeds and whatever
    /// the fuzzer kept (the minimised corpus) are regression tests on stable.
    #[test]
    fn the_fuzz_corpora_replay_clean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        type Harness = fn(&[u8]);
        #[allow(unused_mut)] // without `ws` and `multipart`
        let mut targets: Vec<(&str, Harness)> = vec![
            ("head", super::head),
            ("chunked", super::chunked),
            ("conn", super::conn),
            ("conn_split", super::conn_split),
        ];
        #[cfg(feature = "ws")]
        targets.push(("ws", super::ws));
        #[cfg(feature = "multipart")]
        targets.push(("multipart", super::multipart));
        #[cfg(feature = "client")]
        targets.push(("client", super::client));
        for (name, harness) in targets {
            let Ok(dir) = std::fs::read_dir(root.join(name)) else {
                continue; // a packaged crate has no fuzz/
            };
            let mut files: Vec<_> = dir.map(|e| e.unwrap().path()).collect();
            files.sort();
            for f in files {
                let data = std::fs::read(&f).unwrap();
                let r = std::panic::catch_unwind(|| harness(&data));
                assert!(r.is_ok(), "{name}: {} fails", f.display());
            }
        }
    }
}
