//! Table-driven tests for the `Decoder`: each row is wire bytes and what they decode to.
//! Every row is decoded three ways — in one piece, one byte at a time and in random
//! pieces — and must give the same messages and the same error.

use super::*;
use crate::ws::frame::{self, encode};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const MIB: usize = 1 << 20;

/// A frame with a raw first byte (FIN, RSV, opcode as given) and the shortest length.
fn raw(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&mut out, true, OpCode::Binary, payload, mask);
    out[0] = b0;
    out
}

/// A data or control frame, masked with `KEY` for `Role::Server`.
fn fr(role: Role, fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mask = (role == Role::Server).then_some(KEY);
    encode(&mut out, fin, op, payload, mask);
    out
}

/// A frame header with a length field written as given: `ext` 0, 2 or 8 bytes.
fn header(b0: u8, len: u64, ext: usize, mask: Option<[u8; 4]>) -> Vec<u8> {
    let m = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![b0];
    match ext {
        0 => out.push(m | len as u8),
        2 => {
            out.push(m | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

type Outcome = (Vec<Message>, Option<ProtocolError>);

/// Decodes `input` fed in pieces of the given sizes (the last piece takes the rest).
fn decode_in(role: Role, max: usize, input: &[u8], mut sizes: impl FnMut() -> usize) -> Outcome {
    let mut dec = Decoder::new(role, max);
    let mut msgs = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let end = (at + sizes().max(1)).min(input.len());
        let mut piece = &input[at..end];
        at = end;
        loop {
            let (used, step) = dec.decode(piece);
            piece = &piece[used..];
            match step {
                Some(Ok(m)) => msgs.push(m),
                Some(Err(e)) => {
                    // Terminal: the same error again, nothing used.
                    assert_eq!(dec.decode(b"\x81\x00"), (0, Some(Err(e.clone()))));
                    assert_eq!(dec.error(), Some(&e));
                    return (msgs, Some(e));
                }
                None => {
                    assert!(piece.is_empty(), "None with {} bytes left", piece.len());
                    break;
                }
            }
            if piece.is_empty() {
                break;
            }
        }
    }
    (msgs, None)
}

/// One piece, one byte at a time and random pieces must agree; returns the outcome.
fn decode_all(role: Role, max: usize, input: &[u8]) -> Outcome {
    let whole = decode_in(role, max, input, || usize::MAX);
    let bytes = decode_in(role, max, input, || 1);
    assert_eq!(whole, bytes, "one piece vs byte at a time");
    let mut rng = Rng(input.len() as u64);
    let random = decode_in(role, max, input, || rng.below(20) as usize);
    assert_eq!(whole, random, "one piece vs random pieces");
    whole
}

fn text(s: &str) -> Message {
    Message::Text(s.to_string())
}

/// (name, role, max_message, wire, messages).
type Valid = (&'static str, Role, usize, Vec<u8>, Vec<Message>);

/// RFC 6455 §5.7 and other valid input.
fn valid_rows() -> Vec<Valid> {
    use Role::{Client, Server};
    let b256: Vec<u8> = (0..=255).collect();
    let b64k: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
    let rfc_b256 = cat(&[vec![0x82, 0x7e, 0x01, 0x00], b256.clone()]);
    let rfc_b64k = cat(&[vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0], b64k.clone()]);
    let close = |code: u16, reason: &str| {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason.as_bytes());
        fr(Server, true, OpCode::Close, &p)
    };
    let closed =
        |code: u16, reason: &str| Message::Close(Some((CloseCode(code), reason.to_string())));
    vec![
        // §5.7's examples, byte for byte.
        (
            "rfc: unmasked text Hello",
            Client,
            MIB,
            vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            vec![text("Hello")],
        ),
        (
            "rfc: masked text Hello",
            Server,
            MIB,
            vec![
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
            vec![text("Hello")],
        ),
        (
            "rfc: fragmented unmasked text Hel + lo",
            Client,
            MIB,
            vec![0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
            vec![text("Hello")],
        ),
        (
            "rfc: unmasked ping Hello",
            Client,
            MIB,
            vec![0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            vec![Message::Ping(b"Hello".to_vec())],
        ),
        (
            "rfc: masked pong Hello",
            Server,
            MIB,
            vec![
                0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
            vec![Message::Pong(b"Hello".to_vec())],
        ),
        (
            "rfc: 256-byte binary, 16-bit length",
            Client,
            MIB,
            rfc_b256,
            vec![Message::Binary(b256)],
        ),
        (
            "rfc: 64 KiB binary, 64-bit length",
            Client,
            MIB,
            rfc_b64k,
            vec![Message::Binary(b64k)],
        ),
        // Fragmentation.
        (
            "ping between fragments comes first",
            Server,
            MIB,
            cat(&[
                fr(Server, false, OpCode::Text, b"Hel"),
                fr(Server, true, OpCode::Ping, b"p"),
                fr(Server, false, OpCode::Continuation, b""),
                fr(Server, true, OpCode::Pong, b""),
                fr(Server, true, OpCode::Continuation, b"lo"),
            ]),
            vec![
                Message::Ping(b"p".to_vec()),
                Message::Pong(vec![]),
                text("Hello"),
            ],
        ),
        (
            "close between fragments",
            Server,
            MIB,
            cat(&[fr(Server, false, OpCode::Binary, b"ab"), close(1001, "")]),
            vec![closed(1001, "")],
        ),
        (
            "character split across fragments",
            Server,
            MIB,
            cat(&[
                fr(Server, false, OpCode::Text, b"caf\xc3"),
                fr(Server, false, OpCode::Continuation, b""),
                fr(Server, true, OpCode::Continuation, b"\xa9 \xf0\x9d\x84\x9e"),
            ]),
            vec![text("café 𝄞")],
        ),
        (
            "4-byte character one byte per fragment",
            Client,
            MIB,
            cat(&[
                fr(Client, false, OpCode::Text, b"\xf0"),
                fr(Client, false, OpCode::Continuation, b"\x9d"),
                fr(Client, false, OpCode::Continuation, b"\x84"),
                fr(Client, true, OpCode::Continuation, b"\x9e"),
            ]),
            vec![text("𝄞")],
        ),
        (
            "empty messages",
            Server,
            0,
            cat(&[
                fr(Server, true, OpCode::Text, b""),
                fr(Server, true, OpCode::Binary, b""),
                fr(Server, false, OpCode::Binary, b""),
                fr(Server, true, OpCode::Continuation, b""),
            ]),
            vec![text(""), Message::Binary(vec![]), Message::Binary(vec![])],
        ),
        (
            "binary need not be UTF-8",
            Server,
            MIB,
            fr(Server, true, OpCode::Binary, b"\xff\xfe\xc0\x80"),
            vec![Message::Binary(b"\xff\xfe\xc0\x80".to_vec())],
        ),
        (
            "two messages back to back",
            Client,
            MIB,
            cat(&[
                fr(Client, true, OpCode::Text, b"one"),
                fr(Client, true, OpCode::Binary, b"two"),
            ]),
            vec![text("one"), Message::Binary(b"two".to_vec())],
        ),
        // Control frames.
        (
            "ping of 125 bytes",
            Server,
            0,
            fr(Server, true, OpCode::Ping, &[7; 125]),
            vec![Message::Ping(vec![7; 125])],
        ),
        // Close.
        (
            "close without payload",
            Server,
            MIB,
            fr(Server, true, OpCode::Close, b""),
            vec![Message::Close(None)],
        ),
        (
            "close 1000 with reason",
            Server,
            MIB,
            close(1000, "bye"),
            vec![closed(1000, "bye")],
        ),
        (
            "close 1003, no reason",
            Server,
            MIB,
            close(1003, ""),
            vec![closed(1003, "")],
        ),
        (
            "close 1007",
            Server,
            MIB,
            close(1007, "x"),
            vec![closed(1007, "x")],
        ),
        (
            "close 1014 (registered)",
            Server,
            MIB,
            close(1014, ""),
            vec![closed(1014, "")],
        ),
        (
            "close 3000",
            Server,
            MIB,
            close(3000, ""),
            vec![closed(3000, "")],
        ),
        (
            "close 4999, UTF-8 reason",
            Server,
            MIB,
            close(4999, "à bientôt"),
            vec![closed(4999, "à bientôt")],
        ),
        (
            "close 1000, 123-byte reason",
            Server,
            MIB,
            close(1000, &"r".repeat(123)),
            vec![closed(1000, &"r".repeat(123))],
        ),
        (
            "bytes after close are ignored",
            Server,
            MIB,
            cat(&[close(1000, ""), vec![0xff; 20]]),
            vec![closed(1000, "")],
        ),
    ]
}

#[test]
fn valid_input() {
    for (name, role, max, wire, want) in valid_rows() {
        let (msgs, e) = decode_all(role, max, &wire);
        assert_eq!(e, None, "{name}");
        assert_eq!(msgs, want, "{name}");
    }
}

/// (name, role, max_message, wire, close code, reason).
type Invalid = (String, Role, usize, Vec<u8>, CloseCode, &'static str);

/// Input the decoder must refuse.
fn error_rows() -> Vec<Invalid> {
    use Role::{Client, Server};
    const P: CloseCode = CloseCode::PROTOCOL;
    let mut rows: Vec<Invalid> = Vec::new();
    let mut row = |name: &str, role, max, wire, code, reason| {
        rows.push((name.to_string(), role, max, wire, code, reason));
    };
    // Reserved bits and opcodes (§5.2).
    for (bit, name) in [(0x40, "RSV1"), (0x20, "RSV2"), (0x10, "RSV3")] {
        row(
            name,
            Server,
            MIB,
            raw(0x81 | bit, b"x", Some(KEY)),
            P,
            "reserved bits set",
        );
        row(
            name,
            Server,
            MIB,
            raw(0x89 | bit, b"", Some(KEY)),
            P,
            "reserved bits set",
        );
    }
    for op in (3..=7).chain(0xb..=0xf) {
        let name = format!("opcode {op:#x}");
        row(
            &name,
            Server,
            MIB,
            raw(0x80 | op, b"", Some(KEY)),
            P,
            "reserved opcode",
        );
    }
    // Control frames (§5.5).
    for op in [0x8, 0x9, 0xa] {
        let name = format!("control {op:#x} not final");
        row(
            &name,
            Server,
            MIB,
            raw(op, b"", Some(KEY)),
            P,
            "fragmented control frame",
        );
        let long = "control frame payload over 125 bytes";
        let name = format!("control {op:#x} of 126 bytes");
        row(
            &name,
            Server,
            MIB,
            raw(0x80 | op, &[0; 126], Some(KEY)),
            P,
            long,
        );
        let name = format!("control {op:#x}, 64-bit length");
        row(
            &name,
            Client,
            MIB,
            header(0x80 | op, 1 << 40, 8, None),
            P,
            long,
        );
    }
    // Masking (§5.1, §5.3).
    let unmasked = "unmasked frame from a client";
    row(
        "unmasked text to a server",
        Server,
        MIB,
        fr(Client, true, OpCode::Text, b"Hello"),
        P,
        unmasked,
    );
    row(
        "unmasked ping to a server",
        Server,
        MIB,
        fr(Client, true, OpCode::Ping, b""),
        P,
        unmasked,
    );
    row(
        "unmasked continuation to a server",
        Server,
        MIB,
        cat(&[
            fr(Server, false, OpCode::Text, b"a"),
            fr(Client, true, OpCode::Continuation, b"b"),
        ]),
        P,
        unmasked,
    );
    let masked = "masked frame from a server";
    row(
        "masked text to a client",
        Client,
        MIB,
        fr(Server, true, OpCode::Text, b"Hello"),
        P,
        masked,
    );
    row(
        "masked close to a client",
        Client,
        MIB,
        fr(Server, true, OpCode::Close, b""),
        P,
        masked,
    );
    // Fragmentation (§5.4).
    let stray = "continuation frame outside a message";
    row(
        "continuation first",
        Server,
        MIB,
        fr(Server, true, OpCode::Continuation, b"x"),
        P,
        stray,
    );
    row(
        "continuation after a whole message",
        Server,
        MIB,
        cat(&[
            fr(Server, true, OpCode::Text, b"a"),
            fr(Server, false, OpCode::Continuation, b"b"),
        ]),
        P,
        stray,
    );
    let unfinished = "new data frame before the previous message ended";
    for op in [OpCode::Text, OpCode::Binary] {
        let name = format!("{op:?} inside a message");
        let wire = cat(&[
            fr(Server, false, OpCode::Binary, b"a"),
            fr(Server, true, op, b"b"),
        ]);
        row(&name, Server, MIB, wire, P, unfinished);
    }
    // Lengths (§5.2): high bit clear (first), then the size limit, then shortest form.
    let non_minimal = "payload length not in its shortest form";
    row(
        "16-bit length 5",
        Client,
        MIB,
        cat(&[header(0x82, 5, 2, None), vec![0; 5]]),
        P,
        non_minimal,
    );
    row(
        "16-bit length 125",
        Client,
        MIB,
        cat(&[header(0x82, 125, 2, None), vec![0; 125]]),
        P,
        non_minimal,
    );
    row(
        "64-bit length 200",
        Client,
        MIB,
        cat(&[header(0x82, 200, 8, None), vec![0; 200]]),
        P,
        non_minimal,
    );
    row(
        "64-bit length 65535",
        Client,
        MIB,
        header(0x82, 65535, 8, None),
        P,
        non_minimal,
    );
    row(
        "64-bit length 0, masked",
        Server,
        MIB,
        header(0x82, 0, 8, Some(KEY)),
        P,
        non_minimal,
    );
    let big = "message over the size limit";
    const T: CloseCode = CloseCode::TOO_BIG;
    // The largest valid 64-bit length: over the limit, 1009.
    let len: u64 = (1 << 63) - 1;
    let name = format!("length {len:#x}");
    row(&name, Server, MIB, header(0x82, len, 8, Some(KEY)), T, big);
    // The high bit set (§5.2: it MUST be 0): a malformed header, 1002, whatever the limit.
    let high_bit = "payload length with its high bit set";
    for len in [1 << 63, (1 << 63) + 1, u64::MAX] {
        let name = format!("length {len:#x}");
        row(
            &name,
            Server,
            MIB,
            header(0x82, len, 8, Some(KEY)),
            P,
            high_bit,
        );
    }
    row(
        "high bit, limit usize::MAX",
        Client,
        usize::MAX,
        header(0x82, 1 << 63, 8, None),
        P,
        "payload length with its high bit set",
    );
    // Size limit (1009): one frame, and fragments together.
    for (len, ext) in [(11, 0), (126, 2), (65536, 8)] {
        let name = format!("one frame of {len} bytes, limit {}", len - 1);
        row(
            &name,
            Client,
            len as usize - 1,
            header(0x81, len, ext, None),
            T,
            big,
        );
    }
    row(
        "fragments over the limit",
        Server,
        10,
        cat(&[
            fr(Server, false, OpCode::Binary, b"12345"),
            fr(Server, false, OpCode::Continuation, b"12345"),
            fr(Server, true, OpCode::Continuation, b"1"),
        ]),
        T,
        big,
    );
    row(
        "empty frame fits, the next byte does not",
        Server,
        0,
        cat(&[
            fr(Server, false, OpCode::Text, b""),
            fr(Server, true, OpCode::Continuation, b"x"),
        ]),
        T,
        big,
    );
    // UTF-8 (§8.1): 1007, as soon as an invalid sequence arrives.
    const U: CloseCode = CloseCode::INVALID_PAYLOAD;
    let bad = "text is not UTF-8";
    for (what, bytes) in [
        ("lone continuation byte", &b"\x80"[..]),
        ("invalid byte 0xff", b"ab\xff"),
        ("overlong NUL", b"\xc0\x80"),
        ("overlong slash", b"\xe0\x80\xaf"),
        ("surrogate", b"\xed\xa0\x80"),
        ("over U+10FFFF", b"\xf4\x90\x80\x80"),
        ("truncated at the end", b"caf\xc3"),
        ("truncated 4-byte at the end", b"\xf0\x9d\x84"),
        ("2-byte lead then ASCII", b"\xc3a"),
    ] {
        let name = format!("text: {what}");
        row(
            &name,
            Server,
            MIB,
            fr(Server, true, OpCode::Text, bytes),
            U,
            bad,
        );
    }
    // Early: the first fragment fails, though no final frame follows.
    row(
        "first fragment invalid",
        Server,
        MIB,
        fr(Server, false, OpCode::Text, b"ok\xff"),
        U,
        bad,
    );
    row(
        "invalid across fragments",
        Client,
        MIB,
        cat(&[
            fr(Client, false, OpCode::Text, b"\xe2\x82"),
            fr(Client, false, OpCode::Continuation, b"a"),
        ]),
        U,
        bad,
    );
    row(
        "message ends inside a character",
        Client,
        MIB,
        cat(&[
            fr(Client, false, OpCode::Text, b"\xe2\x82"),
            fr(Client, true, OpCode::Continuation, b""),
        ]),
        U,
        bad,
    );
    // Close payloads (§5.5.1, §7.4).
    row(
        "close of 1 byte",
        Server,
        MIB,
        fr(Server, true, OpCode::Close, b"\x03"),
        P,
        "close payload of 1 byte",
    );
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let name = format!("close code {code}");
        let wire = fr(Server, true, OpCode::Close, &code.to_be_bytes());
        row(&name, Server, MIB, wire, P, "invalid close code");
    }
    row(
        "close reason not UTF-8",
        Server,
        MIB,
        fr(Server, true, OpCode::Close, b"\x03\xe8ok\xff"),
        U,
        "close reason is not UTF-8",
    );
    // A good message first, then the error.
    row(
        "error after a message",
        Client,
        MIB,
        cat(&[
            fr(Client, true, OpCode::Text, b"fine"),
            raw(0xc1, b"", None),
        ]),
        P,
        "reserved bits set",
    );
    rows
}

#[test]
fn invalid_input() {
    for (name, role, max, wire, code, reason) in error_rows() {
        let (msgs, e) = decode_all(role, max, &wire);
        let e = e.unwrap_or_else(|| panic!("{name}: no error, got {msgs:?}"));
        assert_eq!((e.code(), e.reason()), (code, reason), "{name}");
        assert!(e.reason().len() <= 123, "{name}");
        let before = usize::from(name.contains("after a"));
        assert_eq!(msgs.len(), before, "{name}: {msgs:?}");
    }
}

#[test]
fn errors_come_as_soon_as_their_bytes_do() {
    // (name, role, max_message, wire: the bytes up to the error, no more).
    let rows: &[(&str, Role, usize, Vec<u8>)] = &[
        ("reserved bit: 2 bytes", Role::Server, MIB, vec![0xc1, 0x85]),
        ("unmasked: 2 bytes", Role::Server, MIB, vec![0x81, 0x05]),
        // The length alone, no masking key and no payload yet: no allocation either.
        (
            "2^63 length: 10 bytes",
            Role::Server,
            MIB,
            header(0x82, 1 << 63, 8, None)[..10].to_vec(),
        ),
        (
            "too big: 4 bytes",
            Role::Client,
            1000,
            header(0x82, 1001, 2, None),
        ),
        (
            "bad UTF-8 mid-frame",
            Role::Client,
            MIB,
            cat(&[header(0x81, 100, 0, None), b"ab\xff".to_vec()]),
        ),
        (
            "bad UTF-8 in a masked frame's first bytes",
            Role::Server,
            MIB,
            fr(Role::Server, false, OpCode::Text, b"\xffmore text")[..7].to_vec(),
        ),
    ];
    for (name, role, max, wire) in rows {
        let mut dec = Decoder::new(*role, *max);
        let (_, step) = dec.decode(wire);
        assert!(matches!(step, Some(Err(_))), "{name}: {step:?}");
        assert!(dec.msg.capacity() <= 100, "{name}");
    }
}

#[test]
fn length_boundaries() {
    // 7-, 16- and 64-bit forms at their edges; a limit of exactly the length is enough.
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 65537] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        for role in [Role::Server, Role::Client] {
            let wire = fr(role, true, OpCode::Binary, &data);
            let (msgs, e) = decode_all(role, len, &wire);
            assert_eq!(
                (msgs, e),
                (vec![Message::Binary(data.clone())], None),
                "{len}"
            );
            if len > 0 {
                let (_, e) = decode_in(role, len - 1, &wire, || usize::MAX);
                assert_eq!(e.map(|e| e.code()), Some(CloseCode::TOO_BIG), "{len}");
            }
        }
    }
}

#[test]
fn a_big_header_reserves_little() {
    // A header announcing 16 MiB, then 3 bytes: the buffer grows with what arrives.
    let mut dec = Decoder::new(Role::Client, 16 * MIB);
    let wire = cat(&[header(0x82, 16 * MIB as u64, 8, None), b"abc".to_vec()]);
    assert_eq!(dec.decode(&wire), (wire.len(), None));
    assert!(
        dec.msg.capacity() <= RESERVE_AHEAD,
        "{}",
        dec.msg.capacity()
    );
}

#[test]
fn recycled_buffer_is_reused() {
    let mut dec = Decoder::new(Role::Client, MIB);
    let (_, m) = dec.decode(&fr(Role::Client, true, OpCode::Binary, &[1; 1000]));
    let Some(Ok(Message::Binary(buf))) = m else {
        panic!("{m:?}")
    };
    let ptr = buf.as_ptr();
    dec.recycle(buf);
    let (_, m) = dec.decode(&fr(Role::Client, true, OpCode::Text, b"hi"));
    let Some(Ok(Message::Text(s))) = m else {
        panic!("{m:?}")
    };
    assert_eq!((s.as_str(), s.as_ptr()), ("hi", ptr));
}

#[test]
fn ping_is_answered_with_the_rfc_pong() {
    // A client decodes the server's unmasked ping and answers with a masked pong: the
    // RFC's two examples.
    let mut dec = Decoder::new(Role::Client, MIB);
    let (_, m) = dec.decode(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    let Some(Ok(Message::Ping(payload))) = m else {
        panic!("{m:?}")
    };
    let mut out = Vec::new();
    encode(&mut out, true, OpCode::Pong, &payload, Some(KEY));
    assert_eq!(
        out,
        [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
}

#[test]
fn close_frames_round_trip() {
    for role in [Role::Server, Role::Client] {
        let mut wire = Vec::new();
        let mask = (role == Role::Server).then_some(KEY);
        frame::encode_close(&mut wire, Some(CloseCode::GOING_AWAY), "restarting", mask);
        let mut dec = Decoder::new(role, 0);
        let want = Message::Close(Some((CloseCode::GOING_AWAY, "restarting".into())));
        assert_eq!(dec.decode(&wire), (wire.len(), Some(Ok(want))));
        assert!(dec.is_closed());
    }
}

/// splitmix64: a seeded generator for reproducible random tests (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_messages_round_trip() {
    // Random text and binary messages, cut into random fragments (inside characters too)
    // with random masks and pings in between, then fed in random pieces: the messages
    // come back identical, each when its last fragment is in, each ping at once.
    const CHARS: &[char] = &['a', 'Z', ' ', '\0', 'é', 'ß', '€', '中', '𝄞', '😀'];
    let mut rng = Rng(0x5eed);
    for round in 0..300 {
        let role = if round % 2 == 0 {
            Role::Server
        } else {
            Role::Client
        };
        let mask =
            |rng: &mut Rng| (role == Role::Server).then(|| (rng.next() as u32).to_be_bytes());
        let mut wire = Vec::new();
        let mut want = Vec::new();
        let mut total = 0;
        for _ in 0..1 + rng.below(4) {
            // Now and then a length at the edge of a length form.
            let len = match rng.below(10) {
                0 => 0,
                1 => 120 + rng.below(10),
                2 => 65530 + rng.below(10),
                _ => rng.below(300),
            } as usize;
            let (op, payload, msg) = if rng.below(2) == 0 {
                let mut s = String::new();
                while s.len() < len {
                    s.push(CHARS[rng.below(CHARS.len() as u64) as usize]);
                }
                (OpCode::Text, s.clone().into_bytes(), Message::Text(s))
            } else {
                let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                (OpCode::Binary, b.clone(), Message::Binary(b))
            };
            total = total.max(payload.len());
            let mut cuts: Vec<usize> = (0..rng.below(5))
                .map(|_| rng.below(payload.len() as u64 + 1) as usize)
                .collect();
            cuts.sort_unstable();
            cuts.push(payload.len());
            let mut from = 0;
            for (i, &to) in cuts.iter().enumerate() {
                let fin = i + 1 == cuts.len();
                let fop = if i == 0 { op } else { OpCode::Continuation };
                let m = mask(&mut rng);
                encode(&mut wire, fin, fop, &payload[from..to], m);
                from = to;
                if fin {
                    want.push(msg.clone());
                }
                if rng.below(4) == 0 {
                    let p: Vec<u8> = (0..rng.below(126)).map(|_| rng.next() as u8).collect();
                    let m = mask(&mut rng);
                    encode(&mut wire, true, OpCode::Ping, &p, m);
                    want.push(Message::Ping(p));
                }
            }
        }
        let mut sizes = Rng(round);
        let got = decode_in(role, total, &wire, || match sizes.below(3) {
            0 => 1 + sizes.below(3) as usize,
            1 => sizes.below(200) as usize,
            _ => sizes.below(70000) as usize,
        });
        assert_eq!(got, (want, None), "round {round}");
    }
}
