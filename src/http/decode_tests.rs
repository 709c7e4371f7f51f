//! Table-driven tests for `ChunkedDecoder`: each row is raw chunked bytes and the outcome,
//! fed whole, byte by byte and at every split point.
//! They never touch a socket, a clock or a thread.

use super::*;
use crate::error::Error::*;

const MAX: u64 = 1 << 20;

/// Feeds `input` in pieces of `piece` bytes, each call getting the unconsumed rest of
/// what has "arrived". Ok(None): ran out of input before done.
fn run(input: &[u8], piece: usize, max: u64) -> Result<Option<(Vec<u8>, usize)>, Error> {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let (mut pos, mut arrived) = (0, 0);
    loop {
        arrived = (arrived + piece).min(input.len());
        let (n, done) = d.decode(&input[pos..arrived], &mut out, max)?;
        pos += n;
        assert!(pos <= arrived);
        if done {
            assert_eq!(d.decoded_len(), out.len() as u64);
            assert!(d.is_done());
            return Ok(Some((out, pos)));
        }
        assert_eq!(pos, arrived, "not done, so everything is consumed");
        if arrived == input.len() {
            return Ok(None);
        }
    }
}

/// (name, input, decoded body, bytes left after the body).
const VALID: &[(&str, &[u8], &[u8], usize)] = &[
    ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello", 0),
    (
        "two chunks",
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"hello world",
        0,
    ),
    ("empty body", b"0\r\n\r\n", b"", 0),
    (
        "upper hex",
        b"A\r\n0123456789\r\n0\r\n\r\n",
        b"0123456789",
        0,
    ),
    (
        "lower hex",
        b"a\r\n0123456789\r\n0\r\n\r\n",
        b"0123456789",
        0,
    ),
    ("leading zeros", b"005\r\nhello\r\n000\r\n\r\n", b"hello", 0),
    (
        "16 digits",
        b"0000000000000005\r\nhello\r\n0\r\n\r\n",
        b"hello",
        0,
    ),
    (
        "crlf in data",
        b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
        b"\r\n\r\n",
        0,
    ),
    (
        "next request",
        b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
        b"x",
        16,
    ),
    ("ext name", b"5;foo\r\nhello\r\n0;bar\r\n\r\n", b"hello", 0),
    ("ext value", b"5;a=b;c=d\r\nhello\r\n0\r\n\r\n", b"hello", 0),
    (
        "ext bws",
        b"5 ; a = b ;\tc\r\nhello\r\n0\r\n\r\n",
        b"hello",
        0,
    ),
    (
        "ext quoted",
        b"5;a=\"x;y \\\" z\"\r\nhello\r\n0\r\n\r\n",
        b"hello",
        0,
    ),
    (
        "bws before ext",
        b"5 ;a\r\nhello\r\n0\t;b=c\r\n\r\n",
        b"hello",
        0,
    ),
    (
        "bws around quoted ext",
        b"5 ; a = \"b c\" ; d\r\nhello\r\n0\r\n\r\n",
        b"hello",
        0,
    ),
    (
        "trailers",
        b"5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\nZ:\t1 2 \r\n\r\n",
        b"hello",
        0,
    ),
];

#[test]
fn valid_at_every_split() {
    for &(name, input, body, rest) in VALID {
        for piece in [input.len(), 1, 2, 3, 7] {
            let got = run(input, piece, MAX).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let (out, used) = got.unwrap_or_else(|| panic!("{name}: incomplete"));
            assert_eq!(out, body, "{name} piece {piece}");
            assert_eq!(used, input.len() - rest, "{name} piece {piece}");
        }
        // Every two-way split agrees with the one-shot decode.
        for k in 0..input.len() {
            let mut d = ChunkedDecoder::new();
            let mut out = Vec::new();
            let (n, done) = d.decode(&input[..k], &mut out, MAX).unwrap();
            assert!(!done || k >= input.len() - rest, "{name} split {k}");
            if !done {
                let (m, done) = d.decode(&input[n..], &mut out, MAX).unwrap();
                assert!(done, "{name} split {k}");
                assert_eq!(n + m, input.len() - rest, "{name} split {k}");
            }
            assert_eq!(out, body, "{name} split {k}");
        }
        // Every proper prefix of the body is incomplete, never an error.
        for k in 0..input.len() - rest {
            assert_eq!(run(&input[..k], 1, MAX), Ok(None), "{name} prefix {k}");
        }
    }
}

/// (name, input, max body, error).
const INVALID: &[(&str, &[u8], u64, Error)] = &[
    ("18 digits", b"ffffffffffffffffff\r\n", MAX, InvalidChunk),
    (
        "17 digits",
        b"00000000000000005\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    ("negative", b"-5\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
    ("plus", b"+5\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
    ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
    ("not hex", b"g\r\n", MAX, InvalidChunk),
    ("empty size", b"\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
    (
        "leading space",
        b" 5\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    ("size junk", b"5 x\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
    (
        "split size",
        b"5 5\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    ("CR without LF", b"5\rhello\r\n0\r\n\r\n", MAX, InvalidChunk),
    (
        "no CRLF after data",
        b"5\r\nhelloX\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "CR then junk after data",
        b"5\r\nhello\rX0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "data too long",
        b"3\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "empty ext name",
        b"5;\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "empty ext value",
        b"5;a=\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bad ext name",
        b"5;a@b\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "unterminated quote",
        b"5;a=\"x\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "NUL in ext",
        b"5;a=\"\0\"\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "trailer ws before colon",
        b"0\r\nX : y\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "trailer obs-fold",
        b"0\r\nX: y\r\n z\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    ("trailer no colon", b"0\r\nX\r\n\r\n", MAX, InvalidChunk),
    ("trailer NUL", b"0\r\nX: a\0\r\n\r\n", MAX, InvalidChunk),
    (
        "trailer bare CR",
        b"0\r\nX: a\rb\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    ("final CR junk", b"0\r\n\rX", MAX, InvalidChunk),
    // RFC 9112 §7.1.1: BWS only before ";" or "=" (or after them), never before CRLF.
    ("size space", b"5 \r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
    ("size tab", b"5\t\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
    (
        "size ws run",
        b"5 \t \r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "last-chunk space",
        b"5\r\nhello\r\n0 \r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "ws after ext name",
        b"5;a \r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "ws after ext value",
        b"5;a=b\t\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "ws after quoted ext",
        b"5;a=\"b\" \r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "ws then junk",
        b"5 x;a\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "quoted then junk",
        b"5;a=\"b\"c\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    // RFC 9112 §7.1: every chunked line ends with CRLF; no bare LF (CVE-2025-22871).
    (
        "bare LF after size",
        b"5\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bare LF after ext name",
        b"5;a\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bare LF after ext value",
        b"5;a=b\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bare LF after quoted ext",
        b"5;a=\"b\"\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bare LF after data",
        b"5\r\nhello\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bare LF after last-chunk",
        b"5\r\nhello\r\n0\n\r\n",
        MAX,
        InvalidChunk,
    ),
    ("bare LF final line", b"0\r\n\n", MAX, InvalidChunk),
    (
        "bare LF ends trailer",
        b"0\r\nX: y\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bare LF in trailer value",
        b"0\r\nX: a\nb\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bare LF after trailers",
        b"0\r\nX: y\r\n\n",
        MAX,
        InvalidChunk,
    ),
    ("bare LF everywhere", b"5\nhello\n0\n\n", MAX, InvalidChunk),
    (
        "trailer bare LF everywhere",
        b"0\nX: 1\n\n",
        MAX,
        InvalidChunk,
    ),
    // ... and no bare CR either (RFC 9112 §2.2).
    (
        "bare CR after size",
        b"5\r\rhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "CR CR LF after size",
        b"5\r\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bare CR in ext value",
        b"5;a=b\rc\r\nhello\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "CR CR LF after data",
        b"5\r\nhello\r\r\n0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bare CR after data",
        b"5\r\nhello\r0\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "bare CR in trailer name",
        b"0\r\nX\r: y\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    (
        "CR CR LF ends trailer",
        b"0\r\nX: y\r\r\n\r\n",
        MAX,
        InvalidChunk,
    ),
    ("CR CR LF final line", b"0\r\n\r\r\n", MAX, InvalidChunk),
    (
        "body cap one chunk",
        b"b\r\nhello world\r\n0\r\n\r\n",
        10,
        BodyTooLarge,
    ),
    (
        "body cap two chunks",
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        10,
        BodyTooLarge,
    ),
    ("body cap huge", b"ffffffffffffffff\r\n", MAX, BodyTooLarge),
    (
        "total overflow",
        b"1\r\nx\r\nffffffffffffffff\r\n",
        u64::MAX,
        BodyTooLarge,
    ),
];

#[test]
fn invalid_at_every_split() {
    for &(name, input, max, err) in INVALID {
        for piece in [input.len(), 1, 2, 5] {
            assert_eq!(run(input, piece, max), Err(err), "{name} piece {piece}");
        }
    }
}

#[test]
fn body_cap_is_inclusive() {
    let input = b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    let (out, _) = run(input, 1, 10).unwrap().unwrap();
    assert_eq!(out, b"helloworld");
    assert_eq!(run(input, 1, 9), Err(BodyTooLarge));
}

#[test]
fn trailer_and_extension_bounds() {
    let mut big_trailer = b"0\r\nX: ".to_vec();
    big_trailer.resize(MAX_TRAILER_BYTES, b'a');
    let mut ok = big_trailer.clone();
    ok.truncate(MAX_TRAILER_BYTES - 4 + 3); // trailer bytes exclude the "0\r\n"
    ok.extend_from_slice(b"\r\n\r\n");
    assert!(run(&ok, 4096, MAX).unwrap().is_some());
    big_trailer.extend_from_slice(b"aaaa\r\n\r\n");
    assert_eq!(run(&big_trailer, 4096, MAX), Err(InvalidChunk));

    let mut ext = b"1;a=".to_vec();
    ext.resize(MAX_CHUNK_EXT_BYTES + 8, b'b');
    ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    assert_eq!(run(&ext, 4096, MAX), Err(InvalidChunk));
}

#[test]
fn large_body_in_pieces() {
    let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let mut input = Vec::new();
    for c in data.chunks(1000) {
        input.extend_from_slice(format!("{:x};n=v\r\n", c.len()).as_bytes());
        input.extend_from_slice(c);
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(b"0\r\n\r\n");
    for piece in [1, 999, 1024, input.len()] {
        let (out, used) = run(&input, piece, MAX).unwrap().unwrap();
        assert_eq!(out, data);
        assert_eq!(used, input.len());
    }
}

#[test]
fn done_consumes_nothing_more() {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    assert_eq!(d.decode(b"0\r\n\r\nrest", &mut out, MAX), Ok((5, true)));
    assert_eq!(d.decode(b"rest", &mut out, MAX), Ok((0, true)));
    assert_eq!(d.decode(b"", &mut out, MAX), Ok((0, true)));
    assert_eq!(
        ChunkedDecoder::new().decode(b"", &mut out, MAX),
        Ok((0, false))
    );
}

/// `decode_in_place` on a buffer that holds `prefix` (a head: never touched), then
/// `input` arriving `piece` bytes at a time behind what was decoded so far (the raw
/// bytes consumed are dropped between pieces, as the connection does), then `suffix` (a
/// pipelined request: left as it came; none behind an incomplete `input`). Ok(None):
/// incomplete.
fn run_in_place(input: &[u8], piece: usize, max: u64) -> Result<Option<(Vec<u8>, usize)>, Error> {
    let prefix = b"POST / HTTP/1.1\r\n\r\n";
    let complete = ChunkedDecoder::new().decode(input, &mut Vec::new(), max);
    let suffix: &[u8] = if matches!(complete, Ok((_, true))) {
        b"GET /next HTTP/1.1\r\n\r\n"
    } else {
        b""
    };
    let mut d = ChunkedDecoder::new();
    let mut buf = prefix.to_vec();
    let (mut fed, mut raw) = (0, 0);
    let mut write = prefix.len();
    loop {
        let more = piece.min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + more]);
        fed += more;
        if fed == input.len() {
            buf.extend_from_slice(suffix);
        }
        let (read, w, done) = d.decode_in_place(&mut buf, write, write, max)?;
        assert!(w <= read);
        assert_eq!(&buf[..prefix.len()], prefix, "the head is never touched");
        assert_eq!(d.decoded_len(), (w - prefix.len()) as u64);
        raw += read - write;
        write = w;
        if done {
            assert!(d.is_done());
            // The bytes after the body are left as they came.
            let mut after = input[raw..fed].to_vec();
            if fed == input.len() {
                after.extend_from_slice(suffix);
            }
            assert_eq!(buf[read..], after[..], "the bytes after the body");
            return Ok(Some((buf[prefix.len()..w].to_vec(), raw)));
        }
        assert_eq!(read, buf.len(), "not done, so everything is consumed");
        // The consumed raw bytes are dropped: the next piece lands behind the data.
        buf.truncate(w);
        if fed == input.len() {
            return Ok(None);
        }
    }
}

#[test]
fn in_place_agrees_with_decode_at_every_split() {
    for &(name, input, body, rest) in VALID {
        for piece in [input.len(), 1, 2, 3, 7] {
            let got = run_in_place(input, piece, MAX).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let (out, used) = got.unwrap_or_else(|| panic!("{name}: incomplete"));
            assert_eq!(out, body, "{name} piece {piece}");
            assert_eq!(used, input.len() - rest, "{name} piece {piece}");
        }
        for k in 0..input.len() - rest {
            assert_eq!(
                run_in_place(&input[..k], 1, MAX),
                Ok(None),
                "{name} prefix {k}"
            );
        }
    }
    for &(name, input, max, err) in INVALID {
        for piece in [input.len(), 1, 2, 5] {
            assert_eq!(
                run_in_place(input, piece, max),
                Err(err),
                "{name} piece {piece}"
            );
        }
    }
}

#[test]
fn in_place_moves_large_bodies_in_any_pieces() {
    let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut input = Vec::new();
    for (i, c) in data.chunks(1 + 997).enumerate() {
        let c = &c[..c.len().min(1 + i * 13 % 4000)];
        input.extend_from_slice(format!("{:x};e=1\r\n", c.len()).as_bytes());
        input.extend_from_slice(c);
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(b"0\r\nX: y\r\n\r\n");
    let (want, used) = run(&input, input.len(), MAX).unwrap().unwrap();
    assert_eq!(used, input.len());
    for piece in [1, 999, 4096, input.len()] {
        assert_eq!(
            run_in_place(&input, piece, MAX).unwrap(),
            Some((want.clone(), input.len())),
            "piece {piece}"
        );
    }
}
