//! An attack on the in-place decoding of buffered chunked request bodies (the chunk data
//! moved down over its own framing in the read buffer): pipelined mixes of chunked and
//! `Content-Length` POSTs, GETs, HEADs, streamed and large answers, `Expect:
//! 100-continue` and upgrades, sent whole, a byte at a time and in random splits; bad
//! framing; `max_body_bytes` at its edges; many dribbling chunked uploads under a small
//! memory budget. Every request must be answered once, in order, with the exact body the
//! client sent; nothing may be parsed out of a body.
mod support;
use support::*;

use h1server::{Config, Request, Response};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// FNV-1a, 64 bits.
fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A seeded xorshift: the same splits on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A body that holds framing look-alikes: CRLFs, hex digits, a last chunk and a whole
/// request, so a byte taken for framing (or framing taken for data) shows.
fn body_of(n: usize, seed: u64) -> Vec<u8> {
    let trap = b"\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut r = Rng(seed | 1);
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        if r.below(8) == 0 {
            v.extend_from_slice(trap);
        } else {
            v.push(r.next() as u8);
        }
    }
    v.truncate(n);
    v
}

/// How a chunked body is framed.
#[derive(Clone, Copy)]
enum Style {
    /// Chunks of 1 byte.
    Ones,
    /// Varying sizes, leading zeros, upper-case hex, extensions, trailers.
    Mixed,
    /// One chunk.
    Single,
}

fn frame(body: &[u8], style: Style, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < body.len() {
        let n = match style {
            Style::Ones => 1,
            Style::Single => body.len(),
            Style::Mixed => [1, 2, 3, 15, 16, 17, 255, 4095, 4096, 4097, 9000][r.below(11)],
        }
        .min(body.len() - at);
        match (style, i % 4) {
            (Style::Mixed, 0) => out.extend_from_slice(format!("{n:08X}").as_bytes()),
            (Style::Mixed, 1) => {
                out.extend_from_slice(format!("{n:x} ; a=b;c=\"x;y\\\"\"\t; d").as_bytes())
            }
            (Style::Mixed, 2) => out.extend_from_slice(format!("{n:016x}").as_bytes()),
            _ => out.extend_from_slice(format!("{n:x}").as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
        i += 1;
    }
    if matches!(style, Style::Mixed) {
        out.extend_from_slice(b"0000;last=1\r\nX-Trailer: a\r\nX-Other:\t b c \r\n\r\n");
    } else {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}

/// One request of a pipelined sequence.
#[derive(Clone)]
enum Item {
    Get(&'static str),
    Head(&'static str),
    Cl(&'static str, Vec<u8>, bool),
    Chunked(&'static str, Vec<u8>, Style, bool),
    /// A streamed answer (the worker hands the requests behind back to the loop).
    Stream,
    /// A 200 KiB answer (two stop a batch at 256 KiB of answers).
    Big,
    /// An empty line between requests (RFC 9112 §2.2: ignored); no answer.
    Crlf,
    /// A `Content-Length` body over `max_body_bytes`: streamed to a sink.
    Upload(&'static str, Vec<u8>),
}

impl Item {
    fn bytes(&self, seed: u64) -> Vec<u8> {
        let expect = |e: bool| if e { "Expect: 100-continue\r\n" } else { "" };
        match self {
            Item::Get(p) => format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
            Item::Head(p) => format!("HEAD {p} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
            Item::Stream => b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Item::Big => b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Item::Crlf => b"\r\n".to_vec(),
            Item::Upload(p, b) => {
                let mut v = format!(
                    "PUT {p} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                    b.len()
                )
                .into_bytes();
                v.extend_from_slice(b);
                v
            }
            Item::Cl(p, b, e) => {
                let mut v = format!(
                    "POST {p} HTTP/1.1\r\nHost: x\r\n{}Content-Length: {}\r\n\r\n",
                    expect(*e),
                    b.len()
                )
                .into_bytes();
                v.extend_from_slice(b);
                v
            }
            Item::Chunked(p, b, s, e) => {
                let mut v = format!(
                    "POST {p} HTTP/1.1\r\nHost: x\r\n{}Transfer-Encoding: chunked\r\n\r\n",
                    expect(*e)
                )
                .into_bytes();
                v.extend_from_slice(&frame(b, *s, seed));
                v
            }
        }
    }

    /// (method for the reader, status, body expected; None: only its length is checked)
    fn expected(&self) -> (&'static str, String) {
        match self {
            Item::Get(p) => ("GET", format!("GET {p} 0 {:016x}", fnv(b""))),
            Item::Head(_) => ("HEAD", String::new()),
            Item::Stream => ("GET", "s0\ns1\ns2\n".into()),
            Item::Big | Item::Crlf => ("GET", String::new()),
            Item::Upload(p, b) => ("PUT", format!("UPLOAD {p} {} {:016x}", b.len(), fnv(b))),
            Item::Cl(p, b, _) | Item::Chunked(p, b, _, _) => {
                ("POST", format!("POST {p} {} {:016x}", b.len(), fnv(b)))
            }
        }
    }
}

const BIG: usize = 200 * 1024;

/// Hashes a streamed body.
struct HashSink(&'static str, String, u64, usize);

impl h1server::BodySink for HashSink {
    fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
        for &b in piece {
            self.2 ^= u64::from(b);
            self.2 = self.2.wrapping_mul(0x0100_0000_01b3);
        }
        self.3 += piece.len();
        Ok(())
    }
    fn finish(self: Box<Self>) -> Response {
        Response::text(format!("{} {} {} {:016x}", self.0, self.1, self.3, self.2))
    }
    fn abort(self: Box<Self>) {}
}

fn app(req: &mut Request) -> Response {
    if req.streamed_body_len().is_some() {
        return Response::read_body(HashSink(
            "UPLOAD",
            req.path().to_string(),
            0xcbf2_9ce4_8422_2325,
            0,
        ));
    }
    match req.path() {
        "/stream" => Response::stream((0..3).map(|i| format!("s{i}\n"))),
        "/big" => Response::new(200).with_body(vec![b'b'; BIG]),
        p => {
            let b = req.body();
            Response::text(format!(
                "{} {p} {} {:016x}",
                req.method_str(),
                b.len(),
                fnv(b)
            ))
        }
    }
}

/// Reads one final answer, skipping `100 Continue`s.
fn final_response(c: &mut Reader, method: &str) -> Resp {
    loop {
        let r = c
            .read_response_to(method)
            .expect("the connection closed before an answer");
        if r.status != 100 {
            return r;
        }
    }
}

/// How the byte stream is cut into writes.
#[derive(Clone, Copy, Debug)]
enum Split {
    Whole,
    /// One byte a write.
    Bytes,
    /// Random pieces of 1..=max bytes, seeded; a short pause between some of them so
    /// the server reads them apart (pacing only: any split must give the same answers).
    Random(u64, usize),
}

/// Sends the items' bytes split as told (from a thread: large answers must be read while
/// the rest is sent) and checks every answer, in order; then that nothing more comes.
fn run(addr: std::net::SocketAddr, items: &[Item], split: Split, seed: u64) {
    let mut stream = Vec::new();
    for (i, it) in items.iter().enumerate() {
        stream.extend_from_slice(&it.bytes(seed + i as u64));
    }
    let mut w = connect(addr);
    let mut c = Reader::new(w.try_clone().unwrap());
    let writer = std::thread::spawn(move || {
        match split {
            Split::Whole => {
                let _ = w.write_all(&stream);
            }
            Split::Bytes => {
                for b in &stream {
                    if w.write_all(std::slice::from_ref(b)).is_err() {
                        break;
                    }
                }
            }
            Split::Random(s, max) => {
                let mut r = Rng(s | 1);
                let mut at = 0;
                while at < stream.len() {
                    let n = (1 + r.below(max)).min(stream.len() - at);
                    if w.write_all(&stream[at..at + n]).is_err() {
                        break;
                    }
                    at += n;
                    if r.below(4) == 0 {
                        std::thread::sleep(Duration::from_micros(300));
                    }
                }
            }
        }
        w
    });
    for (i, it) in items.iter().enumerate() {
        if matches!(it, Item::Crlf) {
            continue;
        }
        let (method, want) = it.expected();
        let r = final_response(&mut c, method);
        assert_eq!(r.status, 200, "answer {i} ({split:?}): {:?}", r.text());
        match it {
            Item::Big => assert_eq!(r.body.len(), BIG, "answer {i} ({split:?})"),
            Item::Head(_) => assert!(r.body.is_empty()),
            _ => assert_eq!(r.text(), want, "answer {i} ({split:?})"),
        }
    }
    let w = writer.join().unwrap();
    // Nothing more: no request was made out of body bytes.
    w.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = c.stream.read_to_end(&mut rest);
    let mut all = c.leftover().to_vec();
    all.extend_from_slice(&rest);
    assert!(
        all.is_empty(),
        "bytes after the last answer ({split:?}): {:?}",
        String::from_utf8_lossy(&all[..all.len().min(300)])
    );
}

fn mixes() -> Vec<Vec<Item>> {
    let small = |n, s| body_of(n, s);
    vec![
        // Chunked first, then everything else behind it.
        vec![
            Item::Crlf,
            Item::Chunked("/c1", small(300, 1), Style::Mixed, false),
            Item::Crlf,
            Item::Get("/g1"),
            Item::Crlf,
            Item::Cl("/l1", small(50, 2), false),
            Item::Chunked("/c2", small(40, 3), Style::Ones, true),
            Item::Head("/h1"),
            Item::Chunked("/c3", small(0, 4), Style::Single, false),
            Item::Get("/g2"),
        ],
        // Behind a stream and behind 256 KiB of answers: handed back, parsed again.
        vec![
            Item::Get("/g0"),
            Item::Stream,
            Item::Crlf,
            Item::Chunked("/c1", small(700, 5), Style::Mixed, true),
            Item::Big,
            Item::Big,
            Item::Chunked("/c2", small(90, 6), Style::Ones, false),
            Item::Cl("/l", small(3, 7), true),
            Item::Stream,
            Item::Chunked("/c3", small(5000, 8), Style::Mixed, false),
            Item::Head("/h"),
        ],
        // A chunked POST whose answer is a stream, and one whose answer is big.
        vec![
            Item::Chunked("/c1", small(100, 9), Style::Mixed, false),
            Item::Chunked("/c2", small(64, 10), Style::Single, true),
            Item::Stream,
            Item::Chunked("/c3", small(20_000, 11), Style::Mixed, false),
            Item::Big,
            Item::Big,
            Item::Get("/end"),
        ],
    ]
}

#[test]
fn pipelined_mixes_give_the_same_answers_whole_and_split() {
    let srv = TestServer::start(app);
    for (m, items) in mixes().iter().enumerate() {
        let seed = 100 * m as u64;
        run(srv.addr, items, Split::Whole, seed);
        for s in 0..6 {
            run(srv.addr, items, Split::Random(seed + s, 40), seed);
        }
        run(srv.addr, items, Split::Random(seed + 7, 3000), seed);
    }
}

/// Streamed uploads (a `Content-Length` body over `max_body_bytes`, fed to a sink) in the
/// pipeline: the batch ends at one, its body is read a window at a time, and the chunked
/// requests behind it are parsed from where it ended.
#[test]
fn chunked_posts_around_streamed_uploads_give_the_same_answers() {
    let srv = TestServer::with_config(
        Config {
            max_body_bytes: 8 * 1024,
            max_upload_bytes: 1 << 20,
            stream_buffer_bytes: 4096,
            ..test_config()
        },
        app,
    );
    let items = vec![
        Item::Chunked("/c1", body_of(8 * 1024, 1), Style::Mixed, false),
        Item::Upload("/u1", body_of(50_000, 2)),
        Item::Chunked("/c2", body_of(3000, 3), Style::Ones, true),
        Item::Upload("/u2", body_of(8 * 1024 + 1, 4)),
        Item::Crlf,
        Item::Upload("/u3", body_of(20_000, 5)),
        Item::Stream,
        Item::Chunked("/c3", body_of(100, 6), Style::Mixed, false),
        Item::Get("/end"),
    ];
    run(srv.addr, &items, Split::Whole, 3);
    for s in 0..4 {
        run(srv.addr, &items, Split::Random(s, 700), 3);
    }
    run(srv.addr, &items, Split::Random(11, 40), 3);
}

#[test]
fn a_small_mix_sent_a_byte_a_write_gives_the_same_answers() {
    let srv = TestServer::start(app);
    let items = vec![
        Item::Crlf,
        Item::Chunked("/c1", body_of(40, 1), Style::Mixed, true),
        Item::Get("/g"),
        Item::Crlf,
        Item::Chunked("/c2", body_of(20, 2), Style::Ones, false),
        Item::Stream,
        Item::Chunked("/c3", body_of(30, 3), Style::Mixed, false),
        Item::Cl("/l", body_of(10, 4), false),
    ];
    run(srv.addr, &items, Split::Bytes, 7);
    // A byte a write, paced now and then, so that reads end at many of them.
    run(srv.addr, &items, Split::Random(9, 1), 7);
}

// ------------------------------------------------------------------ bad framing

/// What follows a bad chunked body must never be answered: the framing is unknown.
const BAIT: &[u8] = b"GET /bait HTTP/1.1\r\nHost: x\r\n\r\n";

/// Sends `before` requests (answered), then a chunked POST with raw body `raw`, then
/// BAIT; expects the answers to `before`, then `status` and a close.
fn expect_refused(addr: std::net::SocketAddr, lead: bool, raw: &[u8], status: u16, split: Split) {
    let mut req = Vec::new();
    if lead {
        req.extend_from_slice(b"GET /lead HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    req.extend_from_slice(b"POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    req.extend_from_slice(raw);
    req.extend_from_slice(BAIT);
    let mut c = Reader::new(connect(addr));
    match split {
        Split::Whole => c.send(&req),
        _ => {
            for b in &req {
                if c.stream.write_all(std::slice::from_ref(b)).is_err() {
                    break;
                }
            }
        }
    }
    let what = String::from_utf8_lossy(raw).into_owned();
    if lead {
        let r = c.read_response();
        assert_eq!(
            r.text(),
            format!("GET /lead 0 {:016x}", fnv(b"")),
            "{what:?}"
        );
    }
    let r = c
        .read_response_to("POST")
        .unwrap_or_else(|| panic!("no answer to {what:?} ({split:?})"));
    assert_eq!(r.status, status, "{what:?} ({split:?}): {}", r.text());
    assert!(c.is_closed(), "{what:?}: the connection stays open");
    assert!(
        !String::from_utf8_lossy(c.leftover()).contains("/bait"),
        "{what:?}: a request was parsed out of a bad body"
    );
}

#[test]
fn bad_chunk_framing_is_refused_and_nothing_behind_it_is_answered() {
    let srv = TestServer::start(app);
    let cases: &[(&[u8], u16)] = &[
        (b"5\nhello\r\n0\r\n\r\n", 400),     // bare LF ends the size line
        (b"5\r\nhello\n0\r\n\r\n", 400),     // bare LF after the data
        (b"5\rhello\r\n0\r\n\r\n", 400),     // bare CR
        (b"5\r\nhello0\r\n\r\n", 400),       // no CRLF after the data
        (b"5\r\nhelloXX\r\n0\r\n\r\n", 400), // more data than the size
        (b"00000000000000005\r\nhello\r\n0\r\n\r\n", 400), // 17 digits
        (b"-5\r\nhello\r\n0\r\n\r\n", 400),
        (b"0x5\r\nhello\r\n0\r\n\r\n", 400),
        (b" 5\r\nhello\r\n0\r\n\r\n", 400),
        (b"5 \r\nhello\r\n0\r\n\r\n", 400),
        (b"5;\r\nhello\r\n0\r\n\r\n", 400),
        (b"5;a=\"b\r\nhello\r\n0\r\n\r\n", 400),
        (b"0\r\nX-T: a\n\r\n", 400),       // bare LF in a trailer
        (b"0\r\n Folded: a\r\n\r\n", 400), // obs-fold in a trailer
        (b"0\r\n\n", 400),                 // bare LF as the last line
        (b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n", 413),
        (b"100001\r\n", 413), // one over max_body_bytes (1 MiB)
    ];
    for (raw, status) in cases {
        for lead in [false, true] {
            for split in [Split::Whole, Split::Bytes] {
                expect_refused(srv.addr, lead, raw, *status, split);
            }
        }
    }
}

/// `0\r\n` without the final CRLF, then the client half-closes: the body is incomplete
/// (RFC 9112 §7.1), so it is not answered as if complete; what came before is answered.
#[test]
fn a_last_chunk_without_its_final_crlf_is_not_a_complete_body() {
    let srv = TestServer::start(app);
    for tail in [&b"0\r\n"[..], b"0\r\nX-T: 1\r\n", b"0\r\n\r", b"5\r\nhel"] {
        for lead in [false, true] {
            let mut req = Vec::new();
            if lead {
                req.extend_from_slice(b"GET /lead HTTP/1.1\r\nHost: x\r\n\r\n");
            }
            req.extend_from_slice(
                b"POST /cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            req.extend_from_slice(tail);
            let mut c = Reader::new(connect(srv.addr));
            c.send(&req);
            c.stream.shutdown(std::net::Shutdown::Write).unwrap();
            if lead {
                assert_eq!(c.read_response().status, 200);
            }
            let mut rest = c.leftover().to_vec();
            let _ = c.stream.read_to_end(&mut rest);
            let rest = String::from_utf8_lossy(&rest);
            assert!(
                !rest.contains("POST /cut"),
                "{tail:?}: an incomplete body was answered: {rest}"
            );
        }
    }
}

// ------------------------------------------------------------------ upgrades

fn upgrade_app(req: &mut Request) -> Response {
    if req.header("upgrade") == Some("echo") {
        let b = req.body();
        Response::new(101)
            .with_header("Upgrade", "echo")
            .with_header("X-Body", format!("{} {:016x}", b.len(), fnv(b)))
            .upgrade(echo_upgrade)
    } else {
        app(req)
    }
}

/// Sends `req` (an upgrading request) and `after` (the new protocol's bytes) split as
/// told; the echo must give back `after` exactly.
fn upgrade_round(addr: std::net::SocketAddr, req: &[u8], after: &[u8], body: &[u8], split: Split) {
    let mut all = req.to_vec();
    all.extend_from_slice(after);
    let mut s = connect(addr);
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        match split {
            Split::Whole => w.write_all(&all).unwrap(),
            _ => {
                for b in &all {
                    w.write_all(std::slice::from_ref(b)).unwrap();
                }
            }
        }
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let head = upgrade_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let want = format!("x-body: {} {:016x}", body.len(), fnv(body));
    assert!(head.to_ascii_lowercase().contains(&want), "{head} ({want})");
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(after),
        "the new protocol's bytes ({split:?})"
    );
}

#[test]
fn bytes_after_an_upgrade_reach_the_new_protocol_as_they_came() {
    let srv = TestServer::start(upgrade_app);
    let chunked_post =
        b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let body = body_of(3000, 42);
    let mut up_chunked =
        b"POST /up HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: upgrade\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    up_chunked.extend_from_slice(&frame(&body, Style::Mixed, 3));
    let up_get = b"GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n";
    for split in [Split::Whole, Split::Bytes] {
        // An upgrade, then a chunked POST's raw bytes: not decoded, not answered.
        upgrade_round(srv.addr, up_get, chunked_post, b"", split);
        // A chunked upgrading request: the bytes behind its body are the new protocol's.
        upgrade_round(srv.addr, &up_chunked, chunked_post, &body, split);
        upgrade_round(srv.addr, &up_chunked, b"\x00\xffraw", &body, split);
    }
}

/// The new protocol's bytes may start with CR or LF, and may look like a request: after
/// a 101 they are the new protocol's, all of them (RFC 9110 §7.8), even those the loop
/// had already parsed as a pipelined request.
#[test]
fn empty_lines_after_an_upgrade_reach_the_new_protocol() {
    let srv = TestServer::start(upgrade_app);
    let body = body_of(300, 4);
    let mut up_chunked =
        b"POST /up HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: upgrade\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    up_chunked.extend_from_slice(&frame(&body, Style::Mixed, 3));
    let up_get = b"GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n";
    let after = b"\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n";
    upgrade_round(srv.addr, up_get, after, b"", Split::Whole);
    upgrade_round(srv.addr, &up_chunked, after, &body, Split::Whole);
}

// ------------------------------------------------------------------ limits

/// Two heads of the same length: one says `Content-Length: n`, the other chunked.
fn twin_heads(n: usize) -> (Vec<u8>, Vec<u8>) {
    let cl = format!("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n");
    let te = "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n".to_string();
    let width = cl.len().max(te.len()) + 1;
    let pad = |h: String| {
        let p = "p".repeat(width - h.len());
        format!("{h}X: {p}\r\n\r\n").into_bytes()
    };
    let (cl, te) = (pad(cl), pad(te));
    assert_eq!(cl.len(), te.len());
    (cl, te)
}

/// Sends a request (pushing on while the server takes it) and returns its answer's
/// status, and the status of a GET pipelined behind it (None: closed). On a server with
/// no other client, a 503 only means the memory of the request before is not given back
/// yet (its answer may be written by a worker before the loop hears of it): retried, as
/// `Retry-After` says, a bounded number of times.
fn verdict(addr: std::net::SocketAddr, req: &[u8]) -> (u16, Option<u16>) {
    let mut v = (0, None);
    assert!(
        wait_until(Duration::from_secs(5), || {
            v = verdict_once(addr, req);
            v.0 != 503
        }),
        "503 on an idle server"
    );
    v
}

fn verdict_once(addr: std::net::SocketAddr, req: &[u8]) -> (u16, Option<u16>) {
    let mut all = req.to_vec();
    all.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut w = connect(addr);
    let mut c = Reader::new(w.try_clone().unwrap());
    let writer = std::thread::spawn(move || {
        for p in all.chunks(8192) {
            if w.write_all(p).is_err() {
                break;
            }
        }
    });
    let first = final_response(&mut c, "POST").status;
    let second = c.read_response_to("GET").map(|r| r.status);
    writer.join().unwrap();
    (first, second)
}

/// `max_body_bytes` at its edge, for chunked and `Content-Length` bodies alike, with a
/// request pipelined behind: at and under the limit both are served and the next request
/// answered; one over, both are 413 and the connection closes.
#[test]
fn max_body_bytes_at_its_edge_is_the_same_for_chunked_and_content_length() {
    const MAX: usize = 20_000;
    let srv = TestServer::with_config(
        Config {
            max_body_bytes: MAX as u64,
            ..test_config()
        },
        app,
    );
    for n in [MAX - 1, MAX, MAX + 1] {
        let body = body_of(n, n as u64);
        let (mut cl, te) = twin_heads(n);
        cl.extend_from_slice(&body);
        let want = if n <= MAX {
            (200, Some(200))
        } else {
            (413, None)
        };
        assert_eq!(verdict(srv.addr, &cl), want, "Content-Length: {n}");
        for style in [Style::Single, Style::Mixed, Style::Ones] {
            let mut req = te.clone();
            req.extend_from_slice(&frame(&body, style, 9));
            assert_eq!(verdict(srv.addr, &req), want, "chunked, {n} bytes");
        }
    }
}

/// On an idle server, a body the whole memory budget can hold when it says its
/// `Content-Length` must not be refused for good (413) when it comes chunked: a 413 says
/// a retry cannot pass, and the twin just did. And one byte more is 413 for both, however
/// the requests before it left the loop's buffer pool (a pooled grown buffer let the
/// chunked one through: `a_pooled_grown_buffer_does_not_let_a_body_past_the_budget`).
///
/// The exact edge too: a body that fills the whole budget to the byte. Its
/// `Content-Length` twin passes; the chunked one was 413, since its last chunk's CRLF and
/// the last chunk itself must still be read into a buffer that the data alone filled. Now
/// the buffer may take one byte past the budget, once per body, to read the framing
/// through (`edge_byte`).
#[test]
fn a_chunked_body_at_the_budget_s_edge_gets_the_verdict_of_its_twin() {
    let srv = TestServer::with_config(edge_config(test_config()), app);
    let diffs = budget_edge_diffs(srv.addr);
    assert!(
        diffs.is_empty(),
        "(size, edge, Content-Length, chunked): {diffs:?}"
    );
}

const EDGE_BUDGET: usize = 64 * 1024;

fn edge_config(base: Config) -> Config {
    Config {
        max_buffered_bytes: EDGE_BUDGET,
        max_body_bytes: 1024 * 1024,
        ..base
    }
}

/// The sizes around the budget's edge where a chunked body and its `Content-Length` twin
/// get different verdicts: (size, edge, twin's status, chunked's status).
fn budget_edge_diffs(addr: std::net::SocketAddr) -> Vec<(usize, usize, u16, u16)> {
    let head_len = twin_heads(100_000).0.len(); // 5-digit lengths below
    // The largest Content-Length body the budget holds: the buffer beyond the first
    // 16 KiB is charged.
    let edge = EDGE_BUDGET + 16 * 1024 - head_len;
    // Requests before it leave a grown buffer in the pool (see above).
    let mut p = twin_heads(30_000).0;
    p.extend_from_slice(&body_of(30_000, 1));
    assert_eq!(verdict(addr, &p), (200, Some(200)));
    let mut diffs = Vec::new();
    for n in [
        edge - 4096,
        edge - 100,
        edge - 8,
        edge - 1,
        edge,
        edge + 1,
        edge + 2,
    ] {
        let body = body_of(n, 5);
        let (mut cl, te) = twin_heads(n);
        cl.extend_from_slice(&body);
        let twin = verdict(addr, &cl).0;
        let mut req = te.clone();
        req.extend_from_slice(&frame(&body, Style::Single, 1));
        let chunked = verdict(addr, &req).0;
        if twin != chunked {
            diffs.push((n, edge, twin, chunked));
        }
        // In 1-byte chunks, every data byte ends a chunk: the byte past the budget is
        // given once per body, so it does not let such a body creep past the edge.
        if n.abs_diff(edge) <= 1 {
            let mut req = te.clone();
            req.extend_from_slice(&frame(&body, Style::Ones, 1));
            let chunked = verdict(addr, &req).0;
            if twin != chunked {
                diffs.push((n, edge, twin, chunked));
            }
        }
    }
    diffs
}

/// A read buffer comes from the loop's pool, where buffers grown up to 64 KiB are kept;
/// the memory budget charges what a buffer holds beyond its first 16 KiB. A connection
/// that got a grown buffer read into it without asking the budget, and was booked for it
/// afterwards (room or not): the same body that is 413 on a fresh server (larger than the
/// whole budget could hold) was then served, the budget overdrawn by up to 48 KiB per
/// connection.
#[test]
fn a_pooled_grown_buffer_does_not_let_a_body_past_the_budget() {
    const BUDGET: usize = 64 * 1024;
    let server = || {
        TestServer::with_config(
            Config {
                loops: 1,
                max_buffered_bytes: BUDGET,
                max_body_bytes: 1024 * 1024,
                ..test_config()
            },
            app,
        )
    };
    // 20 KiB more than the whole budget could hold in one connection's buffer.
    let over = BUDGET + 16 * 1024 + 20 * 1024;
    let n = over - twin_heads(over).0.len();
    let (cl_head, te_head) = twin_heads(n);
    let body = body_of(n, 77);
    let mut cl = cl_head.clone();
    cl.extend_from_slice(&body);
    let mut te = te_head.clone();
    te.extend_from_slice(&frame(&body, Style::Single, 1));
    for (what, req) in [("Content-Length", &cl), ("chunked", &te)] {
        let srv = server();
        assert_eq!(verdict(srv.addr, req).0, 413, "{what}, on a fresh server");
        // Requests whose buffers grow to about 40 KiB (within the budget), given back
        // to the pool after their answers.
        for _ in 0..4 {
            let prime = body_of(40 * 1024 - cl_head.len() - 100, 3);
            let (mut p, _) = twin_heads(prime.len());
            p.extend_from_slice(&prime);
            assert_eq!(verdict(srv.addr, &p), (200, Some(200)), "a priming request");
        }
        assert_eq!(
            verdict(srv.addr, req).0,
            413,
            "{what}, after a grown buffer was pooled"
        );
    }
}

// ------------------------------------------------------------------ memory

/// Many clients dribble chunked uploads (1-byte chunks first, then small ones) and stall
/// half-way, under a 1 MiB budget: the server holds about the budget, not the half
/// bodies (25 MiB); once they send the rest, every one is answered — 200, or 503 for the
/// ones the budget could not hold — none waits for the others until its deadline.
#[test]
fn dribbled_chunked_uploads_stalled_half_way_hold_the_budget_and_all_get_an_answer() {
    const CLIENTS: usize = 100;
    const BODY: usize = 512 * 1024;
    let (child, addr) = spawn_hello(&[
        ("H1_MAX_BUFFERED_BYTES", "1MiB"),
        ("H1_READ_TIMEOUT", "60s"),
        ("H1_HEADER_READ_TIMEOUT", "60s"),
    ]);
    let pid = child.0.id();
    let before = rss_kib(pid);
    let mut raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let body = body_of(BODY, 11);
    raw.extend_from_slice(&frame(&body[..4096], Style::Ones, 1));
    raw.truncate(raw.len() - 5); // no last chunk yet
    let mut at = 4096;
    let mut i = 0;
    while at < BODY {
        let n = [16usize, 255, 1, 100][i % 4].min(BODY - at);
        raw.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        raw.extend_from_slice(&body[at..at + n]);
        raw.extend_from_slice(b"\r\n");
        at += n;
        i += 1;
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let half = raw.len() / 2;
    let mut clients: Vec<(TcpStream, usize, bool)> = (0..CLIENTS)
        .map(|_| {
            let s = connect(addr);
            s.set_nonblocking(true).unwrap();
            (s, 0, false)
        })
        .collect();
    let mut peak = 0;
    // Pushes every client's bytes up to `upto`, round robin, a bounded number of rounds.
    let push = |clients: &mut Vec<(TcpStream, usize, bool)>, upto: usize, peak: &mut u64| {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            let mut all = true;
            for (s, sent, refused) in clients.iter_mut() {
                if *refused || *sent >= upto {
                    continue;
                }
                let end = (*sent + 1500).min(upto);
                match s.write(&raw[*sent..end]) {
                    Ok(n) => *sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => *refused = true, // answered (503) and closed
                }
                all &= *refused || *sent >= upto;
            }
            *peak = (*peak).max(rss_kib(pid));
            if all {
                return;
            }
        }
        panic!("the clients could not send their bytes in 60 s");
    };
    push(&mut clients, half, &mut peak);
    // Stalled: the server has read what it will read.
    for _ in 0..20 {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(25));
    }
    let held = peak.saturating_sub(before);
    assert!(
        held < 12 * 1024,
        "the server holds {held} KiB more with {CLIENTS} chunked uploads stalled half-way \
         (budget 1 MiB; the half bodies are {} KiB)",
        CLIENTS * half / 1024
    );
    push(&mut clients, raw.len(), &mut peak);
    let (mut ok, mut shed) = (0, 0);
    for (i, (s, _, _)) in clients.into_iter().enumerate() {
        s.set_nonblocking(false).unwrap();
        let mut c = Reader::new(s);
        // A connection refused mid-body may be reset before its answer is read.
        let mut got = None;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            got = c.read_response_to("POST").map(|r| (r.status, r.text()));
        }));
        match got {
            Some((200, t)) => {
                assert_eq!(t, "Hello, World!");
                ok += 1;
            }
            Some((503, _)) => shed += 1,
            other => panic!("client {i}: {other:?}"),
        }
    }
    assert!(ok > 0, "no upload passed ({shed} shed)");
    let resp = roundtrip(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 200);
}

/// One client holds the whole budget (a `Content-Length` body sized at its head, never
/// sent). A chunked upload of 64 KiB behind a small head, sent whole at once, outgrows
/// its first 16 KiB buffer: it must be refused 503 + Retry-After at once, as its
/// `Content-Length` twin is (and as it was before the body was decoded in place, when its
/// decoded body's growth was refused). It was left waiting for memory — its connection
/// and buffer held — until its read deadline, then answered 408 as if the client had been
/// slow. Only a body behind a head so large that its first buffer cannot also hold a
/// window of raw bytes waits (it holds none of the budget; `tests/budget_loops_review.rs`).
#[test]
fn a_chunked_body_behind_a_small_head_gets_503_not_408_while_the_budget_is_held() {
    const BUDGET: usize = 256 * 1024;
    let srv = TestServer::with_config(
        Config {
            max_buffered_bytes: BUDGET,
            read_timeout: Duration::from_secs(2),
            ..test_config()
        },
        app,
    );
    let head = "POST /hold HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ";
    let n = BUDGET + 16 * 1024 - (head.len() + "000000\r\n\r\n".len());
    let mut holder = Reader::new(srv.connect());
    holder.send(format!("{head}{n}\r\n\r\n").as_bytes());
    assert_eq!(
        holder.read_response().status,
        100,
        "the holder's body is sized"
    );
    let body = body_of(64 * 1024, 1);
    let (mut cl, te) = twin_heads(body.len());
    cl.extend_from_slice(&body);
    assert_eq!(verdict_once(srv.addr, &cl), (503, None), "Content-Length");
    for style in [Style::Single, Style::Mixed] {
        let mut req = te.clone();
        req.extend_from_slice(&frame(&body, style, 1));
        assert_eq!(verdict_once(srv.addr, &req), (503, None), "chunked");
    }
    drop(holder);
}

// ------------------------------------------------------------------ TLS

/// The same pipelined mixes over TLS, where the server reads plaintext out of records
/// (a read may stop inside a record, and plaintext may wait in the TLS layer with no new
/// socket edge). The tests above speak plain TCP to a local tunnel that carries each
/// write as TLS records to the server, and the server's answers back.
#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use std::net::{SocketAddr, TcpListener};
    use std::sync::Arc;

    const CERT: &str = include_str!("data/localhost-cert.pem");
    const KEY: &str = include_str!("data/localhost-key.pem");

    fn client_config() -> Arc<rustls::ClientConfig> {
        tls_client_config(&[b"http/1.1"])
    }

    /// Carries one plain connection as TLS to `server`, both ways, until either side
    /// ends (bounded: 60 s).
    fn carry(mut plain: TcpStream, server: SocketAddr) {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = rustls::ClientConnection::new(client_config(), name).unwrap();
        let mut sock = connect(server);
        while tls.is_handshaking() {
            tls.complete_io(&mut sock).expect("handshake");
        }
        plain.set_nonblocking(true).unwrap();
        sock.set_nonblocking(true).unwrap();
        let t0 = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        let mut plain_open = true;
        while t0.elapsed() < Duration::from_secs(60) {
            let mut idle = true;
            if plain_open {
                match plain.read(&mut buf) {
                    Ok(0) => {
                        plain_open = false;
                        tls.send_close_notify();
                    }
                    Ok(n) => {
                        idle = false;
                        tls.writer().write_all(&buf[..n]).unwrap();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
            while tls.wants_write() {
                match tls.write_tls(&mut sock) {
                    Ok(_) => idle = false,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(_) => return,
                }
            }
            match tls.read_tls(&mut sock) {
                Ok(0) => {
                    let _ = plain.shutdown(std::net::Shutdown::Write);
                    return;
                }
                Ok(_) => {
                    idle = false;
                    if tls.process_new_packets().is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
            loop {
                match tls.reader().read(&mut buf) {
                    Ok(0) => {
                        let _ = plain.shutdown(std::net::Shutdown::Write);
                        return;
                    }
                    Ok(n) => {
                        plain.set_nonblocking(false).unwrap();
                        if plain.write_all(&buf[..n]).is_err() {
                            return;
                        }
                        plain.set_nonblocking(true).unwrap();
                    }
                    Err(_) => break,
                }
            }
            if idle {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// A local plain-TCP address whose connections are carried as TLS to `server`.
    fn tunnel(server: SocketAddr) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { return };
                std::thread::spawn(move || carry(c, server));
            }
        });
        addr
    }

    #[test]
    fn pipelined_mixes_over_tls_give_the_same_answers_whole_and_split() {
        let dir = TempDir::new("chunked-attack-tls");
        std::fs::write(dir.0.join("cert.pem"), CERT).unwrap();
        std::fs::write(dir.0.join("key.pem"), KEY).unwrap();
        let cfg = test_config().with_tls(dir.0.join("cert.pem"), dir.0.join("key.pem"));
        let srv = TestServer::with_config(cfg, app);
        let addr = tunnel(srv.addr);
        for (m, items) in mixes().iter().enumerate() {
            let seed = 100 * m as u64;
            run(addr, items, Split::Whole, seed);
            for s in 0..3 {
                run(addr, items, Split::Random(seed + s, 40), seed);
            }
            run(addr, items, Split::Random(seed + 7, 3000), seed);
        }
        let items = vec![
            Item::Chunked("/c1", body_of(40, 1), Style::Mixed, true),
            Item::Get("/g"),
            Item::Chunked("/c2", body_of(20, 2), Style::Ones, false),
            Item::Stream,
            Item::Cl("/l", body_of(10, 4), false),
        ];
        run(addr, &items, Split::Bytes, 7);
    }

    /// The memory budget's edge over TLS: the verdicts of the plain-TCP test.
    #[test]
    fn a_chunked_body_at_the_budget_s_edge_over_tls() {
        let dir = TempDir::new("chunked-attack-tls-edge");
        std::fs::write(dir.0.join("cert.pem"), CERT).unwrap();
        std::fs::write(dir.0.join("key.pem"), KEY).unwrap();
        let cfg = test_config().with_tls(dir.0.join("cert.pem"), dir.0.join("key.pem"));
        let srv = TestServer::with_config(edge_config(cfg), app);
        let diffs = budget_edge_diffs(tunnel(srv.addr));
        assert!(
            diffs.is_empty(),
            "(size, edge, Content-Length, chunked): {diffs:?}"
        );
    }

    /// `max_body_bytes` at its edge over TLS: the verdicts of the plain-TCP test.
    #[test]
    fn max_body_bytes_at_its_edge_over_tls() {
        const MAX: usize = 20_000;
        let dir = TempDir::new("chunked-attack-tls-max");
        std::fs::write(dir.0.join("cert.pem"), CERT).unwrap();
        std::fs::write(dir.0.join("key.pem"), KEY).unwrap();
        let cfg = Config {
            max_body_bytes: MAX as u64,
            max_buffered_bytes: 64 * 1024,
            ..test_config().with_tls(dir.0.join("cert.pem"), dir.0.join("key.pem"))
        };
        let srv = TestServer::with_config(cfg, app);
        let addr = tunnel(srv.addr);
        for n in [MAX - 1, MAX, MAX + 1] {
            let body = body_of(n, n as u64);
            let (_, te) = twin_heads(n);
            let want = if n <= MAX {
                (200, Some(200))
            } else {
                (413, None)
            };
            for style in [Style::Single, Style::Mixed, Style::Ones] {
                let mut req = te.clone();
                req.extend_from_slice(&frame(&body, style, 9));
                assert_eq!(verdict(addr, &req), want, "chunked, {n} bytes");
            }
        }
    }
}

/// Transfer-Encoding forms a chunked body must not be read past: whatever the verdict on
/// the request, the bytes behind it (a request in the body's place) are never answered,
/// and the connection closes (RFC 9112 §6.1, §6.3).
#[test]
fn doubtful_transfer_encodings_never_answer_the_bytes_behind() {
    let srv = TestServer::start(app);
    let heads: &[&str] = &[
        // RFC 9112 §6.1: HTTP/1.0 with Transfer-Encoding: faulty framing, close after.
        "POST /x HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
        "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n",
        "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n",
        "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n",
        "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  chunked \r\nConnection: close\r\n",
    ];
    for h in heads {
        for lead in [false, true] {
            let mut req = Vec::new();
            if lead {
                req.extend_from_slice(b"GET /lead HTTP/1.1\r\nHost: x\r\n\r\n");
            }
            req.extend_from_slice(h.as_bytes());
            req.extend_from_slice(b"\r\n5\r\nhello\r\n0\r\n\r\n");
            req.extend_from_slice(BAIT);
            let mut c = Reader::new(connect(srv.addr));
            c.send(&req);
            c.stream.shutdown(std::net::Shutdown::Write).unwrap();
            let mut all = Vec::new();
            let _ = c.stream.read_to_end(&mut all);
            let text = String::from_utf8_lossy(&all);
            assert!(
                !text.contains("/bait"),
                "{h:?}: the bytes behind were answered:\n{text}"
            );
            assert!(
                text.matches("HTTP/1.1 ").count() <= 1 + usize::from(lead),
                "{h:?}: more answers than requests:\n{text}"
            );
        }
    }
}
