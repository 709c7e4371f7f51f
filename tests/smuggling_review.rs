//! Request smuggling and message-framing desyncs, reviewed as a third-party suite would
//! (http-garden, smuggler.py, PortSwigger's desync techniques, RFC 9112 §6's
//! message-body-length rules), in both roles:
//!
//! * server: each ambiguous or odd message is sent on a connection followed by a closing
//!   request; the sequence of answers (a transcript) must be the one the RFC asks for, and
//!   the same whether the bytes arrive at once or one by one — an answer that depends on
//!   how the bytes were split is a desync of its own;
//! * proxy: what goes upstream is framed once and unambiguously, and what a broken
//!   upstream sends (two framings, a body where none may be, more than it announced) never
//!   reaches the client as the answer to another request.
//!
//! Every test speaks raw bytes over real sockets on 127.0.0.1 (see `support`).

mod support;
use support::*;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use h1server::{Config, Request, Response};

/// Echoes what the server understood, in a header (`X-Echo: METHOD path "body"`), with an
/// empty body, so that answers to GET and HEAD read the same.
fn echo(req: &mut Request) -> Response {
    let echo = format!(
        "{} {} {:?}",
        req.method_str(),
        req.path(),
        String::from_utf8_lossy(req.body())
    );
    Response::new(200).with_header("X-Echo", echo)
}

fn echo_server() -> TestServer {
    let cfg = Config {
        max_body_bytes: 1024,
        ..test_config()
    };
    TestServer::with_config(cfg, echo)
}

/// The request that ends every case's connection, if the case left it open.
const END: &str = "GET /end HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// How the bytes of a case go out.
#[derive(Clone, Copy, Debug)]
enum Split {
    /// One write.
    Whole,
    /// One read per byte (`send_paced`).
    Bytes,
}

/// Bytes the server has read, on all its connections.
fn bytes_read(srv: &TestServer) -> u64 {
    srv.handle().telemetry().snapshot().bytes_in
}

/// True once the server has sent something (or closed): a peek that does not block.
fn answered(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let got = s.peek(&mut [0u8; 1]);
    s.set_nonblocking(false).unwrap();
    !matches!(got, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Sends `bytes` one at a time, each only once the server has read the one before (its
/// byte count says so), so that every byte is a read of its own. Once the server answers
/// (an error it closes after, or a request answered) the rest goes in one write: the
/// server may stop reading.
fn send_paced(srv: &TestServer, s: &mut TcpStream, bytes: &[u8]) {
    let base = bytes_read(srv);
    for (i, b) in bytes.iter().enumerate() {
        if answered(s) {
            let _ = s.write_all(&bytes[i..]);
            return;
        }
        if s.write_all(std::slice::from_ref(b)).is_err() {
            return;
        }
        let sent = base + i as u64 + 1;
        let t0 = Instant::now();
        while bytes_read(srv) < sent && !answered(s) {
            assert!(t0.elapsed() < IO_TIMEOUT, "the server read nothing more");
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// The answers to `bytes` on one connection, in order, until the server closes it: each
/// final answer as `STATUS X-Echo` (`STATUS message` for the server's own errors), interim
/// answers as `1xx`. Write errors after the server's close are ignored (the rest of a
/// rejected message may not be taken).
fn transcript(srv: &TestServer, bytes: &[u8], split: Split) -> Vec<String> {
    let mut r = Reader::new(srv.connect());
    match split {
        Split::Whole => {
            let _ = r.stream.write_all(bytes);
        }
        Split::Bytes => send_paced(srv, &mut r.stream, bytes),
    }
    let mut out = Vec::new();
    for _ in 0..32 {
        // Read as answers to HEAD: the echo's answers have no body (`Content-Length: 0`,
        // none at all to HEAD), and the server's own errors end the connection, so their
        // body is the last thing on it.
        let Some(resp) = r.read_response_to("HEAD") else {
            return out;
        };
        match resp.header("x-echo") {
            Some(e) => out.push(format!("{} {e}", resp.status)),
            None if resp.status < 200 => out.push(resp.status.to_string()),
            None => {
                if !r.is_closed() {
                    out.push("not closed after the error".into());
                }
                // The error's body (not read as an answer to HEAD) is what is left.
                let why = String::from_utf8_lossy(r.leftover()).trim().to_string();
                out.insert(out.len(), format!("{} {why}", resp.status));
                return out;
            }
        }
    }
    panic!("more than 32 answers: {out:?}");
}

/// A case: the bytes, and the final answers they must get (interim ones aside).
struct Case {
    name: &'static str,
    bytes: String,
    want: Vec<&'static str>,
}

fn case(name: &'static str, bytes: impl Into<String>, want: &[&'static str]) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        want: want.to_vec(),
    }
}

/// Runs every case whole and byte by byte; fails once, listing every case whose answers
/// are not the wanted ones.
fn run(cases: &[Case]) {
    let srv = echo_server();
    let mut failures = Vec::new();
    for c in cases {
        let mut runs = Vec::new();
        for split in [Split::Whole, Split::Bytes] {
            let got = finals(transcript(&srv, c.bytes.as_bytes(), split));
            let statuses: Vec<&str> = got.iter().map(|a| status_of(a)).collect();
            if statuses != c.want {
                failures.push(format!(
                    "[{}] sent {split:?}: {:?}\n    got  {got:?}\n    want {:?}",
                    c.name, c.bytes, c.want
                ));
            }
            runs.push(got);
        }
        if runs[0] != runs[1] {
            failures.push(format!(
                "[{}] whole {:?}, byte by byte {:?}",
                c.name, runs[0], runs[1]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        cases.len() * 2,
        failures.join("\n")
    );
}

/// The final answers of a transcript (interim ones may come or not: RFC 9110 §10.1.1
/// lets a server that has the body already skip `100 Continue`).
fn finals(t: Vec<String>) -> Vec<String> {
    t.into_iter().filter(|a| !a.starts_with('1')).collect()
}

/// An answer as the cases state it: `STATUS X-Echo`, or `STATUS` alone for an error.
fn status_of(answer: &str) -> &str {
    if answer.starts_with("200 ") {
        answer
    } else {
        &answer[..answer.len().min(3)]
    }
}

fn post(fields: &str, body: &str) -> String {
    format!("POST /p HTTP/1.1\r\nHost: t\r\n{fields}\r\n{body}{END}")
}

const CHUNKED_HELLO: &str = "5\r\nhello\r\n0\r\n\r\n";

// ---------------------------------------------------------------- Transfer-Encoding

/// RFC 9112 §6.1, §6.3 item 4, §7: what counts as `chunked` last, and what does not.
#[test]
fn transfer_encoding_values_are_read_one_way_whatever_the_split() {
    let ok = ["200 POST /p \"hello\"", "200 GET /end \"\""];
    let cases = [
        // RFC 9110 §5.6.1: empty list elements are ignored.
        case(
            "empty element before chunked",
            post("Transfer-Encoding: , chunked\r\n", CHUNKED_HELLO),
            &ok,
        ),
        case(
            "empty element after chunked",
            post("Transfer-Encoding: chunked,\r\n", CHUNKED_HELLO),
            &ok,
        ),
        // RFC 9112 §7: "All transfer-coding names are case-insensitive".
        case(
            "upper case",
            post("Transfer-Encoding: CHUNKED\r\n", CHUNKED_HELLO),
            &ok,
        ),
        case(
            "tabs around the value",
            post("Transfer-Encoding:\tchunked\t\r\n", CHUNKED_HELLO),
            &ok,
        ),
        case(
            "GET with a chunked body",
            format!(
                "GET /g HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{CHUNKED_HELLO}{END}"
            ),
            &["200 GET /g \"hello\"", "200 GET /end \"\""],
        ),
        // Not chunked last: RFC 9112 §6.3 item 4, 400 and close.
        case(
            "identity",
            post("Transfer-Encoding: identity\r\n", "hello"),
            &["400"],
        ),
        case(
            "chunked, identity",
            post("Transfer-Encoding: chunked, identity\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "xchunked",
            post("Transfer-Encoding: xchunked\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "quoted chunked",
            post("Transfer-Encoding: \"chunked\"\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "chunked with a parameter",
            post("Transfer-Encoding: chunked;q=1\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "empty Transfer-Encoding with a Content-Length",
            post("Transfer-Encoding:\r\nContent-Length: 5\r\n", "hello"),
            &["400"],
        ),
        case(
            "identity with a Content-Length",
            post(
                "Transfer-Encoding: identity\r\nContent-Length: 5\r\n",
                "hello",
            ),
            &["400"],
        ),
        case(
            "chunked with Content-Length: 0",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
                CHUNKED_HELLO,
            ),
            &["400"],
        ),
        // A coding the server does not implement, chunked last: 501 (RFC 9112 §6.1), close.
        case(
            "identity, chunked",
            post("Transfer-Encoding: identity, chunked\r\n", CHUNKED_HELLO),
            &["501"],
        ),
        // Field names are tokens: a name that only looks like Transfer-Encoding is
        // another field, or a malformed line.
        case(
            "vertical tab before the value",
            post("Transfer-Encoding:\x0bchunked\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "NUL in the name",
            post("Transfer-Encoding\0: chunked\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "whitespace line before the first field (RFC 9112 §2.2)",
            format!(
                "POST /p HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: t\r\n\r\n{CHUNKED_HELLO}{END}"
            ),
            &["400"],
        ),
    ];
    run(&cases);
}

// ---------------------------------------------------------------- Content-Length

/// RFC 9110 §8.6 (`Content-Length = 1*DIGIT`), RFC 9112 §6.3 item 5.
#[test]
fn content_length_values_are_read_one_way_whatever_the_split() {
    let ok = ["200 POST /p \"hello\"", "200 GET /end \"\""];
    let cases = [
        case(
            "leading zeros",
            post("Content-Length: 0005\r\n", "hello"),
            &ok,
        ),
        case("OWS around", post("Content-Length: \t5 \r\n", "hello"), &ok),
        case(
            "zero, then a request where a body would be",
            post("Content-Length: 0\r\n", ""),
            &["200 POST /p \"\"", "200 GET /end \"\""],
        ),
        case(
            "GET with a body, then a request",
            format!("GET /g HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello{END}"),
            &["200 GET /g \"hello\"", "200 GET /end \"\""],
        ),
        case(
            "HEAD with a body, then a request",
            format!("HEAD /h HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello{END}"),
            &["200 HEAD /h \"hello\"", "200 GET /end \"\""],
        ),
        case(
            "HTTP/1.0 keep-alive with a body, then a request",
            format!(
                "POST /o HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello{END}"
            ),
            &["200 POST /o \"hello\"", "200 GET /end \"\""],
        ),
        case(
            "a body that holds a request",
            post(
                "Content-Length: 35\r\n",
                "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
            ),
            &[
                "200 POST /p \"GET /smuggled HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n\"",
                "200 GET /end \"\"",
            ],
        ),
        case(
            "same value twice, two spellings of the name",
            post("content-length: 5\r\nContent-Length: 5\r\n", "hello"),
            &["400"],
        ),
        case(
            "list with an empty element",
            post("Content-Length: 5,\r\n", "hello"),
            &["400"],
        ),
        case(
            "u64::MAX + 1",
            post("Content-Length: 18446744073709551616\r\n", "hello"),
            &["400"],
        ),
        case(
            "u64::MAX",
            post("Content-Length: 18446744073709551615\r\n", "hello"),
            &["413"],
        ),
        case(
            "underscore",
            post("Content-Length: 1_0\r\n", "hello"),
            &["400"],
        ),
        case(
            "Content-Length in an HTTP/1.0 request with Transfer-Encoding",
            format!(
                "POST /o HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello{END}"
            ),
            &["400"],
        ),
    ];
    run(&cases);
}

// ---------------------------------------------------------------- chunked framing

/// RFC 9112 §7.1: chunk sizes, extensions, data CRLF, trailers.
#[test]
fn chunked_framing_is_read_one_way_whatever_the_split() {
    let te = "Transfer-Encoding: chunked\r\n";
    let ok = ["200 POST /p \"hello\"", "200 GET /end \"\""];
    let cases = [
        case(
            "leading zeros in the size",
            post(te, "0005\r\nhello\r\n0\r\n\r\n"),
            &ok,
        ),
        case(
            "upper-case hex",
            post(te, "A\r\nhellohello\r\n0\r\n\r\n"),
            &["200 POST /p \"hellohello\"", "200 GET /end \"\""],
        ),
        case(
            "quoted extension with ; and an escaped quote",
            post(te, "5;a=\"x;y\\\"z\"\r\nhello\r\n0;b\r\n\r\n"),
            &ok,
        ),
        case(
            "trailers naming framing fields do not frame anything",
            post(
                te,
                "5\r\nhello\r\n0\r\nContent-Length: 50\r\nTransfer-Encoding: gzip\r\n\r\n",
            ),
            &ok,
        ),
        case(
            "a request right after the last chunk",
            post(
                te,
                "5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n",
            ),
            &[
                "200 POST /p \"hello\"",
                "200 GET /next \"\"",
                "200 GET /end \"\"",
            ],
        ),
        case(
            "CRLF inside a quoted extension",
            post(te, "5;a=\"x\r\nGET /s HTTP/1.1\"\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case(
            "unterminated quoted extension",
            post(te, "5;a=\"x\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case(
            "17 digits of size",
            post(te, "00000000000000005\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case("plus sign", post(te, "+5\r\nhello\r\n0\r\n\r\n"), &["400"]),
        case(
            "leading space",
            post(te, " 5\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case(
            "NUL after the size",
            post(te, "5\0\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case(
            "no empty line after the last chunk: a request read as a trailer",
            post(te, "0\r\nGET /s HTTP/1.1\r\nHost: t\r\n\r\n"),
            &["400"],
        ),
        case(
            "data shorter than its size",
            post(te, "6\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case(
            "obs-fold in a trailer",
            post(te, "0\r\nX-A: a\r\n b\r\n\r\n"),
            &["400"],
        ),
        case(
            "space before a trailer's colon",
            post(te, "0\r\nX-A : b\r\n\r\n"),
            &["400"],
        ),
        case(
            "trailer without a colon",
            post(te, "0\r\nX-A\r\n\r\n"),
            &["400"],
        ),
        case(
            "DEL in a trailer value",
            post(te, "0\r\nX-A: a\x7fb\r\n\r\n"),
            &["400"],
        ),
    ];
    run(&cases);
}

// ---------------------------------------------------------------- heads

/// RFC 9112 §2.2, §3, §5: request lines and field lines.
#[test]
fn odd_heads_are_read_one_way_whatever_the_split() {
    let cases = [
        case(
            "trailing space after the version",
            format!("GET / HTTP/1.1 \r\nHost: t\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "HTTP/1.10",
            format!("GET / HTTP/1.10\r\nHost: t\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "HTTP/01.1",
            format!("GET / HTTP/01.1\r\nHost: t\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "tab between method and target",
            format!("GET\t/ HTTP/1.1\r\nHost: t\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "absolute-form with another Host",
            format!("GET http://t/abs HTTP/1.1\r\nHost: other\r\n\r\n{END}"),
            &["200 GET /abs \"\"", "200 GET /end \"\""],
        ),
        case(
            "DEL in a field value",
            format!("GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x7fb\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "a line of spaces among the fields",
            format!("GET / HTTP/1.1\r\nHost: t\r\n   \r\nX-A: b\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "bare CR starting a line",
            format!("GET / HTTP/1.1\r\nHost: t\r\n\rX-A: b\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "Expect: 100-continue, body sent at once, then a request",
            post("Expect: 100-continue\r\nContent-Length: 5\r\n", "hello"),
            &["200 POST /p \"hello\"", "200 GET /end \"\""],
        ),
        case(
            "Expect: 100-continue on a chunked body, then a request",
            post(
                "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n",
                CHUNKED_HELLO,
            ),
            &["200 POST /p \"hello\"", "200 GET /end \"\""],
        ),
    ];
    run(&cases);
}

/// RFC 9110 §15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client", and
/// §10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0 request.
#[test]
fn no_100_continue_goes_to_an_http10_client_however_its_body_arrives() {
    let srv = echo_server();
    let req = format!(
        "POST /o HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\
         Content-Length: 5\r\n\r\nhello{END}"
    );
    for split in [Split::Whole, Split::Bytes] {
        let got = transcript(&srv, req.as_bytes(), split);
        assert_eq!(
            got,
            ["200 POST /o \"hello\"", "200 GET /end \"\""],
            "{split:?}"
        );
    }
}

// ---------------------------------------------------------------- early verdicts

/// A server with small head limits, for the verdicts given before a head is complete.
fn small_head_server() -> TestServer {
    let cfg = Config {
        max_uri_bytes: 1024,
        max_head_bytes: 4096,
        max_body_bytes: 1024,
        ..test_config()
    };
    TestServer::with_config(cfg, echo)
}

/// The answer to the first request of `bytes`, sent whole and byte by byte, on `srv`.
fn both_ways(srv: &TestServer, bytes: &[u8]) -> [Vec<String>; 2] {
    [
        transcript(srv, bytes, Split::Whole),
        transcript(srv, bytes, Split::Bytes),
    ]
}

/// The verdict on a head that is still arriving (414, 431) is given as soon as a limit
/// is passed; the verdict on the same head arriving in one read must be the same, or an
/// answer depends on how the bytes were split (a request served or refused by chance).
///
/// A 30-byte extension method (RFC 9110 §9.1: `method = token`; up to 32 bytes are
/// routed) with a target exactly at `max_uri_bytes` is a valid request: served whole. Sent
/// byte by byte it got `414`, since the unfinished request line was cut off at
/// `max_uri_bytes + 32` bytes, which leaves no room for a long method.
#[test]
fn a_long_method_with_a_target_at_the_limit_is_served_however_it_arrives() {
    let srv = small_head_server();
    let method = "M".repeat(30);
    let target = format!("/{}", "t".repeat(1023));
    let req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n\r\n{END}");
    let want = [
        format!("200 {method} {target} \"\""),
        "200 GET /end \"\"".into(),
    ];
    for (split, got) in ["whole", "byte by byte"]
        .iter()
        .zip(both_ways(&srv, req.as_bytes()))
    {
        assert_eq!(got, want, "sent {split}");
    }
}

/// Heads that break a limit and have another fault further on, or whose fault shows only
/// once a line is complete: the answer (status and message) is the same whichever way the
/// bytes arrive — the fault met first in the byte stream decides, as it does for a head
/// that trickles in.
#[test]
fn a_head_past_a_limit_gets_one_verdict_however_it_arrives() {
    let srv = small_head_server();
    let long_target = format!("/{}", "t".repeat(1200));
    let pad = "p".repeat(1000);
    let big = format!("X-A: {pad}\r\nX-B: {pad}\r\nX-C: {pad}\r\nX-D: {pad}\r\nX-E: {pad}\r\n");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "target past the limit, then an unsupported version",
            format!("GET {long_target} HTTP/2.0\r\nHost: t\r\n\r\n"),
            "414",
        ),
        (
            "target past the limit, then a bad field line",
            format!("GET {long_target} HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n"),
            "414",
        ),
        (
            "head past the limit, then a bad field line",
            format!("GET / HTTP/1.1\r\nHost: t\r\n{big}Bad Name: x\r\n\r\n"),
            "431",
        ),
        (
            "whitespace before a colon (RFC 9112 §5.1)",
            "GET / HTTP/1.1\r\nHost : t\r\n\r\n".into(),
            "400",
        ),
        (
            "tab before a colon",
            "GET / HTTP/1.1\r\nHost: t\r\nX-A\t: b\r\n\r\n".into(),
            "400",
        ),
        (
            "head past the limit, then whitespace before a colon",
            format!("GET / HTTP/1.1\r\nHost: t\r\n{big}X-F : x\r\n\r\n"),
            "431",
        ),
    ];
    let mut failures = Vec::new();
    for (name, req, want) in cases {
        let [whole, bytes] = both_ways(&srv, req.as_bytes());
        let statuses = |t: &[String]| {
            t.iter()
                .map(|a| status_of(a).to_string())
                .collect::<Vec<_>>()
        };
        if statuses(&whole) != [want] || statuses(&bytes) != [want] || whole != bytes {
            failures.push(format!(
                "[{name}] want [{want}]: whole {whole:?}, byte by byte {bytes:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
