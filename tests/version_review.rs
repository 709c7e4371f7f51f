//! Attack on commit 05b839b ("HTTP/1.2 to HTTP/1.9 are read as HTTP/1.1"): such a head is
//! parsed again from a copy with the minor digit changed, and its spans are moved back
//! into the read buffer. Over real sockets: pipelined mixes of HTTP/1.0, 1.1 and 1.2..1.9
//! with Content-Length and chunked bodies, sent whole, a byte per write and split at
//! random points, each request's method, target, path, query, fields and body echoed back
//! and compared; the early verdicts and the limits with an `HTTP/1.2` head against their
//! HTTP/1.1 twins; `Expect`, `Connection: close`, upgrades, `CONNECT`, `OPTIONS *`, HEAD;
//! the proxy both ways; and what the copy costs. Only 127.0.0.1.
mod support;
#[cfg(feature = "proxy")]
#[path = "support/upstream.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::TcpStream;

use h1server::{Config, Request, Response};
use support::*;

// ------------------------------------------------------------------ allocation count

// Counts every byte allocated, all threads together (the server runs in this process):
// what the server's parse copies shows up there, whatever the machine's speed. The count
// is for all threads: the tests of this file run one at a time (`live_heap::serial`).
#[path = "support/live_heap.rs"]
mod live_heap;
use live_heap::serial;

// ------------------------------------------------------------------ the echo server

/// Echoes what the parser's spans point at: method, target, path, query, version, every
/// field line, then the body. `Upgrade: echo` is answered with 101 and a byte echo.
fn echo(req: &mut Request) -> Response {
    if req.header("upgrade") == Some("echo") {
        return Response::new(101)
            .with_header("Upgrade", "echo")
            .upgrade(echo_upgrade);
    }
    let mut s = format!(
        "{} {} {} {:?} {:?}\n",
        req.method_str(),
        req.target(),
        req.path(),
        req.query(),
        req.version()
    );
    for (n, v) in req.headers() {
        s.push_str(&format!("{n}: {v}\n"));
    }
    s.push('\n');
    s.push_str(&String::from_utf8_lossy(req.body()));
    Response::text(s)
}

/// A small xorshift generator: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A word of `lo + below(spread)` characters.
    fn word_of(&mut self, lo: usize, spread: usize) -> String {
        let len = lo + self.below(spread);
        self.word(len)
    }
    fn word(&mut self, len: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~";
        (0..len).map(|_| A[self.below(A.len())] as char).collect()
    }
}

/// One generated request: its bytes, its method, and the echo it must get.
struct Gen {
    bytes: Vec<u8>,
    method: &'static str,
    want: String,
}

/// A request of a random version (1.0 to 1.9), method, target, field lines and body
/// (Content-Length, or chunked from 1.1 on), after 0 to 2 empty lines; `big` makes its
/// field or body large, so the requests behind it start deep in the read buffer.
fn gen_request(rng: &mut Rng, i: usize, big: bool, max_body: usize) -> Gen {
    let minor = rng.below(10);
    let method = ["GET", "POST", "PUT", "DELETE", "PATCH", "FROB"][rng.below(6)];
    let mut bytes = Vec::new();
    for _ in 0..rng.below(3) {
        bytes.extend_from_slice(if rng.below(2) == 0 { b"\r\n" } else { b"\n" });
    }
    let path = format!("/p{i}/{}", rng.word_of(0, 20));
    let query = (rng.below(2) == 0).then(|| format!("q={}&i={i}", rng.word_of(0, 30)));
    let target = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let mut fields: Vec<(String, String)> = vec![
        ("Host".into(), "test".into()),
        ("X-Seq".into(), i.to_string()),
    ];
    let pad = if big && rng.below(2) == 0 {
        rng.word_of(4000, 8000)
    } else {
        rng.word_of(0, 120)
    };
    fields.push(("X-Pad".into(), pad));
    if minor == 0 {
        fields.push(("Connection".into(), "keep-alive".into()));
    }
    let body = if method == "GET" || method == "DELETE" {
        String::new()
    } else if big {
        let w = rng.word_of(20_000, 60_000);
        w[..w.len().min(max_body)].to_string()
    } else {
        rng.word_of(0, 300)
    };
    let chunked = minor > 0 && !body.is_empty() && rng.below(2) == 0;
    if chunked {
        fields.push(("Transfer-Encoding".into(), "chunked".into()));
    } else if !body.is_empty() || rng.below(2) == 0 {
        fields.push(("Content-Length".into(), body.len().to_string()));
    }
    bytes.extend_from_slice(format!("{method} {target} HTTP/1.{minor}\r\n").as_bytes());
    for (n, v) in &fields {
        bytes.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    if chunked {
        let mut rest = body.as_bytes();
        while !rest.is_empty() {
            let n = (1 + rng.below(700)).min(rest.len());
            bytes.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            bytes.extend_from_slice(&rest[..n]);
            bytes.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
    } else {
        bytes.extend_from_slice(body.as_bytes());
    }
    let version = if minor == 0 { "Http10" } else { "Http11" };
    let mut want = format!(
        "{method} {target} {path} {:?} {version}\n",
        query.as_deref()
    );
    for (n, v) in &fields {
        want.push_str(&format!("{n}: {v}\n"));
    }
    want.push('\n');
    want.push_str(&body);
    Gen {
        bytes,
        method,
        want,
    }
}

/// How the bytes go out.
#[derive(Clone, Copy, Debug)]
enum Split {
    Whole,
    BytePerWrite,
    Random(u64),
}

/// Writes `bytes` as `split` says on a thread of its own (so that answers are read while
/// it writes and neither side blocks the other); write errors end it quietly (the server
/// may close after an error verdict).
fn send_split(s: &TcpStream, bytes: Vec<u8>, split: Split) -> std::thread::JoinHandle<()> {
    let mut w = s.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut rng = Rng(match split {
            Split::Random(seed) => seed,
            _ => 1,
        });
        let mut at = 0;
        while at < bytes.len() {
            let n = match split {
                Split::Whole => bytes.len(),
                Split::BytePerWrite => 1,
                Split::Random(_) => {
                    let spread = if rng.below(4) == 0 { 3 } else { 3000 };
                    1 + rng.below(spread)
                }
            }
            .min(bytes.len() - at);
            if w.write_all(&bytes[at..at + n]).is_err() {
                return;
            }
            at += n;
        }
    })
}

fn run_pipeline(srv: &TestServer, reqs: &[Gen], split: Split) {
    let s = srv.connect();
    let bytes: Vec<u8> = reqs.iter().flat_map(|g| g.bytes.clone()).collect();
    let writer = send_split(&s, bytes, split);
    let mut r = Reader::new(s);
    for (i, g) in reqs.iter().enumerate() {
        let resp = r
            .read_response_to(g.method)
            .unwrap_or_else(|| panic!("{split:?}: no answer to request {i}"));
        assert_eq!(resp.status, 200, "{split:?}: request {i}: {}", resp.text());
        assert_eq!(resp.version, "HTTP/1.1");
        assert!(
            resp.text() == g.want,
            "{split:?}: request {i} echoed\n{}\nwanted\n{}\nsent\n{}",
            resp.text(),
            g.want,
            String::from_utf8_lossy(&g.bytes)
        );
    }
    writer.join().unwrap();
}

fn echo_server() -> TestServer {
    TestServer::with_config(
        Config {
            max_body_bytes: 128 * 1024,
            ..test_config()
        },
        echo,
    )
}

/// Every request of a pipelined mix of versions gets exactly its own answer, whether the
/// bytes came whole, a byte per write or split at random points, and whatever offset of
/// the read buffer its head starts at (big requests and empty lines before it).
#[test]
fn pipelined_mixed_versions_each_get_their_own_echo() {
    let _g = serial();
    let srv = echo_server();
    for seed in 1..=6u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let reqs: Vec<Gen> = (0..60)
            .map(|i| {
                let big = rng.below(8) == 0;
                gen_request(&mut rng, i, big, 128 * 1024)
            })
            .collect();
        run_pipeline(&srv, &reqs, Split::Whole);
        run_pipeline(&srv, &reqs, Split::Random(seed));
    }
    // A byte per write: fewer and smaller requests (each byte is a read).
    let mut rng = Rng(77);
    let reqs: Vec<Gen> = (0..25)
        .map(|i| gen_request(&mut rng, i, false, 0))
        .collect();
    run_pipeline(&srv, &reqs, Split::BytePerWrite);
}

// ------------------------------------------------------------------ early verdicts

fn small_limits() -> Config {
    Config {
        max_head_bytes: 1024,
        max_headers: 10,
        max_uri_bytes: 256,
        max_body_bytes: 4096,
        ..test_config()
    }
}

/// The status the server gives `bytes` sent as `split` (and whether it then closed).
fn verdict(srv: &TestServer, bytes: &[u8], split: Split) -> (u16, String) {
    let s = srv.connect();
    let writer = send_split(&s, bytes.to_vec(), split);
    let mut r = Reader::new(s);
    let resp = r.read_response();
    drop(r);
    let _ = writer.join();
    (resp.status, resp.text())
}

/// A head with an `HTTP/1.2` version gets the verdict of its HTTP/1.1 twin, limits and
/// early verdicts included, however the bytes were split into reads.
#[test]
fn an_http12_head_gets_its_http11_twins_verdict_whatever_the_split() {
    let _g = serial();
    let srv = TestServer::with_config(small_limits(), echo);
    let fields = |n: usize| -> String { (0..n).map(|i| format!("X-F{i}: v\r\n")).collect() };
    // A head of exactly `len` bytes.
    let sized = |len: usize| -> String {
        let base = "GET / HTTP/1.1\r\nHost: t\r\nX: \r\n\r\n".len();
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
            "a".repeat(len - base)
        )
    };
    let line_cap_target = "/".to_string() + &"a".repeat(255);
    let cases: Vec<(&str, String, u16)> = vec![
        ("plain", "GET / HTTP/1.1\r\nHost: t\r\n\r\n".into(), 200),
        (
            "method too long",
            format!("{} / HTTP/1.1\r\nHost: t\r\n\r\n", "M".repeat(40)),
            501,
        ),
        (
            "method at 32",
            format!("{} / HTTP/1.1\r\nHost: t\r\n\r\n", "M".repeat(32)),
            200,
        ),
        (
            "target at the limit",
            format!("GET {line_cap_target} HTTP/1.1\r\nHost: t\r\n\r\n"),
            200,
        ),
        (
            "32-byte method, target at the limit",
            format!(
                "{} {line_cap_target} HTTP/1.1\r\nHost: t\r\n\r\n",
                "M".repeat(32)
            ),
            200,
        ),
        (
            "request line too long",
            format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(400)),
            414,
        ),
        (
            "request line too long, no end",
            format!("GET /{}", "a".repeat(1500)),
            414,
        ),
        ("head at the limit", sized(1024), 200),
        ("head over the limit", sized(1025), 431),
        (
            "head too large, no end",
            format!("GET / HTTP/1.1\r\nHost: t\r\nX: {}", "a".repeat(2000)),
            431,
        ),
        (
            "headers at the limit",
            format!("GET / HTTP/1.1\r\nHost: t\r\n{}\r\n", fields(9)),
            200,
        ),
        (
            "too many headers",
            format!("GET / HTTP/1.1\r\nHost: t\r\n{}\r\n", fields(10)),
            431,
        ),
        (
            "space before colon",
            "GET / HTTP/1.1\r\nHost : t\r\n\r\n".into(),
            400,
        ),
        ("bare CR", "GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n".into(), 400),
        (
            "space after version",
            "GET / HTTP/1.1 \r\nHost: t\r\n\r\n".into(),
            400,
        ),
        (
            "body too large",
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n".into(),
            413,
        ),
        (
            "CL and TE",
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .into(),
            400,
        ),
        ("no Host", "GET / HTTP/1.1\r\n\r\n".into(), 400),
        (
            "leading empty lines",
            "\r\n\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n".into(),
            200,
        ),
        ("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n".into(), 0),
        ("GET *", "GET * HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        (
            "CONNECT",
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n".into(),
            0,
        ),
        (
            "CONNECT with a path",
            "CONNECT /x HTTP/1.1\r\nHost: t\r\n\r\n".into(),
            400,
        ),
    ];
    for (name, twin, want) in &cases {
        let (twin_status, _) = verdict(&srv, twin.as_bytes(), Split::Whole);
        if *want != 0 {
            assert_eq!(twin_status, *want, "{name} (HTTP/1.1)");
        }
        for split in [
            Split::Whole,
            Split::BytePerWrite,
            Split::Random(3),
            Split::Random(11),
        ] {
            let (twin_status, twin_body) = verdict(&srv, twin.as_bytes(), split);
            for minor in ['2', '9'] {
                let v1x = twin.replacen("HTTP/1.1", &format!("HTTP/1.{minor}"), 1);
                let (st, body) = verdict(&srv, v1x.as_bytes(), split);
                assert_eq!(
                    st, twin_status,
                    "{name} HTTP/1.{minor} {split:?}: {body} (HTTP/1.1 twin: {twin_body})"
                );
                if st == 200 {
                    assert_eq!(body, twin_body, "{name} HTTP/1.{minor} {split:?}");
                }
            }
        }
    }
}

/// Versions that are still refused: another major version (505), a two-digit minor
/// (400), whatever the split.
#[test]
fn other_major_versions_and_malformed_ones_stay_refused() {
    let _g = serial();
    let srv = TestServer::with_config(small_limits(), echo);
    for (v, want) in [
        ("HTTP/2.0", 505),
        ("HTTP/0.9", 505),
        ("HTTP/9.2", 505),
        ("HTTP/1.10", 400),
        ("HTTP/1.2.", 400),
        ("HTTP/1.a", 400),
        ("http/1.2", 400),
        ("HTTP/1.", 400),
        ("HTTP/12", 400),
    ] {
        let req = format!("GET / {v}\r\nHost: t\r\n\r\n");
        for split in [Split::Whole, Split::BytePerWrite, Split::Random(5)] {
            let (st, body) = verdict(&srv, req.as_bytes(), split);
            assert_eq!(st, want, "{v} {split:?}: {body}");
        }
    }
}

// ------------------------------------------------------------------ semantics of 1.1

/// Read as HTTP/1.1: `Expect: 100-continue` gets its `100`, `Connection: close` closes,
/// HEAD has no body, the upgrade hands over the connection.
#[test]
fn http12_expect_close_head_and_upgrade_behave_as_http11() {
    let _g = serial();
    let srv = echo_server();
    // Expect: 100-continue: the 100 comes before the body is sent.
    let mut r = Reader::new(srv.connect());
    r.send(b"POST /e?x HTTP/1.2\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = r.read_response();
    assert_eq!(interim.status, 100, "{interim:?}");
    r.send(b"hello");
    let resp = r.read_response_to("POST").unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp.text().starts_with("POST /e?x /e Some(\"x\") Http11\n"));
    assert!(resp.text().ends_with("\n\nhello"), "{}", resp.text());
    // Connection: close: answered, then closed.
    r.send(b"GET /c HTTP/1.3\r\nHost: t\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(resp.text().starts_with("GET /c /c None Http11\n"));
    assert!(r.is_closed());
    // HEAD: the GET's length, no body; the next request on the connection is read right.
    let mut r = Reader::new(srv.connect());
    r.send(b"HEAD /h HTTP/1.2\r\nHost: t\r\n\r\nGET /h HTTP/1.2\r\nHost: t\r\n\r\n");
    let head = r.read_response_to("HEAD").unwrap();
    let get = r.read_response_to("GET").unwrap();
    assert_eq!(head.status, 200);
    assert!(get.text().starts_with("GET /h /h None Http11\n"));
    assert_eq!(
        head.header("content-length")
            .map(|v| v.parse::<usize>().unwrap()),
        Some(get.body.len() + 1), // "HEAD" is one letter longer than "GET"
    );
    // An upgrade: 101, then the bytes that came with the head are echoed by the new protocol.
    let mut s = srv.connect();
    s.write_all(b"GET /u HTTP/1.2\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly")
        .unwrap();
    let head = upgrade_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let mut got = [0u8; 5];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"early");
}

// ------------------------------------------------------------------ cost of the copy

/// Sends `n` pipelined GETs of version `v` on one connection, in one write, and reads
/// their answers; returns the bytes the process allocated meanwhile.
fn allocated_for_pipeline(srv: &TestServer, v: &str, n: usize) -> u64 {
    let s = srv.connect();
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.extend_from_slice(format!("GET /{i:04} {v}\r\nHost: t\r\n\r\n").as_bytes());
    }
    let before = live_heap::allocated_bytes();
    let writer = send_split(&s, bytes, Split::Whole);
    let mut r = Reader::new(s);
    for i in 0..n {
        let resp = r.read_response();
        assert_eq!(resp.text(), format!("/{i:04}"));
    }
    let after = live_heap::allocated_bytes();
    writer.join().unwrap();
    after - before
}

/// Many small `HTTP/1.2` requests pipelined into one read buffer: each head is parsed
/// from a copy, and the copy must be of that head, not of everything behind it in the
/// buffer (up to `max_head_bytes`), or a buffer of n requests costs n times its size.
/// Measured in bytes allocated (the copies), against the same requests as HTTP/1.1.
#[test]
fn pipelined_http12_heads_copy_only_their_own_bytes() {
    let _g = serial();
    let srv = TestServer::with_config(
        Config {
            max_batch: 1024,
            ..test_config()
        },
        |req: &mut Request| Response::text(req.target().to_string()),
    );
    let n = 1000;
    // Warm up (buffers, pools), then measure.
    allocated_for_pipeline(&srv, "HTTP/1.1", n);
    let base = allocated_for_pipeline(&srv, "HTTP/1.1", n);
    let v12 = allocated_for_pipeline(&srv, "HTTP/1.2", n);
    // A head is ~30 bytes: a copy of each is a few dozen KiB for all of them, against
    // megabytes when each copy takes the buffer behind it.
    eprintln!("allocated for {n} pipelined requests: HTTP/1.1 {base} bytes, HTTP/1.2 {v12}");
    let extra = v12.saturating_sub(base);
    assert!(
        extra < base / 2 + (n as u64) * 256,
        "HTTP/1.1: {base} bytes allocated for {n} requests, HTTP/1.2: {v12}"
    );
}

// ------------------------------------------------------------------ the proxy

#[cfg(feature = "proxy")]
mod proxy {
    use super::upstream::{Reply, Upstream};
    use super::*;
    use h1server::proxy::ReverseProxy;

    /// An upstream answering `HTTP/1.2 200` (and 1.9) with a Content-Length, chunked and
    /// close-delimited body: read as HTTP/1.1 (so the connection is reused after the first
    /// two), and a client's `HTTP/1.2` request goes upstream as HTTP/1.1.
    #[test]
    fn the_proxy_reads_http12_answers_as_http11_and_forwards_http12_requests_as_11() {
        let _g = serial();
        let up = Upstream::start(vec![
            Reply::Raw("HTTP/1.2 200 OK\r\nContent-Length: 5\r\n\r\nhello".into()),
            Reply::Raw(
                "\r\nHTTP/1.9 201 Made\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n3\r\n!!!\r\n0\r\n\r\n"
                    .into(),
            ),
            Reply::RawThenClose("HTTP/1.2 200 OK\r\nX-Kind: eof\r\n\r\nuntil close".into()),
            Reply::Raw("HTTP/1.2 204 No Content\r\n\r\n".into()),
        ]);
        let gw = TestServer::with_config(
            test_config(),
            ReverseProxy::builder()
                .route("/", [up.url("")])
                .build()
                .unwrap(),
        );
        let mut r = Reader::new(gw.connect());
        r.send(b"GET /a HTTP/1.2\r\nHost: gw\r\n\r\n");
        let a = r.read_response();
        assert_eq!((a.status, a.text().as_str()), (200, "hello"), "{a:?}");
        r.send(b"POST /b?q=1 HTTP/1.7\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        let b = r.read_response_to("POST").unwrap();
        assert_eq!((b.status, b.text().as_str()), (201, "hi!!!"), "{b:?}");
        r.send(b"GET /c HTTP/1.2\r\nHost: gw\r\n\r\n");
        let c = r.read_response();
        assert_eq!((c.status, c.text().as_str()), (200, "until close"), "{c:?}");
        r.send(b"GET /d HTTP/1.2\r\nHost: gw\r\n\r\n");
        let d = r.read_response();
        assert_eq!(d.status, 204, "{d:?}");
        assert_eq!(d.version, "HTTP/1.1");
        let seen = up.requests();
        let lines: Vec<(&str, usize)> = seen.iter().map(|s| (s.line(), s.conn)).collect();
        assert_eq!(
            lines,
            [
                ("GET /a HTTP/1.1", 0),
                ("POST /b?q=1 HTTP/1.1", 0),
                ("GET /c HTTP/1.1", 0),
                ("GET /d HTTP/1.1", 1),
            ],
            "the first two answers leave the upstream connection reusable, the third does not"
        );
        assert_eq!(seen[1].body, b"abc");
    }

    /// The blocking client against the same kind of upstream.
    #[test]
    fn the_client_reads_http12_answers_as_http11() {
        let _g = serial();
        let up = Upstream::start(vec![
            Reply::Raw("HTTP/1.2 200 OK\r\nContent-Length: 5\r\n\r\nhello".into()),
            Reply::Raw(
                "HTTP/1.9 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n".into(),
            ),
            Reply::Raw("HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok".into()),
        ]);
        let client = h1server::client::Client::new();
        for want in ["hello", "hi", "ok"] {
            let resp = client.get(&up.url("/x")).send().unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.text().unwrap(), want);
        }
        let conns: Vec<usize> = up.requests().iter().map(|s| s.conn).collect();
        assert_eq!(conns, [0, 0, 0], "one pooled connection");
    }
}

/// A WebSocket handshake (RFC 6455 §4.2.1 asks for "HTTP/1.1 or higher") in `HTTP/1.2`
/// is accepted like its HTTP/1.1 twin, and the connection is handed over.
#[cfg(feature = "ws")]
#[test]
fn an_http12_websocket_handshake_is_accepted_like_its_http11_twin() {
    use h1server::ws::handshake;
    let _g = serial();
    let srv = TestServer::start(|req: &mut Request| match handshake::check(req) {
        Ok(a) => a.response().upgrade(echo_upgrade),
        Err(e) => e.response(),
    });
    let mut heads = Vec::new();
    for v in ["HTTP/1.1", "HTTP/1.2"] {
        let mut s = srv.connect();
        let req = format!(
            "GET /ws {v}\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nafter"
        );
        s.write_all(req.as_bytes()).unwrap();
        let head = upgrade_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 101 "), "{v}: {head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{v}: {head}");
        let mut got = [0u8; 5];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"after", "{v}");
        heads.push(head);
    }
    assert_eq!(heads[0], heads[1]);
}
